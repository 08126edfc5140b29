# SPDX-License-Identifier: GPL-3.0-or-later
"""Source + retarget map + target plan -> key values per scene frame (preview and bake).

One function, so what the artist previews is exactly what gets baked.
"""

from __future__ import annotations

import numpy as np

from .mapping import ChannelMap
from .retarget import RetargetMap
from .takes.take import PlacedTake
from .target_plan import TargetPlan


def source_weights(placed: PlacedTake, frames: np.ndarray) -> np.ndarray:
    """(F, 52) ARKit weights of the take at whole scene ``frames``; its ends are held outside."""
    weights = placed.take.to_arkit52()
    index = np.clip(np.asarray(frames, dtype=np.int64) - placed.first_frame, 0, len(weights) - 1)
    return weights[index]


def _mapped(placed: PlacedTake, rmap: RetargetMap, frames, extra_smoothing: float,
            unclamped) -> tuple[np.ndarray, int]:
    """(S, 52) mapped weights on every frame from the first asked for or of the take to the
    last, and that first frame."""
    frames = np.asarray(frames, dtype=np.int64)
    first = min(int(frames.min()), placed.first_frame)
    last = max(int(frames.max()), placed.first_frame + placed.take.n_frames - 1)
    span = np.arange(first, last + 1)
    return rmap.apply(source_weights(placed, span), extra_smoothing, unclamped), first


def for_plan(mapped: np.ndarray, cmap: ChannelMap | None) -> np.ndarray:
    """Mapped weights as a target plan sees them: channels sent to data paths are 0 (a
    solved custom rig must not reproduce an expression a bone makes)."""
    if cmap is None or cmap.is_default:
        return mapped
    out = np.array(mapped, np.float32, copy=True)
    out[:, cmap.mask("PATH")] = 0.0
    return out


def path_columns(rmap: RetargetMap, cmap: ChannelMap | None) -> list:
    """[(channel index, Target)] of the data-path targets that drive something (enabled)."""
    if cmap is None:
        return []
    return [(i, t) for i, t in cmap.path_targets() if rmap.enabled[i]]


def path_values(placed: PlacedTake, rmap: RetargetMap, cmap: ChannelMap, frames,
                extra_smoothing: float = 0.0) -> np.ndarray:
    """(F, P) values of the enabled data-path targets (:func:`path_columns`) at ``frames``:
    gain and offset in the property's units, never clamped."""
    frames = np.asarray(frames, dtype=np.int64)
    cols = [i for i, _ in path_columns(rmap, cmap)]
    if not cols:
        return np.zeros((len(frames), 0), np.float32)
    mapped, first = _mapped(placed, rmap, frames, extra_smoothing, cmap.mask("PATH"))
    return mapped[frames - first][:, cols]


def drive_values(placed: PlacedTake, rmap: RetargetMap, plan: TargetPlan, frames,
                 extra_smoothing: float = 0.0, smooth: float = 0.0,
                 sparsity: float = 0.0, cmap: ChannelMap | None = None) -> np.ndarray:
    """(F, K) values of ``plan``'s keys at whole scene ``frames`` (any order, any step).

    Smoothing and the solve's temporal term need consecutive frames: both run on every
    frame from the first to the last of ``frames`` and of the take, and the frames asked
    for are picked afterwards, so a bake every 3rd frame is a subsample of the smooth
    curve, not a smoothing of a subsample.
    """
    frames = np.asarray(frames, dtype=np.int64)
    mapped, first = _mapped(placed, rmap, frames, extra_smoothing, None)
    values = plan.values(for_plan(mapped, cmap), smooth=smooth, sparsity=sparsity)
    return values[frames - first]
