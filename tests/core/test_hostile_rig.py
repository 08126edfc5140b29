# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile heads and models for the rig core (issue 15): one clear RigError, never an
internal error, never NaN in the result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import data_dir

from blender_addon.core import rig
from blender_addon.core.inference import MODELS_DIR

DATA = data_dir()
FACECAP_NPZ = DATA / "facecap" / "facecap.npz"


@pytest.fixture(scope="module")
def facecap():
    if not FACECAP_NPZ.exists():
        pytest.skip(f"facecap data not found at {FACECAP_NPZ}")
    with np.load(FACECAP_NPZ) as d:
        return d["neutral"].astype(float), d["faces"].astype(np.int64)


def test_a_model_that_computes_nan_is_refused(facecap, tmp_path):
    """Case 4: a model that loads but yields NaN wrote NaN into all 52 keys."""
    onnx = pytest.importorskip("onnx")
    from onnx import helper, numpy_helper

    model = onnx.load(str(MODELS_DIR / rig.RIG_MODEL))
    out = next(o for o in model.graph.output if o.name == "responses")
    for node in model.graph.node:
        node.output[:] = ["responses_raw" if n == "responses" else n for n in node.output]
    model.graph.initializer.append(numpy_helper.from_array(np.array(np.nan, np.float32), "nan_const"))
    model.graph.node.append(helper.make_node("Mul", ["responses_raw", "nan_const"], [out.name]))
    path = tmp_path / "nan_rig.onnx"
    onnx.save(model, str(path))
    with pytest.raises(rig.RigError, match=r"produced invalid numbers \(NaN\).*nothing was written"):
        rig.predict(*facecap, rig_model=str(path))


def test_inward_normals_are_rigged_as_outward(facecap):
    verts, faces = facecap
    good = rig.predict(verts, faces)
    flipped = rig.predict(verts, faces[:, ::-1])
    assert not good.notes
    assert any("normals point inward" in n for n in flipped.notes)
    np.testing.assert_allclose(flipped.arkit_delta("jawOpen"), good.arkit_delta("jawOpen"), atol=1e-5)


CUBE = (np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], float),
        np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],
                  [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]]))


@pytest.mark.parametrize("mesh, message", [
    (CUBE, "only 8 vertices"),
    ((np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1], [1, 0, 1]], float), np.array([[0, 1, 2], [1, 3, 2]])),
     "only 4 vertices"),
    ((np.c_[np.arange(10.0), np.zeros(10), np.zeros(10)], np.array([[i, i + 1, i + 2] for i in range(8)])),
     "flat as a line"),
])
def test_degenerate_meshes_are_one_clear_error(mesh, message):
    with pytest.raises(rig.RigError, match=message):
        rig.predict(*mesh)


def test_two_heads_in_one_mesh_are_named(facecap):
    verts, faces = facecap
    shift = np.array([1.5 * np.ptp(verts[:, 0]), 0, 0])
    both = rig.prepare_head(np.concatenate([verts, verts + shift]), np.concatenate([faces, faces + len(verts)]))
    assert any("2 separate surfaces" in n for n in both.notes)
