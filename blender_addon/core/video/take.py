# SPDX-License-Identifier: GPL-3.0-or-later
"""Performance videos (mp4, mov, ... any size and rate) -> :class:`Take`.

Two steps, so an artist can re-calibrate without tracking the video again:

1. :func:`track_video` decodes the frames (``core/video/decode.py``, PyAV) and runs
   MediaPipe's face landmarker on ONNX Runtime (``core/video/landmarker.py``) on each:
   a :class:`VideoTrack` of raw per-frame blend-shape scores and head rotations.
2. :func:`take_from_track` turns that into a Take with MediaPipe's known gaps handled:

   * index 0 ``_neutral`` is dropped; the 51 other scores are ARKit names already;
   * ``tongueOut`` is not tracked: the Take has the channel, kept at 0 (and says so);
   * frames without a face: gaps up to ``max_gap`` seconds are interpolated, longer ones
     relax to the neutral pose (weights 0, head rotation interpolated), with a warning;
   * **calibration** (the local-patch idea): the artist marks a frame range where the actor
     holds a neutral face; per channel its median there is the rest value ``n`` and weights
     become ``(w - n) / (1 - n)``; the head rotation becomes relative to the mean rotation
     there. Then a gain per facial region (brows, eyes, mouth,
     cheeks) scales the result: MediaPipe's weak channels (eyeWide, noseSneer, cheekSquint
     stay near 0 on most faces) are brought up by raising their region's gain;
   * **smoothing**: a One-Euro filter (Casiez et al. 2012) per channel, tunable: it removes
     frame-to-frame jitter at rest and lets fast motion (blinks) through;
   * **left/right**: MediaPipe's Left is the subject's left (the image's right in an
     ordinary, non-mirrored video), which is ARKit's convention too, so names are kept. A
     selfie video that was recorded mirrored is flipped back before tracking
     (``mirrored=True``), so its Left is again the subject's left.

Head rotation is ``(pitch, yaw, roll)`` in radians in ARKit's face-anchor convention:
right-handed about the face's own axes X (toward its left), Y (up) and Z (out of the face,
toward the camera), composed as ``R = Ry(yaw) @ Rx(pitch) @ Rz(roll)``: pitch > 0 tips the
nose down, yaw > 0 turns the face toward its left, roll > 0 tilts its head toward its right
shoulder. For a Blender character facing -Y (left at +X, up +Z) the same rotation is Euler
(X=pitch, Y=-roll, Z=yaw).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .. import arkit
from ..errors import Cancelled
from ..takes.errors import TakeError, describe_source
from ..takes.take import Take

KIND = "Video"

# Facial regions for the per-region gain (the local-patch idea: each region is calibrated
# on its own). Every ARKit channel belongs to exactly one.
REGIONS: dict[str, tuple[str, ...]] = {
    "brows": ("browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight"),
    "eyes": ("eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft",
             "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight",
             "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight"),
    "cheeks": ("cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft", "noseSneerRight"),
    "mouth": tuple(n for n in arkit.ARKIT_52 if n.startswith(("jaw", "mouth", "tongue"))),
}
REGION_OF: dict[str, str] = {n: r for r, names in REGIONS.items() for n in names}


@dataclass
class OneEuro:
    """One-Euro filter settings: cutoff ``min_cutoff + beta * |speed|`` (Hz, speed per second).

    Lower ``min_cutoff`` = steadier at rest (more lag on slow motion); higher ``beta`` =
    less lag on fast motion (more jitter let through while moving). The defaults were
    chosen on the project's rendered test performance: they halve the frame-to-frame jitter
    at rest and keep 0.27 s blinks within 0.01 Pearson of the unfiltered curves.
    """

    min_cutoff: float = 1.0
    beta: float = 3.0
    d_cutoff: float = 3.0


def one_euro(values: np.ndarray, times: np.ndarray, settings: OneEuro = OneEuro()) -> np.ndarray:
    """One-Euro filter of every column of ``values`` (T, C) sampled at ``times`` (seconds).

    Vectorised over columns; sequential in time as the filter is causal. The first sample
    passes through unchanged.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        return one_euro(x[:, None], times, settings)[:, 0]
    out = np.empty_like(x)
    if len(x) == 0:
        return out

    def alpha(cutoff, dt):
        tau = 1.0 / (2.0 * math.pi * cutoff)
        return 1.0 / (1.0 + tau / dt)

    prev = x[0].copy()
    dprev = np.zeros_like(prev)
    out[0] = prev
    for i in range(1, len(x)):
        dt = max(float(times[i] - times[i - 1]), 1e-6)
        dx = (x[i] - prev) / dt
        a_d = alpha(settings.d_cutoff, dt)
        dprev = dprev + a_d * (dx - dprev)
        cutoff = settings.min_cutoff + settings.beta * np.abs(dprev)
        tau = 1.0 / (2.0 * math.pi * cutoff)
        a = 1.0 / (1.0 + tau / dt)
        prev = prev + a * (x[i] - prev)
        out[i] = prev
    return out


@dataclass
class VideoOptions:
    """How a video becomes a Take. Frame numbers are the video's own, 0-based.

    neutral_range  (first, last) inclusive frames where the actor holds a neutral face, or
                   None for no rest-pose calibration
    gains          per region ("brows", "eyes", "mouth", "cheeks") multiplier after calibration
    smoothing      One-Euro settings, or None for raw per-frame values
    mirrored       the video is mirrored (selfie preview recording): flip before tracking
    start, stop    frame range to import (stop exclusive, None = to the end)
    max_gap        seconds without a face that are interpolated; longer gaps relax to neutral
    provider       ONNX Runtime provider preference ("AUTO", "CPU", "CUDA")
    keep_landmarks keep the (T, 478, 3) landmarks in the VideoTrack (pictures, debugging)
    """

    neutral_range: Optional[tuple[int, int]] = None
    gains: dict = field(default_factory=lambda: {r: 1.0 for r in REGIONS})
    smoothing: Optional[OneEuro] = field(default_factory=OneEuro)
    mirrored: bool = False
    start: int = 0
    stop: Optional[int] = None
    max_gap: float = 0.5
    provider: str = "AUTO"
    keep_landmarks: bool = False


@dataclass
class VideoTrack:
    """Raw tracking of one video, before calibration and smoothing.

    times        (T,) seconds from the first decoded frame
    frames       (T,) the video's frame numbers (0-based)
    found        (T,) whether a face was tracked
    blendshapes  (T, 52) MediaPipe order (``landmarker.MP_BLENDSHAPES``), NaN where not found
    rotation     (T, 3, 3) head rotations, NaN where not found
    landmarks    (T, 478, 3) pixels, or None unless asked for
    """

    source: str
    path: str
    width: int
    height: int
    fps: float
    times: np.ndarray
    frames: np.ndarray
    found: np.ndarray
    blendshapes: np.ndarray
    rotation: np.ndarray
    landmarks: Optional[np.ndarray] = None
    mirrored: bool = False
    seconds: float = 0.0        # wall time of the tracking
    detector_runs: int = 0
    warnings: list = field(default_factory=list)   # about the file (a truncated video)

    @property
    def tracking_fps(self) -> float:
        """Frames tracked per second of wall time (decode + track)."""
        return len(self.times) / self.seconds if self.seconds > 0 else 0.0


ProgressFn = Callable[[float, str], None]


def track_video(path, options: Optional[VideoOptions] = None, progress: Optional[ProgressFn] = None,
                cancelled: Optional[Callable[[], bool]] = None, landmarker=None) -> VideoTrack:
    """Decode ``path`` and track the face in every frame.

    ``progress(fraction, text)`` is called about ten times a second with a text like
    ``"frame 120/300, 41 fps"``; ``cancelled()`` is polled every frame and raises
    :class:`Cancelled`. Raises :class:`TakeError` for unreadable files or a video without
    any face.
    """
    from . import decode
    from .landmarker import FaceLandmarker, LandmarkerError

    options = options or VideoOptions()
    where = describe_source(KIND, path)
    try:
        tracker = landmarker or FaceLandmarker(provider=options.provider)
    except LandmarkerError as ex:
        raise TakeError(f"{where}: {ex}") from ex
    tracker.reset()
    runs0 = tracker.detector_runs
    times, frames, found, shapes, rots, lms = [], [], [], [], [], []
    with decode.VideoReader(path) as video:
        info = video.info
        stop = options.stop
        total = (min(stop, info.frame_count) if stop else info.frame_count) - options.start
        total = max(total, 1)
        t_start = time.perf_counter()
        last_report = 0.0
        for t, index, rgb in video.frames(options.start, stop):
            if cancelled is not None and cancelled():
                raise Cancelled()
            image = rgb[:, ::-1] if options.mirrored else rgb
            result = tracker.track(image)
            times.append(t)
            frames.append(index)
            if result is None:
                found.append(False)
                shapes.append(np.full(52, np.nan, np.float32))
                rots.append(np.full((3, 3), np.nan))
                if options.keep_landmarks:
                    lms.append(np.full((478, 3), np.nan, np.float32))
            else:
                found.append(True)
                shapes.append(result.blendshapes.astype(np.float32))
                rots.append(result.rotation)
                if options.keep_landmarks:
                    lms.append(result.landmarks.astype(np.float32))
            now = time.perf_counter()
            if progress is not None and (now - last_report > 0.1):
                last_report = now
                n = len(times)
                rate = n / max(now - t_start, 1e-9)
                progress(min(n / total, 1.0), f"frame {n}/{total}, {rate:.0f} fps")
        seconds = time.perf_counter() - t_start
    if not times:
        raise TakeError(f"{where}: no frames could be decoded in the chosen range")
    warnings = []
    announced = min(stop, info.frame_count) if stop else info.frame_count
    # A file cut short (a copy interrupted, a recording that crashed) decodes its first part
    # without an error; say so rather than import half a take as if it were all there. The
    # count is an estimate when the container has none (duration x rate): allow 2 %.
    if announced and frames[-1] + 1 < announced - max(2, 0.02 * announced):
        warnings.append(f"the video ends at frame {frames[-1] + 1} of the {announced} its header "
                        "announces: the file looks truncated")
    found_arr = np.array(found)
    if not found_arr.any():
        raise TakeError(f"{where}: no face found in any of its {len(times)} frames; the face should "
                        "be lit, unobstructed and turned toward the camera")
    if progress is not None:
        progress(1.0, f"frame {len(times)}/{len(times)}, {len(times) / max(seconds, 1e-9):.0f} fps")
    return VideoTrack(
        source=where, path=os.fspath(path), width=info.width, height=info.height, fps=info.fps,
        times=np.asarray(times, np.float64), frames=np.asarray(frames, np.int64), found=found_arr,
        blendshapes=np.asarray(shapes, np.float32), rotation=np.asarray(rots, np.float64),
        landmarks=np.asarray(lms, np.float32) if options.keep_landmarks else None,
        mirrored=options.mirrored, seconds=seconds, detector_runs=tracker.detector_runs - runs0,
        warnings=warnings)


# ---------------------------------------------------------------------------------------------
# Track -> Take
# ---------------------------------------------------------------------------------------------

def mediapipe_to_arkit(blendshapes: np.ndarray) -> np.ndarray:
    """(T, 52) MediaPipe-ordered scores -> (T, 52) ARKit order; ``_neutral`` dropped,
    ``tongueOut`` (not tracked) 0."""
    from .landmarker import MP_BLENDSHAPES

    out = np.zeros((len(blendshapes), len(arkit.ARKIT_52)), np.float32)
    for j, name in enumerate(MP_BLENDSHAPES):
        if name in arkit.ARKIT_INDEX:
            out[:, arkit.ARKIT_INDEX[name]] = blendshapes[:, j]
    return out


def rotation_to_euler(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) (pitch, yaw, roll) with R = Ry(yaw) Rx(pitch) Rz(roll)."""
    pitch = np.arcsin(np.clip(-r[..., 1, 2], -1.0, 1.0))
    yaw = np.arctan2(r[..., 0, 2], r[..., 2, 2])
    roll = np.arctan2(r[..., 1, 0], r[..., 1, 1])
    return np.stack([pitch, yaw, roll], axis=-1)


def euler_to_rotation(e: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rotation_to_euler`."""
    p, y, r = (np.asarray(e)[..., i] for i in range(3))
    cp, sp, cy, sy, cr, sr = np.cos(p), np.sin(p), np.cos(y), np.sin(y), np.cos(r), np.sin(r)
    one, zero = np.ones_like(p), np.zeros_like(p)
    rx = np.stack([one, zero, zero, zero, cp, -sp, zero, sp, cp], -1).reshape(p.shape + (3, 3))
    ry = np.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(p.shape + (3, 3))
    rz = np.stack([cr, -sr, zero, sr, cr, zero, zero, zero, one], -1).reshape(p.shape + (3, 3))
    return ry @ rx @ rz


def _gap_runs(missing: np.ndarray):
    edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def fill_missing(times: np.ndarray, values: np.ndarray, found: np.ndarray, max_gap: float,
                 long_value: Optional[float] = 0.0) -> tuple[np.ndarray, int, float]:
    """Fill rows where ``found`` is False: linear between tracked neighbours (ends held) for
    runs up to ``max_gap`` seconds; longer runs get ``long_value`` (None: interpolate them
    too). Returns (filled copy, filled frame count, longest gap in seconds)."""
    out = np.array(values, dtype=np.float64, copy=True)
    missing = ~found
    if not missing.any():
        return out, 0, 0.0
    ok = np.flatnonzero(found)
    flat = out.reshape(len(out), -1)
    for c in range(flat.shape[1]):
        flat[missing, c] = np.interp(times[missing], times[ok], flat[ok, c])
    longest = 0.0
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    for a, b in _gap_runs(missing):
        span = float(times[b - 1] - times[a]) + step
        longest = max(longest, span)
        if span > max_gap and long_value is not None:
            # relax to the rest value, easing in and out over the gap's first/last max_gap/2
            ease = min(max_gap / 2, span / 2)
            tt = times[a:b]
            w_in = np.clip((tt - times[a] + step) / max(ease, 1e-9), 0, 1)
            w_out = np.clip((times[b - 1] - tt + step) / max(ease, 1e-9), 0, 1)
            keep = (1.0 - np.minimum(w_in, w_out))[:, None]
            flat[a:b] = flat[a:b] * keep + long_value * (1.0 - keep)
    return out, int(missing.sum()), longest


def calibrate(weights: np.ndarray, neutral: Optional[np.ndarray], gains: Optional[dict]) -> np.ndarray:
    """(T, 52) ARKit weights -> rest pose removed and region gains applied, clipped to [0, 1].

    ``neutral`` (52,) is the rest value per channel: ``w' = (w - n) / (1 - n)`` maps the rest
    pose to 0 and keeps 1 reachable. ``gains`` {region: factor} then scales each region.
    """
    w = np.asarray(weights, dtype=np.float64)
    if neutral is not None:
        n = np.clip(np.asarray(neutral, dtype=np.float64), 0.0, 0.95)
        w = (w - n) / (1.0 - n)
    if gains:
        unknown = set(gains) - set(REGIONS)
        if unknown:
            raise ValueError(f"unknown region(s) {sorted(unknown)}; use {sorted(REGIONS)}")
        g = np.array([float(gains.get(REGION_OF[n], 1.0)) for n in arkit.ARKIT_52])
        w = w * g
    return np.clip(w, 0.0, 1.0).astype(np.float32)


def neutral_from_track(track: VideoTrack, frame_range: tuple[int, int]) -> np.ndarray:
    """(52,) ARKit rest values: per-channel median over the tracked frames of the range."""
    first, last = int(frame_range[0]), int(frame_range[1])
    if last < first:
        first, last = last, first
    sel = (track.frames >= first) & (track.frames <= last) & track.found
    if not sel.any():
        raise TakeError(f"{track.source}: no face tracked in the neutral frames {first}-{last}")
    return np.median(mediapipe_to_arkit(track.blendshapes[sel]), axis=0)


def neutral_rotation(track: VideoTrack, frame_range: tuple[int, int]) -> np.ndarray:
    """(3, 3) mean head rotation over the tracked frames of the range (projected back onto
    the rotations by SVD)."""
    first, last = sorted((int(frame_range[0]), int(frame_range[1])))
    sel = (track.frames >= first) & (track.frames <= last) & track.found
    if not sel.any():
        raise TakeError(f"{track.source}: no face tracked in the neutral frames {first}-{last}")
    u, _s, vt = np.linalg.svd(track.rotation[sel].mean(axis=0))
    return u @ np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt)) or 1.0]) @ vt


def take_from_track(track: VideoTrack, options: Optional[VideoOptions] = None) -> Take:
    """A Take from raw tracking: gaps, calibration, gains, smoothing (see the module doc)."""
    options = options or VideoOptions()
    warnings = list(track.warnings)
    times = track.times
    weights = mediapipe_to_arkit(np.nan_to_num(track.blendshapes, nan=0.0))
    weights, filled, longest = fill_missing(times, weights, track.found, options.max_gap, 0.0)
    rotation = np.where(track.found[:, None, None], track.rotation, np.eye(3))
    if options.neutral_range is not None:
        # The neutral frames are also the rest pose of the head: rotations become relative
        # to it (an actor filmed from below does not nod the character down all take long).
        rotation = rotation @ neutral_rotation(track, options.neutral_range).T
    euler = rotation_to_euler(rotation)
    euler, _, _ = fill_missing(times, np.unwrap(euler, axis=0), track.found, options.max_gap, None)
    if filled:
        warnings.append(f"no face in {filled} of {len(times)} frames ({100.0 * filled / len(times):.0f} %); "
                        f"filled in (longest gap {longest:.2f} s)")
    neutral = None
    if options.neutral_range is not None:
        neutral = neutral_from_track(track, options.neutral_range)
    weights = calibrate(weights, neutral, options.gains)
    if options.smoothing is not None and len(times) > 1:
        weights = np.clip(one_euro(weights, times, options.smoothing), 0.0, 1.0)
        euler = one_euro(euler, times, options.smoothing)
    warnings.append("tongueOut is not tracked from video (kept at 0)")
    fps = track.fps if track.fps > 0 else None
    return Take(times=times - times[0], names=list(arkit.ARKIT_52), weights=weights,
                head_rotation=euler, fps=fps, source=track.source, warnings=warnings)


def read_video(path, options: Optional[VideoOptions] = None, progress: Optional[ProgressFn] = None,
               cancelled: Optional[Callable[[], bool]] = None) -> Take:
    """Track a performance video and return its Take (``track_video`` + ``take_from_track``)."""
    options = options or VideoOptions()
    return take_from_track(track_video(path, options, progress, cancelled), options)
