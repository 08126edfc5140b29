"""Loose parts inside a head (teeth, tongue, gums, eyes): which follow the jaw, and how.

The networks rig the skin only (``mesh.find_skin``). A part the skin encloses is
then classified by how the skin nearest to it moves in the predicted rig (on the
proxy, so this costs the same for any mesh size):

* the nearest skin is mostly *jaw skin* (skin that the predicted jawOpen moves by at
  least a fifth of its largest motion: chin, lower lip, the mouth's floor) -> a *jaw
  part* (lower teeth, tongue, lower gums): in the four jaw shapes (jawOpen,
  jawForward, jawLeft, jawRight) each of its vertices moves like the jaw skin around
  it (inverse-distance blend of the nearest jaw-skin vertices), so the front teeth
  follow the chin further than the back ones, as a hinge does;
* anything else (eyes, upper teeth, lashes) stays still. Eyes do not rotate for
  eyeLook*: an artist rigs eyes with bones or drivers, and a shape key cannot rotate.
"""

from __future__ import annotations

import numpy as np

from .arkit import ICT_53

JAW_OPEN = ICT_53.index("jawOpen")
JAW_SHAPES = tuple(ICT_53.index(n) for n in ("jawOpen", "jawForward", "jawLeft", "jawRight"))
JAW_SKIN_SHARE = 0.2
NEIGHBOURS = 16


def is_jaw_skin(deltas: np.ndarray) -> np.ndarray:
    """(N,) bool from per-point deltas (N,53,3): points jawOpen moves by at least a fifth
    of its largest motion. Motion, not region labels: the inside of an artist's mouth
    (gums, mouth bag) has no region of its own, but it does move with the jaw."""
    motion = np.linalg.norm(deltas[:, JAW_OPEN], axis=1)
    return motion >= JAW_SKIN_SHARE * max(float(motion.max()), 1e-12)


def jaw_part_mask(points: np.ndarray, part_labels: np.ndarray, skin_points: np.ndarray,
                  skin_is_jaw: np.ndarray) -> np.ndarray:
    """(P,) bool over loose-part points (canonical frame): parts whose nearest skin is
    mostly jaw skin and whose centre lies below the nose tip (the canonical origin).

    A part and its mirror image (a pair of teeth, the two eyes) decide together on their
    mean vote: a face is symmetric, so an eye beside a wide, lopsided stylized jaw motion
    is not taken for a tooth when its twin says otherwise."""
    from scipy.spatial import cKDTree

    if len(points) == 0 or not skin_is_jaw.any():
        return np.zeros(len(points), bool)
    votes = skin_is_jaw[cKDTree(skin_points).query(points)[1]].astype(np.float64)
    _, comp = np.unique(part_labels, return_inverse=True)
    count = np.bincount(comp)
    share = np.bincount(comp, votes) / count
    centre = np.stack([np.bincount(comp, points[:, a]) / count for a in range(3)], axis=1)
    dist, twin = cKDTree(centre).query(centre * [-1.0, 1.0, 1.0])
    paired = (dist < 0.05) & (twin != np.arange(len(centre))) & (np.abs(count[twin] - count) <= 0.2 * count)
    share = np.where(paired, 0.5 * (share + share[twin]), share)
    below_nose = centre[:, 2] < 0.0
    return (share > 0.5)[comp] & below_nose[comp]


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
