# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: drive rigs from performances (sources, custom-rig solve, live preview, bake, CLI).

Submodules are imported in :func:`register`, not here: the bpy-free ones (``takeio``,
``custom_rig``, ``demo_take``) stay importable by tools and tests without registering.
"""

_modules = ()


def register():
    global _modules
    from . import bake, cli, handlers, ops, props, ui

    _modules = (props, ops, bake, ui, handlers, cli)
    for module in _modules:
        module.register()


def unregister():
    global _modules
    for module in reversed(_modules):
        module.unregister()
    _modules = ()
    from . import targets

    targets.clear_cache()
