# SPDX-License-Identifier: GPL-3.0-or-later
"""FACS slider helpers: reset to neutral, key every slider, Left/Right mirroring.

Sliders are the shape keys' own ``value`` (no shadow properties to get out of
sync). Mirroring listens to shape-key value changes through ``bpy.msgbus``: when
the artist drags ``eyeBlinkLeft`` with Mirror on, ``eyeBlinkRight`` follows.
"""

import bpy
from bpy.app.handlers import persistent

from ..core import arkit
from .opsdata import slider_keys

_owner = object()
_last_values: dict[str, dict[str, float]] = {}
_syncing = False


def sync_mirror(obj) -> list[str]:
    """Copy every slider that changed since the last call onto its mirror partner.

    Returns the names it moved. The first call only records the values.
    """
    global _syncing
    keys = slider_keys(obj)
    current = {name: kb.value for name, kb in keys.items()}
    before = _last_values.get(obj.name_full)
    moved = []
    if before is not None:
        _syncing = True
        try:
            for name, value in current.items():
                partner = arkit.mirror_name(name)
                if partner == name or partner not in keys or abs(before.get(name, value) - value) < 1e-7:
                    continue
                if abs(keys[partner].value - value) > 1e-7:
                    keys[partner].value = value
                    current[partner] = value
                    moved.append(partner)
        finally:
            _syncing = False
    _last_values[obj.name_full] = current
    return moved


def _on_value_changed():
    if _syncing:
        return
    context = bpy.context
    scene = getattr(context, "scene", None)
    obj = getattr(context, "active_object", None)
    if scene is None or obj is None or not scene.facsimile_rig.mirror:
        if obj is not None:
            _last_values.pop(obj.name_full, None)
        return
    sync_mirror(obj)


def _subscribe():
    bpy.msgbus.clear_by_owner(_owner)
    bpy.msgbus.subscribe_rna(key=(bpy.types.ShapeKey, "value"), owner=_owner, args=(),
                             notify=_on_value_changed)


@persistent
def _on_load(_dummy):
    _last_values.clear()
    _subscribe()


class _SliderOperator:
    """Acts on the ARKit sliders of the active mesh; one undo step."""

    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return bool(slider_keys(context.active_object))


class FACSIMILE_OT_reset_sliders(_SliderOperator, bpy.types.Operator):
    """Set every ARKit slider of the active mesh to 0 (neutral)"""

    bl_idname = "facsimile.reset_sliders"
    bl_label = "Reset Sliders"

    def execute(self, context):
        keys = slider_keys(context.active_object)
        for kb in keys.values():
            kb.value = 0.0
        _last_values.pop(context.active_object.name_full, None)
        self.report({"INFO"}, f"Facsimile: {len(keys)} sliders reset to neutral")
        return {"FINISHED"}


class FACSIMILE_OT_key_sliders(_SliderOperator, bpy.types.Operator):
    """Insert a keyframe on every ARKit slider of the active mesh at the current frame"""

    bl_idname = "facsimile.key_sliders"
    bl_label = "Key All Sliders"

    def execute(self, context):
        keys = slider_keys(context.active_object)
        frame = context.scene.frame_current
        for kb in keys.values():
            kb.keyframe_insert("value", frame=frame)
        self.report({"INFO"}, f"Facsimile: keyed {len(keys)} sliders at frame {frame}")
        return {"FINISHED"}


classes = (FACSIMILE_OT_reset_sliders, FACSIMILE_OT_key_sliders)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    _subscribe()
    bpy.app.handlers.load_post.append(_on_load)


def unregister():
    if _on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load)
    bpy.msgbus.clear_by_owner(_owner)
    _last_values.clear()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
