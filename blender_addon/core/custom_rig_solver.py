# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive a character's own shape-key rig (VRoid ``Fcl_*``, hand-sculpted keys) from ARKit.

The network predicts, on the target mesh itself, what each ARKit channel looks like
(``rig.predict``: 52 world-space shapes and the 24 region weights). A frame of the
performance is then an *expression* on that mesh, ``sum_k w_k * shape_k``, and the custom
rig's weights are solved so its keys reproduce it: bounded least squares in [0, 1] with
temporal smoothing, optional sparsity, region by region (``core/solve.py``; the
local-patch paper's weight estimation).

No bpy here. The solve never needs every vertex of a 200k mesh: it runs on the vertices
that either rig moves, subsampled to :data:`MAX_SOLVE_VERTICES` with a fixed seed (a
least-squares fit on a uniform subsample of a smooth field is the same fit), and on
chunks of frames so memory stays bounded on a 10k-frame take.
"""

from __future__ import annotations

import numpy as np

from .errors import TargetError
from .solve import RigSolver

MAX_SOLVE_VERTICES = 6000
CHUNK_VALUES = 4_000_000   # frames per solve chunk x solved vertices x 3 (~32 MB in float64)


class CustomRigSolver:
    """expression_basis (52,V,3) ARKit shapes predicted on the mesh, rig_basis (K,V,3) the
    mesh's own key deltas (same space), regions (V,R) soft region weights or None."""

    def __init__(self, expression_basis, rig_basis, regions=None,
                 max_vertices: int = MAX_SOLVE_VERTICES, seed: int = 0):
        expression = np.asarray(expression_basis, dtype=np.float32)
        rig = np.asarray(rig_basis, dtype=np.float32)
        if expression.ndim != 3 or rig.ndim != 3 or expression.shape[1:] != rig.shape[1:]:
            raise ValueError(f"bases must be (52|K, V, 3) on the same vertices, got "
                             f"{expression.shape} and {rig.shape}")
        if rig.shape[0] == 0:
            raise TargetError("the custom rig has no shape keys to solve for")
        moving = (np.abs(expression).max(axis=(0, 2)) > 0) | (np.abs(rig).max(axis=(0, 2)) > 0)
        vertices = np.flatnonzero(moving)
        if vertices.size > max_vertices:
            rng = np.random.default_rng(seed)
            vertices = np.sort(rng.choice(vertices, size=max_vertices, replace=False))
        if vertices.size == 0:
            raise TargetError("neither rig moves any vertex")
        self.vertices = vertices
        self.expression = expression[:, vertices].reshape(expression.shape[0], -1)
        self.n_keys = rig.shape[0]
        self.solver = RigSolver(rig[:, vertices],
                                regions=None if regions is None else np.asarray(regions)[vertices])

    @property
    def dead_keys(self) -> np.ndarray:
        """Keys that move no solved vertex: they always stay at 0."""
        return self.solver.dead_shapes

    def solve(self, weights: np.ndarray, smooth: float = 0.0, sparsity: float = 0.0) -> np.ndarray:
        """(F, 52) ARKit weights at consecutive frames -> (F, K) custom-rig weights in [0, 1].

        Chunks are chained through the solver's ``prior`` (the last frame of the previous
        chunk), so the temporal smoothing carries across chunk borders.
        """
        w = np.asarray(weights, dtype=np.float32)
        if w.ndim != 2 or w.shape[1] != self.expression.shape[0]:
            raise ValueError(f"weights must be (frames, {self.expression.shape[0]}), got {w.shape}")
        out = np.zeros((w.shape[0], self.n_keys), np.float32)
        chunk = max(1, CHUNK_VALUES // self.expression.shape[1])
        prior = None
        for first in range(0, w.shape[0], chunk):
            targets = (w[first:first + chunk] @ self.expression).reshape(-1, self.vertices.size, 3)
            part = self.solver.solve(targets, smooth=smooth, sparsity=sparsity, prior=prior)
            out[first:first + chunk] = part
            prior = part[-1] if smooth else None
        return out
