# SPDX-License-Identifier: GPL-3.0-or-later
"""ONNX Runtime sessions: provider choice and fallback, caching, reporting.

The model here is a test fixture built with ``onnx.helper`` (y = x @ W + b), not a
product model.
"""

import os
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from blender_addon.core import inference


def _tiny_model(path, scale=1.0):
    w = (np.arange(12, dtype=np.float32).reshape(3, 4) * scale)
    b = np.ones(4, dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return w, b


@pytest.fixture(autouse=True)
def _fresh_cache():
    inference.clear_cache()
    yield
    inference.clear_cache()


def test_run_matches_numpy(tmp_path):
    w, b = _tiny_model(tmp_path / "tiny.onnx")
    x = np.random.default_rng(0).normal(size=(7, 3))  # float64 in: cast by run()
    out = inference.run(tmp_path / "tiny.onnx", {"x": x}, choice="CPU")["y"]
    np.testing.assert_allclose(out, x.astype(np.float32) @ w + b, rtol=1e-6, atol=1e-6)


def test_sessions_are_cached_per_file_and_choice(tmp_path):
    _tiny_model(tmp_path / "tiny.onnx")
    s1, _ = inference.get_session(tmp_path / "tiny.onnx", "CPU")
    s2, _ = inference.get_session(tmp_path / "tiny.onnx", "CPU")
    s3, _ = inference.get_session(tmp_path / "tiny.onnx", "AUTO")
    assert s1 is s2
    assert s3 is not s1


def test_retrained_model_is_reloaded(tmp_path):
    path = tmp_path / "tiny.onnx"
    _tiny_model(path, scale=1.0)
    x = np.ones((1, 3), np.float32)
    first = inference.run(path, {"x": x}, "CPU")["y"]
    time.sleep(0.01)
    _tiny_model(path, scale=2.0)
    os.utime(path, (time.time() + 5, time.time() + 5))
    second = inference.run(path, {"x": x}, "CPU")["y"]
    assert not np.allclose(first, second)


def test_auto_uses_cuda_only_when_offered(tmp_path):
    _tiny_model(tmp_path / "tiny.onnx")
    _, info = inference.get_session(tmp_path / "tiny.onnx", "AUTO")
    if inference.CUDA in inference.available_providers():
        assert info.provider == inference.CUDA
    else:
        assert info.provider == inference.CPU and not info.fell_back
    assert inference.last_session_info() == info


def test_cuda_request_falls_back_to_cpu_with_reason(tmp_path):
    _tiny_model(tmp_path / "tiny.onnx")
    _, info = inference.get_session(tmp_path / "tiny.onnx", "CUDA")
    if inference.CUDA in inference.available_providers():
        pytest.skip("this ONNX Runtime offers CUDA; fallback not exercised")
    assert info.provider == inference.CPU
    assert info.requested == "CUDA"
    assert info.fell_back and "CUDA" in info.reason
    assert info.label.startswith("CPU (fallback")


def test_provider_choice_validated():
    with pytest.raises(ValueError):
        inference.providers_for("TPU")
    assert inference.providers_for("CPU") == [inference.CPU]


def test_clear_errors(tmp_path):
    with pytest.raises(inference.InferenceError, match="not found"):
        inference.get_session(tmp_path / "missing.onnx")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(inference.InferenceError, match="cannot load"):
        inference.get_session(tmp_path / "broken.onnx", "CPU")
    _tiny_model(tmp_path / "tiny.onnx")
    with pytest.raises(inference.InferenceError, match="input 'x' missing"):
        inference.run(tmp_path / "tiny.onnx", {"y": np.zeros((1, 3))}, "CPU")


def test_offered_choices_follow_the_build():
    offered = inference.available_providers()
    choices = inference.offered_choices()
    assert choices[0] == "AUTO" and choices[-1] == "CPU"
    for name in ("CUDA", "DIRECTML", "COREML"):
        assert (name in choices) == (inference.PROVIDERS[name] in offered)


@pytest.mark.parametrize("choice", ["DIRECTML", "COREML"])
def test_gpu_request_not_offered_falls_back_with_reason(tmp_path, choice):
    if inference.PROVIDERS[choice] in inference.available_providers():
        pytest.skip(f"this ONNX Runtime offers {choice}; fallback not exercised")
    _tiny_model(tmp_path / "tiny.onnx")
    _, info = inference.get_session(tmp_path / "tiny.onnx", choice)
    assert info.provider == inference.CPU and info.fell_back
    assert info.reason == f"{inference.LABELS[inference.PROVIDERS[choice]]} not offered by this ONNX Runtime"
    assert info.label.startswith("CPU (fallback: ")
    assert inference.providers_for(choice) == [inference.CPU]
