# SPDX-License-Identifier: GPL-3.0-or-later
"""Source + retarget map + target plan -> key values per scene frame (preview and bake).

One function, so what the artist previews is exactly what gets baked.
"""

from __future__ import annotations

import numpy as np

from .retarget import RetargetMap
from .takes.take import PlacedTake
from .target_plan import TargetPlan


def source_weights(placed: PlacedTake, frames: np.ndarray) -> np.ndarray:
    """(F, 52) ARKit weights of the take at whole scene ``frames``; its ends are held outside."""
    weights = placed.take.to_arkit52()
    index = np.clip(np.asarray(frames, dtype=np.int64) - placed.first_frame, 0, len(weights) - 1)
    return weights[index]


def drive_values(placed: PlacedTake, rmap: RetargetMap, plan: TargetPlan, frames,
                 extra_smoothing: float = 0.0, smooth: float = 0.0,
                 sparsity: float = 0.0) -> np.ndarray:
    """(F, K) values of ``plan``'s keys at whole scene ``frames`` (any order, any step).

    Smoothing and the solve's temporal term need consecutive frames: both run on every
    frame from the first to the last of ``frames`` and of the take, and the frames asked
    for are picked afterwards, so a bake every 3rd frame is a subsample of the smooth
    curve, not a smoothing of a subsample.
    """
    frames = np.asarray(frames, dtype=np.int64)
    first = min(int(frames.min()), placed.first_frame)
    last = max(int(frames.max()), placed.first_frame + placed.take.n_frames - 1)
    span = np.arange(first, last + 1)
    mapped = rmap.apply(source_weights(placed, span), extra_smoothing)
    values = plan.values(mapped, smooth=smooth, sparsity=sparsity)
    return values[frames - first]
