# SPDX-License-Identifier: GPL-3.0-or-later
"""The embedded default performance: blinks, brows, a smile, a jaw open, visemes.

Made by the project itself (no recording to license), as a :class:`Take` that
``python build.py demo`` writes as a Live Link Face CSV and imports like any artist's
file, so the demo runs the real pipeline end to end. Each event is a raised-cosine bump
(smooth on and off, no pops); :data:`POSES` names the frame where each one peaks, for the
contact sheet. No bpy.
"""

from __future__ import annotations

import numpy as np

from .. import arkit
from .take import Take

FPS = 30.0
DURATION = 8.0   # seconds

# (start s, end s, {channel: peak weight}, label of the pose at the peak)
EVENTS = (
    (0.55, 0.85, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}, "blink"),
    (1.00, 2.10, {"browInnerUp": 0.9, "browOuterUpLeft": 0.8, "browOuterUpRight": 0.8,
                  "eyeWideLeft": 0.4, "eyeWideRight": 0.4}, "brows up"),
    (2.30, 3.70, {"mouthSmileLeft": 0.9, "mouthSmileRight": 0.9, "cheekSquintLeft": 0.5,
                  "cheekSquintRight": 0.5, "eyeSquintLeft": 0.3, "eyeSquintRight": 0.3}, "smile"),
    (3.05, 3.35, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}, None),
    (3.90, 4.90, {"jawOpen": 0.8, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3}, "jaw open"),
    (5.00, 5.50, {"jawOpen": 0.55, "mouthStretchLeft": 0.2, "mouthStretchRight": 0.2}, "AA"),
    (5.45, 5.95, {"mouthFunnel": 0.7, "mouthPucker": 0.6, "jawOpen": 0.2}, "OO"),
    (5.90, 6.40, {"mouthStretchLeft": 0.6, "mouthStretchRight": 0.6, "jawOpen": 0.15,
                  "mouthSmileLeft": 0.25, "mouthSmileRight": 0.25}, "EE"),
    # mouthClose closes the lips the jaw opened (ARKit's definition): never more of it than
    # of jawOpen, or the lower lip rises through the upper one (facecap's own shapes: 11.6 mm
    # at this MM without the jaw, lips meeting with it).
    (6.35, 6.85, {"jawOpen": 0.3, "mouthClose": 0.3, "mouthPressLeft": 0.6, "mouthPressRight": 0.6,
                  "mouthRollLower": 0.3}, "MM"),
    (6.90, 7.60, {"browDownLeft": 0.8, "browDownRight": 0.8, "noseSneerLeft": 0.5,
                  "noseSneerRight": 0.5, "mouthFrownLeft": 0.5, "mouthFrownRight": 0.5}, "frown"),
    (7.45, 7.75, {"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}, None),
)


def _bump(t: np.ndarray, start: float, end: float) -> np.ndarray:
    """0 outside [start, end], a raised cosine peaking at 1 in the middle."""
    phase = np.clip((t - start) / (end - start), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * phase)


def demo_take(fps: float = FPS) -> Take:
    """The default performance with a gentle head sway (radians)."""
    t = np.arange(int(round(DURATION * fps)) + 1) / fps
    weights = np.zeros((t.size, len(arkit.ARKIT_52)), np.float32)
    for start, end, shape, _label in EVENTS:
        bump = _bump(t, start, end)
        for name, peak in shape.items():
            column = arkit.ARKIT_INDEX[name]
            weights[:, column] = np.maximum(weights[:, column], peak * bump)
    head = np.stack([0.06 * np.sin(2 * np.pi * t / 4.0),      # pitch
                     0.12 * np.sin(2 * np.pi * t / 6.0),      # yaw
                     0.04 * np.sin(2 * np.pi * t / 5.0)], 1)  # roll
    return Take(times=t, names=list(arkit.ARKIT_52), weights=weights, head_rotation=head,
                fps=fps, source="Facsimile demo performance")


def poses(first_frame: int = 1, fps: float = FPS) -> list[tuple[int, str]]:
    """(scene frame, label) of the neutral start and each labelled event's peak."""
    out = [(first_frame, "neutral")]
    for start, end, _shape, label in EVENTS:
        if label:
            out.append((first_frame + int(round(0.5 * (start + end) * fps)), label))
    return out
