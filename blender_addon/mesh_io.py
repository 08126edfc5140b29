# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender meshes as numpy: the one place the features read mesh and shape-key data.

Reads are bulk (``foreach_get``) into numpy, in world space, so the core sees the head
as the artist sees it whatever the object's transform; :func:`shape_key_coords` goes back
to object space for the writes (``rig/opsdata.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MeshArrays:
    verts_world: np.ndarray     # (V,3) base mesh (Basis key if any), world space
    faces: np.ndarray           # (T,3) loop triangles (n-gons triangulated by Blender)
    basis_local: np.ndarray     # (V,3) float32 base mesh in object space, as Blender stores it
    matrix: np.ndarray          # (4,4) object to world
    mirrored: bool = False      # the transform mirrors (negative scale): winding flipped to match


def read_mesh(obj) -> MeshArrays:
    """World-space arrays of the base mesh: modifiers ignored, the Basis key if there is one."""
    mesh = obj.data
    n = len(mesh.vertices)
    local = np.empty(n * 3, np.float32)
    if mesh.shape_keys is not None and mesh.shape_keys.reference_key is not None:
        mesh.shape_keys.reference_key.points.foreach_get("co", local)
    else:
        mesh.vertices.foreach_get("co", local)
    local = local.reshape(n, 3)
    mesh.calc_loop_triangles()
    tris = np.empty(len(mesh.loop_triangles) * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", tris)
    matrix = np.array(obj.matrix_world, dtype=np.float64)
    world = local.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
    tris = tris.reshape(-1, 3).astype(np.int64)
    # A mirroring transform (an odd number of negative scales) turns the faces inside out in
    # world space; reversing the winding makes the normals face out again, as Blender draws them.
    mirrored = bool(np.linalg.det(matrix[:3, :3]) < 0)
    if mirrored:
        tris = tris[:, ::-1].copy()
    return MeshArrays(world, tris, local, matrix, mirrored)


def shape_key_coords(arrays: MeshArrays, deltas_world: np.ndarray) -> np.ndarray:
    """(V,3) float32 object-space coordinates of a shape key whose world-space deltas
    are ``deltas_world``: the basis plus the deltas through the inverse of the object's
    3x3 part. float32 throughout, as Blender stores it (a third of the time float64 takes)."""
    inv = np.linalg.inv(arrays.matrix[:3, :3]).astype(np.float32)
    co = np.asarray(deltas_world, np.float32) @ inv.T
    co += arrays.basis_local
    return co


def key_deltas_world(obj, blocks) -> np.ndarray:
    """(K, V, 3) world-space deltas of key blocks against their relative keys."""
    n = len(obj.data.vertices)
    linear = np.array(obj.matrix_world, dtype=np.float64)[:3, :3]
    out = np.empty((len(blocks), n, 3), np.float32)
    co, ref = np.empty(n * 3, np.float32), np.empty(n * 3, np.float32)
    for k, kb in enumerate(blocks):
        kb.points.foreach_get("co", co)
        kb.relative_key.points.foreach_get("co", ref)
        out[k] = (co - ref).reshape(n, 3) @ linear.T
    return out
