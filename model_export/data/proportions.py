# SPDX-License-Identifier: GPL-3.0-or-later
"""Artists' proportions: warps far past :mod:`model_export.data.stylize`'s.

Artists' heads measured in issue 12 lie outside every training head: eye spacing up to 0.66
face widths (ICT 0.34-0.44), eyes moved up or down, twice ICT's size, a mouth 0.25 face
widths wide, far shorter or longer lower faces, snouts, big craniums. :func:`random_stylization`
only scales features about their own centres, so it can neither move the eyes apart nor
push a muzzle out. This module adds a translation piece to the same closed-form warp::

    W(p) = p + sum_k w_k(p) t_k,   w_k(p) = exp(-|p - c_k|^2 / (2 r_k^2))

(summed with :class:`~model_export.data.stylize.RadialScale` pieces in one
:class:`~model_export.data.stylize.Warp`). Its Jacobian ``I + t grad(w)^T`` has the
eigenvalue ``1 + t . grad(w)``, and ``|grad w| <= 1 / (r sqrt(e))``, so a shift is fold-free
while ``|t| < sqrt(e) r ~ 1.65 r``; every shift here stays under 0.9 r. Pieces are summed, so
extreme combinations can still fold where they overlap: :func:`artist_warp` measures the
share of the mesh's triangles it turns over and shrinks all factors until none are.

Expressions are warped as positions (``W(n + e) - W(n)``), as in :mod:`~model_export.data.stylize`:
a blink still closes the moved, enlarged eye. Frame: Blender's (Z up, -Y forward, +X left), cm.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .stylize import FEATURES, RadialScale, Warp

__all__ = ["RadialShift", "ARTIST_FEATURES", "artist_warp", "flipped_share"]


@dataclass(frozen=True)
class RadialShift:
    """Move space near ``centre`` by ``shift`` (3,), fading with a Gaussian of ``radius``."""

    name: str
    centre: np.ndarray
    shift: np.ndarray
    radius: float

    def displacement(self, points: np.ndarray) -> np.ndarray:
        offset = points - self.centre
        weight = np.exp(-np.einsum("...i,...i->...", offset, offset) / (2.0 * self.radius ** 2))
        return weight[..., None] * self.shift

    # Warp.is_identity / describe read ``scale``: a shift is the identity scale plus a move.
    @property
    def scale(self) -> np.ndarray:
        return np.eye(3) if not np.any(self.shift) else np.eye(3) * (1.0 + 1e-9)


def _height(lm):
    return float(np.linalg.norm(lm[27] - lm[8]))          # nasal root to chin


def _eye_centres(lm):
    return lm[36:42].mean(0), lm[42:48].mean(0)


def _eye_width(lm):
    return float(np.mean([np.linalg.norm(lm[45] - lm[42]), np.linalg.norm(lm[39] - lm[36])]))


def _eye_spacing(lm, k):
    """Eye centres k times as far apart (k < 1: together), the sockets and lids with them."""
    right, left = _eye_centres(lm)
    half = 0.5 * (k - 1.0) * float(left[0] - right[0])
    r = 0.8 * _eye_width(lm)
    return [RadialShift("eye_spacing_R", right, np.array([-half, 0.0, 0.0]), r),
            RadialShift("eye_spacing_L", left, np.array([half, 0.0, 0.0]), r)]


def _eye_height(lm, u):
    """Both eyes moved up (u > 0) or down by u face heights."""
    r = 0.8 * _eye_width(lm)
    t = np.array([0.0, 0.0, u * _height(lm)])
    return [RadialShift(f"eye_height_{s}", c, t, r) for s, c in zip("RL", _eye_centres(lm))]


def _eye_size(lm, f):
    """Both eyes scaled about their centres, up to twice ICT's size (eyeballs with them)."""
    r = 0.6 * _eye_width(lm)
    scale = np.diag([f, 1.0 + 0.3 * (f - 1.0), f])
    return [RadialScale(f"eye_size_{s}", c, scale, r) for s, c in zip("RL", _eye_centres(lm))]


def _lower_face(lm, k):
    """Lower face k times as long (nose base to chin): the chin moves, the mouth partly."""
    length = float(np.linalg.norm(lm[33] - lm[8]))
    centre = lm[8] + np.array([0.0, 0.3 * length, 0.15 * length])
    return [RadialShift("lower_face", centre, np.array([0.0, 0.0, -(k - 1.0) * length]), 0.7 * length)]


def _mouth_width(lm, f):
    width = float(np.linalg.norm(lm[54] - lm[48]))
    centre = lm[48:60].mean(0)
    return [RadialScale("mouth_width", centre, np.diag([f, 1.0, 1.0 + 0.2 * (f - 1.0)]), 0.55 * width)]


def _snout(lm, u):
    """Muzzle pushed forward (-Y) by u face heights: mouth, nose base and chin come out."""
    h = _height(lm)
    centre = 0.5 * (lm[33] + lm[51]) + np.array([0.0, 0.05 * h, 0.0])
    return [RadialShift("snout", centre, np.array([0.0, -u * h, 0.0]), 0.45 * h)]


def _cranium(lm, f):
    """A bigger braincase, scaled about a point inside the skull above and behind the brows."""
    h = _height(lm)
    brows = lm[17:27].mean(0)
    centre = np.array([0.0, brows[1] + 0.75 * h, brows[2] + 0.45 * h])
    return [RadialScale("cranium", centre, np.eye(3) * f, 0.65 * h)]


# name: (builder, value range, probability of being used). Values are factors (k, f) or
# face-height fractions (u); ranges span the artists' heads of issue 12 and a margin.
ARTIST_FEATURES: dict[str, tuple] = {
    "eye_spacing": (_eye_spacing, (0.8, 1.55), 0.6),
    "eye_height": (_eye_height, (-0.09, 0.09), 0.4),
    "eye_size": (_eye_size, (0.8, 2.0), 0.6),
    "lower_face": (_lower_face, (0.6, 1.35), 0.5),
    "mouth_width": (_mouth_width, (0.65, 1.6), 0.5),
    "snout": (_snout, (0.0, 0.35), 0.3),
    "cranium": (_cranium, (1.0, 1.45), 0.35),
}
NEUTRAL_VALUE = {"eye_spacing": 1.0, "eye_height": 0.0, "eye_size": 1.0, "lower_face": 1.0,
                 "mouth_width": 1.0, "snout": 0.0, "cranium": 1.0}


def flipped_share(before: np.ndarray, after: np.ndarray, faces: np.ndarray) -> float:
    """Share of triangles whose normal turns by more than 90 degrees."""
    def normals(v):
        a, b, c = (v[faces[:, k]] for k in range(3))
        return np.cross(b - a, c - a)
    return float(np.mean(np.einsum("ij,ij->i", normals(before), normals(after)) <= 0.0))


def artist_warp(landmarks: np.ndarray, rng: np.random.Generator, verts: np.ndarray | None = None,
                faces: np.ndarray | None = None, classic_strength: float = 0.5) -> tuple[Warp, dict]:
    """A random artist's-proportions warp plus a milder classic stylization (nose, chin, jaw...).

    Returns the warp and the values drawn (``{feature: value}``, after any shrinking). When
    ``verts``/``faces`` are given, all values are pulled towards neutral until the warp turns
    no triangle over."""
    lm = np.asarray(landmarks, np.float64)
    names = list(ARTIST_FEATURES)
    used = rng.random(len(names)) < np.array([ARTIST_FEATURES[n][2] for n in names])
    used[rng.integers(len(names))] = True
    unit = rng.random(len(names))
    values = {n: lo + u * (hi - lo) for n, use, u, (_, (lo, hi), _) in
              zip(names, used, unit, (ARTIST_FEATURES[n] for n in names)) if use}
    classic_names = [n for n in FEATURES if n not in ("eyes", "mouth")]      # replaced above
    classic_used = rng.random(len(classic_names)) < 0.4
    classic_unit = rng.random(len(classic_names))
    for shrink in (1.0, 0.75, 0.5, 0.25, 0.0):
        pieces = []
        drawn = {}
        for name, value in values.items():
            v = NEUTRAL_VALUE[name] + shrink * (value - NEUTRAL_VALUE[name])
            drawn[name] = v
            pieces.extend(ARTIST_FEATURES[name][0](lm, v))
        for name, use, u in zip(classic_names, classic_used, classic_unit):
            if use:
                builder, (lo, hi) = FEATURES[name]
                pieces.extend(builder(lm, 1.0 + shrink * classic_strength * (lo + u * (hi - lo))))
        warp = Warp(tuple(pieces))
        if verts is None or faces is None or flipped_share(verts, warp.apply(verts), faces) == 0.0:
            return warp, drawn
    return warp, drawn
