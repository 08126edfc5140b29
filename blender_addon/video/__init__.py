# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: a performance video drives any rig (``facsimile.import_video``, the Video panel).

The decoding, tracking and calibration are bpy-free (``core/video/``); this folder is the
Blender side: the import state, the operator and its panel. The take object it makes is the
drive source (``take_object.py``).
"""

from . import import_menu, ops, props, ui

modules = (props, ops, ui, import_menu)   # registered in this order, unregistered in reverse


def register():
    for module in modules:
        module.register()


def unregister():
    for module in reversed(modules):
        module.unregister()
