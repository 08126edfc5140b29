# SPDX-License-Identifier: GPL-3.0-or-later
"""Per-scene settings of a feature: its property groups, hung on ``bpy.types.Scene``."""

import bpy


def scene_settings_factory(attribute: str, group, classes, on_unregister=None):
    """``register, unregister`` for ``classes`` plus ``Scene.<attribute>`` pointing at ``group``.

    The settings live in the .blend; ``on_unregister`` runs last (e.g. to drop caches).
    """
    register_classes, unregister_classes = bpy.utils.register_classes_factory(classes)

    def register():
        register_classes()
        setattr(bpy.types.Scene, attribute, bpy.props.PointerProperty(type=group))

    def unregister():
        delattr(bpy.types.Scene, attribute)
        unregister_classes()
        if on_unregister is not None:
            on_unregister()

    return register, unregister
