# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive in real Blender: import takes, retarget onto other meshes, solve custom rigs, bake."""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.takes import Take, write_facecap_txt, write_llf_csv
from bl_ext.user_default.facsimile.core.takes import files as take_files
from bl_ext.user_default.facsimile import animation, take_object
from bl_ext.user_default.facsimile.drive import bake, fold, sources
from blender_helpers import (evaluated_coords, run_then_undo, facecap_performer, key_deltas, monkey_head,
                             scene_state, select_only)

JAW = arkit.ARKIT_INDEX["jawOpen"]


def _take(frames=48, fps=24.0, seed=0, rotations=True) -> Take:
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    w = np.clip(0.5 + 0.6 * np.sin(t[:, None] * (1 + 3 * rng.random(52)) + 6 * rng.random(52)), 0, 1)
    head = np.stack([0.1 * np.sin(t), 0.2 * np.sin(0.5 * t), 0.05 * t], 1) if rotations else None
    return Take(times=t, names=list(arkit.ARKIT_52), weights=w, head_rotation=head,
                eye_rotation_left=head[:, :2] if rotations else None, fps=fps, source="test")


def _csv(tmp_path, take=None, name="take.csv"):
    path = tmp_path / name
    write_llf_csv(path, take or _take())
    return path


def _rigged_monkey(name="Monkey", location=(0, 0, 0)):
    obj = monkey_head(name, location)
    # All 52 keys, as a pipeline that bakes every channel asks (Suzanne has no tongue, so
    # tongueOut would be left out by default).
    assert bpy.ops.facsimile.rig(all_keys=True) == {"FINISHED"}
    return obj


def _fcurve_values(key, name):
    fc = next(fc for fc in animation.assigned_fcurves(key) if fc.data_path == animation.key_path(name))
    co = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return fc, co[0::2], co[1::2]


# ------------------------------------------------------------------ sources

def test_import_live_link_face_csv(addon, tmp_path):
    take = _take()
    bpy.context.scene.render.fps = 24
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path, take)), start_frame=5) == {"FINISHED"}
    scene = bpy.context.scene
    obj = scene.facsimile_drive.source
    assert take_object.is_take_object(obj) and obj.name == "Take take"
    assert (scene.frame_start, scene.frame_end) == (5, 5 + 47)
    assert len(scene.facsimile_drive.channels) == 52
    placed = sources.read_source(obj, scene)
    assert placed.first_frame == 5 and sorted(placed.take.names) == sorted(arkit.ARKIT_52)
    # CSV values carry 10 decimals; the take object keys them on whole frames.
    np.testing.assert_allclose(placed.take.to_arkit52(), take.to_arkit52(), atol=1e-5)
    scene.frame_set(5 + 10)
    assert obj["jawOpen"] == pytest.approx(float(take.weights[10, JAW]), abs=1e-5)
    # Head rotation: (pitch, yaw, roll) -> Blender (X, -Y, Z) Euler, eyes as children.
    np.testing.assert_allclose(np.array(obj.rotation_euler),
                               [take.head_rotation[10, 0], -take.head_rotation[10, 2],
                                take.head_rotation[10, 1]], atol=1e-5)
    assert set(take_object.eye_objects(obj)) == {"L", "R"}   # the CSV always has both eyes


def test_import_take_timing_and_neutral(addon, tmp_path):
    """Scene rate from the take (every sample a frame, 29.97 as 30/1.001); neutral
    calibration on the take's first samples, as for video; a failure changes no rate."""
    from bl_ext.user_default.facsimile.drive import ops as drive_ops

    assert drive_ops.scene_rate(29.97) == (30, 1.001) and drive_ops.scene_rate(60.0) == (60, 1.0)
    take = _take(frames=60, fps=60.0)
    rest = np.full(52, 0.3)
    take.weights[:10] = rest     # the actor holds a neutral face for 10 samples
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path, take)), scene_rate=True,
                                         use_neutral=True, neutral_first=1, neutral_last=10) == {"FINISHED"}
    assert (scene.render.fps, scene.render.fps_base) == (60, 1.0)
    assert scene.frame_end - scene.frame_start + 1 == 60          # not resampled to 24
    placed = sources.read_source(scene.facsimile_drive.source, scene)
    got = placed.take.to_arkit52()
    np.testing.assert_allclose(got[:10], 0.0, atol=1e-5)          # the rest pose is 0
    expected = np.clip((take.to_arkit52()[30] - 0.3) / 0.7, 0, 1)
    np.testing.assert_allclose(got[30], expected, atol=1e-4)
    scene.render.fps = 24
    with pytest.raises(RuntimeError, match="neutral range"):
        bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path, take)), scene_rate=True,
                                      use_neutral=True, neutral_first=100, neutral_last=110)
    assert scene.render.fps == 24


def test_import_face_cap_txt_and_rotation_link(addon, tmp_path):
    path = tmp_path / "take.txt"
    write_facecap_txt(path, _take(rotations=True))
    assert bpy.ops.facsimile.import_take(filepath=str(path)) == {"FINISHED"}
    take_obj = bpy.context.scene.facsimile_drive.source
    head = monkey_head()
    assert bpy.ops.facsimile.link_rotation(part="HEAD") == {"FINISHED"}
    constraint = head.constraints["Facsimile Head"]
    assert constraint.type == "COPY_ROTATION" and constraint.target == take_obj
    assert bpy.ops.facsimile.link_rotation(part="EYE_R") == {"FINISHED"}
    assert head.constraints["Facsimile Right eye"].target == take_object.eye_objects(take_obj)["R"]
    # A take without rotation columns has nothing to link.
    bare = tmp_path / "bare.csv"
    bare.write_text("Timecode,JawOpen\n00:00:00:01.000,0.5\n00:00:00:03.000,0.7\n")
    assert bpy.ops.facsimile.import_take(filepath=str(bare)) == {"FINISHED"}
    select_only(head)
    with pytest.raises(RuntimeError, match="the take has no head rotation"):
        bpy.ops.facsimile.link_rotation(part="HEAD")


MALFORMED = {
    "missing_columns": ("Foo,Bar\n1,2\n", "missing column 'Timecode'"),
    "nan": ("Timecode,JawOpen\n" + "".join(f"00:00:00:{i:02d}.000,nan\n" for i in range(30)),
            "no values|empty on lines"),
    "bad_timecode": ("Timecode,JawOpen\n00:00:00:01.000,0.5\n12:99:aa,0.5\n", "bad timecode"),
    "empty": ("", "empty"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not a text file"),
}


@pytest.mark.parametrize("case", [*MALFORMED, "huge"])
def test_malformed_takes_report_and_change_nothing(addon, tmp_path, monkeypatch, case):
    monkey_head()
    bpy.context.scene.frame_end = 77
    before = scene_state()
    path = tmp_path / f"{case}.csv"
    if case == "huge":
        path.write_text("Timecode,JawOpen\n" + "00:00:00:01.000,0.5\n" * 2000)
        monkeypatch.setattr(take_files, "MAX_TAKE_BYTES", 10_000)
        message = "too large"
    else:
        text, message = MALFORMED[case]
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(RuntimeError, match=message):
        bpy.ops.facsimile.import_take(filepath=str(path))
    assert scene_state() == before


def test_unsupported_and_missing_files(addon, tmp_path):
    before = scene_state()
    with pytest.raises(RuntimeError, match="unsupported take file type"):
        bpy.ops.facsimile.import_take(filepath=str(tmp_path / "take.mp4"))
    with pytest.raises(RuntimeError, match="no such file"):
        bpy.ops.facsimile.import_take(filepath=str(tmp_path / "gone.fbx"))
    assert scene_state() == before


def test_gltf_take_is_read_and_the_import_removed(addon, tmp_path, facecap_path):
    """A glTF with ARKit morph animation (here the facecap performer, exported) is a take;
    what the importer made is gone afterwards, and a broken file changes nothing."""
    performer, weights = facecap_performer(facecap_path)
    select_only(performer)
    path = tmp_path / "performer.glb"
    bpy.ops.export_scene.gltf(filepath=str(path), export_format="GLB", use_selection=True,
                              export_animations=True, export_morph=True, export_force_sampling=False)
    bpy.data.objects.remove(performer)
    other = monkey_head()
    before = {o.name for o in bpy.data.objects}
    assert bpy.ops.facsimile.import_take(filepath=str(path), start_frame=1) == {"FINISHED"}
    take_obj = bpy.context.scene.facsimile_drive.source
    assert {o.name for o in bpy.data.objects} - before == {take_obj.name} | {
        c.name for c in take_obj.children}
    assert other.select_get() and bpy.context.view_layer.objects.active == other
    placed = sources.read_source(take_obj, bpy.context.scene)
    np.testing.assert_allclose(placed.take.to_arkit52()[:, JAW], weights[:, JAW], atol=2e-3)
    broken = tmp_path / "broken.glb"
    broken.write_bytes(b"glTF" + b"\0" * 64)
    state = scene_state()
    with pytest.raises(RuntimeError, match="cannot import the file"):
        bpy.ops.facsimile.import_take(filepath=str(broken))
    assert scene_state() == state


# ------------------------------------------------------------------ facecap onto another mesh

def _chin(obj):
    """Chin-ish vertices of a head facing -Y (front, central, low)."""
    v = np.array([vert.co for vert in obj.data.vertices])
    front = v[:, 1] < np.percentile(v[:, 1], 40)
    central = np.abs(v[:, 0]) < 0.2 * np.ptp(v[:, 0])
    cand = np.flatnonzero(front & central)
    return cand[v[cand, 2] < np.percentile(v[cand, 2], 12)]


def _jaw_open_frames(weights):
    jaw = weights[:, JAW]
    return np.flatnonzero(jaw > 0.9)[::15] + 1, np.flatnonzero(jaw < 0.05)[::15] + 1


def _assert_jaw_follows(target, weights):
    """The target's chin is lower on the frames where the source's jaw is open."""
    chin = _chin(target)
    high, low = _jaw_open_frames(weights)
    chin_high = [evaluated_coords(target, int(f))[chin, 2].mean() for f in high]
    chin_low = [evaluated_coords(target, int(f))[chin, 2].mean() for f in low]
    assert max(chin_high) < min(chin_low), "the chin must be lower where the jaw is open"


def test_facecap_performance_retargeted_opens_the_jaw(addon, facecap_path):
    performer, weights = facecap_performer(facecap_path)
    target = _rigged_monkey(location=(1.0, 0, 0))
    select_only(performer)
    assert bpy.ops.facsimile.set_source() == {"FINISHED"}
    select_only(target)
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    _fc, frames, values = _fcurve_values(target.data.shape_keys, "jawOpen")
    assert frames[0] == 1 and frames[-1] == len(weights)
    np.testing.assert_allclose(values, weights[:, JAW], atol=1e-6)   # identity map, direct
    _assert_jaw_follows(target, weights)


def test_animated_mesh_encoded_then_retargeted(addon, facecap_path):
    """Any animated mesh: the facecap head read frame by frame by the expression encoder."""
    performer, weights = facecap_performer(facecap_path, numbered=True)   # names mean nothing
    select_only(performer)
    with pytest.raises(RuntimeError, match="no ARKit-named channels"):
        bpy.ops.facsimile.set_source()
    high, low = _jaw_open_frames(weights)
    first, last = int(min(high.min(), low.min())), int(max(high.max(), low.max()))
    select_only(performer)
    assert bpy.ops.facsimile.encode_mesh(frame_start=first, frame_end=last) == {"FINISHED"}
    take_obj = bpy.context.scene.facsimile_drive.source
    assert take_object.is_take_object(take_obj)
    encoded = sources.read_source(take_obj, bpy.context.scene)
    assert encoded.first_frame == first and encoded.take.n_frames == last - first + 1
    jaw = encoded.take.to_arkit52()[:, JAW]
    assert jaw[high - first].min() > jaw[low - first].max() + 0.2
    target = _rigged_monkey(location=(1.0, 0, 0))
    select_only(target)
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    _assert_jaw_follows(target, weights)


# ------------------------------------------------------------------ custom rigs

CUSTOM = {"Fcl_MTH_A": ("jawOpen",), "Fcl_EYE_Close_L": ("eyeBlinkLeft",),
          "Fcl_EYE_Close_R": ("eyeBlinkRight",), "Fcl_MTH_Joy": ("mouthSmileLeft", "mouthSmileRight"),
          "Fcl_BRW_Surprised": ("browInnerUp",), "Fcl_MTH_U": ("mouthFunnel", "mouthPucker")}


def test_custom_rig_solve_recovers_known_weights(addon, tmp_path):
    """A mesh with its own keys (VRoid-style names), each a combination of what the network
    predicts on it: a take those keys can express is recovered within 0.02."""
    obj = monkey_head()
    assert bpy.ops.facsimile.generate_shapes(all_keys=True) == {"FINISHED"}
    deltas = {name: key_deltas(obj, name) for name in arkit.ARKIT_52}
    base = np.array([v.co for v in obj.data.vertices], np.float32)
    for kb in list(obj.data.shape_keys.key_blocks)[1:]:
        obj.shape_key_remove(kb)
    for name, parts in CUSTOM.items():
        kb = obj.shape_key_add(name=name, from_mix=False)
        kb.points.foreach_set("co", (base + sum(deltas[p] for p in parts)).ravel())
        kb.value = 0.0
    t = np.arange(40) / 24.0
    known = np.clip(0.5 + 0.6 * np.sin(t[:, None] * np.arange(1, 7) + np.arange(6)), 0, 1)
    w = np.zeros((40, 52), np.float32)
    for k, parts in enumerate(CUSTOM.values()):
        for p in parts:
            w[:, arkit.ARKIT_INDEX[p]] = known[:, k]
    take = Take(times=t, names=list(arkit.ARKIT_52), weights=w, fps=24.0, source="known")
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path, take))) == {"FINISHED"}
    settings = bpy.context.scene.facsimile_drive
    settings.solve_smooth = 0.0
    select_only(obj)
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    for k, name in enumerate(CUSTOM):
        _fc, _frames, values = _fcurve_values(obj.data.shape_keys, name)
        assert np.abs(values - known[:, k]).max() < 0.02, name


def test_mesh_without_keys_is_refused(addon, tmp_path):
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path))) == {"FINISHED"}
    obj = monkey_head()
    before = scene_state()
    with pytest.raises(RuntimeError, match="has no shape keys: rig it first"):
        bpy.ops.facsimile.bake()
    assert scene_state() == before and obj.data.shape_keys is None


# ------------------------------------------------------------------ bake

def test_bake_many_targets_step_offset_and_slots(addon, tmp_path):
    take = _take(frames=30)
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path, take)), start_frame=1) == {"FINISHED"}
    a = _rigged_monkey("A")
    b = _rigged_monkey("B", location=(2, 0, 0))
    select_only(a, b)
    assert bpy.ops.facsimile.bake(frame_step=4, time_offset=10.0) == {"FINISHED"}
    for obj in (a, b):
        key = obj.data.shape_keys
        anim = key.animation_data
        assert anim.action is not None
        if bpy.app.version >= (4, 4, 0):           # slotted actions
            assert anim.action_slot is not None and anim.action_slot.target_id_type == "KEY"
        curves = animation.assigned_fcurves(key)
        assert len(curves) == 52 and all(fc.group.name == "Facsimile" for fc in curves)
        fc, frames, values = _fcurve_values(key, "jawOpen")
        np.testing.assert_array_equal(frames, np.array([1, 5, 9, 13, 17, 21, 25, 29, 30]) + 10)
        np.testing.assert_allclose(values, take.weights[frames.astype(int) - 11, JAW], atol=1e-5)
        assert all(kp.interpolation == "LINEAR" for kp in fc.keyframe_points)


def test_rebake_replaces_only_what_facsimile_baked(addon, tmp_path):
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path))) == {"FINISHED"}
    obj = _rigged_monkey()
    key = obj.data.shape_keys
    mine = obj.shape_key_add(name="myCorrective", from_mix=False)
    mine.value = 0.3
    mine.keyframe_insert("value", frame=7)
    key.key_blocks["jawOpen"].value = 0.9
    key.key_blocks["jawOpen"].keyframe_insert("value", frame=3)   # the artist's own jaw key
    select_only(obj)
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    paths = [fc.data_path for fc in animation.assigned_fcurves(key)]
    assert paths.count(animation.key_path("jawOpen")) == 1
    _fc, frames, values = _fcurve_values(key, "jawOpen")
    assert list(frames) == [3] and values[0] == pytest.approx(0.9)   # kept, not overwritten
    settings = bpy.context.scene.facsimile_drive
    settings.channels["eyeBlinkLeft"].enabled = False
    assert bpy.ops.facsimile.bake(frame_step=2) == {"FINISHED"}       # re-bake: ours replaced
    curves = animation.assigned_fcurves(key)
    assert len(curves) == 53   # 51 baked + jawOpen (artist) + myCorrective (artist)
    _fc, _f, blink = _fcurve_values(key, "eyeBlinkLeft")
    assert (blink == 0).all()
    _fc, frames, values = _fcurve_values(key, "myCorrective")
    assert list(frames) == [7] and values[0] == pytest.approx(0.3)
    assert bpy.ops.facsimile.bake(existing="REPLACE") == {"FINISHED"}
    _fc, frames, _v = _fcurve_values(key, "jawOpen")
    assert len(frames) == 48
    assert bpy.ops.facsimile.clear_bake() == {"FINISHED"}
    assert [fc.data_path for fc in animation.assigned_fcurves(key)] == [animation.key_path("myCorrective")]


def _curves_snapshot(key):
    out = {}
    for fc in animation.assigned_fcurves(key):
        co = np.empty(2 * len(fc.keyframe_points), np.float32)
        fc.keyframe_points.foreach_get("co", co)
        out[fc.data_path] = (fc.group.name if fc.group else "", co.tobytes())
    return out


def test_failed_bake_rolls_back_every_target(addon, tmp_path, monkeypatch):
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path))) == {"FINISHED"}
    a, b = _rigged_monkey("A"), _rigged_monkey("B", location=(2, 0, 0))
    select_only(a)
    assert bpy.ops.facsimile.bake(frame_step=3) == {"FINISHED"}      # a has Facsimile curves
    before = (_curves_snapshot(a.data.shape_keys), scene_state())
    calls = {"n": 0}
    real = animation.set_keys

    def failing(*args):
        calls["n"] += 1
        if calls["n"] == 80:                  # in the middle of the second target
            raise MemoryError("simulated failure")
        return real(*args)

    monkeypatch.setattr(animation, "set_keys", failing)
    select_only(a, b)
    with pytest.raises(RuntimeError, match="nothing was changed.*simulated failure"):
        bpy.ops.facsimile.bake()
    assert (_curves_snapshot(a.data.shape_keys), scene_state()) == before
    assert b.data.shape_keys.animation_data is None


def test_one_undo_restores_a_bake(addon, tmp_path):
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path))) == {"FINISHED"}
    obj = _rigged_monkey()
    name = obj.name
    assert {"REGISTER", "UNDO"} <= bpy.types.FACSIMILE_OT_bake.bl_options
    select_only(obj)
    run_then_undo(bpy.ops.facsimile.bake, "Bake")
    assert bpy.data.objects[name].data.shape_keys.animation_data is None


def test_key_frames_always_end_on_the_last_frame():
    np.testing.assert_array_equal(bake.key_frames(1, 10, 4), [1, 5, 9, 10])
    np.testing.assert_array_equal(bake.key_frames(3, 3, 2), [3])
    with pytest.raises(ValueError):
        bake.key_frames(5, 4, 1)


# ------------------------------------------------------------------ live preview

def test_live_preview_follows_frames_and_map(addon, tmp_path):
    take = _take()
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path, take)), start_frame=1) == {"FINISHED"}
    obj = _rigged_monkey()
    kb = obj.data.shape_keys.key_blocks
    kb["mouthClose"].value = 0.25               # a value the preview must give back
    select_only(obj)
    assert bpy.ops.facsimile.preview(enable=True) == {"FINISHED"}
    scene = bpy.context.scene
    assert scene.facsimile_drive.preview
    rest = evaluated_coords(obj, 1)
    for frame in (1, 12, 30):
        scene.frame_set(frame)
        assert kb["jawOpen"].value == pytest.approx(float(take.weights[frame - 1, JAW]), abs=1e-5)
    moved = evaluated_coords(obj, 30)
    assert np.abs(moved - rest).max() > 0, "the evaluated mesh must follow the preview"
    # Bad input while a preview runs: reported, and the running preview goes on.
    plain = monkey_head("Plain", location=(3, 0, 0))
    select_only(plain)
    with pytest.raises(RuntimeError, match="has no shape keys"):
        bpy.ops.facsimile.preview(enable=True)
    assert scene.facsimile_drive.preview and scene.facsimile_drive.preview_targets[0].object == obj
    # Tweaking the map updates the current frame at once.
    scene.facsimile_drive.channels["jawOpen"].gain = 0.5
    assert kb["jawOpen"].value == pytest.approx(0.5 * float(take.weights[29, JAW]), abs=1e-5)
    scene.facsimile_drive.channels["jawOpen"].enabled = False
    scene.frame_set(12)
    assert kb["jawOpen"].value == 0.0
    assert bpy.ops.facsimile.preview(enable=False) == {"FINISHED"}
    assert kb["mouthClose"].value == pytest.approx(0.25) and kb["jawOpen"].value == 0.0
    assert fold.PREVIEW_KEY not in kb and not any(k.mute for k in kb)
    scene.frame_set(20)
    assert kb["jawOpen"].value == 0.0


def test_folded_preview_shows_exactly_what_the_bake_plays(addon, tmp_path):
    """The preview folds the 52 keys into one for speed; the mesh must not see a difference."""
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path)), start_frame=1) == {"FINISHED"}
    obj = _rigged_monkey()
    obj.data.shape_keys.key_blocks["jawOpen"].slider_max = 0.4   # Blender clamps: so must we
    select_only(obj)
    assert bpy.ops.facsimile.preview(enable=True) == {"FINISHED"}
    blocks = obj.data.shape_keys.key_blocks
    assert fold.PREVIEW_KEY in blocks and blocks["jawOpen"].mute
    previewed = {f: evaluated_coords(obj, f) for f in (3, 17, 40)}
    assert bpy.ops.facsimile.preview(enable=False) == {"FINISHED"}
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    for frame, coords in previewed.items():
        np.testing.assert_allclose(coords, evaluated_coords(obj, frame), atol=1e-5)


def test_file_saved_during_preview_opens_unfolded(addon, tmp_path):
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path))) == {"FINISHED"}
    obj = _rigged_monkey()
    name = obj.name
    select_only(obj)
    assert bpy.ops.facsimile.preview(enable=True) == {"FINISHED"}
    path = tmp_path / "mid_preview.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    blocks = bpy.data.objects[name].data.shape_keys.key_blocks
    assert fold.PREVIEW_KEY not in blocks and not any(k.mute for k in blocks)
    assert not bpy.context.scene.facsimile_drive.preview


def test_retarget_map_is_saved_in_the_blend(addon, tmp_path):
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path))) == {"FINISHED"}
    settings = bpy.context.scene.facsimile_drive
    settings.channels["browInnerUp"].gain = 1.7
    settings.channels["jawOpen"].smoothing = 2.5
    path = tmp_path / "map.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True)
    bpy.ops.wm.open_mainfile(filepath=str(path))
    settings = bpy.context.scene.facsimile_drive
    assert settings.channels["browInnerUp"].gain == pytest.approx(1.7)
    assert settings.channels["jawOpen"].smoothing == pytest.approx(2.5)
    assert take_object.is_take_object(settings.source)


def test_map_presets_and_reset(addon, tmp_path):
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path))) == {"FINISHED"}
    settings = bpy.context.scene.facsimile_drive
    settings.channels["cheekPuff"].gain = 0.4
    settings.channels["tongueOut"].enabled = False
    preset = tmp_path / "map.json"
    assert bpy.ops.facsimile.save_map(filepath=str(preset)) == {"FINISHED"}
    assert bpy.ops.facsimile.reset_map() == {"FINISHED"}
    assert settings.channels["cheekPuff"].gain == 1.0 and settings.channels["tongueOut"].enabled
    assert bpy.ops.facsimile.load_map(filepath=str(preset)) == {"FINISHED"}
    assert settings.channels["cheekPuff"].gain == pytest.approx(0.4)
    assert not settings.channels["tongueOut"].enabled
    preset.write_text('{"format": "facsimile-retarget-map", "channels": {"jawOpn": {"gain": 2}}}')
    with pytest.raises(RuntimeError, match="unknown channel 'jawOpn'"):
        bpy.ops.facsimile.load_map(filepath=str(preset))
    assert settings.channels["cheekPuff"].gain == pytest.approx(0.4)


def test_head_rotation_drives_a_bone(addon, tmp_path):
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path))) == {"FINISHED"}
    take_obj = bpy.context.scene.facsimile_drive.source
    bpy.ops.object.armature_add()
    rig = bpy.context.object
    bpy.ops.object.mode_set(mode="POSE")
    rig.data.bones.active = rig.data.bones[0]
    assert bpy.ops.facsimile.link_rotation(part="HEAD") == {"FINISHED"}
    bpy.ops.object.mode_set(mode="OBJECT")
    constraint = rig.pose.bones[0].constraints["Facsimile Head"]
    assert constraint.target == take_obj and constraint.owner_space == "LOCAL"
    assert not rig.constraints


def test_bake_smoothing_smooths(addon, tmp_path):
    rng = np.random.default_rng(5)
    t = np.arange(60) / 24.0
    noisy = Take(times=t, names=["jawOpen"], weights=rng.random((60, 1)), fps=24.0, source="noise")
    assert bpy.ops.facsimile.import_take(filepath=str(_csv(tmp_path, noisy))) == {"FINISHED"}
    obj = _rigged_monkey()
    select_only(obj)
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    _fc, _f, raw = _fcurve_values(obj.data.shape_keys, "jawOpen")
    assert bpy.ops.facsimile.bake(smoothing=3.0) == {"FINISHED"}
    _fc, _f, smooth = _fcurve_values(obj.data.shape_keys, "jawOpen")
    assert np.abs(np.diff(smooth)).mean() < 0.3 * np.abs(np.diff(raw)).mean()
    assert abs(smooth.mean() - raw.mean()) < 0.05
