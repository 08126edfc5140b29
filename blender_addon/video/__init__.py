# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: a performance video drives any rig (``facsimile.import_video``, the Video panel).

The decoding, tracking and calibration are bpy-free (``core/video``, ``core/takes/video.py``);
this folder is the Blender side: the operator and its panel.
"""

import bpy

register, unregister = bpy.utils.register_submodule_factory(__name__, ("ops", "ui"))
