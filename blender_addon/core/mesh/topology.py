# SPDX-License-Identifier: GPL-3.0-or-later
"""Mesh topology: triangles, welding, components, areas and normals.

The clean-up every head goes through before a network sees it (training data and an
artist's mesh alike): :func:`triangulate`, :func:`weld`, :func:`clean_faces`,
:func:`connected_components`, and the per-face / per-vertex geometry :func:`face_areas`,
:func:`vertex_normals`.

Conventions: float (N,3) vertices and integer (F,3) triangles in the Blender frame (Z up,
the face looks toward -Y, +X is the character's left), any unit scale. Returned vertex
arrays are float32 and returned triangles int32.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import connected_components as _csgraph_components
from scipy.spatial import cKDTree


def as_verts(verts) -> np.ndarray:
    return np.asarray(verts, dtype=np.float64).reshape(-1, 3)


def as_faces(faces) -> np.ndarray:
    return np.asarray(faces, dtype=np.int64).reshape(-1, 3)


def face_cross(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(F,3) cross products of two triangle edges: direction = normal, norm = 2 * area.
    Written out rather than ``np.cross``, which is ~3x slower on long arrays."""
    a = v[f[:, 0]]
    e1, e2 = v[f[:, 1]] - a, v[f[:, 2]] - a
    return np.stack([e1[:, 1] * e2[:, 2] - e1[:, 2] * e2[:, 1],
                     e1[:, 2] * e2[:, 0] - e1[:, 0] * e2[:, 2],
                     e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]], axis=1)


def face_areas(verts, faces) -> np.ndarray:
    """(F,) float64 triangle areas."""
    return 0.5 * np.linalg.norm(face_cross(as_verts(verts), as_faces(faces)), axis=1)


def triangulate(poly_indices_flat, poly_sizes, return_poly_index: bool = False):
    """Fan-triangulate polygons given as a flat corner list and per-polygon sizes.

    Polygon p with corners c0..c{n-1} becomes (c0, cj, cj+1) for j = 1..n-2, which keeps
    the winding. Polygons with fewer than 3 corners are dropped. With
    ``return_poly_index`` the (F,) polygon index of every triangle is returned as well.
    """
    idx = np.asarray(poly_indices_flat, dtype=np.int64).ravel()
    sizes = np.asarray(poly_sizes, dtype=np.int64).ravel()
    if sizes.sum() != idx.size:
        raise ValueError(f"poly_sizes sum to {sizes.sum()} but {idx.size} indices were given")
    starts = np.cumsum(sizes) - sizes
    n_tri = np.where(sizes >= 3, sizes - 2, 0)
    poly = np.repeat(np.arange(sizes.size), n_tri)
    j = np.arange(poly.size) - np.repeat(np.cumsum(n_tri) - n_tri, n_tri)  # 0..n-3
    s = starts[poly]
    tris = np.stack([idx[s], idx[s + j + 1], idx[s + j + 2]], axis=1).astype(np.int32)
    return (tris, poly) if return_poly_index else tris


def weld(verts, faces, tol_rel: float = 1e-6, boundary_only: bool = True):
    """Merge coincident vertices (UV-seam and hard-edge splits).

    Vertices closer than ``tol_rel`` times the bounding-box diagonal are merged
    (transitively). With ``boundary_only`` (default) only vertices on open boundaries
    merge: a split along a seam leaves both copies on a boundary, whereas parts that
    merely touch a surface (eyelashes rooted in an eyelid, an eye-occlusion mesh on the
    lid margin, as in ICT-FaceKit) coincide with interior vertices and must stay
    separate loose parts.

    Returns ``(welded_verts, welded_faces, vertex_map)`` where ``vertex_map[i]`` is the
    welded index of original vertex i. Welded vertices are numbered in order of their
    first original vertex and sit at its position. Faces keep their count and order (so
    per-face data stays aligned); use :func:`clean_faces` to drop faces that welding
    made degenerate.
    """
    v = as_verts(verts)
    f = as_faces(faces)
    n = len(v)
    if n == 0:
        return v.astype(np.float32), f.astype(np.int32), np.zeros(0, np.int64)
    tol = tol_rel * float(np.linalg.norm(v.max(axis=0) - v.min(axis=0)))
    cand = boundary_vertices(n, f) if boundary_only else np.ones(n, dtype=bool)
    cand = np.flatnonzero(cand)
    pairs = cand[cKDTree(v[cand]).query_pairs(tol, output_type="ndarray")].reshape(-1, 2)
    if len(pairs) == 0:                             # nothing to merge (most dense meshes)
        return v.astype(np.float32), f.astype(np.int32), np.arange(n, dtype=np.int64)
    graph = scipy.sparse.coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])),
                                    shape=(n, n))
    _, labels = _csgraph_components(graph, directed=False)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")        # number groups by first occurrence
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    vertex_map = rank[inverse.ravel()]
    welded = v[first[order]].astype(np.float32)
    return welded, vertex_map[f].astype(np.int32), vertex_map


def _edge_keys(n_verts: int, f: np.ndarray) -> np.ndarray:
    """Sorted (3F,) int64 keys ``a * n + b`` (a < b) of every face side: an edge shared by
    k faces appears k times. One 1-D sort, several times faster than ``np.unique`` on
    (E,2) rows at 200k vertices."""
    i, j = f.ravel(), f[:, [1, 2, 0]].ravel()
    keys = np.minimum(i, j) * max(n_verts, 1) + np.maximum(i, j)
    keys.sort()
    return keys


def boundary_vertices(n_verts: int, faces) -> np.ndarray:
    """(n_verts,) bool: vertices on an edge that belongs to exactly one face."""
    keys = _edge_keys(n_verts, as_faces(faces))
    repeated = np.zeros(keys.size, dtype=bool)
    same = keys[1:] == keys[:-1]
    repeated[1:] |= same
    repeated[:-1] |= same
    open_edges = keys[~repeated]
    mask = np.zeros(n_verts, dtype=bool)
    mask[open_edges // max(n_verts, 1)] = True
    mask[open_edges % max(n_verts, 1)] = True
    return mask


def clean_faces(faces):
    """Drop faces that repeat a vertex and duplicates of an earlier face (same vertex set,
    any order or orientation). Returns ``(faces int32, keep)`` with ``keep`` the boolean
    mask of kept input faces."""
    f = as_faces(faces)
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])
    cand = np.flatnonzero(keep)
    a, b, c = f[cand].T
    lo, hi = np.minimum(np.minimum(a, b), c), np.maximum(np.maximum(a, b), c)
    _, first = np.unique(_triple_keys(np.stack([lo, a + b + c - lo - hi, hi], axis=1)),
                         return_index=True)
    keep[:] = False
    keep[cand[first]] = True
    return f[keep].astype(np.int32), keep


def _triple_keys(t: np.ndarray):
    """One sortable key per row of non-negative int triples (1-D keys sort much faster
    than ``np.unique(axis=0)``); falls back to a structured view for huge indices."""
    n = int(t.max(initial=0)) + 1
    if n < 2**21:
        return (t[:, 0] * n + t[:, 1]) * n + t[:, 2]
    return np.ascontiguousarray(t).view([("", t.dtype)] * 3).ravel()


def connected_components(n_verts: int, faces) -> np.ndarray:
    """(n_verts,) component label per vertex; vertices in no face get their own label."""
    f = as_faces(faces)
    graph = scipy.sparse.csr_matrix((np.ones(f.size, np.int8), (f.ravel(), f[:, [1, 2, 0]].ravel())),
                                    shape=(n_verts, n_verts))
    # Weak connectivity of the directed face-side graph is the undirected answer, without
    # the transposed copy that ``directed=False`` builds.
    return _csgraph_components(graph, directed=True, connection="weak")[1]


def vertex_normals(verts, faces) -> np.ndarray:
    """(N,3) float32 unit normals, area-weighted over incident faces.

    Vertices with no incident area (isolated, or only in zero-area faces) get a zero
    vector rather than an invented direction, so they add no false signal to network
    features.
    """
    v = as_verts(verts)
    f = as_faces(faces)
    cross = face_cross(v, f)                        # area weighting comes for free
    acc = np.zeros_like(v)
    for c in range(3):
        acc += np.stack([np.bincount(f[:, c], weights=cross[:, d], minlength=len(v))
                         for d in range(3)], axis=1)
    norm = np.linalg.norm(acc, axis=1, keepdims=True)
    tiny = 1e-12 * max(float(norm.max(initial=0.0)), np.finfo(np.float64).tiny)
    out = np.divide(acc, norm, out=np.zeros_like(acc), where=norm > tiny)
    return out.astype(np.float32)
