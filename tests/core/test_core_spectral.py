# SPDX-License-Identifier: GPL-3.0-or-later
"""DiffusionNet operators (blender_addon.core.spectral): correctness and robustness."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core import spectral
from blender_addon.core.mesh.proxy import loop_free_subdivide
from blender_addon.core.mesh.topology import face_areas


def icosphere(subdivisions: int, radius: float = 1.0):
    t = (1 + 5**0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                  [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9],
                  [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2],
                  [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10],
                  [8, 6, 7], [9, 8, 1]])
    for _ in range(subdivisions):
        v, f = loop_free_subdivide(v, f)
    v = v / np.linalg.norm(v, axis=1, keepdims=True) * radius
    return v.astype(np.float32), f


def grid(n: int, size: float = 1.0):
    """Flat n x n vertex grid on [0, size]^2 in the z = 0 plane."""
    x, y = np.meshgrid(np.linspace(0, size, n), np.linspace(0, size, n), indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], axis=1)
    i = (np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]).ravel()
    f = np.concatenate([np.stack([i, i + n, i + n + 1], 1), np.stack([i, i + n + 1, i + 1], 1)])
    return v.astype(np.float32), f.astype(np.int32)


@pytest.fixture(scope="module")
def sphere_ops():
    v, f = icosphere(4)                               # 2562 vertices: the sparse solver
    return v, f, spectral.compute_operators(v, f, k=64)


def test_laplacian_kills_constants_and_is_symmetric_psd():
    for v, f in (icosphere(3), grid(12)):
        L = spectral.cotan_laplacian(v, f)
        assert np.abs(L @ np.ones(len(v))).max() < 1e-10 * abs(L).max()
        assert abs(L - L.T).max() < 1e-12 * abs(L).max()
        x = np.random.default_rng(0).standard_normal(len(v))
        assert x @ (L @ x) > 0
        assert (L.diagonal() > 0).all()


def test_mass_sums_to_surface_area():
    v, f = icosphere(3, radius=2.0)
    mass = spectral.lumped_mass(v, f)
    assert mass.shape == (len(v),)
    assert mass.sum() == pytest.approx(face_areas(v, f).sum(), rel=1e-9)
    assert mass.sum() == pytest.approx(4 * np.pi * 4.0, rel=0.01)


def test_operator_shapes_and_dtypes(sphere_ops):
    v, _, ops = sphere_ops
    n = len(v)
    assert ops.mass.shape == (n,) and ops.evals.shape == (64,)
    assert ops.evecs.shape == (n, 64) and ops.grad_evecs.shape == (n, 64, 3)
    for a in (ops.mass, ops.evals, ops.evecs, ops.grad_evecs):
        assert a.dtype == np.float32 and np.isfinite(a).all()
    assert ops.k == 64


def test_eigenvectors_are_mass_orthonormal(sphere_ops):
    _, _, ops = sphere_ops
    E = ops.evecs.astype(np.float64)
    gram = E.T @ (ops.mass[:, None] * E)
    assert np.abs(gram - np.eye(64)).max() < 1e-4


def test_spectrum_starts_at_zero_sorted_nonnegative(sphere_ops):
    _, _, ops = sphere_ops
    assert ops.evals[0] < 1e-4 * ops.evals[1]
    assert (np.diff(ops.evals) >= 0).all() and (ops.evals >= 0).all()
    first = ops.evecs[:, 0]
    assert np.std(first) < 1e-4 * np.abs(first).mean()   # the constant function


@pytest.mark.parametrize("subdivisions, tol", [(3, 0.07), (4, 0.02)])  # dense, sparse path
def test_sphere_spectrum_matches_spherical_harmonics(subdivisions, tol):
    r = 2.0
    v, f = icosphere(subdivisions, radius=r)
    ops = spectral.compute_operators(v, f, k=49)      # l = 0..6, multiplicities 2l+1
    expected = np.concatenate([np.full(2 * l + 1, l * (l + 1) / r**2) for l in range(7)])
    assert ops.evals[0] == pytest.approx(0.0, abs=1e-5)
    np.testing.assert_allclose(ops.evals[1:], expected[1:], rtol=tol)


def test_linear_function_gradient_is_exact_with_the_full_operator():
    v, f = grid(15)
    G = spectral.vertex_gradient_matrix(v, f)
    x = 2.0 * v[:, 0] + 3.0 * v[:, 1]
    np.testing.assert_allclose((G @ x).reshape(-1, 3), np.tile([2.0, 3.0, 0.0], (len(v), 1)),
                               atol=1e-5)


def test_grad_evecs_reproduce_gradient_of_a_projected_linear_function():
    """grad_evecs @ c is the gradient of evecs @ c: for x projected on the basis of a flat
    grid that is close to (1, 0, 0) away from the boundary (truncation ripple only)."""
    v, f = grid(30)
    ops = spectral.compute_operators(v, f, k=64)
    x = v[:, 0].astype(np.float64)
    coeffs = ops.evecs.T.astype(np.float64) @ (ops.mass * x)
    grad = np.einsum("nkd,k->nd", ops.grad_evecs.astype(np.float64), coeffs)
    inner = (np.abs(v[:, 0] - 0.5) < 0.3) & (np.abs(v[:, 1] - 0.5) < 0.3)
    assert np.abs(grad[inner].mean(axis=0) - [1.0, 0.0, 0.0]).max() < 0.03
    assert np.sqrt(((grad[inner] - [1.0, 0.0, 0.0]) ** 2).sum(axis=1).mean()) < 0.1


def test_grad_evecs_are_tangent_on_a_sphere(sphere_ops):
    v, _, ops = sphere_ops
    normal = v / np.linalg.norm(v, axis=1, keepdims=True)
    g = ops.grad_evecs[:, 1:16].astype(np.float64)
    along_normal = np.abs(np.einsum("nkd,nd->nk", g, normal))
    assert along_normal.mean() < 0.02 * np.linalg.norm(g, axis=2).mean()


def test_deterministic():
    v, f = icosphere(4)
    a = spectral.compute_operators(v, f, k=32)
    b = spectral.compute_operators(v.copy(), f.copy(), k=32)
    for name in ("mass", "evals", "evecs", "grad_evecs"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def _broken_mesh():
    """A 30x30 grid plus every defect the operators must survive."""
    v, f = grid(30)
    n = len(v)
    extra_v = np.array([[0.1, 0.1, 0.0], [0.2, 0.1, 0.0], [0.3, 0.1, 0.0],   # collinear
                        [0.5, 0.5, 0.3],                                     # fin apex
                        [5.0, 5.0, 5.0]], dtype=np.float32)                  # isolated
    fin = [f[100, 0], f[100, 1], n + 3]               # third face on an existing edge
    extra_f = np.array([[n, n + 1, n + 2],            # zero area
                        f[5][::-1],                   # duplicate (reversed) face
                        fin, [f[7, 0], f[7, 0], f[7, 1]]])  # repeated index
    return np.concatenate([v, extra_v]), np.concatenate([f, extra_f])


@pytest.mark.parametrize("k", [16, 64])
def test_robust_to_degenerate_input(k):
    v, f = _broken_mesh()
    ops = spectral.compute_operators(v, f, k=k)
    for a in (ops.mass, ops.evals, ops.evecs, ops.grad_evecs):
        assert np.isfinite(a).all()
    assert (ops.mass > 0).all() and (ops.evals >= 0).all()
    E = ops.evecs.astype(np.float64)
    assert np.abs(E.T @ (ops.mass[:, None] * E) - np.eye(k)).max() < 1e-3
    L = spectral.cotan_laplacian(v, f)
    assert np.isfinite(L.data).all() and np.abs(L @ np.ones(len(v))).max() < 1e-8


def test_eigenvalues_scale_with_inverse_square_of_size():
    v, f = icosphere(4)
    base = spectral.compute_operators(v, f, k=24)
    for s in (0.01, 25.0):
        scaled = spectral.compute_operators(v * s, f, k=24)
        np.testing.assert_allclose(scaled.evals[1:], base.evals[1:] / s**2, rtol=1e-4)
        np.testing.assert_allclose(scaled.mass, base.mass * s**2, rtol=1e-4)


def test_tiny_mesh_pads_to_k():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float32)
    f = np.array([[0, 1, 2], [1, 3, 2]])
    ops = spectral.compute_operators(v, f, k=8)
    assert ops.evecs.shape == (4, 8) and ops.grad_evecs.shape == (4, 8, 3)
    assert np.all(ops.evecs[:, 4:] == 0) and np.all(ops.grad_evecs[:, 4:] == 0)
    assert (np.diff(ops.evals) >= 0).all()


def test_invalid_input_raises():
    v, f = grid(4)
    with pytest.raises(ValueError):
        spectral.compute_operators(v, f + 100)
    with pytest.raises(ValueError):
        spectral.compute_operators(v, f, k=0)
