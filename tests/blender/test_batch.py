# SPDX-License-Identifier: GPL-3.0-or-later
"""``facsimile batch``: two heads × takes with the installed extension, in fresh processes.

A real batch (workers are the installed CLI in this clean Blender), run again (nothing
redone), with one output damaged and one deleted (only those redone), with a broken take
(reported, the others done); a worker killed mid-task and a task that hangs (reported,
the worker replaced, the rest done); the same keys from ``--jobs 1``, ``--jobs 2`` and
``--isolate``; and the OpenJD job template run by ``openjd run``.

The crash and the hang come from the worker's test hooks (``FACSIMILE_TEST_WORKER_CRASH``,
``FACSIMILE_TEST_WORKER_HANG``: ``cli/batch_worker.py``), environment variables only a
long-lived worker reads: it kills itself with SIGKILL, or sleeps, on a task whose arguments
contain the given text.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile import animation
from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.takes import Take, write_llf_csv
from blender_helpers import _CLI, clean_env, monkey_head, run_cli

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "farm" / "openjd" / "facsimile_batch.yaml"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """Suzanne as head.obj and (renamed, in a .blend with a distractor) as other.blend; takes."""
    tmp = tmp_path_factory.mktemp("batch")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    head = monkey_head("Head")
    bpy.ops.wm.obj_export(filepath=str(tmp / "head.obj"), export_selected_objects=True,
                          export_materials=False, forward_axis="NEGATIVE_Y", up_axis="Z")
    head.name = "Other"
    bpy.ops.mesh.primitive_cube_add(size=3.0, location=(5, 0, 0))   # larger: only "objects" picks Other
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp / "other.blend"))
    t = np.arange(30) / 24.0
    w = np.zeros((30, 52), np.float32)
    w[:, arkit.ARKIT_INDEX["jawOpen"]] = 0.5 - 0.5 * np.cos(2 * np.pi * t)
    write_llf_csv(tmp / "take.csv", Take(times=t, names=list(arkit.ARKIT_52), weights=w, fps=24.0))
    (tmp / "broken.csv").write_text("Timecode,BlendShapeCount,jawOpen\n12:99:aa,1,0.5\n")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return tmp


def _manifest(folder: Path, takes, heads: Path = None) -> Path:
    heads = heads or folder
    path = folder / "manifest.json"
    path.write_text(json.dumps({
        "output": "out",
        "characters": [str(heads / "head.obj"), {"file": str(heads / "other.blend"), "objects": ["Other"]}],
        "takes": takes}))
    return path


def _report(out_dir: Path) -> dict:
    data = json.loads((out_dir / "batch_report.json").read_text())
    return {t["task"]: t for t in data["tasks"]}


def _jaw_keys(blend: Path, name: str) -> np.ndarray:
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    obj = bpy.data.objects[name]
    fc = next(fc for fc in animation.assigned_fcurves(obj.data.shape_keys)
              if fc.data_path == animation.key_path("jawOpen"))
    co = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co.reshape(-1, 2)[:, 1]


def test_batch_bakes_resumes_and_names_failures(inputs):
    manifest = _manifest(inputs, [{"file": "take.csv", "glb": True}, "broken.csv"])
    out_dir = inputs / "out"
    run = run_cli("batch", manifest, "--jobs", "2", home=inputs)
    assert run.returncode == 1, run.stderr          # the broken take failed, the rest went through
    progress = [ln for ln in run.stdout.splitlines() if ln.startswith("[facsimile] batch [")]
    assert len(progress) == 6
    tasks = _report(out_dir)
    assert {k: t["status"] for k, t in tasks.items()} == {
        "rig:0": "done", "rig:1": "done", "bake:0,0": "done", "bake:1,0": "done",
        "bake:0,1": "failed", "bake:1,1": "failed"}
    assert "bad timecode '12:99:aa'" in tasks["bake:0,1"]["reason"]
    assert not (out_dir / "head" / "broken.blend").exists()
    for name in ("head/take.blend", "head/take.glb", "other/take.blend", "other/take.glb",
                 "rigs/head.blend", "rigs/other.blend"):
        assert (out_dir / name).is_file(), name
    assert not list(out_dir.rglob("*.partial-*"))
    jaw = _jaw_keys(out_dir / "other" / "take.blend", "Other")
    assert len(jaw) == 30 and jaw.max() > 0.99
    assert len(bpy.data.objects["Other"].data.shape_keys.key_blocks) == 52   # Basis + 51: Suzanne has no tongue
    assert bpy.data.objects["Cube"].data.shape_keys is None      # not named: not rigged
    head = _jaw_keys(out_dir / "head" / "take.blend", "Head")
    np.testing.assert_allclose(head, jaw, atol=1e-6)             # same head, same take

    # Again: everything finished is left alone; the broken take is tried (and named) again.
    stamps = {p: p.stat().st_mtime_ns for p in out_dir.rglob("*.blend")}
    run = run_cli("batch", manifest, "--jobs", "2", home=inputs)
    assert run.returncode == 1
    tasks = _report(out_dir)
    assert [k for k, t in tasks.items() if t["status"] == "skipped"] == ["rig:0", "rig:1", "bake:0,0", "bake:1,0"]
    assert {p: p.stat().st_mtime_ns for p in out_dir.rglob("*.blend")} == stamps

    # One output damaged, one deleted, the broken take dropped from the manifest: exactly
    # those two bakes are redone, and the batch succeeds.
    with open(out_dir / "head" / "take.glb", "ab") as handle:
        handle.write(b"\0")
    (out_dir / "other" / "take.blend").unlink()
    manifest = _manifest(inputs, [{"file": "take.csv", "glb": True}])
    run = run_cli("batch", manifest, "--jobs", "2", home=inputs)
    assert run.returncode == 0, run.stdout + run.stderr
    tasks = _report(out_dir)
    assert {k: t["status"] for k, t in tasks.items()} == {
        "rig:0": "skipped", "rig:1": "skipped", "bake:0,0": "done", "bake:1,0": "done"}
    assert tasks["bake:0,0"]["reason"] == "" and (out_dir / "other" / "take.blend").is_file()
    assert (out_dir / "rigs" / "head.blend").stat().st_mtime_ns == stamps[out_dir / "rigs" / "head.blend"]


def test_only_runs_one_unit_and_needs_its_rig(inputs, tmp_path):
    manifest = _manifest(inputs, ["take.csv"])
    out = tmp_path / "farm"
    run = run_cli("batch", manifest, "--out", out, "--only", "bake:1,0", home=inputs)
    assert run.returncode == 1
    (entry,) = json.loads(next((out / ".facsimile-batch" / "reports").glob("*.json")).read_text())["tasks"]
    assert entry["status"] == "blocked" and "rig:1 (other) is not done" in entry["reason"]
    assert not (out / "other").exists()

    plan = run_cli("batch", manifest, "--plan", home=inputs)
    assert plan.returncode == 0, plan.stderr
    data = json.loads(plan.stdout[:plan.stdout.rindex("}") + 1])
    assert (data["CharacterRange"], data["TakeRange"]) == ("0-1", "0-0")
    assert [t["task"] for t in data["tasks"]] == ["rig:0", "rig:1", "bake:0,0", "bake:1,0"]


def _keys(blend: Path) -> dict:
    """Every shape key's rest positions and every baked key's (frame, value) pairs of a file."""
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    out = {}
    for obj in bpy.data.objects:
        keys = obj.data.shape_keys if obj.type == "MESH" else None
        if keys is None:
            continue
        for kb in keys.key_blocks:
            co = np.empty(3 * len(kb.data), np.float32)
            kb.data.foreach_get("co", co)
            out[f"{obj.name}/{kb.name}"] = co
        for fc in animation.assigned_fcurves(keys):
            co = np.empty(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", co)
            out[f"{obj.name}/{fc.data_path}"] = co
    return out


def _takes_in(folder: Path, inputs: Path, names) -> None:
    for name in names:
        shutil.copy(inputs / "take.csv", folder / name)


def test_worker_crash_and_hang_are_named_and_the_rest_completes(inputs, tmp_path, monkeypatch):
    _takes_in(tmp_path, inputs, ["take.csv", "crash.csv", "hang.csv"])
    manifest = _manifest(tmp_path, ["take.csv", "crash.csv", "hang.csv"], heads=inputs)
    out_dir = tmp_path / "out"
    # The worker dies on head × crash (its output's temporary name holds "head/crash.partial")
    # and hangs on other × hang; a generous timeout still, so that no real task reaches it.
    monkeypatch.setenv("FACSIMILE_TEST_WORKER_CRASH", f"{os.sep}head{os.sep}crash.partial")
    monkeypatch.setenv("FACSIMILE_TEST_WORKER_HANG", f"{os.sep}other{os.sep}hang.partial")
    run = run_cli("batch", manifest, "--jobs", "2", "--task-timeout", "30", home=tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    tasks = _report(out_dir)
    assert {k: t["status"] for k, t in tasks.items()} == {
        "rig:0": "done", "rig:1": "done", "bake:0,0": "done", "bake:0,1": "failed", "bake:0,2": "done",
        "bake:1,0": "done", "bake:1,1": "done", "bake:1,2": "failed"}, run.stdout
    crash, hang = tasks["bake:0,1"], tasks["bake:1,2"]
    assert "the worker crashed while running this task (killed by SIGKILL)" in crash["reason"]
    assert crash["returncode"] == -9
    assert "timed out after 30 s (--task-timeout)" in hang["reason"]
    progress = [ln for ln in run.stdout.splitlines() if ln.startswith("[facsimile] batch [")]
    assert len(progress) == 8 and sum("FAILED" in ln for ln in progress) == 2
    assert not list(out_dir.rglob("*.partial-*"))
    assert not (out_dir / "head" / "crash.blend").exists() and not (out_dir / "other" / "hang.blend").exists()
    assert len(_jaw_keys(out_dir / "other" / "crash.blend", "Other")) == 30

    # Without the hooks (the crash fixed), exactly the two failed bakes are redone.
    monkeypatch.delenv("FACSIMILE_TEST_WORKER_CRASH")
    monkeypatch.delenv("FACSIMILE_TEST_WORKER_HANG")
    run = run_cli("batch", manifest, "--jobs", "2", home=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    tasks = _report(out_dir)
    assert sorted(k for k, t in tasks.items() if t["status"] == "done") == ["bake:0,1", "bake:1,2"]
    assert len(_jaw_keys(out_dir / "head" / "crash.blend", "Head")) == 30


def test_same_keys_from_jobs_1_jobs_2_and_isolate(inputs, tmp_path):
    _takes_in(tmp_path, inputs, ["take.csv"])
    t = np.arange(40) / 30.0
    w = np.zeros((40, 52), np.float32)
    for k, name in enumerate(("eyeBlinkLeft", "mouthSmileRight", "browInnerUp", "jawOpen")):
        w[:, arkit.ARKIT_INDEX[name]] = 0.5 + 0.5 * np.sin(2 * np.pi * (k + 1) * t / 1.3)
    write_llf_csv(tmp_path / "busy.csv", Take(times=t, names=list(arkit.ARKIT_52), weights=w, fps=30.0))
    manifest = _manifest(tmp_path, ["take.csv", {"file": "busy.csv", "smoothing": 1.5, "frame_step": 2}],
                         heads=inputs)
    runs = {"jobs1": ["--jobs", "1"], "jobs2": ["--jobs", "2"], "isolate": ["--jobs", "2", "--isolate"]}
    files = ("rigs/head.blend", "rigs/other.blend", "head/take.blend", "head/busy.blend",
             "other/take.blend", "other/busy.blend")
    keys = {}
    for name, flags in runs.items():
        run = run_cli("batch", manifest, "--out", tmp_path / name, *flags, home=tmp_path)
        assert run.returncode == 0, run.stdout + run.stderr
        assert json.loads((tmp_path / name / "batch_report.json").read_text())["workers"] == \
            ("isolate" if name == "isolate" else "long-lived")
        keys[name] = {f: _keys(tmp_path / name / f) for f in files}
    for f in files:
        ref = keys["isolate"][f]
        assert len(ref) > 51, f                 # 52 shape keys: Basis + 51 (no tongue), and the baked curves
        for name in ("jobs1", "jobs2"):
            assert ref.keys() == keys[name][f].keys(), (name, f)
            for k, values in ref.items():
                np.testing.assert_array_equal(values, keys[name][f][k], err_msg=f"{name} {f} {k}")
    assert any(k.endswith('key_blocks["jawOpen"].value') for k in keys["jobs2"]["head/busy.blend"])


def _openjd() -> list:
    """The ``openjd`` command line: importable here, on PATH, in the project's .venv, or named
    by $FACSIMILE_OPENJD (a command, split on spaces)."""
    if importlib.util.find_spec("openjd") is not None and importlib.util.find_spec("openjd.cli") is not None:
        return [sys.executable, "-m", "openjd"]
    if os.environ.get("FACSIMILE_OPENJD"):
        return os.environ["FACSIMILE_OPENJD"].split()
    for candidate in (shutil.which("openjd"), ROOT / ".venv" / "bin" / "openjd"):
        if candidate and Path(candidate).is_file():
            return [str(candidate)]
    pytest.skip("openjd-cli is not installed (pip install openjd-cli; or set FACSIMILE_OPENJD)")


def test_openjd_template_runs_two_heads_one_take(inputs, tmp_path):
    openjd = _openjd()
    # What a farm host's FacsimileCommand would be: this Blender with the extension installed.
    script = tmp_path / "facsimile_cli.py"
    script.write_text(_CLI)
    launcher = tmp_path / "facsimile"
    launcher.write_text(f"#!/bin/sh\nunset PYTHONPATH\nexec '{sys.executable}' '{script}' \"$@\"\n")
    launcher.chmod(0o755)
    out = tmp_path / "openjd out"   # a space: the template must quote its paths
    manifest = _manifest(inputs, ["take.csv"])
    run = subprocess.run([*openjd, "run", str(TEMPLATE), "-p", f"ManifestFile={manifest}",
                          "-p", f"OutputDir={out}", "-p", f"FacsimileCommand={launcher}",
                          "-p", "CharacterRange=0-1", "-p", "TakeRange=0-0"],
                         env=clean_env(HOME=tmp_path), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for name in ("rigs/head.blend", "rigs/other.blend", "head/take.blend", "other/take.blend"):
        assert (out / name).is_file(), name
    reports = list((out / ".facsimile-batch" / "reports").glob("*.json"))
    assert len(reports) == 4      # one per farm task
    assert all(json.loads(p.read_text())["ok"] for p in reports)
    assert len(_jaw_keys(out / "other" / "take.blend", "Other")) == 30
