# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole ICT head as artists build one: skin, mouth and eye sockets, teeth, gums and tongue, eyeballs.

:mod:`model_export.data.ict` keeps the open skin only (vertices 0..11247). Artists' heads
often carry more: eye sockets modelled as shells fused to the lids, the mouth as a closed bag
fused to the lips, eyeballs, teeth and a tongue as loose parts or welded into the skin
(issue 12). ICT-FaceKit ships all of these, and its expressions move them: the sockets
stretch with the lids and the lips, the lower teeth, gums and tongue follow the jaw, the
eyeballs turn for ``eyeLook*``. So ground truth reaches every added part from ICT itself,
through the same closest-point correspondence as the skin (:mod:`model_export.data.artist`).

Frame and units as :mod:`model_export.data.ict`: Blender's frame, centimetres. The skin
vertices keep their indices (0..11247 come first), so the 68 landmarks and the region
labels of the skin index this model directly; a part vertex takes the label of its
nearest skin vertex on the mean head (a socket shell is "upper lid" where it meets the
upper lid), which only matters where a part stays visible (a welded eyeball's front).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from blender_addon.core.mesh.topology import connected_components

from .ict import SKIN_VERTEX_COUNT, ict_npz_path, ict_to_blender

__all__ = ["PARTS", "ICTParts", "load_ict_parts"]

# Part name -> upstream regions. "skin" is face + head_and_neck (the training skin).
PARTS: dict[str, tuple[str, ...]] = {
    "skin": ("face", "head_and_neck"),
    "mouth_socket": ("mouth_socket",),
    "eye_sockets": ("eye_socket_left", "eye_socket_right"),
    "gums_and_tongue": ("gums_and_tongue",),
    "teeth": ("teeth",),
    "eyeballs": ("eyeball_left", "eyeball_right"),
}


@dataclass(frozen=True, eq=False)
class ICTParts:
    """ICT skin plus its inner parts, float32 centimetres, Blender frame."""

    neutral: np.ndarray      # (V,3)
    faces: np.ndarray        # (F,3) int64, triangles among the kept vertices
    id_basis: np.ndarray     # (100,V,3)
    exp_basis: np.ndarray    # (53,V,3)
    part: np.ndarray         # (V,) int8 index into PARTS
    component: np.ndarray    # (V,) connected component (a tooth, an eyeball, the skin with its sockets)
    labels: np.ndarray       # (V,) region label: the skin's own, a part's nearest skin vertex's
    landmarks: np.ndarray    # (68,) indices (all on the skin)

    def mask(self, *names: str) -> np.ndarray:
        return np.isin(self.part, [list(PARTS).index(n) for n in names])

    def mesh(self, id_coeffs: np.ndarray) -> np.ndarray:
        return self.neutral + np.tensordot(np.asarray(id_coeffs, np.float32), self.id_basis, axes=1)


@lru_cache(maxsize=1)
def _load(path: str, labels_key: bytes) -> ICTParts:
    skin_labels = np.frombuffer(labels_key, np.int8)
    with np.load(path) as d:
        names = [str(n) for n in d["region_names"]]
        region = d["vertex_region"]
        part = np.full(len(region), -1, np.int8)
        for k, regions in enumerate(PARTS.values()):
            part[np.isin(region, [names.index(r) for r in regions])] = k
        keep = part >= 0
        if not keep[:SKIN_VERTEX_COUNT].all():
            raise ValueError(f"{path}: the skin is not the prefix 0..{SKIN_VERTEX_COUNT - 1}")
        remap = np.full(len(keep), -1, np.int64)
        remap[keep] = np.arange(int(keep.sum()))
        faces = remap[d["faces"][keep[d["faces"]].all(1)]]

        def blender(key: str) -> np.ndarray:
            return np.ascontiguousarray(ict_to_blender(d[key][..., keep, :]), dtype=np.float32)

        neutral, id_basis, exp_basis = blender("neutral"), blender("id_basis"), blender("exp_basis")
        landmarks = d["landmarks_multipie68"].astype(np.int64)
    from scipy.spatial import cKDTree

    labels = np.empty(len(neutral), np.int8)
    labels[:SKIN_VERTEX_COUNT] = skin_labels
    rest = np.arange(SKIN_VERTEX_COUNT, len(neutral))
    labels[rest] = skin_labels[cKDTree(neutral[:SKIN_VERTEX_COUNT]).query(neutral[rest])[1]]
    arrays = dict(neutral=neutral, faces=faces, id_basis=id_basis, exp_basis=exp_basis, part=part[keep],
                  component=connected_components(len(neutral), faces), labels=labels, landmarks=landmarks)
    for array in arrays.values():
        array.flags.writeable = False     # cached and shared between pool workers
    return ICTParts(**arrays)


def load_ict_parts(skin_labels: np.ndarray, path: str | Path | None = None) -> ICTParts:
    """The whole ICT head; ``skin_labels`` are the (11248,) region labels of the skin."""
    skin_labels = np.ascontiguousarray(skin_labels, np.int8)
    if skin_labels.shape != (SKIN_VERTEX_COUNT,):
        raise ValueError(f"expected {SKIN_VERTEX_COUNT} skin labels, got {skin_labels.shape}")
    return _load(str(Path(path or ict_npz_path()).resolve()), skin_labels.tobytes())
