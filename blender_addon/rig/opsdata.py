# SPDX-License-Identifier: GPL-3.0-or-later
"""Blender data in and out for the rig: sliders, region groups, and the writes of a rig.

The mesh itself is read by ``mesh_io.py``; writes are bulk (``points.foreach_set`` for
shape keys, one ``VertexGroup.add`` per distinct quantized weight for groups). Every write goes through :class:`Transaction`, which
snapshots what it replaces and undoes everything it did if anything fails, so a
failure part-way leaves the mesh exactly as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from ..core import arkit
from ..core.regions import GROUP_PREFIX, REGION_NAMES, group_name

WEIGHT_STEPS = 255
"""Region weights are written with 8-bit resolution (what glTF and game engines keep):
finer than a brush stroke, and few distinct values, so a group of 200k vertices is
written in at most 255 ``VertexGroup.add`` calls."""


def slider_keys(obj):
    """{ARKit name: key block} for the keys of ``obj`` that are ARKit channels (any naming)."""
    keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    if keys is None:
        return {}
    found = {}
    for kb in keys.key_blocks[1:]:
        name = arkit.normalize_name(kb.name)
        if name is not None and name not in found:
            found[name] = kb
    return found


def fx_groups(obj) -> list:
    """The region groups Facsimile writes (``FX_`` + a region name); an artist's own
    ``FX_custom`` group is not one of them and never blocks or is touched."""
    names = {group_name(r) for r in REGION_NAMES}
    return [vg for vg in obj.vertex_groups if vg.name in names]


def existing_key(obj, name: str):
    """The key of ``obj`` that is the same channel as ``name``: by :func:`arkit.normalize_name`
    (ARKit names in any spelling, the first such key as the drive side takes it), or by the
    exact name for names that are not ARKit channels (ICT halves)."""
    keys = obj.data.shape_keys
    if keys is None:
        return None
    channel = arkit.normalize_name(name)
    if channel is None:
        return keys.key_blocks.get(name)
    return slider_keys(obj).get(channel)


def read_region_weights(obj) -> np.ndarray | None:
    """(V,R) weights from the ``FX_`` groups, or None when there are none.

    Blender has no bulk reader for deform weights; one pass over the vertices'
    group memberships is the fastest pure-Python way.
    """
    index_of = {}
    for vg in obj.vertex_groups:
        if vg.name.startswith(GROUP_PREFIX) and vg.name[len(GROUP_PREFIX):] in REGION_NAMES:
            index_of[vg.index] = REGION_NAMES.index(vg.name[len(GROUP_PREFIX):])
    if not index_of:
        return None
    weights = np.zeros((len(obj.data.vertices), len(REGION_NAMES)), np.float32)
    for v in obj.data.vertices:
        for g in v.groups:
            r = index_of.get(g.group)
            if r is not None:
                weights[v.index, r] = g.weight
    return weights


@dataclass
class Transaction:
    """Writes to one object that can be rolled back completely."""

    obj: object
    added_groups: list = field(default_factory=list)
    replaced_groups: dict = field(default_factory=dict)     # name -> (index order, weights)
    added_keys: list = field(default_factory=list)
    replaced_keys: dict = field(default_factory=dict)       # name -> (co, value, min, max)
    created_basis: bool = False

    # ---- vertex groups

    def remove_fx_groups(self, names: list[str]) -> None:
        for name in names:
            vg = self.obj.vertex_groups.get(name)
            if vg is None:
                continue
            self.replaced_groups[name] = _group_weights(self.obj, vg)
            self.obj.vertex_groups.remove(vg)

    def write_region_groups(self, weights: np.ndarray) -> list[str]:
        q = np.round(np.clip(weights, 0.0, 1.0) * WEIGHT_STEPS).astype(np.int32)
        groups = []
        for region in REGION_NAMES:
            vg = self.obj.vertex_groups.new(name=group_name(region))
            self.added_groups.append(vg.name)
            groups.append(vg)
        # All (vertex, region) pairs at once, sorted by region then weight: one add per
        # run of equal weights (one pass over the array instead of one per region).
        rows, cols = np.nonzero(q)
        key = cols * (WEIGHT_STEPS + 1) + q[rows, cols]
        order = np.argsort(key, kind="stable")
        rows, key = rows[order], key[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        for start, end in zip(starts, np.r_[starts[1:], len(key)]):
            region, step = divmod(int(key[start]), WEIGHT_STEPS + 1)
            groups[region].add(rows[start:end].tolist(), step / WEIGHT_STEPS, "REPLACE")
        return [vg.name for vg in groups]

    # ---- shape keys

    def ensure_basis(self) -> None:
        if self.obj.data.shape_keys is None:
            basis = self.obj.shape_key_add(name="Basis", from_mix=False)
            basis.value = 0.0
            self.created_basis = True

    def write_shape_key(self, name: str, co_local: np.ndarray, replace: bool) -> str:
        """Add (or replace the data of) a key; returns 'added' | 'replaced' | 'skipped'."""
        kb = existing_key(self.obj, name)
        if kb is not None:
            if not replace:
                return "skipped"
            if kb.lock_shape:
                return "locked"
            # Replaced under the artist's name (``JawOpen`` stays ``JawOpen``): their drivers,
            # scripts and exports keep working; the bake finds it by the same normalisation.
            if kb.name not in self.replaced_keys:
                old = np.empty(len(kb.points) * 3, np.float32)
                kb.points.foreach_get("co", old)
                self.replaced_keys[kb.name] = (old, kb.value, kb.slider_min, kb.slider_max, kb.relative_key.name)
            kb.points.foreach_set("co", np.ascontiguousarray(co_local, np.float32).ravel())
            # The data written is relative to the Basis: a key relative to another key would
            # add that key's shape on top.
            kb.relative_key = self.obj.data.shape_keys.reference_key
            status = "replaced"
        else:
            kb = self.obj.shape_key_add(name=name, from_mix=False)
            self.added_keys.append(kb.name)
            kb.points.foreach_set("co", np.ascontiguousarray(co_local, np.float32).ravel())
            status = "added"
        kb.slider_min, kb.slider_max = 0.0, 1.0
        kb.value = 0.0   # Blender 5.0 creates keys at 1.0; a new rig must rest at neutral
        return status

    # ---- rollback

    def rollback(self) -> None:
        obj = self.obj
        for name in reversed(self.added_groups):
            vg = obj.vertex_groups.get(name)
            if vg is not None:
                obj.vertex_groups.remove(vg)
        for name, data in self.replaced_groups.items():
            _restore_group(obj, name, data)
        keys = obj.data.shape_keys
        if keys is not None:
            for name in reversed(self.added_keys):
                kb = keys.key_blocks.get(name)
                if kb is not None:
                    obj.shape_key_remove(kb)
            for name, (co, value, lo, hi, relative) in self.replaced_keys.items():
                kb = keys.key_blocks.get(name)
                if kb is not None:
                    kb.points.foreach_set("co", co)
                    kb.slider_min, kb.slider_max, kb.value = lo, hi, value
                    if keys.key_blocks.get(relative) is not None:
                        kb.relative_key = keys.key_blocks[relative]
            if self.created_basis and obj.data.shape_keys is not None:
                obj.shape_key_clear()
        obj.data.update()


def _group_weights(obj, vg) -> tuple[int, list[tuple[int, float]]]:
    members = []
    for v in obj.data.vertices:
        for g in v.groups:
            if g.group == vg.index:
                members.append((v.index, g.weight))
    return vg.index, members


def _restore_group(obj, name: str, data) -> None:
    index, members = data
    vg = obj.vertex_groups.new(name=name)
    for i, w in members:
        vg.add([i], w, "REPLACE")
    # Put it back at its old position in the list (the order artists see).
    target = min(index, len(obj.vertex_groups) - 1)
    active = obj.vertex_groups.active_index
    obj.vertex_groups.active_index = vg.index
    with bpy.context.temp_override(object=obj, active_object=obj):
        while obj.vertex_groups.active_index > target:
            if bpy.ops.object.vertex_group_move(direction="UP") != {"FINISHED"}:
                break
    obj.vertex_groups.active_index = active
