# SPDX-License-Identifier: GPL-3.0-or-later
"""Stylization warps: smooth, non-rigid changes of facial proportions (big eyes, long nose, ...).

Artists' characters are rarely realistic: eyes are larger, noses longer, chins smaller. To
train on such proportions without stylized scans, a realistic ICT head is pushed through a
smooth space warp built from landmark-anchored pieces. Each piece scales space about a
feature centre (an eye, the nose, the mouth, ...) by a matrix ``S``, faded out by a Gaussian
whose width follows the feature's size::

    W(p) = p + sum_k  w_k(p) (S_k - I) (p - c_k),   w_k(p) = exp(-|p - c_k|^2 / (2 r_k^2))

The pieces' displacements are summed (not composed), so the warp is one closed-form,
infinitely smooth field and the mesh stays unbroken. It is also fold-free in practice: along
a ray from the centre an isotropic piece's Jacobian is ``1 + (f - 1) e^(-t/2) (1 - t)`` with
``t = d^2 / r^2``, positive for every factor f in (0, 3.2), and the factor ranges used here
are far inside that; the tests check every combination of range extremes on the ICT head.

Expressions: the warp acts on *positions*, so it applies to any points. An expressed mesh is
``W(neutral + delta)`` and the stylized expression delta is ``W(neutral + delta) - W(neutral)``.
This keeps each shape's motion attached to the warped feature (a blink closes the enlarged
eye), as an artist adapting a rig to a stylized head would, without needing the warp's
Jacobian; it also scales the motion with the feature, which is what a bigger eye should do.

Frame: Blender's (Z up, the face looks toward -Y, +X the character's left), centimetres; the
landmarks are ICT's 68 Multi-PIE points (:attr:`model_export.data.ict.ICTFaceKit.landmarks`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "RadialScale", "Warp", "FEATURES", "feature_scale", "random_stylization",
]


@dataclass(frozen=True)
class RadialScale:
    """Scale space about ``centre`` by ``scale`` (3x3), fading with a Gaussian of ``radius``."""

    name: str
    centre: np.ndarray   # (3,)
    scale: np.ndarray    # (3, 3)
    radius: float

    def displacement(self, points: np.ndarray) -> np.ndarray:
        offset = points - self.centre
        weight = np.exp(-np.einsum("...i,...i->...", offset, offset) / (2.0 * self.radius ** 2))
        return weight[..., None] * (offset @ (self.scale - np.eye(3)).T)


@dataclass(frozen=True)
class Warp:
    """A sum of :class:`RadialScale` pieces; :meth:`apply` works on any (..., 3) points."""

    pieces: tuple[RadialScale, ...] = field(default_factory=tuple)

    def apply(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points)
        work = points.astype(np.float64)
        moved = work.copy()
        for piece in self.pieces:
            moved += piece.displacement(work)   # summed on the *original* points
        return moved.astype(points.dtype) if np.issubdtype(points.dtype, np.floating) else moved

    def __call__(self, points: np.ndarray) -> np.ndarray:
        return self.apply(points)

    @property
    def is_identity(self) -> bool:
        return all(np.allclose(p.scale, np.eye(3)) for p in self.pieces)

    def describe(self) -> str:
        """One line for logs: each piece's name and diagonal scale."""
        parts = [f"{p.name} x{np.round(np.diag(p.scale), 3).tolist()}" for p in self.pieces]
        return ", ".join(parts) or "identity"


# --- features -----------------------------------------------------------------------------------
# Landmark groups (Multi-PIE 68): 36-41 / 42-47 right / left eye, 27-35 nose, 48-59 outer lips,
# 0-16 jaw contour (8 = chin), 17-26 brows.

def _eye_width(lm: np.ndarray) -> float:
    return float(np.mean([np.linalg.norm(lm[45] - lm[42]), np.linalg.norm(lm[39] - lm[36])]))


def _face_height(lm: np.ndarray) -> float:
    """Nasal root to chin: the scale of the whole face."""
    return float(np.linalg.norm(lm[27] - lm[8]))


def _axes(x: float = 1.0, y: float = 1.0, z: float = 1.0) -> np.ndarray:
    return np.diag([x, y, z]).astype(np.float64)


def _eyes(lm: np.ndarray, f: float) -> list[RadialScale]:
    """Both eyes, scaled in the face plane (x, z) and a little in depth."""
    size = _eye_width(lm)
    scale = _axes(f, 1.0 + 0.3 * (f - 1.0), f)
    return [RadialScale(name, lm[idx].mean(axis=0), scale, 0.6 * size)
            for name, idx in (("eye_R", slice(36, 42)), ("eye_L", slice(42, 48)))]


def _nose(lm: np.ndarray, f: float) -> list[RadialScale]:
    """Longer (f > 1) or shorter nose: stretched down the face and out, slightly wider."""
    length = float(np.linalg.norm(lm[27] - lm[33]))
    centre = lm[27:36].mean(axis=0)
    return [RadialScale("nose", centre, _axes(1.0 + 0.3 * (f - 1.0), f, f), 0.5 * length)]


def _mouth(lm: np.ndarray, f: float) -> list[RadialScale]:
    """Wider (f > 1) or narrower mouth, lips a little fuller with it."""
    width = float(np.linalg.norm(lm[54] - lm[48]))
    centre = lm[48:60].mean(axis=0)
    return [RadialScale("mouth", centre, _axes(f, 1.0, 1.0 + 0.25 * (f - 1.0)), 0.5 * width)]


def _chin(lm: np.ndarray, f: float) -> list[RadialScale]:
    """Smaller (f < 1) or bigger chin, about a point inside the chin so it also recedes."""
    height = float(np.linalg.norm(lm[57] - lm[8]))
    centre = (lm[57] + lm[8]) / 2.0 + np.array([0.0, 0.5 * height, 0.0])
    return [RadialScale("chin", centre, _axes(f, f, f), 0.7 * height)]


def _forehead(lm: np.ndarray, f: float) -> list[RadialScale]:
    """Bigger (f > 1) forehead: taller and bulging. The centre sits inside the skull just
    above the brow ridge, so the hairline rises and the brows mostly come forward."""
    h = _face_height(lm)
    brows = lm[17:27].mean(axis=0)
    centre = np.array([0.0, brows[1] + 0.25 * h, brows[2] + 0.1 * h])
    return [RadialScale("forehead", centre, _axes(f, f, f), 0.3 * h)]


def _face_width(lm: np.ndarray, f: float) -> list[RadialScale]:
    """Rounder (f > 1) or narrower face: the whole face scaled sideways about its midline."""
    h = _face_height(lm)
    centre = np.array([0.0, lm[30, 1] + 0.3 * h, lm[27:36, 2].mean()])
    return [RadialScale("face_width", centre, _axes(f, 1.0, 1.0), 0.8 * h)]


def _jaw_width(lm: np.ndarray, f: float) -> list[RadialScale]:
    """Wider (f > 1) or narrower jaw: the lower face scaled sideways."""
    width = float(np.linalg.norm(lm[12] - lm[4]))
    return [RadialScale("jaw_width", lm[4:13].mean(axis=0), _axes(f, 1.0, 1.0), 0.45 * width)]


# name: (piece builder, factor range at strength 1). Ranges lean towards cartoon proportions
# (eyes mostly bigger, chins mostly smaller) but allow the other direction too.
FEATURES: dict[str, tuple] = {
    "eyes": (_eyes, (-0.15, 0.5)),
    "nose": (_nose, (-0.2, 0.4)),
    "mouth": (_mouth, (-0.2, 0.35)),
    "chin": (_chin, (-0.3, 0.1)),
    "forehead": (_forehead, (-0.05, 0.3)),
    "face_width": (_face_width, (-0.12, 0.15)),
    "jaw_width": (_jaw_width, (-0.15, 0.15)),
}


def feature_scale(landmarks: np.ndarray, feature: str, factor: float) -> Warp:
    """One feature's warp, e.g. ``feature_scale(lm, "eyes", 1.4)`` for 40 % bigger eyes."""
    builder, _ = FEATURES[feature]
    return Warp(tuple(builder(np.asarray(landmarks, np.float64), float(factor))))


def _landmarks(source) -> np.ndarray:
    """Accept an ICTFaceKit (its neutral's landmarks) or a (68, 3) landmark array."""
    if hasattr(source, "landmark_positions"):
        source = source.landmark_positions()
    landmarks = np.asarray(source, np.float64)
    if landmarks.shape != (68, 3):
        raise ValueError(f"expected 68 landmarks (68, 3), got {landmarks.shape}")
    return landmarks


def random_stylization(ict_or_landmarks, rng: np.random.Generator, strength: float = 1.0,
                       feature_prob: float = 0.6) -> Warp:
    """A random combination of feature warps; ``strength`` in [0, 1] scales every factor.

    Each feature is used with probability ``feature_prob`` (at least one always is), with a
    factor ``1 + strength * u``, ``u`` uniform in the feature's range. The same generator
    state gives the same warp; strength 0 gives the identity.
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    landmarks = _landmarks(ict_or_landmarks)
    names = list(FEATURES)
    # Draw everything up front, always in the same order, so a seed means one warp.
    used = rng.random(len(names)) < feature_prob
    used[rng.integers(len(names))] = True
    unit = rng.random(len(names))
    pieces: list[RadialScale] = []
    for name, use, u in zip(names, used, unit):
        if not use:
            continue
        builder, (low, high) = FEATURES[name]
        pieces.extend(builder(landmarks, 1.0 + strength * (low + u * (high - low))))
    return Warp(tuple(pieces))
