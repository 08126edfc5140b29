# SPDX-License-Identifier: GPL-3.0-or-later
"""Bake: the performance as keyframes on one or many targets, written in bulk.

``facsimile.bake`` keys every driven shape key of every selected target over a frame range
(LINEAR keys, ``keyframe_points.add`` + ``foreach_set``), into the Key's assigned action
and slot, or a new action when it has none. Facsimile's curves carry the F-curve group
``Facsimile``: a re-bake replaces those (all of them, so a channel switched off since is
not left stale) and nothing else. A curve of the artist's own on a key Facsimile would
write is kept and reported (``existing='SKIP'``), or replaced and reported ('REPLACE').

Everything is computed before the first write; writes go through a
:class:`animation.CurveTransaction` per target, and any failure rolls back every target,
so the file is as it was. One undo step restores a finished bake.
"""

from __future__ import annotations

import math
import time

import bpy
import numpy as np

from .. import animation, prefs
from ..options import EXISTING_ITEMS
from ..core.drive_values import drive_values, path_values
from ..core import arkit
from ..core.errors import FacsimileError, TargetError
from ..core.takes.take import MAX_KEYS
from . import opsdata, paths, sources, targets



def key_frames(first: int, last: int, step: int) -> np.ndarray:
    """first, first+step, ... and always ``last``: a stepped bake never drops the end pose."""
    if last < first:
        raise ValueError(f"the frame range {first}-{last} is empty")
    frames = np.arange(first, last + 1, max(1, int(step)))
    return frames if frames[-1] == last else np.append(frames, last)


def driven_keys(obj, names) -> list:
    """Those of ``names`` whose value a driver sets: a driver overrides any keyframe, so a
    bake onto them would report success and move nothing."""
    key = obj.data.shape_keys
    anim = key.animation_data if key is not None else None
    if anim is None:
        return []
    paths = {fc.data_path for fc in anim.drivers if not fc.mute}
    return [n for n in names if animation.key_path(n) in paths]


def missing_channels(plan, rmap=None, cmap=None) -> list:
    """ARKit channels a DIRECT plan has no key for (renamed or deleted keys); channels
    switched off or sent to a data path are not missing."""
    if plan.rows is None:
        return []
    covered = plan.rows.sum(axis=0) > 0
    if rmap is not None:
        covered |= ~rmap.enabled
    if cmap is not None:
        covered |= cmap.mask("PATH")
    # A head with no tongue is rigged without tongueOut on purpose (rig option "Create all 52
    # keys"): its absence is no rename to report on every bake.
    return [n for n, c in zip(arkit.ARKIT_52, covered) if not c and n != "tongueOut"]


def check_bake_settings(time_offset: float, smoothing: float, frame_step: int) -> None:
    """Numbers a script or the CLI may pass that no bake can honour."""
    if not math.isfinite(time_offset) or abs(time_offset) > 1e6:
        raise TargetError(f"time offset {time_offset:g} is not a frame count (finite, within ±1,000,000)")
    if not math.isfinite(smoothing) or smoothing < 0 or smoothing > 1000:
        raise TargetError(f"smoothing {smoothing:g} must be between 0 and 1000 frames")
    if frame_step < 1:
        raise TargetError(f"frame step {frame_step} must be 1 or more")


def selected_targets(context, source) -> list:
    return [o for o in context.selected_objects if o.type == "MESH" and o != source]


PLACEMENT_ITEMS = (
    ("ACTION", "Active Action",
     "Key the target's active action (a new one when it has none); a re-bake replaces "
     "Facsimile's earlier keys there"),
    ("NLA", "NLA Strip",
     "Key a new action and place it as a strip at the take's start on a new NLA track "
     "'Facsimile' (as importers do); the active action and existing strips stay as they are"),
)


class _IdWrite:
    """The writes to one ID's animation (a mesh's Key, or an object for data-path targets),
    undone completely by :meth:`rollback`. ``nla``: into a new action placed as an NLA strip
    (:meth:`place`), never into the active action."""

    def __init__(self, id_data, id_type: str, action_name: str, nla: bool = False):
        self.id = id_data
        self.nla = nla
        self.had_anim = id_data.animation_data is not None
        self.had_action = self.had_anim and id_data.animation_data.action is not None
        self.track = None
        if nla:
            self.action, self.slot, self.bag = animation.new_action(id_data, id_type, action_name)
        else:
            self.action, self.slot = None, None
            self.bag = animation.channelbag(id_data, id_type, action_name)
        self.txn = animation.CurveTransaction(self.bag)

    def clear_ours(self) -> int:
        if self.nla:   # a new action: nothing of ours in it, the active one is not touched
            return 0
        ours = [fc for fc in self.bag.fcurves if fc.group is not None and fc.group.name == animation.GROUP]
        for fc in ours:
            self.txn.remove(fc)
        return len(ours)

    def write(self, items, frames, values, replace_existing: bool):
        """``items``: (name, data path, index) per column of ``values``; returns (written,
        kept, replaced) names."""
        written, kept, replaced = [], [], []
        for k, (name, path, index) in enumerate(items):
            other = self.txn.find(path, index)
            if other is not None:
                if not replace_existing:
                    kept.append(name)
                    continue
                self.txn.remove(other)
                replaced.append(name)
            self.txn.add(path, frames, values[:, k], index)
            written.append(name)
        return written, kept, replaced

    def place(self, start: float) -> str:
        """NLA mode: the action as a strip at ``start``; a note for the report."""
        if not self.nla:
            return ""
        self.track, strip = animation.push_strip(self.id, self.action, self.slot, start)
        note = f"NLA strip '{strip.name}' on track '{self.track.name}' at frame {start:g}"
        active = self.id.animation_data.action
        if active is not None:
            note += f" (its active action '{active.name}' plays on top of the strip)"
        return note

    def rollback(self) -> None:
        anim = self.id.animation_data
        if self.nla:
            if self.track is not None and anim is not None:
                anim.nla_tracks.remove(self.track)
            bpy.data.actions.remove(self.action)
        else:
            self.txn.rollback()
            if not self.had_action and anim is not None and anim.action is not None:
                action = anim.action
                anim.action = None
                if action.users == 0:
                    bpy.data.actions.remove(action)
        if not self.had_anim and self.id.animation_data is not None:
            self.id.animation_data_clear()


def _curve_notes(kept: list, replaced: list) -> str:
    """The report's words for the artist's own curves a bake kept or replaced."""
    notes = ""
    if kept:
        notes += f", kept your curves on {_names(kept)}"
    if replaced:
        notes += f", replaced your curves on {_names(replaced)}"
    return notes


def _names(items, limit=4) -> str:
    return ", ".join(items[:limit]) + ("…" if len(items) > limit else "")


class FACSIMILE_OT_bake(bpy.types.Operator):
    """Bake the source performance as keyframes onto every selected mesh (re-baking replaces only Facsimile's keys)"""

    bl_idname = "facsimile.bake"
    bl_label = "Bake to Keyframes"
    bl_options = {"REGISTER", "UNDO"}

    use_take_range: bpy.props.BoolProperty(
        name="Take's range", default=True,
        description="Bake the frames the take covers; off: the frame range below")
    frame_start: bpy.props.IntProperty(name="Start", default=1)
    frame_end: bpy.props.IntProperty(name="End", default=250)
    frame_step: bpy.props.IntProperty(name="Step", default=1, min=1, soft_max=10,
                                      description="Key every Nth frame (the last frame always)")
    time_offset: bpy.props.FloatProperty(name="Time offset", default=0.0, soft_min=-100,
                                         soft_max=100, description="Shift the keys by frames")
    smoothing: bpy.props.FloatProperty(
        name="Smoothing", default=0.0, min=0.0, soft_max=10.0,
        description="Extra zero-lag smoothing (sigma in frames) on top of the retarget map's")
    existing: bpy.props.EnumProperty(name="Your curves", items=EXISTING_ITEMS, default="SKIP")
    placement: bpy.props.EnumProperty(name="Place in", items=PLACEMENT_ITEMS, default="ACTION",
                                      description="Where the baked keys go")

    @classmethod
    def poll(cls, context):
        return context.scene is not None and context.mode == "OBJECT"

    def invoke(self, context, _event):
        if not self.properties.is_property_set("frame_start"):
            self.frame_start, self.frame_end = context.scene.frame_start, context.scene.frame_end
        return self.execute(context)

    def execute(self, context):
        t0 = time.perf_counter()
        settings = context.scene.facsimile_drive
        try:
            check_bake_settings(self.time_offset, self.smoothing, self.frame_step)
            placed = sources.read_source(settings.source, context.scene)
            objs = selected_targets(context, settings.source)
            if not objs:
                raise TargetError("select one or more target meshes to bake onto")
            if self.use_take_range:
                first, last = int(placed.frames[0]), int(placed.frames[-1])
            else:
                first, last = self.frame_start, self.frame_end
            frames = key_frames(first, last, self.frame_step)
            rmap = opsdata.retarget_map(settings)
            cmap = opsdata.channel_map(settings)
            jobs = []
            for obj in objs:   # everything computed before anything is written
                if obj.library is not None or obj.data.library is not None:
                    raise TargetError(f"'{obj.name}' is linked from a library and cannot be edited here; "
                                      "make it local (Object › Relations › Make Local) or bake in its own file")
                plan = targets.plan_target(obj, settings.mode, prefs.provider_choice(context), cmap)
                driven = driven_keys(obj, plan.key_names)
                if driven:
                    raise TargetError(f"'{obj.name}': drivers set {len(driven)} of its keys ({_names(driven)}) "
                                      "and would override the baked keys; delete those drivers and bake again")
                if len(frames) * len(plan.key_names) * len(objs) > MAX_KEYS:
                    raise TargetError(f"{len(frames)} frames x {len(plan.key_names)} keys x {len(objs)} "
                                      f"target(s) is more than {MAX_KEYS // 1_000_000} M keyframes; bake a "
                                      "shorter range or with a frame step")
                values = drive_values(placed, rmap, plan, frames, self.smoothing,
                                      settings.solve_smooth, settings.solve_sparsity, cmap=cmap)
                jobs.append((obj, plan, values, missing_channels(plan, rmap, cmap)))
            path_jobs = self._path_jobs(placed, rmap, cmap, objs, frames)
        except (FacsimileError, ValueError) as err:   # ValueError: an empty frame range
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        try:
            summary = self._write(jobs, path_jobs, frames + self.time_offset)
        except Exception as err:   # rolled back: say what happened, change nothing
            self.report({"ERROR"}, f"Facsimile: bake failed, nothing was changed "
                                   f"({type(err).__name__}: {err})")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Facsimile: baked {len(frames)} frames ({frames[0]}-{frames[-1]}"
                              f"{f', every {self.frame_step}' if self.frame_step > 1 else ''}) onto "
                              f"{'; '.join(summary)} in {time.perf_counter() - t0:.2f} s")
        return {"FINISHED"}

    def _path_jobs(self, placed, rmap, cmap, objs, frames) -> list:
        """[(object, [PathTarget], (F, P) values)] for the map's data-path targets (checked:
        a missing bone or property raises before anything is written)."""
        resolved = paths.resolve(rmap, cmap, objs)
        if not resolved:
            return []
        columns = path_values(placed, rmap, cmap, frames, self.smoothing)
        jobs = []
        for obj in paths.objects(resolved):
            mine = [t for t in resolved if t.obj_name == obj.name]
            anim = obj.animation_data
            drivers = {(fc.data_path, fc.array_index) for fc in anim.drivers if not fc.mute} if anim else set()
            driven = [t.label() for t in mine if (t.path, t.index) in drivers]
            if driven:
                raise TargetError(f"drivers set {_names(driven)} and would override the baked keys; "
                                  "delete those drivers or map the channel elsewhere")
            jobs.append((obj, mine, columns[:, [t.column for t in mine]]))
        return jobs

    def _write(self, jobs, path_jobs, key_times) -> list:
        writes, summary = [], []
        nla = self.placement == "NLA"
        replace = self.existing == "REPLACE"
        try:
            for obj, plan, values, missing in jobs:
                if not plan.key_names:   # its channels all go to data paths
                    continue
                write = _IdWrite(obj.data.shape_keys, "KEY", f"{obj.name} Facsimile", nla)
                writes.append(write)
                write.clear_ours()
                items = [(name, animation.key_path(name), 0) for name in plan.key_names]
                written, kept, replaced = write.write(items, key_times, values, replace)
                line = f"'{obj.name}' ({len(written)} keys, {plan.mode.lower()})"
                line += _curve_notes(kept, replaced)
                if missing:
                    line += f", no key for {len(missing)} channel(s): {_names(missing)} (renamed?)"
                placed_note = write.place(float(key_times[0]))
                summary.append(line + (f", {placed_note}" if placed_note else ""))
            for obj, targets_, values in path_jobs:
                write = _IdWrite(obj, "OBJECT", f"{obj.name} Facsimile", nla)
                writes.append(write)
                write.clear_ours()
                items = [(t.label(), t.path, t.index) for t in targets_]
                written, kept, replaced = write.write(items, key_times, values, replace)
                what = "property" if len(written) == 1 else "properties"
                line = f"'{obj.name}' ({len(written)} {what}: {_names([f'{t.path}[{t.index}]' for t in targets_], 2)})"
                line += _curve_notes(kept, replaced)
                placed_note = write.place(float(key_times[0]))
                summary.append(line + (f", {placed_note}" if placed_note else ""))
        except Exception:
            for write in reversed(writes):
                write.rollback()
            raise
        return summary


class FACSIMILE_OT_clear_bake(bpy.types.Operator):
    """Remove the keyframes Facsimile baked into the active actions of the selected objects: meshes' shape keys, and bones or properties the map drives (your own keys and NLA strips stay)"""

    bl_idname = "facsimile.clear_bake"
    bl_label = "Clear Baked Keys"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        removed = 0
        owners = [(o, "OBJECT") for o in context.selected_objects]
        owners += [(o.data.shape_keys, "KEY") for o in selected_targets(context, None)
                   if o.data.shape_keys is not None]
        for owner, id_type in owners:
            if owner.animation_data is None or owner.animation_data.action is None:
                continue
            bag = animation.channelbag(owner, id_type, "", create=False)
            if bag is None:
                continue
            ours = [fc for fc in bag.fcurves if fc.group is not None and fc.group.name == animation.GROUP]
            for fc in ours:
                bag.fcurves.remove(fc)
            removed += len(ours)
        self.report({"INFO"}, f"Facsimile: removed {removed} baked curves")
        return {"FINISHED"}


classes = (FACSIMILE_OT_bake, FACSIMILE_OT_clear_bake)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
