# SPDX-License-Identifier: GPL-3.0-or-later
"""The localizer's gates (Recipe.w_gate_open): off by default, so the shipped recipe is
unchanged; on, each channel's gate stays open where its ground truth moves most."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from blender_addon.core import regions as region_names
from model_export import train
from model_export.data import artist
from model_export.data.ict import load_ict
from model_export.data.regions import load_region_labels


@pytest.fixture(scope="module")
def head(ict_path):
    labels = load_region_labels()
    return train.TorchMesh(artist.pool_entry(load_ict(ict_path), labels, None, 1234, 0, 0.0))


def test_peak_gate_is_the_gate_where_the_truth_moves_most():
    gate = torch.tensor([[0.2, 0.9], [0.6, 0.1]])                     # 2 vertices, 2 channels
    deltas = torch.zeros(2, 2, 3)
    deltas[0, 0, 0], deltas[1, 0, 1] = 1.0, 3.0                       # channel 0 moves both, channel 1 none
    open_gate = train.peak_gate(gate, deltas)
    assert open_gate[0].item() == pytest.approx(0.6)
    assert open_gate[1].item() == 1.0                                 # nothing to keep open


def test_default_recipe_adds_nothing_to_the_loss(head):
    """w_gate_open = 0 (the shipped recipe): the same total as before the term existed."""
    r = train.QUICK
    assert train.Recipe().w_gate_open == 0.0
    rig = train.build_models(r, len(region_names.REGION_NAMES))[0]
    code = torch.from_numpy(train.dataset.random_code(np.random.default_rng(0)))
    total, parts = train.rig_loss(rig, head, code, r)
    assert "gate_open" not in parts and parts[train.GATE_KEY].shape == (53,)
    expected = (r.w_shape * parts["shape"] + r.w_mix * parts["mix"] + r.w_normal * parts["normal"]
                + r.w_edge * parts["edge"] + r.w_identity * parts["identity"] + r.w_region * parts["region"])
    assert total.item() == expected.item()
    assert "eyeBlink_L" in train.gate_summary(parts[train.GATE_KEY].numpy())


def _train(head, w: float, steps: int = 500) -> np.ndarray:
    """The first steps of the full schedule on one head; the mean peak gate of the last 50."""
    r = replace(train.QUICK, w_gate_open=w)
    rig = train.build_models(r, len(region_names.REGION_NAMES))[0]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    opt = torch.optim.AdamW(rig.parameters(), lr=r.lr, weight_decay=1e-4)
    gates = []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = train._schedule(step, train.Recipe().rig_steps, r.lr)
        code = torch.from_numpy(train.dataset.random_code(rng))
        loss, parts = train.rig_loss(rig, head, code, r)
        gates.append(parts.pop(train.GATE_KEY).numpy())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(rig.parameters(), 1.0)
        opt.step()
    return np.mean(gates[-50:], axis=0)


def test_open_gate_term_keeps_every_gate_open(head):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                          # small matrices: one is faster
    try:
        opened = _train(head, 0.5)
        # Without the term the same steps close them, as in the shipped recipe (the probes in
        # docs/models.md, "Training data", collapse within the first 500-750 steps).
        shut = _train(head, 0.0)
    finally:
        torch.set_num_threads(threads)
    assert np.median(opened) > 0.5 and opened.min() > 0.1
    assert np.median(shut) < 0.2 * np.median(opened)


def test_a_lower_target_only_lifts_gates_below_it(head):
    """gate_open_target < 1 leaves the scale free: gates above the target cost nothing."""
    r = replace(train.QUICK, w_gate_open=1.0)
    rig = train.build_models(r, len(region_names.REGION_NAMES))[0]
    code = torch.from_numpy(train.dataset.random_code(np.random.default_rng(0)))
    _, full = train.rig_loss(rig, head, code, r)
    peak = full[train.GATE_KEY]
    assert full["gate_open"].item() == pytest.approx(float(torch.mean(1.0 - peak)))
    target = float(peak.median())
    _, low = train.rig_loss(rig, head, code, replace(r, gate_open_target=target))
    assert low["gate_open"].item() == pytest.approx(float(torch.mean(torch.relu(target - peak))))
    assert 0 < low["gate_open"].item() < full["gate_open"].item()


def test_gate_floor_bounds_the_gate_and_zero_is_the_shipped_localizer():
    from model_export.nets.nfs import Localizer

    torch.manual_seed(0)
    plain = Localizer(8)
    floored = Localizer(8, floor=1e-3)
    floored.load_state_dict(plain.state_dict())
    with torch.no_grad():
        for layer in plain.net:                                       # push the sigmoid shut
            if isinstance(layer, torch.nn.Linear):
                layer.bias.fill_(-30.0)
        floored.load_state_dict(plain.state_dict())
        w = torch.softmax(torch.randn(20, 8), dim=1)
        assert torch.equal(plain(w), torch.sigmoid(plain.net(w)))
        assert plain(w).max() < 1e-6
        assert floored(w).min() >= 1e-3
    r = replace(train.QUICK, gate_floor=1e-3)
    assert train.build_models(r, len(region_names.REGION_NAMES))[0].localizer.floor == 1e-3
