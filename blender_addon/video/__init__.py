# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: a performance video drives any rig (``facsimile.import_video``, the Video panel).

The decoding, tracking and calibration are bpy-free (``core/video``, ``core/takes/video.py``);
this folder is the Blender side: the operator and its panel.
"""

from . import ops, ui

_modules = (ops, ui)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
