# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules' searches give the answers of the all-pairs versions they replaced, exactly.

The eye opening (``eye_opening._covered``) and the mouth's enclosure (``tongue._enclosed``) test
only the (triangle, point) pairs the bins of ``core.mesh.bins`` offer; the lips' collision
(``lip_collision``) finds the teeth near a lip as arrays of pairs and skips lips ahead of
every tooth. Each is compared here with the all-pairs test it replaced (kept below as the
reference), on meshes where many points sit on edges and corners."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core import eye_opening, eyes, lip_collision, tongue
from blender_addon.core.mesh.bins import box_pairs
from blender_addon.core.mesh.proxy import loop_free_subdivide


def _all_pairs(points, lo, hi):
    inside = ((points[None] >= lo[:, None]) & (points[None] <= hi[:, None])).all(-1)
    return set(zip(*np.nonzero(inside)))


@pytest.mark.parametrize("n_points, n_tris", [(1, 5), (200, 50), (3000, 400), (50, 3000)])
def test_every_point_in_a_box_is_paired_once(n_points, n_tris):
    rng = np.random.default_rng(n_points)
    points = rng.random((n_points, 2))
    points[: n_points // 4] = np.round(points[: n_points // 4] * 8) / 8     # on box edges
    a = rng.random((n_tris, 2)) * 1.2 - 0.1
    size = rng.random((n_tris, 2)) * rng.choice([0.01, 0.1, 1.0], (n_tris, 1))
    lo, hi = a, a + size
    lo[: n_tris // 4] = np.round(lo[: n_tris // 4] * 8) / 8
    hi = np.maximum(hi, lo)
    got = [pair for t, q in box_pairs(points, lo, hi) for pair in zip(t.tolist(), q.tolist())]
    assert len(got) == len(set(got))
    assert _all_pairs(points, lo, hi) <= set(got)


def test_a_strip_of_points_and_no_points():
    points = np.stack([np.linspace(0, 1, 100), np.zeros(100)], 1)
    lo, hi = np.array([[0.2, -0.1], [2.0, 2.0]]), np.array([[0.3, 0.0], [3.0, 3.0]])
    got = {pair for t, q in box_pairs(points, lo, hi) for pair in zip(t.tolist(), q.tolist())}
    assert _all_pairs(points, lo, hi) <= got and all(t == 0 for t, _ in got)
    assert list(box_pairs(np.zeros((0, 2)), lo, hi)) == []


def _sphere(level=3):
    v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
    f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
    for _ in range(level):
        v, f = loop_free_subdivide(v, f)
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v, axis=1, keepdims=True), np.asarray(f, np.int64)


def _enclosed_all_pairs(query, verts, faces):
    """The ray test before the bins: every query against every triangle."""
    hit = np.ones(len(query), bool)
    all_tri = verts[faces]
    for axis, sign in ((2, 1.0), (1, -1.0), (0, 1.0), (0, -1.0)):
        a, b = [i for i in range(3) if i != axis]
        p2 = query[:, [a, b]]
        t2 = all_tri[:, :, [a, b]]
        e1, e2 = t2[:, 1] - t2[:, 0], t2[:, 2] - t2[:, 0]
        den = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        sel = np.flatnonzero(np.abs(den) > 1e-14)
        d = p2[None] - t2[sel, 0][:, None]
        u = (d[..., 0] * e2[sel, None, 1] - d[..., 1] * e2[sel, None, 0]) / den[sel, None]
        v = (e1[sel, None, 0] * d[..., 1] - e1[sel, None, 1] * d[..., 0]) / den[sel, None]
        inside = (u >= 0) & (v >= 0) & (u + v <= 1)
        h = all_tri[sel, 0, axis][:, None] * (1 - u - v) + all_tri[sel, 1, axis][:, None] * u \
            + all_tri[sel, 2, axis][:, None] * v
        hit &= (inside & ((h - query[None, :, axis]) * sign > 1e-6)).any(0)
    return hit


def test_enclosed_matches_all_pairs():
    verts, faces = _sphere()
    cut = faces[~(verts[faces][:, :, 1] < -0.7).all(1)]          # an open mouth toward -Y
    rng = np.random.default_rng(1)
    query = np.concatenate([rng.uniform(-1.2, 1.2, (300, 3)), verts[::3] * 0.999, verts[::7] * 1.001,
                            np.round(rng.uniform(-1, 1, (100, 3)) * 4) / 4])
    for f in (faces, cut):
        expected = _enclosed_all_pairs(query, verts, f)
        assert 0 < expected.sum() < len(query)
        np.testing.assert_array_equal(tongue._enclosed(query, verts, f), expected)


def _covered_all_pairs(xz, depth, verts, faces):
    """The opening test before the bins: every pixel against every triangle."""
    tri = verts[faces]
    a, b, c = tri[:, 0][:, [0, 2]], tri[:, 1][:, [0, 2]], tri[:, 2][:, [0, 2]]
    e1, e2 = b - a, c - a
    den = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(den) > 1e-14
    a, e1, e2, den, tri = a[ok], e1[ok], e2[ok], den[ok], tri[ok]
    lo = tri.min(1)[:, [0, 2]]
    hi = tri.max(1)[:, [0, 2]]
    d = xz[None, :, :] - a[:, None, :]
    u = (d[..., 0] * e2[:, None, 1] - d[..., 1] * e2[:, None, 0]) / den[:, None]
    v = (e1[:, None, 0] * d[..., 1] - e1[:, None, 1] * d[..., 0]) / den[:, None]
    inside = (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9)
    inside &= ((xz[None] >= lo[:, None] - 1e-12) & (xz[None] <= hi[:, None] + 1e-12)).all(-1)
    y = tri[:, 0, 1][:, None] * (1 - u - v) + tri[:, 1, 1][:, None] * u + tri[:, 2, 1][:, None] * v
    return (inside & (y < depth[None])).any(0)


@pytest.mark.parametrize("level", [1, 4])
def test_covered_matches_all_pairs(level):
    # A lid-like sheet in front of an eyeball: coarse (triangles wider than the disc) and dense.
    eye = eyes.Eye("Left", np.array([0.3, 0.0, 0.4]), 0.1, 0.0, "part", np.arange(0), np.ones(0))
    xz, depth, _ = eye_opening._disc(eye)
    verts, faces = _sphere(level)
    verts = verts * 0.12 + eye.centre + [0.0, -0.02, 0.05]
    expected = _covered_all_pairs(xz, depth, verts, faces)
    assert 0 < expected.sum() < len(xz)
    np.testing.assert_array_equal(eye_opening._covered(xz, depth, verts, faces), expected)


def _push_lips_out_all_pairs(p, skin, teeth, d):
    """push_lips_out before: every lip searched, the front by all (tooth, lip) distances."""
    reach, clearance = lip_collision.REACH, lip_collision.CLEARANCE

    def front(t, q):
        cell = np.floor(t[:, [0, 2]] / (reach / 4)).astype(np.int64)
        order = np.lexsort((t[:, 1], cell[:, 1], cell[:, 0]))
        first = np.ones(len(order), bool)
        first[1:] = (np.diff(cell[order], axis=0) != 0).any(1)
        t = t[order[first]]
        dist2 = ((q[:, None] - t[None, :, [0, 2]]) ** 2).sum(-1)
        return np.where(dist2 <= reach ** 2, t[None, :, 1], np.inf).min(1)

    d = d.copy()
    t_idx = np.flatnonzero(teeth)
    lo, hi = p[t_idx].min(0) - reach, p[t_idx].max(0) + reach
    lips = np.flatnonzero(skin & (p[:, 0] > lo[0]) & (p[:, 0] < hi[0]) & (p[:, 2] > lo[2]) & (p[:, 2] < hi[2])
                          & (p[:, 1] < hi[1]))
    lips = lips[p[lips, 1] < front(p[t_idx], p[lips][:, [0, 2]]) - clearance]
    q = p[lips] + d[lips]
    f = front(p[t_idx] + d[t_idx], q[:, [0, 2]])
    behind = q[:, 1] > f - clearance
    d[lips[behind], 1] = f[behind] - clearance - p[lips[behind], 1]
    return d, int(behind.sum())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_push_lips_out_matches_all_pairs(seed):
    # A row of teeth behind a sheet of lips; the shape pulls the lips back through them.
    rng = np.random.default_rng(seed)
    teeth = np.c_[rng.uniform(-0.12, 0.12, 800), rng.uniform(-0.02, 0.02, 800), rng.uniform(-0.3, -0.15, 800)]
    lips = np.c_[rng.uniform(-0.2, 0.2, 3000), rng.uniform(-0.08, 0.03, 3000), rng.uniform(-0.35, -0.1, 3000)]
    points = np.concatenate([teeth, lips])
    skin = np.r_[np.zeros(len(teeth), bool), np.ones(len(lips), bool)]
    delta = np.zeros_like(points)
    delta[skin, 1] = rng.uniform(0.0, 0.08, len(lips))
    delta[~skin, 2] = -0.02 * (seed % 2)                        # the lower teeth drop with the jaw
    for shape in (delta, delta * [1.0, 0.5, 1.0]):               # the second with the lips at rest kept
        got, pushed = lip_collision.push_lips_out(points, skin, ~skin, shape)
        expected, expected_pushed = _push_lips_out_all_pairs(points, skin, ~skin, shape)
        assert expected_pushed > 20 and pushed == expected_pushed
        np.testing.assert_array_equal(got, expected)


def test_peak_motion_is_the_largest_row_norm():
    from blender_addon.core import arkit, rig

    rng = np.random.default_rng(3)
    n = 500
    deltas = (rng.normal(size=(53, n, 3)) * rng.uniform(0.001, 0.1, (53, 1, 1))).astype(np.float32)
    skin = rng.random(n) < 0.7
    verts = rng.normal(size=(n, 3))
    result = rig.RigResult(np.zeros((n, 1)), deltas, skin, np.zeros(n, bool), True, "CPU")
    peaks = np.linalg.norm(deltas[:, skin], axis=2).max(axis=1)
    peaks[[i for i, name in enumerate(arkit.ICT_53) if name.startswith(rig.RULE_SHAPES)]] = 0.0
    best = int(np.argmax(peaks))
    assert rig.peak_motion(result, verts) == (float(peaks[best]) / float(np.ptp(verts[skin, 0])), arkit.ICT_53[best])


def test_pairs_come_in_bounded_chunks(monkeypatch):
    from blender_addon.core.mesh import bins

    monkeypatch.setattr(bins, "CHUNK_PAIRS", 64)
    rng = np.random.default_rng(5)
    points = rng.random((400, 2))
    lo = rng.random((300, 2)) * 0.9
    hi = lo + rng.choice([0.005, 0.5], (300, 1))          # small boxes and boxes over half the points
    chunks = list(bins.box_pairs(points, lo, hi))
    assert len(chunks) > 10
    got = [pair for t, q in chunks for pair in zip(t.tolist(), q.tolist())]
    assert len(got) == len(set(got)) and _all_pairs(points, lo, hi) <= set(got)
