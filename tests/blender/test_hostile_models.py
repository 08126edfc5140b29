# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile installations (issue 15): the rig's or the face tracker's model files missing or
corrupt, and a GPU asked for that this build cannot use. A broken model is one line with
the file unchanged; a missing GPU is the CPU doing the work and the report saying so."""

from __future__ import annotations

import shutil

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile.core import inference
from bl_ext.user_default.facsimile.core import rig as core_rig
from bl_ext.user_default.facsimile.core.video import landmarker
from blender_helpers import ADDON_MODULE, monkey_head
from hostile_helpers import assert_file_same, file_state, memory_ceiling, refused  # noqa: F401


def _models_dir(tmp_path, broken: str):
    """A copy of the shipped models folder with ``broken`` model(s) missing or corrupt."""
    folder = tmp_path / "models"
    shutil.copytree(inference.MODELS_DIR, folder)
    for name in (core_rig.RIG_MODEL, core_rig.LOCALIZER_MODEL):
        path = folder / name
        if broken == "missing":
            path.unlink()
        elif broken == "corrupt":
            path.write_bytes(b"\x08\x07" + b"not an onnx graph" * 64)
        elif broken == "truncated":
            data = path.read_bytes()
            path.write_bytes(data[: len(data) // 3])
    return folder


@pytest.mark.parametrize("broken, message", [("missing", "model file not found"),
                                             ("corrupt", "cannot load model"),
                                             ("truncated", "cannot load model")])
def test_broken_rig_models_are_one_line_and_nothing_written(addon, tmp_path, monkeypatch, broken, message):
    monkeypatch.setattr(inference, "MODELS_DIR", _models_dir(tmp_path, broken))
    monkey_head()
    before = file_state()
    msg = refused(bpy.ops.facsimile.rig)
    assert message in msg and (core_rig.RIG_MODEL in msg or core_rig.LOCALIZER_MODEL in msg), msg
    assert_file_same(before, file_state())


@pytest.mark.parametrize("broken", ["missing", "corrupt"])
def test_broken_face_tracker_models_are_one_line(addon, tmp_path, monkeypatch, broken):
    folder = tmp_path / "mediapipe"
    shutil.copytree(landmarker.MODEL_DIR, folder)
    if broken == "missing":
        (folder / landmarker.LANDMARKS).unlink()
        message = f"face tracking models missing in {folder}: {landmarker.LANDMARKS}"
    else:
        (folder / landmarker.LANDMARKS).write_bytes(b"garbage" * 100)
        message = f"cannot load model {landmarker.LANDMARKS}"
    monkeypatch.setattr(landmarker, "MODEL_DIR", folder)
    video = tmp_path / "any.mp4"
    video.write_bytes(b"\x00" * 64)      # the models are looked for before the file is read
    monkey_head()
    before = file_state()
    msg = refused(bpy.ops.facsimile.import_video, filepath=str(video))
    assert message in msg, msg
    assert bpy.context.scene.facsimile_drive.source is None
    assert_file_same(before, file_state())


def test_cuda_asked_for_on_the_cpu_build_runs_on_the_cpu_and_says_so(addon, capfd):
    if "CUDA" in inference.offered_choices():
        pytest.skip("this build offers CUDA; the fallback is tested with the CUDA variant zip")
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.execution_provider_name = "CUDA"      # saved on a machine with the NVIDIA build, say
    try:
        obj = monkey_head()
        capfd.readouterr()
        assert bpy.ops.facsimile.rig() == {"FINISHED"}
        out = capfd.readouterr()
        text = out.out + out.err
        assert "(CPU (fallback: CUDA" in text, text
        assert bpy.context.scene.facsimile_rig.last_provider.startswith("CPU (fallback: CUDA")
        keys = obj.data.shape_keys.key_blocks
        assert len(keys) == 52                   # Basis + 51: Suzanne has no tongue
        co = np.empty(len(obj.data.vertices) * 3, np.float32)
        keys["jawOpen"].data.foreach_get("co", co)
        assert np.isfinite(co).all()
    finally:
        prefs.execution_provider_name = "AUTO"
