# SPDX-License-Identifier: GPL-3.0-or-later
"""Facsimile: neural facial rigging and retargeting for Blender.

This file only registers. Every feature lives in its own folder (``rig/``, ``drive/`` for
performances, ``live/`` for phone capture, ``video/``, ``cli/`` for the command line) over the bpy-free ``core/`` package
(docs/architecture.md); bpy-dependent modules are
imported inside :func:`register` so that ``blender_addon.core`` stays importable
without Blender (training and the tests import it).
"""

_modules = []


def _feature_modules():
    from . import cli, drive, jobs, live, prefs, rig, video

    return [prefs, jobs, rig, drive, live, video, cli]


def register():
    global _modules
    _modules = _feature_modules()
    for module in _modules:
        module.register()


def unregister():
    global _modules
    for module in reversed(_modules or _feature_modules()):
        module.unregister()
    _modules = []
    from .core import inference

    inference.clear_cache()
