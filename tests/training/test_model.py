# SPDX-License-Identifier: GPL-3.0-or-later
"""The shipped networks: present, documented, small, and identical to the torch models."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from blender_addon.core import features, inference, rig
from blender_addon.core.mesh.head import find_skin
from blender_addon.core.mesh.proxy import loop_free_subdivide

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "blender_addon" / "models"
CHECKPOINT = ROOT / "model_export" / "checkpoints" / "facsimile.pt"
SHIPPED = ("rig.onnx", "localizer.onnx", "expression_encoder.onnx")


def test_shipped_models_and_cards():
    total = 0
    for name in SHIPPED:
        path = MODELS / name
        assert path.exists(), f"{name} missing: run `python build.py train`"
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        assert model.opset_import[0].version <= 17
        total += path.stat().st_size
        card = path.with_suffix(".md").read_text()
        for section in ("## Inputs and outputs", "## Training", "## Measured accuracy", "Code commit"):
            assert section in card, f"{name}: model card lacks {section!r}"
        assert "ICT-FaceKit" in card and "MIT" in card
    assert total <= 40e6


def test_every_shipped_network_has_a_model_card():
    """Ours and the converted MediaPipe networks alike: a card beside every .onnx."""
    networks = sorted(MODELS.rglob("*.onnx"))
    assert len(networks) >= 6
    for path in networks:
        card = path.with_suffix(".md")
        assert card.exists(), f"{path.relative_to(MODELS)} has no model card"
        text = card.read_text()
        assert "## Inputs and outputs" in text and "## Measured accuracy" in text


def _facecap_canonical(facecap_path):
    with np.load(facecap_path) as d:
        v = d["neutral"].astype(np.float64)
        verts = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)
        faces = d["faces"].astype(np.int64)
    skin = find_skin(verts, faces)
    head = rig.prepare_head(verts, faces)
    assert skin.sum() == head.skin.sum()
    return head


def test_torch_and_onnx_agree_on_an_unseen_topology(facecap_path):
    torch = pytest.importorskip("torch")
    from model_export.nets.diffusion_net import SpectralOps
    from model_export.train import Recipe, build_models

    saved = torch.load(CHECKPOINT)
    recipe = Recipe(**saved["recipe"])
    rig_net, _ablation, encoder = build_models(recipe, saved["n_regions"])
    rig_net.load_state_dict(saved["rig"])
    encoder.load_state_dict(saved["encoder"])
    rig_net.eval()
    encoder.eval()

    head = _facecap_canonical(facecap_path)          # facecap is never trained on
    feeds = features.rig_feeds(head.prepared)
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    ops = SpectralOps(t["mass"], t["evals"], t["evecs"], t["grad_evecs"])
    with torch.no_grad():
        logits, z_id, responses = rig_net(t["features"], ops)
        weights = torch.softmax(logits, dim=1)
        omega = rig_net.localizer(weights)
    out = inference.run(MODELS / "rig.onnx", feeds, "CPU")
    loc = inference.run(MODELS / "localizer.onnx", {"region_weights": out["region_weights"]}, "CPU")
    assert np.abs(out["responses"] - responses.numpy()).max() <= 1e-4
    assert np.abs(out["region_weights"] - weights.numpy()).max() <= 1e-4
    assert np.abs(out["identity"] - z_id.numpy()).max() <= 1e-4
    assert np.abs(loc["localization"] - omega.numpy()).max() <= 1e-4

    # The encoder's graph takes a batch of frames (B, N, 9): each frame's code must be what
    # torch answers for that frame alone.
    rng = np.random.default_rng(0)
    codes, batch = [], []
    for scale in (0.02, 0.05, 0.0):
        expressed = head.prepared.verts + scale * rng.normal(size=head.prepared.verts.shape)
        efeeds = features.expression_feeds(head.prepared, expressed.astype(np.float32))
        te = {k: torch.from_numpy(v) for k, v in efeeds.items()}
        with torch.no_grad():
            codes.append(encoder(te["features"], SpectralOps(te["mass"], te["evals"], te["evecs"],
                                                             te["grad_evecs"])).numpy())
        batch.append(efeeds["features"])
    onnx_code = inference.run(MODELS / "expression_encoder.onnx",
                              {**features.encoder_feeds(efeeds), "features": np.stack(batch)}, "CPU")["code"]
    assert onnx_code.shape == (3, 64)
    assert np.abs(onnx_code - np.stack(codes)).max() <= 1e-4


@pytest.mark.slow
def test_quick_training_smoke_run(tmp_path, ict_path):
    """`build.py train --quick`: the whole recipe end to end in ~1 minute, into a temp folder."""
    out = tmp_path / "models"
    proc = subprocess.run([sys.executable, "-m", "model_export.train", "--quick", "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "[rig] step" in proc.stdout and "[encoder] step" in proc.stdout
    for name in (*SHIPPED, "ablation/rig_global.onnx"):
        assert (out / name).exists()
    report = json.loads((out / "training_report.json").read_text())
    assert report["rig"]["steps"] > 0
    # The freshly trained models run through the add-on's own pipeline.
    sphere_v, sphere_f = _icosphere(3)
    result = rig.predict(sphere_v * 0.1, sphere_f, provider="CPU", rig_model=str(out / "rig.onnx"),
                         localizer_model=str(out / "localizer.onnx"))
    assert result.ict_deltas.shape == (53, len(sphere_v), 3) and np.isfinite(result.ict_deltas).all()


def _icosphere(level: int):
    t = (1 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t], [0, -1, -t],
                  [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                  [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
                  [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]])
    for _ in range(level):
        v, f = loop_free_subdivide(v, f)
        v = v / np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype(np.float64), f


def test_any_encoder_exports_with_a_batch_axis(tmp_path):
    """export.py gives every expression encoder (any width, fresh or retrained) a batch axis,
    and refuses to export a graph that stopped matching the network."""
    torch = pytest.importorskip("torch")
    from model_export import export
    from model_export.nets.diffusion_net import SpectralOps
    from model_export.nets.nfs import ExpressionEncoder

    torch.manual_seed(0)
    encoder = ExpressionEncoder(width=16, blocks=2).eval()
    path = export.export_encoder(encoder, tmp_path / "encoder.onnx")
    x, mass, evals, evecs, grad_evecs = export.example_mesh_inputs(n=120, k=12, in_features=9)
    evecs, grad_evecs = evecs * 0.05, grad_evecs * 0.05
    ops = {"mass": mass.numpy(), "evals": evals.numpy(), "evecs": evecs.numpy(), "grad_evecs": grad_evecs.numpy()}
    frames = torch.randn(5, 120, 9, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = np.stack([encoder(f, SpectralOps(mass, evals, evecs, grad_evecs)).numpy() for f in frames])
    for batch in (frames[:1], frames):
        got = inference.run(path, {"features": batch.numpy(), **features.encoder_feeds(ops)}, "CPU")["code"]
        np.testing.assert_allclose(got, want[:len(batch)], rtol=1e-4, atol=1e-5)

    class Changed(ExpressionEncoder):   # an architecture change the batched graph does not follow
        def forward(self, x, ops):
            return super().forward(x, ops) + 1.0

    changed = Changed(width=16, blocks=2).eval()
    with pytest.raises(RuntimeError, match="batched encoder graph differs"):
        export.export_encoder(changed, tmp_path / "changed.onnx")
