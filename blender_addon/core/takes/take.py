# SPDX-License-Identifier: GPL-3.0-or-later
"""`Take`: one recorded facial performance, whatever file or tool it came from.

Every reader (Live Link Face CSV, Face Cap TXT, shape-key bakes, video) returns a Take, and
everything downstream (preview, bake to keyframes, retarget) consumes only Takes. A Take is
validated when it is built, so consumers never re-check shapes, NaNs or ranges.

Time convention: ``times`` are seconds, strictly increasing. Readers start them at 0 (a take
is placed in the scene by a start frame, not by its wall-clock timecode). A Take's own sample
rate ``fps`` is independent of the scene's; :meth:`Take.scene_frames` and :meth:`Take.sample`
do the mapping, so a 60 Hz take plays at the right speed in a 24 fps scene.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Optional

import numpy as np

from .. import arkit
from .errors import TakeError

# Rates a measured sample rate snaps to (within 1 %); NTSC rates included so 29.97 stays 29.97.
STANDARD_RATES = (23.976, 24.0, 25.0, 29.97, 30.0, 48.0, 50.0, 59.94, 60.0, 72.0, 90.0, 100.0,
                  120.0, 240.0)
DEFAULT_FPS = 30.0  # a one-sample take has no measurable rate

# Limits that protect the machine (docs/drive.md, "Limits"): every keyframe costs Blender
# about 100 bytes, so a take whose timecode jumps by hours would otherwise write tens of
# millions of keys and take gigabytes before the artist sees anything.
MAX_DURATION_S = 3600.0
"""A take longer than an hour is refused: phone and video takes are minutes long."""
MAX_KEYS = 15_000_000
"""Samples x channels of one take (a 60 Hz hour of 52 shapes and 9 rotations is 13 M)."""
GAP_FACTOR = 1000.0
GAP_MIN_S = 60.0
"""A step longer than both ``GAP_FACTOR`` median steps and ``GAP_MIN_S`` is not a dropout
(tracking lost for a few seconds is one: the face looked away); it is two recordings in one
file or a broken timecode. Such a take is refused, naming the frame, rather than clamped or
split: either would guess which part the artist wanted."""
MAX_ROTATION_RAD = 4.0 * math.pi
"""Rotations are radians; beyond two turns either side a value is a unit error or garbage."""


def _duration_text(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.3g} s" if seconds >= 1 else f"{seconds * 1000:.3g} ms"


def check_span(times: np.ndarray, n_channels: int, src: str) -> None:
    """Refuse a take whose time span or key count is beyond the limits above."""
    steps = np.diff(times)
    if steps.size >= 2:
        usual = float(np.median(steps))
        i = int(np.argmax(steps))
        if steps[i] > max(GAP_FACTOR * usual, GAP_MIN_S):
            raise TakeError(f"{src}: frame {i + 1} comes {_duration_text(float(steps[i]))} after the frame "
                            f"before it (the usual step is {_duration_text(usual)}): the file joins two "
                            f"recordings or has a broken timecode; cut the stray rows and import again")
    duration = float(times[-1] - times[0])
    if duration > MAX_DURATION_S:
        raise TakeError(f"{src}: the take lasts {_duration_text(duration)}, more than the "
                        f"{_duration_text(MAX_DURATION_S)} Facsimile imports; split the file")
    if times.size * max(1, n_channels) > MAX_KEYS:
        raise TakeError(f"{src}: {times.size} samples x {n_channels} channels is more than "
                        f"{MAX_KEYS // 1_000_000} M keys; split the file")


def estimate_fps(times: np.ndarray) -> float:
    """Nominal sample rate of ``times``: 1 / median step, snapped to a standard rate.

    The median ignores dropped frames (ARKit skips a frame now and then), and snapping keeps
    a 59.98 Hz measurement from becoming an odd scene rate.
    """
    times = np.asarray(times, dtype=np.float64)
    if times.size < 2:
        return DEFAULT_FPS
    rate = 1.0 / float(np.median(np.diff(times)))
    nearest = min(STANDARD_RATES, key=lambda r: abs(r - rate))
    return nearest if abs(nearest - rate) <= 0.01 * nearest else round(rate, 3)


class FrameRange(NamedTuple):
    """Inclusive scene frame span a take covers."""

    first: int
    last: int


def _interp_rows(times: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Linear interpolation of every column of ``values`` (T, C) at ``at``; ends are held.

    Vectorised over all columns at once (one searchsorted), which is what makes sampling a
    long take at every scene frame cheap.
    """
    at = np.asarray(at, dtype=np.float64)
    if len(times) == 1:
        return np.repeat(values[:1], len(at), axis=0)
    i = np.clip(np.searchsorted(times, at, side="right") - 1, 0, len(times) - 2)
    t0, t1 = times[i], times[i + 1]
    f = np.clip((at - t0) / (t1 - t0), 0.0, 1.0)[:, None]
    v0, v1 = values[i], values[i + 1]
    return (v0 + (v1 - v0) * f).astype(values.dtype, copy=False)


def _check_channel(source: str, what: str, array, t: int, widths: tuple[int, ...],
                   unwrap: bool) -> Optional[np.ndarray]:
    if array is None:
        return None
    a = np.asarray(array, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != t or a.shape[1] not in widths:
        raise TakeError(f"{source}: {what} has shape {a.shape}, expected ({t}, "
                        f"{'|'.join(map(str, widths))})")
    if not np.all(np.isfinite(a)):
        raise TakeError(f"{source}: {what} contains missing or infinite values")
    if unwrap and a.size and float(np.abs(a).max()) > MAX_ROTATION_RAD:
        raise TakeError(f"{source}: {what} reaches {float(np.abs(a).max()):.3g}, beyond two turns in "
                        f"radians: the column is corrupt or not in radians")
    # Unwrapped so consecutive samples never jump by more than pi: keyframed Euler curves
    # then interpolate the short way instead of spinning around.
    return np.unwrap(a, axis=0) if unwrap else a


@dataclass
class Take:
    """A facial performance: ARKit weights over time plus optional head and eye rotation.

    times             (T,) float64 seconds, strictly increasing (readers start at 0)
    names             ARKit camelCase channel names (any subset of the 52, no duplicates)
    weights           (T, len(names)) float32, clipped to [0, 1]; no NaN (readers repair gaps)
    head_rotation     (T, 3) radians (pitch, yaw, roll) in the source's sign convention, or None
    eye_rotation_*    (T, 2|3) radians (pitch, yaw[, roll]) of the subject's left/right eye
    fps               nominal sample rate of the recording; estimated from ``times`` if None
    source            human description of where it came from ("Live Link Face CSV 'a.csv'")
    head_position     (T, 3) in the source's units (Face Cap), or None
    warnings          one-line notes for the artist (gaps filled, columns ignored, ...)
    """

    times: np.ndarray
    names: list
    weights: np.ndarray
    head_rotation: Optional[np.ndarray] = None
    eye_rotation_left: Optional[np.ndarray] = None
    eye_rotation_right: Optional[np.ndarray] = None
    fps: Optional[float] = None
    source: str = "take"
    head_position: Optional[np.ndarray] = None
    warnings: list = field(default_factory=list)

    def __post_init__(self):
        src = self.source
        times = np.asarray(self.times, dtype=np.float64).reshape(-1)
        if times.size == 0:
            raise TakeError(f"{src}: the take has no frames")
        if not np.all(np.isfinite(times)):
            raise TakeError(f"{src}: a frame time is missing or infinite")
        steps = np.diff(times)
        if np.any(steps <= 0):
            i = int(np.argmax(steps <= 0)) + 1
            raise TakeError(f"{src}: frame times must increase, but frame {i} is at "
                            f"{times[i]:.4f} s after {times[i - 1]:.4f} s")
        self.times = times

        self.names = [str(n) for n in self.names]
        unknown = [n for n in self.names if n not in arkit.ARKIT_INDEX]
        if unknown:
            raise TakeError(f"{src}: not ARKit channel names: {', '.join(unknown[:5])}")
        if len(set(self.names)) != len(self.names):
            raise TakeError(f"{src}: a channel appears twice")

        w = np.asarray(self.weights, dtype=np.float32)
        if w.shape != (times.size, len(self.names)):
            raise TakeError(f"{src}: weights have shape {w.shape}, expected "
                            f"({times.size}, {len(self.names)})")
        if not np.all(np.isfinite(w)):
            raise TakeError(f"{src}: weights contain missing values")
        self.weights = np.clip(w, 0.0, 1.0)

        t = times.size
        self.head_rotation = _check_channel(src, "head rotation", self.head_rotation, t, (3,), True)
        self.eye_rotation_left = _check_channel(src, "left eye rotation", self.eye_rotation_left,
                                                t, (2, 3), True)
        self.eye_rotation_right = _check_channel(src, "right eye rotation",
                                                 self.eye_rotation_right, t, (2, 3), True)
        self.head_position = _check_channel(src, "head position", self.head_position, t, (3,),
                                            False)
        channels = len(self.names) + sum(0 if a is None else a.shape[1] for a in (
            self.head_rotation, self.eye_rotation_left, self.eye_rotation_right, self.head_position))
        check_span(times, channels, src)
        self.fps = float(self.fps) if self.fps else estimate_fps(times)
        if not (math.isfinite(self.fps) and self.fps > 0):
            raise TakeError(f"{src}: frame rate must be positive, got {self.fps}")
        self.warnings = list(self.warnings)

    # ---------------------------------------------------------------------------------------
    @property
    def n_frames(self) -> int:
        return int(self.times.size)

    def __len__(self) -> int:
        return self.n_frames

    @property
    def duration(self) -> float:
        """Seconds from the first to the last sample."""
        return float(self.times[-1] - self.times[0])

    def to_arkit52(self) -> np.ndarray:
        """(T, 52) float32 weights in canonical ARKit order; channels the take lacks are 0."""
        out = np.zeros((self.n_frames, len(arkit.ARKIT_52)), dtype=np.float32)
        out[:, [arkit.ARKIT_INDEX[n] for n in self.names]] = self.weights
        return out

    def sample(self, frame_times) -> np.ndarray:
        """(T', len(names)) weights at arbitrary times (seconds, the take's clock).

        Linear between samples, which is also how the recording apps interpolate; outside
        the take the first/last sample is held rather than extrapolated.
        """
        return _interp_rows(self.times, self.weights, np.atleast_1d(frame_times))

    def resample(self, fps: float) -> "Take":
        """A new Take on a uniform grid ``times[0] + k / fps``, every channel interpolated."""
        if not fps or fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        count = int(math.floor(self.duration * fps + 1e-6)) + 1
        grid = self.times[0] + np.arange(count, dtype=np.float64) / fps

        def channel(values):
            return None if values is None else _interp_rows(self.times, values, grid)

        return replace(self, times=grid, weights=channel(self.weights),
                       head_rotation=channel(self.head_rotation),
                       eye_rotation_left=channel(self.eye_rotation_left),
                       eye_rotation_right=channel(self.eye_rotation_right),
                       head_position=channel(self.head_position), fps=float(fps),
                       warnings=list(self.warnings))

    def frame_range(self, scene_fps: float, start_frame: int = 1) -> FrameRange:
        """Scene frames the take covers when its first sample sits on ``start_frame``.

        The last frame is rounded, not floored: a 2.0 s take at 24 fps ends on frame
        start + 48, even if float times put it at 47.9999999.
        """
        if not scene_fps or scene_fps <= 0:
            raise ValueError(f"scene fps must be positive, got {scene_fps}")
        first = int(start_frame)
        return FrameRange(first, first + int(round(self.duration * scene_fps)))

    def scene_frames(self, scene_fps: float, start_frame: int = 1):
        """(frames (F,) int, times (F,) float): each scene frame of the range and the take
        time it shows, ready for :meth:`sample` when baking keyframes."""
        first, last = self.frame_range(scene_fps, start_frame)
        frames = np.arange(first, last + 1)
        return frames, self.times[0] + (frames - first) / float(scene_fps)


@dataclass
class PlacedTake:
    """A take in the scene: its first sample sits on scene frame ``first_frame``."""

    take: Take
    first_frame: int   # the scene frame of the take's first sample
    source: object     # what it was read from (the Blender object, for reports)

    @property
    def frames(self) -> np.ndarray:
        """Scene frames the take covers, one per sample (takes in the scene are per frame)."""
        return self.first_frame + np.arange(self.take.n_frames)
