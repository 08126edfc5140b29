# SPDX-License-Identifier: GPL-3.0-or-later
"""Rig state kept in the .blend: the rig options shown in the panel, last run, slider options.
A running rig's progress is not here (``jobs.py``: never saved).

The options (naming, strength, tighten, gaze angles, localization, existing keys, FX_ groups) are the
defaults the rig operators read when a script or the redo panel does not set them, so an
artist sets them once in the panel instead of in the redo panel of a run that already happened.
"""

import math

import bpy

from ..core.eyes import GAZE_DEGREES, GAZE_RANGE
from ..options import EXISTING_ITEMS

NAMING_ITEMS = (
    ("ARKIT", "ARKit", "ARKit camelCase: eyeBlinkLeft"),
    ("ARKIT_LR", "ARKit _L/_R", "eyeBlink_L (Face Cap, ARKit raw values)"),
    ("ICT53", "ICT 53", "ICT-FaceKit's 53 shapes: browInnerUp and cheekPuff split in halves"),
)
LOCALIZATION_ITEMS = (
    ("PREDICTED", "Predicted", "Localize expressions with the predicted region weights"),
    ("PAINTED", "Painted FX_ groups", "Localize expressions with the FX_ vertex groups as painted"),
)
GAZE_NAMES = {d: f"gaze_{d.lower()}" for d in GAZE_DEGREES}
OPTION_NAMES = ("naming", "strength", "tighten", *GAZE_NAMES.values(), "localization", "existing", "replace_groups")
"""Scene options that the operators of the same property names take as defaults."""


def _gaze_property(direction: str, toward: str):
    return bpy.props.FloatProperty(
        name=f"Gaze {direction}", subtype="ANGLE", precision=1, default=math.radians(GAZE_DEGREES[direction]),
        min=math.radians(GAZE_RANGE[0]), max=math.radians(GAZE_RANGE[1]),
        description=f"How far eyeLook{direction} turns the eyeballs {toward} at weight 1, about their "
                    f"centres: the rig's range of eye motion (default {GAZE_DEGREES[direction]:g}°, "
                    "calibrated on recorded eye rotations)")


def tighten_property():
    """The Tighten option (``core.falloff``): how far each generated shape reaches."""
    return bpy.props.FloatProperty(
        name="Tighten", default=0.0, min=0.0, max=0.9, soft_max=0.5, precision=2, step=5,
        description="Fade out the weak, far-reaching part of every generated shape: motion under this "
                    "share of a shape's peak goes, the rest keeps its direction and the peak its size. "
                    "0 keeps the networks' answer (scanned style); 0.1-0.2 suits sculpted and game rigs")


class GazeOptions:
    """The rig's gaze angles, one per direction (``core.eyes.gaze_angles``): on the scene's
    rig options and on the operators that write shapes."""

    gaze_in: _gaze_property("In", "toward the nose")
    gaze_out: _gaze_property("Out", "away from the nose")
    gaze_up: _gaze_property("Up", "up")
    gaze_down: _gaze_property("Down", "down")


def gaze_degrees(owner) -> dict:
    """{"In": degrees, …} of a :class:`GazeOptions` owner. Blender keeps the angles as
    single-precision radians; rounded to a thousandth of a degree they give the calibrated
    angles back exactly, so an untouched panel rigs as the core's default does, bit for bit."""
    return {d: round(math.degrees(getattr(owner, name)), 3) for d, name in GAZE_NAMES.items()}


class FACSIMILE_PG_rig_state(GazeOptions, bpy.types.PropertyGroup):
    last_provider: bpy.props.StringProperty(
        name="Provider", description="Execution provider used by the last run", default="")
    last_seconds: bpy.props.FloatProperty(
        name="Last run", description="Seconds the last rig took", default=-1.0)
    naming: bpy.props.EnumProperty(name="Naming", items=NAMING_ITEMS, default="ARKIT",
                                   description="Names of the generated shape keys")
    strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, soft_max=2.0,
                                      description="Scale of every generated shape")
    tighten: tighten_property()
    localization: bpy.props.EnumProperty(
        name="Localize with", items=LOCALIZATION_ITEMS, default="PREDICTED",
        description="Region weights that keep each expression in its part of the face (Generate Shapes)")
    existing: bpy.props.EnumProperty(
        name="Your keys", items=EXISTING_ITEMS, default="SKIP",
        description="What to do with shape keys you made under an ARKit name (Facsimile's own keys "
                    "are always regenerated)")
    replace_groups: bpy.props.BoolProperty(
        name="Replace FX_ groups", default=False,
        description="Rig Face and Predict Regions overwrite existing FX_ groups (only those; other "
                    "groups are never touched). Off: they stop instead, so painted groups are safe; "
                    "Update Rig uses them")
    last_report: bpy.props.StringProperty(
        name="Report", description="What the last rig said (eyes, blink closure, tongue)", default="")
    all_keys: bpy.props.BoolProperty(
        name="Create all 52 keys", default=False,
        description="Rig Face and Generate Shapes create every ARKit name, tongueOut even where the head "
                    "has no tongue to move (for pipelines that expect all 52)")
    mirror: bpy.props.BoolProperty(
        name="Mirror", default=False,
        description="Moving a Left slider moves its Right partner too (and vice versa)")


classes = (FACSIMILE_PG_rig_state,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.facsimile_rig = bpy.props.PointerProperty(type=FACSIMILE_PG_rig_state)


def unregister():
    del bpy.types.Scene.facsimile_rig
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
