# SPDX-License-Identifier: GPL-3.0-or-later
"""A head as the networks see it: its skin among loose parts, its frame and scale.

:func:`split_parts` / :func:`find_skin` separate the skin from eyes, teeth and other
loose parts; :class:`Normalization` / :func:`normalize_head` put it in a canonical frame
and size; :func:`facing_score` / :func:`looks_toward_minus_y` check that it faces -Y.

Conventions: float (N,3) vertices and integer (F,3) triangles in the Blender frame (Z up,
the face looks toward -Y, +X is the character's left), any unit scale. Returned vertex
arrays are float32 and returned triangles int32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .topology import as_faces, as_verts, connected_components, face_areas, face_cross, weld


@dataclass
class HeadParts:
    """A head split into its loose parts, once (:func:`split_parts`): the weld and the
    component labels are shared by skin detection, the proxy and the loose-part rules,
    which saves a weld and a component search on every dense head."""

    verts: np.ndarray          # (W,3) float64 welded vertices
    faces: np.ndarray          # (F,3) int64 faces on the welded vertices (same count and order)
    vertex_map: np.ndarray     # (N,) welded index of every original vertex
    part: np.ndarray           # (W,) connected component of every welded vertex
    skin: np.ndarray           # (W,) bool: welded vertices that are skin

    @property
    def skin_of_original(self) -> np.ndarray:
        """(N,) bool: the skin mask on the original vertices."""
        return self.skin[self.vertex_map]

    def facing_inward(self) -> bool:
        """True when the skin's normals point mostly inward (flipped faces, a mirrored
        transform): area-weighted, the normal of each face against the direction from the
        skin's centre to the face, which is positive on a closed head and on a face mask."""
        verts, faces, _index = self.skin_mesh()
        if len(faces) == 0:
            return False
        cross = face_cross(verts, faces)
        centres = verts[faces].mean(axis=1)
        outward = centres - verts[np.unique(faces)].mean(axis=0)
        outward /= np.maximum(np.linalg.norm(outward, axis=1, keepdims=True), 1e-30)
        area = np.linalg.norm(cross, axis=1)
        total = float(area.sum())
        return total > 0 and float(np.einsum("ij,ij->", cross, outward)) < -0.2 * total

    def large_skin_shells(self, ratio: float = 0.5) -> int:
        """Skin shells with at least ``ratio`` of the largest one's area (two heads in one mesh)."""
        skin_faces = self.skin[self.faces[:, 0]]
        if not skin_faces.any():
            return 0
        faces = self.faces[skin_faces]
        area = np.bincount(self.part[faces[:, 0]], weights=face_areas(self.verts, faces),
                           minlength=int(self.part.max()) + 1)
        return int((area >= ratio * area.max()).sum()) if area.max() > 0 else 0

    def skin_mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The skin on its own: ``(verts (S,3), faces (F,3) into them, index (S,))`` with
        ``index`` the welded vertex each skin vertex is."""
        index = np.flatnonzero(self.skin)
        remap = np.full(len(self.skin), -1, np.int64)
        remap[index] = np.arange(len(index))
        faces = remap[self.faces]
        return self.verts[index], faces[(faces >= 0).all(axis=1)], index


def split_parts(verts, faces, min_area_ratio: float = 0.1, bbox_margin: float = 0.01) -> HeadParts:
    """Weld a head, label its loose parts and find its skin (rule: :func:`find_skin`)."""
    v = as_verts(verts)
    f = as_faces(faces)
    if len(f) == 0:
        return HeadParts(v, f, np.arange(len(v)), np.arange(len(v)), np.zeros(len(v), dtype=bool))
    wv, wf, vmap = weld(v, f)
    wv, wf = wv.astype(np.float64), wf.astype(np.int64)
    labels = connected_components(len(wv), wf)
    n_comp = labels.max() + 1
    comp_area = np.bincount(labels[wf[:, 0]], weights=face_areas(wv, wf), minlength=n_comp)
    main = int(np.argmax(comp_area))
    referenced = np.zeros(len(wv), dtype=bool)
    referenced[wf.ravel()] = True

    box = wv[(labels == main) & referenced]
    lo, hi = box.min(axis=0), box.max(axis=0)
    margin = bbox_margin * float(np.linalg.norm(hi - lo))
    outside = np.any((wv < lo - margin) | (wv > hi + margin), axis=1) & referenced
    comp_outside = np.bincount(labels[outside], minlength=n_comp) > 0
    is_skin = comp_outside & (comp_area >= min_area_ratio * comp_area[main])
    is_skin[main] = True
    return HeadParts(wv, wf, vmap, labels, is_skin[labels] & referenced)


def find_skin(verts, faces, min_area_ratio: float = 0.1, bbox_margin: float = 0.01):
    """(N,) bool mask of the head skin among the loose parts of a head model.

    Rule, on the welded mesh (so UV-seam splits do not cut the skin into pieces):

    1. the connected component with the largest surface area is skin;
    2. eyes, teeth, tongue, mouth bag, lashes, caruncles... are enclosed by the skin, so a
       component lying entirely inside the skin's bounding box (grown by ``bbox_margin``
       of its diagonal) is not skin, whatever its size;
    3. a component reaching outside that box is skin only when its area is at least
       ``min_area_ratio`` of the largest one (a neck or scalp modelled as a separate
       shell); small outside parts (hair cards, earrings) are not.

    Vertices that belong to no face are never skin.
    """
    return split_parts(verts, faces, min_area_ratio, bbox_margin).skin_of_original


@dataclass
class Normalization:
    """Similarity that maps a head to the canonical frame: ``(v @ R.T - center) / scale``.

    ``rotation`` R (3x3, None for none) turns a head that is not upright or not facing -Y
    into the pose the networks were trained on (``core.landmarks``); ``center`` is then in
    the turned axes. Vectors (shape deltas) turn and scale, positions also move."""

    center: np.ndarray
    scale: float
    rotation: np.ndarray | None = None

    def apply(self, v) -> np.ndarray:
        v = as_verts(v)
        if self.rotation is not None:
            v = v @ self.rotation.T
        return ((v - self.center) / self.scale).astype(np.float32)

    def invert(self, v) -> np.ndarray:
        out = as_verts(v) * self.scale + self.center
        if self.rotation is not None:
            out = out @ self.rotation
        return out.astype(np.float32)

    def apply_vectors(self, d) -> np.ndarray:
        """Displacements and other difference vectors: scaled (and turned), never translated."""
        d = np.asarray(d, dtype=np.float64)
        if self.rotation is not None:
            d = d @ self.rotation.T
        return (d / self.scale).astype(np.float32)

    def invert_vectors(self, d) -> np.ndarray:
        d = np.asarray(d, dtype=np.float64) * self.scale
        if self.rotation is not None:
            d = d @ self.rotation
        return d.astype(np.float32)


def normalize_head(verts, faces=None, rotation=None) -> Normalization:
    """Canonical frame of a head that faces -Y: about 1 unit wide, nose tip at the origin.

    ``scale`` is the bounding-box width along X, so heads modelled in mm, cm or m map to
    the same size. ``center.x`` is the middle of that width; ``center.y, center.z`` are
    those of the frontmost vertex (smallest y) within the central strip
    ``|x - mid_x| < 0.15 * width``, which is the nose tip on a human head. With ``faces``
    only vertices used by a face count (stray loose vertices would distort the box).
    ``rotation`` (3x3) turns the head first; the box and the nose tip are found after it.
    """
    v = as_verts(verts)
    if faces is not None:
        used = np.unique(as_faces(faces))
        if used.size:
            v = v[used]
    if len(v) == 0:
        raise ValueError("cannot normalize an empty mesh")
    if rotation is not None:
        rotation = np.asarray(rotation, np.float64)
        v = v @ rotation.T
    lo, hi = v.min(axis=0), v.max(axis=0)
    width = float(hi[0] - lo[0])
    if not width > 0:
        raise ValueError("mesh has no extent along X")
    mid_x = 0.5 * float(lo[0] + hi[0])
    strip = np.abs(v[:, 0] - mid_x) < 0.15 * width
    tip = v[strip][np.argmin(v[strip, 1])]
    return Normalization(center=np.array([mid_x, tip[1], tip[2]]), scale=width, rotation=rotation)


_AXES = np.array([[0, -1, 0], [0, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 0, 1], [0, 0, -1]], float)


# Smallest facing margin accepted by looks_toward_minus_y: -Y must be more face-like than
# every other axis direction. A shape without a front (a sphere, two spheres) scores ~0 and
# so is reported too: whatever it is, no face looks toward -Y. Measured on the training
# heads (ICT-FaceKit crops, +1.3..+1.5), the synthetic test head (+1.0) and Suzanne, n-gon
# or triangulated (+0.3..+0.5, its flat face is the hardest case); every wrong axis
# orientation of those scores below -0.3.
FACING_THRESHOLD = 0.1
# Thinnest / largest extent below which a mesh is a sheet, not a head (a face mask is ~0.3).
FLAT_RATIO = 0.05


def _facing_cues(verts, faces):
    """Per-vertex area (a third of each incident triangle), vertex normals and concavity of
    the welded mesh: vertex quantities do not depend on how quads and n-gons were split
    into triangles, which face centroids did (Suzanne n-gon and triangulated disagreed)."""
    from .topology import vertex_normals

    v, f, _map = weld(as_verts(verts), as_faces(faces))
    v, f = v.astype(np.float64), f.astype(np.int64)
    cross = face_cross(v, f)
    area = 0.5 * np.linalg.norm(cross, axis=1)
    vertex_area = np.bincount(f.ravel(), np.repeat(area, 3), minlength=len(v)) / 3.0
    edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1), axis=0)
    degree = np.bincount(edges.ravel(), minlength=len(v)).astype(np.float64)
    ring = np.zeros_like(v)
    np.add.at(ring, edges[:, 0], v[edges[:, 1]])
    np.add.at(ring, edges[:, 1], v[edges[:, 0]])
    laplacian = ring / np.maximum(degree, 1.0)[:, None] - v
    edge_len = float(np.linalg.norm(v[edges[:, 0]] - v[edges[:, 1]], axis=1).mean()) if len(edges) else 1.0
    # A vertex sits in a hollow when its neighbours' centre lies outside along its normal by
    # more than 5 % of an edge (noise-level flatness is neither).
    bend = np.einsum("ij,ij->i", laplacian, vertex_normals(v, f).astype(np.float64)) / max(edge_len, 1e-30)
    return v, vertex_area, cross, bend > 0.05


def facing_score(verts, faces) -> float:
    """How clearly the mesh faces -Y: > 0 when -Y is the most face-like of the six axis
    directions, by that margin; ~0 for shapes without a front (a sphere); very negative
    for a flat sheet (:data:`FLAT_RATIO`).

    Each direction d is scored by four cues that hold for heads and for face masks:

    * open surfaces: 2 * (area-weighted mean normal . d); a face mask's normals point
      forward (~0.45), a closed head's cancel out (~0);
    * the nose: the most protruding point is the sharpest. With s the support height
      along d and diag the bounding-box diagonal, the vertex area within 0.03 diag of the
      support plane over the area within 0.15 diag is ~0.02 at the nose tip and 0.1-0.2
      at the back or top of a skull; the cue is log10(median ratio / ratio) in [-1, 1];
    * hollows: eye sockets, nostrils, the mouth line and the folds beside it are concave,
      a skull's back and top are convex; 5 * the area fraction of concave vertices in the
      outer part of the half facing d (Suzanne's flat face, which fools the nose cue, has
      its eyes and mouth there);
    * bilateral symmetry: a face is mirror-symmetric across the plane *containing* its
      view direction, so directions along the most symmetric axis lose up to 2 (this is
      what separates the nose from the ears, which protrude as much).
    """
    all_v = as_verts(verts)
    f = as_faces(faces)
    if len(f) == 0 or face_areas(all_v, f).sum() <= 0:
        return 0.0
    v, vertex_area, cross, hollow = _facing_cues(all_v, f)
    used = vertex_area > 0
    lo, hi = v[used].min(axis=0), v[used].max(axis=0)
    extent = hi - lo
    diag = float(np.linalg.norm(extent))
    if extent.min() < FLAT_RATIO * extent.max():
        return -2.0
    total = float(vertex_area.sum())
    mean_normal = 0.5 * cross.sum(axis=0) / total

    height = v @ _AXES.T                                          # (V,6)
    support = height[used].max(axis=0)
    near = np.array([vertex_area[height[:, i] >= support[i] - 0.03 * diag].sum() for i in range(6)])
    wide = np.array([vertex_area[height[:, i] >= support[i] - 0.15 * diag].sum() for i in range(6)])
    ratio = np.maximum(near, 1e-12 * total) / np.maximum(wide, 1e-12 * total)
    peak = np.clip(np.log10(np.median(ratio) / ratio), -1.0, 1.0)

    mid = 0.5 * (lo + hi)
    outer = ((v - mid) @ _AXES.T) / (0.5 * np.abs(_AXES) @ extent) > 0.3          # (V,6)
    cap_area = np.maximum((vertex_area[:, None] * outer).sum(axis=0), 1e-12 * total)
    hollows = 5.0 * ((vertex_area * hollow)[:, None] * outer).sum(axis=0) / cap_area

    # Mean distance of the mirrored vertices to the mesh, per mirror axis, from a
    # deterministic subsample (speed on dense meshes). The 1e-3 floor is the noise level.
    pts = v[used]
    sample = pts[:: max(1, len(pts) // 2000)]
    tree = cKDTree(pts[:: max(1, len(pts) // 20000)])
    err = np.empty(3)
    for axis in range(3):
        mirrored = sample.copy()
        mirrored[:, axis] = 2.0 * mid[axis] - mirrored[:, axis]
        err[axis] = tree.query(mirrored)[0].mean() / diag
    symmetry = (err.min() + 1e-3) / (err + 1e-3)                  # 1 for the most symmetric
    axis_of = np.abs(_AXES).argmax(axis=1)

    front = 2.0 * (_AXES @ mean_normal) + peak + hollows - 2.0 * symmetry[axis_of]
    return float(front[0] - front[1:].max())


def looks_toward_minus_y(verts, faces) -> bool:
    """False unless -Y is clearly the mesh's front (:func:`facing_score` above
    ``FACING_THRESHOLD``): a head facing another axis (a wrong import axis is the usual
    cause), or something without a face (spheres, a flat sheet); the add-on then warns."""
    return facing_score(verts, faces) > FACING_THRESHOLD
