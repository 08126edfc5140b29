# SPDX-License-Identifier: GPL-3.0-or-later
"""View3D > Sidebar > Facsimile > Drive > Live: the phone app, Start/Stop, status, Record."""

import bpy

from ..sidebar import SidebarPanel
from . import session


class FACSIMILE_PT_live(SidebarPanel, bpy.types.Panel):
    bl_idname = "FACSIMILE_PT_live"
    bl_label = "Live"
    bl_parent_id = "FACSIMILE_PT_drive"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        layout = self.layout
        scene = context.scene
        settings = scene.facsimile_live
        live = session.session(scene)
        col = layout.column(align=True)
        col.enabled = live is None   # the socket is bound: change it after Stop
        col.prop(settings, "protocol", text="App")
        row = col.row(align=True)
        row.prop(settings, "port")
        row.prop(settings, "address", text="")
        if settings.protocol == "ifacialmocap":
            col.prop(settings, "phone")
        row = layout.row(align=True)
        row.scale_y = 1.3
        if live is None:
            row.operator("facsimile.live_start", text="Start", icon="PLAY")
            return
        row.operator("facsimile.live_stop", text="Stop", icon="PAUSE", depress=True)
        stats = live.receiver.stats()
        box = layout.box()
        col = box.column(align=True)
        col.label(text=f"{stats.fps:.0f} frames/s on port {live.receiver.port}",
                  icon="CHECKMARK" if stats.fps > 0 else "TIME")
        col.label(text=f"{stats.frames} frames, {stats.dropped} dropped, "
                       f"{stats.malformed} malformed")
        if stats.last_timecode:
            col.label(text=f"Timecode {stats.last_timecode}")
        if stats.malformed and stats.last_error:
            col.label(text=stats.last_error[:80], icon="ERROR")
        if live.subjects:
            col = box.column(align=True)
            col.label(text="Subject:" if len(live.subjects) == 1 else "Subjects (follow one):")
            for subject in live.subjects[:8]:
                col.operator("facsimile.live_subject", text=subject or "(unnamed)",
                             depress=subject == live.current_subject).subject = subject
        elif not stats.frames:
            box.label(text="Waiting for the phone…", icon="INFO")
        row = layout.row(align=True)
        row.scale_y = 1.3
        if live.receiver.recording:
            row.operator("facsimile.live_record", text=f"Stop Recording ({stats.recorded})",
                         icon="SNAP_FACE", depress=True)
        else:
            row.operator("facsimile.live_record", text="Record", icon="REC")
        row = layout.row(align=True)
        row.operator("facsimile.live_calibrate", text="Calibrate" if live.neutral is None
                     else "Recalibrate", icon="RESTRICT_POSE_OFF").clear = False
        if live.neutral is not None:
            row.operator("facsimile.live_calibrate", text="", icon="X").clear = True
        if not scene.facsimile_drive.preview:
            layout.label(text="Live Preview (above) shows it on meshes", icon="INFO")


classes = (FACSIMILE_PT_live,)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
