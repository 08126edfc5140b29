# SPDX-License-Identifier: GPL-3.0-or-later
"""The Tighten rig option (core.falloff): what it keeps, what it fades, and that 0 is the
networks' answer untouched."""

from pathlib import Path

import numpy as np
import pytest

from blender_addon.core import falloff, rig
from blender_addon.core.mesh.topology import triangulate

SUZANNE = Path(__file__).parent / "data" / "suzanne.npz"


def _shapes(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(200, 5, 3)) * rng.uniform(0.0, 2.0, size=(200, 5, 1))


def test_zero_returns_the_shapes_unchanged():
    d = _shapes()
    out = falloff.tighten(d, 0.0)
    assert np.array_equal(out, d) and out is not d


def test_peak_keeps_its_size_and_every_direction_is_kept():
    d = _shapes()
    out = falloff.tighten(d, 0.2)
    length, kept = np.linalg.norm(d, axis=-1), np.linalg.norm(out, axis=-1)
    peak = length.argmax(0)
    assert np.allclose(kept[peak, range(5)], length[peak, range(5)])
    moving = kept > 0
    cos = (d * out).sum(-1)[moving] / (length[moving] * kept[moving])
    assert np.allclose(cos, 1.0)
    assert (kept <= length + 1e-12).all()


def test_weak_motion_fades_and_the_fade_is_continuous():
    # One shape: lengths 0..1 along a line; amount 0.2 keeps only what moves more than 0.2.
    lengths = np.linspace(0.0, 1.0, 101)
    d = np.zeros((101, 1, 3))
    d[:, 0, 2] = lengths
    out = np.linalg.norm(falloff.tighten(d, 0.2), axis=-1)[:, 0]
    assert (out[lengths <= 0.2] == 0).all() and (out[lengths > 0.2] > 0).all()
    assert np.abs(np.diff(out)).max() < 0.02                       # no step at the edge
    assert np.allclose(out, np.clip(lengths - 0.2, 0, None) / 0.8)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 2.0])
def test_out_of_range_is_refused(bad):
    with pytest.raises(ValueError, match="tighten"):
        falloff.tighten(_shapes(), bad)


def test_rig_default_is_untouched_and_tighten_reaches_less_far():
    with np.load(SUZANNE) as s:
        verts, faces = s["verts"].astype(np.float64), triangulate(s["corners"].astype(np.int64), s["sizes"])
    base = rig.predict(verts, faces, provider="CPU")
    zero = rig.predict(verts, faces, provider="CPU", tighten=0.0)
    tight = rig.predict(verts, faces, provider="CPU", tighten=0.3)
    assert np.array_equal(base.ict_deltas, zero.ict_deltas)
    moved = lambda r: (np.linalg.norm(r.ict_deltas, axis=-1) > 1e-6).sum()  # noqa: E731
    assert moved(tight) < moved(base)
