# SPDX-License-Identifier: GPL-3.0-or-later
"""View3D > Sidebar > Facsimile: the Rig panel and the FACS slider panel."""

import bpy

from ..sidebar import SidebarPanel
from .. import jobs, prefs
from ..core import arkit, inference
from .opsdata import slider_keys


def provider_label(context) -> str:
    """The provider in use: the last session's, or what the preference would pick."""
    info = inference.last_session_info()
    if info is not None:
        return info.label
    try:
        first = inference.providers_for(prefs.provider_choice(context))[0]
    except inference.InferenceError as ex:
        return f"unavailable ({ex})"
    return inference.LABELS.get(first, first) + " (not run yet)"


class FACSIMILE_PT_rig(SidebarPanel, bpy.types.Panel):
    bl_idname = "FACSIMILE_PT_rig"
    bl_label = "Rig"
    bl_order = 0

    def draw(self, context):
        layout = self.layout
        state = context.scene.facsimile_rig
        jobs.draw(layout, "rig")
        col = layout.column(align=True)
        col.scale_y = 1.4
        col.operator("facsimile.rig", icon="SHAPEKEY_DATA")
        col = layout.column(align=True)
        col.operator("facsimile.update_rig", icon="FILE_REFRESH")
        col.operator("facsimile.rig_selected", icon="SELECT_EXTEND")
        row = layout.row(align=True)
        row.operator("facsimile.predict_regions", icon="GROUP_VERTEX")
        row.operator("facsimile.generate_shapes", icon="SHAPEKEY_DATA")
        # The options the operators take when a run does not set them (props.OPTION_NAMES).
        box = layout.box()
        box.label(text="Options", icon="PREFERENCES")
        col = box.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(state, "naming")
        col.prop(state, "strength")
        col.prop(state, "tighten")
        gaze = col.column(align=True)          # the rig's range of eye motion, per direction
        gaze.prop(state, "gaze_in", text="Gaze In")
        gaze.prop(state, "gaze_out", text="Out")
        gaze.prop(state, "gaze_up", text="Up")
        gaze.prop(state, "gaze_down", text="Down")
        col.prop(state, "localization")
        col.prop(state, "existing")
        col.prop(state, "replace_groups")
        col.prop(state, "all_keys")
        col = layout.column(align=True)
        col.label(text=f"Provider: {provider_label(context)}", icon="SETTINGS")
        if state.last_seconds >= 0:
            col.label(text=f"Last run: {state.last_seconds:.2f} s", icon="TIME")


class FACSIMILE_PT_sliders(SidebarPanel, bpy.types.Panel):
    bl_idname = "FACSIMILE_PT_sliders"
    bl_label = "FACS Sliders"
    bl_order = 1

    @classmethod
    def poll(cls, context):
        return bool(slider_keys(context.active_object))

    def draw(self, context):
        layout = self.layout
        keys = slider_keys(context.active_object)
        row = layout.row(align=True)
        row.prop(context.scene.facsimile_rig, "mirror", icon="MOD_MIRROR", toggle=True)
        row.operator("facsimile.reset_sliders", text="Reset", icon="LOOP_BACK")
        row.operator("facsimile.key_sliders", text="Key All", icon="KEYINGSET")
        for group, names in arkit.SLIDER_GROUPS.items():
            present = [n for n in names if n in keys]
            if not present:
                continue
            box = layout.box()
            box.label(text=group)
            col = box.column(align=True)
            for name in present:
                col.prop(keys[name], "value", text=name, slider=True)


classes = (FACSIMILE_PT_rig, FACSIMILE_PT_sliders)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
