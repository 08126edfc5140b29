# SPDX-License-Identifier: GPL-3.0-or-later
"""tongueOut without ground truth: find the tongue (or the floor of a mouth bag) and push
it forward out of the mouth.

ICT-FaceKit has no tongueOut, so the networks cannot predict it. The rule, in the rig's
canonical frame (face toward -Y, one unit wide, nose tip at the origin):

* the *mouth floor* is every surface point, skin or loose part, that lies inside the mouth
  (behind the front of the lips by more than a lip's depth, between the mouth corners,
  below the nose, enclosed: rays up, forward and to both sides all meet the mesh) and
  faces up or down (a floor, not a cheek wall). Its largest
  connected piece is the tongue: a loose tongue, the tongue bump on a mouth bag's floor,
  or the bag's floor itself, which is what an artist's bag without a tongue offers;
* a tongue modelled in the bag (a flap: its own upper and lower surface lying on the bag's
  floor, joined to the bag at its root) is the floor's *upper layer*: the floor vertices
  with floor below them (:func:`tongue_body`). Without the layer test the floor around and
  under such a tongue was taken for it and pushed out of the mouth too;
* tongueOut moves it forward: the frontmost point ends ``PROTRUDE`` in front of the lips,
  its middle at the height of the mouth line (the tongue comes out between the lips). A
  tongue body slides out whole, the faces joining it to the bag stretch; a bag's floor or a
  loose part fades linearly to nothing at its back (the root stays, the bag does not tear).

The constants are anatomical, in face widths (the canonical unit, ~15-19 cm on a human
head), not fitted to any head.
"""

from __future__ import annotations

import numpy as np

from .mesh.bins import box_pairs

LIP_DEPTH = 0.06        # lips are ~1 cm deep: the mouth's inside starts this far behind their front
MOUTH_HALF_WIDTH = 0.15  # mouth corners (a human mouth is ~0.3 face widths wide at most)
BELOW_NOSE = 0.08       # the mouth's floor lies below the nose's base (~1.2 cm under the tip)
FLOOR_NORMAL = 0.5      # |normal z| above this: a floor, not a wall
PROTRUDE = 0.1          # the tongue tip ends ~1.5 cm in front of the lips
MIN_VERTS = 6
RAY_SAMPLE = 400        # candidates tested by rays (the others take their nearest tested one's answer)
LAYER_GAP = 0.005       # a floor lies under a point when more than ~1 mm below it (not its own surface)
GROW_RINGS = 4          # edge rings the tongue body grows over its steep sides (a tongue is ~4 rings tall)


def _midline_front(points: np.ndarray, skin: np.ndarray, z_lo: float, z_hi: float) -> float:
    """Canonical y of the face's front near the midline between two heights (the lips)."""
    strip = skin & (np.abs(points[:, 0]) < 0.05) & (points[:, 2] > z_lo) & (points[:, 2] < z_hi)
    if not strip.any():
        strip = skin & (np.abs(points[:, 0]) < 0.05)
    return float(points[strip, 1].min()) if strip.any() else 0.0


def _enclosed(query: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(Q,) bool: rays from each point toward +Z, -Y, +X and -X all meet a triangle: the
    point is inside a cavity (palate above, lips in front, cheeks at the sides)."""
    hit = np.ones(len(query), bool)
    all_tri = verts[faces]
    # Each triangle's box, once (elementwise over the corners: a reduction over a length-3
    # axis is several times slower in numpy).
    tmin = np.minimum(np.minimum(all_tri[:, 0], all_tri[:, 1]), all_tri[:, 2])
    tmax = np.maximum(np.maximum(all_tri[:, 0], all_tri[:, 1]), all_tri[:, 2])
    # Rays are cast one axis at a time and only from the points every earlier ray hit.
    pad = 1e-6 * (float(np.abs(all_tri).max(initial=0.0)) + float(np.abs(query).max(initial=0.0)))
    for axis, sign in ((2, 1.0), (1, -1.0), (0, 1.0), (0, -1.0)):
        alive = np.flatnonzero(hit)
        if len(alive) == 0:
            break
        a, b = [i for i in range(3) if i != axis]
        p2 = query[alive][:, [a, b]]
        # Only triangles whose shadow on the ray's plane overlaps the queries' can be hit: on
        # a dense head that is a small patch around the mouth, not the whole mesh.
        lo, hi = p2.min(0), p2.max(0)
        keep = ((tmax[:, [a, b]] >= lo) & (tmin[:, [a, b]] <= hi)).all(1)
        # ... and only those on the side the ray goes.
        if sign > 0:
            keep &= tmax[:, axis] > query[alive, axis].min()
        else:
            keep &= tmin[:, axis] < query[alive, axis].max()
        tri = all_tri[keep]
        t2 = tri[:, :, [a, b]]
        e1, e2 = t2[:, 1] - t2[:, 0], t2[:, 2] - t2[:, 0]
        den = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
        ok = np.flatnonzero(np.abs(den) > 1e-14)
        got = np.zeros(len(alive), bool)
        # Each triangle meets only the points in its shadow's box (``mesh.bins``).
        for s, q in box_pairs(p2, tmin[keep][ok][:, [a, b]], tmax[keep][ok][:, [a, b]], pad):
            s = ok[s]
            d = p2[q] - t2[s, 0]
            u = (d[:, 0] * e2[s, 1] - d[:, 1] * e2[s, 0]) / den[s]
            v = (e1[s, 0] * d[:, 1] - e1[s, 1] * d[:, 0]) / den[s]
            inside = (u >= 0) & (v >= 0) & (u + v <= 1)
            h = tri[s, 0, axis] * (1 - u - v) + tri[s, 1, axis] * u + tri[s, 2, axis] * v
            ahead = (h - query[alive[q], axis]) * sign > 1e-6
            got[q[inside & ahead]] = True
        hit[alive] = got
    return hit


def find_tongue(points: np.ndarray, faces: np.ndarray, skin: np.ndarray,
                exclude: np.ndarray | None = None) -> np.ndarray:
    """(V,) bool: the tongue / mouth floor (see the module's rule); all False when none.
    ``exclude`` masks vertices that cannot be the tongue (eyes)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    from .mesh.topology import vertex_normals

    p = np.asarray(points, np.float64)
    f = np.asarray(faces, np.int64)
    front = _midline_front(p, skin, -0.5, -BELOW_NOSE)
    normals = vertex_normals(p, f)
    used = np.zeros(len(p), bool)
    used[f.ravel()] = True
    cand = used & (p[:, 1] > front + LIP_DEPTH) & (np.abs(p[:, 0]) < MOUTH_HALF_WIDTH)
    cand &= (p[:, 2] < -BELOW_NOSE) & (np.abs(normals[:, 2]) > FLOOR_NORMAL)
    if exclude is not None:
        cand &= ~exclude
    if cand.sum() < MIN_VERTS:
        return np.zeros(len(p), bool)
    idx = np.flatnonzero(cand)
    tested = idx[:: -(-len(idx) // RAY_SAMPLE)]
    # Only triangles near the mouth can enclose it.
    lo, hi = p[idx].min(0) - 0.3, p[idx].max(0) + 0.3
    tri_near = f[((p > lo) & (p < hi)).all(-1)[f].any(1)]
    inside = _enclosed(p[tested], p, tri_near)
    cand[idx] = inside[cKDTree(p[tested]).query(p[idx])[1]]
    if cand.sum() < MIN_VERTS:
        return np.zeros(len(p), bool)
    # Connected pieces of the candidates (edges of faces whose both ends are candidates);
    # vertices at one position (UV seams) are one.
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    e = e[cand[e].all(1)]
    idx = np.flatnonzero(cand)
    remap = np.full(len(p), -1)
    remap[idx] = np.arange(len(idx))
    seam = _same_position(p[idx])
    rows = np.concatenate([remap[e[:, 0]], seam[:, 0]])
    cols = np.concatenate([remap[e[:, 1]], seam[:, 1]])
    g = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(idx), len(idx)))
    _, comp = connected_components(g, directed=False)
    count = np.bincount(comp)
    best = int(np.argmax(count))
    out = np.zeros(len(p), bool)
    if count[best] >= MIN_VERTS:
        out[idx[comp == best]] = True
    return out


def _same_position(p: np.ndarray) -> np.ndarray:
    from scipy.spatial import cKDTree

    if len(p) < 2:
        return np.zeros((0, 2), np.int64)
    tol = 1e-6 * max(float(np.ptp(p, axis=0).max()), 1e-12)
    return cKDTree(p).query_pairs(tol, output_type="ndarray").reshape(-1, 2)


def _floor_below(query: np.ndarray, points: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(Q,) bool: a ray from each vertex ``query`` straight down (-Z) meets one of ``tris``
    (T,3 vertex indices) more than ``LAYER_GAP`` below it; triangles that hold the vertex
    do not count (they are its own surface)."""
    q = points[query]
    t = points[tris]
    a = t[:, 0, :2]
    e1, e2 = t[:, 1, :2] - a, t[:, 2, :2] - a
    den = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(den) > 1e-14
    tris, t, a, e1, e2, den = tris[ok], t[ok], a[ok], e1[ok], e2[ok], den[ok]
    hit = np.zeros(len(query), bool)
    for s in range(0, len(tris), 1024):                         # (t,Q) at a time
        sl = slice(s, s + 1024)
        d = q[None, :, :2] - a[sl, None]
        u = (d[..., 0] * e2[sl, None, 1] - d[..., 1] * e2[sl, None, 0]) / den[sl, None]
        v = (e1[sl, None, 0] * d[..., 1] - e1[sl, None, 1] * d[..., 0]) / den[sl, None]
        inside = (u >= 0) & (v >= 0) & (u + v <= 1)
        z = t[sl, 0, 2][:, None] * (1 - u - v) + t[sl, 1, 2][:, None] * u + t[sl, 2, 2][:, None] * v
        own = (tris[sl, :, None] == query[None, None, :]).any(1)
        hit |= (inside & (q[None, :, 2] - z > LAYER_GAP) & ~own).any(0)
    return hit


def tongue_body(points: np.ndarray, faces: np.ndarray, floor: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """(V,) bool: the tongue lying on a mouth bag's floor (``floor``, from :func:`find_tongue`),
    all False when the floor is one layer (a bag without a modelled tongue).

    The tongue is the floor's upper layer: floor vertices with a floor triangle below them.
    The layer grows over edges (``GROW_RINGS``) to mouth vertices that also lie over the
    floor (the tongue's steep sides, which the floor test's normals leave out), and its
    largest connected piece is the tongue."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    p = np.asarray(points, np.float64)
    f = np.asarray(faces, np.int64)
    none = np.zeros(len(p), bool)
    tris = f[floor[f].all(1)]
    if len(tris) == 0:
        return none
    body = none.copy()
    idx = np.flatnonzero(floor)
    body[idx] = _floor_below(idx, p, tris)
    if body.sum() < MIN_VERTS:
        return none
    front = _midline_front(p, skin, -0.5, -BELOW_NOSE)
    mouth = (p[:, 1] > front + LIP_DEPTH) & (np.abs(p[:, 0]) < MOUTH_HALF_WIDTH) & (p[:, 2] < -BELOW_NOSE)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    for _ in range(GROW_RINGS):
        ring = np.unique(np.concatenate([e[body[e[:, 0]], 1], e[body[e[:, 1]], 0]]))
        ring = ring[~body[ring] & ~floor[ring] & mouth[ring]]
        if len(ring) == 0:
            break
        over = _floor_below(ring, p, tris)
        if not over.any():
            break
        body[ring[over]] = True
    ids = np.flatnonzero(body)
    remap = np.full(len(p), -1)
    remap[ids] = np.arange(len(ids))
    inner = e[body[e].all(1)]
    g = coo_matrix((np.ones(len(inner)), (remap[inner[:, 0]], remap[inner[:, 1]])), shape=(len(ids), len(ids)))
    _, comp = connected_components(g, directed=False)
    count = np.bincount(comp)
    out = none.copy()
    if count.max() >= MIN_VERTS:
        out[ids[comp == np.argmax(count)]] = True
    return out


def tongue_out(points: np.ndarray, tongue: np.ndarray, skin: np.ndarray, mouth_line: float | None = None,
               body: bool = False) -> np.ndarray:
    """(V,3) canonical tongueOut deltas: the tongue's front to ``PROTRUDE`` in front of the
    lips, the middle of its tip at ``mouth_line`` (canonical height where the lips meet;
    None or not below the nose: the tongue's own top, level). A ``body`` (a tongue on the
    bag's floor, :func:`tongue_body`) slides out whole; a floor or a loose part fades
    linearly to nothing at its back."""
    p = np.asarray(points, np.float64)
    out = np.zeros_like(p)
    if not tongue.any():
        return out
    t = p[tongue]
    tip_y, back_y = t[:, 1].min(), t[:, 1].max()
    top = t[:, 2].max()
    near_tip = t[:, 1] < tip_y + 0.25 * (back_y - tip_y)
    if mouth_line is not None and mouth_line < -BELOW_NOSE:
        tip = np.array([0.0, tip_y, 0.5 * (t[near_tip, 2].max() + t[near_tip, 2].min())])
        height = mouth_line
    else:
        tip = np.array([0.0, tip_y, t[near_tip, 2].max()])
        height = top
    lips = _midline_front(p, skin, height - 0.1, height + 0.1)
    target = np.array([0.0, lips - PROTRUDE, height])
    move = target - tip
    if body:
        out[tongue] = move
        return out
    w = np.clip((back_y - t[:, 1]) / max(back_y - tip_y, 1e-12), 0.0, 1.0)
    out[tongue] = w[:, None] * move
    return out
