# SPDX-License-Identifier: GPL-3.0-or-later
"""How one mesh is driven: which of its keys, and from the 52 ARKit weights how.

* **DIRECT**: keys with ARKit names in any spelling (``eyeBlink_L``, ``blendShape1.jawOpen``)
  and ICT-named halves (``browInnerUp_L``, following their ARKit channel): one row of a
  (K, 52) matrix per key;
* **SOLVE**: the mesh's own rig under other names, solved per frame
  (:class:`~.custom_rig_solver.CustomRigSolver`).

The Blender side (``drive/targets.py``) reads a mesh's keys and builds the plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import arkit
from .custom_rig_solver import CustomRigSolver
from .errors import TargetError
from .mapping import ChannelMap

MODES = ("AUTO", "DIRECT", "SOLVE")


def direct_rows(key_names, cmap: Optional[ChannelMap] = None) -> tuple[list, np.ndarray]:
    """(positions of the keys driven, (K, 52) rows) for ARKit / ICT-half names, rerouted by
    the channel map ``cmap`` (keys of other names, channels sent elsewhere)."""
    to_ict = arkit.arkit_to_ict_matrix()
    positions, rows, seen = [], [], set()
    for i, name in enumerate(key_names):
        channel = arkit.normalize_name(name)
        row = None
        if channel is not None:
            row = np.eye(len(arkit.ARKIT_52), dtype=np.float32)[arkit.ARKIT_INDEX[channel]]
        else:
            ict = arkit.normalize_ict_name(name)
            if ict is not None:
                channel, row = ict, to_ict[arkit.ICT_INDEX[ict]]
        if row is not None and channel not in seen:   # first key of a channel wins
            seen.add(channel)
            positions.append(i)
            rows.append(row)
    rows = np.array(rows, np.float32).reshape(-1, len(arkit.ARKIT_52))
    if cmap is not None:
        return cmap.apply_to_rows(list(key_names), positions, rows)
    return positions, rows


@dataclass
class TargetPlan:
    """How one mesh is driven: ``key_names``/``key_indices`` of the keys written, and either
    ``rows`` (DIRECT, (K, 52)) or ``solver`` (SOLVE)."""

    obj_name: str
    mode: str
    key_names: list
    key_indices: np.ndarray
    rows: Optional[np.ndarray] = None
    solver: Optional[CustomRigSolver] = None

    def values(self, weights: np.ndarray, smooth: float = 0.0, sparsity: float = 0.0) -> np.ndarray:
        """(F, 52) mapped ARKit weights at consecutive frames -> (F, K) key values."""
        if self.mode == "DIRECT":
            return np.asarray(weights, np.float32) @ self.rows.T
        return self.solver.solve(weights, smooth=smooth, sparsity=sparsity)
