# SPDX-License-Identifier: GPL-3.0-or-later
"""View3D > Sidebar > Facsimile: the Rig panel."""

import bpy

from .. import prefs
from ..core import inference


def provider_label(context) -> str:
    """The provider in use: the last session's, or what the preference would pick."""
    info = inference.last_session_info()
    if info is not None:
        return info.label
    try:
        first = inference.providers_for(prefs.provider_choice(context))[0]
    except inference.InferenceError as ex:
        return f"unavailable ({ex})"
    return first.replace("ExecutionProvider", "") + " (not run yet)"


class FACSIMILE_PT_rig(bpy.types.Panel):
    bl_idname = "FACSIMILE_PT_rig"
    bl_label = "Rig"
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Facsimile"

    def draw(self, context):
        layout = self.layout
        state = context.scene.facsimile_rig
        col = layout.column(align=True)
        col.label(text=f"Provider: {provider_label(context)}", icon="SETTINGS")
        if state.last_seconds >= 0:
            col.label(text=f"Last run: {state.last_seconds:.2f} s", icon="TIME")


classes = (FACSIMILE_PT_rig,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
