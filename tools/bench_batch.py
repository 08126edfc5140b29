# SPDX-License-Identifier: GPL-3.0-or-later
"""``python build.py bench batch``: a characters × takes batch against the one-process loop.

Builds ``--characters`` heads (Blender's Suzanne, each scaled and sheared differently, as
.obj) and ``--takes`` Live Link Face CSVs of ``--frames`` frames (smooth random weights,
30 fps), then times the same work two ways on this machine:

1. **batch**: ``python -m blender_addon batch MANIFEST --jobs N``: N long-lived worker
   processes, each running many tasks (rig per character, bake per pair) in turn; per-task
   seconds from its report (a task's own time in its worker).
2. **batch --isolate**: the same with a new worker process per task, N at a time (each task's
   seconds include its worker's start).
3. **one-process loop**: what a TD's script does today, but kinder: one Python process that
   imports bpy once and calls the CLI's ``main(["rig", …])`` per character, then
   ``main(["bake", …])`` per pair, one after another.

Then the batch is run again on its finished outputs (the resume check: every task skipped).
``--write`` puts the table into docs/benchmarks.md. The add-on is run from the source tree.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tools.docblock import write_block

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"

_MAKE = r"""
import sys, numpy as np, bpy
sys.path.insert(0, {root!r})
from blender_addon.core import arkit
from blender_addon.core.takes import Take, write_llf_csv
folder, n_chars, n_takes, frames = {folder!r}, {chars}, {takes}, {frames}
rng = np.random.default_rng(0)
for i in range(n_chars):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.mesh.primitive_monkey_add(size=1.0)
    obj = bpy.context.object
    obj.name = f"Head{{i:02d}}"
    s = rng.uniform(0.85, 1.15, 3)
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3) * s
    co[:, 0] += rng.uniform(-0.1, 0.1) * co[:, 2]          # a shear: no two heads alike
    obj.data.vertices.foreach_set("co", co.ravel())
    bpy.ops.wm.obj_export(filepath=f"{{folder}}/head{{i:02d}}.obj", export_selected_objects=True,
                          export_materials=False, forward_axis="NEGATIVE_Y", up_axis="Z")
t = np.arange(frames) / 30.0
for j in range(n_takes):
    w = np.zeros((frames, 52), np.float32)
    for k in range(52):
        f, p = rng.uniform(0.1, 1.0), rng.uniform(0, 2 * np.pi)
        w[:, k] = np.clip(0.5 + 0.5 * np.sin(2 * np.pi * f * t + p), 0, 1) * rng.uniform(0.2, 1.0)
    write_llf_csv(f"{{folder}}/take{{j:02d}}.csv", Take(times=t, names=list(arkit.ARKIT_52), weights=w, fps=30.0))
"""

_LOOP = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import bpy
from blender_addon.cli.commands import main
folder, out, n_chars, n_takes = {folder!r}, {out!r}, {chars}, {takes}
times = {{"rig": [], "bake": []}}
t0 = time.perf_counter()
for i in range(n_chars):
    t = time.perf_counter()
    assert main(["rig", f"{{folder}}/head{{i:02d}}.obj", "--out", f"{{out}}/rigs/head{{i:02d}}.blend"]) == 0
    times["rig"].append(time.perf_counter() - t)
for i in range(n_chars):
    for j in range(n_takes):
        t = time.perf_counter()
        assert main(["bake", f"{{out}}/rigs/head{{i:02d}}.blend", "--take", f"{{folder}}/take{{j:02d}}.csv",
                     "--out", f"{{out}}/head{{i:02d}}/take{{j:02d}}.blend"]) == 0
        times["bake"].append(time.perf_counter() - t)
times["total"] = time.perf_counter() - t0
print("LOOP " + json.dumps(times))
"""


def _python(code: str) -> subprocess.CompletedProcess:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"bench_batch: a step failed:\n{out.stderr[-3000:]}")
    return out


def _stats(values) -> str:
    if not values:
        return "–"
    return f"{statistics.mean(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--characters", type=int, default=20)
    ap.add_argument("--takes", type=int, default=10)
    ap.add_argument("--frames", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="write the table into docs/benchmarks.md")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="facsimile-bench-batch-"))
    fmt = dict(root=str(ROOT), folder=str(work), chars=args.characters, takes=args.takes, frames=args.frames)
    print(f"[bench] inputs in {work}", flush=True)
    _python(_MAKE.format(**fmt))
    manifest = work / "manifest.json"
    manifest.write_text(json.dumps({
        "output": "batch_out", "characters": [f"head{i:02d}.obj" for i in range(args.characters)],
        "takes": [f"take{j:02d}.csv" for j in range(args.takes)]}))
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    def batch(out: str, *flags) -> tuple:
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "blender_addon", "batch", str(manifest), "--out",
                              str(work / out), "--jobs", str(args.jobs), *flags],
                             env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if run.returncode != 0:
            sys.exit(f"bench_batch: the batch failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        return wall, json.loads((work / out / "batch_report.json").read_text())

    def per_task(report) -> dict:
        return {k: [t["seconds"] for t in report["tasks"] if t["kind"] == k and t["status"] == "done"]
                for k in ("rig", "bake")}

    print(f"[bench] batch --jobs {args.jobs}", flush=True)
    wall, report = batch("batch_out")
    per = per_task(report)
    workers = len({t["worker"] for t in report["tasks"] if "worker" in t})
    print(f"[bench] batch: {wall:.1f} s; batch --isolate --jobs {args.jobs}", flush=True)
    iso_wall, iso_report = batch("isolate_out", "--isolate")
    iso = per_task(iso_report)
    print(f"[bench] isolate: {iso_wall:.1f} s; one-process loop", flush=True)
    t0 = time.perf_counter()
    loop_out = _python(_LOOP.format(**fmt, out=str(work / "loop_out"))).stdout
    loop_wall = time.perf_counter() - t0   # with the process start and bpy import, as the batch's
    loop = json.loads(next(ln for ln in loop_out.splitlines() if ln.startswith("LOOP "))[5:])
    print(f"[bench] loop: {loop_wall:.1f} s; resume", flush=True)
    again, report2 = batch("batch_out")
    skipped = report2["counts"]["skipped"]

    n_tasks = args.characters + args.characters * args.takes
    lines = [
        f"{args.characters} characters (Suzanne variants, 507 vertices, .obj) × {args.takes} takes "
        f"(Live Link Face CSV, {args.frames} frames at 30 fps) = {args.characters} rigs + "
        f"{args.characters * args.takes} bakes, each bake writing its own .blend; "
        f"{os.cpu_count()} CPU cores, Python {platform.python_version()}, bpy from the source tree. "
        "Per task: mean / median / max seconds.",
        "",
        "| run | wall time | rig per task | bake per task |",
        "|---|---|---|---|",
        f"| `batch --jobs {args.jobs}` ({workers} long-lived workers, the default) | {wall:.1f} s | "
        f"{_stats(per['rig'])} | {_stats(per['bake'])} |",
        f"| `batch --jobs {args.jobs} --isolate` (a worker process per task) | {iso_wall:.1f} s | "
        f"{_stats(iso['rig'])} | {_stats(iso['bake'])} |",
        f"| one-process loop (bpy imported once, `main()` per task, sequential) | {loop_wall:.1f} s | "
        f"{_stats(loop['rig'])} | {_stats(loop['bake'])} |",
        f"| `batch` again on the finished outputs (resume) | {again:.1f} s | {skipped} of {n_tasks} "
        "tasks skipped | |",
        "",
        f"Batch / loop: {wall / loop_wall:.2f}× the loop's wall time; `--isolate` / loop: "
        f"{iso_wall / loop_wall:.2f}× (all include starting Python and importing bpy). A long-lived "
        "worker pays its start (bpy imported, the add-on enabled) once and loads the networks in its "
        "first task, as the loop does; its per-task seconds are the task's own time in the worker. An "
        "`--isolate` task's seconds include its own worker's start. With "
        f"{args.jobs} jobs on {os.cpu_count()} cores the workers share the cores with the coordinator.",
    ]
    print("\n".join(lines))
    if args.write:
        write_block(DOC, "batch", lines, heading="## Batch (`python build.py bench batch`)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
