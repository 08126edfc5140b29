# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile bakes (issue 15): drivers, renamed keys, absurd numbers, linked targets."""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.takes import Take, write_llf_csv
from blender_helpers import monkey_head, select_only
from hostile_helpers import assert_file_same, file_state, memory_ceiling, refused  # noqa: F401


@pytest.fixture
def rigged(addon, tmp_path):
    """A rigged Suzanne and a short take as the scene's source."""
    t = np.arange(24) / 24.0
    path = tmp_path / "take.csv"
    write_llf_csv(path, Take(times=t, names=list(arkit.ARKIT_52),
                             weights=0.5 + 0.4 * np.sin(t[:, None] * np.arange(1, 53))))
    assert bpy.ops.facsimile.import_take(filepath=str(path)) == {"FINISHED"}
    obj = monkey_head()
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    select_only(obj)
    return obj


def test_bake_onto_driven_keys_is_refused(rigged):
    """Case 6: FINISHED '52 keys' while the driver won and nothing moved."""
    fc = rigged.data.shape_keys.key_blocks["jawOpen"].driver_add("value")
    fc.driver.expression = "0.25"
    bpy.context.scene.frame_set(bpy.context.scene.frame_current)   # the driver has run
    before = file_state()
    msg = refused(bpy.ops.facsimile.bake)
    assert "drivers set 1 of its keys (jawOpen)" in msg and "delete those drivers" in msg
    assert_file_same(before, file_state())


def test_renamed_keys_are_reported_at_bake(rigged):
    rigged.data.shape_keys.key_blocks["jawOpen"].name = "myJaw"
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    # The report is printed; what it says is checked through the same function the operator uses.
    from bl_ext.user_default.facsimile.drive import bake, targets
    plan = targets.plan_target(rigged, "DIRECT")
    assert bake.missing_channels(plan) == ["jawOpen"]


@pytest.mark.parametrize("options, message", [
    ({"time_offset": float("nan")}, "time offset nan"),
    ({"time_offset": 1e30}, "time offset 1e+30"),
    ({"smoothing": float("inf")}, "must be between 0 and 1000"),
])
def test_absurd_numbers_are_refused(rigged, options, message):
    before = file_state()
    msg = refused(bpy.ops.facsimile.bake, **options)
    assert message in msg
    assert_file_same(before, file_state())


def test_too_many_keyframes_are_refused(rigged):
    before = file_state()
    msg = refused(bpy.ops.facsimile.bake, use_take_range=False, frame_start=1, frame_end=400_000)
    assert "M keyframes" in msg and "frame step" in msg
    assert_file_same(before, file_state())
