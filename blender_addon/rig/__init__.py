# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: rig a head (region weights, ARKit shape keys, FACS sliders)."""

from . import ops, props, sliders, ui

modules = (props, ops, ui, sliders)   # registered in this order, unregistered in reverse


def register():
    for module in modules:
        module.register()


def unregister():
    for module in reversed(modules):
        module.unregister()
