# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: drive rigs from performances (sources, custom-rig solve, live preview, bake).

The bpy-free parts (take files, the custom-rig solve, drive values) live in ``core/``.
"""

from . import bake, handlers, import_menu, map_ops, ops, props, targets, ui

modules = (props, ops, map_ops, bake, ui, handlers, import_menu)   # registered in this order, unregistered in reverse


def register():
    for module in modules:
        module.register()


def unregister():
    for module in reversed(modules):
        module.unregister()
    targets.clear_cache()
