# SPDX-License-Identifier: GPL-3.0-or-later
"""Closed cavities in a head's skin, found without ground truth, and how they follow the skin.

Many artists model the eye sockets as eyeball-shaped shells fused to the lids, the mouth
as a closed bag fused to the lips and the nostrils as tubes: the skin then has no holes
at the eyes or the mouth, and a quarter of it can lie *inside* the head. Every training
head has open holes there, so the networks label a socket shell "nose" and spend the
blink on it (issue 12). The rig therefore runs the networks on the **outer skin** only
and lets the cavities follow it:

* **Finding** (:func:`outer_visibility`, :func:`find_cavities`): a vertex belongs to the
  outer skin when it can be seen from outside the head. The skin (and the loose parts it
  encloses: eyeballs hide the socket behind them) is drawn into depth buffers from
  ``DIRECTIONS`` directions spread evenly over the sphere (orthographic, in the canonical
  frame); a vertex is seen from a direction when it faces the viewer and nothing lies in
  front of it in its pixel. Its *visibility* is the share of directions that see it, like
  ambient occlusion: about one half on a convex cheek, less in folds, ~0 inside a closed
  socket or mouth bag. Cavity = visibility below ``CAVITY_VISIBILITY``, kept only in
  connected pieces large enough to be a cavity (``MIN_CAVITY_SHARE``), so a deep ear fold
  or a nostril rim stays skin. A head with open holes and no shells has none.
* **Following** (:func:`follow_matrix`): each cavity vertex takes the Gaussian-weighted
  mean of the ``FOLLOW_NEIGHBOURS`` nearest outer vertices (Euclidean, canonical frame),
  attenuated by ``exp(-d^2 / 2 sigma^2)`` with ``d`` its distance to the outer skin and
  ``sigma = FALLOFF`` face widths: the inner lid and the lips' inside move with the lid
  and the lips, the back of a socket stays still. It is a sparse matrix, so the whole
  head is still one product.
* **The jaw** (:func:`mouth_bag_follows_jaw`): the lower part of a mouth bag (cavity below the mouth
  line whose nearest outer skin the jaw moves, ``core.parts``) is carried by the jaw's
  rigid motion in the four jaw shapes where the falloff lets go, as the lower teeth are.

Constants are chosen on principle and checked on held-out ICT identities with ICT's own
mouth and eye sockets welded in (``tools/bench_accuracy.py``), never on the test heads.
All geometry is in the rig's canonical frame (face width 1).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse

from . import parallel
from .mesh.topology import connected_components, face_areas, vertex_normals

DIRECTIONS = 64            # view directions over the whole sphere (a Fibonacci lattice)
SAMPLES_PER_PIXEL = 3.0    # surface samples per pixel area: a front surface leaves no gaps
CAVITY_VISIBILITY = 0.03   # cavity: seen from fewer than 3 % of the directions
MIN_CAVITY_SHARE = 0.004   # a cavity piece holds at least 0.4 % of the skin's area
FALLOFF = 0.05             # face widths: the cavity's motion fades with depth (sigma)
FOLLOW_NEIGHBOURS = 8      # outer vertices each cavity vertex averages
MAX_SAMPLES = 60000        # occluder samples, at most (dense loose parts are subsampled)


def fibonacci_directions(n: int = DIRECTIONS) -> np.ndarray:
    """(n,3) unit vectors spread evenly over the sphere (deterministic)."""
    i = np.arange(n) + 0.5
    z = 1.0 - 2.0 * i / n
    phi = np.pi * (3.0 - np.sqrt(5.0)) * i
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    return np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)


def _surface_samples(verts: np.ndarray, faces: np.ndarray, count: int, rng) -> np.ndarray:
    """``count`` points spread over the triangles by area (plus nothing else)."""
    if len(faces) == 0 or count <= 0:
        return np.zeros((0, 3))
    area = face_areas(verts, faces)
    total = float(area.sum())
    if not total > 0:
        return np.zeros((0, 3))
    tri = np.searchsorted(np.cumsum(area) / total, rng.random(count), side="right")
    tri = np.minimum(tri, len(faces) - 1)
    u, v = rng.random(count), rng.random(count)
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    a, b, c = (verts[faces[tri, k]] for k in range(3))
    return a + u[:, None] * (b - a) + v[:, None] * (c - a)


def _oriented_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Vertex normals pointing out of the head. A mesh whose faces all wind inward (a
    flipped import) would see nothing as outer; the sign of the volume it encloses about
    its centroid tells."""
    normals = vertex_normals(verts, faces)
    a, b, c = (verts[faces[:, k]] - verts.mean(0) for k in range(3))
    volume = float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum())
    return -normals if volume < 0 else normals


def outer_visibility(verts: np.ndarray, faces: np.ndarray, occluders=None,
                     directions: int = DIRECTIONS, pixel: float | None = None) -> np.ndarray:
    """(V,) share of view directions from outside that see each vertex of a surface.

    ``verts`` (V,3), ``faces`` (F,3) the skin (canonical frame); ``occluders`` optional
    ``(verts, faces)`` of loose parts that hide skin but are not scored (eyeballs, teeth).
    ``pixel`` is the depth buffers' pixel size (default: the median edge length, so a
    buffer has about one pixel per vertex across the face).
    """
    verts = np.asarray(verts, np.float64)
    faces = np.asarray(faces, np.int64)
    if len(faces) == 0:
        return np.zeros(len(verts))
    edges = np.linalg.norm(verts[faces] - verts[np.roll(faces, 1, axis=1)], axis=2)
    if pixel is None:
        pixel = float(np.median(edges))
    pixel = max(pixel, 1e-6 * float(np.ptp(verts, axis=0).max()) + 1e-12)
    rng = np.random.default_rng(0)
    area = float(face_areas(verts, faces).sum())
    n = int(min(MAX_SAMPLES, SAMPLES_PER_PIXEL * area / pixel ** 2))
    parts = [verts, _surface_samples(verts, faces, n, rng)]
    if occluders is not None and len(occluders[1]):
        ov, of = np.asarray(occluders[0], np.float64), np.asarray(occluders[1], np.int64)
        n_occ = int(min(MAX_SAMPLES, SAMPLES_PER_PIXEL * float(face_areas(ov, of).sum()) / pixel ** 2))
        parts.append(_surface_samples(ov, of, n_occ, rng))
    points = np.concatenate(parts)
    normals = _oriented_normals(verts, faces)
    dirs = fibonacci_directions(directions)
    # Depth tolerance: neighbouring samples of the same surface in one pixel differ by up
    # to a pixel at grazing angles; a wall behind it (a socket behind the lid) lies further.
    tolerance = 1.5 * pixel
    centre = points.mean(0)
    p = points - centre
    q = verts - centre

    def count(chunk):
        """How many of the directions ``chunk`` see each vertex."""
        seen = np.zeros(len(verts), np.int64)
        for d in chunk:
            # An orthonormal frame whose third axis points from the head toward the viewer.
            helper = np.array([1.0, 0, 0]) if abs(d[0]) < 0.9 else np.array([0, 1.0, 0])
            e1 = np.cross(d, helper)
            e1 /= np.linalg.norm(e1)
            e2 = np.cross(d, e1)
            basis = np.stack([e1, e2, d], axis=1)
            pp, qq = p @ basis, q @ basis
            lo = np.minimum(pp[:, :2].min(0), qq[:, :2].min(0))
            ij = np.floor((pp[:, :2] - lo) / pixel).astype(np.int64)
            qij = np.floor((qq[:, :2] - lo) / pixel).astype(np.int64)
            width = int(max(ij[:, 1].max(), qij[:, 1].max())) + 1
            cells = (int(max(ij[:, 0].max(), qij[:, 0].max())) + 1) * width
            # Nearest to the viewer = largest height along d, per pixel (a dense buffer: the
            # grid has about as many pixels as the surface has samples).
            top = np.full(cells, -np.inf)
            np.maximum.at(top, ij[:, 0] * width + ij[:, 1], pp[:, 2])
            front = top[qij[:, 0] * width + qij[:, 1]]
            seen += (qq[:, 2] >= front - tolerance) & (normals @ d > 0.0)
        return seen

    # The directions are independent: a share of them per core (counts add up exactly).
    seen = sum(parallel.map_chunks(count, np.array_split(dirs, parallel.workers())))
    return seen / len(dirs)


def find_cavities(verts: np.ndarray, faces: np.ndarray, occluders=None,
                  visibility: np.ndarray | None = None) -> np.ndarray:
    """(V,) bool: skin vertices inside closed cavities (sockets, mouth bags, nasal tubes).

    Vertices seen from fewer than ``CAVITY_VISIBILITY`` of the directions, in connected
    pieces (through cavity faces) of at least ``MIN_CAVITY_SHARE`` of the skin's area.
    Vertices in no face are never cavity."""
    verts = np.asarray(verts, np.float64)
    faces = np.asarray(faces, np.int64)
    if visibility is None:
        visibility = outer_visibility(verts, faces, occluders)
    hidden = visibility < CAVITY_VISIBILITY
    used = np.zeros(len(verts), bool)
    used[faces.ravel()] = True
    hidden &= used
    if not hidden.any():
        return hidden
    # Pieces joined by faces whose corners are all hidden; their size by area (a third of
    # each face's area to each corner), so the count does not depend on the mesh density.
    inner = faces[hidden[faces].all(1)]
    comp = connected_components(len(verts), inner)
    area = face_areas(verts, faces)
    vertex_area = np.bincount(faces.ravel(), np.repeat(area / 3.0, 3), minlength=len(verts))
    piece_area = np.bincount(comp[hidden], vertex_area[hidden], minlength=comp.max() + 1)
    big = piece_area >= MIN_CAVITY_SHARE * float(area.sum())
    return hidden & big[comp]


def follow_matrix(points: np.ndarray, outer_points: np.ndarray,
                  falloff: float = FALLOFF, k: int = FOLLOW_NEIGHBOURS) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    """How cavity points follow the outer skin: ``(W (N,M) sparse, attenuation (N,))``.

    Row i of ``W`` holds Gaussian weights (``falloff``) of the ``k`` outer points nearest to
    point i, normalized to sum to the attenuation ``exp(-d^2 / 2 falloff^2)`` (``d`` the
    distance to the nearest outer point): ``W @ values`` is a smooth mean of the outer
    skin's values that fades with depth. ``W / attenuation`` (rows summing to 1) carries
    values that must not fade (region weights)."""
    from scipy.spatial import cKDTree

    points = np.asarray(points, np.float64)
    outer_points = np.asarray(outer_points, np.float64)
    k = int(min(k, len(outer_points)))
    if len(points) == 0 or k == 0:
        return scipy.sparse.csr_matrix((len(points), len(outer_points)), dtype=np.float32), np.zeros(len(points))
    dist, idx = cKDTree(outer_points).query(points, k=k)
    dist, idx = dist.reshape(len(points), k), idx.reshape(len(points), k)
    near = dist[:, :1]
    w = np.exp(-(dist ** 2 - near ** 2) / (2.0 * falloff ** 2))
    w /= w.sum(1, keepdims=True)
    attenuation = np.exp(-near[:, 0] ** 2 / (2.0 * falloff ** 2))
    rows = np.repeat(np.arange(len(points)), k)
    matrix = scipy.sparse.csr_matrix(((w * attenuation[:, None]).ravel().astype(np.float32), (rows, idx.ravel())),
                                     shape=(len(points), len(outer_points)))
    return matrix, attenuation


@dataclass
class OuterSkin:
    """The proxy cut down to the outer skin, and how every vertex of the head follows it."""

    verts: np.ndarray                       # (M,3) canonical, the outer proxy vertices
    faces: np.ndarray                       # (G,3) into verts
    carry: scipy.sparse.csr_matrix          # (V,M) outer proxy -> every vertex, fading in cavities
    carry_regions: scipy.sparse.csr_matrix  # (V,M) the same without the fading
    cavity: np.ndarray                      # (V,) bool: rows that follow instead of being rigged
    attenuation: np.ndarray                 # (C,) the fading of each cavity row, in row order
    seconds: float = 0.0


def outer_skin(proxy, carry: scipy.sparse.csr_matrix, head_parts, norm, verts_world: np.ndarray,
               skin: np.ndarray) -> OuterSkin:
    """Find the cavities on the proxy (``mesh.proxy.Proxy``, canonical frame) and cut them
    out. ``carry`` (V,P) is the proxy's own carry matrix; ``head_parts`` the split head
    (``mesh.head.HeadParts``): its loose parts inside the skin's box hide skin (an eyeball
    hides the socket behind it). A skin vertex whose proxy face touches a cavity follows
    the outer skin (:func:`follow_matrix`); every other row is carried as before."""
    t = time.perf_counter()
    pv = np.asarray(proxy.verts, np.float64)
    pf = np.asarray(proxy.faces, np.int64)
    cavity_proxy = find_cavities(pv, pf, _occluders(head_parts, norm))
    kept_faces = ~cavity_proxy[pf].any(1)
    if cavity_proxy.any() and kept_faces.any():
        outer_idx = np.unique(pf[kept_faces])
    else:                                       # nothing found (or nothing left): as before
        kept_faces[:] = True
        outer_idx = np.arange(len(pv))
    remap = np.full(len(pv), -1, np.int64)
    remap[outer_idx] = np.arange(len(outer_idx))
    outer_faces = remap[pf[kept_faces]]
    rows = np.flatnonzero(skin)
    on_outer = kept_faces[np.asarray(proxy.face_index)]      # per skin row, in row order
    cavity = np.zeros(len(skin), bool)
    cavity[rows[~on_outer]] = True
    keep = scipy.sparse.diags((~cavity).astype(np.float32))
    base = (keep @ carry[:, outer_idx]).tocsr()
    follow_rows = np.flatnonzero(cavity)
    points = norm.apply(verts_world[follow_rows]).astype(np.float64)
    follow, attenuation = follow_matrix(points, pv[outer_idx])
    place = scipy.sparse.csr_matrix((np.ones(len(follow_rows), np.float32), (follow_rows, np.arange(len(follow_rows)))),
                                    shape=(len(skin), len(follow_rows)))
    fade = (place @ follow).tocsr()
    steady = (place @ (scipy.sparse.diags(1.0 / np.maximum(attenuation, 1e-30)) @ follow)).tocsr()
    return OuterSkin(pv[outer_idx].astype(np.float32), outer_faces, (base + fade).tocsr(),
                     (base + steady).tocsr(), cavity, attenuation, time.perf_counter() - t)


def _occluders(head_parts, norm):
    """(verts, faces) canonical: the loose parts that lie inside the skin's box (eyeballs,
    teeth, tongue), not hair cards or earrings that stick out and would hide the scalp."""
    hp = head_parts
    used = np.zeros(len(hp.verts), bool)
    used[hp.faces.ravel()] = True
    box = hp.verts[hp.skin & used]
    if len(box) == 0:
        return None
    inside = used & ~hp.skin & np.all((hp.verts >= box.min(0)) & (hp.verts <= box.max(0)), axis=1)
    faces = hp.faces[inside[hp.faces].all(1)]
    if len(faces) == 0:
        return None
    return norm.apply(hp.verts).astype(np.float64), faces


def mouth_bag_follows_jaw(head, deltas_proxy: np.ndarray, ict_deltas: np.ndarray) -> np.ndarray:
    """The lower part of a mouth bag rides with the jaw; in place on ``ict_deltas`` (53,V,3).

    ``head`` a ``rig.PreparedHead`` with cavities, ``deltas_proxy`` (M,53,3) the canonical
    deltas on its outer proxy. A cavity vertex follows the jaw when it lies below the mouth
    line (``parts.mouth_line`` + ``parts.MOUTH_MARGIN``) and its nearest outer skin is jaw
    skin (``parts.is_jaw_skin``); in the four jaw shapes it then moves by its faded mean of
    the outer skin plus ``(1 - attenuation)`` times the jaw's rigid motion
    (``parts.follow_jaw``): the lips' inside keeps the lips' motion, the floor of the bag
    swings with the chin as the lower teeth do. Returns the (V,) bool mask that follows."""
    from scipy.spatial import cKDTree

    from . import parts

    rows = np.flatnonzero(head.cavity)
    out = np.zeros(head.n_verts, bool)
    outer_points = np.asarray(head.prepared.verts, np.float64)
    if len(rows) == 0 or len(outer_points) < 3:
        return out
    jaw_skin = parts.is_jaw_skin(deltas_proxy)
    if not jaw_skin.any():
        return out
    points = head.norm.apply(head.verts_world[rows]).astype(np.float64)
    nearest = cKDTree(outer_points).query(points)[1]
    line = parts.mouth_line(outer_points, deltas_proxy) + parts.MOUTH_MARGIN
    follows = jaw_skin[nearest] & (points[:, 2] < line)
    if not follows.any():
        return out
    anchors = parts.jaw_anchors(deltas_proxy)
    rigid = parts.follow_jaw(points[follows], outer_points[anchors], deltas_proxy[anchors].transpose(1, 0, 2))
    keep = (1.0 - head.cavity_attenuation[follows])[:, None]
    for s in parts.JAW_SHAPES:
        ict_deltas[s, rows[follows]] += head.norm.invert_vectors(keep * rigid[s])
    out[rows[follows]] = True
    return out
