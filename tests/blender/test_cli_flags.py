# SPDX-License-Identifier: GPL-3.0-or-later
"""The command line a pipeline TD needs (issue 16, must-show 6), on the installed extension.

``rig --object/--strength/--gaze-*/--existing``, ``bake --mode/--map/--fps/--frame-range/--naming/
--existing``, ``encode``, ``--version``, ``--json`` (a file, or stdout that then carries
nothing else); every new flag checked before any work; an error printed once and no
reload message; no output written when a command fails; docs/cli.md lists every flag.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import bpy
import numpy as np
import pytest

import bl_ext.user_default.facsimile as facsimile
from bl_ext.user_default.facsimile.cli import commands
from bl_ext.user_default.facsimile.core import arkit, target_plan
from bl_ext.user_default.facsimile.core.takes import Take, read_llf_csv, write_llf_csv
from bl_ext.user_default.facsimile.options import EXISTING_ITEMS
from bl_ext.user_default.facsimile.rig.props import NAMING_ITEMS
from blender_helpers import key_deltas, monkey_head, run_cli, select_only

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
ANIMATED_FRAMES = 12


def _jaw_down(obj) -> None:
    """A shape key 'open' that drops the lower half of the face, keyed 0 -> 1 -> 0."""
    obj.shape_key_add(name="Basis")
    key = obj.shape_key_add(name="open", from_mix=False)
    co = np.empty(len(key.data) * 3, np.float32)
    key.data.foreach_get("co", co)
    co = co.reshape(-1, 3)
    low = co[:, 2] < -0.1
    co[low, 2] -= 0.15 * (-0.1 - co[low, 2]) / 0.4 + 0.05
    co[low, 1] += 0.03
    key.data.foreach_set("co", co.ravel())
    for frame, value in ((1, 0.0), (ANIMATED_FRAMES // 2, 1.0), (ANIMATED_FRAMES, 0.0)):
        key.value = value
        key.keyframe_insert("value", frame=frame)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A head + a bigger body in one .blend, the head as OBJ, a take, an animated head as .glb,
    and a head with only custom-named keys."""
    tmp = tmp_path_factory.mktemp("cli_flags")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    head = monkey_head("Head")
    bpy.ops.mesh.primitive_uv_sphere_add(segments=64, ring_count=32, radius=1.0, location=(3, 0, 0))
    bpy.context.object.name = "Body"   # more vertices than the head: "largest mesh" would pick it
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp / "two.blend"))
    select_only(head)
    bpy.ops.wm.obj_export(filepath=str(tmp / "head.obj"), export_selected_objects=True,
                          export_materials=False, forward_axis="NEGATIVE_Y", up_axis="Z")

    bpy.ops.wm.read_factory_settings(use_empty=True)
    custom = monkey_head("Custom")
    custom.shape_key_add(name="Basis")
    custom.shape_key_add(name="SmileWide")
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp / "custom.blend"))

    bpy.ops.wm.read_factory_settings(use_empty=True)
    _jaw_down(monkey_head("Performer"))
    bpy.ops.export_scene.gltf(filepath=str(tmp / "anim.glb"), export_format="GLB", use_selection=True,
                              export_animations=True, export_morph=True, export_morph_animation=True)

    t = np.arange(36) / 24.0
    w = np.zeros((36, 52), np.float32)
    w[:, arkit.ARKIT_INDEX["jawOpen"]] = 0.5 - 0.5 * np.cos(2 * np.pi * t)
    w[:, arkit.ARKIT_INDEX["eyeBlinkLeft"]] = np.clip(np.sin(3 * t), 0, 1)
    write_llf_csv(tmp / "take.csv", Take(times=t, names=list(arkit.ARKIT_52), weights=w, fps=24.0))
    (tmp / "a_file").write_text("not a folder")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return tmp


def _error_once(out, message: str) -> None:
    both = out.stdout + out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("facsimile: error:")]
    assert len(errors) == 1 and message in errors[0], both
    assert both.count(message) == 1, both
    _no_reload(out)


def _no_reload(out) -> None:
    both = (out.stdout + out.stderr).lower()
    assert "changed on disk" not in both and "reload" not in both, both


def _objects(path: Path) -> dict:
    bpy.ops.wm.open_mainfile(filepath=str(path))
    return {o.name: o for o in bpy.data.objects}


def test_version_is_the_manifests(tmp_path):
    manifest = Path(facsimile.__file__).parent / "blender_manifest.toml"
    expected = tomllib.loads(manifest.read_text())["version"]
    out = run_cli("--version", home=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == f"facsimile {expected}", out.stdout + out.stderr


def test_cli_choices_are_the_operators(addon):
    """The CLI repeats the enums so --help needs no bpy; here they are held equal."""
    assert commands.NAMINGS == tuple(item[0] for item in NAMING_ITEMS)
    assert commands.MODES == target_plan.MODES
    assert commands.EXISTING == tuple(item[0] for item in EXISTING_ITEMS)
    neutral = bpy.ops.facsimile.encode_mesh.get_rna_type().properties["neutral"]
    assert commands.NEUTRALS == tuple(item.identifier for item in neutral.enum_items)


# Commands that are not for people: batch's worker processes (hidden from --help).
INTERNAL = {"batch-worker"}


def _flags(parser: argparse.ArgumentParser, prefix: str = ""):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if name in INTERNAL:
                    continue
                yield prefix + name, None
                yield from _flags(sub, f"{prefix}{name} ")
        else:
            for option in action.option_strings:
                if option not in ("-h", "--help") and option.startswith("--"):
                    yield prefix.strip(), option


def test_docs_list_every_flag():
    docs = DOCS.read_text()
    missing = []
    for command, flag in _flags(commands.build_parser()):
        if flag is None:
            if f"## `{command}`" not in docs:
                missing.append(f"section for {command}")
            continue
        section = docs.split(f"## `{command}`", 1)[-1].split("\n## ", 1)[0] if command else docs
        if f"`{flag}" not in section and f"{flag} " not in section and f"[{flag}" not in section:
            missing.append(f"{command} {flag}")
    assert not missing, f"docs/cli.md lacks: {missing}"


BAD = {
    "strength_zero": ("rig {d}/head.obj --out {d}/o.blend --strength 0", "--strength 0"),
    "strength_nan": ("rig {d}/head.obj --out {d}/o.blend --strength nan", "--strength nan"),
    "tighten_one": ("rig {d}/head.obj --out {d}/o.blend --tighten 1", "--tighten 1: must be between 0 and 0.9"),
    "tighten_nan": ("rig {d}/head.obj --out {d}/o.blend --tighten nan", "--tighten nan"),
    "gaze_negative": ("rig {d}/head.obj --out {d}/o.blend --gaze-up -5", "--gaze-up -5"),
    "gaze_past_90": ("rig {d}/head.obj --out {d}/o.blend --gaze-in 95", "--gaze-in 95: must be between 0 and 90"),
    "gaze_nan": ("rig {d}/head.obj --out {d}/o.blend --gaze-down nan", "--gaze-down nan"),
    "existing_unknown": ("rig {d}/head.obj --out {d}/o.blend --existing MAYBE", "invalid choice: 'MAYBE'"),
    "mode_unknown": ("bake {d}/head.obj --take {d}/take.csv --out {d}/o.blend --mode MAGIC",
                     "invalid choice: 'MAGIC'"),
    "frame_range_backwards": ("bake {d}/head.obj --take {d}/take.csv --out {d}/o.blend --frame-range 20 10",
                              "the end is before the start"),
    "frame_range_huge": ("encode {d}/anim.glb --out {d}/t.csv --frame-range 1 9999999", "frames must be within"),
    "fps_zero": ("bake {d}/head.obj --take {d}/take.csv --out {d}/o.blend --fps 0", "--fps 0"),
    "fps_negative": ("encode {d}/anim.glb --out {d}/t.csv --fps -24", "--fps -24"),
    "json_not_json": ("rig {d}/head.obj --out {d}/o.blend --json {d}/r.txt", "must be a .json file"),
    "json_is_folder": ("rig {d}/head.obj --out {d}/o.blend --json {d}", "must be a .json file"),
    "encode_out_not_csv": ("encode {d}/anim.glb --out {d}/t.txt", "must be a .csv file"),
    "encode_out_is_input": ("encode {d}/anim.glb --out {d}/anim.glb", "must be a .csv file"),
    "naming_unknown": ("bake {d}/head.obj --take {d}/take.csv --out {d}/o.blend --naming VROID",
                       "invalid choice: 'VROID'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_new_flags_checked_before_any_work(files, case, capsys):
    argv, message = BAD[case]
    status = commands.main(argv.format(d=files).split())
    out = capsys.readouterr()
    assert status == 2, out.err
    errors = [line for line in out.err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], out.err
    assert "[facsimile]" not in out.out, "checked before Blender loads anything"
    assert not any(p.name in ("o.blend", "t.csv", "t.txt") for p in files.iterdir())


def test_rig_object_strength_existing_and_json(files):
    home = files / "home"
    out = run_cli("rig", files / "two.blend", "--object", "Head", "--strength", "0.5",
                  "--out", files / "half.blend", "--json", files / "half.json", home=home)
    assert out.returncode == 0, out.stderr
    _no_reload(out)
    report = json.loads((files / "half.json").read_text())
    assert report["ok"] and report["command"] == "rig" and report["exit_status"] == 0
    assert report["outputs"] == [str((files / "half.blend").resolve())]
    (entry,) = report["objects"]
    assert entry["object"] == "Head" and entry["strength"] == 0.5 and entry["naming"] == "ARKIT"
    assert entry["gaze"] == commands.GAZE_DEGREES              # untouched: the calibrated angles
    assert entry["tighten"] == 0.0
    # Suzanne has no tongue: tongueOut is left out unless --all-keys (issue 13)
    assert len(entry["keys_added"]) == 51 and "jawOpen" in entry["keys_added"]
    assert "tongueOut" not in entry["keys_added"]
    assert len(entry["groups"]) == 24 and entry["groups"][0].startswith("FX_")
    assert entry["provider"] and isinstance(entry["seconds"], float) and isinstance(entry["warnings"], list)
    objs = _objects(files / "half.blend")
    assert objs["Body"].data.shape_keys is None, "--object rigs only the named mesh"
    half = np.linalg.norm(key_deltas(objs["Head"], "jawOpen"), axis=1).sum()

    # A second plain rig is refused in one line naming the flag; nothing is written.
    again = run_cli("rig", files / "half.blend", "--object", "Head", "--out", files / "again.blend", home=home)
    assert again.returncode == 2
    _error_once(again, "re-rig it with --existing REPLACE")
    assert not (files / "again.blend").exists()

    # --existing REPLACE re-rigs; --json - leaves nothing but the report on stdout.
    full = run_cli("rig", files / "half.blend", "--object", "Head", "--existing", "REPLACE",
                   "--out", files / "full.blend", "--json", "-", home=home)
    assert full.returncode == 0, full.stderr
    _no_reload(full)
    report = json.loads(full.stdout)
    (entry,) = report["objects"]
    assert entry["existing"] == "REPLACE" and not entry["keys_added"] and len(entry["keys_replaced"]) == 51
    assert "[facsimile] rigging 'Head'" in full.stderr
    objs = _objects(files / "full.blend")
    ratio = np.linalg.norm(key_deltas(objs["Head"], "jawOpen"), axis=1).sum() / half
    assert 1.8 < ratio < 2.2, f"strength 1 vs 0.5: jawOpen {ratio:.2f}x"

    # --tighten: fewer vertices move in every shape it touches; the report says it.
    moving = lambda obj: (np.linalg.norm(key_deltas(obj, "jawOpen"), axis=1) > 1e-6).sum()  # noqa: E731
    full_moving = moving(objs["Head"])
    tight = run_cli("rig", files / "half.blend", "--object", "Head", "--existing", "REPLACE", "--tighten", "0.3",
                    "--strength", "1", "--out", files / "tight.blend", "--json", files / "tight.json", home=home)
    assert tight.returncode == 0, tight.stderr
    (entry,) = json.loads((files / "tight.json").read_text())["objects"]
    assert entry["tighten"] == 0.3
    assert moving(_objects(files / "tight.blend")["Head"]) < full_moving


def test_bake_fps_frame_range_naming_mode_and_json(files):
    out = run_cli("bake", files / "head.obj", "--take", files / "take.csv", "--naming", "ARKIT_LR",
                  "--mode", "DIRECT", "--fps", "30", "--frame-range", "5", "20", "--existing", "REPLACE",
                  "--out", files / "baked.blend", "--glb", files / "baked.glb", "--json", files / "bake.json",
                  home=files / "home")
    assert out.returncode == 0, out.stderr
    _no_reload(out)
    report = json.loads((files / "bake.json").read_text())
    assert report["ok"] and len(report["outputs"]) == 2
    (rigged,) = report["objects"]
    assert rigged["naming"] == "ARKIT_LR" and "eyeBlink_L" in rigged["keys_added"]
    (bake,) = report["bakes"]
    assert bake["frames"] == {"first": 5, "last": 20, "count": 16, "step": 1}
    assert bake["fps"] == 30 and bake["mode"] == "DIRECT"
    (target,) = bake["targets"]
    assert target["mode"] == "DIRECT" and "eyeBlink_L" in target["keys"] and "jawOpen" in target["keys"]

    objs = _objects(files / "baked.blend")
    scene = bpy.context.scene
    assert scene.render.fps / scene.render.fps_base == 30
    assert (scene.frame_start, scene.frame_end) == (5, 20)
    head = next(o for o in objs.values() if o.type == "MESH")
    action = head.data.shape_keys.animation_data.action
    assert tuple(round(f) for f in action.frame_range) == (5, 20)


def test_bake_mode_direct_refuses_a_custom_rig(files):
    out = run_cli("bake", files / "custom.blend", "--take", files / "take.csv", "--mode", "DIRECT",
                  "--out", files / "custom_baked.blend", home=files / "home")
    assert out.returncode == 2
    _error_once(out, "no ARKit-named shape keys to drive directly")
    assert not (files / "custom_baked.blend").exists()


def test_a_failed_save_after_the_glb_leaves_no_file(files):
    """The .glb is written first under a scratch name; the .blend cannot be (its folder is a
    file): neither output nor any scratch file is left."""
    before = set(files.iterdir())
    out = run_cli("bake", files / "head.obj", "--take", files / "take.csv",
                  "--out", files / "a_file" / "shot.blend", "--glb", files / "shot.glb", home=files / "home")
    assert out.returncode == 1, out.stdout + out.stderr
    assert len([line for line in out.stderr.splitlines() if line.startswith("facsimile: error:")]) == 1
    assert set(files.iterdir()) - before <= {files / "home"}, sorted(set(files.iterdir()) - before)


def test_encode_an_animated_glb_to_a_take(files):
    out = run_cli("encode", files / "anim.glb", "--out", files / "encoded.csv", "--json", "-",
                  home=files / "home")
    assert out.returncode == 0, out.stderr
    _no_reload(out)
    report = json.loads(out.stdout)
    (entry,) = report["encodes"]
    assert entry["frames"] == {"first": 1, "last": ANIMATED_FRAMES, "count": ANIMATED_FRAMES}
    assert entry["neutral"] == "REST" and entry["head_motion_removed"]
    assert report["outputs"] == [str((files / "encoded.csv").resolve())]
    take = read_llf_csv(files / "encoded.csv")
    assert take.n_frames == ANIMATED_FRAMES
    weights = take.to_arkit52()
    moved = np.abs(weights[ANIMATED_FRAMES // 2 - 1] - weights[0]).max()
    assert moved > 0.05, f"the jaw drop at the peak frame moved no channel ({moved:.3f})"

    # The take bakes like any other.
    baked = run_cli("bake", files / "head.obj", "--take", files / "encoded.csv",
                    "--out", files / "from_encoded.blend", home=files / "home")
    assert baked.returncode == 0, baked.stderr


def test_encode_errors_once(files):
    out = run_cli("encode", files / "two.blend", "--out", files / "still.csv", home=files / "home")
    assert out.returncode == 2
    _error_once(out, "has no animation")
    out = run_cli("encode", files / "anim.glb", "--object", "Nobody", "--out", files / "nobody.csv",
                  home=files / "home")
    assert out.returncode == 2
    _error_once(out, "no mesh object named 'Nobody'")
    assert not (files / "still.csv").exists() and not (files / "nobody.csv").exists()
