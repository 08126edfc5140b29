# SPDX-License-Identifier: GPL-3.0-or-later
"""`LiveFrame`: one decoded frame of any live format, in the conventions of :class:`Take`.

Every wire format differs (enum order, 0-100 integers, degrees, yaw-pitch-roll order); the
decoders convert to this one shape so the receiver, the recorder and the Blender side never
look at a format again:

* ``weights``: (52,) float32 in :data:`arkit.ARKIT_52` order, values as sent (not clipped);
* rotations: (3,) float64 radians ``(pitch, yaw, roll)`` like ``Take.head_rotation``, in
  the source's sign convention; a format with two eye angles has roll 0; ``None`` when the
  frame carries no such channel;
* time: the sender's frame number and rate where the format has them (Live Link Face),
  else ``None``; arrival time is the receiver's business, not the frame's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .. import arkit


def _vector(value, size: int, name: str) -> Optional[np.ndarray]:
    if value is None:
        return None
    a = np.asarray(value, dtype=np.float64).reshape(-1)
    if a.size != size:
        raise ValueError(f"{name} needs {size} values, got {a.size}")
    return a


@dataclass
class LiveFrame:
    """One frame from a phone. See the module doc for units and orders."""

    weights: np.ndarray
    subject: str = ""
    head_rotation: Optional[np.ndarray] = None
    eye_rotation_left: Optional[np.ndarray] = None
    eye_rotation_right: Optional[np.ndarray] = None
    head_position: Optional[np.ndarray] = None
    head_quaternion: Optional[np.ndarray] = None   # (x, y, z, w), Face Cap /HRQ
    frame_number: Optional[int] = None
    sub_frame: float = 0.0
    frame_rate: Optional[tuple] = None             # (numerator, denominator)
    device_id: str = ""
    protocol: str = ""
    extras: dict = field(default_factory=dict)     # format-specific leftovers, by name

    def __post_init__(self):
        w = np.asarray(self.weights, dtype=np.float32).reshape(-1)
        if w.size != len(arkit.ARKIT_52):
            raise ValueError(f"a live frame needs {len(arkit.ARKIT_52)} weights, got {w.size}")
        self.weights = w
        self.head_rotation = _vector(self.head_rotation, 3, "head rotation")
        self.eye_rotation_left = _vector(self.eye_rotation_left, 3, "left eye rotation")
        self.eye_rotation_right = _vector(self.eye_rotation_right, 3, "right eye rotation")
        self.head_position = _vector(self.head_position, 3, "head position")
        self.head_quaternion = _vector(self.head_quaternion, 4, "head quaternion")

    def weight(self, name: str) -> float:
        """The weight of one ARKit channel by camelCase name."""
        return float(self.weights[arkit.ARKIT_INDEX[name]])

    @property
    def seconds(self) -> Optional[float]:
        """Sender time in seconds (frame number + sub-frame over the rate), or None."""
        if self.frame_number is None or not self.frame_rate:
            return None
        num, den = self.frame_rate
        if num <= 0 or den <= 0:
            return None
        return (self.frame_number + self.sub_frame) * den / num

    @property
    def timecode(self) -> str:
        """``HH:MM:SS:FF.sss`` of the sender's frame time (a time of day in Live Link Face),
        or "" when the format carries none."""
        if self.frame_number is None or not self.frame_rate or self.seconds is None:
            return ""
        num, den = self.frame_rate
        fps = num / den
        whole = int(self.frame_number)
        # Frames per second on the timecode display are the rounded rate (29.97 shows 30).
        base = max(1, int(round(fps)))
        secs, ff = divmod(whole, base)
        hh, rest = divmod(secs, 3600)
        mm, ss = divmod(rest, 60)
        return f"{hh % 24:02d}:{mm:02d}:{ss:02d}:{ff:02d}.{int(self.sub_frame * 1000) % 1000:03d}"
