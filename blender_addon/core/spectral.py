# SPDX-License-Identifier: GPL-3.0-or-later
"""DiffusionNet operators: Laplacian, mass, eigenbasis and per-vertex eigenvector gradients.

This is the single implementation used by both the training code and the add-on, so a
mesh seen at training time and the same mesh seen in Blender get the same inputs.

What the network needs (Sharp et al., "DiffusionNet", 2022):

* ``mass``   lumped (diagonal) mass M, the per-vertex area;
* ``evals``, ``evecs``  the first k solutions of the generalized problem L phi = lambda M phi,
  M-orthonormal (``evecs.T @ (mass[:, None] * evecs) == I``). Spectral diffusion of a
  feature x for time t is then ``evecs @ (exp(-evals * t) * (evecs.T @ (mass * x)))``;
* ``grad_evecs`` the per-vertex 3D gradient of each eigenvector. The gradient of a
  diffused feature ``evecs @ c`` is ``grad_evecs @ c``, so the network computes gradient
  features with dense matrix products only (no sparse operators inside the ONNX graph).

Scale: operators are computed on the mesh exactly as given; the caller normalizes the
scale first (see :func:`blender_addon.core.mesh.head.normalize_head`). Under a uniform scaling
by s, mass scales by s^2, eigenvalues by 1/s^2, eigenvectors by 1/s and gradients by 1/s^2.

Robustness: the cotangent weights are computed from *intrinsically mollified* edge lengths
(Sharp & Crane, "A Laplacian for Nonmanifold Triangle Meshes", 2020, section 4.5): every
edge length is increased by the smallest delta that makes each triangle satisfy the strict
triangle inequality by a small margin. Zero-area and sliver faces then have small positive
areas and bounded cotangents instead of infinities. Non-manifold edges need nothing
special (contributions of all incident faces add up), duplicate and index-degenerate faces
are dropped, and vertices without faces get a tiny mass so M stays positive definite.
"""

from __future__ import annotations

import contextlib

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

# Triangle-inequality margin enforced by the mollification, relative to the mean edge
# length (the default of Sharp & Crane's reference code). Degenerate faces then get
# cotangents of a few hundred; meshes without degenerate faces are not changed at all.
_MOLLIFY_REL = 1e-5
# Cotangents beyond this are numerical noise from near-degenerate faces.
_COT_CLAMP = 1e3
# Mass given to vertices that touch no face, relative to the mean vertex mass.
_ISOLATED_MASS_REL = 1e-8
# Below this vertex count the dense generalized solver is both faster and more reliable.
_DENSE_MAX_VERTS = 500
# Shift of the shift-invert eigensolver, relative to 1 / total area (the natural scale of
# the smallest non-zero eigenvalue). Negative, so (L - sigma M) is positive definite.
_SIGMA_REL = -1e-2


@dataclass
class SpectralOperators:
    """Precomputed DiffusionNet inputs for one mesh (all float32).

    Attributes:
        mass: (N,) lumped vertex areas.
        evals: (k,) eigenvalues, ascending, >= 0.
        evecs: (N, k) M-orthonormal eigenvectors.
        grad_evecs: (N, k, 3) ambient gradient of each eigenvector at each vertex.
    """

    mass: np.ndarray
    evals: np.ndarray
    evecs: np.ndarray
    grad_evecs: np.ndarray

    @property
    def k(self) -> int:
        return int(self.evals.shape[0])


def _as_mesh(verts, faces) -> tuple[np.ndarray, np.ndarray]:
    """float64 (N,3) vertices and int64 (F,3) triangles with duplicate and index-degenerate
    faces removed. Out-of-range indices are a caller bug and raise."""
    v = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    if f.size and (f.min() < 0 or f.max() >= len(v)):
        raise ValueError(f"face indices out of range for {len(v)} vertices")
    if not np.isfinite(v).all():
        raise ValueError("vertex positions must be finite")
    f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])]
    # A duplicate face (same three vertices, any order/orientation) would count twice.
    s = np.sort(f, axis=1)
    n = len(v) + 1
    keys = (s[:, 0] * n + s[:, 1]) * n + s[:, 2] if n < 2**21 else \
        np.ascontiguousarray(s).view([("", s.dtype)] * 3).ravel()
    _, first = np.unique(keys, return_index=True)
    return v, f[np.sort(first)]


def _mollified_lengths(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(F,3) edge lengths, edge c opposite corner c, mollified so that every triangle
    satisfies l_a + l_b - l_c >= eps for all corners."""
    lengths = np.linalg.norm(v[np.roll(f, -1, axis=1)] - v[np.roll(f, 1, axis=1)], axis=2)
    if len(f) == 0:
        return lengths
    eps = _MOLLIFY_REL * max(float(lengths.mean()), np.finfo(np.float64).tiny)
    slack = lengths.sum(axis=1, keepdims=True) - 2.0 * lengths  # l_a + l_b - l_c per corner
    delta = max(0.0, float(np.max(eps - slack)))
    return lengths + delta


def _intrinsic_geometry(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-face areas (F,) and clamped cotangents (F,3) of each corner's angle."""
    lengths = _mollified_lengths(v, f)
    sq = lengths**2
    a, b, c = lengths[:, 0], lengths[:, 1], lengths[:, 2]
    # Heron's formula in its numerically stable product form; every factor is > 0 after
    # mollification (clip only guards rounding).
    prod = (a + b + c) * (-a + b + c) * (a - b + c) * (a + b - c)
    area = 0.25 * np.sqrt(np.clip(prod, 0.0, None))
    # cot(angle at corner c) = (l_a^2 + l_b^2 - l_c^2) / (4 area)
    num = sq.sum(axis=1, keepdims=True) - 2.0 * sq
    with np.errstate(divide="ignore", invalid="ignore"):
        cot = num / (4.0 * area[:, None])
    cot = np.clip(np.nan_to_num(cot, nan=0.0, posinf=_COT_CLAMP, neginf=-_COT_CLAMP),
                  -_COT_CLAMP, _COT_CLAMP)
    return area, cot


def _laplacian_from(n: int, f: np.ndarray, cot: np.ndarray) -> scipy.sparse.csr_matrix:
    # The angle at corner c is opposite the edge joining the two other corners; that edge
    # gets weight cot/2 from this face.
    i = f[:, [1, 2, 0]].ravel()
    j = f[:, [2, 0, 1]].ravel()
    w = 0.5 * cot.ravel()
    off = scipy.sparse.coo_matrix((-w, (i, j)), shape=(n, n))
    off = (off + off.T).tocsr()
    diag = -np.asarray(off.sum(axis=1)).ravel()
    return (off + scipy.sparse.diags(diag)).tocsr()


def _mass_from(n: int, f: np.ndarray, area: np.ndarray) -> np.ndarray:
    mass = np.bincount(f.ravel(), weights=np.repeat(area / 3.0, 3), minlength=n)
    touched = np.bincount(f.ravel(), minlength=n) > 0
    positive = mass[touched & (mass > 0)]
    floor = _ISOLATED_MASS_REL * (positive.mean() if positive.size else 1.0)
    return np.maximum(mass, floor)


def cotan_laplacian(verts, faces) -> scipy.sparse.csr_matrix:
    """Cotangent Laplacian L (N, N), positive semi-definite convention.

    ``L = -Delta``: off-diagonals are ``-(cot a + cot b) / 2``, rows sum to zero, so
    ``x @ L @ x`` is the Dirichlet energy. Float64; see the module docstring for how
    degenerate input is handled.
    """
    v, f = _as_mesh(verts, faces)
    _, cot = _intrinsic_geometry(v, f)
    return _laplacian_from(len(v), f, cot)


def lumped_mass(verts, faces) -> np.ndarray:
    """(N,) float64 barycentric lumped mass: one third of the area of every incident face.

    Sums to the surface area (up to the tiny mollification). Vertices that touch no face
    get a tiny positive mass so that the mass matrix is positive definite.
    """
    v, f = _as_mesh(verts, faces)
    area, _ = _intrinsic_geometry(v, f)
    return _mass_from(len(v), f, area)


def vertex_gradient_matrix(verts, faces) -> scipy.sparse.csr_matrix:
    """Sparse (3N, N) operator G: ``(G @ x).reshape(N, 3)`` is the gradient of the
    piecewise-linear function with vertex values x, averaged onto vertices.

    Per face, grad x = sum_i x_i (n x e_i) / (2 A), with e_i the edge opposite corner i
    (counter-clockwise) and n the unit normal. The vertex value is the area-weighted mean
    over incident faces, so the 1/A cancels: each face contributes (n x e_i) / 2 and the
    sum is divided by the incident area. Zero-area faces (no defined normal) contribute
    nothing; a vertex whose incident area is zero gets a zero gradient.
    """
    v, f = _as_mesh(verts, faces)
    n = len(v)
    p = v[f]                                            # (F,3 corners,3)
    cross = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    double_area = np.linalg.norm(cross, axis=1)
    scale = max(float(np.abs(v).max()) if n else 0.0, 1.0)
    ok = double_area > 1e-14 * scale * scale
    normal = np.zeros_like(cross)
    normal[ok] = cross[ok] / double_area[ok, None]
    edge = p[:, [2, 0, 1]] - p[:, [1, 2, 0]]            # e_i = p_{i+2} - p_{i+1}, opposite i
    contrib = 0.5 * np.cross(normal[:, None, :], edge)  # (F,3,3): A * grad(hat_i)
    vert_area = np.bincount(f.ravel(), weights=np.repeat(0.5 * double_area, 3), minlength=n)
    inv_area = np.divide(1.0, vert_area, out=np.zeros(n), where=vert_area > 0)

    # Entry (3*vert + d, corner_vertex) for every face, every vertex of the face (the
    # averaging target), every corner (the basis function) and every axis d.
    fv = np.broadcast_to(f[:, :, None, None], (len(f), 3, 3, 3))          # target vertex
    fc = np.broadcast_to(f[:, None, :, None], (len(f), 3, 3, 3))          # corner
    axis = np.broadcast_to(np.arange(3)[None, None, None, :], (len(f), 3, 3, 3))
    vals = np.broadcast_to(contrib[:, None, :, :], (len(f), 3, 3, 3)) * inv_area[fv]
    rows = (3 * fv + axis).ravel()
    grad = scipy.sparse.coo_matrix((vals.ravel(), (rows, fc.ravel())), shape=(3 * n, n))
    return grad.tocsr()


def _one_blas_thread():
    """Run the eigensolver on one BLAS thread.

    Its dense steps are small (N x 2k); several BLAS threads only wait on each other,
    and on a busy machine (Blender drawing, a render, training) they were measured to
    take several times longer. threadpoolctl ships in the extension; without it the
    solver runs as the environment configured BLAS.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - it is a pinned dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _generalized_eigh(L: scipy.sparse.csr_matrix, mass: np.ndarray, k: int,
                      total_area: float) -> tuple[np.ndarray, np.ndarray]:
    with _one_blas_thread():
        return _generalized_eigh_impl(L, mass, k, total_area)


def _generalized_eigh_impl(L: scipy.sparse.csr_matrix, mass: np.ndarray, k: int,
                           total_area: float) -> tuple[np.ndarray, np.ndarray]:
    n = L.shape[0]
    if n <= max(k + 1, _DENSE_MAX_VERTS):
        evals, evecs = scipy.linalg.eigh(L.toarray(), np.diag(mass))
        return evals[:k], evecs[:, :k]
    sigma = _SIGMA_REL / max(total_area, np.finfo(np.float64).tiny)
    # With a diagonal M the generalized problem is the standard one for
    # B = M^-1/2 L M^-1/2 (phi = M^-1/2 y). ARPACK then orthogonalizes in the plain inner
    # product, which is ~30% faster than passing M, and y orthonormal <=> phi M-orthonormal.
    sqrt_m = np.sqrt(mass)
    inv_sqrt = scipy.sparse.diags(1.0 / sqrt_m)
    B = (inv_sqrt @ L @ inv_sqrt).tocsc()
    # (B - sigma I)^-1 = M^1/2 (L - sigma M)^-1 M^1/2. L - sigma M is symmetric positive
    # definite, so a symmetric fill-reducing ordering without pivoting is safe.
    lu = scipy.sparse.linalg.splu((L + scipy.sparse.diags(-sigma * mass)).tocsc(),
                                  permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                                  options={"SymmetricMode": True})
    op_inv = scipy.sparse.linalg.LinearOperator(
        (n, n), matvec=lambda x: sqrt_m * lu.solve(sqrt_m * x), dtype=np.float64)
    # A fixed start vector makes ARPACK deterministic. It must not be the constant
    # vector, which is itself an eigenvector and would stall the Lanczos iteration.
    v0 = np.random.default_rng(0).standard_normal(n)
    # tol=0 (machine precision) on purpose: looser tolerances were seen to skip members
    # of highly multiple eigenvalues (symmetric meshes) without any warning.
    try:
        evals, y = scipy.sparse.linalg.eigsh(B, k=k, sigma=sigma, OPinv=op_inv, v0=v0, tol=0)
    except scipy.sparse.linalg.ArpackNoConvergence:
        evals, y = scipy.sparse.linalg.eigsh(B, k=k, sigma=sigma, OPinv=op_inv, v0=v0, tol=0,
                                             ncv=min(n - 1, 4 * k + 1), maxiter=50 * n)
    evecs = y / sqrt_m[:, None]
    order = np.argsort(evals, kind="stable")
    return evals[order], evecs[:, order]


def _fix_signs(evecs: np.ndarray) -> np.ndarray:
    """Make the largest-magnitude entry of every eigenvector positive (first index on ties).

    Only for reproducibility and inspection: spectral diffusion and gradient features are
    invariant to eigenvector signs, so the network never depends on this choice.
    """
    idx = np.argmax(np.abs(evecs), axis=0)
    signs = np.sign(evecs[idx, np.arange(evecs.shape[1])])
    signs[signs == 0] = 1.0
    return evecs * signs


def compute_operators(verts, faces, k: int = 64) -> SpectralOperators:
    """All DiffusionNet operators for one mesh; deterministic for identical input.

    Solves L phi = lambda M phi for the k smallest eigenpairs (shift-invert Lanczos, or a
    dense solver for small meshes). Always returns exactly k columns: when the mesh has
    fewer than k vertices the missing eigenvectors (and their gradients) are zero, which
    makes them inert in spectral diffusion, and their eigenvalues repeat the largest one.

    Every connected component adds an eigenvalue 0, and a vertex without faces is a
    component of its own whose eigenvector is a spike there, wasting one of the k slots:
    remove loose vertices first (:func:`blender_addon.core.mesh.proxy.build_proxy` does).
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    v, f = _as_mesh(verts, faces)
    n = len(v)
    if n == 0:
        raise ValueError("mesh has no vertices")
    area, cot = _intrinsic_geometry(v, f)
    L = _laplacian_from(n, f, cot)
    mass = _mass_from(n, f, area)

    k_solve = min(k, n)
    evals, evecs = _generalized_eigh(L, mass, k_solve, float(area.sum()))
    evals = np.maximum(evals, 0.0)
    evecs = _fix_signs(evecs)
    grad = (vertex_gradient_matrix(v, f) @ evecs).reshape(n, 3, k_solve).transpose(0, 2, 1)

    if k_solve < k:
        pad = k - k_solve
        evals = np.concatenate([evals, np.full(pad, evals[-1])])
        evecs = np.concatenate([evecs, np.zeros((n, pad))], axis=1)
        grad = np.concatenate([grad, np.zeros((n, pad, 3))], axis=1)

    return SpectralOperators(
        mass=mass.astype(np.float32),
        evals=evals.astype(np.float32),
        evecs=np.ascontiguousarray(evecs, dtype=np.float32),
        grad_evecs=np.ascontiguousarray(grad, dtype=np.float32),
    )
