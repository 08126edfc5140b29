# SPDX-License-Identifier: GPL-3.0-or-later
"""Custom-rig weight solve: recovery, bounds, smoothing, sparsity, regions, speed."""

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import data_dir

from blender_addon.core.solve import RigSolver, solve_box_qp, solve_rig_weights

DATA = data_dir()


def grid_rig(k=20, side=45, seed=0, width=0.12):
    """K localized, smooth random shapes on a side x side vertex grid (unit square)."""
    rng = np.random.default_rng(seed)
    g = np.linspace(0.0, 1.0, side)
    xy = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    basis = np.zeros((k, xy.shape[0], 3), np.float32)
    for s in range(k):
        center, sigma = rng.random(2), width * (0.5 + rng.random())
        falloff = np.exp(-((xy - center) ** 2).sum(1) / (2 * sigma ** 2))
        basis[s] = falloff[:, None] * rng.normal(size=3)
    return basis, xy


def smooth_weights(frames, k, seed=1):
    """Known weights in [0, 1] that move smoothly and sit on the bounds part of the time."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / 30.0
    return np.clip(0.5 + 0.8 * np.sin(t * (0.5 + 2 * rng.random(k)) + 6.3 * rng.random(k)),
                   0.0, 1.0)


def animate(basis, weights):
    return np.einsum("tk,knc->tnc", weights, basis).astype(np.float32)


def jitter(w):
    return float(np.abs(np.diff(w, axis=0)).mean())


@pytest.fixture(scope="module")
def rig():
    basis, xy = grid_rig()
    weights = smooth_weights(200, basis.shape[0])
    return basis, xy, weights, animate(basis, weights)


def test_recovers_known_weights(rig):
    basis, _, weights, targets = rig
    solved = solve_rig_weights(basis, targets)
    assert solved.shape == weights.shape and solved.dtype == np.float32
    assert np.abs(solved - weights).max() < 0.02
    assert np.abs(solved - weights).mean() < 1e-3


def test_bounds_are_respected(rig):
    basis, _, weights, _ = rig
    pushed = animate(basis, 1.6 * weights - 0.3)  # asks for weights outside [0, 1]
    solved = solve_rig_weights(basis, pushed)
    assert solved.min() >= 0.0 and solved.max() <= 1.0
    assert (solved == 0).any() and (solved == 1).any()


def test_smoothing_reduces_jitter(rig):
    basis, _, weights, targets = rig
    rng = np.random.default_rng(5)
    noisy = targets + rng.normal(scale=0.3 * np.abs(targets).std(), size=targets.shape)
    solver = RigSolver(basis)
    raw = solver.solve(noisy)
    smoothed = solver.solve(noisy, smooth=0.5)
    # Frame-to-frame noise (the error's jitter) drops; the motion itself is kept.
    assert jitter(smoothed - weights) < 0.5 * jitter(raw - weights)
    assert jitter(smoothed) < jitter(raw)
    assert np.abs(smoothed - weights).mean() < np.abs(raw - weights).mean()


def test_smoothing_is_zero_phase(rig):
    """The joint smoother does not lag: a step is smoothed symmetrically around its frame."""
    basis = rig[0]
    weights = np.zeros((60, basis.shape[0]))
    weights[30:, 3] = 1.0
    solved = RigSolver(basis).solve(animate(basis, weights), smooth=20.0)[:, 3]
    assert solved[29] < 0.5 < solved[30]
    assert solved[29] + solved[30] == pytest.approx(1.0, abs=0.05)


def test_sparsity_zeroes_inactive_shapes(rig):
    basis = rig[0]
    rng = np.random.default_rng(6)
    weights = np.zeros((100, basis.shape[0]))
    active = [2, 7, 11]
    weights[:, active] = smooth_weights(100, 3, seed=7) * 0.6 + 0.3
    targets = animate(basis, weights)
    targets += rng.normal(scale=0.05 * np.abs(targets).std(), size=targets.shape)
    solver = RigSolver(basis)
    dense = solver.solve(targets)
    sparse = solver.solve(targets, sparsity=0.05)
    inactive = np.setdiff1d(np.arange(basis.shape[0]), active)
    assert (dense[:, inactive] > 0).mean() > 0.2        # noise leaks into every shape
    assert (sparse[:, inactive] > 0).mean() < 0.02      # the L1 term switches them off
    assert np.abs(sparse[:, active] - weights[:, active]).max() < 0.1


def _quadrants(xy, soft):
    """(N, 4) region weights: hard or softly blended quadrants of the unit square."""
    if soft:
        sx = 1 / (1 + np.exp(-(xy[:, 0] - 0.5) / 0.05))
        sy = 1 / (1 + np.exp(-(xy[:, 1] - 0.5) / 0.05))
    else:
        sx, sy = (xy[:, 0] > 0.5) * 1.0, (xy[:, 1] > 0.5) * 1.0
    return np.stack([(1 - sx) * (1 - sy), sx * (1 - sy), (1 - sx) * sy, sx * sy], 1)


@pytest.mark.parametrize("soft", [False, True])
def test_regions_recover_known_weights(rig, soft):
    basis, xy, weights, targets = rig
    regions = _quadrants(xy, soft)
    solver = RigSolver(basis, regions=regions)
    assert len(solver.regions) == 4
    taking_part = np.bincount(np.concatenate([r.shapes for r in solver.regions]),
                              minlength=basis.shape[0])
    assert taking_part.min() >= 1 and taking_part.max() > 1  # some shapes span regions
    solved = solver.solve(targets)
    assert np.abs(solved - weights).max() < 0.02


def test_regions_keep_errors_local():
    """Unexplained motion in one region must not change shapes that live elsewhere."""
    basis, xy = grid_rig(k=16, seed=3, width=0.09)
    weights = smooth_weights(20, basis.shape[0], seed=4)
    targets = animate(basis, weights)
    garbage = (xy[:, 0] < 0.5) & (xy[:, 1] < 0.5)   # the lower-left quadrant only
    targets[:, garbage] += np.array([0.3, -0.2, 0.4], np.float32)
    regions = _quadrants(xy, soft=False)
    energy = (basis.astype(float) ** 2).sum(2) @ regions
    elsewhere = np.flatnonzero(energy[:, 0] < 0.01 * energy.sum(1))  # < 1 % in that quadrant
    assert elsewhere.size >= 5, "the fixture needs shapes away from the garbage"
    local = RigSolver(basis, regions=regions).solve(targets)
    global_ = RigSolver(basis).solve(targets)
    local_err = np.abs(local - weights)[:, elsewhere].max()
    global_err = np.abs(global_ - weights)[:, elsewhere].max()
    assert local_err < 0.005 and local_err < 0.2 * global_err  # measured 0.0008 vs 0.022


def test_vertex_weights_ignore_masked_vertices(rig):
    basis, xy, weights, targets = rig
    broken = targets.copy()
    masked = xy[:, 0] > 0.9
    broken[:, masked] = 10.0
    vertex_weights = (~masked).astype(float)
    solved = solve_rig_weights(basis, broken, vertex_weights=vertex_weights)
    # Shapes that still have motion outside the mask are recovered.
    visible = np.abs(basis[:, ~masked]).sum((1, 2)) > 1.0
    assert np.abs(solved - weights)[:, visible].max() < 0.02


def test_prior_continues_a_previous_chunk(rig):
    basis, _, weights, targets = rig
    solver = RigSolver(basis)
    free = solver.solve(targets[100:101], smooth=100.0)
    held = solver.solve(targets[100:101], smooth=100.0, prior=np.zeros(basis.shape[0]))
    assert held.sum() < 0.2 * free.sum()  # a heavy smoother keeps the first frame near prior


def test_dead_and_duplicate_shapes(rig):
    basis, _, weights, targets = rig
    k = basis.shape[0]
    padded = np.concatenate([basis, np.zeros_like(basis[:1]), basis[:1]])  # dead + duplicate
    solved = solve_rig_weights(padded, targets)
    assert solved[:, k].max() == 0.0
    combined = solved[:, 0] + solved[:, k + 1]  # a duplicate may share the weight
    assert np.abs(combined - weights[:, 0]).max() < 0.02
    assert np.abs(solved[:, 1:k] - weights[:, 1:]).max() < 0.02


def test_input_validation(rig):
    basis, _, _, targets = rig
    with pytest.raises(ValueError):
        RigSolver(basis[..., :2])
    with pytest.raises(ValueError):
        RigSolver(basis, regions=np.ones((10, 2)))
    with pytest.raises(ValueError):
        RigSolver(basis, vertex_weights=-np.ones(basis.shape[1]))
    solver = RigSolver(basis)
    with pytest.raises(ValueError):
        solver.solve(targets[:, :10])
    with pytest.raises(ValueError):
        solver.solve(targets, smooth=-1)
    assert solver.solve(targets[0]).shape == (1, basis.shape[0])  # one frame, (N, 3)
    assert solve_box_qp(np.eye(3), np.zeros((0, 3))).shape == (0, 3)


def test_real_rig_facecap():
    """The Face Cap head's 52 ARKit shapes (condition number ~1e5) and its performance."""
    path = DATA / "facecap" / "facecap.npz"
    if not path.exists():
        pytest.skip(f"facecap data not found at {path} (set FACSIMILE_DATA)")
    with np.load(path) as data:
        basis, weights = data["deltas"], data["anim_weights"].astype(np.float64)
    solved = solve_rig_weights(basis, animate(basis, weights))
    assert solved[:, 51].max() == 0.0  # tongueOut moves no skin vertex: nothing to solve
    assert np.abs(solved[:, :51] - weights[:, :51]).max() < 1e-3


def test_speed_k52_n5000():
    basis, _ = grid_rig(k=52, side=71, seed=8)  # 5041 vertices
    weights = smooth_weights(500, 52, seed=9)
    targets = animate(basis, weights)
    solver = RigSolver(basis)
    start = time.perf_counter()
    solved = solver.solve(targets)
    plain = len(targets) / (time.perf_counter() - start)
    start = time.perf_counter()
    solver.solve(targets, smooth=0.1, sparsity=0.01)
    regularized = len(targets) / (time.perf_counter() - start)
    print(f"K=52 N=5041: {plain:.0f} frames/s plain, {regularized:.0f} frames/s smooth+sparse")
    assert np.abs(solved - weights).max() < 0.02
    assert plain > 100  # loose: catches a per-frame Python loop, not a slow machine
