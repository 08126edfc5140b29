# SPDX-License-Identifier: GPL-3.0-or-later
"""Artists' training heads (model_export.data.artist, .proportions, .ict_parts): the variants are
what they say, ground truth reaches every vertex the networks see, and every entry went
through the add-on's own preprocessing."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.rig import prepare_head
from model_export.data import artist, dataset
from model_export.data.ict import SKIN_VERTEX_COUNT, load_ict
from model_export.data.ict_parts import PARTS, load_ict_parts
from model_export.data.proportions import ARTIST_FEATURES, RadialShift, artist_warp, flipped_share
from model_export.data.regions import load_region_labels


@pytest.fixture(scope="module")
def labels():
    return load_region_labels()


@pytest.fixture(scope="module")
def parts(ict_path, labels):
    return load_ict_parts(labels, ict_path)


def test_parts_are_ict_with_its_inner_parts(parts, labels):
    assert set(np.unique(parts.part)) == set(range(len(PARTS)))
    assert np.array_equal(parts.labels[:SKIN_VERTEX_COUNT], labels)
    skin = load_ict(None)
    assert np.allclose(parts.neutral[:SKIN_VERTEX_COUNT], skin.neutral)
    # The jaw carries the lower teeth (the truth of loose and welded teeth); ICT's expressions
    # never turn the eyeballs (the core's eye rules do, after the networks).
    jaw = np.linalg.norm(parts.exp_basis[skin.exp_index("jawOpen")], axis=1)
    assert jaw[parts.mask("teeth")].max() > 1.0
    assert np.abs(parts.exp_basis[:, parts.mask("eyeballs")]).max() == 0.0


def test_shift_moves_what_it_says_and_does_not_fold():
    piece = RadialShift("s", np.zeros(3), np.array([0.9, 0.0, 0.0]), 1.0)
    x = np.linspace(-4, 4, 2001)
    moved = x + piece.displacement(np.stack([x, 0 * x, 0 * x], 1))[:, 0]
    assert np.all(np.diff(moved) > 0)                   # |t| < 1.65 r: monotone, no fold
    assert moved[1000] == pytest.approx(0.9)


def test_artist_warp_reaches_the_issue_proportions_without_folds(parts):
    n = parts.neutral.astype(np.float64)
    lm = n[parts.landmarks]
    skin_faces = parts.faces[(parts.faces < SKIN_VERTEX_COUNT).all(1)]
    eye_gap = lambda p: p[42:48].mean(0)[0] - p[36:42].mean(0)[0]     # noqa: E731
    seen = {name: [] for name in ARTIST_FEATURES}
    for seed in range(12):
        warp, values = artist_warp(lm, np.random.default_rng(seed), n[:SKIN_VERTEX_COUNT], skin_faces)
        assert flipped_share(n, warp.apply(n), skin_faces) == 0.0
        for k, v in values.items():
            seen[k].append(v)
        w = warp.apply(lm)
        if "eye_spacing" in values and not {"eye_size", "mouth_width"} & set(values):
            assert eye_gap(w) / eye_gap(lm) == pytest.approx(values["eye_spacing"], rel=0.1)
        if values.get("snout", 0) > 0.2:
            assert w[51, 1] < lm[51, 1] - 1.0           # the mouth comes forward (-Y) by > 1 cm
    assert max(seen["eye_size"]) > 1.6 and max(seen["eye_spacing"]) > 1.3 and min(seen["eye_spacing"]) < 0.95
    assert min(seen["lower_face"]) < 0.8 and max(seen["lower_face"]) > 1.2


def test_choices_are_distributions():
    for options, probs in artist.CHOICES.values():
        assert len(options) == len(probs) and sum(probs) == pytest.approx(1.0)


def _entry(parts, seed=0, **choices):
    rng = np.random.default_rng(seed)
    spec = artist.ArtistSpec(**choices)
    id_coeffs = dataset.random_identity(rng)
    verts, faces, deltas, labels = artist.artist_mesh(parts, spec, id_coeffs, rng)
    return spec, verts, faces, deltas, labels, id_coeffs


def test_closed_sockets_are_cut_away_before_the_networks(parts):
    spec, verts, faces, deltas, labels, idc = _entry(parts, eyes="closed", mouth="closed", eyeballs="loose",
                                                     mouth_parts="loose", density="mid", proportions="none")
    head = prepare_head(verts, faces, cavities=True)
    assert head.cavity.sum() > 0.05 * head.skin.sum()
    entry = artist.through_addon(verts, faces, deltas, labels, "t", idc)
    assert np.array_equal(entry.prepared.verts, head.prepared.verts)     # what the add-on gives the networks
    assert entry.deltas.shape == (53, entry.prepared.n, 3) and len(entry.labels) == entry.prepared.n
    # Ground truth: each vertex the networks see is a vertex of the head; it carries that vertex's motion.
    canon = head.norm.apply(verts)
    source = np.argmin(((entry.prepared.verts[:, None, :2] - canon[None, :, :2]) ** 2).sum(-1)
                       + (entry.prepared.verts[:, None, 2] - canon[None, :, 2]) ** 2, axis=1)
    assert np.allclose(entry.deltas, head.norm.apply_vectors(deltas[:, source]), atol=1e-5)
    assert np.array_equal(entry.labels, labels[source])


def test_low_poly_and_welded_variants(parts):
    spec, verts, faces, *_ = _entry(parts, seed=1, crop="narrow_face", density="low", eyeballs="welded",
                                    proportions="none")
    assert 500 <= len(verts) <= 1600                     # the narrow crop is all face
    from blender_addon.core.mesh.topology import connected_components
    welded = connected_components(len(verts), faces)
    _, loose_verts, loose_faces, *_ = _entry(parts, seed=1, crop="narrow_face", density="low",
                                             eyeballs="loose", proportions="none")
    loose = connected_components(len(loose_verts), loose_faces)
    assert len(np.unique(welded)) < len(np.unique(loose))  # eyeballs merged into the lids


def test_pool_entries_are_deterministic_and_mixed(ict_path, parts, labels):
    ict = load_ict(ict_path)
    a = artist.pool_entry(ict, labels, parts, 5, 3, artist_share=1.0)
    b = artist.pool_entry(ict, labels, parts, 5, 3, artist_share=1.0)
    assert a.name == b.name and np.array_equal(a.deltas, b.deltas)
    classic = artist.classic_entry(ict, labels, np.random.default_rng(4), "classic")
    assert classic.prepared.n <= 3000
    assert np.isfinite(a.deltas).all() and np.isfinite(classic.deltas).all()
    # Share 0 is the shipped models' recipe, entry for entry.
    legacy = artist.pool_entry(ict, labels, None, 5, 3, artist_share=0.0)
    rng = np.random.default_rng([5, 3])
    topo = dataset.make_topology(ict, labels, rng)
    ref = dataset.make_pool_mesh(ict, topo, dataset.random_identity(rng), rng, "train0003")
    assert np.array_equal(legacy.deltas, ref.deltas) and np.array_equal(legacy.prepared.verts, ref.prepared.verts)
