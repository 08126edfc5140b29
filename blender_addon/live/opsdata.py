# SPDX-License-Identifier: GPL-3.0-or-later
"""A recording becomes take objects, the way an imported take does.

The received frames (arrival order, one subject each) become a :class:`Take` with the
headless recorder's own code (``core.live.record.frames_to_take``: arrival times, no
resampling), calibrated as the artist saw them, then a take object through
``take_object`` exactly as ``facsimile.import_take`` makes one: so a recording previews,
solves and bakes like any take. The chosen subject's take becomes the drive source; other
phones heard during the same recording get their own take objects beside it.
"""

from __future__ import annotations

import re
from dataclasses import replace

import bpy

from .. import take_object
from ..core.live.record import frames_to_take


def _by_subject(received: list) -> dict:
    out: dict = {}
    for r in received:   # dicts keep first-arrival order
        out.setdefault(r.subject, []).append(r)
    return out


def _take_name(subject: str) -> str:
    """``Take Live <subject> NN``: a new number per Record, never reusing one in the file."""
    label = re.sub(r"\s+", " ", subject).strip()[:40] or "Live"
    stem = f"Take Live {label}" if label != "Live" else "Take Live"
    used = {int(m.group(1)) for o in bpy.data.objects
            for m in [re.fullmatch(re.escape(stem) + r" (\d+)", o.name)] if m}
    return f"{stem} {max(used, default=0) + 1:02d}"


def calibrated_take(rows: list, neutral, source: str):
    take = frames_to_take(rows, source=source)
    if neutral is None:
        return take
    return replace(take, weights=neutral.apply_weights(take.weights),
                   head_rotation=neutral.apply_head(take.head_rotation),
                   source=f"{source} (calibrated)")


def make_takes(context, received: list, chosen, neutral, label: str, start: int) -> list:
    """Take objects of a recording, chosen subject first (it becomes the drive source).

    Returns [(object, take)]. Everything made is removed again if any fails."""
    groups = _by_subject(received)
    order = sorted(groups, key=lambda s: s != chosen)
    made = []
    try:
        for i, subject in enumerate(order):
            shown = subject or label
            take = calibrated_take(groups[subject], neutral, f"{label} '{shown}' (live)")
            name = _take_name(subject)
            if i == 0:
                obj = take_object.use_take(context, take, name, start, set_range=True)
            else:
                obj = take_object.create_take_object(context, take, name, start)
            made.append((obj, take))
    except Exception:
        ids = []
        for obj, _take in made:
            ids += [obj, *take_object.eye_objects(obj).values()]
            ids += [o.animation_data.action for o in ids if o.animation_data and o.animation_data.action]
        take_object.remove_ids(list(dict.fromkeys(ids)))
        raise
    return made
