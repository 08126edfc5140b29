# SPDX-License-Identifier: GPL-3.0-or-later
"""Rig state kept in the .blend: last run, progress of a running job, slider options."""

import bpy



class FACSIMILE_PG_rig_state(bpy.types.PropertyGroup):
    last_provider: bpy.props.StringProperty(
        name="Provider", description="Execution provider used by the last run", default="")
    last_seconds: bpy.props.FloatProperty(
        name="Last run", description="Seconds the last rig took", default=-1.0)
    last_report: bpy.props.StringProperty(
        name="Report", description="What the last rig said (eyes, blink closure, tongue)", default="")
    running: bpy.props.BoolProperty(default=False, options={"SKIP_SAVE"})
    progress: bpy.props.FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    stage: bpy.props.StringProperty(default="", options={"SKIP_SAVE"})
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
