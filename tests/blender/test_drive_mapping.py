# SPDX-License-Identifier: GPL-3.0-or-later
"""The channel map in real Blender: keys of other names, bones, custom properties, Auto-Map,
presets (saved, loaded, shipped), preview and bake honouring it, NLA strips, undo."""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile import animation, map_presets
from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.takes import Take, write_llf_csv
from blender_helpers import run_cli, run_then_undo, scene_state, select_only

JAW = arkit.ARKIT_INDEX["jawOpen"]
CLOSE = arkit.ARKIT_INDEX["mouthClose"]
BLINK = arkit.ARKIT_INDEX["eyeBlinkLeft"]
VROID_KEYS = ("Fcl_EYE_Close_L", "Fcl_EYE_Close_R", "Fcl_EYE_Joy_L", "Fcl_EYE_Joy_R", "Fcl_EYE_Surprised",
              "Fcl_MTH_A", "Fcl_MTH_I", "Fcl_MTH_O", "Fcl_MTH_U", "Fcl_MTH_Fun", "Fcl_MTH_Sorrow",
              "Fcl_BRW_Sorrow", "Fcl_BRW_Surprised", "Fcl_BRW_Angry", "Fcl_HA_Hide")


def _take(frames=24, seed=1) -> Take:
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / 24.0
    w = np.clip(0.5 + 0.5 * np.sin(t[:, None] * (1 + 3 * rng.random(52)) + 6 * rng.random(52)), 0, 1)
    return Take(times=t, names=list(arkit.ARKIT_52), weights=w, fps=24.0, source="test")


def _import(tmp_path, start=1) -> Take:
    take = _take()
    path = tmp_path / "take.csv"
    write_llf_csv(path, take)
    bpy.context.scene.render.fps = 24
    assert bpy.ops.facsimile.import_take(filepath=str(path), start_frame=start) == {"FINISHED"}
    return take


def _keyed_mesh(name, keys):
    """A small mesh with shape keys of the given names (no rig, no network)."""
    bpy.ops.mesh.primitive_cube_add()
    obj = bpy.context.object
    obj.name = name
    obj.shape_key_add(name="Basis")
    for key in keys:
        kb = obj.shape_key_add(name=key, from_mix=False)
        kb.data[0].co.z += 0.5
        kb.value = 0.0
    return obj


def _armature(bone="jaw"):
    bpy.ops.object.armature_add()
    rig = bpy.context.object
    rig.name = "Rig"
    bpy.ops.object.mode_set(mode="EDIT")
    rig.data.edit_bones[0].name = bone
    bpy.ops.object.mode_set(mode="OBJECT")
    rig.pose.bones[bone].rotation_mode = "XYZ"
    return rig


def _curve(id_data, path, index=0, fcurves=None):
    curves = fcurves if fcurves is not None else animation.assigned_fcurves(id_data)
    fc = next(fc for fc in curves if fc.data_path == path and fc.array_index == index)
    co = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co[0::2], co[1::2]


def _set_target(name, kind, **fields):
    entry = bpy.context.scene.facsimile_drive.channels[name]
    entry.target = kind
    for field, value in fields.items():
        setattr(entry, f"target_{field}", value)
    return entry


def test_channel_to_a_key_of_another_name_preview_and_bake(addon, tmp_path):
    take = _import(tmp_path)
    face = _keyed_mesh("Face", ["jawOpen", "MouthOpen", "eyeBlinkLeft"])
    entry = _set_target("jawOpen", "KEY", key="MouthOpen")
    entry.gain = 0.5
    select_only(face)
    kb = face.data.shape_keys.key_blocks
    assert bpy.ops.facsimile.preview(enable=True) == {"FINISHED"}
    bpy.context.scene.frame_set(6)
    assert kb["MouthOpen"].value == pytest.approx(0.5 * take.weights[5, JAW], abs=1e-5)
    assert kb["jawOpen"].value == 0.0                      # its channel went elsewhere
    assert kb["eyeBlinkLeft"].value == pytest.approx(take.weights[5, BLINK], abs=1e-5)
    assert bpy.ops.facsimile.preview(enable=False) == {"FINISHED"}
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    key = face.data.shape_keys
    frames, values = _curve(key, animation.key_path("MouthOpen"))
    np.testing.assert_allclose(values, 0.5 * take.weights[:, JAW], atol=1e-5)
    paths = {fc.data_path for fc in animation.assigned_fcurves(key)}
    assert animation.key_path("jawOpen") not in paths


def test_channels_to_a_bone_rotation_and_a_custom_property(addon, tmp_path):
    take = _import(tmp_path)
    face = _keyed_mesh("Face", ["eyeBlinkLeft"])
    face["mouth_open"] = 0.25
    rig = _armature()
    _set_target("jawOpen", "PATH", object="Rig", path='pose.bones["jaw"].rotation_euler', index=0).gain = 0.4
    _set_target("mouthClose", "PATH", path='["mouth_open"]').gain = 2.0   # on each mesh driven; unclamped
    select_only(face)
    assert bpy.ops.facsimile.preview(enable=True) == {"FINISHED"}
    bpy.context.scene.frame_set(9)
    assert rig.pose.bones["jaw"].rotation_euler[0] == pytest.approx(0.4 * take.weights[8, JAW], abs=1e-5)
    assert face["mouth_open"] == pytest.approx(2.0 * take.weights[8, CLOSE], abs=1e-5)
    assert bpy.ops.facsimile.preview(enable=False) == {"FINISHED"}
    assert rig.pose.bones["jaw"].rotation_euler[0] == 0.0 and face["mouth_open"] == pytest.approx(0.25)

    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    frames, values = _curve(rig, 'pose.bones["jaw"].rotation_euler', 0)
    np.testing.assert_allclose(values, 0.4 * take.weights[:, JAW], atol=1e-5)
    _f, values = _curve(face, '["mouth_open"]')
    np.testing.assert_allclose(values, 2.0 * take.weights[:, CLOSE], atol=1e-5)
    assert all(fc.group.name == "Facsimile" for fc in animation.assigned_fcurves(rig))
    bpy.context.scene.frame_set(4)
    assert rig.pose.bones["jaw"].rotation_euler[0] == pytest.approx(0.4 * take.weights[3, JAW], abs=1e-5)
    select_only(face, rig)                     # Clear Baked Keys takes the bone's curves too
    assert bpy.ops.facsimile.clear_bake() == {"FINISHED"}
    assert not animation.assigned_fcurves(rig) and not animation.assigned_fcurves(face)
    # One undo takes a whole bake back, the bone's and the property's curves included.
    select_only(face)
    run_then_undo(bpy.ops.facsimile.bake, "Bake")
    assert not animation.assigned_fcurves(bpy.data.objects["Rig"])


def test_missing_keys_bones_and_objects_change_nothing(addon, tmp_path):
    _import(tmp_path)
    face = _keyed_mesh("Face", ["jawOpen"])
    _armature()
    select_only(face)
    before = scene_state()
    cases = [
        (dict(name="jawOpen", kind="KEY", key="Nope"), "has no shape key for 1 of the retarget map's targets"),
        (dict(name="jawOpen", kind="PATH", object="Rig", path='pose.bones["nojaw"].rotation_euler'),
         "has no pose.bones"),
        (dict(name="jawOpen", kind="PATH", object="Ghost", path='["x"]'), "there is no object 'Ghost'"),
        (dict(name="jawOpen", kind="PATH", object="Rig", path='pose.bones["jaw"].rotation_euler', index=5),
         "has no index 5"),
        (dict(name="jawOpen", kind="PATH", path='["not_there"]'), "no custom property"),
    ]
    for fields, message in cases:
        bpy.ops.facsimile.reset_map()
        _set_target(fields.pop("name"), fields.pop("kind"), **fields)
        with pytest.raises(RuntimeError, match=message) as err:
            bpy.ops.facsimile.bake()
        assert len(str(err.value).strip().splitlines()) == 1
        with pytest.raises(RuntimeError, match=message):
            bpy.ops.facsimile.preview(enable=True)
        assert scene_state() == before and face.data.shape_keys.animation_data is None
        assert not bpy.context.scene.facsimile_drive.preview


def test_auto_map_presets_round_trip_and_undo(addon, tmp_path):
    _import(tmp_path)
    face = _keyed_mesh("Face", ["AK_25_JawOpen", "EyeBlink_L.001", "Smile"])
    settings = bpy.context.scene.facsimile_drive
    select_only(face)
    assert bpy.ops.facsimile.auto_map() == {"FINISHED"}
    assert settings.map_object == face
    assert (settings.channels["jawOpen"].target, settings.channels["jawOpen"].target_key) == ("KEY", "AK_25_JawOpen")
    assert settings.channels["eyeBlinkLeft"].target_key == "EyeBlink_L.001"
    assert settings.channels["mouthSmileLeft"].target == "AUTO"
    settings.channels["jawOpen"].gain = 0.7
    _set_target("mouthClose", "PATH", path='["mouth_open"]', index=0)
    assert bpy.ops.facsimile.save_map_preset(name="Test Rig") == {"FINISHED"}
    saved = map_presets.user_folder() / "Test Rig.json"
    assert json.loads(saved.read_text())["channels"]["jawOpen"]["target"] == {"key": "AK_25_JawOpen"}
    with pytest.raises(RuntimeError, match="already"):
        bpy.ops.facsimile.save_map_preset(name="Test Rig")
    assert bpy.ops.facsimile.reset_map() == {"FINISHED"}
    assert settings.channels["jawOpen"].target == "AUTO" and settings.channels["jawOpen"].gain == 1.0
    assert bpy.ops.facsimile.load_map_preset(preset="Test Rig") == {"FINISHED"}
    assert settings.channels["jawOpen"].target_key == "AK_25_JawOpen"
    assert settings.channels["jawOpen"].gain == pytest.approx(0.7)
    assert settings.channels["mouthClose"].target_path == '["mouth_open"]'
    # One undo takes a loaded preset back.
    bpy.ops.facsimile.reset_map()
    run_then_undo(lambda: bpy.ops.facsimile.load_map_preset(preset="Test Rig"), "Load Preset")
    assert bpy.context.scene.facsimile_drive.channels["jawOpen"].target == "AUTO"
    saved.unlink()


def test_shipped_presets_load_and_check_the_mesh(addon, tmp_path):
    take = _import(tmp_path)
    settings = bpy.context.scene.facsimile_drive
    assert {"VRoid", "Rocketbox"} <= set(map_presets.available())
    suzanne = _keyed_mesh("Other", ["jawOpen"])
    select_only(suzanne)
    with pytest.raises(RuntimeError, match="'Other' has no shape key for 20 of the map's targets"):
        bpy.ops.facsimile.load_map_preset(preset="VRoid")
    assert settings.channels["jawOpen"].target == "AUTO"      # nothing changed
    vroid = _keyed_mesh("VRoidFace", VROID_KEYS)
    select_only(vroid)
    assert bpy.ops.facsimile.load_map_preset(preset="VRoid") == {"FINISHED"}
    assert settings.channels["eyeBlinkLeft"].target_key == "Fcl_EYE_Close_L"
    assert not settings.channels["tongueOut"].enabled
    assert bpy.ops.facsimile.bake() == {"FINISHED"}            # AUTO mode: driven directly
    key = vroid.data.shape_keys
    _f, values = _curve(key, animation.key_path("Fcl_MTH_A"))
    np.testing.assert_allclose(values, take.weights[:, JAW], atol=1e-5)
    _f, fun = _curve(key, animation.key_path("Fcl_MTH_Fun"))   # both smiles, half each
    smiles = take.weights[:, [arkit.ARKIT_INDEX["mouthSmileLeft"], arkit.ARKIT_INDEX["mouthSmileRight"]]]
    np.testing.assert_allclose(fun, 0.5 * smiles.sum(1), atol=1e-5)
    assert animation.key_path("Fcl_HA_Hide") not in {fc.data_path for fc in animation.assigned_fcurves(key)}
    rocket = _keyed_mesh("Rocketbox", sorted(f"AK_{i + 1:02d}_{n[0].upper() + n[1:]}"
                                           for i, n in enumerate(sorted(arkit.ARKIT_52, key=str.lower))))
    select_only(rocket)
    settings.map_object = rocket
    assert bpy.ops.facsimile.load_map_preset(preset="rocketbox".capitalize()) == {"FINISHED"}
    assert settings.channels["jawOpen"].target_key == "AK_25_JawOpen"


def test_bake_into_an_nla_strip(addon, tmp_path):
    take = _import(tmp_path, start=5)
    face = _keyed_mesh("Face", ["jawOpen", "eyeBlinkLeft", "mine"])
    key = face.data.shape_keys
    key.key_blocks["mine"].value = 0.3
    key.key_blocks["mine"].keyframe_insert("value", frame=1)     # the artist's active action
    active = key.animation_data.action
    rig = _armature()
    _set_target("mouthClose", "PATH", object="Rig", path='pose.bones["jaw"].rotation_euler', index=2)
    select_only(face)
    actions = len(bpy.data.actions)
    assert bpy.ops.facsimile.bake(placement="NLA") == {"FINISHED"}
    assert key.animation_data.action == active                   # untouched
    assert [fc.data_path for fc in animation.assigned_fcurves(key)] == [animation.key_path("mine")]
    track = key.animation_data.nla_tracks["Facsimile"]
    strip = track.strips[0]
    assert strip.frame_start == 5 and strip.frame_end == 5 + 23
    if bpy.app.version >= (4, 4, 0):
        assert strip.action_slot is not None and strip.action_slot.target_id_type == "KEY"
    _f, values = _curve(key, animation.key_path("jawOpen"), fcurves=animation.strip_fcurves(strip))
    np.testing.assert_allclose(values, take.weights[:, JAW], atol=1e-5)
    bpy.context.scene.frame_set(10)                              # the NLA plays it
    assert key.key_blocks["jawOpen"].value == pytest.approx(take.weights[5, JAW], abs=1e-5)
    rig_strip = rig.animation_data.nla_tracks["Facsimile"].strips[0]
    assert rig.animation_data.action is None and rig_strip.frame_start == 5
    assert len(bpy.data.actions) == actions + 2
    # A second bake never overwrites the first strip: a track of its own.
    assert bpy.ops.facsimile.bake(placement="NLA") == {"FINISHED"}
    assert [t.name for t in key.animation_data.nla_tracks] == ["Facsimile", "Facsimile.001"]
    assert track.strips[0].action is not None and len(bpy.data.actions) == actions + 4
    # One undo removes a whole NLA bake.
    names = {a.name for a in bpy.data.actions}
    run_then_undo(lambda: bpy.ops.facsimile.bake(placement="NLA"), "Bake")
    key = bpy.data.objects["Face"].data.shape_keys
    assert len(key.animation_data.nla_tracks) == 2 and {a.name for a in bpy.data.actions} == names


def test_cli_map_by_preset_name_and_nla(addon, tmp_path):
    take = _take()
    write_llf_csv(tmp_path / "take.csv", take)
    _keyed_mesh("VRoidFace", VROID_KEYS)
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "vroid.blend"))
    out = run_cli("bake", tmp_path / "vroid.blend", "--take", tmp_path / "take.csv", "--map", "vroid",
                  "--nla", "--out", tmp_path / "out.blend", "--json", tmp_path / "report.json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    bake_entry = report["bakes"][0]
    assert bake_entry["nla"] and bake_entry["map"].endswith("VRoid.json")
    assert "Fcl_MTH_A" in bake_entry["targets"][0]["keys"] and bake_entry["targets"][0]["mode"] == "DIRECT"
    bad = run_cli("bake", tmp_path / "vroid.blend", "--take", tmp_path / "take.csv", "--map", "NoSuchRig",
                  "--out", tmp_path / "bad.blend", home=tmp_path)
    assert bad.returncode == 2 and "no retarget-map preset named 'NoSuchRig'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1 and not (tmp_path / "bad.blend").exists()


class _Layout:
    """Records what a panel draws and checks it against RNA: Blender cannot draw panels
    without a window, and a misspelt property there only prints a warning."""

    def __init__(self, seen):
        self.seen, self.active = seen, True

    def _child(self, *_a, **_k):
        return _Layout(self.seen)

    row = column = box = split = _child

    def label(self, **_k):
        pass

    def prop(self, data, name, **_k):
        assert name in data.bl_rna.properties, name
        self.seen.append(name)

    def prop_search(self, data, name, search_data, search_name, **_k):
        assert name in data.bl_rna.properties and hasattr(search_data, search_name), (name, search_name)
        self.seen.append(name)

    def operator(self, idname, **_k):
        module, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), name), idname
        self.seen.append(idname)

    def template_list(self, list_type, _id, data, name, active_data, active_name, **_k):
        assert hasattr(bpy.types, list_type) and name in data.bl_rna.properties
        assert active_name in active_data.bl_rna.properties


def test_map_panel_and_rows_draw_real_properties(addon, tmp_path):
    _import(tmp_path)
    face = _keyed_mesh("Face", ["MouthOpen"])
    settings = bpy.context.scene.facsimile_drive
    settings.map_object = face
    seen = []
    panel = bpy.types.FACSIMILE_PT_retarget_map
    ui_list = bpy.types.FACSIMILE_UL_channels
    for kind, active in (("KEY", "jawOpen"), ("PATH", "jawOpen"), ("AUTO", "jawOpen")):
        settings.channels[active].target = kind
        settings.active_channel = arkit.ARKIT_INDEX[active]
        panel.draw(type("P", (), {"layout": _Layout(seen)})(), bpy.context)
        ui_list.draw_item(None, bpy.context, _Layout(seen), settings, settings.channels[active], 0,
                          settings, "active_channel")
    assert {"facsimile.auto_map", "facsimile.load_map_preset", "facsimile.save_map_preset",
            "target_key", "target_path", "target_object", "target_index", "gain", "offset",
            "smoothing", "map_object"} <= set(seen)
