# SPDX-License-Identifier: GPL-3.0-or-later
"""The headless pipeline of the installed extension (``facsimile rig|bake|demo``) in a fresh process."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.takes import Take, write_llf_csv
from bl_ext.user_default.facsimile.cli import commands as cli
from bl_ext.user_default.facsimile import animation
from blender_helpers import monkey_head, run_cli



def glb_json(path: Path) -> dict:
    data = path.read_bytes()
    length = struct.unpack("<I", data[12:16])[0]
    return json.loads(data[20:20 + length])


def jaw_curve(obj) -> np.ndarray:
    fc = next(fc for fc in animation.assigned_fcurves(obj.data.shape_keys)
              if fc.data_path == animation.key_path("jawOpen"))
    co = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A head as OBJ and a take as CSV, written once for the module."""
    tmp = tmp_path_factory.mktemp("cli")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    monkey_head("Head")
    bpy.ops.wm.obj_export(filepath=str(tmp / "head.obj"), export_selected_objects=True,
                          export_materials=False, forward_axis="NEGATIVE_Y", up_axis="Z")
    t = np.arange(36) / 24.0
    w = np.zeros((36, 52), np.float32)
    w[:, arkit.ARKIT_INDEX["jawOpen"]] = 0.5 - 0.5 * np.cos(2 * np.pi * t)
    w[:, arkit.ARKIT_INDEX["eyeBlinkLeft"]] = np.clip(np.sin(3 * t), 0, 1)
    write_llf_csv(tmp / "take.csv", Take(times=t, names=list(arkit.ARKIT_52), weights=w, fps=24.0))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return tmp


def test_help_is_quick_and_lists_commands(tmp_path):
    out = run_cli("--help", home=tmp_path)
    assert out.returncode == 0
    for command in ("rig", "bake", "demo"):
        assert command in out.stdout


def test_rig_then_bake_then_glb_take(files, addon):
    home = files / "home"
    # --all-keys: Suzanne has no tongue, tongueOut is created (empty) for a 52-key pipeline.
    out = run_cli("rig", files / "head.obj", "--out", files / "rigged.blend", "--all-keys", home=home)
    assert out.returncode == 0, out.stderr
    assert "[facsimile] rigging 'head'" in out.stdout.lower()
    assert (files / "rigged.blend").exists()

    out = run_cli("bake", files / "rigged.blend", "--take", files / "take.csv", "--out",
                  files / "baked.blend", "--glb", files / "baked.glb", home=home)
    assert out.returncode == 0, out.stderr
    stages = [line for line in out.stdout.splitlines() if line.startswith("[facsimile]")]
    assert any("reading take" in s for s in stages) and any("baking onto" in s for s in stages)
    gltf = glb_json(files / "baked.glb")
    assert any(c["target"]["path"] == "weights" for a in gltf["animations"] for c in a["channels"])
    assert len(gltf["meshes"][0]["primitives"][0]["targets"]) == 52

    bpy.ops.wm.open_mainfile(filepath=str(files / "baked.blend"))
    head = next(o for o in bpy.data.objects if o.type == "MESH")
    baked = jaw_curve(head)
    assert len(animation.assigned_fcurves(head.data.shape_keys)) == 52
    assert baked[:, 1].max() > 0.99 and baked[0, 1] < 0.01

    # The glTF just written is itself a take (ARKit morph animation), and an OBJ without
    # shape keys is a target that gets rigged on the way.
    out = run_cli("bake", files / "head.obj", "--take", files / "baked.glb", "--out",
                  files / "again.blend", home=home)
    assert out.returncode == 0, out.stderr
    assert "rigging" in out.stdout
    bpy.ops.wm.open_mainfile(filepath=str(files / "again.blend"))
    head = next(o for o in bpy.data.objects if o.type == "MESH")
    again = jaw_curve(head)
    np.testing.assert_allclose(again[:, 1], baked[:, 1], atol=2e-3)


@pytest.mark.parametrize("args,message", [
    (("bake", "{head}", "--take", "{dir}/missing.csv"), "missing.csv': no such file"),
    (("bake", "{head}", "--take", "{dir}/bad.csv"), "missing column 'Timecode'"),
    (("bake", "{dir}/head.xyz", "--take", "{dir}/take.csv"), "unsupported mesh file"),
    (("rig", "{dir}/nothing.obj"), "nothing.obj: no such file"),
])
def test_bad_input_exits_2_with_one_line(files, args, message):
    (files / "bad.csv").write_text("Foo,Bar\n1,2\n")
    (files / "head.xyz").write_text("?")
    out_file = files / "never.blend"
    argv = [a.format(head=files / "head.obj", dir=files) for a in args] + ["--out", str(out_file)]
    out = run_cli(*argv, home=files / "home")
    assert out.returncode == 2
    errors = [line for line in out.stderr.splitlines() if line.startswith("facsimile: error:")]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert not out_file.exists()


def test_demo_writes_blend_and_glb(tmp_path):
    out = run_cli("demo", "--out", tmp_path / "out", "--no-render", home=tmp_path)
    assert out.returncode == 0, out.stderr
    for name in ("demo.blend", "demo.glb", "demo_take.csv"):
        assert (tmp_path / "out" / name).exists()
    assert "baked" in out.stdout


def test_blender_command_is_registered(addon):
    assert cli._handle is not None          # blender --command facsimile …
    assert cli._blender_command(["--help"]) == 0
    assert cli._blender_command(["bake"]) == 2   # usage error: a status, never an exit
