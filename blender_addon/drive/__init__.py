# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: drive rigs from performances (sources, custom-rig solve, live preview, bake).

The bpy-free parts (take files, the custom-rig solve, drive values) live in ``core/``.
"""

_modules = ()


def register():
    global _modules
    from . import bake, handlers, ops, props, ui

    _modules = (props, ops, bake, ui, handlers)
    for module in _modules:
        module.register()


def unregister():
    global _modules
    for module in reversed(_modules):
        module.unregister()
    _modules = ()
    from . import targets

    targets.clear_cache()
