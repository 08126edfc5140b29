# SPDX-License-Identifier: GPL-3.0-or-later
"""Custom-rig weight solve: per-frame shape-key weights that best reproduce target motion.

The network predicts, for every frame, how each vertex of the artist's mesh should move. A
character that already has its own shape keys (VRoid ``Fcl_*``, a MetaHuman-like set, a
hand-made rig) is animated through *those* keys, so we solve for the weights ``w_t`` in
[0, 1]^K that reproduce the predicted displacements ``D_t`` (the weight-estimation step of the
local-patch retargeting paper, done as optimisation instead of a learned regressor)::

    minimise over W   sum_t ||B w_t - D_t||^2 / s            (fit, vertex-weighted)
                    + smooth   * sum_t ||w_t - w_{t-1}||^2    (temporal smoothness)
                    + sparsity * sum_t ||w_t||_1              (prefer few active keys)
    subject to        0 <= w_t <= 1

``s`` is the mean squared norm of one shape (the mean diagonal of BᵀB), which makes the two
weights unit-free: ``smooth = 1`` means a weight jump of 1 costs as much as leaving an
average shape completely unexplained, whatever the mesh's scale or vertex count.

Decisions (measured; numbers in ``tests/test_core_solve.py`` and the project report):

* **Reduced problem.** Only BᵀB (K×K) and BᵀD_t (K per frame) enter the solve, so after one
  (T, 3N)·(3N, K) product the cost no longer depends on the vertex count.
* **Solver: accelerated projected gradient (FISTA) on all frames at once**, with Jacobi
  (diagonal) preconditioning, which keeps the box a box, and adaptive restart. Each
  iteration is one (T, K)·(K, K) product, so thousands of frames solve in one vectorised
  loop. ``scipy.optimize.lsq_linear(method='bvls')`` per frame is exact too, but it is a
  Python call per frame: 250-500 frames/s against 5,000-20,000 at K = 52, and it cannot
  couple frames for smoothing. ADMM with the same exact inner solve needed more iterations.
* **Smoothing is zero-phase**: the temporal term couples all frames symmetrically (a
  Whittaker smoother solved jointly with the fit), so it does not lag the performance the
  way a frame-by-frame "previous solution as prior" would. ``prior`` adds a fixed frame
  before the first one, for solving a long take in chunks without a seam.
* **Regions** (soft (N, R) weights): each region is fitted on its own vertices with only the
  shapes that act there (share of the shape's energy >= ``min_share``), so unexplained
  motion at the mouth cannot be "explained" by a brow shape (the global entanglement the
  local-patch paper avoids). The motion that *other* shapes' tails cause in a region is not
  ignored, which would leave it for the region's own shapes to absorb (measured: errors up
  to 0.7 on exact data): it is predicted from those shapes' current weights and subtracted,
  and the regions are solved again until nothing changes (block "backfitting", an additive
  Schwarz iteration; ~10 passes reach 1e-5). A shape active in several regions gets the
  energy-weighted mean of its region solutions: a region where it barely moves measures it
  poorly and counts little. On exact data the result is exact; on noisy data it is as
  accurate as the global fit, while local garbage stays with the shapes of its region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

MIN_SHARE = 0.05     # a shape takes part in a region's fit from 5 % of its energy there
TOLERANCE = 1e-4     # target accuracy of the solved weights
MAX_ITERATIONS = 5000
MAX_PASSES = 30      # region backfitting passes (converges in ~10)
_CHUNK = 256         # frames projected at a time
_CHECK_EVERY = 10    # iterations between convergence tests (each costs one gradient)


@dataclass
class _Region:
    """One region's precomputed fit. Gram blocks are divided by ``scale`` (mean diagonal)."""

    shapes: np.ndarray          # (k,) shapes fitted here (indices into the rig's K)
    vertices: Optional[np.ndarray]  # (n,) vertices with weight here, None = all
    weighted_basis: np.ndarray  # (k, 3n) basis rows times the region's vertex weights
    gram: np.ndarray            # (k, k) region-weighted BᵀB of the fitted shapes
    others: np.ndarray          # (m,) shapes not fitted here that still move these vertices
    cross: np.ndarray           # (m, k) their region-weighted Gram block with the fitted ones
    scale: float
    blend: np.ndarray           # (k,) share of each fitted shape's final weight taken from here

    def project(self, targets: np.ndarray) -> np.ndarray:
        """(T, k) normalised BᵀD for every frame: the only way targets enter the solve.

        In float64, in chunks of frames: float32 sums over 3N products lose ~1e-7 relative,
        which a Gram matrix with condition ~1e5 (real rigs) turns into ~1e-4 weight error,
        while chunking keeps the float64 copy of the targets small.
        """
        t = targets.shape[0]
        out = np.empty((t, self.shapes.size))
        for first in range(0, t, _CHUNK):
            part = targets[first:first + _CHUNK]
            sub = part if self.vertices is None else part[:, self.vertices]
            flat = np.asarray(sub, dtype=np.float64).reshape(sub.shape[0], -1)
            out[first:first + _CHUNK] = flat @ self.weighted_basis.T
        return out / self.scale


class RigSolver:
    """Precomputes everything that depends on the rig only; :meth:`solve` then runs per take.

    basis           (K, N, 3) shape deltas of the target rig
    regions         optional (N, R) soft region weights (see module doc)
    vertex_weights  optional (N,) importance of each vertex in the fit (e.g. 0 on the neck)
    min_share       fraction of a shape's energy a region needs for the shape to be fitted there
    """

    def __init__(self, basis, regions=None, vertex_weights=None, min_share: float = MIN_SHARE):
        basis = np.asarray(basis, dtype=np.float32)
        if basis.ndim != 3 or basis.shape[2] != 3:
            raise ValueError(f"basis must be (K, N, 3), got {basis.shape}")
        k, n, _ = basis.shape
        self.n_shapes, self.n_vertices = k, n
        weights = np.ones(n) if vertex_weights is None else np.asarray(vertex_weights, float)
        if weights.shape != (n,) or (weights < 0).any():
            raise ValueError(f"vertex_weights must be ({n},) and non-negative")
        if regions is None:
            region_weights = weights[:, None]
        else:
            regions = np.asarray(regions, dtype=np.float64)
            if regions.ndim != 2 or regions.shape[0] != n or (regions < 0).any():
                raise ValueError(f"regions must be ({n}, R) and non-negative")
            region_weights = regions * weights[:, None]

        # Energy of every shape in every region: decides who is fitted where and how much
        # each region's answer counts.
        per_vertex = np.einsum("knc,knc->kn", basis, basis, dtype=np.float64)  # (K, N)
        energy = per_vertex @ region_weights                                    # (K, R)
        total = energy.sum(axis=1, keepdims=True)
        share = np.divide(energy, total, out=np.zeros_like(energy), where=total > 0)
        fitted = share >= min_share
        fitted[np.arange(k), share.argmax(axis=1)] = True  # never orphan a shape
        fitted &= total > 0
        # Shapes that move no vertex we look at cannot be solved: they stay at 0.
        self.dead_shapes = np.flatnonzero(total[:, 0] <= 0)

        self.regions: list[_Region] = []
        for r in range(region_weights.shape[1]):
            shapes = np.flatnonzero(fitted[:, r])
            if shapes.size == 0:
                continue
            a = region_weights[:, r]
            support = np.flatnonzero(a > 0)
            vertices = None if support.size == n else support
            moving = np.flatnonzero(energy[:, r] > 0)
            others = np.setdiff1d(moving, shapes)
            sub = basis[moving] if vertices is None else basis[moving][:, vertices]
            sub = sub.reshape(moving.size, -1).astype(np.float64)
            weighted = sub * np.repeat(a[support], 3)[None, :]
            gram_all = weighted @ sub.T                                  # (moving, moving)
            pos = np.searchsorted(moving, shapes)
            gram = gram_all[np.ix_(pos, pos)]
            scale = float(np.mean(np.diag(gram))) or 1.0
            self.regions.append(_Region(
                shapes=shapes, vertices=vertices, weighted_basis=weighted[pos],
                gram=0.5 * (gram + gram.T) / scale, others=others,
                cross=gram_all[np.ix_(np.searchsorted(moving, others), pos)] / scale,
                scale=scale, blend=energy[shapes, r]))
        # Energy-weighted mean over the regions a shape is fitted in (module doc).
        fitted_energy = np.zeros(k)
        for region in self.regions:
            fitted_energy[region.shapes] += region.blend
        for region in self.regions:
            region.blend = region.blend / fitted_energy[region.shapes]

    def solve(self, targets, smooth: float = 0.0, sparsity: float = 0.0, prior=None,
              tol: float = TOLERANCE, max_iter: int = MAX_ITERATIONS,
              max_passes: int = MAX_PASSES) -> np.ndarray:
        """(T, K) float32 weights in [0, 1] for target displacements (T, N, 3) (or one (N, 3)).

        ``prior`` (K,) = the solution of the frame before ``targets[0]`` (chunked solving).
        ``tol`` is the accuracy wanted on the weights; ``max_passes`` bounds region passes.
        """
        targets = np.asarray(targets)
        if targets.ndim == 2:
            targets = targets[None]
        if targets.shape[1:] != (self.n_vertices, 3):
            raise ValueError(f"targets must be (T, {self.n_vertices}, 3), got {targets.shape}")
        if smooth < 0 or sparsity < 0:
            raise ValueError("smooth and sparsity must be >= 0")
        prior = None if prior is None else np.asarray(prior, dtype=np.float64).reshape(-1)
        if prior is not None and prior.shape != (self.n_shapes,):
            raise ValueError(f"prior must have {self.n_shapes} weights")

        projected = [region.project(targets) for region in self.regions]
        solutions: list = [None] * len(self.regions)
        weights = np.zeros((targets.shape[0], self.n_shapes))
        coupled = any(region.others.size for region in self.regions)
        change = 1.0
        for _ in range(max_passes if coupled else 1):
            # Inexact passes: no point solving a region to 1e-4 while its neighbours' weights
            # are still off by 1e-1; the inner accuracy follows the outer progress.
            inner_tol = max(tol, 0.1 * change) if coupled else tol
            combined = np.zeros_like(weights)
            for i, region in enumerate(self.regions):
                rhs = projected[i]
                if region.others.size:  # motion of shapes solved elsewhere: subtract it
                    rhs = rhs - weights[:, region.others] @ region.cross
                solutions[i] = solve_box_qp(
                    region.gram, rhs, smooth, sparsity,
                    None if prior is None else prior[region.shapes], inner_tol, max_iter,
                    start=solutions[i])
                combined[:, region.shapes] += solutions[i] * region.blend
            change = np.max(np.abs(combined - weights)) if combined.size else 0.0
            weights = combined
            if change < tol and inner_tol <= tol:
                break
        return np.clip(weights, 0.0, 1.0).astype(np.float32)


def solve_rig_weights(basis, targets, smooth: float = 0.0, sparsity: float = 0.0,
                      regions=None, vertex_weights=None, prior=None) -> np.ndarray:
    """(T, K) weights in [0, 1] so that ``basis`` (K, N, 3) reproduces ``targets`` (T, N, 3).

    One-shot wrapper over :class:`RigSolver`; build the solver once when solving many takes
    for the same rig. Parameters are explained in the module doc.
    """
    solver = RigSolver(basis, regions=regions, vertex_weights=vertex_weights)
    return solver.solve(targets, smooth=smooth, sparsity=sparsity, prior=prior)


# --------------------------------------------------------------------------------------------
# The box-constrained QP over all frames
# --------------------------------------------------------------------------------------------

def _temporal_laplacian(w: np.ndarray, prior: Optional[np.ndarray]) -> np.ndarray:
    """Gradient/2 of sum_t ||w_t - w_{t-1}||^2 (plus ||w_0 - prior||^2): (L w)_t."""
    lap = np.zeros_like(w)
    if w.shape[0] > 1:
        d = np.diff(w, axis=0)
        lap[:-1] -= d
        lap[1:] += d
    if prior is not None:
        lap[0] += w[0] - prior
    return lap


def _ridge(gram: np.ndarray) -> float:
    """A tiny diagonal load that makes rank-deficient rigs (duplicate keys) solvable."""
    return 1e-9 * max(1.0, float(np.trace(gram)) / gram.shape[0])


def _unconstrained(gram: np.ndarray, linear: np.ndarray, smooth: float) -> np.ndarray:
    """Exact minimiser without the box: (G ⊗ I + smooth · I ⊗ L) w = c.

    G = V Λ Vᵀ decouples the shapes and the DCT-II diagonalises the free-ended temporal
    Laplacian L (eigenvalues 4 sin²(πj / 2T)), so the whole (T·k)² system is solved in
    O(T k² + T k log T). This starting point already has the slow, low-frequency part of the
    smoothed solution, which is where plain gradient steps would spend their iterations.
    """
    t, k = linear.shape
    eigval, eigvec = np.linalg.eigh(gram + _ridge(gram) * np.eye(k))
    rotated = linear @ eigvec                                    # (T, k) in G's eigenbasis
    if smooth and t > 1:
        from scipy.fft import dct, idct  # scipy on first use, not at Blender start-up

        spectral = dct(rotated, type=2, norm="ortho", axis=0)
        mu = 4.0 * np.sin(np.pi * np.arange(t) / (2.0 * t)) ** 2
        spectral /= eigval[None, :] + smooth * mu[:, None]
        rotated = idct(spectral, type=2, norm="ortho", axis=0)
    else:
        rotated = rotated / eigval[None, :]
    return rotated @ eigvec.T


def solve_box_qp(gram: np.ndarray, projected: np.ndarray, smooth: float = 0.0,
                 sparsity: float = 0.0, prior: Optional[np.ndarray] = None,
                 tol: float = TOLERANCE, max_iter: int = MAX_ITERATIONS,
                 start: Optional[np.ndarray] = None) -> np.ndarray:
    """Minimise sum_t (wᵀGw - 2cᵀw) + smooth·Σ||Δw||² + sparsity·Σ1ᵀw over 0 <= w <= 1.

    ``gram`` G (k, k) symmetric PSD, ``projected`` C (T, k) rows c_t. Returns (T, k).

    Jacobi-preconditioned FISTA with gradient restart. Preconditioning by the diagonal of the
    Hessian equalises shapes of very different size (jawOpen moves far more than
    eyeLookIn), the main source of slow convergence in blend-shape Gram matrices, while the
    box stays a box. Started from ``start`` if given (a previous solution), else from the
    clipped unconstrained solution (smoothing included), so frames whose answer lies inside
    the box converge almost at once.
    """
    gram = np.asarray(gram, dtype=np.float64)
    c = np.asarray(projected, dtype=np.float64)
    t, k = c.shape
    if t == 0:
        return np.zeros((0, k))
    linear = c - 0.5 * sparsity  # w >= 0 makes ||w||_1 linear: it just shifts c

    w = np.clip(_unconstrained(gram, linear, smooth) if start is None else start, 0.0, 1.0)

    ridge = _ridge(gram)
    diag = np.diag(gram) + 2.0 * smooth + ridge           # Hessian diagonal / 2, upper bound
    inv_sqrt = 1.0 / np.sqrt(diag)
    spectrum = np.linalg.eigvalsh(gram * inv_sqrt[:, None] * inv_sqrt[None, :])
    lipschitz = spectrum[-1] + 4.0 * smooth / diag.min() + 1e-12
    step = 1.0 / (lipschitz * diag)                        # per-shape step (preconditioner)
    # A projected-gradient step of size r means a distance of up to r·L/μ from the optimum
    # (μ = smallest curvature, the DC temporal mode): test the residual against tol·μ/L so
    # that ``tol`` is the accuracy of the weights themselves, not of one step.
    # (μ floored at 1e-6·L: with duplicate shapes the optimum is not unique, and the
    # residual is all that can be asked for.)
    step_tol = tol * max(spectrum[0], 1e-6 * lipschitz) / lipschitz

    def gradient(v):
        g = v @ gram - linear
        if smooth:
            g += smooth * _temporal_laplacian(v, prior)
        return g

    y, momentum = w.copy(), 1.0
    for iteration in range(1, max_iter + 1):
        w_new = np.clip(y - gradient(y) * step, 0.0, 1.0)
        change = w_new - w
        if np.sum((y - w_new) * change) > 0:   # going uphill: restart the momentum
            momentum, y = 1.0, w_new
        else:
            next_momentum = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum * momentum))
            y = w_new + ((momentum - 1.0) / next_momentum) * change
            momentum = next_momentum
        w = w_new
        # Converged when a plain projected-gradient step from w no longer moves it. The
        # step between FISTA iterates is no test: it can be tiny right after a restart.
        if iteration % _CHECK_EVERY == 0:
            if np.max(np.abs(np.clip(w - gradient(w) * step, 0.0, 1.0) - w)) < step_tol:
                break
    return w
