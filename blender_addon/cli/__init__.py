# SPDX-License-Identifier: GPL-3.0-or-later
"""The headless command line: ``python -m blender_addon`` and ``blender --command facsimile``.

``commands.py`` parses and dispatches (``rig``, ``bake``, ``demo``), ``pipeline.py`` runs
the add-on's own operators on loaded files, ``demo.py`` builds the default head and
performance, ``render.py`` renders its contact sheet. Only the command registration
touches Blender at add-on start-up; bpy is imported when a command runs.
"""

from . import commands

modules = (commands,)   # registered in this order, unregistered in reverse


def register():
    for module in modules:
        module.register()


def unregister():
    for module in reversed(modules):
        module.unregister()
