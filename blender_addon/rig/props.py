# SPDX-License-Identifier: GPL-3.0-or-later
"""Rig state kept in the .blend: last run, progress of a running job, slider options."""

import bpy

from ..scene_settings import scene_settings_factory


class FACSIMILE_PG_rig_state(bpy.types.PropertyGroup):
    last_provider: bpy.props.StringProperty(
        name="Provider", description="Execution provider used by the last run", default="")
    last_seconds: bpy.props.FloatProperty(
        name="Last run", description="Seconds the last rig took", default=-1.0)
    running: bpy.props.BoolProperty(default=False, options={"SKIP_SAVE"})
    progress: bpy.props.FloatProperty(default=0.0, min=0.0, max=1.0, subtype="FACTOR", options={"SKIP_SAVE"})
    stage: bpy.props.StringProperty(default="", options={"SKIP_SAVE"})
    mirror: bpy.props.BoolProperty(
        name="Mirror", default=False,
        description="Moving a Left slider moves its Right partner too (and vice versa)")


register, unregister = scene_settings_factory("facsimile_rig", FACSIMILE_PG_rig_state,
                                              (FACSIMILE_PG_rig_state,))
