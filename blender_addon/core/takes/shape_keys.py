# SPDX-License-Identifier: GPL-3.0-or-later
"""Takes from named animation channels already in a scene.

Shape-key animation of an imported glTF/FBX character, an ARKit-rigged mesh, or one of
Facsimile's own take objects: all are channels with a name and a value per scene frame.
The bpy layer samples each channel's F-curve at consecutive scene frames (so any
interpolation the artist chose is honoured); this module turns those samples into a
:class:`Take`: names normalised to ARKit camelCase, unknown names dropped with a warning,
frames converted to seconds at the scene rate.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .. import arkit
from .errors import TakeError
from .take import Take


def take_from_channels(names: Sequence[str], frames, values, scene_fps: float,
                       source: str = "shape-key animation") -> Take:
    """A Take from channels sampled at scene ``frames`` (F,), ``values`` (F, len(names)).

    Times start at 0 on ``frames[0]``; the caller keeps the first frame to place the take.
    Raises TakeError when no channel has an ARKit name or the samples are unusable.
    """
    frames = np.asarray(frames, dtype=np.float64).reshape(-1)
    values = np.asarray(values, dtype=np.float64)
    if not scene_fps or scene_fps <= 0:
        raise TakeError(f"{source}: the scene frame rate must be positive")
    if frames.size == 0:
        raise TakeError(f"{source}: no animated frames")
    if values.shape != (frames.size, len(names)):
        raise TakeError(f"{source}: {values.shape} samples for {frames.size} frames of "
                        f"{len(names)} channels")
    names = list(names)
    found = {a: names.index(n) for a, n in arkit.match_names(names).items()}
    used = set(found.values())
    ignored = [n for n in names if arkit.normalize_name(n) is None]
    duplicates = [n for i, n in enumerate(names) if i not in used and n not in ignored]
    if not found:
        shown = ", ".join(names[:4]) or "none"
        raise TakeError(f"{source}: no ARKit-named channels (found: {shown}); name the shape "
                        "keys like 'jawOpen' or 'eyeBlink_L'")
    warnings = []
    if ignored:
        warnings.append(f"ignored {len(ignored)} channel(s) that are not ARKit names: "
                        f"{', '.join(ignored[:5])}")
    if duplicates:
        warnings.append(f"ignored {len(duplicates)} duplicate channel(s): {', '.join(duplicates[:5])}")
    cols = list(found.values())
    return Take(times=(frames - frames[0]) / float(scene_fps), names=list(found),
                weights=values[:, cols], fps=float(scene_fps), source=source, warnings=warnings)
