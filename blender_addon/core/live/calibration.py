# SPDX-License-Identifier: GPL-3.0-or-later
"""Calibrate a live stream on a neutral face: the video import's calibration, per frame.

The actor holds a neutral face for a moment and the artist presses Calibrate. Per channel,
the median over the frames of that moment is the rest value ``n``, and every later frame's
weights become ``(w - n) / (1 - n)`` (:func:`core.video.take.calibrate`, the code the video
import runs on its neutral frames); the mean head rotation there becomes the rest rotation,
and head rotations become relative to it (as in :func:`core.video.take.take_from_track`),
so an actor filmed from below does not nod the character down all session long.

Eye rotations are left as sent: the eyes' rest is the head's forward direction already.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..video.take import calibrate, euler_to_rotation, rotation_to_euler


def _mean_rotation(rotations: np.ndarray) -> np.ndarray:
    """(3, 3) mean of rotation matrices, projected back onto the rotations by SVD."""
    u, _s, vt = np.linalg.svd(rotations.mean(axis=0))
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0]) @ vt


@dataclass(frozen=True)
class Neutral:
    """A captured rest pose: (52,) rest weights and the (3, 3) rest head rotation (or None)."""

    weights: np.ndarray
    head_rest: Optional[np.ndarray] = None
    frames: int = 0

    @classmethod
    def from_frames(cls, frames: list) -> "Neutral":
        """The neutral of some :class:`LiveFrame` objects (at least one)."""
        if not frames:
            raise ValueError("no frames to calibrate on")
        weights = np.median(np.stack([f.weights for f in frames]).astype(np.float64), axis=0)
        heads = [f.head_rotation for f in frames if f.head_rotation is not None]
        rest = _mean_rotation(euler_to_rotation(np.stack(heads))) if heads else None
        return cls(weights=weights, head_rest=rest, frames=len(frames))

    def apply_weights(self, weights: np.ndarray) -> np.ndarray:
        """(..., 52) weights -> rest removed, clipped to [0, 1] (float32)."""
        w = np.asarray(weights)
        return calibrate(w.reshape(-1, w.shape[-1]), self.weights, None).reshape(w.shape)

    def apply_head(self, rotation: Optional[np.ndarray]) -> Optional[np.ndarray]:
        """(..., 3) (pitch, yaw, roll) -> the same relative to the rest rotation."""
        if rotation is None or self.head_rest is None:
            return rotation
        return rotation_to_euler(euler_to_rotation(np.asarray(rotation)) @ self.head_rest.T)
