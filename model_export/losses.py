# SPDX-License-Identifier: GPL-3.0-or-later
"""Training losses (torch). Canonical units: the face is 1 wide, so 1e-3 is ~0.15 mm."""

from __future__ import annotations

import torch
import torch.nn.functional as F

UNIT = 100.0
"""Losses are computed in hundredths of a face width, so they sit near 1."""


def vertex_l1(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Mean Euclidean distance per vertex (the benchmark's MAE), over any leading dims."""
    return torch.linalg.norm((pred - gt) * UNIT, dim=-1).mean()


def face_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    return torch.cross(b - a, c - a, dim=-1)


def normal_loss(neutral: torch.Tensor, faces: torch.Tensor, pred_disp: torch.Tensor,
                gt_disp: torch.Tensor) -> torch.Tensor:
    """1 - cosine between face normals of the predicted and true expressed meshes."""
    n_pred = F.normalize(face_normals(neutral + pred_disp, faces), dim=-1, eps=1e-12)
    n_gt = F.normalize(face_normals(neutral + gt_disp, faces), dim=-1, eps=1e-12)
    return (1.0 - (n_pred * n_gt).sum(-1)).mean()


def edge_loss(edges: torch.Tensor, pred_disp: torch.Tensor, gt_disp: torch.Tensor) -> torch.Tensor:
    """Difference of relative displacements along edges: keeps the surface's local shape."""
    d_pred = pred_disp[..., edges[:, 0], :] - pred_disp[..., edges[:, 1], :]
    d_gt = gt_disp[..., edges[:, 0], :] - gt_disp[..., edges[:, 1], :]
    return torch.linalg.norm((d_pred - d_gt) * UNIT, dim=-1).mean()


def unique_edges(faces: torch.Tensor) -> torch.Tensor:
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], dim=0)
    e = torch.sort(e, dim=1).values
    return torch.unique(e, dim=0)
