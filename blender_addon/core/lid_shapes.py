# SPDX-License-Identifier: GPL-3.0-or-later
"""eyeSquint and eyeWide on the blink's lid margin (issue 13), without ground truth.

The blink rule (``eye_opening.complete_blink``) brings the upper-lid margin onto the lower one.
Squint and wide act on the same margins, by a share of the same gap, measured per column
of the eye opening (``eye_opening._margins``):

* **eyeSquint** raises the lower-lid margin by :data:`SQUINT_SHARE` of the gap (the lower
  lid bunches up under the contracted orbicularis; the cheek part of a squint is the
  network's ``cheekSquint``);
* **eyeWide** lifts the upper-lid margin by :data:`WIDE_SHARE` of the gap, away from the
  lower lid (sclera shows above the iris);
* **eyeLookDown / eyeLookUp** carry the upper-lid margin with the eyeball by
  :data:`LID_RIDE` of the gap (the lid rests on the cornea and follows it).

Like the blink, the rule only completes: where the network's shape already moves the
margin that far along the gap, nothing changes. The correction spreads over the lid with
``eye_opening.LID_FALLOFF``, and nothing the rule moves ends inside the eyeball. The shares are
anatomical proportions of the palpebral opening (~10 mm): a squint narrows it by ~2-3 mm
from below, a wide eye opens it by ~2 mm; neither was fitted to a head.
"""

from __future__ import annotations

import numpy as np

from . import eye_opening, eyes

SQUINT_SHARE = 0.25
WIDE_SHARE = 0.2
# The upper lid rides with the gaze: share of the lid gap the upper margin moves toward the
# lower one at eyeLookDown = 1 (negative: away, at eyeLookUp = 1). Measured on facecap's
# artist shapes (tools/bench_accuracy_eyes.py ``calibrate_lid_ride``: +0.46 / -0.38, both eyes
# alike), the calibration source for the gaze; like GAZE_DEGREES, only this
# physical proportion is taken from a test head.
LID_RIDE = {"Down": 0.46, "Up": -0.38}


def lid_ride(key: str, gaze: dict) -> float:
    """Share of the lid gap the upper margin rides at eyeLook ``key`` ("Down"/"Up") = 1 on a
    rig whose eyes turn by ``gaze`` (``eyes.gaze_angles``): :data:`LID_RIDE` scaled with the
    angle against the calibrated one (the lid rests on the cornea, so it follows the eye as far
    as the eye turns), at most the whole gap. Exactly LID_RIDE at the calibrated angle."""
    share = LID_RIDE[key] * (gaze[key] / eyes.GAZE_DEGREES[key])
    return max(-1.0, min(1.0, share))


def _gap(eye: eyes.Eye, v: np.ndarray, faces: np.ndarray, skin: np.ndarray):
    """Margins and the rest gap per column: (ups, lows, gap (n_ups,3) upper -> lower, and
    the lower margin's gap (n_lows,3) lower -> upper), or None without an opening."""
    # Only vertices in a band about the eye's x can be within two radii (the band is a
    # hair wider than that, so rounding in the distance never drops one).
    band = np.flatnonzero(np.abs(v[:, 0] - eye.centre[0]) < 2.0 * eye.radius * (1 + 1e-9))
    rel = v[band] - eye.centre
    dist = np.linalg.norm(rel, axis=1)
    cand = band[skin[band] & (dist < 2.0 * eye.radius) & (rel[:, 1] < 0.0)]
    found = eye_opening._margins(eye, v, faces, cand)
    if found is None:
        return None
    ups, lows, _ = found

    def partner(src, dst):
        x = v[dst, 0]
        order = np.argsort(x)
        return np.stack([np.interp(v[src, 0], x[order], v[dst][order, a]) for a in range(3)], axis=1) - v[src]

    return ups, lows, partner(ups, lows), partner(lows, ups)


def move_margin(eye: eyes.Eye, verts: np.ndarray, faces: np.ndarray, skin: np.ndarray,
                delta: np.ndarray, which: str, share: float) -> np.ndarray:
    """``delta`` (V,3 canonical) with the ``which`` ("upper"/"lower") lid margin moved by
    ``share`` of the rest gap toward the other margin (negative: away from it) where the
    network's shape moves it less; the correction spreads over that lid."""
    from scipy.spatial import cKDTree

    v = np.asarray(verts, np.float64)
    d = np.asarray(delta, np.float64).copy()
    found = _gap(eye, v, faces, skin)
    if found is None:
        return d
    ups, lows, gap_up, gap_low = found
    margin, gap = (ups, gap_up) if which == "upper" else (lows, gap_low)
    keep = ~np.isin(ups if which == "upper" else lows, lows if which == "upper" else ups)   # corners stay
    g2 = np.maximum((gap ** 2).sum(1), 1e-12)
    done = np.einsum("ij,ij->i", d[margin], gap) / g2            # share of the gap the network moves
    short = (done < share) if share > 0 else (done > share)
    fix = np.where((short & keep)[:, None], (share - done)[:, None] * gap, 0.0)
    if not fix.any():
        return d
    # The lid lies within 1.5 radii of the eye in x: the rest of the head is never looked at.
    band = np.flatnonzero(np.abs(v[:, 0] - eye.centre[0]) < 1.5 * eye.radius)
    vb = v[band]
    rel = vb - eye.centre
    dist = np.linalg.norm(rel, axis=1)
    xs, first = np.unique(v[margin, 0], return_index=True)
    up_z = np.interp(vb[:, 0], *_sorted(v[ups, 0], v[ups, 2]))
    low_z = np.interp(vb[:, 0], *_sorted(v[lows, 0], v[lows, 2]))
    mid = 0.5 * (up_z + low_z)
    lid = skin[band] & (rel[:, 1] < 0.0) & (dist >= 0.98 * eye.radius)
    lid &= (vb[:, 2] >= mid) if which == "upper" else (vb[:, 2] <= mid)
    idx = band[lid]
    dist = dist[lid]
    if len(idx) == 0:
        return d
    near = cKDTree(v[margin]).query(v[idx])[0]
    fade = np.exp(-(near / (eye_opening.LID_FALLOFF * eye.radius)) ** 2)
    corr = np.stack([np.interp(v[idx, 0], xs, fix[first, a], left=0.0, right=0.0) for a in range(3)], axis=1)
    d[idx] += corr * fade[:, None]
    # Collision: nothing moved ends deeper in the eyeball than the clearance or than it
    # rested (a margin resting on the sphere slides over it, never through it).
    p = v[idx] + d[idx] - eye.centre
    pn = np.linalg.norm(p, axis=1)
    limit = np.minimum(dist, (1 + eye_opening.CLEARANCE) * eye.radius)
    inside = pn < limit
    d[idx[inside]] = eye.centre + p[inside] / pn[inside, None] * limit[inside, None] - v[idx[inside]]
    return d


def _sorted(x: np.ndarray, y: np.ndarray):
    order = np.argsort(x)
    return x[order], y[order]


def margin_share(eye: eyes.Eye, verts: np.ndarray, faces: np.ndarray, skin: np.ndarray,
                 delta: np.ndarray, which: str) -> float:
    """Mean share of the rest gap ``delta`` moves the ``which`` margin toward the other one
    (negative: away): the measure behind the rule, for tests and the bench."""
    v = np.asarray(verts, np.float64)
    found = _gap(eye, v, faces, skin)
    if found is None:
        return float("nan")
    ups, lows, gap_up, gap_low = found
    margin, gap = (ups, gap_up) if which == "upper" else (lows, gap_low)
    ok = (gap ** 2).sum(1) > (0.05 * eye.radius) ** 2            # not the corners
    if not ok.any():
        return float("nan")
    d = np.asarray(delta, np.float64)[margin[ok]]
    return float(np.mean(np.einsum("ij,ij->i", d, gap[ok]) / (gap[ok] ** 2).sum(1)))
