# SPDX-License-Identifier: GPL-3.0-or-later
"""Fold the driven shape keys of a preview target into one key, for playback speed.

Blender evaluates every shape key whose value is not 0 over every vertex, so 52 active
keys cost many times what the mesh costs anyway (measured by ``python build.py bench
drive``, table in docs/benchmarks.md). During live preview the
driven keys are therefore muted and their blend ``base + sum_k w_k * delta_k`` is written
into a single key, "Facsimile Preview", in one numpy product and one ``foreach_set``:
Blender then evaluates one key. The muted keys still receive their values, so the sliders
show the performance. What Blender would have computed is reproduced exactly: values are
clamped to each key's slider range, and only keys relative to the Basis without a vertex
group are folded (the others stay live keys).

The names of the muted keys are kept on the Key datablock (``facsimile_preview_muted``),
so :func:`unfold` can put everything back even after the file was saved mid-preview and
reopened, or after an undo.
"""

from __future__ import annotations

import numpy as np

PREVIEW_KEY = "Facsimile Preview"
MUTED_PROP = "facsimile_preview_muted"


def foldable(kb, reference) -> bool:
    return kb.relative_key == reference and not kb.vertex_group and not kb.mute and kb != reference


class FoldedKeys:
    """The folded keys of one mesh: ``positions`` (indices in key_blocks) are muted and
    replaced by the preview key. Build it with :meth:`fold`."""

    def __init__(self, positions, base, moving, deltas, lo, hi):
        self.positions = positions      # (K,) key_block indices folded
        self._base = base               # (3V,) reference key, flat
        self._moving = moving           # (3M,) flat indices of coordinates any folded key moves
        self._deltas = deltas           # (K, 3M) float32
        self._lo, self._hi = lo, hi     # (K,) slider range: Blender clamps values to it
        self._out = base.copy()
        self._dense = moving.size == base.size   # then no gather/scatter: contiguous BLAS only
        self._blend = np.empty(moving.size, np.float32)
        self._base_moving = base if self._dense else base[moving]

    @classmethod
    def fold(cls, obj, positions) -> "FoldedKeys | None":
        """Mute the foldable keys among ``positions`` and add the preview key; None when
        fewer than two keys can be folded (nothing to gain)."""
        unfold(obj)
        keys = obj.data.shape_keys
        blocks, reference = keys.key_blocks, keys.reference_key
        chosen = [int(p) for p in positions if keys.use_relative and foldable(blocks[int(p)], reference)]
        if len(chosen) < 2:
            return None
        n = len(obj.data.vertices) * 3
        base = np.empty(n, np.float32)
        reference.points.foreach_get("co", base)
        deltas = np.empty((len(chosen), n), np.float32)
        for row, p in zip(deltas, chosen):
            blocks[p].points.foreach_get("co", row)
            row -= base
        moving = np.flatnonzero(np.abs(deltas).max(axis=0) > 0)
        lo = np.array([blocks[p].slider_min for p in chosen], np.float32)
        hi = np.array([blocks[p].slider_max for p in chosen], np.float32)
        preview = obj.shape_key_add(name=PREVIEW_KEY, from_mix=False)
        preview.slider_min, preview.slider_max, preview.value = 0.0, 1.0, 1.0
        keys[MUTED_PROP] = [blocks[p].name for p in chosen]
        for p in chosen:
            blocks[p].mute = True
        return cls(np.array(chosen), base, moving, np.ascontiguousarray(deltas[:, moving]), lo, hi)

    def write(self, keys, weights: np.ndarray) -> None:
        """Put the blend of the folded keys at ``weights`` (one per position) into the preview key."""
        preview = keys.key_blocks.get(PREVIEW_KEY)
        if preview is None:
            return
        w = np.clip(np.asarray(weights, np.float32), self._lo, self._hi)
        np.dot(w, self._deltas, out=self._blend)
        if self._dense:
            np.add(self._blend, self._base, out=self._out)
        else:
            self._out[self._moving] = self._blend + self._base_moving
        preview.points.foreach_set("co", self._out)


def is_folded(obj) -> bool:
    keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    return keys is not None and PREVIEW_KEY in keys.key_blocks


def folded_names(keys) -> set:
    """Keys muted by a preview (not by the artist)."""
    return set(keys.get(MUTED_PROP, ())) if keys is not None else set()


def unfold(obj) -> None:
    """Remove the preview key and unmute what it replaced (safe to call on any mesh)."""
    keys = obj.data.shape_keys if obj is not None and obj.type == "MESH" else None
    if keys is None:
        return
    preview = keys.key_blocks.get(PREVIEW_KEY)
    if preview is not None:
        obj.shape_key_remove(preview)
    for name in keys.get(MUTED_PROP, ()):
        kb = keys.key_blocks.get(name)
        if kb is not None:
            kb.mute = False
    if MUTED_PROP in keys:
        del keys[MUTED_PROP]
