# SPDX-License-Identifier: GPL-3.0-or-later
"""Live preview: the targets follow the source while the timeline plays or scrubs.

Everything expensive happens once, when the preview starts or its inputs change: the
source is read, the retarget map applied, custom rigs solved, giving one table of key
values per target and scene frame (:func:`core.drive_values.drive_values`, the same code the bake
runs). The ``frame_change_pre`` handler then only looks up a row and writes it: the keys'
values (one ``foreach_set``) and the folded preview key (``fold.py``: one numpy product),
so Blender evaluates one shape key instead of 52. Writing *before* the frame is evaluated
means the depsgraph picks the values up in the same update, in playback and in renders.

The tables live in memory (derived data, rebuilt on the first frame after a change or a
reload); the preview flag, the targets and the map are in the .blend.

A live capture (the ``live/`` feature) drives the same targets through this same path: while
the scene is live (``live_feed.py``) each row is the newest live frame through the retarget
map and the target's plan instead of a row of the table, written by the same
:func:`_write`; the live feature calls in through ``live_feed`` at the packet rate, and a
preview may run on a live scene without any take as its source. A file saved during
a preview is put back on load (preview off, keys unfolded), as is every mesh on stop.
The app handlers that call in here are in ``handlers.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from .. import animation, live_feed, prefs
from ..core.drive_values import drive_values, for_plan, path_columns, path_values
from ..core.errors import FacsimileError
from ..core.mapping import ChannelMap
from ..core.retarget import RetargetMap
from ..core.takes import TakeError
from ..core.target_plan import TargetPlan
from . import fold, opsdata, paths, sources, targets


@dataclass
class _Target:
    obj_name: str
    key_indices: np.ndarray   # positions in key_blocks of the driven keys
    table: np.ndarray | None  # (F, K) values per frame of the take (None: live only, no take)
    plan: TargetPlan | None = None   # turns live weights into this target's values


@dataclass
class _Tables:
    first_frame: int = 0
    targets: list = field(default_factory=list)
    source_ids: tuple = ()    # pointers of the datablocks whose change invalidates the tables
    error: str = ""
    rmap: RetargetMap | None = None   # for live frames, read once per build
    cmap: ChannelMap | None = None    # where each channel goes (keys, data paths)
    paths: list = field(default_factory=list)   # paths.PathTarget: data paths driven
    path_table: np.ndarray | None = None        # (F, P) their values per frame of the take
    sparsity: float = 0.0
    generation: int = -1      # live_feed.generation() the tables were built at


@dataclass
class _Preview:
    """One scene's running preview: what was there before, the folds, the tables."""

    rest: dict = field(default_factory=dict)     # object name -> key values before the preview
    path_rest: dict = field(default_factory=dict)  # PathTarget.key -> (target, value before)
    folds: dict = field(default_factory=dict)    # object name -> FoldedKeys
    tables: _Tables | None = None


_previews: dict = {}   # scene name -> _Preview


def _source_ids(obj) -> tuple:
    """The source's action: editing its keys tags it. (Not the object itself, which is
    tagged by mere selection, and a rebuild may mean a custom-rig solve.)"""
    owner = obj.data.shape_keys if obj.type == "MESH" else obj
    anim = getattr(owner, "animation_data", None)
    return (anim.action.as_pointer(),) if anim is not None and anim.action is not None else ()


def build(scene, objs) -> _Tables:
    """Read the source and compute the tables of ``objs`` (raises TakeError/TargetError;
    changes nothing). A live scene needs no source: its targets get plans, no tables."""
    settings = scene.facsimile_drive
    try:
        placed = sources.read_source(settings.source, scene)
    except TakeError:
        if not live_feed.is_live(scene):
            raise
        placed = None
    rmap = opsdata.retarget_map(settings)
    cmap = opsdata.channel_map(settings)
    tables = _Tables(first_frame=placed.first_frame if placed else 0,
                     source_ids=_source_ids(settings.source) if placed else (), rmap=rmap,
                     cmap=cmap, sparsity=settings.solve_sparsity,
                     generation=live_feed.generation())
    for obj in objs:
        plan = targets.plan_target(obj, settings.mode, prefs.provider_choice(), cmap)
        table = None
        if placed is not None:
            table = drive_values(placed, rmap, plan, placed.frames, smooth=settings.solve_smooth,
                                 sparsity=settings.solve_sparsity, cmap=cmap).astype(np.float32)
        tables.targets.append(_Target(obj.name, plan.key_indices, table, plan))
    tables.paths = paths.resolve(rmap, cmap, objs)
    if placed is not None and tables.paths:
        columns = path_values(placed, rmap, cmap, placed.frames)
        tables.path_table = columns[:, [t.column for t in tables.paths]]
    return tables


def _tables(scene) -> _Tables:
    preview = _previews.setdefault(scene.name_full, _Preview())
    if preview.tables is not None and preview.tables.generation != live_feed.generation():
        preview.tables = None   # the scene went live or stopped: plans with/without a take
    if preview.tables is None:
        try:
            preview.tables = build(scene, opsdata.preview_objects(scene.facsimile_drive))
        except FacsimileError as err:   # TakeError, TargetError, InferenceError: shown in the panel
            preview.tables = _Tables(error=str(err), generation=live_feed.generation())
        for target in preview.tables.targets:       # folded in the file, not in memory:
            obj = bpy.data.objects.get(target.obj_name)   # an undo or a reload happened
            if target.obj_name not in preview.folds and fold.is_folded(obj):
                preview.folds[target.obj_name] = fold.FoldedKeys.fold(obj, target.key_indices)
    return preview.tables


def apply(scene) -> None:
    """Write the current frame's values (or the newest live frame's) to every preview target."""
    tables = _tables(scene)
    if tables.error:
        return
    preview = _previews[scene.name_full]
    folds = preview.folds
    live = live_feed.weights(scene)
    routed = tables.cmap.mask("PATH") if tables.cmap is not None else None
    mapped = tables.rmap.apply(live[None], unclamped=routed) if live is not None else None
    for target in tables.targets:
        if mapped is not None:
            row = target.plan.values(for_plan(mapped, tables.cmap), sparsity=tables.sparsity)[0]
        elif target.table is not None:
            row = target.table[int(np.clip(scene.frame_current - tables.first_frame, 0,
                                           len(target.table) - 1))]
        else:
            continue   # live, but no frame yet
        _write(target, row, folds.get(target.obj_name))
    if tables.paths:
        if mapped is not None:
            channels = [c for c, _ in path_columns(tables.rmap, tables.cmap)]
            row = mapped[0, [channels[t.column] for t in tables.paths]]
        elif tables.path_table is not None:
            row = tables.path_table[int(np.clip(scene.frame_current - tables.first_frame, 0,
                                                len(tables.path_table) - 1))]
        else:
            return
        for target, value in zip(tables.paths, row):
            if target.key not in preview.path_rest:   # first write: remember it for stop()
                preview.path_rest[target.key] = (target, paths.read(target))
            paths.write(target, value)


def _write(target: _Target, row: np.ndarray, folded) -> None:
    """Set ``target``'s driven keys to ``row`` and its folded preview key to their blend."""
    obj = bpy.data.objects.get(target.obj_name)
    keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    if not len(target.key_indices):
        return   # every channel of this mesh goes to data paths
    if keys is None or len(keys.key_blocks) <= int(target.key_indices.max()):
        return   # deleted or re-keyed since the preview started: skip, never fail
    values = np.empty(len(keys.key_blocks), np.float32)
    keys.key_blocks.foreach_get("value", values)
    values[target.key_indices] = row
    keys.key_blocks.foreach_set("value", values)   # the sliders show the performance
    if folded is not None:
        folded.write(keys, values[folded.positions])
    if bpy.app.version < (5, 0, 0):
        keys.user.update_tag()   # 4.x does not tag after foreach_set (ecosystem.md 2.4)


def on_live(scene) -> None:
    """``live_feed`` consumer: a live frame arrived, or the scene stopped being live."""
    if scene.facsimile_drive.preview:
        apply(scene)


def start(scene, objs) -> _Tables:
    """Preview ``objs``: build the tables (errors raise, nothing changed, a running
    preview goes on), then end any running preview, remember the keys' values for
    :func:`stop`, fold the driven keys and show the current frame."""
    tables = build(scene, objs)
    stop(scene)
    settings = scene.facsimile_drive
    for obj in objs:
        settings.preview_targets.add().object = obj
    preview = _Preview(tables=tables)
    for obj, target in zip(objs, tables.targets):
        blocks = obj.data.shape_keys.key_blocks
        preview.rest[obj.name] = np.empty(len(blocks), np.float32)
        blocks.foreach_get("value", preview.rest[obj.name])
        folded = fold.FoldedKeys.fold(obj, target.key_indices)
        if folded is not None:
            preview.folds[obj.name] = folded
    _previews[scene.name_full] = preview
    settings.preview = True
    apply(scene)
    return tables


def stop(scene) -> None:
    """End the preview: keys unfolded and back to the values they had before it."""
    settings = scene.facsimile_drive
    preview = _previews.pop(scene.name_full, None)
    if settings.preview:   # (after an undo to before the start there is nothing to put back)
        for obj in opsdata.preview_objects(settings):
            fold.unfold(obj)
            rest = preview.rest.get(obj.name) if preview else None
            blocks = obj.data.shape_keys.key_blocks if obj.data.shape_keys else None
            if rest is not None and blocks is not None and len(blocks) == len(rest):
                blocks.foreach_set("value", rest)
    if preview is not None:
        for target, value in preview.path_rest.values():
            if value is not None:
                paths.write(target, value)
    settings.preview = False
    settings.preview_targets.clear()


def has_key_animation(obj) -> bool:
    """Keyframes on the mesh's shape keys win over the preview's values."""
    keys = obj.data.shape_keys
    return keys is not None and bool(animation.assigned_fcurves(keys))


def invalidate(scene, reapply: bool = False) -> None:
    preview = _previews.get(scene.name_full)
    if preview is not None:
        preview.tables = None
    if reapply and scene.facsimile_drive.preview:
        apply(scene)


def last_error(scene) -> str:
    preview = _previews.get(scene.name_full)
    return preview.tables.error if preview is not None and preview.tables is not None else ""



def source_edited(scene, depsgraph) -> None:
    """Edits of the source's keys (Graph Editor, a re-import) rebuild the tables."""
    preview = _previews.get(scene.name_full)
    if preview is None or preview.tables is None or not preview.tables.source_ids:
        return
    for update in depsgraph.updates:
        original = getattr(update.id, "original", None)
        if original is not None and original.as_pointer() in preview.tables.source_ids:
            invalidate(scene)
            return


def reset_after_load() -> None:
    """A file saved mid-preview opens with the preview off and its keys unfolded."""
    _previews.clear()
    for scene in bpy.data.scenes:
        settings = scene.facsimile_drive
        if settings.preview:
            for obj in opsdata.preview_objects(settings):
                fold.unfold(obj)
            settings.preview = False
            settings.preview_targets.clear()


def clear() -> None:
    _previews.clear()
