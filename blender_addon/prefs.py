# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: which execution provider runs the networks."""

import bpy

from .core import inference

_PROVIDER_ITEMS = (
    ("AUTO", "Auto", "CUDA when this ONNX Runtime offers it, otherwise the CPU"),
    ("CUDA", "CUDA", "NVIDIA GPU; falls back to the CPU if CUDA cannot start"),
    ("CPU", "CPU", "Always the CPU"),
)


def _provider_changed(_self, _context):
    # Sessions are cached per provider choice; drop them so the next run re-opens.
    inference.clear_cache()


class FACSIMILE_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    execution_provider: bpy.props.EnumProperty(
        name="Execution provider",
        description="Where the neural networks run",
        items=_PROVIDER_ITEMS,
        default="AUTO",
        update=_provider_changed,
    )

    def draw(self, _context):
        layout = self.layout
        layout.prop(self, "execution_provider")
        try:
            offered = ", ".join(p.replace("ExecutionProvider", "") for p in inference.available_providers())
        except inference.InferenceError as ex:
            offered = str(ex)
        layout.label(text=f"ONNX Runtime offers: {offered}")


def get(context=None):
    """This add-on's preferences (works for the bl_ext.* and the plain module name)."""
    context = context or bpy.context
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon else None


def provider_choice(context=None) -> str:
    prefs = get(context)
    return prefs.execution_provider if prefs else "AUTO"


classes = (FACSIMILE_AP_preferences,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
