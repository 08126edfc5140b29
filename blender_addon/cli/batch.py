# SPDX-License-Identifier: GPL-3.0-or-later
"""``batch MANIFEST.json``: rig every character once, bake every (character, take) pair.

Tasks run in ``--jobs`` worker processes (``cli/batch_pool.py``): long-lived ones by
default, each running many tasks in turn on a fresh scene with the networks kept loaded
(``cli/batch_worker.py``), or one process per task with ``--isolate``. Either way a task
is the add-on's own ``rig`` or ``bake`` command, and a task on a farm (``--only rig:I`` /
``--only bake:I,J``) runs exactly what a local batch runs.

A task that crashes its worker (a segfault, a kill) or runs past ``--task-timeout`` is
reported failed with the reason, its worker is replaced, and the remaining tasks go on.
A character's bakes wait for its rig and go, where they can, to the worker that rigged it.

Resuming, atomic outputs and done-markers are ``core/batch_state.py``; the manifest and
the plan are ``core/batch_plan.py``. This module schedules and reports. It does not
import bpy: the coordinator stays light while the workers load Blender.
"""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

from ..core import batch_plan, batch_state
from ..core.batch_plan import ManifestError
from .batch_pool import OneShot, Worker, signal_name, worker_command

REPORT_NAME = "batch_report.json"
DEFAULT_TASK_TIMEOUT = 7200.0   # a long video take tracks for minutes, not hours


def _line(msg: str) -> None:
    print(f"[facsimile] {msg}", flush=True)


class _Running:
    """A task handed to a worker: its temporary output names and inputs as they were."""

    def __init__(self, task, temps, inputs):
        self.task, self.temps, self.inputs = task, temps, inputs
        self.dispatched = self.started = None
        self.worker = None


class Batch:
    def __init__(self, manifest, tasks, jobs: int, force: bool = False, isolate: bool = False,
                 task_timeout: float = DEFAULT_TASK_TIMEOUT, log_stem: str = "worker"):
        self.manifest, self.out = manifest, manifest.output
        self.tasks, self.jobs, self.force = tasks, max(1, jobs), force
        self.isolate, self.timeout, self.log_stem = isolate, task_timeout, log_stem
        self.all_ids = {t.id: t for t in batch_plan.plan(manifest)}
        self.results = {}          # task id -> report entry
        self.prefix, self.env = worker_command()
        self.events = queue.Queue()
        self.workers = []          # live processes
        self.spawned = 0
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
        """None when the task may run; "wait"; else (status, reason) to record instead."""
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

    def _prepare(self, task):
        """A :class:`_Running` for a task that must run, None when it is up to date."""
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
        out_log, _err_log = batch_state.log_paths(self.out, task)
        out_log.parent.mkdir(parents=True, exist_ok=True)
        return _Running(task, temps, batch_state.fingerprint(task.inputs))

    def _finish(self, run: _Running, code, reason: str = "") -> None:
        task, slot = run.task, run.worker
        seconds = time.perf_counter() - (run.started or run.dispatched)
        extra = {} if slot is None or not slot.persistent else {"worker": slot.number}
        _out_log, err_log = batch_state.log_paths(self.out, task)
        if not reason and code == 0:
            try:
                batch_state.commit(self.out, task, run.temps, run.inputs, seconds)
                if slot is not None and slot.persistent and task.kind == "rig":
                    slot.rigged.add(task.id)
                self._entry(task, "done", "", seconds, **extra)
                return
            except OSError as err:
                reason = f"could not keep the outputs: {err}"
        elif not reason:
            signal = f" (killed by {signal_name(code)})" if code is not None and code < 0 else ""
            reason = batch_state.last_line(err_log, f"the worker exited with status {code}{signal}")
            reason = reason.split("facsimile: error: ", 1)[-1]   # the CLI's one line, without its prefix
        batch_state.remove_stale(task)
        self._entry(task, "failed", reason, seconds, returncode=code, **extra)

    # ------------------------------------------------------------------ workers

    def _spawn(self, run=None):
        """A new process: a long-lived worker, or (``--isolate``) one running ``run``."""
        self.spawned += 1
        if self.isolate:
            out_log, err_log = batch_state.log_paths(self.out, run.task)
            slot = OneShot(self.spawned, self.events, self.prefix, self.env, run,
                           run.task.args(run.temps), out_log, err_log)
        else:
            log = batch_state.state_dir(self.out) / "logs" / f"{self.log_stem}-{self.spawned}.txt"
            slot = Worker(self.spawned, self.events, self.prefix, self.env, log)
        self.workers.append(slot)
        return slot

    def _assign(self, run, slot=None) -> None:
        run.dispatched = time.perf_counter()
        try:
            if self.isolate:
                slot = self._spawn(run)
            else:
                out_log, err_log = batch_state.log_paths(self.out, run.task)
                slot.send(run, run.task.args(run.temps), out_log, err_log)
        except OSError as err:
            self._finish(run, None, f"cannot start the worker: {err}")
            return
        run.worker = slot

    def _dispatch(self, ready: list) -> None:
        """Hand ready tasks to idle workers (starting new ones up to --jobs); a bake goes to
        the worker that rigged its character when that one is idle."""
        while ready:
            idle = [w for w in self.workers if w.run is None and not w.gone]
            if not idle:
                if len(self.workers) >= self.jobs:
                    return
                if self.isolate:
                    self._assign(ready.pop(0))
                    continue
                try:
                    idle = [self._spawn()]
                except OSError as err:
                    self._finish(ready.pop(0), None, f"cannot start a worker: {err}")
                    continue
            pairs = [(w, r) for w in idle for r in ready if r.task.depends in w.rigged]
            worker, run = pairs[0] if pairs else (idle[0], ready[0])
            ready.remove(run)
            self._assign(run, worker)

    def _retire(self, slot) -> None:
        slot.gone = True
        if slot in self.workers:
            self.workers.remove(slot)

    def _event(self, slot, message: dict) -> None:
        if slot not in self.workers:   # a worker already stopped for a timeout: its last words
            return
        kind, run = message.get("event"), slot.run
        if kind == "ready":
            slot.ready = True
        elif kind == "start" and run is not None and message.get("id") == run.task.id:
            run.started = time.perf_counter()
        elif kind == "done" and run is not None and message.get("id") == run.task.id:
            slot.run = None
            self._finish(run, message.get("code"))
        elif kind == "exit":
            self._retire(slot)
            if run is None:
                return
            slot.run = None
            code = message.get("code")
            if not slot.persistent:   # --isolate: the task's own exit status
                self._finish(run, code)
                return
            how = f"killed by {signal_name(code)}" if code is not None and code < 0 else f"exit status {code}"
            what = "crashed while running this task" if run.started else "ended before running this task"
            last = batch_state.last_line(batch_state.log_paths(self.out, run.task)[1]) if run.started \
                else batch_state.last_line(slot.log)
            self._finish(run, code, f"the worker {what} ({how}); the remaining tasks go on in a new one"
                         + (f"; its last output: {last}" if last else ""))

    def _check_timeouts(self) -> None:
        if not self.timeout:
            return
        now = time.perf_counter()
        for slot in list(self.workers):
            run = slot.run
            if run is None or now - (run.started or run.dispatched) <= self.timeout:
                continue
            slot.kill()
            self._retire(slot)
            slot.run = None
            self._finish(run, None, f"timed out after {self.timeout:g} s (--task-timeout); its worker "
                                    "was stopped" + ("" if self.isolate else ", the remaining tasks go on "
                                                     "in a new one"))

    # ------------------------------------------------------------------ the loop

    def _promote(self, pending: list, ready: list) -> None:
        """Pending tasks whose rig is settled: recorded (skipped, blocked) or made ready."""
        for task in list(pending):
            dep = self._dependency(task)
            if dep == "wait":
                continue
            pending.remove(task)
            if dep is not None:
                self._entry(task, *dep)
                continue
            run = self._prepare(task)
            if run is not None:
                ready.append(run)

    def run(self) -> list:
        pending, ready = list(self.tasks), []
        try:
            while True:
                self._promote(pending, ready)
                self._dispatch(ready)
                busy = any(w.run is not None for w in self.workers)
                if not busy and not ready:
                    if not pending:
                        break
                    for task in pending:   # waiting on a rig nothing will run: cannot happen in plan order
                        self._entry(task, "blocked", f"{task.depends} did not run")
                    break
                try:
                    self._event(*self.events.get(timeout=0.5))
                except queue.Empty:
                    pass
                self._check_timeouts()
        finally:   # Ctrl-C or a bug here: no orphan worker keeps writing
            for slot in list(self.workers):
                if slot.run is not None:
                    slot.kill()
                    batch_state.remove_stale(slot.run.task)
                else:
                    slot.close()
            self.workers.clear()
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
    workers = "a process per task" if args.isolate else "long-lived worker processes"
    _line(f"batch: {len(manifest.characters)} characters × {len(manifest.takes)} takes, "
          f"{len(tasks)} tasks, {args.jobs} at a time ({workers}), into {manifest.output}")
    # Farm tasks (--only) run at once in one output folder: each keeps its own report and
    # worker logs, named after its tasks.
    stem = "_".join(t.key for t in tasks)[:150] if args.only else None
    entries = Batch(manifest, tasks, args.jobs, args.force, args.isolate, args.task_timeout,
                    log_stem=f"worker-{stem}" if stem else "worker").run()
    data = report(manifest, entries, args.jobs, time.perf_counter() - t0, args.only)
    data["workers"] = "isolate" if args.isolate else "long-lived"
    if args.report:
        path = Path(args.report)
    elif stem:
        path = batch_state.state_dir(manifest.output) / "reports" / f"{stem}.json"
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
    p.add_argument("--isolate", action="store_true",
                   help="start a new process for every task (slower: each pays Blender's and the "
                        "networks' start) instead of long-lived workers running many tasks")
    p.add_argument("--task-timeout", type=float, default=DEFAULT_TASK_TIMEOUT, metavar="S",
                   help=f"stop a task running longer than S seconds, report it failed and restart its "
                        f"worker (default {DEFAULT_TASK_TIMEOUT:g}; 0: no limit)")
    p.add_argument("--report", metavar="REPORT.json",
                   help="where to write the JSON report (default: OUT/batch_report.json)")
    p.add_argument("--plan", action="store_true",
                   help="print the tasks and the farm parameters as JSON, run nothing")
    p.set_defaults(func=_command, own_status=True)   # returns its status, writes its own report


def _command(args) -> int:
    from .pipeline import CliError

    if args.jobs < 1:
        raise CliError("--jobs must be at least 1")
    if not args.task_timeout >= 0:
        raise CliError(f"--task-timeout {args.task_timeout:g}: must be 0 (no limit) or a number of seconds")
    try:
        return run(args)
    except ManifestError as err:
        raise CliError(str(err)) from None
