# SPDX-License-Identifier: GPL-3.0-or-later
"""View3D > Sidebar > Facsimile: the Drive panel (source, preview, bake) and the retarget map."""

import bpy

from .. import take_object
from ..sidebar import SidebarPanel
from . import opsdata, preview, sources


def _columns(layout):
    """Channel | Target | Gain | Offset: the same splits for the header and every row."""
    split = layout.split(factor=0.36, align=True)
    channel = split.row(align=True)
    rest = split.split(factor=0.5, align=True)
    return channel, rest.row(align=True), rest.row(align=True)


def _key_blocks(settings):
    obj = settings.map_object
    keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    return keys


class FACSIMILE_UL_channels(bpy.types.UIList):
    """The retarget map, one row per ARKit channel: its target, gain and offset."""

    def draw_item(self, _context, layout, data, item, _icon, _active_data, _active_prop,
                  _index=0, _flt_flag=0):
        channel, target, numbers = _columns(layout)
        channel.prop(item, "enabled", text="")
        channel.label(text=item.name)
        target.active = numbers.active = item.enabled
        if item.target == "KEY":
            keys = _key_blocks(data)
            if keys is not None:
                target.prop_search(item, "target_key", keys, "key_blocks", text="")
            else:
                target.prop(item, "target_key", text="")
        elif item.target == "PATH":
            where = f"{item.target_object}: " if item.target_object else ""
            target.label(text=f"{where}{item.target_path}[{item.target_index}]", icon="RNA")
        else:
            target.label(text="same name")
        numbers.prop(item, "gain", text="")
        numbers.prop(item, "offset", text="")


class FACSIMILE_PT_drive(SidebarPanel, bpy.types.Panel):
    bl_idname = "FACSIMILE_PT_drive"
    bl_label = "Drive"
    bl_order = 2   # Rig, FACS Sliders, Drive: the order of the work

    def draw(self, context):
        layout = self.layout
        settings = context.scene.facsimile_drive
        col = layout.column(align=True)
        col.label(text="Source", icon="ANIM")
        col.prop(settings, "source", text="")
        row = col.row(align=True)
        # Button texts are the operators' labels, so menus, search and tooltips read the same.
        row.operator("facsimile.import_take", icon="IMPORT")
        row.operator("facsimile.import_video", icon="FILE_MOVIE")   # the video feature's operator
        row = col.row(align=True)
        row.operator("facsimile.encode_mesh", icon="MESH_DATA")
        row.operator("facsimile.set_source", icon="EYEDROPPER")
        problem = sources.source_problem(settings.source)
        if problem:
            layout.label(text=problem, icon="INFO")
        if take_object.is_take_object(settings.source):
            row = layout.row(align=True)
            row.label(text="Rotation to active:")
            for part, label, _ in (("HEAD", "Head", ""), ("EYE_L", "Eye L", ""), ("EYE_R", "Eye R", "")):
                row.operator("facsimile.link_rotation", text=label).part = part

        box = layout.box()
        box.prop(settings, "mode")
        if settings.mode != "DIRECT":
            row = box.row(align=True)
            row.prop(settings, "solve_smooth", text="Smooth")
            row.prop(settings, "solve_sparsity", text="Sparse")

        row = layout.row(align=True)
        row.scale_y = 1.3
        if settings.preview:
            row.operator("facsimile.preview", text="Stop Preview", icon="PAUSE",
                         depress=True).enable = False
        else:
            row.operator("facsimile.preview", text="Live Preview", icon="PLAY").enable = True
        if settings.preview:
            names = ", ".join(o.name for o in opsdata.preview_objects(settings))
            layout.label(text=f"Previewing: {names}", icon="HIDE_OFF")
            error = preview.last_error(context.scene)
            if error:
                layout.label(text=error, icon="ERROR")
        row = layout.row(align=True)
        row.scale_y = 1.3
        row.operator("facsimile.bake", icon="KEYINGSET")
        row.operator("facsimile.clear_bake", text="", icon="TRASH")


class FACSIMILE_PT_retarget_map(SidebarPanel, bpy.types.Panel):
    bl_idname = "FACSIMILE_PT_retarget_map"
    bl_label = "Retarget Map"
    bl_parent_id = "FACSIMILE_PT_drive"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        settings = context.scene.facsimile_drive
        layout.prop(settings, "map_object")
        row = layout.row(align=True)
        row.operator("facsimile.auto_map", icon="AUTO")
        row.operator("facsimile.load_map_preset", icon="PRESET")
        row.operator("facsimile.save_map_preset", icon="ADD")
        row = layout.row(align=True)
        row.prop(settings, "clamp")
        row.operator("facsimile.reset_map", text="", icon="LOOP_BACK")
        row.operator("facsimile.load_map", text="", icon="FILEBROWSER")
        row.operator("facsimile.save_map", text="", icon="FILE_TICK")
        if not settings.channels:
            layout.label(text="Identity (pick a source to edit)", icon="INFO")
            return
        for column, label in zip(_columns(layout.box()), ("Channel", "Target", "Gain · Offset")):
            column.label(text=label)
        layout.template_list("FACSIMILE_UL_channels", "", settings, "channels", settings,
                             "active_channel", rows=8)
        if not 0 <= settings.active_channel < len(settings.channels):
            return
        item = settings.channels[settings.active_channel]
        box = layout.box()
        box.label(text=item.name, icon="SHAPEKEY_DATA")
        box.prop(item, "target")
        if item.target == "KEY":
            keys = _key_blocks(settings)
            if keys is not None:
                box.prop_search(item, "target_key", keys, "key_blocks")
            else:
                box.prop(item, "target_key")
        elif item.target == "PATH":
            box.prop_search(item, "target_object", bpy.data, "objects")
            box.prop(item, "target_path")
            box.prop(item, "target_index")
        row = box.row(align=True)
        row.prop(item, "gain")
        row.prop(item, "offset")
        box.prop(item, "smoothing")


classes = (FACSIMILE_UL_channels, FACSIMILE_PT_drive, FACSIMILE_PT_retarget_map)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
