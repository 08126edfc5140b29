# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: rig a head (region weights, ARKit shape keys, FACS sliders)."""

import bpy

from ..core import rig as core_rig
from . import ops, props, sliders, ui

modules = (props, ops, ui, sliders)   # registered in this order, unregistered in reverse
WARM_UP_DELAY = 1.0     # seconds after registering: Blender's start-up first, then SciPy


def _warm_up():
    core_rig.start_warm_up()
    return None             # once


def register():
    for module in modules:
        module.register()
    # The first Rig Face need not import SciPy: a background thread does, once Blender is
    # up (timers run from its event loop). Scripts and the command line rig at once: no gain.
    if not bpy.app.background:
        bpy.app.timers.register(_warm_up, first_interval=WARM_UP_DELAY)


def unregister():
    if bpy.app.timers.is_registered(_warm_up):
        bpy.app.timers.unregister(_warm_up)
    for module in reversed(modules):
        module.unregister()
