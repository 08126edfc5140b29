# SPDX-License-Identifier: GPL-3.0-or-later
"""``batch MANIFEST.json``: rig every character once, bake every (character, take) pair.

Each task is a worker process running this add-on's own ``rig`` or ``bake`` command (the
same interpreter and the same add-on module as this process: ``blender_addon`` from the
source tree, ``bl_ext.user_default.facsimile`` installed), at most ``--jobs`` at a time. A
crash, a leak or a stuck importer in one task cannot take the others down, and a task on a
farm (``--only rig:I`` / ``--only bake:I,J``) runs exactly what a local batch runs.

Resuming, atomic outputs and done-markers are ``core/batch_state.py``; the manifest and
the plan are ``core/batch_plan.py``. This module launches, waits, reports. It does not
import bpy: the orchestrator stays light while the workers load Blender.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from ..core import batch_plan, batch_state
from ..core.batch_plan import ManifestError

ADDON = __package__.rpartition(".")[0] or "blender_addon"
REPORT_NAME = "batch_report.json"

# A worker: this interpreter, the add-on enabled as Blender enables it, then its CLI.
_WORKER = ("import importlib, sys\n"
           "import bpy, addon_utils\n"
           "if addon_utils.enable({addon!r}, default_set=True) is None:\n"
           "    sys.exit('facsimile: error: could not enable the add-on {addon}')\n"
           "entry = importlib.import_module({addon!r} + '.__main__')\n"
           "entry.exit_process(entry.main(sys.argv[1:]))\n")


def worker_command() -> tuple:
    """(argv prefix, environment) that runs ``facsimile COMMAND …`` in a fresh process."""
    env = dict(os.environ)
    bpy = sys.modules.get("bpy")
    if bpy is not None and getattr(bpy.app, "binary_path", ""):
        # Inside the Blender application (``blender --command facsimile batch``):
        # sys.executable is Blender's bundled Python, which has no bpy.
        return [bpy.app.binary_path, "--background", "--command", "facsimile"], env
    if "." not in ADDON:
        # From the source tree: the package's parent folder must be importable in the worker.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    return [sys.executable, "-c", _WORKER.format(addon=ADDON)], env


def _line(msg: str) -> None:
    print(f"[facsimile] {msg}", flush=True)


class _Running:
    def __init__(self, task, proc, temps, inputs, t0, handles):
        self.task, self.proc, self.temps, self.inputs, self.t0, self.handles = \
            task, proc, temps, inputs, t0, handles


class Batch:
    def __init__(self, manifest, tasks, jobs: int, force: bool = False):
        self.manifest, self.out = manifest, manifest.output
        self.tasks, self.jobs, self.force = tasks, max(1, jobs), force
        self.all_ids = {t.id: t for t in batch_plan.plan(manifest)}
        self.results = {}          # task id -> report entry
        self.prefix, self.env = worker_command()
        self.count = 0

    # ------------------------------------------------------------------ one task

    def _entry(self, task, status: str, reason: str, seconds: float = 0.0, **extra) -> dict:
        out_log, err_log = batch_state.log_paths(self.out, task)
        entry = {"task": task.id, "kind": task.kind, "character": task.character.name,
                 "take": task.take.name if task.take else None, "status": status,
                 "reason": reason, "seconds": round(seconds, 2),
                 "outputs": [str(p) for p in task.outputs], **extra}
        if status in ("done", "failed"):
            entry["log"] = {"stdout": str(out_log), "stderr": str(err_log)}
        self.results[task.id] = entry
        self.count += 1
        shown = {"done": f"done in {seconds:.1f} s", "skipped": f"skipped ({reason})",
                 "failed": f"FAILED: {reason}", "blocked": f"NOT RUN: {reason}"}[status]
        _line(f"batch [{self.count}/{len(self.tasks)}] {task.kind} {task.label}: {shown}")
        return entry

    def _dependency(self, task):
        """None when the task may run; else (status, reason) to record instead."""
        if task.depends is None:
            return None
        dep = self.results.get(task.depends)
        if dep is not None:
            if dep["status"] in ("done", "skipped"):
                return None
            return "blocked", f"{task.depends} ({task.character.name}) {dep['status']}"
        if any(t.id == task.depends for t in self.tasks):
            return "wait"
        ok, why = batch_state.up_to_date(self.out, self.all_ids[task.depends])   # --only: run elsewhere
        return None if ok else ("blocked", f"{task.depends} ({task.character.name}) is not done: {why}")

    def _start(self, task):
        if not self.force:
            ok, why = batch_state.up_to_date(self.out, task)
            if ok:
                self._entry(task, "skipped", why)
                return None
        batch_state.forget(self.out, task)
        batch_state.remove_stale(task)
        for p in task.outputs:
            p.parent.mkdir(parents=True, exist_ok=True)
        temps = batch_state.temp_names(task, f"{os.getpid()}-{time.monotonic_ns() % 10**9}")
        inputs = batch_state.fingerprint(task.inputs)
        out_log, err_log = batch_state.log_paths(self.out, task)
        out_log.parent.mkdir(parents=True, exist_ok=True)
        handles = (open(out_log, "w", encoding="utf-8"), open(err_log, "w", encoding="utf-8"))
        try:
            proc = subprocess.Popen([*self.prefix, *task.args(temps)], env=self.env,
                                    stdout=handles[0], stderr=handles[1], stdin=subprocess.DEVNULL)
        except OSError as err:
            for h in handles:
                h.close()
            self._entry(task, "failed", f"cannot start the worker: {err}")
            return None
        return _Running(task, proc, temps, inputs, time.perf_counter(), handles)

    def _finish(self, run: _Running) -> None:
        for h in run.handles:
            h.close()
        task, code = run.task, run.proc.returncode
        seconds = time.perf_counter() - run.t0
        _out_log, err_log = batch_state.log_paths(self.out, task)
        if code == 0:
            try:
                batch_state.commit(self.out, task, run.temps, run.inputs, seconds)
                self._entry(task, "done", "", seconds)
                return
            except OSError as err:
                reason = f"could not keep the outputs: {err}"
        else:
            signal = f" (killed by signal {-code})" if code < 0 else ""
            reason = batch_state.last_line(err_log, f"the worker exited with status {code}{signal}")
            reason = reason.split("facsimile: error: ", 1)[-1]   # the CLI's one line, without its prefix
        batch_state.remove_stale(task)
        self._entry(task, "failed", reason, seconds, returncode=code)

    # ------------------------------------------------------------------ the loop

    def run(self) -> list:
        pending, running = list(self.tasks), []
        try:
            while pending or running:
                for task in list(pending):
                    if len(running) >= self.jobs:
                        break
                    dep = self._dependency(task)
                    if dep == "wait":
                        continue
                    pending.remove(task)
                    if dep is not None:
                        self._entry(task, *dep)
                        continue
                    started = self._start(task)
                    if started is not None:
                        running.append(started)
                for run in list(running):
                    if run.proc.poll() is not None:
                        running.remove(run)
                        self._finish(run)
                if running:
                    time.sleep(0.05)
        finally:   # Ctrl-C or a bug here: no orphan worker keeps writing
            for run in running:
                run.proc.kill()
                run.proc.wait()
                for h in run.handles:
                    h.close()
                batch_state.remove_stale(run.task)
        return [self.results[t.id] for t in self.tasks if t.id in self.results]


def report(manifest, entries: list, jobs: int, seconds: float, only) -> dict:
    counts = {s: sum(e["status"] == s for e in entries) for s in ("done", "skipped", "failed", "blocked")}
    return {"format": "facsimile-batch-report", "version": 1, "manifest": str(manifest.path),
            "output": str(manifest.output), "jobs": jobs, "only": only or None,
            "seconds": round(seconds, 2), "counts": counts,
            "ok": counts["failed"] == 0 and counts["blocked"] == 0, "tasks": entries}


def run(args) -> int:
    """The ``batch`` command; 0 when every selected task is done or up to date, else 1."""
    import json

    t0 = time.perf_counter()
    manifest = batch_plan.load_manifest(args.manifest, args.out)
    tasks = batch_plan.select(batch_plan.plan(manifest), args.only)
    if args.plan:
        print(json.dumps({**batch_plan.farm_ranges(manifest), "output": str(manifest.output),
                          "tasks": [{"task": t.id, "label": t.label, "outputs": [str(p) for p in t.outputs]}
                                    for t in tasks]}, indent=1, ensure_ascii=False))
        return 0
    _line(f"batch: {len(manifest.characters)} characters × {len(manifest.takes)} takes, "
          f"{len(tasks)} tasks, {args.jobs} at a time, into {manifest.output}")
    entries = Batch(manifest, tasks, args.jobs, args.force).run()
    data = report(manifest, entries, args.jobs, time.perf_counter() - t0, args.only)
    if args.report:
        path = Path(args.report)
    elif args.only:   # farm tasks run at once: each keeps its own report
        path = batch_state.state_dir(manifest.output) / "reports" / f"{'_'.join(t.key for t in tasks)[:150]}.json"
    else:
        path = manifest.output / REPORT_NAME
    batch_state.write_json(path, data)
    c = data["counts"]
    _line(f"batch: {c['done']} done, {c['skipped']} up to date, {c['failed']} failed, "
          f"{c['blocked']} not run; report {path}")
    return 0 if data["ok"] else 1


def add_parser(sub) -> None:
    p = sub.add_parser("batch", help="rig many characters and bake many takes from a JSON manifest")
    p.add_argument("manifest", metavar="MANIFEST.json")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the manifest's 'output')")
    p.add_argument("--jobs", "-j", type=int, default=1, help="worker processes at once (default 1)")
    p.add_argument("--only", action="append", metavar="TASK",
                   help="run only these tasks: rig:I, bake:I,J (wildcards: bake:I,*); repeatable. "
                        "A bake whose rig is not done is reported, not run")
    p.add_argument("--force", action="store_true", help="redo tasks even when up to date")
    p.add_argument("--report", metavar="REPORT.json",
                   help="where to write the JSON report (default: OUT/batch_report.json)")
    p.add_argument("--plan", action="store_true",
                   help="print the tasks and the farm parameters as JSON, run nothing")
    p.set_defaults(func=_command)


def _command(args) -> int:
    from .pipeline import CliError

    if args.jobs < 1:
        raise CliError("--jobs must be at least 1")
    try:
        return run(args)
    except ManifestError as err:
        raise CliError(str(err)) from None
