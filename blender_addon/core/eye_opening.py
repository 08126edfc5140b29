# SPDX-License-Identifier: GPL-3.0-or-later
"""The eye opening seen from the front: how far the lids close, and the blink's completion.

The opening is what a viewer in front of the face sees of the eyeball (:func:`opening`):
rays along +Y through the eyeball's disc that reach the sphere before any skin. This needs
no hole in the skin (heads with fused, hole-free sockets have an opening too) and counts a
lid that sinks into the eyeball as open. Closure = 1 - open area after the shape / before
it (:func:`lid_closure`). When the network's blink closes less than :data:`CLOSED`,
:func:`complete_blink` brings the upper-lid margin down onto the lower one, never into the
eyeball. Eyeballs come from :mod:`.eyes`; the lid shapes that act on the same margins
(squint, wide, the ride with the gaze) from :mod:`.lid_shapes`. Canonical frame throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .eyes import Eye
from .mesh.bins import box_pairs

# Lids. A blink is complete when this share of the opening is covered (issue 13: >= 0.9).
CLOSED = 0.9
# Pixels across the eyeball's disc when measuring the opening.
GRID = 48
# Skin within this share of the radius behind the sphere still covers the eyeball: lid
# margins rest on the eyeball, and a fitted sphere sits a little outside a meshed one.
COVER_TOLERANCE = 0.08
# The completed upper lid ends this share of the radius outside the eyeball, so the
# closed lid never sinks into it.
CLEARANCE = 0.02
# The completion fades over the upper lid with this length, in eyeball radii: the upper
# lid covers the eyeball's upper half, so its skin moves over about one radius.
LID_FALLOFF = 0.6


@dataclass
class Opening:
    """The eye opening as seen from the front: pixels of the eyeball's disc."""

    xz: np.ndarray                # (P,2) pixel centres (x, z) inside the disc
    depth: np.ndarray             # (P,) y of the sphere's front surface there
    open: np.ndarray              # (P,) bool: the sphere is the first thing a ray meets
    pixel_area: float



def _disc(eye: Eye, grid: int = GRID) -> tuple[np.ndarray, np.ndarray, float]:
    step = 2.0 * eye.radius / grid
    g = (np.arange(grid) + 0.5) * step - eye.radius
    gx, gz = np.meshgrid(g, g, indexing="ij")
    rho2 = gx ** 2 + gz ** 2
    inside = rho2 < eye.radius ** 2
    xz = np.stack([gx[inside] + eye.centre[0], gz[inside] + eye.centre[2]], axis=1)
    depth = eye.centre[1] - np.sqrt(eye.radius ** 2 - rho2[inside])
    return xz, depth, step * step


def _covered(xz: np.ndarray, depth: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P,) bool: a triangle lies in front of (smaller y than) ``depth`` at pixel ``xz``."""
    covered = np.zeros(len(xz), bool)
    if len(faces) == 0:
        return covered
    tri = verts[faces]                                           # (T,3,3)
    a, b, c = tri[:, 0][:, [0, 2]], tri[:, 1][:, [0, 2]], tri[:, 2][:, [0, 2]]
    e1, e2 = b - a, c - a
    den = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(den) > 1e-14
    a, e1, e2, den, tri = a[ok], e1[ok], e2[ok], den[ok], tri[ok]
    lo = np.minimum(np.minimum(tri[:, 0], tri[:, 1]), tri[:, 2])[:, [0, 2]]
    hi = np.maximum(np.maximum(tri[:, 0], tri[:, 1]), tri[:, 2])[:, [0, 2]]
    # Each triangle meets only the pixels in its box (``mesh.bins``), not all of them.
    for t, q in box_pairs(xz, lo, hi, pad=1e-12):
        d = xz[q] - a[t]
        u = (d[:, 0] * e2[t, 1] - d[:, 1] * e2[t, 0]) / den[t]
        v = (e1[t, 0] * d[:, 1] - e1[t, 1] * d[:, 0]) / den[t]
        inside = (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9)
        inside &= ((xz[q] >= lo[t] - 1e-12) & (xz[q] <= hi[t] + 1e-12)).all(-1)
        y = tri[t, 0, 1] * (1 - u - v) + tri[t, 1, 1] * u + tri[t, 2, 1] * v
        covered[q[inside & (y < depth[q])]] = True
    return covered


def _eye_faces(eye: Eye, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Skin faces that can hide the eyeball: near its disc, not part of the eye itself."""
    f = np.asarray(faces)
    # Per vertex, then per face (a corner near the disc; a corner in front of the centre).
    v = np.asarray(verts)
    near_v = (np.abs(v[:, 0] - eye.centre[0]) < 1.3 * eye.radius) & (np.abs(v[:, 2] - eye.centre[2]) < 1.3 * eye.radius)
    near = _any_corner(near_v, f) & _any_corner(v[:, 1] < eye.centre[1] + eye.radius, f)
    if eye.source != "object":
        own = np.zeros(len(verts), bool)
        own[eye.vertices[eye.weights > 0]] = True
        near &= ~_any_corner(own, f)
    return f[near]


def _any_corner(mask: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(F,) a corner of each face is in ``mask`` (three gathers: numpy's any over a length-3
    axis costs several times more)."""
    return mask[f[:, 0]] | mask[f[:, 1]] | mask[f[:, 2]]


def opening(eye: Eye, verts: np.ndarray, faces: np.ndarray, grid: int = GRID) -> Opening:
    """What a viewer in front sees of the eyeball (``verts`` canonical, ``faces`` the skin's;
    faces of the eye itself are ignored). The last two answers are kept on ``eye`` and
    given again for equal inputs (the same eye, vertex positions, faces and grid)."""
    key = (np.asarray(verts, np.float64), np.asarray(faces), grid, eye.centre, eye.radius, eye.source,
           eye.vertices, eye.weights)
    for seen, answer in eye._openings:
        if all(a is b or np.array_equal(a, b) for a, b in zip(seen, key)):
            return answer
    xz, depth, area = _disc(eye, grid)
    f = _eye_faces(eye, verts, faces)
    covered = _covered(xz, depth + COVER_TOLERANCE * eye.radius, np.asarray(verts, np.float64), f)
    answer = Opening(xz, depth, ~covered, area)
    copies = tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in key)
    eye._openings = [(copies, answer)] + eye._openings[:1]
    return answer


def lid_closure(eye: Eye, verts: np.ndarray, faces: np.ndarray, delta: np.ndarray) -> float:
    """How far ``delta`` (V,3 canonical, e.g. eyeBlink) closes the eye: 1 - open area after /
    before, clipped to [0, 1]; nan when no opening is seen at rest."""
    v = np.asarray(verts, np.float64)
    before = opening(eye, v, faces).open.sum()
    if before == 0:
        return float("nan")
    after = opening(eye, v + delta, faces).open.sum()
    return float(np.clip(1.0 - after / before, 0.0, 1.0))


def _margins(eye: Eye, verts: np.ndarray, faces: np.ndarray, candidates: np.ndarray):
    """Upper and lower lid margins: per column of the opening, the candidate vertex nearest
    the top (bottom) open pixel, on the sphere. Returns (upper_idx, lower_idx, column_x)."""
    from scipy.spatial import cKDTree

    op = opening(eye, verts, faces)
    if not op.open.any() or len(candidates) == 0:
        return None
    xz = op.xz[op.open]
    depth = op.depth[op.open]
    cols = np.round((xz[:, 0] - xz[:, 0].min()) / np.sqrt(op.pixel_area)).astype(int)
    tree = cKDTree(verts[candidates])
    # Per column (in increasing order): its top and bottom pixel, the first one on ties, as
    # a loop of argmax/argmin would pick them; then one query for all of them.
    col = np.unique(cols, return_inverse=True)[1]
    order = np.arange(len(cols))

    def first_per_column(*keys):
        o = np.lexsort((order, *keys, col))
        return o[np.r_[True, col[o][1:] != col[o][:-1]]]

    top, bot, first = first_per_column(-xz[:, 1]), first_per_column(xz[:, 1]), first_per_column()
    ups, lows = (candidates[tree.query(np.stack([xz[k, 0], depth[k], xz[k, 1]], axis=1))[1]] for k in (top, bot))
    return ups, lows, xz[first, 0]


def complete_blink(eye: Eye, verts: np.ndarray, faces: np.ndarray, skin: np.ndarray,
                   delta: np.ndarray) -> np.ndarray:
    """``delta`` (V,3 canonical) with the upper lid brought onto the lower one where it
    stops short of :data:`CLOSED`, and nothing else changed.

    The lid margins come from the opening (:func:`_margins`). Each upper-margin vertex's
    target is the lower margin below it (as ``delta`` moves it), pushed out to
    ``1 + CLEARANCE`` radii so the lid rests on the eyeball instead of cutting its chord.
    The correction spreads over the upper lid (skin above the lower margin, in front of
    the eyeball's centre and outside the sphere), fading with the distance to the margin
    (``LID_FALLOFF`` radii) and taken, along the lid, from the margin column at the same x.
    """
    from scipy.spatial import cKDTree

    v = np.asarray(verts, np.float64)
    d = np.asarray(delta, np.float64).copy()
    rel = v - eye.centre
    dist = np.linalg.norm(rel, axis=1)
    cand = np.flatnonzero(skin & (dist < 2.0 * eye.radius) & (rel[:, 1] < 0.0))
    found = _margins(eye, v, faces, cand)
    if found is None:
        return d
    ups, lows, _ = found
    # Per upper-margin vertex: its lower partner (the nearest lower-margin vertex in x).
    ux, lx = v[ups, 0], v[lows, 0]
    order = np.argsort(lx)
    target = np.stack([np.interp(ux, lx[order], (v[lows] + d[lows])[order, a]) for a in range(3)], axis=1)
    tr = target - eye.centre
    tn = np.linalg.norm(tr, axis=1, keepdims=True)
    target = eye.centre + tr / np.maximum(tn, 1e-12) * np.maximum(tn, (1 + CLEARANCE) * eye.radius)
    gap0 = v[ups] - np.stack([np.interp(ux, lx[order], v[lows][order, a]) for a in range(3)], axis=1)
    now = v[ups] + d[ups] - target
    g = np.linalg.norm(gap0, axis=1)
    remaining = np.einsum("ij,ij->i", now, gap0) / np.maximum(g, 1e-12) ** 2
    fix = np.where((remaining > 1.0 - CLOSED)[:, None], target - (v[ups] + d[ups]), 0.0)
    fix[np.isin(ups, lows)] = 0.0                               # a corner: both lids at once
    if not fix.any():
        return d
    # Spread over the upper lid.
    ux_unique, first = np.unique(ux, return_index=True)
    fix_by_x = fix[first]
    lower_z = np.interp(v[:, 0], lx[order], v[lows][order, 2])
    lid = skin & (rel[:, 1] < 0.0) & (dist >= 0.98 * eye.radius) & (v[:, 2] >= lower_z + 0.25 * (
        np.interp(v[:, 0], ux_unique, v[ups][first, 2]) - lower_z))
    lid &= np.abs(rel[:, 0]) < 1.5 * eye.radius
    lid_idx = np.flatnonzero(lid)
    if len(lid_idx) == 0:
        return d
    near = cKDTree(v[ups]).query(v[lid_idx])[0]
    fade = np.exp(-(near / (LID_FALLOFF * eye.radius)) ** 2)
    corr = np.stack([np.interp(v[lid_idx, 0], ux_unique, fix_by_x[:, a], left=0.0, right=0.0)
                     for a in range(3)], axis=1)
    d[lid_idx] += corr * fade[:, None]
    # Collision: nothing the blink moves ends inside the eyeball.
    moved = lid_idx
    p = v[moved] + d[moved] - eye.centre
    pn = np.linalg.norm(p, axis=1)
    inside = pn < (1 + CLEARANCE) * eye.radius
    inside &= dist[moved] >= (1 + CLEARANCE) * eye.radius       # was outside at rest
    d[moved[inside]] = (eye.centre + p[inside] / pn[inside, None] * (1 + CLEARANCE) * eye.radius
                        - v[moved[inside]])
    return d
