# SPDX-License-Identifier: GPL-3.0-or-later
"""Loose parts inside a head (teeth, tongue, gums, eyes): which follow the jaw, and how.

The networks rig the skin only (``mesh.head.find_skin``). A part the skin encloses is
then classified by how the skin nearest to it moves in the predicted rig (on the
proxy, so this costs the same for any mesh size):

* the nearest skin is mostly *jaw skin* (skin that the predicted jawOpen moves by at
  least a fifth of its largest motion: chin, lower lip, the mouth's floor) and the part
  lies below the *mouth line* (the top of the lower lip) -> a *jaw part* (lower teeth,
  tongue, lower gums): in the four jaw shapes (jawOpen, jawForward, jawLeft, jawRight)
  it moves rigidly with the chin (the rotation and translation that best fit the
  motion of the skin the jaw moves most), so the front teeth swing further than the
  back ones, as about a hinge;
* anything else (eyes, upper teeth, lashes) stays still. Eyes do not rotate for
  eyeLook*: an artist rigs eyes with bones or drivers, and a shape key cannot rotate.

The thresholds were chosen on held-out ICT heads with ICT's own teeth, gums and
tongue (``model_export.evaluate.ict_mouth_heads``; table in docs/benchmarks.md), never
on the facecap test head: the mouth line keeps the upper teeth still (16.7 -> 0.0 mm
error in jawOpen) and anchoring on the most-moving tenth of the jaw skin instead of
all of it makes the lower teeth swing as a hinge (8.6 -> 3.1 mm).
"""

from __future__ import annotations

import numpy as np

from .arkit import ICT_53

JAW_OPEN = ICT_53.index("jawOpen")
JAW_SHAPES = tuple(ICT_53.index(n) for n in ("jawOpen", "jawForward", "jawLeft", "jawRight"))
JAW_SKIN_SHARE = 0.2       # jaw skin: jawOpen moves it by a fifth of the largest motion or more
ANCHOR_SHARE = 0.9         # the jaw's rigid motion is fitted to skin moving 90 % of the most,
MIN_ANCHORS = 16           # or to the 16 most-moving skin points when fewer do
VOTE = 0.5                 # a part follows when more than half of it is nearest to jaw skin,
WEAK_VOTE = 0.25           # or a quarter of it and it touches a part that follows
NEIGHBOUR_DISTANCE = 0.1   # canonical units (face width 1): centre to centre
MIDLINE = 0.05             # half-width of the strip where the mouth line is measured
MOUTH_MARGIN = 0.02        # a jaw part's centre lies below the mouth line + this
VOTE_SAMPLE = 1024         # points per part that vote (all of them in parts this small)


def jaw_motion(deltas: np.ndarray) -> np.ndarray:
    """(N,) how far jawOpen moves each point, from per-point deltas (N,53,3)."""
    return np.linalg.norm(deltas[:, JAW_OPEN], axis=1)


def is_jaw_skin(deltas: np.ndarray) -> np.ndarray:
    """(N,) bool from per-point deltas (N,53,3): points jawOpen moves by at least a fifth
    of its largest motion. Motion, not region labels: the inside of an artist's mouth
    (gums, mouth bag) has no region of its own, but it does move with the jaw."""
    motion = jaw_motion(deltas)
    return motion >= JAW_SKIN_SHARE * max(float(motion.max()), 1e-12)


def jaw_anchors(deltas: np.ndarray) -> np.ndarray:
    """(N,) bool: the skin the jaw carries most rigidly, the chin — points jawOpen moves by
    ``ANCHOR_SHARE`` of its largest motion, at least ``MIN_ANCHORS`` of them. The lips and
    cheeks also move with jawOpen, but they stretch, and fitting a rigid motion to them
    flattens the hinge (ICT: 10 degrees fitted where the teeth turn 25)."""
    motion = jaw_motion(deltas)
    anchors = motion >= ANCHOR_SHARE * max(float(motion.max()), 1e-12)
    if anchors.sum() < MIN_ANCHORS:
        anchors[np.argsort(motion)[::-1][:MIN_ANCHORS]] = True
    return anchors


def mouth_line(skin_points: np.ndarray, deltas: np.ndarray) -> float:
    """Canonical height of the top of the lower lip: the highest skin point near the
    midline that jawOpen moves by at least half its largest motion; 0.0 (the nose tip)
    when there is none. Upper teeth sit above it, lower teeth below."""
    motion = jaw_motion(deltas)
    moving = (np.abs(skin_points[:, 0]) < MIDLINE) & (motion >= 0.5 * max(float(motion.max()), 1e-12))
    return float(skin_points[moving, 2].max()) if moving.any() else 0.0


def jaw_part_mask(points: np.ndarray, part_labels: np.ndarray, skin_points: np.ndarray,
                  skin_deltas: np.ndarray) -> np.ndarray:
    """(P,) bool over loose-part points (canonical frame): the parts that follow the jaw.

    ``skin_points`` (N,3) and ``skin_deltas`` (N,53,3) are the rigged skin. A part's
    *vote* is the share of its points whose nearest skin is jaw skin. A part follows
    when its centre lies below the mouth line (+ ``MOUTH_MARGIN``) and:

    * its vote is over ``VOTE`` — a part and its mirror image (two teeth, two eyes)
      decide together on their mean vote, so an eye beside a wide, lopsided stylized jaw
      motion is not taken for a tooth when its twin says otherwise; or
    * its vote is over ``WEAK_VOTE`` and it sits next to a part that follows
      (``NEIGHBOUR_DISTANCE``): the front incisors, whose nearest skin is the lips
      rather than the chin, join the rest of the lower teeth.
    """
    from scipy.spatial import cKDTree

    skin_is_jaw = is_jaw_skin(skin_deltas)
    if len(points) == 0 or not skin_is_jaw.any():
        return np.zeros(len(points), bool)
    _, comp = np.unique(part_labels, return_inverse=True)
    count = np.bincount(comp)
    # Each part votes with at most VOTE_SAMPLE of its points (evenly spread through its
    # vertex order): points inside a hollow head are far from every skin point, so a
    # nearest-skin query costs ~3 us each; a 200k head's 60k inner points took 0.2 s.
    sample = _vote_sample(comp, count)
    votes = skin_is_jaw[cKDTree(skin_points).query(points[sample])[1]].astype(np.float64)
    share = np.bincount(comp[sample], votes, minlength=len(count)) / np.bincount(comp[sample], minlength=len(count))
    centre = np.stack([np.bincount(comp, points[:, a]) / count for a in range(3)], axis=1)
    dist, twin = cKDTree(centre).query(centre * [-1.0, 1.0, 1.0])
    paired = (dist < 0.05) & (twin != np.arange(len(centre))) & (np.abs(count[twin] - count) <= 0.2 * count)
    share = np.where(paired, 0.5 * (share + share[twin]), share)
    below_mouth = centre[:, 2] < mouth_line(skin_points, skin_deltas) + MOUTH_MARGIN
    follows = (share > VOTE) & below_mouth
    candidates = (share > WEAK_VOTE) & below_mouth & ~follows
    while candidates.any() and follows.any():
        near = cKDTree(centre[follows]).query(centre[candidates])[0] < NEIGHBOUR_DISTANCE
        if not near.any():
            break
        joined = np.flatnonzero(candidates)[near]
        follows[joined], candidates[joined] = True, False
    return follows[comp]


def _vote_sample(comp: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Indices of the voting points: every k-th point of each part, k = ceil(size / VOTE_SAMPLE)."""
    order = np.argsort(comp, kind="stable")
    rank = np.empty(len(comp), np.int64)
    rank[order] = np.arange(len(comp)) - np.repeat(np.cumsum(count) - count, count)
    step = -(-count // VOTE_SAMPLE)
    return np.flatnonzero(rank % step[comp] == 0)


def follow_jaw(points: np.ndarray, anchors: np.ndarray, anchor_deltas: np.ndarray) -> np.ndarray:
    """Deltas (53,P,3) for jaw-part points: each jaw shape as the rigid motion of the jaw skin.

    Per jaw shape, the rotation and translation that best carry the anchors (the chin,
    :func:`jaw_anchors`) to their displaced positions (weighted Kabsch, weights = how far
    each anchor moves) is applied to the part: the lower teeth swing about the jaw's
    hinge as a whole instead of bending with the lips.
    """
    out = np.zeros((anchor_deltas.shape[0], len(points), 3), anchor_deltas.dtype)
    if len(points) == 0 or len(anchors) < 3:
        return out
    for s in JAW_SHAPES:
        moved = anchor_deltas[s]
        w = np.linalg.norm(moved, axis=1)
        if w.sum() <= 0:
            continue
        w = w / w.sum()
        c0 = w @ anchors
        c1 = w @ (anchors + moved)
        h = ((anchors - c0) * w[:, None]).T @ (anchors + moved - c1)
        u, _, vt = np.linalg.svd(h)
        d = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
        rotation = vt.T @ d @ u.T
        out[s] = (points - c0) @ rotation.T + c1 - points
    return out
