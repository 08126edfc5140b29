# SPDX-License-Identifier: GPL-3.0-or-later
"""App handlers of the live preview: frame changes, source edits, file loads, live frames.

Only the glue to ``bpy.app.handlers``; what they run is in ``preview.py``.
"""

import bpy
from bpy.app.handlers import persistent

from .. import live_feed
from . import preview


@persistent
def on_frame_change_pre(scene, _depsgraph=None):
    if scene.facsimile_drive.preview:
        preview.apply(scene)


@persistent
def on_depsgraph_update_post(scene, depsgraph):
    preview.source_edited(scene, depsgraph)


@persistent
def on_load_post(_dummy=None):
    preview.reset_after_load()


_HANDLERS = (("frame_change_pre", on_frame_change_pre),
             ("depsgraph_update_post", on_depsgraph_update_post),
             ("load_post", on_load_post))


def register():
    for name, fn in _HANDLERS:
        getattr(bpy.app.handlers, name).append(fn)
    live_feed.add_consumer(preview.on_live)   # live frames go through the preview's writer


def unregister():
    live_feed.remove_consumer(preview.on_live)
    for name, fn in _HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if fn in handlers:
            handlers.remove(fn)
    preview.clear()
