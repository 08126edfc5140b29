# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive settings kept in the .blend: the source, the retarget map, solve and preview state.

The retarget map is a collection of 52 channel entries (``FloatVectorProperty`` stops at 32
items). An empty collection means the identity map, so files that never touched the map
carry nothing; operators fill it on first use (``take_object.ensure_channels``).
"""

import bpy

from .. import take_object

from ..core import arkit
from ..core.mapping import ChannelMap
from ..core.retarget import RetargetMap
from . import preview

MODE_ITEMS = (
    ("AUTO", "Auto", "Drive ARKit-named keys directly; solve meshes that have only other keys"),
    ("DIRECT", "Direct", "Copy each ARKit channel to the key of the same name (any spelling)"),
    ("SOLVE", "Solve", "Solve the mesh's own keys (any names) to reproduce the expression the "
                       "network predicts on it"),
)


_writing_map = False   # set while write_map() changes 200 values: one rebuild, not 200


def _map_changed(self, _context):
    # Gain, offset and smoothing reshape the whole curve: rebuild the preview and show it.
    if _writing_map:
        return
    preview.invalidate(self.id_data, reapply=True)


def _source_poll(_self, obj):
    return obj.type == "MESH" or take_object.is_take_object(obj)


TARGET_ITEMS = (   # core/mapping.py KINDS
    ("AUTO", "Same Name", "The key named like the channel, in any spelling (eyeBlink_L, "
                          "blendShape1.eyeBlinkLeft, AK_09_EyeBlinkLeft), on every mesh driven"),
    ("KEY", "Shape Key", "A shape key of any name (jawOpen -> MouthOpen), on every mesh driven"),
    ("PATH", "Data Path", "Any animatable property: a bone's rotation "
                          "(pose.bones[\"jaw\"].rotation_euler, index 0) or a custom property "
                          "([\"mouth_open\"]); gain and offset in its units, never clamped"),
)


def _map_object_poll(_self, obj):
    return obj.type == "MESH" and obj.data.shape_keys is not None


class FACSIMILE_PG_channel(bpy.types.PropertyGroup):
    """One ARKit channel of the retarget map (``name`` is the channel) and its target."""

    enabled: bpy.props.BoolProperty(name="Enabled", default=True, update=_map_changed,
                                    description="Off: the channel drives nothing (held at 0)")
    gain: bpy.props.FloatProperty(name="Gain", default=1.0, soft_min=0.0, soft_max=2.0,
                                  update=_map_changed, description="Multiplies the channel")
    offset: bpy.props.FloatProperty(name="Offset", default=0.0, soft_min=-1.0, soft_max=1.0,
                                    update=_map_changed, description="Added after the gain")
    smoothing: bpy.props.FloatProperty(
        name="Smoothing", default=0.0, min=0.0, soft_max=10.0, update=_map_changed,
        description="Zero-lag Gaussian smoothing: its width (sigma) in frames")
    target: bpy.props.EnumProperty(name="Target", items=TARGET_ITEMS, default="AUTO",
                                   update=_map_changed, description="What the channel drives")
    target_key: bpy.props.StringProperty(
        name="Shape Key", update=_map_changed,
        description="The shape key this channel drives, on every mesh driven")
    target_object: bpy.props.StringProperty(
        name="Object", update=_map_changed,
        description="The object the data path is on (an armature for a bone); empty: every mesh driven")
    target_path: bpy.props.StringProperty(
        name="Data Path", update=_map_changed,
        description='Relative to the object: pose.bones["jaw"].rotation_euler, ["mouth_open"] '
                    "(right-click a property › Copy Data Path)")
    target_index: bpy.props.IntProperty(
        name="Index", default=0, min=0, max=63, update=_map_changed,
        description="Component of an array property (rotation_euler: 0 X, 1 Y, 2 Z); 0 for a single value")


class FACSIMILE_PG_preview_target(bpy.types.PropertyGroup):
    object: bpy.props.PointerProperty(type=bpy.types.Object)


class FACSIMILE_PG_drive(bpy.types.PropertyGroup):
    source: bpy.props.PointerProperty(
        name="Source", type=bpy.types.Object, poll=_source_poll, update=_map_changed,
        description="The performance: a take (imported or encoded) or a mesh with ARKit "
                    "shape-key animation")
    mode: bpy.props.EnumProperty(name="Targets", items=MODE_ITEMS, default="AUTO",
                                 update=_map_changed)
    solve_smooth: bpy.props.FloatProperty(
        name="Solve smoothing", default=0.1, min=0.0, soft_max=10.0, update=_map_changed,
        description="Temporal smoothing of solved custom-rig weights (0 = frame by frame)")
    solve_sparsity: bpy.props.FloatProperty(
        name="Solve sparsity", default=0.0, min=0.0, soft_max=1.0, update=_map_changed,
        description="Prefer fewer active custom keys (0 = plain least squares)")
    clamp: bpy.props.BoolProperty(name="Clamp 0-1", default=True, update=_map_changed,
                                  description="Keep mapped values within the sliders' 0-1")
    channels: bpy.props.CollectionProperty(type=FACSIMILE_PG_channel)
    map_object: bpy.props.PointerProperty(
        name="Keys of", type=bpy.types.Object, poll=_map_object_poll,
        description="The mesh whose shape keys the map's key fields list and Auto-Map matches")
    active_channel: bpy.props.IntProperty(default=0)
    preview: bpy.props.BoolProperty(
        name="Live Preview", default=False,
        description="Drive the preview targets from the source while the timeline plays or scrubs")
    preview_targets: bpy.props.CollectionProperty(type=FACSIMILE_PG_preview_target)


def write_map(settings, rmap: RetargetMap, cmap: ChannelMap | None = None) -> None:
    """The retarget map and, when given, every channel's target (None: targets kept)."""
    global _writing_map
    take_object.ensure_channels(settings)
    _writing_map = True
    try:
        settings.clamp = rmap.clamp
        for entry in settings.channels:
            i = arkit.ARKIT_INDEX[entry.name]
            entry.gain, entry.offset = float(rmap.gain[i]), float(rmap.offset[i])
            entry.smoothing, entry.enabled = float(rmap.smoothing[i]), bool(rmap.enabled[i])
            if cmap is not None:
                write_target(entry, cmap.targets[i])
    finally:
        _writing_map = False
    _map_changed(settings, None)


def write_target(entry, target) -> None:
    entry.target, entry.target_key = target.kind, target.key
    entry.target_object, entry.target_path, entry.target_index = target.object, target.path, target.index


classes = (FACSIMILE_PG_channel, FACSIMILE_PG_preview_target, FACSIMILE_PG_drive)

def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.facsimile_drive = bpy.props.PointerProperty(type=FACSIMILE_PG_drive)


def unregister():
    del bpy.types.Scene.facsimile_drive
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)

