# SPDX-License-Identifier: GPL-3.0-or-later
"""F-curves in bulk: write, read, remove and roll back, on slotted (5.0) and legacy actions.

Writing is ``keyframe_points.add(n)`` + ``foreach_set``, orders of magnitude faster than
``keyframe_insert`` per key (``python build.py bench drive``). Blender 5.0
has no ``Action.fcurves``: curves live in a channelbag per (layer, strip, slot);
``bpy_extras.anim_utils.action_ensure_channelbag_for_slot`` finds or makes it. 4.4/4.5
have slots but not that helper, 4.2/4.3 only the legacy ``Action.fcurves``: both are
handled by :func:`channelbag`, which returns an object with ``.fcurves`` and ``.groups``.

Facsimile's curves are put in the F-curve group :data:`GROUP`. That is how a re-bake finds
what Facsimile wrote and replaces only that, never the artist's own keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

GROUP = "Facsimile"
LINEAR = 1  # FCurve keyframe interpolation enum index: 0 CONSTANT, 1 LINEAR, 2 BEZIER


def key_path(name: str) -> str:
    return f'key_blocks["{bpy.utils.escape_identifier(name)}"].value'


def prop_path(name: str) -> str:
    return f'["{bpy.utils.escape_identifier(name)}"]'


def named_fcurves(curves, pattern) -> tuple[list, list]:
    """(names, F-curves) of the unmuted ``curves`` whose data path ``pattern`` matches; the
    name is its first group, unescaped."""
    names, found = [], []
    for fc in curves:
        match = pattern.match(fc.data_path)
        if match and not fc.mute:
            names.append(bpy.utils.unescape_identifier(match.group(1)))
            found.append(fc)
    return names, found


def _slot_for(id_data, action, id_type: str):
    anim = id_data.animation_data
    if anim.action_slot is not None:
        return anim.action_slot
    from bpy_extras import anim_utils

    finder = getattr(anim_utils, "action_get_first_suitable_slot", None)
    slot = finder(action, id_type) if finder else None
    if slot is None:
        slot = action.slots.new(id_type=id_type, name=id_data.name)
    anim.action_slot = slot
    return slot


def channelbag(id_data, id_type: str, action_name: str, create: bool = True):
    """The F-curve container animating ``id_data`` (its assigned action and slot).

    With ``create``, an action named ``action_name`` is made and assigned when the ID has
    none (an assigned action is used as it is: its other curves stay untouched). Returns
    None when nothing exists and ``create`` is False.
    """
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        if not create:
            return None
        anim = anim or id_data.animation_data_create()
        anim.action = bpy.data.actions.new(action_name)
    action = anim.action
    if not hasattr(action, "slots"):          # Blender 4.2/4.3: legacy actions
        return action
    if not create and anim.action_slot is None:
        return None
    slot = _slot_for(id_data, action, id_type)
    from bpy_extras import anim_utils

    ensure = getattr(anim_utils, "action_ensure_channelbag_for_slot", None)
    if ensure is not None:
        return ensure(action, slot) if create else anim_utils.action_get_channelbag_for_slot(action, slot)
    if not create:                              # 4.4/4.5
        return anim_utils.action_get_channelbag_for_slot(action, slot)
    layer = action.layers[0] if action.layers else action.layers.new("Layer")
    strip = layer.strips[0] if layer.strips else layer.strips.new(type="KEYFRAME")
    return strip.channelbag(slot, ensure=True)


def new_action(id_data, id_type: str, name: str):
    """A new action for ``id_data`` that is *not* assigned to it (an NLA strip's): (action,
    slot or None on 4.2/4.3, the F-curve container as :func:`channelbag` returns)."""
    action = bpy.data.actions.new(name)
    if not hasattr(action, "slots"):          # Blender 4.2/4.3: legacy actions
        action.id_root = id_type
        return action, None, action
    slot = action.slots.new(id_type=id_type, name=id_data.name)
    from bpy_extras import anim_utils

    ensure = getattr(anim_utils, "action_ensure_channelbag_for_slot", None)
    if ensure is not None:
        return action, slot, ensure(action, slot)
    layer = action.layers.new("Layer")        # 4.4/4.5
    strip = layer.strips.new(type="KEYFRAME")
    return action, slot, strip.channelbag(slot, ensure=True)


def push_strip(id_data, action, slot, start: float, track_name: str = GROUP):
    """``action`` as a strip starting at scene frame ``start`` on a new NLA track of
    ``id_data`` (existing tracks and strips untouched): (track, strip). The strip plays the
    action's keys at the frames they were written on."""
    anim = id_data.animation_data or id_data.animation_data_create()
    track = anim.nla_tracks.new()
    taken = {t.name for t in anim.nla_tracks if t != track}
    name, n = track_name, 0
    while name in taken:   # RNA does not make track names unique: an earlier bake's stays as it is
        n += 1
        name = f"{track_name}.{n:03d}"
    track.name = name
    strip = track.strips.new(action.name, int(round(start)), action)
    if abs(start - round(start)) > 1e-6:
        strip.frame_start_ui = start          # keeps its length: keys stay where written
    if slot is not None and getattr(strip, "action_slot", None) != slot:
        strip.action_slot = slot              # 4.4+: the strip animates through the slot
    return track, strip


def new_fcurve(bag, path: str, index: int = 0, group: str = GROUP):
    """A new F-curve in ``bag`` (channelbag or legacy action), in F-curve group ``group``.

    Each Blender names the group differently: 5.0's channelbag takes ``group_name``, 4.4/4.5's
    takes none (the group is made in ``bag.groups`` and assigned), 4.2/4.3's legacy action
    takes ``action_group``."""
    if isinstance(bag, bpy.types.Action):       # 4.2/4.3: legacy actions
        return bag.fcurves.new(path, index=index, action_group=group)
    try:
        return bag.fcurves.new(path, index=index, group_name=group)
    except TypeError:                           # 4.4/4.5 channelbag
        fcurve = bag.fcurves.new(path, index=index)
        fcurve.group = bag.groups.get(group) or bag.groups.new(group)
        return fcurve


def set_keys(fcurve, frames: np.ndarray, values: np.ndarray) -> None:
    """Fill an empty F-curve with LINEAR keys, in bulk."""
    frames = np.asarray(frames, dtype=np.float32)
    co = np.empty(2 * frames.size, np.float32)
    co[0::2], co[1::2] = frames, np.asarray(values, dtype=np.float32)
    points = fcurve.keyframe_points
    points.add(frames.size)
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(frames.size, LINEAR, np.int32))
    fcurve.update()


def sample(fcurve, frames: np.ndarray) -> np.ndarray:
    """Values of an F-curve at ``frames``, exactly as Blender evaluates it.

    A plain curve of LINEAR keys (what takes and bakes are) is piecewise linear with held
    ends, so numpy interpolates it in one call; anything else (Bezier, modifiers, linear
    extrapolation) goes through ``FCurve.evaluate`` frame by frame (~1 us per call).
    """
    frames = np.asarray(frames, dtype=np.float64)
    points = fcurve.keyframe_points
    n = len(points)
    if n and not fcurve.modifiers and fcurve.extrapolation == "CONSTANT":
        interp = np.empty(n, np.int32)
        points.foreach_get("interpolation", interp)
        if (interp == LINEAR).all():
            co = np.empty(2 * n, np.float32)
            points.foreach_get("co", co)
            return np.interp(frames, co[0::2], co[1::2])
    return np.array([fcurve.evaluate(f) for f in frames.tolist()], dtype=np.float64)


def keyed_range(fcurves) -> tuple[int, int] | None:
    """(first, last) whole scene frames covering every key of ``fcurves``, or None."""
    lo, hi = np.inf, -np.inf
    for fc in fcurves:
        if len(fc.keyframe_points):
            a, b = fc.range()
            lo, hi = min(lo, a), max(hi, b)
    if not np.isfinite(lo):
        return None
    return int(np.floor(lo + 1e-6)), int(np.ceil(hi - 1e-6))


def assigned_fcurves(id_data) -> list:
    """F-curves of the action (slot) assigned to ``id_data``; [] when it has none."""
    anim = getattr(id_data, "animation_data", None)
    if anim is None or anim.action is None:
        return []
    if not hasattr(anim.action, "slots"):
        return list(anim.action.fcurves)
    from bpy_extras import anim_utils

    if anim.action_slot is None:
        return []
    # (5.0's animdata_get_channelbag_for_assigned_slot does this; 4.4/4.5 lack it)
    bag = anim_utils.action_get_channelbag_for_slot(anim.action, anim.action_slot)
    return list(bag.fcurves) if bag is not None else []


def strip_fcurves(strip) -> list:
    """F-curves an NLA strip plays (its action's, through its slot on 4.4+)."""
    action = strip.action
    if action is None:
        return []
    if not hasattr(action, "slots"):
        return list(action.fcurves)
    from bpy_extras import anim_utils

    slot = getattr(strip, "action_slot", None)
    bag = anim_utils.action_get_channelbag_for_slot(action, slot) if slot is not None else None
    return list(bag.fcurves) if bag is not None else []


def placed_fcurves(id_data, track_name: str = GROUP) -> list:
    """F-curves of the strips on ``id_data``'s NLA tracks called ``track_name`` (or
    ``track_name.001`` …): what bakes placed as strips."""
    anim = getattr(id_data, "animation_data", None)
    if anim is None:
        return []
    found = []
    for track in anim.nla_tracks:
        if track.name == track_name or track.name.startswith(track_name + "."):
            for strip in track.strips:
                found += strip_fcurves(strip)
    return found


@dataclass
class _Saved:
    path: str
    index: int
    group: str
    co: np.ndarray
    handles: tuple
    interpolation: np.ndarray
    extrapolation: str


def _save(fc) -> _Saved:
    n = len(fc.keyframe_points)
    co, hl, hr = (np.empty(2 * n, np.float32) for _ in range(3))
    interp = np.empty(n, np.int32)
    fc.keyframe_points.foreach_get("co", co)
    fc.keyframe_points.foreach_get("handle_left", hl)
    fc.keyframe_points.foreach_get("handle_right", hr)
    fc.keyframe_points.foreach_get("interpolation", interp)
    return _Saved(fc.data_path, fc.array_index, fc.group.name if fc.group else "", co, (hl, hr),
                  interp, fc.extrapolation)


@dataclass
class CurveTransaction:
    """F-curve edits in one channelbag that can be undone completely on failure.

    Removed curves are snapshotted (keys, handles, interpolation, group) so that a bake that
    fails on its tenth target puts the first nine back exactly as they were.
    """

    bag: object
    added: list = field(default_factory=list)      # (path, index)
    removed: list = field(default_factory=list)    # _Saved

    def remove(self, fc) -> None:
        self.removed.append(_save(fc))
        self.bag.fcurves.remove(fc)

    def find(self, path: str, index: int = 0):
        return self.bag.fcurves.find(path, index=index)

    def add(self, path: str, frames, values, index: int = 0):
        fc = new_fcurve(self.bag, path, index)
        self.added.append((path, index))
        set_keys(fc, frames, values)
        return fc

    def rollback(self) -> None:
        for path, index in reversed(self.added):
            fc = self.bag.fcurves.find(path, index=index)
            if fc is not None:
                self.bag.fcurves.remove(fc)
        for saved in self.removed:
            fc = new_fcurve(self.bag, saved.path, saved.index, saved.group)
            points = fc.keyframe_points
            points.add(len(saved.interpolation))
            points.foreach_set("co", saved.co)
            points.foreach_set("handle_left", saved.handles[0])
            points.foreach_set("handle_right", saved.handles[1])
            points.foreach_set("interpolation", saved.interpolation)
            fc.extrapolation = saved.extrapolation
            fc.update()
