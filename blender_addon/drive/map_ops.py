# SPDX-License-Identifier: GPL-3.0-or-later
"""The retarget map's operators: reset, Auto-Map, presets (by name) and map files.

A map is the per-channel gain, offset, smoothing and on/off (``core/retarget.py``) and
each channel's target (``core/mapping.py``: the same-named key, a key of any name, a data
path). Presets are JSON files (``map_presets.py``: shipped VRoid and Rocketbox, and the
user's own); *Save/Load Retarget Map* read and write any file. Every operator checks first
and writes after: a preset naming keys the mesh in *Keys of* does not have, an object that
is not there, or a bone it does not have is one line, and the map is left as it was. Each
is one undo step.
"""

from __future__ import annotations

import bpy
from bpy_extras.io_utils import ExportHelper, ImportHelper

from .. import map_presets
from ..core import arkit, mapping
from ..core.errors import FacsimileError
from ..core.retarget import RetargetMap
from . import opsdata, paths, props


def _map_mesh(context):
    """The mesh whose keys the map is checked and auto-mapped against: *Keys of*, else the
    active mesh when it has shape keys (None: nothing to check against)."""
    settings = context.scene.facsimile_drive
    if settings.map_object is not None:
        return settings.map_object
    obj = context.active_object
    if obj is not None and obj.type == "MESH" and obj.data.shape_keys is not None:
        return obj
    return None


def _key_names(obj) -> list:
    return [kb.name for kb in obj.data.shape_keys.key_blocks[1:]]


def check_against_scene(context, rmap, cmap) -> list:
    """A map about to be applied: its keys on the map mesh, the bones and properties of its
    objects (FacsimileError, one line, on the first that is not there). Returns the objects
    it names that are not in this file (yet: a pipeline loads the map before the rig; the
    preview and the bake check them again)."""
    mesh = _map_mesh(context)
    if mesh is not None:
        missing = cmap.missing_keys(_key_names(mesh))
        if missing:
            raise mapping.MappingError(
                f"'{mesh.name}' has no shape key for {len(missing)} of the map's targets "
                f"({', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}); is the map for "
                "another rig? Pick the mesh in 'Keys of'")
    absent = sorted({t.object for _, t in cmap.path_targets()
                     if t.object and t.object not in bpy.data.objects})
    here = [t if t.kind == "PATH" and t.object and t.object not in absent else mapping.Target()
            for t in cmap.targets]
    paths.resolve(RetargetMap(), mapping.ChannelMap(here), [])   # bones, properties: all there
    return absent


def _apply(op, context, rmap, cmap, what: str) -> set:
    try:
        absent = check_against_scene(context, rmap, cmap)
    except FacsimileError as err:
        op.report({"ERROR"}, f"Facsimile: {what}: {err}")
        return {"CANCELLED"}
    props.write_map(context.scene.facsimile_drive, rmap, cmap)
    if absent:
        op.report({"WARNING"}, f"Facsimile: {what}: no object {', '.join(map(repr, absent))} in this "
                               "file yet; preview and bake need it")
    routed = sum(t.kind != "AUTO" for t in cmap.targets)
    op.report({"INFO"}, f"Facsimile: {what}: {routed} channel(s) with their own target, "
                        f"{int((~rmap.enabled).sum())} off")
    return {"FINISHED"}


class FACSIMILE_OT_reset_map(bpy.types.Operator):
    """Reset the retarget map: every channel on, gain 1, offset 0, no smoothing, each to its same-named key"""

    bl_idname = "facsimile.reset_map"
    bl_label = "Reset Retarget Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        props.write_map(context.scene.facsimile_drive, RetargetMap(), mapping.ChannelMap())
        self.report({"INFO"}, "Facsimile: retarget map reset")
        return {"FINISHED"}


class FACSIMILE_OT_auto_map(bpy.types.Operator):
    """Send each channel to the shape key of the mesh in 'Keys of' (or the active mesh) whose name is the channel's in any spelling (case, _L/Left, prefixes, suffixes); data-path targets are kept"""

    bl_idname = "facsimile.auto_map"
    bl_label = "Auto-Map"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.facsimile_drive
        mesh = _map_mesh(context)
        if mesh is None:
            self.report({"ERROR"}, "Facsimile: Auto-Map: pick the mesh to map onto in 'Keys of' "
                                   "(or make a mesh with shape keys active)")
            return {"CANCELLED"}
        try:
            cmap, unmatched = mapping.with_auto_map(opsdata.channel_map(settings), _key_names(mesh))
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: Auto-Map: {err}")
            return {"CANCELLED"}
        matched = len(arkit.ARKIT_52) - len(unmatched) - len(cmap.path_targets())
        if matched == 0:
            self.report({"ERROR"}, f"Facsimile: Auto-Map: no key of '{mesh.name}' is an ARKit name in "
                                   "any spelling; for a VRoid or Rocketbox rig use Load Preset, "
                                   "else pick each channel's key")
            return {"CANCELLED"}
        settings.map_object = mesh
        props.write_map(settings, opsdata.retarget_map(settings), cmap)
        line = f"Facsimile: Auto-Map: {matched} channel(s) mapped onto keys of '{mesh.name}'"
        if unmatched:
            line += f"; no key for {len(unmatched)}: {', '.join(unmatched[:4])}{'…' if len(unmatched) > 4 else ''}"
        self.report({"INFO"}, line)
        return {"FINISHED"}


def _preset_items(_self, _context):
    items = [(name, name, f"{'Shipped' if map_presets.is_shipped(path) else 'Your'} preset ({path})")
             for name, path in map_presets.available().items()]
    _preset_items.cache = items or [("", "(no presets)", "")]   # Blender needs the strings kept alive
    return _preset_items.cache


class FACSIMILE_OT_load_map_preset(bpy.types.Operator):
    """Load a retarget-map preset: the shipped VRoid (Fcl_*) and Rocketbox (AK_*) maps, or one you saved"""

    bl_idname = "facsimile.load_map_preset"
    bl_label = "Load Preset"
    bl_options = {"REGISTER", "UNDO"}
    bl_property = "preset"

    preset: bpy.props.EnumProperty(name="Preset", items=_preset_items)

    def invoke(self, context, _event):
        context.window_manager.invoke_search_popup(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        try:
            path = map_presets.find(self.preset)
            rmap, cmap = mapping.read_preset(path)
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        return _apply(self, context, rmap, cmap, f"preset {path.stem}")


class FACSIMILE_OT_save_map_preset(bpy.types.Operator):
    """Save the retarget map (gains, offsets, smoothing, targets) as a named preset in your presets folder"""

    bl_idname = "facsimile.save_map_preset"
    bl_label = "Save Preset"

    name: bpy.props.StringProperty(name="Name", default="My Rig")
    overwrite: bpy.props.BoolProperty(name="Overwrite", default=False,
                                      description="Replace your preset of the same name")

    def invoke(self, context, _event):
        return context.window_manager.invoke_props_dialog(self)

    def execute(self, context):
        settings = context.scene.facsimile_drive
        try:
            name = mapping.check_preset_name(self.name)
            folder = map_presets.user_folder(create=True)
            if folder is None:
                raise mapping.MappingError("Blender has no user folder to save presets in")
            path = folder / f"{name}.json"
            if path.exists() and not self.overwrite:
                raise mapping.MappingError(f"you have a preset '{name}' already; tick Overwrite "
                                           "or pick another name")
            mapping.write_preset(path, opsdata.retarget_map(settings), opsdata.channel_map(settings))
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: Save Preset: {err}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Facsimile: saved preset '{name}' ({path})")
        return {"FINISHED"}


class FACSIMILE_OT_save_map(bpy.types.Operator, ExportHelper):
    """Save the retarget map (gains, offsets, smoothing, targets) to a JSON file"""

    bl_idname = "facsimile.save_map"
    bl_label = "Save Retarget Map"
    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        settings = context.scene.facsimile_drive
        try:
            mapping.write_preset(bpy.path.abspath(self.filepath), opsdata.retarget_map(settings),
                                 opsdata.channel_map(settings))
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        return {"FINISHED"}


class FACSIMILE_OT_load_map(bpy.types.Operator, ImportHelper):
    """Load a retarget map from a JSON file (Save Retarget Map's, or a preset)"""

    bl_idname = "facsimile.load_map"
    bl_label = "Load Retarget Map"
    bl_options = {"REGISTER", "UNDO"}
    filter_glob: bpy.props.StringProperty(default="*.json", options={"HIDDEN"})

    def execute(self, context):
        try:
            rmap, cmap = mapping.read_preset(bpy.path.abspath(self.filepath))
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: cannot read the map: {err}")
            return {"CANCELLED"}
        return _apply(self, context, rmap, cmap, "map")


classes = (FACSIMILE_OT_reset_map, FACSIMILE_OT_auto_map, FACSIMILE_OT_load_map_preset,
           FACSIMILE_OT_save_map_preset, FACSIMILE_OT_save_map, FACSIMILE_OT_load_map)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
