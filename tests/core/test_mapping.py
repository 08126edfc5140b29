# SPDX-License-Identifier: GPL-3.0-or-later
"""The channel map (core/mapping.py): targets, auto-map, presets, and how preview and bake
values honour it (core/drive_values.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from blender_addon.core import arkit, mapping
from blender_addon.core.drive_values import drive_values, path_values
from blender_addon.core.mapping import ChannelMap, MappingError, Target
from blender_addon.core.retarget import RetargetMap
from blender_addon.core.takes.take import PlacedTake, Take
from blender_addon.core.target_plan import TargetPlan, direct_rows

PRESETS = Path(__file__).resolve().parents[2] / "blender_addon" / "presets"
JAW, BLINK_L = arkit.ARKIT_INDEX["jawOpen"], arkit.ARKIT_INDEX["eyeBlinkLeft"]


def _map(**targets) -> ChannelMap:
    items = [Target()] * 52
    for name, target in targets.items():
        items[arkit.ARKIT_INDEX[name]] = target
    return ChannelMap(items)


def _placed(frames=10) -> PlacedTake:
    w = np.linspace(0, 1, frames)[:, None] * np.ones(52)
    take = Take(times=np.arange(frames) / 24, names=list(arkit.ARKIT_52), weights=w, fps=24.0)
    return PlacedTake(take, first_frame=1, source=None)


def test_auto_map_one_normalisation_with_prefixes_suffixes_case():
    keys = ["Basisish", "AK_25_JawOpen", "EYE_BLINK_L", "mouthSmile_L.001", "JawOpen_BS",
            "browInnerUp_shape", "Fcl_EYE_Close_L", "eyeBlinkLeft_corrective"]
    found = mapping.auto_map(keys)
    assert found["jawOpen"] == "AK_25_JawOpen"          # first spelling wins
    assert found["eyeBlinkLeft"] == "EYE_BLINK_L"
    assert found["mouthSmileLeft"] == "mouthSmile_L.001"
    assert found["browInnerUp"] == "browInnerUp_shape"
    assert "Fcl_EYE_Close_L" not in found.values()       # VRoid names: the preset's job
    assert mapping.auto_map(["JawOpen", "jawOpen"])["jawOpen"] == "jawOpen"   # exact wins


def test_with_auto_map_keeps_paths_and_clears_stale_keys():
    bone = Target("PATH", object="Armature", path='pose.bones["jaw"].rotation_euler')
    cmap = _map(jawOpen=bone, eyeBlinkLeft=Target("KEY", key="OldBlink"))
    new, unmatched = mapping.with_auto_map(cmap, ["jawOpen", "Blink_R", "mouthClose"])
    assert new.targets[JAW] == bone
    assert new.targets[BLINK_L] == Target()                 # stale key from another mesh gone
    assert new.targets[arkit.ARKIT_INDEX["mouthClose"]] == Target("KEY", key="mouthClose")
    assert "eyeBlinkLeft" in unmatched and "jawOpen" not in unmatched


def test_key_targets_reroute_direct_rows():
    names = ["jawOpen", "MouthOpen", "eyeBlinkLeft", "Other"]
    cmap = _map(jawOpen=Target("KEY", key="MouthOpen"),
                eyeBlinkLeft=Target("PATH", path='["blink"]'),
                eyeBlinkRight=Target("KEY", key="MouthOpen"))
    positions, rows = direct_rows(names, cmap)
    assert positions == [1]                               # jawOpen and eyeBlinkLeft keys left alone
    assert rows[0, JAW] == 1 and rows[0, arkit.ARKIT_INDEX["eyeBlinkRight"]] == 1
    assert rows.sum() == 2
    assert cmap.missing_keys(["jawOpen"]) == ["eyeBlinkRight -> MouthOpen", "jawOpen -> MouthOpen"]
    assert direct_rows(names, ChannelMap())[0] == direct_rows(names)[0]


def test_values_honour_gain_offset_and_paths_skip_the_clamp():
    placed = _placed()
    rmap = RetargetMap()
    rmap.gain[JAW], rmap.offset[JAW] = 0.5, 0.1
    rmap.gain[BLINK_L] = 3.0                               # past the clamp on a path: kept
    cmap = _map(jawOpen=Target("KEY", key="MouthOpen"),
                eyeBlinkLeft=Target("PATH", object="Rig", path='pose.bones["lid"].rotation_euler',
                                    index=0))
    positions, rows = direct_rows(["MouthOpen", "eyeBlinkLeft"], cmap)
    plan = TargetPlan("Face", "DIRECT", ["MouthOpen"], np.array([1]), rows=rows)
    frames = np.arange(1, 11)
    keys = drive_values(placed, rmap, plan, frames, cmap=cmap)
    w = np.linspace(0, 1, 10)
    np.testing.assert_allclose(keys[:, 0], 0.5 * w + 0.1, atol=1e-6)
    paths = path_values(placed, rmap, cmap, frames)
    np.testing.assert_allclose(paths[:, 0], 3.0 * w, atol=1e-6)
    rmap.enabled[BLINK_L] = False                          # off: the path is not written at all
    assert path_values(placed, rmap, cmap, frames).shape == (10, 0)


def test_path_channels_are_zero_for_a_solve():
    from blender_addon.core.drive_values import for_plan

    cmap = _map(jawOpen=Target("PATH", path='["jaw"]'))
    out = for_plan(np.ones((2, 52), np.float32), cmap)
    assert (out[:, JAW] == 0).all() and out.sum() == 2 * 51


def test_preset_round_trip(tmp_path):
    rmap = RetargetMap()
    rmap.gain[JAW], rmap.smoothing[BLINK_L], rmap.enabled[51] = 0.35, 1.5, False
    cmap = _map(jawOpen=Target("PATH", object="Armature", path='pose.bones["jaw"].rotation_euler'),
                eyeBlinkLeft=Target("KEY", key="Blink L"),
                mouthClose=Target("PATH", path='["mouth_open"]'))
    path = tmp_path / "rig.json"
    mapping.write_preset(path, rmap, cmap, "my rig")
    data = json.loads(path.read_text())
    assert data["version"] == mapping.VERSION and data["description"] == "my rig"
    assert data["channels"]["jawOpen"] == {
        "gain": 0.35, "target": {"path": 'pose.bones["jaw"].rotation_euler', "index": 0,
                                 "object": "Armature"}}
    rmap2, cmap2 = mapping.read_preset(path)
    assert cmap2 == cmap
    np.testing.assert_array_equal(rmap2.gain, rmap.gain)
    np.testing.assert_array_equal(rmap2.enabled, rmap.enabled)
    assert not list(tmp_path.glob("*.part"))


def test_version_1_files_still_load():
    rmap, cmap = mapping.preset_from_dict({"format": "facsimile-retarget-map", "version": 1,
                                           "channels": {"jawOpen": {"gain": 2}}})
    assert rmap.gain[JAW] == 2 and cmap.is_default


@pytest.mark.parametrize("data, message", [
    ([], "not a Facsimile retarget map"),
    ({"format": "facsimile-retarget-map", "version": 9}, "version 9"),
    ({"format": "facsimile-retarget-map", "channels": {"jawOpn": {}}}, "unknown channel 'jawOpn'"),
    ({"format": "facsimile-retarget-map", "channels": {"JawOpen": {}}}, "did you mean 'jawOpen'"),
    ({"format": "facsimile-retarget-map", "channels": {"jawOpen": {"gain": "x"}}}, "'gain' must be a number"),
    ({"format": "facsimile-retarget-map", "channels": {"jawOpen": {"gian": 1}}}, "unknown field"),
    ({"format": "facsimile-retarget-map", "channels": {"jawOpen": {"target": {}}}}, "either 'key' or 'path'"),
    ({"format": "facsimile-retarget-map", "channels": {"jawOpen": {"target": {"key": ""}}}}, "needs the key's name"),
    ({"format": "facsimile-retarget-map", "channels": {"jawOpen": {"target": {"path": "a b"}}}}, "not a data path"),
    ({"format": "facsimile-retarget-map", "channels": {"jawOpen": {"target": {"path": "x", "index": 1.5}}}},
     "whole number"),
    ({"format": "facsimile-retarget-map", "channels": {"jawOpen": {"smoothing": -1}}}, ">= 0"),
])
def test_bad_presets_are_one_line_errors(data, message):
    with pytest.raises(MappingError, match=message) as err:
        mapping.preset_from_dict(data)
    assert "\n" not in str(err.value)


def test_unreadable_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(MappingError, match=r"^map bad.json: not JSON"):
        mapping.read_preset(bad)
    with pytest.raises(MappingError, match="map missing.json"):
        mapping.read_preset(tmp_path / "missing.json")


def test_data_paths_accepted():
    for path in ('pose.bones["jaw"].rotation_euler', '["mouth_open"]', 'pose.bones["a \\"b"]["x"]',
                 "location", 'data.shape_keys.key_blocks["A"].value'):
        Target("PATH", path=path).check("jawOpen")


def test_shipped_presets_load_and_name_real_keys():
    presets = mapping.list_presets(PRESETS)
    assert {"VRoid", "Rocketbox"} <= set(presets)
    _, vroid = mapping.read_preset(presets["VRoid"])
    keys = dict(vroid.key_targets())
    assert keys[BLINK_L] == "Fcl_EYE_Close_L" and keys[JAW] == "Fcl_MTH_A"
    assert all(k.startswith("Fcl_") for k in keys.values())
    rmap, rocket = mapping.read_preset(presets["Rocketbox"])
    keys = dict(rocket.key_targets())
    assert len(keys) == 52 and keys[0] == "AK_09_EyeBlinkLeft" and keys[51] == "AK_52_TongueOut"
    # The numbering is the Headbox FBX's: alphabetical, AK_01_BrowDownLeft first.
    assert keys[arkit.ARKIT_INDEX["browDownLeft"]] == "AK_01_BrowDownLeft"
    assert all(arkit.normalize_name(k) == arkit.ARKIT_52[i] for i, k in keys.items())
    assert rmap.is_identity


def test_user_presets_override_shipped(tmp_path):
    (tmp_path / "VRoid.json").write_text("{}")
    assert mapping.list_presets(PRESETS, tmp_path)["VRoid"] == tmp_path / "VRoid.json"
    assert mapping.check_preset_name(" My Rig (v2) ") == "My Rig (v2)"
    with pytest.raises(MappingError):
        mapping.check_preset_name("../escape")
