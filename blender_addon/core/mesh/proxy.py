# SPDX-License-Identifier: GPL-3.0-or-later
"""Mesh resolution: a proxy of a few thousand vertices for any head, and back.

:class:`Proxy` / :func:`build_proxy` (clustering, :func:`cluster_simplify`) let the
networks run on a bounded number of vertices whatever the artist's mesh, and carry results
back to every original vertex; :func:`loop_free_subdivide` goes the other way.

Conventions: float (N,3) vertices and integer (F,3) triangles in the Blender frame (Z up,
the face looks toward -Y, +X is the character's left), any unit scale. Returned vertex
arrays are float32 and returned triangles int32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import connected_components as _csgraph_components

from ..closest_point import closest_point_barycentric, closest_point_near_vertex, interpolate_barycentric
from .head import split_parts
from .topology import as_faces, as_verts, clean_faces, face_areas, weld


def loop_free_subdivide(verts, faces, values=None, axis: int = 0):
    """Midpoint subdivision: every triangle becomes four, no smoothing (so the surface is
    unchanged). Original vertices keep their indices; edge midpoints are appended.

    ``values`` with the vertices along ``axis`` (shape deltas (S,N,3): axis 1) are
    carried along, averaged at the midpoints: the exact values of anything linear on the
    surface. Returns ``(verts f32, faces i32)`` or, with values, ``(verts, faces,
    values)``."""
    v = as_verts(verts)
    f = as_faces(faces)
    edges = np.sort(np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1), axis=2)
    n = max(len(v), 1)
    keys, inverse = np.unique(edges[..., 0] * n + edges[..., 1], return_inverse=True)
    unique = np.stack([keys // n, keys % n], axis=1)
    mid = len(v) + inverse.reshape(-1, 3)            # ab, bc, ca per face
    a, b, c = f.T
    ab, bc, ca = mid.T
    new_faces = np.concatenate([np.stack(t, axis=1) for t in
                                ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
    new_verts = np.concatenate([v, 0.5 * (v[unique[:, 0]] + v[unique[:, 1]])])
    if values is None:
        return new_verts.astype(np.float32), new_faces.astype(np.int32)
    vals = np.asarray(values)
    first, second = np.take(vals, unique[:, 0], axis=axis), np.take(vals, unique[:, 1], axis=axis)
    new_values = np.concatenate([vals, 0.5 * (first + second)], axis=axis)
    return new_verts.astype(np.float32), new_faces.astype(np.int32), new_values


def _cell_keys(v: np.ndarray, cell_size: float, offset, rotation) -> np.ndarray:
    """One int64 key per point for its cell of the (offset, rotated) grid."""
    q = v if rotation is None else v @ np.asarray(rotation, dtype=np.float64).T
    idx = np.floor((q - np.asarray(offset, dtype=np.float64)) / cell_size).astype(np.int64)
    idx -= idx.min(axis=0)
    dims = idx.max(axis=0) + 1
    if float(np.prod(dims.astype(np.float64))) >= 2.0**62:
        raise ValueError("cell_size is too small for this mesh")
    return (idx[:, 0] * dims[1] + idx[:, 1]) * dims[2] + idx[:, 2]


def _cluster_labels(v, f, cell_size, offset=(0, 0, 0), rotation=None,
                    split_disconnected=True) -> tuple[np.ndarray, int]:
    """Cluster of every vertex (-1 for vertices in no face) and the cluster count."""
    used = np.zeros(len(v), dtype=bool)
    used[f.ravel()] = True
    labels = np.full(len(v), -1, dtype=np.int64)
    if not used.any():
        return labels, 0
    _, cell = np.unique(_cell_keys(v[used], cell_size, offset, rotation), return_inverse=True)
    cell_of = np.full(len(v), -1, dtype=np.int64)
    cell_of[used] = cell.ravel()
    if not split_disconnected:
        labels[used] = cell_of[used]
        return labels, int(cell.max()) + 1
    # Merge only vertices joined by mesh edges inside the cell: parts that merely pass
    # through the same cell (upper/lower lip, eyelid/eyeball) stay apart.
    i, j = f.ravel(), np.roll(f, -1, axis=1).ravel()
    inner = cell_of[i] == cell_of[j]
    n = len(v)
    graph = scipy.sparse.coo_matrix((np.ones(inner.sum()), (i[inner], j[inner])), shape=(n, n))
    _, comp = _csgraph_components(graph, directed=False)
    _, compact = np.unique(comp[used], return_inverse=True)
    labels[used] = compact.ravel()
    return labels, int(compact.max()) + 1


def cluster_simplify(verts, faces, cell_size: float, offset=(0.0, 0.0, 0.0), rotation=None,
                     *, split_disconnected: bool = True, representative: str = "nearest"):
    """Vertex-clustering simplification on a uniform grid.

    The grid has cubic cells of ``cell_size`` with a corner at ``offset``, and is
    rotated by the (3,3) matrix ``rotation`` (applied to the vertices for binning only).
    Random offsets/rotations give different triangulations of the same surface.

    All vertices of a cell that are connected through edges inside that cell become one
    vertex (``split_disconnected``; without it everything in a cell merges, which glues
    lips and eyelids shut). Its position is the original vertex closest to the cluster
    mean (``representative="nearest"``, stays exactly on the surface) or the mean itself
    (``"mean"``, smoother). Faces are remapped; degenerate and duplicate faces and
    unreferenced vertices are dropped.

    Returns ``(verts f32, faces i32, source_index)``: ``source_index[j]`` is the input
    vertex nearest to new vertex j's cluster mean (the vertex itself with "nearest").
    """
    if representative not in ("nearest", "mean"):
        raise ValueError(f"unknown representative {representative!r}")
    if not cell_size > 0:
        raise ValueError("cell_size must be positive")
    new_verts, new_faces, source, _ = _simplify(as_verts(verts), as_faces(faces), cell_size, offset,
                                                rotation, split_disconnected, representative)
    return new_verts, new_faces, source


def _simplify(v, f, cell_size, offset, rotation, split_disconnected, representative,
              clusters=None):
    """:func:`cluster_simplify`, also returning the new vertex of every input vertex
    (-1 for vertices in no face and for clusters left without faces). ``clusters`` may
    pass the result of :func:`_cluster_labels` for the same arguments."""
    labels, n = clusters or _cluster_labels(v, f, cell_size, offset, rotation,
                                            split_disconnected)
    used = np.flatnonzero(labels >= 0)
    lab = labels[used]
    count = np.bincount(lab, minlength=n)
    mean = np.stack([np.bincount(lab, weights=v[used, d], minlength=n) for d in range(3)],
                    axis=1) / np.maximum(count, 1)[:, None]
    dist = ((v[used] - mean[lab]) ** 2).sum(axis=1)
    # Per cluster, the first (lowest-index) vertex at the smallest distance: clusters in
    # a stable order, then a segmented minimum (half the cost of a three-key lexsort).
    order = np.argsort(lab, kind="stable")
    starts = np.cumsum(count) - count
    sorted_dist = dist[order]
    at_min = np.flatnonzero(sorted_dist == np.repeat(np.minimum.reduceat(sorted_dist, starts), count))
    cluster = lab[order[at_min]]
    source = used[order[at_min[np.r_[True, cluster[1:] != cluster[:-1]]]]]
    new_verts = v[source] if representative == "nearest" else mean

    new_faces, _ = clean_faces(labels[f])
    keep = np.zeros(n, dtype=bool)
    keep[new_faces.ravel()] = True
    remap = np.where(keep, np.cumsum(keep) - 1, -1)
    vertex_new = np.where(labels >= 0, remap[np.maximum(labels, 0)], -1)
    return (new_verts[keep].astype(np.float32), remap[new_faces].astype(np.int32),
            source[keep], vertex_new)


# Meshes with more used vertices than this many times the proxy size are clustered twice
# (see build_proxy).
PRECLUSTER = 4


@dataclass
class Proxy:
    """The mesh the networks run on, and how every original vertex sits on it.

    ``verts`` (M,3) float32 and ``faces`` (G,3) int32 are the proxy mesh;
    ``face_index`` (N,) and ``bary`` (N,3) float32 locate each ORIGINAL vertex on the
    proxy surface, so per-vertex results on the proxy carry back with
    :meth:`to_original`.
    """

    verts: np.ndarray
    faces: np.ndarray
    face_index: np.ndarray
    bary: np.ndarray

    def to_original(self, values_on_proxy_vertices) -> np.ndarray:
        """(M, ...) values on proxy vertices -> (N, ...) values on original vertices."""
        return interpolate_barycentric(values_on_proxy_vertices, self.faces,
                                       self.face_index, self.bary)

    def carry_matrix(self, rows=None, n_rows: int | None = None) -> scipy.sparse.csr_matrix:
        """(N, M) float32 sparse W with ``W @ values == to_original(values)``: the three
        barycentric weights of each located vertex. With ``rows`` (the row of each located
        vertex) and ``n_rows``, an (n_rows, M) matrix whose other rows are empty: one
        product then fills a whole head, zeros where nothing was located."""
        cols, bary = np.asarray(self.faces, np.int64)[self.face_index], self.bary
        if rows is None:
            rows, n_rows = np.arange(len(cols)), len(cols)
        order = np.argsort(rows, kind="stable")         # CSR wants the rows in order
        per_row = np.zeros(n_rows, np.int64)
        per_row[rows] = 3
        indptr = np.concatenate([[0], np.cumsum(per_row)])
        return scipy.sparse.csr_matrix((bary[order].astype(np.float32).ravel(), cols[order].ravel(), indptr),
                                       shape=(n_rows, len(self.verts)))

    def take(self, index) -> "Proxy":
        """The same proxy, locating only the original vertices ``index`` (in that order)."""
        return Proxy(self.verts, self.faces, self.face_index[index], self.bary[index])


def build_proxy(verts, faces, max_verts: int = 5000, seed: int = 0, *, welded: bool = False) -> Proxy:
    """Proxy of at most ``max_verts`` vertices for a mesh of any resolution.

    The mesh is welded (unless ``welded`` says it already is, as :func:`split_parts`
    leaves it) and cleaned first. If it then has at most ``max_verts`` used vertices it
    is its own proxy and the mapping is exact (each original vertex is a corner of a
    proxy face). Otherwise it is simplified with :func:`cluster_simplify`; the cell size
    is the smallest (to ~2 %) that gives at most ``max_verts`` clusters, on a grid offset
    drawn from ``seed`` (deterministic). Every original vertex is then mapped to its
    closest point on the faces around the proxy vertex its own cluster became
    (:func:`closest_point_near_vertex`): as exact as a global search wherever the
    surface is simple, and it never jumps across a thin gap (lips, eyelids) or onto
    another loose part.
    """
    if max_verts < 3:
        raise ValueError("max_verts must be at least 3")
    v = as_verts(verts)
    if welded:
        wv, wf, vmap = v, as_faces(faces), None
    else:
        wv, wf, vmap = weld(v, faces)
        wv = wv.astype(np.float64)
    wf, _ = clean_faces(wf)
    if len(wf) == 0:
        raise ValueError("the mesh has no (non-degenerate) faces")
    used = np.unique(wf)

    if used.size <= max_verts:
        remap = np.full(len(wv), -1, dtype=np.int64)
        remap[used] = np.arange(used.size)
        pv, pf = wv[used], remap[wf]
        # Each proxy vertex is located exactly as a corner of its first incident face.
        _, first = np.unique(pf.ravel(), return_index=True)
        on_proxy = remap
        exact = on_proxy >= 0
        face_index = np.empty(len(wv), dtype=np.int64)
        bary = np.zeros((len(wv), 3))
        face_index[exact] = first[on_proxy[exact]] // 3
        bary[np.flatnonzero(exact), first[on_proxy[exact]] % 3] = 1.0
        if not exact.all():                          # loose vertices: nearest surface point
            face_index[~exact], bary[~exact] = closest_point_barycentric(wv[~exact], pv, pf)
    else:
        frac = np.random.default_rng(seed).random(3)
        sv, sf, fine_of = wv, wf, None
        if used.size > PRECLUSTER * max_verts:
            # A dense mesh is first clustered to about PRECLUSTER times the proxy size,
            # at the cell its area gives (no search); the search then runs on that mesh,
            # where each try costs a fraction (200k vertices: 0.47 s -> 0.2 s).
            h = np.sqrt(_surface_area(wv, wf) / (PRECLUSTER * max_verts))
            fv, sf, _, fine_of = _simplify(wv, wf, h, frac * h, None, True, "nearest")
            sv = fv.astype(np.float64)
        cell, clusters = _cell_size_for(sv, sf, np.unique(sf), max_verts, frac)
        pv, pf, _, anchor = _simplify(sv, sf, cell, frac * cell, None, True, "nearest",
                                      clusters)
        if fine_of is not None:                      # original -> fine cluster -> proxy vertex
            anchor = np.where(fine_of >= 0, anchor[np.maximum(fine_of, 0)], -1)
        face_index, bary = closest_point_near_vertex(wv, pv, pf, anchor)
    proxy = Proxy(verts=np.asarray(pv, dtype=np.float32), faces=np.asarray(pf, dtype=np.int32),
                  face_index=face_index, bary=bary.astype(np.float32))
    # Welded copies of a vertex sit within 1e-6 of the mesh size: they share its location.
    return proxy if vmap is None else proxy.take(vmap)


def _cell_size_for(v, f, used, max_verts, frac):
    """Smallest grid cell (to ~2 %) giving at most ``max_verts`` clusters, and those
    clusters (:func:`_cluster_labels`).

    Counting occupied cells is cheap (one sort), clustering is not (a component
    search), so the search runs on cell counts and clusters only to check. Splitting
    disconnected parts adds a few clusters; when the check fails, the cell count aimed
    at is lowered by the excess and the search runs again (once, nearly always).
    """
    pts = v[used]
    counted = {}                                      # the searches revisit cell sizes

    def cells(h):
        if h not in counted:
            counted[h] = np.unique(_cell_keys(pts, h, frac * h, None)).size
        return counted[h]

    # A surface of area A sampled every h has about A / h^2 vertices.
    h = np.sqrt(_surface_area(v, f) / max_verts)
    if not h > 0:
        h = float(np.linalg.norm(np.ptp(pts, axis=0))) / np.sqrt(max_verts)
    target = max_verts
    for _ in range(50):
        h = _smallest_cell(cells, target, h)
        clusters = _cluster_labels(v, f, h, frac * h)
        if clusters[1] <= max_verts:
            return h, clusters
        target = max(1, target - (clusters[1] - max_verts) - max_verts // 200)
    raise ValueError("could not reach max_verts by clustering")


def _surface_area(v, f) -> float:
    """Total area, from at most ~20k of the faces: it only sets a grid's scale."""
    step = max(1, len(f) // 20000)
    return float(face_areas(v, f[::step]).sum()) * len(f) / len(f[::step])


def _smallest_cell(cells, target: int, h: float) -> float:
    """Smallest h (to 2 %) with ``cells(h) <= target``, starting near the guess ``h``.

    The count falls about as 1/h^2, so one rescaled guess lands within a few per cent;
    a bracket grown by 3 % steps and a bisection finish the job.
    """
    h *= np.sqrt(cells(h) / target)
    if cells(h) <= target:
        hi, lo = h, h / 1.03
        for _ in range(200):
            if cells(lo) > target:
                break
            hi, lo = lo, lo / 1.03
    else:
        lo, hi = h, h * 1.03
        for _ in range(200):
            if cells(hi) <= target:
                break
            lo, hi = hi, hi * 1.03
    while hi / lo > 1.02:
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if cells(mid) > target else (lo, mid)
    return hi
