# SPDX-License-Identifier: GPL-3.0-or-later
"""A DiffusionNet backbone that exports to ONNX as dense matrix products only.

DiffusionNet (Sharp et al. 2022) learns on any mesh through three per-vertex
operations: a learned heat diffusion (here in the spectral basis), spatial
gradient features, and a per-vertex MLP. Two choices make this version cheap and
exportable, both recorded in docs/models.md:

* Gradients come from ``grad_evecs`` (the per-vertex gradient of every
  eigenvector, computed by ``blender_addon.core.spectral``): a diffused feature is
  ``evecs @ c``, so its gradient is exactly ``grad_evecs @ c``. No sparse
  operators, no edge scatter (which the TorchScript exporter gets wrong, see
  ../shared/reference/measured.md), only MatMul.
* Gradients are ambient 3-D vectors rather than 2-D tangent vectors, so the
  learned gradient mixing is real (per-channel dot products of equivariant
  vectors stay rotation invariant). Inputs are already in a canonical head frame,
  so the complex tangent-plane rotation of the original buys nothing here.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SpectralOps:
    """The per-mesh operators in torch form: mass (N,), evals (k,), evecs (N,k), grads (N*3,k)."""

    __slots__ = ("mass", "evals", "evecs", "grads", "n")

    def __init__(self, mass, evals, evecs, grad_evecs):
        self.mass = mass
        self.evals = evals
        self.evecs = evecs
        self.n = evecs.shape[0]
        # (N,k,3) -> (N,3,k) -> (N*3,k) once, so every block's gradient is one MatMul.
        self.grads = grad_evecs.transpose(1, 2).reshape(-1, evecs.shape[1])


def mlp(sizes: list[int], last_activation: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2 or last_activation:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


class DiffusionBlock(nn.Module):
    """Learned diffusion + gradient features + per-vertex MLP, with a residual."""

    def __init__(self, width: int, t_min: float = 1e-4, t_max: float = 1e-1):
        super().__init__()
        # Diffusion times spread over the scales of a unit-width head (log-uniform
        # init): short times see wrinkles, long times see the whole face.
        init = torch.linspace(math.log(t_min), math.log(t_max), width)
        self.log_time = nn.Parameter(init[torch.randperm(width, generator=torch.Generator().manual_seed(width))])
        self.grad_mix = nn.Linear(width, width, bias=False)
        self.mlp = mlp([3 * width, width, width])

    def forward(self, x: torch.Tensor, ops: SpectralOps) -> torch.Tensor:
        coeffs = ops.evecs.transpose(0, 1) @ (ops.mass[:, None] * x)          # (k,C)
        decay = torch.exp(-ops.evals[:, None] * torch.exp(self.log_time)[None, :])
        coeffs = coeffs * decay
        diffused = ops.evecs @ coeffs                                         # (N,C)
        grad = (ops.grads @ coeffs).reshape(ops.n, 3, -1)                     # (N,3,C)
        mixed = self.grad_mix(grad)                                           # (N,3,C)
        grad_features = torch.tanh((grad * mixed).sum(dim=1))                 # (N,C)
        return x + self.mlp(torch.cat([x, diffused, grad_features], dim=1))


class DiffusionNet(nn.Module):
    """in_features -> width -> ``blocks`` DiffusionBlocks -> per-vertex features (N, width)."""

    def __init__(self, in_features: int, width: int = 96, blocks: int = 4):
        super().__init__()
        self.first = nn.Linear(in_features, width)
        self.blocks = nn.ModuleList(DiffusionBlock(width) for _ in range(blocks))
        self.width = width

    def forward(self, x: torch.Tensor, ops: SpectralOps) -> torch.Tensor:
        h = self.first(x)
        for block in self.blocks:
            h = block(h, ops)
        return h


def global_mean(h: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """Area-weighted mean over vertices: independent of how densely a mesh is sampled."""
    w = mass / mass.sum()
    return (w[:, None] * h).sum(dim=0)
