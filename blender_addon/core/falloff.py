# SPDX-License-Identifier: GPL-3.0-or-later
"""Tightening the falloff of predicted shapes: the "Tighten" rig option.

The networks learned ICT-FaceKit's scanned expressions, whose motion reaches far at low
amplitude (a smile stretches the whole cheek a little). Sculpted and bone-driven rigs keep
each shape's motion near where it peaks: on the two Rocketbox game heads 45 % of the
predicted motion lands where the artist's shape moves nothing. Which style a character
wants is the animator's call, not the mesh's, so this is an option, off by default
(docs/models.md, "Falloff": the measured trade-off on ICT and the artists' heads).
"""

from __future__ import annotations

import numpy as np


def tighten(deltas: np.ndarray, amount: float) -> np.ndarray:
    """Fade out the weak, far-reaching part of every shape; ``deltas`` (P,S,3), a new array.

    Per shape, motion shorter than ``amount`` times that shape's peak fades to nothing and the
    rest shrinks by that length, rescaled so the peak keeps its size (a soft threshold: no
    step at the edge, the direction of each vertex's motion unchanged). ``amount`` 0 returns
    the shapes as they are; 0.2 keeps what moves more than a fifth of the peak.
    """
    amount = float(amount)
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"tighten amount {amount:g}: must be at least 0 and below 1")
    deltas = np.asarray(deltas)
    if amount == 0.0:
        return deltas.copy()
    length = np.linalg.norm(deltas, axis=-1)                       # (P,S)
    peak = length.max(axis=0, keepdims=True)                       # (1,S)
    kept = np.clip(length - amount * peak, 0.0, None) / (1.0 - amount)
    return deltas * (kept / np.maximum(length, 1e-30))[..., None]
