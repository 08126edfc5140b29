# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive, numpy side: retarget map, takes from channels and meshes, custom-rig solve, files."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from blender_addon.core import arkit, features, inference
from blender_addon.core.retarget import RetargetMap, smooth_frames
from blender_addon.core.takes import TakeError
from blender_addon.core.takes.mesh_sequence import (ENCODER_MAX_VERTS, MeshSequenceEncoder, encoder_proxy,
                                                     expression_codes, frames_per_run,
                                                     rigid_align, rigid_fit_batch)
from blender_addon.core.takes.shape_keys import take_from_channels
from blender_addon.core import custom_rig_solver
from blender_addon.core.takes import demo_performance
from blender_addon.core.takes import files as take_files
from conftest import to_blender_frame

JAW = arkit.ARKIT_INDEX["jawOpen"]


def _weights(frames=120, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None] / 30.0
    return np.clip(0.5 + 0.6 * np.sin(t * (1 + 3 * rng.random(52)) + 6 * rng.random(52)), 0, 1)


# ------------------------------------------------------------------ retarget map

def test_identity_map_changes_nothing():
    w = _weights()
    rmap = RetargetMap()
    assert rmap.is_identity
    out = rmap.apply(w)
    assert out.dtype == np.float32 and out.shape == w.shape
    np.testing.assert_allclose(out, w, atol=1e-6)


def test_gain_offset_clamp_and_mute():
    w = np.full((5, 52), 0.5)
    rmap = RetargetMap()
    rmap.gain[JAW], rmap.offset[JAW] = 1.5, 0.1
    rmap.enabled[arkit.ARKIT_INDEX["eyeBlinkLeft"]] = False
    out = rmap.apply(w)
    np.testing.assert_allclose(out[:, JAW], 0.85, atol=1e-6)
    assert (out[:, arkit.ARKIT_INDEX["eyeBlinkLeft"]] == 0).all()
    np.testing.assert_allclose(out[:, arkit.ARKIT_INDEX["mouthClose"]], 0.5, atol=1e-6)
    rmap.gain[JAW] = 3.0
    assert rmap.apply(w)[:, JAW].max() == 1.0            # clamped to the slider range
    rmap.clamp = False
    assert rmap.apply(w)[:, JAW].max() == pytest.approx(1.6)


def test_smoothing_is_zero_lag_and_adds_in_quadrature():
    w = np.zeros((81, 52))
    w[40, JAW] = 1.0                                     # an impulse: the filter's response
    rmap = RetargetMap()
    rmap.smoothing[JAW] = 3.0
    out = rmap.apply(w)[:, JAW]
    assert int(np.argmax(out)) == 40                     # no lag: the peak stays put
    np.testing.assert_allclose(out[40 - 5], out[40 + 5], atol=1e-7)
    assert out.sum() == pytest.approx(1.0, abs=1e-3)
    other = arkit.ARKIT_INDEX["mouthClose"]
    w[40, other] = 1.0
    both = rmap.apply(w, extra_smoothing=4.0)
    np.testing.assert_allclose(both[:, JAW], smooth_frames(w[:, [JAW]], 5.0)[:, 0], atol=1e-6)
    np.testing.assert_allclose(both[:, other], smooth_frames(w[:, [other]], 4.0)[:, 0], atol=1e-6)


def test_map_json_round_trip_and_typos():
    rmap = RetargetMap(clamp=False)
    rmap.gain[3], rmap.offset[7], rmap.smoothing[9], rmap.enabled[11] = 1.3, -0.1, 2.0, False
    again = RetargetMap.from_dict(rmap.to_dict())
    for attr in ("gain", "offset", "smoothing", "enabled"):
        np.testing.assert_array_equal(getattr(again, attr), getattr(rmap, attr))
    assert again.clamp is False
    assert len(rmap.to_dict()["channels"]) == 4          # identity channels are not written
    with pytest.raises(ValueError, match="unknown channel 'jawOpn'"):
        RetargetMap.from_dict({"format": "facsimile-retarget-map", "channels": {"jawOpn": {}}})
    with pytest.raises(ValueError, match="not a Facsimile retarget map"):
        RetargetMap.from_dict({"channels": {}})


# ------------------------------------------------------------------ takes from channels

def test_take_from_channels_normalises_names():
    names = ["blendShape1.jawOpen", "eyeBlink_L", "Fcl_MTH_A", "JawOpen", "EyeBlinkRight"]
    frames = np.arange(10, 20)
    values = np.tile(np.linspace(0, 1, 10)[:, None], (1, 5))
    take = take_from_channels(names, frames, values, 24.0, source="'Performer'")
    assert take.names == ["jawOpen", "eyeBlinkLeft", "eyeBlinkRight"]
    np.testing.assert_allclose(take.times, np.arange(10) / 24.0)
    assert take.fps == 24.0
    assert any("Fcl_MTH_A" in w for w in take.warnings)
    assert any("duplicate" in w and "JawOpen" in w for w in take.warnings)
    with pytest.raises(TakeError, match="no ARKit-named channels"):
        take_from_channels(["Fcl_MTH_A", "Key 1"], frames, values[:, :2], 24.0)


# ------------------------------------------------------------------ custom-rig solve

def _synthetic_rig(vertices=3000, seed=0):
    """52 random smooth 'ARKit' shapes; a custom rig of 6 keys that are sums of some of them."""
    rng = np.random.default_rng(seed)
    xy = rng.random((vertices, 2))
    expression = np.zeros((52, vertices, 3), np.float32)
    for k in range(52):
        center = rng.random(2)
        expression[k] = np.exp(-((xy - center) ** 2).sum(1) / 0.02)[:, None] * rng.normal(size=3)
    recipe = {"Fcl_MTH_A": ["jawOpen"], "Fcl_EYE_Close_L": ["eyeBlinkLeft"],
              "Fcl_EYE_Close_R": ["eyeBlinkRight"], "Fcl_MTH_Smile": ["mouthSmileLeft", "mouthSmileRight"],
              "Fcl_BRW_Up": ["browInnerUp"], "Fcl_MTH_O": ["mouthFunnel", "mouthPucker"]}
    rig = np.stack([sum(expression[arkit.ARKIT_INDEX[n]] for n in parts) for parts in recipe.values()])
    return expression, rig, recipe


@pytest.mark.parametrize("max_vertices,chunk", [(6000, None), (800, 40_000)])
def test_custom_rig_solve_recovers_known_weights(monkeypatch, max_vertices, chunk):
    """A performance that the custom keys can express exactly is recovered within 0.02,
    also when the solve subsamples vertices and runs in chained chunks of frames."""
    expression, rig, recipe = _synthetic_rig()
    if chunk:
        monkeypatch.setattr(custom_rig_solver, "CHUNK_VALUES", chunk)
    known = _weights(90, seed=3)[:, :len(recipe)]
    arkit_w = np.zeros((90, 52), np.float32)
    for k, parts in enumerate(recipe.values()):
        for name in parts:
            arkit_w[:, arkit.ARKIT_INDEX[name]] = known[:, k]
    solver = custom_rig_solver.CustomRigSolver(expression, rig, max_vertices=max_vertices)
    assert solver.vertices.size <= max_vertices
    solved = solver.solve(arkit_w)
    assert solved.shape == known.shape
    assert np.abs(solved - known).max() < 0.02
    smooth = solver.solve(arkit_w, smooth=0.05)
    assert np.abs(smooth - known).max() < 0.05


# ------------------------------------------------------------------ animated meshes

def test_rigid_align_undoes_head_motion():
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(500, 3))
    angle = 0.3
    rot = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    moved = ref @ rot.T + [0.5, -2.0, 1.0]
    moved[:40] += rng.normal(scale=0.3, size=(40, 3))   # a 'jaw' that does not move rigidly
    aligned = rigid_align(moved, ref)
    np.testing.assert_allclose(aligned[40:], ref[40:], atol=1e-3)


def _kabsch_reference(p, q, passes):
    """The robust fit written out plainly, one frame, (N,3) rows: what rigid_fit_batch computes."""
    w = np.ones(len(p))
    for done in range(passes):
        wn = w / w.sum()
        cp, cq = wn @ p, wn @ q
        u, _s, vt = np.linalg.svd((p - cp).T @ ((q - cq) * wn[:, None]))
        d = np.sign(np.linalg.det(vt.T @ u.T))
        rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
        residual = np.linalg.norm((p - cp) @ rot.T + cq - q, axis=1)
        w = 1.0 / (1.0 + (residual / (2.0 * (np.median(residual) + 1e-12))) ** 2)
    return rot, cp, cq


def test_batched_rigid_fit_equals_the_plain_one():
    """rigid_fit_batch works coordinates-first and skips q's centring (sum wn (p - cp) = 0):
    the same motion as the textbook fit, far from the origin and with a non-rigid part."""
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(300, 3)) + [0.0, 4.0, 170.0]
    frames = []
    for angle in (0.0, 0.2, -0.5, 3.0):
        c, s_ = np.cos(angle), np.sin(angle)
        moved = (ref - ref.mean(0)) @ np.array([[c, 0, s_], [0, 1, 0], [-s_, 0, c]]).T + [1.0, -2.0, 150.0]
        moved += rng.normal(scale=1e-3, size=moved.shape)   # a scanned surface is never exactly rigid
        moved[:30] += rng.normal(scale=0.5, size=(30, 3))
        frames.append(moved)
    for passes in (1, 4):
        rot, cp, cq = rigid_fit_batch(np.stack(frames), ref, passes)
        for i, frame in enumerate(frames):
            want_rot, want_cp, want_cq = _kabsch_reference(frame, ref, passes)
            np.testing.assert_allclose(rot[i], want_rot, atol=1e-9)
            np.testing.assert_allclose((frame - cp[i]) @ rot[i].T + cq[i],
                                       (frame - want_cp) @ want_rot.T + want_cq, atol=1e-9)


@pytest.fixture(scope="module")
def facecap_sequence(facecap_path):
    with np.load(facecap_path) as d:
        neutral = to_blender_frame(d["neutral"]) * 0.01
        deltas = to_blender_frame(d["deltas"]) * 0.01
        names = [arkit.normalize_name(str(n)) for n in d["names"]]
        weights = d["anim_weights"]
        faces = d["faces"]
    return neutral, faces, deltas, weights[:, names.index("jawOpen")], weights


def test_encoder_reads_the_jaw_of_any_mesh(facecap_sequence):
    """Encoded jawOpen is high where the performer's jaw is open, low where it is closed,
    and a rigid head motion on top changes the codes little."""
    neutral, faces, deltas, jaw, weights = facecap_sequence
    open_frames = np.flatnonzero(jaw > 0.8)[::12]
    closed_frames = np.flatnonzero(jaw < 0.05)[::12]
    encoder = MeshSequenceEncoder(neutral, faces, provider="CPU")
    assert encoder.facing_ok

    def encode(frames, motion=None):
        out = []
        for f in frames:
            verts = neutral + np.tensordot(weights[f], deltas, axes=1)
            if motion is not None:
                verts = verts @ motion.T + [0.02, -0.01, 0.03]
            out.append(encoder.encode(verts))
        return np.array(out)

    opened, closed = encode(open_frames)[:, JAW], encode(closed_frames)[:, JAW]
    assert opened.min() > closed.max() + 0.2
    yaw = 0.25
    motion = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    moved = encode(open_frames, motion)
    assert np.abs(moved - encode(open_frames)).max() < 0.1
    with pytest.raises(TakeError, match="keep its topology"):
        encoder.encode(neutral[:-5])


def test_batched_encoding_equals_frame_by_frame(facecap_sequence):
    """encode_all prepares frames in batches (one batched rigid fit, feeds cast once): the
    same codes as one frame at a time, whatever the batch size, in order."""
    neutral, faces, deltas, _jaw, weights = facecap_sequence
    encoder = MeshSequenceEncoder(neutral, faces, provider="CPU")
    yaw = np.linspace(0, 0.2, 11)
    frames = [(neutral + np.tensordot(weights[f], deltas, axes=1)) @ np.array(
        [[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]).T for f, a in zip(range(100, 111), yaw)]
    one_by_one = np.array([encoder.encode(f) for f in frames])
    done = []
    batched = encoder.encode_all(iter(frames), progress=done.append, batch=4)
    np.testing.assert_allclose(batched, one_by_one, atol=1e-5)
    assert done == [4, 8, 11]
    assert encoder.encode_all(iter([])).shape == (0, 52)

    # The frame-by-frame reference, written out: every skin vertex aligned, carried to the
    # rig's proxy, then to the encoder's smaller proxy, one network run per frame. The
    # encoder reads only the vertices it needs and runs the frames together: the same codes.
    head = encoder.head
    small, rows = encoder_proxy(head.prepared)
    assert head.prepared.n > ENCODER_MAX_VERTS >= small.n == len(rows), "the facecap head is simplified"
    np.testing.assert_array_equal(small.verts, head.prepared.verts[rows])
    ops = features.expression_feeds(small, small.verts)
    skin = head.verts_world[head.skin]
    for frame, got in zip(frames, batched):
        aligned = rigid_align(frame[head.skin], skin)
        expressed = head.prepared.verts + head.norm.apply_vectors(aligned - skin)[head.nearest_skin()]
        feeds = {**features.encoder_feeds(ops), "features": features.expression_features(small, expressed[rows])[None]}
        code = inference.run(encoder.model, feeds, "CPU")["code"][0]
        want = np.clip(arkit.ict_to_arkit_matrix() @ code[:len(arkit.ICT_53)], 0, 1)
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_proxy_displacements_compose_the_fit_and_the_canonical_frame(facecap_sequence):
    """The fit and the canonical frame's turn and scale composed into one product a frame:
    the displacement that aligning, differencing and normalizing give, turned head or not,
    stabilized or not."""
    import dataclasses

    neutral, faces, deltas, _jaw, weights = facecap_sequence
    yaw = 0.3
    motion = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    frames = np.stack([(neutral + np.tensordot(weights[f], deltas, axes=1)) @ motion.T + [0.1, 0.0, 0.2]
                       for f in (40, 90, 200)])
    pitch = 0.2
    turned = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    for stabilize in (True, False):
        encoder = MeshSequenceEncoder(neutral, faces, provider="CPU", stabilize=stabilize)
        for rotation in (None, turned):
            encoder.head.norm = dataclasses.replace(encoder.head.norm, rotation=rotation)
            used = frames[:, encoder._used].astype(np.float64)
            if stabilize:
                rot, cp, cq = rigid_fit_batch(frames[:, encoder._fit], encoder._fit_reference)
                used = (used - cp[:, None]) @ np.swapaxes(rot, 1, 2) + cq[:, None]
            want = encoder.head.norm.apply_vectors(used - encoder._used_neutral)[:, encoder._spread]
            np.testing.assert_allclose(encoder.proxy_displacements(frames), want, atol=1e-6)


def test_encoder_operators_prearranged_once(facecap_sequence):
    """encoder_feeds: the operators in the form the encoder graph's products use; the shipped
    encoder given the generic operators (completed by expression_codes) answers the same."""
    neutral, faces, deltas, _jaw, weights = facecap_sequence
    encoder = MeshSequenceEncoder(neutral, faces, provider="CPU")
    ops = encoder.prepared.operator_feeds()
    arranged = features.encoder_feeds(ops)
    np.testing.assert_array_equal(arranged["project"], (ops["evecs"] * ops["mass"][:, None]).T)
    for d, axis in enumerate("xyz"):
        np.testing.assert_array_equal(arranged[f"grad_{axis}"], ops["grad_evecs"][:, :, d])
        assert arranged[f"grad_{axis}"].flags.c_contiguous and arranged[f"grad_{axis}"].dtype == np.float32
    batch = features.expression_features(encoder.prepared, encoder.expressed_proxy(
        neutral + np.tensordot(weights[100], deltas, axes=1)))[None]
    np.testing.assert_array_equal(expression_codes(encoder.model, batch, ops, "CPU"),
                                  expression_codes(encoder.model, batch, {**ops, **arranged}, "CPU"))


def _code_model(path, batched: bool):
    """An encoder-shaped fixture: code = mean of the features over the vertices, with or
    without the leading batch axis."""
    names = ["mass", "evals", "evecs", "grad_evecs"]
    feature_shape = ["b", "n", 9] if batched else ["n", 9]
    inputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, feature_shape)]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in names]
    graph = helper.make_graph([helper.make_node("ReduceMean", ["features"], ["code"], axes=[1 if batched else 0],
                                                keepdims=0)], "code", inputs,
                              [helper.make_tensor_value_info("code", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_encoders_with_and_without_a_batch_axis_give_the_same_codes(tmp_path):
    """An encoder exported before the batch axis (features (N,9)) still runs, frame by frame."""
    rng = np.random.default_rng(0)
    batch = rng.normal(size=(5, 40, 9)).astype(np.float32)
    ops = {"mass": np.ones(40), "evals": np.ones(4), "evecs": np.ones((40, 4)), "grad_evecs": np.ones((40, 4, 3))}
    for batched in (True, False):
        codes = expression_codes(_code_model(tmp_path / f"{batched}.onnx", batched), batch, ops, "CPU")
        np.testing.assert_allclose(codes, batch.mean(axis=1), rtol=1e-5, atol=1e-6)
    # Runs sized to the cache: several frames of a small mesh, one of a huge one, never zero.
    assert frames_per_run(40) > 5 and frames_per_run(1_000_000) == 1
    assert frames_per_run(1919) >= 1


# ------------------------------------------------------------------ files and the demo take

def test_take_files_by_type_and_size(tmp_path, monkeypatch):
    with pytest.raises(TakeError, match="unsupported take file type '.mov'"):
        take_files.take_kind(tmp_path / "take.mov")
    with pytest.raises(TakeError, match="no such file"):
        take_files.read_text_take(tmp_path / "missing.csv")
    big = tmp_path / "big.csv"
    big.write_bytes(b"0" * 5000)
    monkeypatch.setattr(take_files, "MAX_TAKE_BYTES", 4096)
    with pytest.raises(TakeError, match="too large"):
        take_files.read_text_take(big)


def test_demo_take_never_closes_lips_past_the_jaw():
    """ARKit's mouthClose closes the lips while the jaw is open: at equal weights they meet.
    More mouthClose than jawOpen drives the lower lip up through the upper one on any ARKit
    rig (the demo's MM once had mouthClose 0.3 and no jaw: a light line between the lips)."""
    w = demo_performance.demo_take().to_arkit52()
    close, jaw = w[:, arkit.ARKIT_INDEX["mouthClose"]], w[:, arkit.ARKIT_INDEX["jawOpen"]]
    assert close.max() > 0.2
    assert (close <= jaw + 1e-6).all(), f"mouthClose exceeds jawOpen by {float((close - jaw).max()):.2f}"


def test_demo_take_poses_peak_where_labelled():
    take = demo_performance.demo_take()
    assert take.names == list(arkit.ARKIT_52) and take.head_rotation is not None
    w = take.to_arkit52()
    for frame, label in demo_performance.poses(first_frame=0):
        event = next((e for e in demo_performance.EVENTS if e[3] == label), None)
        if event is None:
            assert label == "neutral" and w[frame].max() == 0
            continue
        for name, peak in event[2].items():
            assert w[frame, arkit.ARKIT_INDEX[name]] == pytest.approx(peak, abs=0.02)
