# SPDX-License-Identifier: GPL-3.0-or-later
"""Network inputs: the one definition shared by training and the add-on.

Everything a network sees is built here from a mesh already in the canonical
head frame (``mesh.head.normalize_head``: Blender axes, face width 1, nose tip at the
origin), so ``model_export`` and the add-on cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mesh.topology import vertex_normals
from .spectral import SpectralOperators, compute_operators

K_EIG = 64
"""Eigenvectors per mesh: enough for facial features at a unit face width, and
cheap (a 4k-vertex eigenbasis takes a fraction of a second)."""

PROXY_MAX_VERTS = 3000
"""The networks never see more vertices than this; bigger meshes run on a proxy.
3k vertices keep ~30 vertices across an eyelid on a full head, and keep training on
a 2-core CPU within its budget (training meshes are drawn at 700-3000)."""

DISPLACEMENT_SCALE = 10.0
"""Expression displacements are ~0.01-0.1 face widths; scaled to order 1 for the encoder."""


@dataclass
class PreparedMesh:
    """A mesh in the canonical frame with its operators, ready for any network."""

    verts: np.ndarray          # (N,3) canonical frame
    faces: np.ndarray          # (F,3)
    normals: np.ndarray        # (N,3)
    ops: SpectralOperators

    @property
    def n(self) -> int:
        return len(self.verts)

    def operator_feeds(self) -> dict[str, np.ndarray]:
        return {
            "mass": self.ops.mass.astype(np.float32),
            "evals": self.ops.evals.astype(np.float32),
            "evecs": self.ops.evecs.astype(np.float32),
            "grad_evecs": self.ops.grad_evecs.astype(np.float32),
        }


def prepare(verts_canonical: np.ndarray, faces: np.ndarray, k: int = K_EIG) -> PreparedMesh:
    verts = np.asarray(verts_canonical, np.float64)
    faces = np.asarray(faces, np.int64)
    normals = vertex_normals(verts, faces)
    ops = compute_operators(verts, faces, k=min(k, max(1, len(verts) - 2)))
    return PreparedMesh(verts.astype(np.float32), faces, normals.astype(np.float32), ops)


ENCODER_OPERATORS = ("mass", "evals", "evecs", "project", "grad_x", "grad_y", "grad_z")


def encoder_feeds(operator_feeds: dict) -> dict[str, np.ndarray]:
    """The expression encoder's operator inputs from :meth:`PreparedMesh.operator_feeds`: the
    same operators in the form its products use (``model_export/export.EncoderGraph``), made
    once per source topology instead of on every network run: ``project`` (k,N) =
    evecs^T diag(mass), and the eigenvector gradients one axis a matrix, ``grad_x|y|z`` (N,k).
    Float32, contiguous, as ONNX Runtime reads them without a copy."""
    f32 = {k: np.asarray(operator_feeds[k], np.float32) for k in ("mass", "evals", "evecs", "grad_evecs")}
    out = {k: np.ascontiguousarray(f32[k]) for k in ("mass", "evals", "evecs")}
    out["project"] = np.ascontiguousarray((f32["evecs"] * f32["mass"][:, None]).T)
    for d, axis in enumerate("xyz"):
        out[f"grad_{axis}"] = np.ascontiguousarray(f32["grad_evecs"][:, :, d])
    return out


def rig_features(prepared: PreparedMesh) -> np.ndarray:
    """(N,6): position and normal in the canonical frame."""
    return np.concatenate([prepared.verts, prepared.normals], axis=1).astype(np.float32)


def expression_features(prepared_neutral: PreparedMesh, expressed_canonical: np.ndarray) -> np.ndarray:
    """(N,9): neutral position, neutral normal, scaled displacement to the expressed mesh."""
    disp = (np.asarray(expressed_canonical, np.float32) - prepared_neutral.verts) * DISPLACEMENT_SCALE
    return np.concatenate([rig_features(prepared_neutral), disp], axis=1).astype(np.float32)


def rig_feeds(prepared: PreparedMesh) -> dict[str, np.ndarray]:
    return {"features": rig_features(prepared), **prepared.operator_feeds()}


def expression_feeds(prepared_neutral: PreparedMesh, expressed_canonical: np.ndarray) -> dict[str, np.ndarray]:
    return {"features": expression_features(prepared_neutral, expressed_canonical),
            **prepared_neutral.operator_feeds()}
