"""Loose parts inside a head (teeth, tongue, gums, eyes): which follow the jaw, and how.

The networks rig the skin only (``mesh.find_skin``). A part the skin encloses is
then classified by where it sits, using the predicted region weights of the skin
nearest to it (on the proxy, so this costs the same for any mesh size):

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
JAW_SHAPES = tuple(ICT_53.index(n) for n in ("jawOpen", "jawForward", "jawLeft", "jawRight"))
NEIGHBOURS = 16


def is_jaw_skin(region_weights: np.ndarray) -> np.ndarray:
    """(N,) bool: skin points whose region weight is mostly lower lip, chin or jaw."""
    return region_weights[:, [REGION_INDEX[r] for r in JAW_REGIONS]].sum(1) > 0.5


def jaw_part_mask(points: np.ndarray, part_labels: np.ndarray, skin_points: np.ndarray,
                  skin_is_jaw: np.ndarray) -> np.ndarray:
    """(P,) bool over loose-part points: parts whose nearest skin is mostly jaw regions."""
    from scipy.spatial import cKDTree

    if len(points) == 0 or not skin_is_jaw.any():
        return np.zeros(len(points), bool)
    votes = skin_is_jaw[cKDTree(skin_points).query(points)[1]].astype(np.float64)
    _, comp = np.unique(part_labels, return_inverse=True)
    share = np.bincount(comp, votes) / np.bincount(comp)
    return share[comp] > 0.5


def follow_jaw(points: np.ndarray, anchors: np.ndarray, anchor_deltas: np.ndarray) -> np.ndarray:
    """Deltas (53,P,3) for jaw-part points: the jaw shapes blended from nearby jaw skin."""
    from scipy.spatial import cKDTree

    out = np.zeros((anchor_deltas.shape[0], len(points), 3), anchor_deltas.dtype)
    if len(points) == 0 or len(anchors) == 0:
        return out
    k = min(NEIGHBOURS, len(anchors))
    dist, nn = cKDTree(anchors).query(points, k=k)
    dist, nn = dist.reshape(len(points), k), nn.reshape(len(points), k)
    w = 1.0 / np.maximum(dist, 1e-9) ** 2
    w /= w.sum(axis=1, keepdims=True)
    for s in JAW_SHAPES:
        out[s] = np.einsum("pk,pkc->pc", w, anchor_deltas[s][nn])
    return out
