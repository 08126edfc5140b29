# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: rig a head (region weights, ARKit shape keys, FACS sliders)."""

from . import ops, props, sliders, ui

_modules = (props, ops, ui, sliders)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
