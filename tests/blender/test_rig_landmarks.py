# SPDX-License-Identifier: GPL-3.0-or-later
"""Rig Face looks for face landmarks on a render of the head and says what it found."""

from __future__ import annotations

import bpy

from blender_helpers import facecap_object


def test_rig_reports_landmarks_on_facecap(addon, facecap_path):
    obj, _gt, _names, _n = facecap_object(facecap_path)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    report = bpy.context.scene.facsimile_rig.last_report
    assert "face landmarks found" in report, report
    assert "no face found" not in report


def test_rig_reports_no_landmarks_on_suzanne(addon):
    bpy.ops.mesh.primitive_monkey_add(size=2.0)
    obj = bpy.context.object
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    report = bpy.context.scene.facsimile_rig.last_report
    assert "no face found on a front render of the head: rigged without landmarks" in report, report
    assert obj.data.shape_keys is not None           # rigged all the same
