# SPDX-License-Identifier: GPL-3.0-or-later
"""The Flamenco job type (farm/flamenco/facsimile-batch.js), compiled in node against a recorder.

Not a Flamenco Manager (none can be installed here): tests/farm/flamenco_harness.js stands in
for the Manager's ``author`` and ``job`` objects and records every call. The tasks it compiles
must be exactly the batch plan's, each running ``batch MANIFEST --only TASK``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from blender_addon.core.batch_plan import parse_manifest, plan, select

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "farm" / "flamenco" / "facsimile-batch.js"
HARNESS = ROOT / "tests" / "farm" / "flamenco_harness.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the Flamenco job type is JavaScript")


def compile_job(**settings) -> dict:
    out = subprocess.run([NODE, str(HARNESS), str(SCRIPT), json.dumps(settings)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_job_type_declares_its_settings():
    job_type = compile_job(manifest="m.json", characters=1, takes=1)["job_type"]
    keys = {s["key"]: s for s in job_type["settings"]}
    assert {"manifest", "output_dir", "characters", "takes", "exe", "exe_args"} <= set(keys)
    assert keys["manifest"]["required"] and keys["exe"]["default"] == "{blender}"


def test_compiles_the_batch_plan_one_task_per_unit(tmp_path):
    manifest = parse_manifest({"output": "out", "characters": ["a.obj", "b.blend"],
                               "takes": ["t1.csv", "t2.txt", "t3.mp4"]}, tmp_path)
    tasks = plan(manifest)
    got = compile_job(manifest="/farm/shot/m.json", output_dir="/farm/out", characters=2, takes=3,
                      exe="{blender}", exe_args="--background --command facsimile")
    assert got["error"] is None
    assert len(got["tasks"]) == len(tasks) == 8
    only = []
    for compiled in got["tasks"]:
        (command,) = compiled["commands"]
        assert command["type"] == "exec" and command["params"]["exe"] == "{blender}"
        args = command["params"]["args"]
        assert args[:5] == ["--background", "--command", "facsimile", "batch", "/farm/shot/m.json"]
        assert args[5:7] == ["--out", "/farm/out"] and args[7] == "--only"
        only.append(args[8])
    # every --only the job sends names one task of the plan, and together they are the plan
    assert [t.id for t in select(tasks, only)] == [t.id for t in tasks]
    assert sorted(only) == sorted(t.id for t in tasks)
    by_name = {t["name"]: t for t in got["tasks"]}
    for t in tasks:
        name = t.id.replace(":", "-").replace(",", "-")
        expected = [t.depends.replace(":", "-")] if t.depends else []
        assert by_name[name]["depends"] == expected
    # a task is added after its dependency (the Manager needs the dependency to exist)
    added = [c[1] for c in got["calls"] if c[0] == "job.addTask"]
    assert all(added.index(d) < added.index(n) for n, t in by_name.items() for d in t["depends"])


def test_without_output_dir_the_manifest_decides():
    got = compile_job(manifest="m.json", output_dir="", characters=1, takes=0, exe="python",
                      exe_args="-m blender_addon")
    (rig,) = got["tasks"]
    assert rig["commands"][0]["params"]["args"] == ["-m", "blender_addon", "batch", "m.json", "--only", "rig:0"]


@pytest.mark.parametrize("settings, message", [
    ({"manifest": "m.json", "characters": 0, "takes": 1}, "'characters' must be a whole number >= 1"),
    ({"manifest": "m.json", "characters": 1, "takes": -1}, "'takes' must be a whole number >= 0"),
    ({"manifest": "", "characters": 1, "takes": 1}, "no manifest"),
])
def test_bad_settings_fail_the_compile_with_a_message(settings, message):
    got = compile_job(exe="{blender}", **settings)
    assert message in got["error"] and got["tasks"] == []
