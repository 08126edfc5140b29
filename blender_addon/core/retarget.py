# SPDX-License-Identifier: GPL-3.0-or-later
"""The retarget map: how each ARKit channel of a performance lands on a character.

The artist tunes four things per channel, and they are applied in numpy to (F, 52) ARKit
weights sampled at consecutive scene frames (live preview and bake run the same code):

    out = clamp(gain * smooth(w, sigma) + offset)        (disabled channel: 0)

* **smoothing** ``sigma`` is the standard deviation, in scene frames, of a zero-lag Gaussian
  filter. Preview and bake both see the whole take, so there is no need for a causal
  (one-pole) filter, whose lag would make a smoothed blink land late.
* **gain** and **offset** come after smoothing: they are the artist's correction of the
  performer's range (a performer who never fully closes the eyes gets gain 1.2 on blinks),
  and an affine map commutes with the filter anyway, except for the clamp.
* **clamp** keeps the result in [0, 1], the sliders' range; off, overshoot reaches the keys
  (whose own ``slider_max`` may allow it).

The map is saved in the .blend as scene properties (``drive/props.py``) and as JSON presets
(:meth:`RetargetMap.to_dict`), so it lives here without bpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .arkit import ARKIT_52, ARKIT_INDEX

N_CHANNELS = len(ARKIT_52)
GAUSS_TRUNCATE = 3.0  # the kernel reaches 3 sigma: beyond, weights are < 1 %


def _vector(value, fill: float, dtype=np.float64) -> np.ndarray:
    if value is None:
        return np.full(N_CHANNELS, fill, dtype=dtype)
    a = np.asarray(value, dtype=dtype).reshape(-1)
    if a.shape != (N_CHANNELS,):
        raise ValueError(f"a retarget map needs {N_CHANNELS} values per setting, got {a.shape}")
    return a.copy()


def smooth_frames(weights: np.ndarray, sigma) -> np.ndarray:
    """Zero-lag Gaussian smoothing along axis 0; ``sigma`` scalar or one per column.

    Ends are held (``mode='nearest'``): a take that starts mid-smile must not fade in from 0.
    Columns sharing a sigma are filtered in one call.
    """
    w = np.asarray(weights, dtype=np.float64)
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (w.shape[1],))
    if (sig < 0).any() or not np.isfinite(sig).all():
        raise ValueError("smoothing must be finite and >= 0")
    out = w.copy()
    if w.shape[0] < 2:
        return out
    from scipy.ndimage import gaussian_filter1d  # scipy on first use, not at Blender start-up

    for s in np.unique(sig[sig > 0]):
        cols = np.flatnonzero(sig == s)
        out[:, cols] = gaussian_filter1d(w[:, cols], s, axis=0, mode="nearest",
                                         truncate=GAUSS_TRUNCATE)
    return out


@dataclass
class RetargetMap:
    """Per-channel gain, offset, smoothing (sigma in frames) and on/off, in ARKit order."""

    gain: np.ndarray = field(default_factory=lambda: _vector(None, 1.0))
    offset: np.ndarray = field(default_factory=lambda: _vector(None, 0.0))
    smoothing: np.ndarray = field(default_factory=lambda: _vector(None, 0.0))
    enabled: np.ndarray = field(default_factory=lambda: _vector(None, True, bool))
    clamp: bool = True

    def __post_init__(self):
        self.gain = _vector(self.gain, 1.0)
        self.offset = _vector(self.offset, 0.0)
        self.smoothing = _vector(self.smoothing, 0.0)
        self.enabled = _vector(self.enabled, True, bool)
        for name, values in (("gain", self.gain), ("offset", self.offset),
                             ("smoothing", self.smoothing)):
            if not np.isfinite(values).all():
                raise ValueError(f"retarget map {name} must be finite")
        if (self.smoothing < 0).any():
            raise ValueError("retarget map smoothing must be >= 0")

    @property
    def is_identity(self) -> bool:
        return bool((self.gain == 1).all() and (self.offset == 0).all()
                    and (self.smoothing == 0).all() and self.enabled.all())

    def apply(self, weights: np.ndarray, extra_smoothing: float = 0.0,
              unclamped: np.ndarray | None = None) -> np.ndarray:
        """(F, 52) ARKit weights at consecutive scene frames -> (F, 52) float32 mapped weights.

        ``extra_smoothing`` (a bake option, sigma in frames) adds to every channel's own
        smoothing the way two Gaussian filters in a row do: sigmas add in quadrature.
        ``unclamped`` (52,) bool: channels the clamp leaves alone (those sent to a data path,
        ``core.mapping``, whose units are not a slider's 0-1).
        """
        w = np.asarray(weights, dtype=np.float64)
        if w.ndim != 2 or w.shape[1] != N_CHANNELS:
            raise ValueError(f"weights must be (frames, {N_CHANNELS}), got {w.shape}")
        if extra_smoothing < 0:
            raise ValueError("smoothing must be >= 0")
        sigma = np.sqrt(self.smoothing ** 2 + float(extra_smoothing) ** 2)
        out = smooth_frames(w, sigma) * self.gain + self.offset
        if self.clamp:
            keep = out[:, unclamped].copy() if unclamped is not None else None
            np.clip(out, 0.0, 1.0, out=out)
            if keep is not None:
                out[:, unclamped] = keep
        out[:, ~self.enabled] = 0.0
        return out.astype(np.float32)

    # ---------------------------------------------------------------- JSON presets

    def to_dict(self) -> dict:
        """Only channels that differ from identity are written: presets stay readable."""
        channels = {}
        for i, name in enumerate(ARKIT_52):
            entry = {}
            if self.gain[i] != 1:
                entry["gain"] = float(self.gain[i])
            if self.offset[i] != 0:
                entry["offset"] = float(self.offset[i])
            if self.smoothing[i] != 0:
                entry["smoothing"] = float(self.smoothing[i])
            if not self.enabled[i]:
                entry["enabled"] = False
            if entry:
                channels[name] = entry
        return {"format": "facsimile-retarget-map", "version": 1, "clamp": bool(self.clamp),
                "channels": channels}

    @classmethod
    def from_dict(cls, data: dict) -> "RetargetMap":
        """Inverse of :meth:`to_dict`; unknown channel names raise ValueError (a typo in a
        hand-edited preset must not be silently ignored)."""
        if not isinstance(data, dict) or data.get("format") != "facsimile-retarget-map":
            raise ValueError("not a Facsimile retarget map")
        m = cls(clamp=bool(data.get("clamp", True)))
        for name, entry in (data.get("channels") or {}).items():
            if name not in ARKIT_INDEX:
                raise ValueError(f"retarget map: unknown channel {name!r}")
            i = ARKIT_INDEX[name]
            m.gain[i] = float(entry.get("gain", 1.0))
            m.offset[i] = float(entry.get("offset", 0.0))
            m.smoothing[i] = float(entry.get("smoothing", 0.0))
            m.enabled[i] = bool(entry.get("enabled", True))
        m.__post_init__()  # validate the values read
        return m
