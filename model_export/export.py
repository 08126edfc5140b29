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
"""

from __future__ import annotations

from pathlib import Path

import onnx
import torch
from torch import nn

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
    def __init__(self, encoder: ExpressionEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, features, mass, evals, evecs, grad_evecs):
        return self.encoder(features, SpectralOps(mass, evals, evecs, grad_evecs))


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


def export_encoder(encoder: ExpressionEncoder, path: Path) -> Path:
    return _export(EncoderGraph(encoder), example_mesh_inputs(in_features=9), path, MESH_INPUTS, ["code"],
                   dict(MESH_AXES))


def export_all(rig: RigNet, ablation: RigNet, encoder: ExpressionEncoder, out: Path,
               ablation_dir: Path | None = None) -> list[Path]:
    """rig.onnx, localizer.onnx and expression_encoder.onnx into ``out``; the ablation beside."""
    ablation_dir = ablation_dir or (out / "ablation")
    return [export_rig(rig, out / "rig.onnx"), export_localizer(rig, out / "localizer.onnx"),
            export_encoder(encoder, out / "expression_encoder.onnx"),
            export_rig(ablation, ablation_dir / "rig_global.onnx")]
