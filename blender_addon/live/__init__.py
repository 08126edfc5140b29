# SPDX-License-Identifier: GPL-3.0-or-later
"""Feature: live capture from a phone app (Live Link Face, Face Cap, iFacialMocap).

The wire formats, the receiver and the recorder are bpy-free in ``core/live/``; here is the
Blender side: the settings (``props``), the running sessions and their main-thread timer
(``session``), the operators (``ops``), recordings into take objects (``opsdata``) and the
Drive ▸ Live panel (``ui``). Live frames reach the meshes through the drive preview, via
the top-level ``live_feed`` module.
"""

from . import ops, props, session, ui

modules = (props, session, ops, ui)   # registered in this order, unregistered in reverse


def register():
    for module in modules:
        module.register()


def unregister():
    for module in reversed(modules):
        module.unregister()
