# SPDX-License-Identifier: GPL-3.0-or-later
"""Which points can lie inside which triangles, seen along an axis: 2-D bins.

The eye and mouth rules ask, for a few hundred to a few thousand points, which triangles
of the head cover them when looked at along an axis (``eye_opening._covered``: what hides the
eyeball from the front; ``tongue._enclosed``: does a ray from inside the mouth meet the
mesh). Testing every point against every triangle costs points x triangles: on a 69k-vertex
head, seconds. A triangle of a dense head covers a handful of the points, so the points are
put in a uniform grid of 2-D bins and each triangle is paired only with the points in the
bins its bounding box overlaps.

The pairs are a *superset* of the (triangle, point) pairs whose point lies in the
triangle's bounding box (grown by ``pad``): the caller runs its own exact test on them,
so its answer is the one the all-pairs test gives, bit for bit.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

MAX_BINS_PER_AXIS = 1024
CHUNK_PAIRS = 1 << 20       # (triangle, point) pairs per chunk: a few tens of MB of temporaries


def _expand(starts: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, value): for each i, ``counts[i]`` rows ``starts[i], starts[i] + 1, ...``."""
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return owner, starts[owner] + (np.arange(int(counts.sum())) - first[owner])


def box_pairs(points: np.ndarray, lo: np.ndarray, hi: np.ndarray,
              pad: float = 0.0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks ``(triangle, point)`` of index arrays: every point of ``points`` (Q,2) inside
    the box ``lo``..``hi`` (T,2 each, grown by ``pad``) of a triangle appears paired with it
    (with a few more, from the same bins); each pair appears once."""
    points = np.asarray(points, np.float64)
    lo = np.asarray(lo, np.float64) - pad
    hi = np.asarray(hi, np.float64) + pad
    if len(points) == 0 or len(lo) == 0:
        return
    origin = points.min(0)
    extent = np.maximum(np.ptp(points, axis=0), 1e-300)
    # Bins as fine as the points' spacing or the triangles' size, whichever is finer: a
    # bin then holds about one point (a dense grid of pixels) or a triangle's box covers
    # about one bin (a few scattered points among many small triangles), so the pairs are
    # about the (triangle, point-in-its-box) pairs themselves.
    spacing = float(np.sqrt(extent[0] * extent[1] / len(points))) if extent.min() > 1e-300 else np.inf
    size = float(np.median((hi - lo).max(1)))
    side = max(min(spacing, size), float(extent.max()) / MAX_BINS_PER_AXIS)
    shape = np.minimum(np.floor(extent / side).astype(np.int64) + 1, MAX_BINS_PER_AXIS)

    def cell(x):
        # floor((x - origin) / side) is monotone in x, so a point inside a box lands
        # between the cells of the box's corners; clipping keeps that true at the edges.
        return np.floor((x - origin) / side)

    pc = np.clip(cell(points), 0, shape - 1).astype(np.int64)
    key = pc[:, 0] * shape[1] + pc[:, 1]
    order = np.argsort(key, kind="stable")
    bin_start = np.searchsorted(key[order], np.arange(shape[0] * shape[1] + 1))
    c0, c1 = cell(lo), cell(hi)
    valid = ((c1 >= 0) & (c0 <= shape - 1) & (c1 >= c0)).all(1)
    tris = np.flatnonzero(valid)
    c0 = np.clip(c0[valid], 0, shape - 1).astype(np.int64)
    c1 = np.clip(c1[valid], 0, shape - 1).astype(np.int64)
    # Per triangle, the bins of its box, row by row (one run of consecutive bins per row);
    # triangles in groups of about CHUNK_PAIRS rows and runs in chunks of about CHUNK_PAIRS
    # pairs, so memory stays bounded whatever the sizes.
    rows = c1[:, 0] - c0[:, 0] + 1
    tri_bounds = _bounds(np.cumsum(rows))
    for ta, tb in zip(tri_bounds[:-1], tri_bounds[1:]):
        row_tri, row = _expand(c0[ta:tb, 0], rows[ta:tb])
        row_tri += ta
        run_start = bin_start[row * shape[1] + c0[row_tri, 1]]
        counts = bin_start[row * shape[1] + c1[row_tri, 1] + 1] - run_start
        bounds = _bounds(np.cumsum(counts))
        for a, b in zip(bounds[:-1], bounds[1:]):
            owner, slot = _expand(run_start[a:b], counts[a:b])
            if len(owner):
                yield tris[row_tri[a:b][owner]], order[slot]


def _bounds(total: np.ndarray) -> np.ndarray:
    """Cut points that split items of cumulative sizes ``total`` into chunks of about
    CHUNK_PAIRS (an item larger than that is a chunk of its own)."""
    cuts = np.searchsorted(total, np.arange(CHUNK_PAIRS, int(total[-1]) if len(total) else 0, CHUNK_PAIRS))
    return np.unique(np.concatenate([[0], cuts, [len(total)]]))
