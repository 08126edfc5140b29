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
(B, 64), and takes the operators in the form its products use (``core.features.encoder_feeds``:
``project`` (k, N) = evecs^T diag(mass), ``grad_x|y|z`` (N, k) the gradients one axis each,
made once per source topology) besides ``mass``, ``evals`` and ``evecs``.

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


ENCODER_INPUTS = ["features", "mass", "evals", "evecs", "project", "grad_x", "grad_y", "grad_z"]
ENCODER_AXES = {"features": {0: "batch", 1: "n"}, "mass": {0: "n"}, "evals": {0: "k"}, "evecs": {0: "n", 1: "k"},
                "project": {0: "k", 1: "n"}, "grad_x": {0: "n", 1: "k"}, "grad_y": {0: "n", 1: "k"},
                "grad_z": {0: "n", 1: "k"}, "code": {0: "batch"}}


class EncoderGraph(nn.Module):
    """The expression encoder over a batch of frames of one mesh: features (B,N,9) -> code (B,64).

    The same weights and the same arithmetic as :class:`ExpressionEncoder` one frame at a
    time (:func:`export_encoder` checks it), arranged for speed. Its thin matrix products
    (N x 64 x 64) take about 3/4 of a run (ONNX Runtime's profiler, facecap head, one
    thread); the arrangement saves on everything else:

    * the operators come in the form the products use, made once per source topology by
      ``core.features.encoder_feeds``: ``project`` = evecs^T diag(mass) (k,N) and the
      eigenvector gradients one axis a matrix, ``grad_x|y|z`` (N,k), instead of being
      sliced and scaled again on every run;
    * activations are (N*B, C), every per-vertex layer one Gemm over all B frames, and
      ``mlp(cat[x, diffused, g])`` is split by input into Gemms that accumulate into one
      another (``diffused @ W_d`` is ``evecs @ (coeffs @ W_d)``, never formed);
    * ``grad_mix(grads @ c)`` is ``grads @ (c @ W_mix)``, the gradient features summed one
      axis at a time ((N, B*C) pieces that stay in cache);
    * the biases are carried as one vector beside the activations instead of being added
      to every vertex (a per-channel shift moves the spectral coefficients by
      ``sum(project) x bias``, the mean and the max by the bias itself);
    * the first block's input is linear in the 9 features: its projection and its
      ``x @ W_x`` are taken from the features (K = 9) instead of the 64 channels.

    Measured on the facecap head (1.9k proxy vertices), one thread, one frame a run: see
    ``docs/drive.md`` (``bench drive`` runs the graph exported before in the same run).
    """

    def __init__(self, encoder: ExpressionEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, features, mass, evals, evecs, project, grad_x, grad_y, grad_z):
        n, k = evecs.shape[0], evecs.shape[1]
        net = self.encoder.net
        c, f_in = net.width, features.shape[2]
        x = features.transpose(0, 1).reshape(n, -1)                          # (N, B*F): frames side by side
        beta = net.first.bias                                                # the activations' shift, (C,)
        h = x.reshape(-1, f_in) @ net.first.weight.t()                       # (N*B, C) = activations - beta
        p_sum = project.sum(dim=1)                                           # (k,) = project @ ones
        for i, block in enumerate(net.blocks):
            first, last = block.mlp[0], block.mlp[2]
            w_x, w_d, w_g = first.weight[:, :c], first.weight[:, c:2 * c], first.weight[:, 2 * c:]
            if i == 0:   # h = x @ W_first^T: project the 9 features, not the C channels
                coeffs = ((project @ x).reshape(-1, f_in) @ net.first.weight.t()).reshape(k, -1, c)
            else:
                coeffs = (project @ h.reshape(n, -1)).reshape(k, -1, c)      # (k, B, C)
            coeffs = coeffs + (p_sum[:, None] * beta[None, :])[:, None, :]
            coeffs = coeffs * torch.exp(-evals[:, None] * torch.exp(block.log_time)[None, :])[:, None, :]
            a = coeffs.reshape(k, -1)                                        # (k, B*C)
            b = (coeffs @ block.grad_mix.weight.t()).reshape(k, -1)
            dots = (grad_x @ a) * (grad_x @ b) + (grad_y @ a) * (grad_y @ b) + (grad_z @ a) * (grad_z @ b)
            g = torch.tanh(dots).reshape(-1, c)                              # (N*B, C)
            pre = torch.addmm((beta @ w_x.t() + first.bias)[None, :], g, w_g.t())
            if i == 0:
                pre = torch.addmm(pre, x.reshape(-1, f_in), (w_x @ net.first.weight).t())
            else:
                pre = torch.addmm(pre, h, w_x.t())
            diffused_w = (coeffs @ w_d.t()).reshape(k, -1)                   # (k, B*C)
            pre = torch.addmm(pre.reshape(n, -1), evecs, diffused_w).reshape(-1, c)
            h = torch.addmm(h, block.mlp[1](pre), last.weight.t())
            beta = beta + last.bias
        weights = (mass / mass.sum())[None, :]
        mean = (weights @ h.reshape(n, -1)).reshape(-1, c) + beta
        peak = h.reshape(n, -1, c).max(dim=0).values + beta
        return self.encoder.head(torch.cat([mean, peak], dim=1))            # (B, code)


def encoder_inputs(mass, evecs, grad_evecs) -> tuple:
    """``project``, ``grad_x``, ``grad_y``, ``grad_z`` from the generic operators, in torch
    (the add-on's numpy twin: ``core.features.encoder_feeds``)."""
    return ((evecs * mass[:, None]).t().contiguous(),
            *(grad_evecs[:, :, d].contiguous() for d in range(3)))


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
        got = EncoderGraph(encoder)(batch, mass, evals, evecs, *encoder_inputs(mass, evecs, grad_evecs))
    err = float((got - want).abs().max() / want.abs().max().clamp_min(1e-6))
    if not err <= tol:
        raise RuntimeError(f"the batched encoder graph differs from ExpressionEncoder by {err:.2e} (relative): "
                           "update export.EncoderGraph to the network's architecture")
    return err


def export_encoder(encoder: ExpressionEncoder, path: Path) -> Path:
    check_encoder_graph(encoder)
    x, mass, evals, evecs, grad_evecs = example_mesh_inputs(in_features=9)
    batch = torch.stack([x, x.flip(0), -x])          # B = 3: the batch axis must stay dynamic
    ops = (mass, evals, evecs, *encoder_inputs(mass, evecs, grad_evecs))
    return _export(EncoderGraph(encoder), (batch, *ops), path, ENCODER_INPUTS, ["code"], ENCODER_AXES)


def export_all(rig: RigNet, ablation: RigNet, encoder: ExpressionEncoder, out: Path,
               ablation_dir: Path | None = None) -> list[Path]:
    """rig.onnx, localizer.onnx and expression_encoder.onnx into ``out``; the ablation beside."""
    ablation_dir = ablation_dir or (out / "ablation")
    return [export_rig(rig, out / "rig.onnx"), export_localizer(rig, out / "localizer.onnx"),
            export_encoder(encoder, out / "expression_encoder.onnx"),
            export_rig(ablation, ablation_dir / "rig_global.onnx")]

