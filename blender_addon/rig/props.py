# SPDX-License-Identifier: GPL-3.0-or-later
"""Scene-level state the rig panel shows (kept in the .blend)."""

import bpy


class FACSIMILE_PG_rig_state(bpy.types.PropertyGroup):
    last_provider: bpy.props.StringProperty(
        name="Provider", description="Execution provider used by the last run", default="")
    last_seconds: bpy.props.FloatProperty(
        name="Last run", description="Seconds the last rig took", default=-1.0)


def register():
    bpy.utils.register_class(FACSIMILE_PG_rig_state)
    bpy.types.Scene.facsimile_rig = bpy.props.PointerProperty(type=FACSIMILE_PG_rig_state)


def unregister():
    del bpy.types.Scene.facsimile_rig
    bpy.utils.unregister_class(FACSIMILE_PG_rig_state)
