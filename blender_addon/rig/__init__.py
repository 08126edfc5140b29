# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: rig a head (region weights, ARKit shape keys, FACS sliders)."""

import bpy

# Registered in this order, unregistered in reverse.
register, unregister = bpy.utils.register_submodule_factory(__name__, ("props", "ops", "ui", "sliders"))
