# SPDX-License-Identifier: GPL-3.0-or-later
"""FACS slider panel helpers in real Blender: grouping, mirror, reset, key all."""

import bpy
import numpy as np

from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.rig import sliders, ui


def _rigged_monkey():
    bpy.ops.mesh.primitive_monkey_add()
    obj = bpy.context.object
    assert bpy.ops.facsimile.generate_shapes(naming="ARKIT_LR") == {"FINISHED"}
    return obj


def test_sliders_found_under_any_naming(addon):
    obj = _rigged_monkey()
    keys = ui.slider_keys(obj)
    assert set(keys) == set(arkit.ARKIT_52) - {"tongueOut"}     # Suzanne has no tongue to move
    assert keys["eyeBlinkLeft"].name == "eyeBlink_L"
    grouped = [n for names in arkit.SLIDER_GROUPS.values() for n in names]
    assert sorted(grouped) == sorted(arkit.ARKIT_52)
    assert bpy.types.FACSIMILE_PT_sliders.poll(bpy.context)


def test_mirror_moves_the_partner(addon):
    obj = _rigged_monkey()
    keys = ui.slider_keys(obj)
    sliders.sync_mirror(obj)                         # records the current values
    keys["eyeBlinkLeft"].value = 0.7
    keys["mouthSmileRight"].value = 0.4
    moved = sliders.sync_mirror(obj)
    assert keys["eyeBlinkRight"].value == np.float32(0.7)
    assert keys["mouthSmileLeft"].value == np.float32(0.4)
    assert set(moved) == {"eyeBlinkRight", "mouthSmileLeft"}
    keys["jawOpen"].value = 0.5                      # no partner: nothing else moves
    assert sliders.sync_mirror(obj) == []


def test_reset_and_key_all(addon):
    obj = _rigged_monkey()
    keys = ui.slider_keys(obj)
    keys["jawOpen"].value = 0.8
    keys["eyeBlinkLeft"].value = 0.3
    bpy.context.scene.frame_set(12)
    assert bpy.ops.facsimile.key_sliders() == {"FINISHED"}
    assert bpy.ops.facsimile.reset_sliders() == {"FINISHED"}
    assert all(kb.value == 0.0 for kb in keys.values())
    # The keys hold the pose of frame 12: evaluating that frame brings it back.
    bpy.context.scene.frame_set(13)
    bpy.context.scene.frame_set(12)
    assert abs(keys["jawOpen"].value - 0.8) < 1e-6 and abs(keys["eyeBlinkLeft"].value - 0.3) < 1e-6
