# SPDX-License-Identifier: GPL-3.0-or-later
"""ONNX export: opset 17, IR 8 (loads in every ONNX Runtime the extension ships),
dynamic vertex and eigenvector counts.

Graph inputs of the mesh networks (all float32), as built by
``blender_addon.core.features``:

    features   (N, 6|9)  canonical position, normal [, scaled displacement]
    mass       (N,)      lumped vertex areas
    evals      (k,)      Laplacian eigenvalues
    evecs      (N, k)    mass-orthonormal eigenvectors
    grad_evecs (N, k, 3) per-vertex gradients of the eigenvectors

The expression encoder has a leading batch axis on ``features`` (B, N, 9) and ``code``
(B, 64): a mesh performance is encoded many frames per call, the operators shared.

Re-export from the saved checkpoint without training: ``python -m model_export.reexport``.
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from torch import nn
from torch.nn import functional as F

from .nets.diffusion_net import SpectralOps
from .nets.nfs import ExpressionEncoder, RigNet

OPSET = 17
IR_VERSION = 8
MESH_INPUTS = ["features", "mass", "evals", "evecs", "grad_evecs"]
MESH_AXES = {"features": {0: "n"}, "mass": {0: "n"}, "evals": {0: "k"}, "evecs": {0: "n", 1: "k"},
             "grad_evecs": {0: "n", 1: "k"}}


class RigGraph(nn.Module):
    def __init__(self, rig: RigNet):
        super().__init__()
        self.rig = rig

    def forward(self, features, mass, evals, evecs, grad_evecs):
        logits, z_id, responses = self.rig(features, SpectralOps(mass, evals, evecs, grad_evecs))
        if self.rig.localized:
            return torch.softmax(logits, dim=1), responses, z_id
        return responses, z_id


class LocalizerGraph(nn.Module):
    def __init__(self, rig: RigNet):
        super().__init__()
        self.localizer = rig.localizer

    def forward(self, region_weights):
        return self.localizer(region_weights)


class EncoderGraph(nn.Module):
    """The expression encoder over a batch of frames of one mesh: features (B,N,9) -> code (B,64).

    The same weights and the same arithmetic as :class:`ExpressionEncoder` one frame at a
    time (:func:`export_encoder` checks it), arranged for speed. The network is bound by
    memory traffic, not arithmetic (its matrix products are thin), so the arrangement
    avoids large intermediates:

    * activations are (N, B, C): each spectral product is one matrix product over all B frames;
    * ``mlp(cat[x, diffused, g])`` splits its first layer by input; ``diffused @ W_d`` is
      ``evecs @ (coeffs @ W_d)``, so neither the diffused features nor the concatenation
      are formed;
    * ``grad_mix(grads @ c)`` is ``grads @ (c @ W_mix)``, and the gradient features
      ``sum_d (G_d c) * (G_d c W_mix)`` are summed one axis d at a time: (N, B*C) pieces
      that stay in cache instead of (3N, B*C) tensors that do not. Measured on the facecap
      head (1.9k proxy vertices), two frames a run, one thread: 4.4 ms a frame (median 4.7)
      against 5.8 (6.3) for the graph exported before, one frame a run (best of 15, in turn,
      on the 2-core development machine beside a training run).
    """

    def __init__(self, encoder: ExpressionEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, features, mass, evals, evecs, grad_evecs):
        n, k = evecs.shape[0], evecs.shape[1]
        g_x, g_y, g_z = grad_evecs[:, :, 0], grad_evecs[:, :, 1], grad_evecs[:, :, 2]   # (N, k) each
        project = (evecs * mass[:, None]).transpose(0, 1)                    # (k, N)
        net = self.encoder.net
        h = net.first(features.transpose(0, 1))                              # (N, B, C)
        for block in net.blocks:
            c = h.shape[2]
            coeffs = (project @ h.reshape(n, -1)).reshape(k, -1, c)          # (k, B, C)
            coeffs = coeffs * torch.exp(-evals[:, None] * torch.exp(block.log_time)[None, :])[:, None, :]
            first = block.mlp[0]
            w_x, w_d, w_g = first.weight[:, :c], first.weight[:, c:2 * c], first.weight[:, 2 * c:]
            a = coeffs.reshape(k, -1)                                        # (k, B*C)
            b = (coeffs @ block.grad_mix.weight.transpose(0, 1)).reshape(k, -1)
            dots = (g_x @ a) * (g_x @ b) + (g_y @ a) * (g_y @ b) + (g_z @ a) * (g_z @ b)   # (N, B*C)
            grad_features = torch.tanh(dots).reshape(n, -1, c)
            diffused = (evecs @ (coeffs @ w_d.transpose(0, 1)).reshape(k, -1)).reshape(n, -1, c)
            pre = F.linear(h, w_x, first.bias) + diffused + grad_features @ w_g.transpose(0, 1)
            h = h + block.mlp[1:](pre)
        w = mass / mass.sum()
        pooled = torch.cat([(w[:, None, None] * h).sum(dim=0), h.max(dim=0).values], dim=1)
        return self.encoder.head(pooled)                                     # (B, code)


def example_mesh_inputs(n: int = 300, k: int = 24, in_features: int = 6):
    g = torch.Generator().manual_seed(0)
    return (torch.randn(n, in_features, generator=g), torch.rand(n, generator=g) + 0.1,
            torch.sort(torch.rand(k, generator=g) * 100).values, torch.randn(n, k, generator=g),
            torch.randn(n, k, 3, generator=g))


def _export(module: nn.Module, args, path: Path, inputs, outputs, axes) -> Path:
    module.eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                      dynamic_axes=axes, opset_version=OPSET, dynamo=False, do_constant_folding=True)
    model = onnx.load(str(path))
    model.ir_version = IR_VERSION
    for out in model.graph.output:          # name the dynamic axis, pin the static ones
        dims = out.type.tensor_type.shape.dim
        if out.name == "responses":
            dims[0].dim_param, dims[1].dim_value, dims[2].dim_value = "n", 53, 3
        if out.name == "code":
            dims[0].dim_param = "batch"
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def export_rig(rig: RigNet, path: Path) -> Path:
    outputs = ["region_weights", "responses", "identity"] if rig.localized else ["responses", "identity"]
    axes = dict(MESH_AXES, responses={0: "n"}, region_weights={0: "n"})
    if not rig.localized:
        axes.pop("region_weights")
    return _export(RigGraph(rig), example_mesh_inputs(), path, MESH_INPUTS, outputs, axes)


def export_localizer(rig: RigNet, path: Path) -> Path:
    x = torch.softmax(torch.randn(50, rig.n_regions), dim=1)
    return _export(LocalizerGraph(rig), (x,), path, ["region_weights"], ["localization"],
                   {"region_weights": {0: "n"}, "localization": {0: "n"}})


def check_encoder_graph(encoder: ExpressionEncoder, frames: int = 3, tol: float = 1e-4) -> float:
    """Largest relative difference between :class:`EncoderGraph` on a batch and the encoder
    one frame at a time; raises if it exceeds ``tol`` (an architecture changed in
    ``nets/`` that the batched graph does not follow yet)."""
    encoder.eval()
    x, mass, evals, evecs, grad_evecs = example_mesh_inputs(in_features=9)
    # Operators of a plausible scale (the random example's are not mass-orthonormal).
    evecs, grad_evecs = evecs * 0.05, grad_evecs * 0.05
    batch = torch.randn(frames, *x.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = torch.stack([encoder(f, SpectralOps(mass, evals, evecs, grad_evecs)) for f in batch])
        got = EncoderGraph(encoder)(batch, mass, evals, evecs, grad_evecs)
    err = float((got - want).abs().max() / want.abs().max().clamp_min(1e-6))
    if not err <= tol:
        raise RuntimeError(f"the batched encoder graph differs from ExpressionEncoder by {err:.2e} (relative): "
                           "update export.EncoderGraph to the network's architecture")
    return err


def export_encoder(encoder: ExpressionEncoder, path: Path) -> Path:
    check_encoder_graph(encoder)
    x, *ops = example_mesh_inputs(in_features=9)
    batch = torch.stack([x, x.flip(0), -x])          # B = 3: the batch axis must stay dynamic
    axes = dict(MESH_AXES, features={0: "batch", 1: "n"}, code={0: "batch"})
    return _export(EncoderGraph(encoder), (batch, *ops), path, MESH_INPUTS, ["code"], axes)


def export_all(rig: RigNet, ablation: RigNet, encoder: ExpressionEncoder, out: Path,
               ablation_dir: Path | None = None) -> list[Path]:
    """rig.onnx, localizer.onnx and expression_encoder.onnx into ``out``; the ablation beside."""
    ablation_dir = ablation_dir or (out / "ablation")
    return [export_rig(rig, out / "rig.onnx"), export_localizer(rig, out / "localizer.onnx"),
            export_encoder(encoder, out / "expression_encoder.onnx"),
            export_rig(ablation, ablation_dir / "rig_global.onnx")]

