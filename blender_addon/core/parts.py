"""Loose parts inside a head (teeth, tongue, gums, eyes): which follow the jaw, and how.

The networks rig the skin only (``mesh.find_skin``). A part the skin encloses is
then classified by where it sits, using the predicted region weights of the skin
nearest to it:

* nearest skin mostly lower lip / chin / jaw -> a *jaw part* (lower teeth, tongue,
  lower gums): in the four jaw shapes (jawOpen, jawForward, jawLeft, jawRight) each of
  its vertices moves like the chin and jaw skin around it (inverse-distance blend of
  the nearest such skin vertices), so the front teeth follow the chin further than
  the back ones, as a hinge does;
* anything else (eyes, upper teeth, lashes) stays still. Eyes do not rotate for
  eyeLook*: an artist rigs eyes with bones or drivers, and a shape key cannot rotate.
"""

from __future__ import annotations

import numpy as np

from .arkit import ICT_53
from .regions import REGION_INDEX

JAW_REGIONS = ("lower_lip", "chin", "jaw_L", "jaw_R")
JAW_SHAPES = ("jawOpen", "jawForward", "jawLeft", "jawRight")
NEIGHBOURS = 16


def jaw_part_mask(verts: np.ndarray, skin: np.ndarray, part_labels: np.ndarray,
                  region_weights: np.ndarray) -> np.ndarray:
    """(V,) bool: non-skin vertices of components whose nearest skin is mostly jaw regions.

    ``part_labels`` gives a component id per vertex (-1 for skin / unused).
    """
    from scipy.spatial import cKDTree

    out = np.zeros(len(verts), bool)
    loose = np.flatnonzero(~skin & (part_labels >= 0))
    if len(loose) == 0 or not skin.any():
        return out
    skin_idx = np.flatnonzero(skin)
    jaw_cols = [REGION_INDEX[r] for r in JAW_REGIONS]
    is_jaw_skin = region_weights[skin_idx][:, jaw_cols].sum(1) > 0.5
    _, nearest = cKDTree(verts[skin_idx]).query(verts[loose])
    votes = is_jaw_skin[nearest]
    for comp in np.unique(part_labels[loose]):
        members = part_labels[loose] == comp
        if votes[members].mean() > 0.5:
            out[loose[members]] = True
    return out


def follow_jaw(verts: np.ndarray, skin: np.ndarray, jaw_part: np.ndarray, region_weights: np.ndarray,
               ict_deltas: np.ndarray) -> None:
    """Write jaw-shape deltas onto jaw-part vertices of ``ict_deltas`` (53,V,3), in place."""
    from scipy.spatial import cKDTree

    if not jaw_part.any():
        return
    skin_idx = np.flatnonzero(skin)
    jaw_cols = [REGION_INDEX[r] for r in JAW_REGIONS]
    anchors = skin_idx[region_weights[skin_idx][:, jaw_cols].sum(1) > 0.5]
    if len(anchors) == 0:
        return
    k = min(NEIGHBOURS, len(anchors))
    dist, nn = cKDTree(verts[anchors]).query(verts[jaw_part], k=k)
    dist, nn = np.atleast_2d(dist.T).T, np.atleast_2d(nn.T).T
    w = 1.0 / np.maximum(dist, 1e-9) ** 2
    w /= w.sum(axis=1, keepdims=True)
    targets = np.flatnonzero(jaw_part)
    for name in JAW_SHAPES:
        s = ICT_53.index(name)
        ict_deltas[s, targets] = np.einsum("pk,pkc->pc", w, ict_deltas[s, anchors][nn])
