# SPDX-License-Identifier: GPL-3.0-or-later
"""``encode``: an animated mesh (a .glb/.fbx with animation, or a .blend object) as an ARKit take CSV.

The mesh is encoded by the add-on's own ``facsimile.encode_mesh`` (Encode Mesh Animation),
so a pipeline gets the take an artist gets in the UI: the operator makes a take object,
which is read back here (its keyed channels, at the scene rate) and written as a Live Link
Face CSV that ``bake --take`` and Import Take read.
"""

from __future__ import annotations

import math
import time

import bpy
import numpy as np

from .. import animation, take_object
from ..core.takes import write_llf_csv
from ..core.takes.shape_keys import take_from_channels
from . import pipeline
from .pipeline import CliError


def _actions(obj) -> list:
    """Every action that can move ``obj``'s vertices: its own, its shape keys', its parent's
    and its Armature modifiers' objects' (a skinned face)."""
    owners = [obj, obj.data.shape_keys, obj.parent]
    owners += [m.object for m in obj.modifiers if m.type == "ARMATURE"]
    found = []
    for owner in owners:
        anim = getattr(owner, "animation_data", None) if owner is not None else None
        if anim is None:
            continue
        if anim.action is not None:
            found.append(anim.action)
        found += [strip.action for track in anim.nla_tracks for strip in track.strips
                  if strip.action is not None and not track.mute]
    return found


def animation_range(obj) -> tuple[int, int]:
    """(first, last) frame the animation of ``obj`` covers (CliError when it has none)."""
    ranges = [a.frame_range for a in _actions(obj)]
    if not ranges:
        raise CliError(f"'{obj.name}' has no animation (no action on it, its shape keys, its parent "
                       "or its armature); give the frames with --frame-range START END")
    first = min(math.floor(r[0] + 1e-6) for r in ranges)
    last = max(math.ceil(r[1] - 1e-6) for r in ranges)
    return first, last


def read_take(obj):
    """The take a take object holds, sampled on each keyed scene frame."""
    names, curves = take_object.channel_curves(obj)
    first, last = animation.keyed_range(curves)
    frames = np.arange(first, last + 1)
    values = np.stack([animation.sample(fc, frames) for fc in curves], axis=1)
    return take_from_channels(names, frames, values, pipeline.scene_fps(), source=obj[take_object.TAKE_MARKER])


def encode(obj, frame_range, neutral: str, stabilize: bool, out) -> dict:
    """Encode ``obj`` over ``frame_range`` (or its animation's) into the CSV at scratch ``out``."""
    first, last = frame_range or animation_range(obj)
    pipeline.stage(f"encoding '{obj.name}' ({len(obj.data.vertices)} vertices), frames {first}-{last}")
    pipeline.activate([obj])
    t0 = time.perf_counter()
    reports = pipeline.call(bpy.ops.facsimile.encode_mesh, f"encode '{obj.name}'", frame_start=first,
                            frame_end=last, neutral=neutral, stabilize=stabilize)
    take = read_take(bpy.context.scene.facsimile_drive.source)
    write_llf_csv(out, take)
    return {
        "object": obj.name, "vertices": len(obj.data.vertices),
        "frames": {"first": first, "last": last, "count": take.n_frames},
        "fps": pipeline.scene_fps(), "channels": list(take.names),
        "neutral": neutral, "head_motion_removed": stabilize,
        "seconds": round(time.perf_counter() - t0, 3),
        "warnings": reports["warnings"] + [w for w in take.warnings if w not in reports["warnings"]],
        "reports": reports["info"],
    }
