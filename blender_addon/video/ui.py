# SPDX-License-Identifier: GPL-3.0-or-later
"""View3D > Sidebar > Facsimile > Video: import a performance video, its progress, the last result."""

import bpy

from ..core.video import decode
from .. import jobs
from ..sidebar import SidebarPanel


class FACSIMILE_PT_video(SidebarPanel, bpy.types.Panel):
    bl_idname = "FACSIMILE_PT_video"
    bl_label = "Video"
    bl_parent_id = "FACSIMILE_PT_drive"   # inside Drive: the video is a source

    def draw(self, context):
        layout = self.layout
        state = context.scene.facsimile_video
        if jobs.draw(layout, "video"):
            return
        col = layout.column(align=True)
        col.scale_y = 1.3
        col.operator("facsimile.import_video", icon="FILE_MOVIE")
        if not decode.available():
            layout.label(text="PyAV (video decoding) is not installed", icon="ERROR")
        if state.last_frames >= 0:
            box = layout.box()
            box.label(text=f"{state.last_source}", icon="ANIM")
            box.label(text=f"{state.last_frames} frames, face in {100 * state.last_found:.0f} %")
            box.label(text=f"tracked at {state.last_fps:.0f} frames/s", icon="TIME")


classes = (FACSIMILE_PT_video,)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
