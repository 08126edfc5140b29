# SPDX-License-Identifier: GPL-3.0-or-later
"""Any size (issue 3, must-show 4): a dense head is rigged through the proxy as well as a
light one, and the per-vertex results are what the shape keys are written from.

The facecap test head midpoint-subdivided keeps its surface and its true shapes exactly
(``evaluate.facecap_dense_heads``), so the dense rig can be checked against the truth and
against the light head's own rig at the shared vertices."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core import arkit, rig


@pytest.fixture(scope="module")
def heads(facecap_path):
    from model_export import evaluate

    base = evaluate.facecap_head()
    return base, evaluate.facecap_dense_heads((1, 2))


def _rig(head):
    from model_export import evaluate

    result = rig.predict(head.verts, head.faces, provider="CPU")
    pred = evaluate._in_head_order(head, result.ict_deltas)
    return result, pred, evaluate.errors_mm(pred, head.gt, head.unit_mm)


def test_dense_heads_are_rigged_as_well_as_the_light_one(heads):
    base, dense = heads
    _, base_pred, base_err = _rig(base)
    for head in dense:                                  # 10k and 41k vertices, proxies of <= 3k
        result, pred, err = _rig(head)
        assert len(head.verts) > 3 * len(base.verts)
        assert np.isfinite(result.ict_deltas).all() and result.ict_deltas.dtype == np.float32
        assert err["mae"] < 1.03 * base_err["mae"], (head.name, err["mae"], base_err["mae"])
        assert err["active_mae"] < 1.03 * base_err["active_mae"]
        change = np.linalg.norm(pred[:, :len(base.verts)] - base_pred, axis=-1) * head.unit_mm
        assert change.mean() < 0.1, (head.name, change.mean())          # measured 0.05 mm
        # Region weights reach every skin vertex and sum to one there, zero elsewhere.
        sums = result.region_weights.sum(1)
        np.testing.assert_allclose(sums[result.skin], 1.0, atol=1e-4)
        assert not result.region_weights[~result.skin].any()


def test_result_views_agree(heads):
    base, _ = heads
    result = rig.predict(base.verts, base.faces, provider="CPU")
    # tongueOut has no ICT shape: it comes from the rules (core.face_rules) or is still.
    tongue = np.zeros_like(result.ict_deltas[0]) if "tongueOut" not in result.extra else result.extra["tongueOut"]
    expected = arkit.ict_shapes_to_arkit(result.ict_deltas)
    expected[arkit.ARKIT_INDEX["tongueOut"]] = tongue
    np.testing.assert_allclose(result.arkit_deltas(), expected, atol=1e-6)
    named = dict(result.named_deltas("ARKIT"))
    assert list(named) == list(arkit.ARKIT_52)
    np.testing.assert_array_equal(named["browInnerUp"], result.ict_deltas[arkit.ICT_INDEX["browInnerUp_L"]]
                                  + result.ict_deltas[arkit.ICT_INDEX["browInnerUp_R"]])
    np.testing.assert_array_equal(named["tongueOut"], tongue)
    ict = dict(result.named_deltas("ICT53"))
    np.testing.assert_array_equal(ict["jawOpen"], result.ict_deltas[arkit.ICT_INDEX["jawOpen"]])
    # Loose parts that follow the jaw move in the jaw shapes only.
    moving = np.flatnonzero(np.abs(result.ict_deltas[:, result.jaw_part]).max(axis=(1, 2)) > 0)
    assert result.jaw_part.any() and set(arkit.ICT_53[i] for i in moving) <= {"jawOpen", "jawForward", "jawLeft",
                                                                              "jawRight"}
