# SPDX-License-Identifier: GPL-3.0-or-later
"""The Neural Face Skinning networks, shaped for a shape-key product.

Following Cha et al. (CGF 2025):

* **identity encoder** (DiffusionNet on the target neutral): per-vertex features
  and a global identity code ``z_id`` whose first 100 dims are trained against the
  ICT identity coefficients;
* **skinning encoder** (DiffusionNet on the target neutral) + softmax: per-vertex
  region weights ``W`` (non-negative, summing to 1), supervised by region labels;
* **skinning block** (:class:`Localizer`): maps region weights to a per-vertex,
  per-FACS-channel mask ``omega = f(W)`` in [0, 1]; the localized code is
  ``z_le(v) = omega(v) * z_ge``;
* **decoder**: from per-vertex features, the identity code and the localized code
  to a displacement;
* **expression encoder** (DiffusionNet on a source mesh with its displacement from
  its own neutral): a global code whose first 53 dims are the ICT FACS weights.

Deviation, recorded in docs/models.md: the decoder is *linear in the localized
code*, ``disp(v) = sum_j D_j(v) * z_le_j(v)``, with the per-vertex response
``D(v)`` (53 x 3) an MLP of the features and the identity code. Shape keys are
linear, so a decoder that is not could not be written as a rig at all; this one
gives all 53 shapes in one pass (no 53 decoder runs) and its one-hot responses
are exactly the shape keys (blendshape agreement holds by construction).
The localizer depends on the region weights only, so an artist who repaints a
region changes where each expression acts.
"""

from __future__ import annotations

import torch
from torch import nn

from .diffusion_net import DiffusionNet, SpectralOps, global_mean, mlp

N_FACS = 53
N_IDENTITY = 100


class Localizer(nn.Module):
    """Skinning block: region weights (N,R) -> per-channel activity mask (N,53) in [0,1]."""

    def __init__(self, n_regions: int, hidden: int = 64, floor: float = 0.0):
        super().__init__()
        self.net = mlp([n_regions, hidden, hidden, N_FACS])
        # A floor keeps every channel's response trainable however far its sigmoid closes
        # (docs/models.md, "Training data"); 0 is the shipped localizer.
        self.floor = floor

    def forward(self, region_weights: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.net(region_weights))
        return gate if self.floor == 0 else self.floor + (1.0 - self.floor) * gate


class RigNet(nn.Module):
    """Target neutral -> region weights, identity code and the 53 per-vertex shape responses.

    ``localized=False`` is the global-code-only ablation (the NFR-style model): no
    skinning encoder, the code reaches every vertex unchanged (omega = 1).
    """

    def __init__(self, n_regions: int, width: int = 64, blocks: int = 4, id_dim: int = 128,
                 in_features: int = 6, localized: bool = True, skin_width: int = 48, skin_blocks: int = 2,
                 decoder_width: int = 128, gate_floor: float = 0.0):
        super().__init__()
        self.localized = localized
        self.n_regions = n_regions
        self.identity_encoder = DiffusionNet(in_features, width, blocks)
        self.identity_head = mlp([width, width, id_dim])
        self.identity_proj = nn.Linear(id_dim, 32)
        if localized:
            # Regions are coarse: a smaller encoder segments them as well (measured), at a
            # third of the identity encoder's cost.
            self.skinning_encoder = DiffusionNet(in_features, skin_width, skin_blocks)
            self.skinning_head = mlp([skin_width, skin_width, n_regions])
            self.localizer = Localizer(n_regions, floor=gate_floor)
        self.decoder = mlp([in_features + width + 32, decoder_width, decoder_width, N_FACS * 3])

    def forward(self, x: torch.Tensor, ops: SpectralOps):
        """Returns (region_logits (N,R) or None, z_id (id_dim,), responses (N,53,3))."""
        h = self.identity_encoder(x, ops)
        z_id = self.identity_head(global_mean(h, ops.mass))
        ident = self.identity_proj(z_id)[None, :].expand(h.shape[0], -1)
        responses = self.decoder(torch.cat([x, h, ident], dim=1)).reshape(-1, N_FACS, 3)
        logits = None
        if self.localized:
            logits = self.skinning_head(self.skinning_encoder(x, ops))
        return logits, z_id, responses

    def localization(self, region_weights: torch.Tensor) -> torch.Tensor:
        if not self.localized:
            return torch.ones(region_weights.shape[0], N_FACS, dtype=region_weights.dtype,
                              device=region_weights.device)
        return self.localizer(region_weights)

    def shape_deltas(self, x: torch.Tensor, ops: SpectralOps):
        """The rig: (region weights (N,R) | None, deltas (N,53,3), z_id)."""
        logits, z_id, responses = self(x, ops)
        if not self.localized:
            return None, responses, z_id
        weights = torch.softmax(logits, dim=1)
        return weights, self.localization(weights)[:, :, None] * responses, z_id


class ExpressionEncoder(nn.Module):
    """Source neutral + displacement -> global expression code; dims 0..52 = ICT FACS weights.

    The source's own neutral is an input (deviation from NFS, which sees only the
    expressed mesh): a mesh source always has a rest state, and subtracting it
    removes the identity, which is what limits FACS-code accuracy.
    """

    def __init__(self, width: int = 64, blocks: int = 4, code_dim: int = 64, in_features: int = 9):
        super().__init__()
        self.net = DiffusionNet(in_features, width, blocks)
        self.head = mlp([2 * width, 2 * width, code_dim])
        self.code_dim = code_dim

    def forward(self, x: torch.Tensor, ops: SpectralOps) -> torch.Tensor:
        h = self.net(x, ops)
        pooled = torch.cat([global_mean(h, ops.mass), h.max(dim=0).values])
        return self.head(pooled)
