# SPDX-License-Identifier: GPL-3.0-or-later
"""View3D > Sidebar > Facsimile: the Drive panel (source, preview, bake) and the retarget map."""

import bpy

from .. import take_object
from ..sidebar import SidebarPanel
from . import opsdata, preview, sources


class FACSIMILE_UL_channels(bpy.types.UIList):
    """The retarget map, one row per ARKit channel."""

    def draw_item(self, _context, layout, _data, item, _icon, _active_data, _active_prop,
                  _index=0, _flt_flag=0):
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        sub = row.row(align=True)
        sub.active = item.enabled
        sub.label(text=item.name)
        sub.prop(item, "gain", text="Gain")
        sub.prop(item, "offset", text="Offset")
        sub.prop(item, "smoothing", text="Smooth")


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
        row = layout.row(align=True)
        row.prop(settings, "clamp")
        row.operator("facsimile.reset_map", text="", icon="LOOP_BACK")
        row.operator("facsimile.load_map", text="", icon="FILEBROWSER")
        row.operator("facsimile.save_map", text="", icon="FILE_TICK")
        if not settings.channels:
            layout.label(text="Identity (pick a source to edit)", icon="INFO")
            return
        layout.template_list("FACSIMILE_UL_channels", "", settings, "channels", settings,
                             "active_channel", rows=8)


classes = (FACSIMILE_UL_channels, FACSIMILE_PT_drive, FACSIMILE_PT_retarget_map)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
