# SPDX-License-Identifier: GPL-3.0-or-later
"""Video import state kept on the scene: the last result (a running import's progress is
``jobs.py``'s, never saved)."""

import bpy


class FACSIMILE_PG_video(bpy.types.PropertyGroup):
    """UI state of the video import (not part of the performance)."""

    last_source: bpy.props.StringProperty()
    last_frames: bpy.props.IntProperty(default=-1)
    last_fps: bpy.props.FloatProperty()
    last_found: bpy.props.FloatProperty()


classes = (FACSIMILE_PG_video,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.facsimile_video = bpy.props.PointerProperty(type=FACSIMILE_PG_video)


def unregister():
    del bpy.types.Scene.facsimile_video
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
