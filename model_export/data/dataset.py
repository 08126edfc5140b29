# SPDX-License-Identifier: GPL-3.0-or-later
"""Synthetic training meshes from ICT-FaceKit: identities x stylizations x topologies.

A *pool* entry is one head the networks can see: a random identity (the 100
modes, N(0, sigma^2), sigma up to 1.5), optionally stylized (big eyes, long
nose, ...), re-meshed into a topology of its own (a crop, a resolution, a grid
orientation, a vertex order), slightly rotated, and put through exactly the
preprocessing the add-on applies (``core.mesh.head.normalize_head`` and
``core.features.prepare``). Its ground truth, the 53 ICT expression deltas and
the region labels, reaches the new topology through barycentric closest-point
correspondence on the ICT surface. Units never matter: normalization divides
them out (mm, cm and m heads give the same canonical mesh, see the tests).

Building a pool entry costs one eigendecomposition, so the pool is
built once and expressions are drawn per step: the rig losses use all 53 shapes
of an entry, the expression encoder a random mix of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from blender_addon.core import features as featlib
from blender_addon.core.closest_point import closest_point_barycentric, interpolate_barycentric
from blender_addon.core.mesh.head import normalize_head
from blender_addon.core.mesh.proxy import cluster_simplify, loop_free_subdivide

from .ict import ICTFaceKit
from .stylize import random_stylization

CROPS = ("narrow_face", "face", "skin")
CROP_PROBS = (0.25, 0.35, 0.40)
SIGMA_MAX = 1.5


@dataclass
class Topology:
    """A re-meshed crop of the ICT skin: every vertex is a point on the ICT surface."""

    crop: str
    faces: np.ndarray        # (F,3) on this topology
    face_index: np.ndarray   # (M,) ICT skin triangle holding each vertex
    bary: np.ndarray         # (M,3) barycentric coordinates in it
    labels: np.ndarray       # (M,) region label (ICT label of the nearest corner)

    @property
    def n(self) -> int:
        return len(self.face_index)

    def carry(self, ict_faces: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Per-ICT-vertex values (V,3) or shapes (S,V,3) -> this topology's vertices."""
        values = np.asarray(values)
        if values.ndim == 3:
            moved = np.moveaxis(values, 0, 1)                              # (V,S,3)
            return np.moveaxis(interpolate_barycentric(moved, ict_faces, self.face_index, self.bary), 1, 0)
        return interpolate_barycentric(values, ict_faces, self.face_index, self.bary)


@dataclass
class PoolMesh:
    """One training head in the canonical frame, with its operators and ground truth."""

    name: str
    prepared: featlib.PreparedMesh
    deltas: np.ndarray       # (53,M,3) canonical-frame expression deltas
    labels: np.ndarray       # (M,)
    id_coeffs: np.ndarray    # (100,)
    scale: float             # canonical unit in cm (for reporting errors in mm)


def _crop_mask(ict: ICTFaceKit, crop: str) -> np.ndarray:
    return getattr(ict, crop)


def make_topology(ict: ICTFaceKit, labels: np.ndarray, rng: np.random.Generator,
                  crop: str | None = None, target_verts: int | None = None,
                  max_verts: int = featlib.PROXY_MAX_VERTS) -> Topology:
    """A random re-meshing of an ICT crop with at most ``max_verts`` vertices.

    Vertex clustering on a randomly offset and rotated grid gives a different
    triangulation every time; half of the topologies are clustered in a warped
    space so their density varies over the face (denser towards the centre, as
    artists model), and the vertex order is shuffled.
    """
    crop = crop or CROPS[rng.choice(len(CROPS), p=CROP_PROBS)]
    vidx, faces = ict.submesh(_crop_mask(ict, crop))
    verts = ict.neutral[vidx].astype(np.float64)
    if target_verts is None:
        target_verts = int(np.exp(rng.uniform(np.log(700), np.log(max_verts))))
    target_verts = min(target_verts, max_verts)
    space = verts
    if rng.random() < 0.5:
        # Distance from the nose tip, compressed: cells in this space are small near it.
        centre = verts[np.argmin(verts[:, 1])]
        r = np.linalg.norm(verts - centre, axis=1, keepdims=True)
        space = centre + (verts - centre) * (1.0 + rng.uniform(0.3, 1.5) * r / (r.max() + 1e-9))
    rotation = _random_rotation(rng, np.pi)
    offset = rng.uniform(0, 1, 3)
    new_verts, new_faces, rep = _cluster_to(space, faces, target_verts, offset, rotation)
    points = verts[rep] if rep is not None else new_verts
    perm = rng.permutation(len(points))
    inverse = np.argsort(perm)
    points = points[perm]
    new_faces = inverse[new_faces]
    fi, bary = closest_point_barycentric(points, ict.neutral, ict.faces)
    corner = ict.faces[fi, np.argmax(bary, axis=1)]
    return Topology(crop, new_faces.astype(np.int64), fi, bary.astype(np.float32), labels[corner])


def make_test_topology(ict: ICTFaceKit, labels: np.ndarray, rng: np.random.Generator, crop: str,
                       target_verts: int | None, subdivide: bool) -> Topology:
    """An *input* mesh for the benchmarks (any size, it goes through the add-on's proxy).

    ``target_verts=None`` keeps ICT's own topology of the crop; ``subdivide`` first
    splits every triangle in four, so clustering can reach 12k vertices.
    """
    vidx, faces = ict.submesh(_crop_mask(ict, crop))
    verts = ict.neutral[vidx].astype(np.float64)
    if target_verts is None:
        points, new_faces = verts, faces
    else:
        if subdivide:
            verts, faces = loop_free_subdivide(verts, faces)
            verts = verts.astype(np.float64)
        _, new_faces, rep = _cluster_to(verts, faces, target_verts, rng.uniform(0, 1, 3),
                                        _random_rotation(rng, np.pi))
        points = verts[rep]
    fi, bary = closest_point_barycentric(points, ict.neutral, ict.faces)
    corner = ict.faces[fi, np.argmax(bary, axis=1)]
    return Topology(crop, np.asarray(new_faces, np.int64), fi, bary.astype(np.float32), labels[corner])


def _cluster_to(space, faces, target, offset, rotation):
    """Bisect the clustering cell size until the result has <= target vertices."""
    extent = np.ptp(space, axis=0).max()
    lo, hi = extent / 400.0, extent / 4.0
    best = None
    for _ in range(18):
        cell = np.sqrt(lo * hi)
        result = cluster_simplify(space, faces, cell, offset=offset * cell, rotation=rotation)
        if len(result[0]) > target:
            lo = cell
        else:
            hi = cell
            best = result
        if best is not None and len(best[0]) > 0.93 * target:
            break
    if best is None:
        best = cluster_simplify(space, faces, hi, offset=offset * hi, rotation=rotation)
    return best


def _random_rotation(rng: np.random.Generator, max_angle: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = rng.uniform(-max_angle, max_angle)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def random_identity(rng: np.random.Generator, sigma_max: float = SIGMA_MAX) -> np.ndarray:
    sigma = rng.uniform(0.0, sigma_max)
    return rng.normal(0.0, sigma, 100).astype(np.float32)


def head_geometry(ict: ICTFaceKit, id_coeffs: np.ndarray, rng: np.random.Generator | None,
                  stylize_prob: float = 0.6, stylize_strength: float | None = None):
    """ICT-vertex neutral (V,3) and expression deltas (53,V,3) of one identity, maybe stylized.

    A stylization warp W is smooth, so an expression is warped as a position
    (W(n + e) - W(n)), which keeps the shape's motion attached to the warped
    feature, as an artist adapting a rig to a stylized head would.
    """
    neutral = ict.mesh(id_coeffs).astype(np.float64)
    deltas = ict.exp_basis.astype(np.float64)
    if rng is not None and (stylize_strength or rng.random() < stylize_prob):
        strength = stylize_strength if stylize_strength is not None else rng.uniform(0.3, 1.0)
        warp = random_stylization(ict.landmark_positions(neutral), rng, strength)
        warped = warp.apply(neutral)
        deltas = warp.apply(neutral[None] + deltas) - warped[None]
        neutral = warped
    return neutral, deltas


def make_pool_mesh(ict: ICTFaceKit, topo: Topology, id_coeffs: np.ndarray, rng: np.random.Generator,
                   name: str, tilt_deg: float = 8.0, stylize_prob: float = 0.6,
                   stylize_strength: float | None = None) -> PoolMesh:
    neutral_ict, deltas_ict = head_geometry(ict, id_coeffs, rng, stylize_prob, stylize_strength)
    verts = topo.carry(ict.faces, neutral_ict)
    deltas = topo.carry(ict.faces, deltas_ict)
    rot = _random_rotation(rng, np.deg2rad(tilt_deg)) if tilt_deg > 0 else np.eye(3)
    verts = verts @ rot.T
    deltas = deltas @ rot.T
    norm = normalize_head(verts)
    canon = norm.apply(verts)
    prepared = featlib.prepare(canon, topo.faces)
    return PoolMesh(name, prepared, norm.apply_vectors(deltas).astype(np.float32), topo.labels,
                    np.asarray(id_coeffs, np.float32), float(norm.scale))


def random_code(rng: np.random.Generator, n: int = 53) -> np.ndarray:
    """An expression: 1-5 active shapes, or a dense random mix, or (rarely) neutral."""
    code = np.zeros(n, np.float32)
    u = rng.random()
    if u < 0.05:
        return code
    if u < 0.55:
        active = rng.choice(n, size=rng.integers(1, 6), replace=False)
        code[active] = rng.uniform(0.2, 1.0, len(active))
    else:
        mask = rng.random(n) < rng.uniform(0.1, 0.5)
        code[mask] = rng.uniform(0.0, 1.0, mask.sum())
    return code
