# SPDX-License-Identifier: GPL-3.0-or-later
"""Lips do not pass through the teeth in the jaw shapes (issue 13), without ground truth.

The networks move the lips; ``core.parts`` moves the lower teeth rigidly with the jaw. The
two are fitted separately, so at jawOpen or jawForward a lip can end behind the front of
the teeth (facecap: 13 lip vertices up to 0.024 face widths, ~3.6 mm, at jawOpen). The
rule, in the rig's canonical frame (face toward -Y):

* the **teeth** are loose parts in the mouth: below the nose tip, near the midline, not
  an eyeball; where they are in each shape is where the shape moves them (upper teeth
  stay, lower teeth follow the jaw);
* the **front of the teeth** at a point (x, z) is the smallest y of the teeth within
  :data:`REACH` of it, seen from the front;
* a **lip** vertex is skin that rests in front of that surface; where a shape carries it
  behind the surface (moved) less :data:`CLEARANCE`, it is pushed forward (-Y) onto it.

Only y changes, so the lip's outline seen from the front is the network's.
"""

from __future__ import annotations

import numpy as np

REACH = 0.02            # a tooth covers (x, z) within this many face widths (~3 mm)
CLEARANCE = 0.004       # the lip rests ~0.6 mm in front of the teeth
MOUTH_HALF_WIDTH = 0.2  # teeth lie within this of the midline (a human mouth ~0.3 wide)
BELOW_NOSE = 0.05       # ... and below the nose tip


def teeth_mask(points: np.ndarray, part_labels: np.ndarray, exclude: np.ndarray) -> np.ndarray:
    """(V,) bool: vertices of loose parts that sit in the mouth (teeth, gums, tongue)."""
    p = np.asarray(points)
    return (np.asarray(part_labels) >= 0) & ~exclude & (p[:, 2] < -BELOW_NOSE) \
        & (np.abs(p[:, 0]) < MOUTH_HALF_WIDTH)


def _front(teeth: np.ndarray, query_xz: np.ndarray) -> np.ndarray:
    """(Q,) the smallest y of ``teeth`` (T,3) within REACH of each (x, z); +inf where none."""
    from scipy.spatial import cKDTree

    out = np.full(len(query_xz), np.inf)
    if len(teeth) == 0 or len(query_xz) == 0:
        return out
    # Only the front of the teeth can be the smallest y: keep the frontmost point of each
    # (x, z) cell a quarter of REACH wide (the answer moves by at most that much), so a dense
    # head's thousands of tooth vertices become a few hundred.
    cell = np.floor(teeth[:, [0, 2]] / (REACH / 4)).astype(np.int64)
    order = np.lexsort((teeth[:, 1], cell[:, 1], cell[:, 0]))
    first = np.ones(len(order), bool)
    first[1:] = (np.diff(cell[order], axis=0) != 0).any(1)
    teeth = teeth[order[first]]
    # Every (tooth, query) pair within REACH as arrays, then one unbuffered minimum per
    # query: lists of neighbours per query (query_ball_point) took tens of ms on dense heads.
    pairs = cKDTree(teeth[:, [0, 2]]).sparse_distance_matrix(cKDTree(query_xz), REACH, output_type="ndarray")
    np.minimum.at(out, pairs["j"], teeth[pairs["i"], 1])
    return out


_rest: list = []     # [(copies of points, skin, teeth), lips]: the last head's lips at rest


def _lips_at_rest(p: np.ndarray, skin: np.ndarray, teeth: np.ndarray, t_idx: np.ndarray) -> np.ndarray:
    """Skin vertices in front of the teeth at rest, near them. The four jaw shapes of one
    head ask with the same rest geometry: the last answer is kept with copies of its inputs."""
    for inputs, lips in _rest[:1]:
        if all(np.array_equal(a, b) for a, b in zip(inputs, (p, skin, teeth))):
            return lips
    lo, hi = p[t_idx].min(0) - REACH, p[t_idx].max(0) + REACH
    lips = np.flatnonzero(skin & (p[:, 0] > lo[0]) & (p[:, 0] < hi[0]) & (p[:, 2] > lo[2]) & (p[:, 2] < hi[2])
                          & (p[:, 1] < hi[1]))
    if len(lips):
        # In front of the teeth at rest. A vertex ahead of every tooth needs no search (the
        # front of the teeth near it is never nearer than the frontmost tooth).
        ahead = p[lips, 1] < p[t_idx, 1].min() - CLEARANCE
        rest_front = _front(p[t_idx], p[lips[~ahead]][:, [0, 2]])
        ahead[~ahead] = p[lips[~ahead], 1] < rest_front - CLEARANCE
        lips = lips[ahead]
    _rest[:] = [((p.copy(), skin.copy(), teeth.copy()), lips)]
    return lips


def push_lips_out(points: np.ndarray, skin: np.ndarray, teeth: np.ndarray,
                  delta: np.ndarray) -> tuple[np.ndarray, int]:
    """``delta`` (V,3 canonical, one shape) with the lips kept in front of the teeth, and
    how many lip vertices were pushed."""
    p = np.asarray(points, np.float64)
    d = np.asarray(delta, np.float64).copy()
    t_idx = np.flatnonzero(teeth)
    if len(t_idx) == 0:
        return d, 0
    lips = _lips_at_rest(p, np.asarray(skin, bool), np.asarray(teeth, bool), t_idx)
    if len(lips) == 0:
        return d, 0
    q = p[lips] + d[lips]
    moved_teeth = p[t_idx] + d[t_idx]
    front = np.full(len(q), np.inf)                              # +inf: ahead of every tooth
    near = q[:, 1] > moved_teeth[:, 1].min() - CLEARANCE
    front[near] = _front(moved_teeth, q[near][:, [0, 2]])
    behind = q[:, 1] > front - CLEARANCE
    pushed = lips[behind]
    d[pushed, 1] = front[behind] - CLEARANCE - p[pushed, 1]
    return d, int(len(pushed))
