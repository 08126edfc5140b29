# SPDX-License-Identifier: GPL-3.0-or-later
"""Stylization warps: identity at strength 0, the features do what they say, no folds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from model_export.data.ict import load_ict
from model_export.data.stylize import FEATURES, Warp, feature_scale, random_stylization


@pytest.fixture(scope="module")
def ict(ict_path):
    return load_ict(ict_path)


@pytest.fixture(scope="module")
def landmarks(ict):
    return ict.landmark_positions().astype(np.float64)


def _synthetic_landmarks() -> np.ndarray:
    """68 points roughly where a face's are; enough for shape/determinism checks offline."""
    rng = np.random.default_rng(7)
    return rng.normal(0.0, 5.0, (68, 3))


def _normals(points, faces):
    corners = points[faces]
    return np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])


def _kept_orientation(ict, warp: Warp) -> float:
    before = _normals(ict.neutral.astype(np.float64), ict.faces)
    after = _normals(warp.apply(ict.neutral.astype(np.float64)), ict.faces)
    return float(np.mean(np.einsum("ij,ij->i", before, after) > 0))


def test_strength_zero_is_identity():
    lm = _synthetic_landmarks()
    points = np.random.default_rng(1).normal(0, 8, (500, 3))
    for seed in range(5):
        warp = random_stylization(lm, np.random.default_rng(seed), 0.0)
        assert warp.is_identity
        np.testing.assert_array_equal(warp.apply(points), points)
    assert Warp().describe() == "identity"


def test_same_seed_same_warp():
    lm = _synthetic_landmarks()
    points = np.random.default_rng(1).normal(0, 8, (200, 3))
    a = random_stylization(lm, np.random.default_rng(42), 0.8).apply(points)
    b = random_stylization(lm, np.random.default_rng(42), 0.8).apply(points)
    c = random_stylization(lm, np.random.default_rng(43), 0.8).apply(points)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_apply_keeps_shape_and_dtype():
    lm = _synthetic_landmarks()
    warp = random_stylization(lm, np.random.default_rng(3), 1.0)
    batch = np.random.default_rng(2).normal(0, 5, (4, 30, 3)).astype(np.float32)
    out = warp.apply(batch)
    assert out.shape == batch.shape and out.dtype == np.float32
    np.testing.assert_allclose(out[2], warp.apply(batch[2]), atol=1e-6)   # pointwise
    np.testing.assert_allclose(warp(batch), out)


def test_invalid_arguments():
    with pytest.raises(ValueError):
        random_stylization(_synthetic_landmarks(), np.random.default_rng(0), 1.5)
    with pytest.raises(ValueError):
        random_stylization(np.zeros((10, 3)), np.random.default_rng(0), 0.5)


@pytest.mark.data
def test_accepts_the_model_itself(ict, landmarks):
    a = random_stylization(ict, np.random.default_rng(5), 0.7).apply(ict.neutral)
    b = random_stylization(landmarks, np.random.default_rng(5), 0.7).apply(ict.neutral)
    np.testing.assert_allclose(a, b, atol=1e-5)


@pytest.mark.data
def test_big_eyes_open_the_eyes(landmarks):
    warped = feature_scale(landmarks, "eyes", 1.4).apply(landmarks)
    for upper, lower, inner, outer in (([37, 38], [40, 41], 39, 36), ([43, 44], [46, 47], 42, 45)):
        height = lambda lm: lm[upper, 2].mean() - lm[lower, 2].mean()   # noqa: E731
        assert height(warped) > 1.25 * height(landmarks)
        width = lambda lm: np.linalg.norm(lm[outer] - lm[inner])      # noqa: E731
        assert width(warped) > 1.15 * width(landmarks)
    # Local: the chin and the mouth do not move.
    np.testing.assert_allclose(warped[[8, 48, 54, 57]], landmarks[[8, 48, 54, 57]], atol=1e-3)


@pytest.mark.data
def test_features_change_their_proportion(landmarks):
    def ratio(feature, factor, measure):
        warped = feature_scale(landmarks, feature, factor).apply(landmarks)
        return measure(warped) / measure(landmarks)

    nose_length = lambda lm: np.linalg.norm(lm[27] - lm[33])   # noqa: E731
    mouth_width = lambda lm: np.linalg.norm(lm[54] - lm[48])   # noqa: E731
    chin_height = lambda lm: np.linalg.norm(lm[57] - lm[8])    # noqa: E731
    jaw_width = lambda lm: np.linalg.norm(lm[12] - lm[4])      # noqa: E731
    assert ratio("nose", 1.4, nose_length) > 1.1
    assert ratio("mouth", 1.35, mouth_width) > 1.1
    assert ratio("chin", 0.7, chin_height) < 0.9
    assert ratio("jaw_width", 0.85, jaw_width) < 0.95
    assert ratio("face_width", 1.15, jaw_width) > 1.05


@pytest.mark.data
def test_forehead_grows_up(ict, landmarks):
    midline = np.flatnonzero(ict.narrow_face & (np.abs(ict.neutral[:, 0]) < 0.3))
    hairline = midline[np.argmax(ict.neutral[midline, 2])]   # top of ICT's facial mask
    warped = feature_scale(landmarks, "forehead", 1.3).apply(ict.neutral)
    height = lambda v: v[hairline, 2] - v[ict.landmarks[17:27], 2].mean()  # noqa: E731
    assert height(warped) > 1.08 * height(ict.neutral)


@pytest.mark.data
def test_no_folds_at_full_strength(ict, landmarks):
    for seed in range(20):
        warp = random_stylization(landmarks, np.random.default_rng(seed), 1.0)
        assert _kept_orientation(ict, warp) > 0.995, (seed, warp.describe())


@pytest.mark.data
def test_no_folds_at_the_range_extremes(ict, landmarks):
    """Every feature at once, each at the end of its range: the worst case of the sampler."""
    worst = 1.0
    for ends in itertools.product((0, 1), repeat=len(FEATURES)):
        pieces = []
        for (name, (_, low_high)), end in zip(FEATURES.items(), ends):
            pieces.extend(feature_scale(landmarks, name, 1.0 + low_high[end]).pieces)
        worst = min(worst, _kept_orientation(ict, Warp(tuple(pieces))))
    assert worst > 0.995


@pytest.mark.data
def test_expressions_follow_the_warp(ict, landmarks):
    """W(neutral + delta) - W(neutral): a blink still closes the (bigger) eye, nothing else."""
    warp = feature_scale(landmarks, "eyes", 1.4)
    blink = ict.exp_basis[ict.exp_index("eyeBlink_L")].astype(np.float64)
    neutral = ict.neutral.astype(np.float64)
    delta = warp.apply(neutral + blink) - warp.apply(neutral)
    still = np.linalg.norm(blink, axis=1) < 1e-6
    assert np.abs(delta[still]).max() < 1e-5                      # what did not move, does not
    eyes = (landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0))
    far = np.all([np.linalg.norm(neutral - eye, axis=1) > 8.0 for eye in eyes], axis=0)
    np.testing.assert_allclose(delta[far], blink[far], atol=1e-6)   # the warp is local
    lid = ict.landmarks[[43, 44]]
    assert (np.linalg.norm(delta[lid], axis=1) > np.linalg.norm(blink[lid], axis=1)).all()
