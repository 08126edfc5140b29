# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: which execution provider runs the networks.

The list offers what the installed ONNX Runtime build can run (Auto, the GPU provider of
this platform's zip, CPU). The choice is stored as its name, so a file or a preferences
file moved to a machine with another build keeps meaning the same thing (an unavailable
choice falls back to the CPU at run time, with the reason in the panel).
"""

import bpy

from .core import inference

_DESCRIPTIONS = {
    "AUTO": ("Auto", "The GPU provider this build offers when it starts, otherwise the CPU"),
    "CUDA": ("CUDA", "NVIDIA GPU (needs CUDA and cuDNN, see the install docs); falls back to the CPU"),
    "DIRECTML": ("DirectML", "Any DirectX 12 GPU on Windows; falls back to the CPU"),
    "COREML": ("CoreML", "Apple's Neural Engine and GPU; falls back to the CPU"),
    "CPU": ("CPU", "Always the CPU"),
}
# Blender keeps no reference to dynamic enum items: the strings must stay alive here.
_items_cache: list = []


def _provider_items(_self, _context):
    choices = inference.offered_choices()
    _items_cache[:] = [(c, *_DESCRIPTIONS[c], i) for i, c in enumerate(choices)]
    return _items_cache


def _get_provider(self) -> int:
    choices = inference.offered_choices()
    stored = self.execution_provider_name
    return choices.index(stored) if stored in choices else 0


def _set_provider(self, value: int) -> None:
    choices = inference.offered_choices()
    self.execution_provider_name = choices[value] if 0 <= value < len(choices) else "AUTO"
    # Sessions are cached per provider choice; drop them so the next run re-opens.
    inference.clear_cache()


class FACSIMILE_AP_preferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    # The choice by name; the enum below shows and edits it with what this build offers.
    execution_provider_name: bpy.props.StringProperty(default="AUTO", options={"HIDDEN"})
    execution_provider: bpy.props.EnumProperty(
        name="Execution provider",
        description="Where the neural networks run (what this installed build offers)",
        items=_provider_items,
        get=_get_provider,
        set=_set_provider,
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
    """The stored choice by name (it may name a provider this build lacks: the CPU then runs)."""
    prefs = get(context)
    return prefs.execution_provider_name if prefs else "AUTO"


classes = (FACSIMILE_AP_preferences,)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
