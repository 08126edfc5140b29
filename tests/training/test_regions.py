# SPDX-License-Identifier: GPL-3.0-or-later
"""Facial region labels on the ICT skin: names module, derived labels, stored files."""

from __future__ import annotations


import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from blender_addon.core import regions as core
from model_export.data import regions as reglib
from model_export.data.ict import SKIN_VERTEX_COUNT, load_ict


# --- the add-on's names module (no data needed) -------------------------------------------------

def test_region_names_module():
    names = core.REGION_NAMES
    assert 16 <= len(names) <= 24 and len(set(names)) == len(names)
    assert set(core.REGION_DESCRIPTIONS) == set(names)
    assert core.group_name("brow_L") == "FX_brow_L" and core.group_name(0) == "FX_" + names[0]
    assert core.region_of_group("FX_nose") == "nose" and core.region_of_group("nose") is None
    with pytest.raises(KeyError):
        core.group_name("eyebrow")
    for name, twin in core.REGION_MIRROR.items():
        assert core.REGION_MIRROR[twin] == name
        assert (name == twin) == (not name.endswith(("_L", "_R")))
    mirror = np.asarray(core.REGION_MIRROR_INDEX)
    assert (mirror[mirror] == np.arange(len(names))).all()


# --- labels built from the shared ICT data ------------------------------------------------------

@pytest.fixture(scope="module")
def ict(ict_path):
    return load_ict(ict_path)


@pytest.fixture(scope="module")
def built(ict):
    labels, names = reglib.build_region_labels(ict)
    return labels, names


def _top_vertices(ict, shape: str, count: int) -> np.ndarray:
    magnitude = np.linalg.norm(ict.exp_basis[ict.exp_index(shape)], axis=1)
    return np.argsort(-magnitude)[:count]


@pytest.mark.data
def test_every_vertex_one_label_every_region_used(built):
    labels, names = built
    assert names == list(core.REGION_NAMES)
    assert labels.shape == (SKIN_VERTEX_COUNT,) and labels.dtype == np.int8
    assert labels.min() >= 0 and labels.max() < len(names)
    counts = np.bincount(labels, minlength=len(names))
    assert (counts > 0).all(), dict(zip(names, counts))


@pytest.mark.data
def test_left_right_regions_are_mirrors(ict, built):
    labels, names = built
    points = ict.neutral.astype(np.float64)
    twin = reglib.mirror_map(points)
    np.testing.assert_array_equal(labels[twin], np.asarray(core.REGION_MIRROR_INDEX)[labels])
    for r, name in enumerate(names):
        x = points[labels == r, 0]
        if name.endswith("_L"):
            assert (x > 0).all(), name
            assert (labels == names.index(core.REGION_MIRROR[name])).sum() == len(x)
        elif name.endswith("_R"):
            assert (x < 0).all(), name


@pytest.mark.data
def test_regions_are_contiguous(ict, built):
    labels, names = built
    adjacency = reglib.vertex_adjacency(ict.faces, ict.n_vertices)
    for r, name in enumerate(names):
        members = np.flatnonzero(labels == r)
        pieces, _ = connected_components(adjacency[members][:, members], directed=False)
        assert pieces == 1, f"{name} is in {pieces} pieces"


@pytest.mark.data
def test_regions_localize_facs_shapes(ict, built):
    labels, names = built
    index = {n: i for i, n in enumerate(names)}
    jaw = [index[n] for n in ("chin", "jaw_L", "jaw_R", "lower_lip")]
    assert np.isin(labels[_top_vertices(ict, "jawOpen", 200)], jaw).mean() >= 0.8
    assert (labels[_top_vertices(ict, "eyeBlink_L", 100)] == index["upper_lid_L"]).mean() >= 0.7
    assert (labels[_top_vertices(ict, "browDown_R", 100)] == index["brow_R"]).mean() >= 0.7
    smile = labels[_top_vertices(ict, "mouthSmile_L", 100)]
    assert (smile == index["mouth_corner_L"]).mean() >= 0.7
    assert (labels[_top_vertices(ict, "mouthRollUpper", 100)] == index["upper_lip"]).mean() >= 0.9
    # Static parts: ears and scalp are never where an expression moves most.
    moved = np.unique(np.concatenate([_top_vertices(ict, n, 50) for n in ict.exp_names]))
    static = [index[n] for n in ("ear_L", "ear_R", "scalp")]
    assert not np.isin(labels[moved], static).any()


@pytest.mark.data
def test_stored_labels_match_a_fresh_build(built):
    labels, names = built
    stored = reglib.load_region_labels()
    assert stored.dtype == np.int8
    np.testing.assert_array_equal(stored, labels,
                                  err_msg="rerun `python -m model_export.data.regions`")


@pytest.mark.data
def test_region_figure_renders(ict, built, tmp_path):
    pytest.importorskip("matplotlib")
    from model_export.data.regions_figure import render_region_figure

    path = render_region_figure(ict.neutral, ict.faces, built[0], tmp_path / "regions.png", dpi=30)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_smoothing_respects_sides():
    # A path 0-1-2-3-4 with x = -2..2; vertex 2 is on the midline.
    import scipy.sparse as sp

    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
    adjacency = sp.coo_matrix((np.ones(8), (edges.ravel(), edges[:, ::-1].ravel())), shape=(5, 5))
    adjacency = adjacency.tocsr()
    x = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    brow_l, brow_r = core.REGION_INDEX["brow_L"], core.REGION_INDEX["brow_R"]
    labels = np.array([brow_r, brow_r, brow_l, brow_l, brow_l])
    smoothed = reglib.smooth_labels(labels, adjacency, reglib._side_allowed(x), rounds=2)
    assert smoothed[2] not in (brow_l, brow_r)            # the midline takes no sided region
    assert smoothed[0] == brow_r and smoothed[4] == brow_l
