# SPDX-License-Identifier: GPL-3.0-or-later
"""The batch's worker processes, seen from the coordinator. No bpy.

Two kinds, one interface (``run`` — the task it is busy with — ``gone``, ``kill``):

* :class:`Worker` (the default): a long-lived ``facsimile batch-worker`` process
  (``cli/batch_worker.py``) that runs many tasks in turn, fed one JSON line per task on
  its stdin; it answers ``ready``/``start``/``done`` on its stdout.
* :class:`OneShot` (``--isolate``): one process per task running the ``rig`` or ``bake``
  command itself, as batches did first: the worker's start (about 3 s) paid per task.

Both are this interpreter with this add-on (``blender_addon`` from a source tree,
``bl_ext.user_default.facsimile`` installed, Blender itself under ``blender --command``).
A reader thread per process turns its messages and its exit into ``(slot, message)``
events on one queue, so the coordinator waits on one thing, on every platform (no select
on pipes, which Windows lacks).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

from .batch_worker import MARK

ADDON = __package__.rpartition(".")[0] or "blender_addon"

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


def signal_name(code: int) -> str:
    """'SIGKILL' for -9 (the form ``subprocess`` gives a process a signal ended)."""
    import signal

    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


class _Slot:
    """What both kinds share: the process, the task it runs, and its reader thread."""

    def __init__(self, number: int, events: queue.Queue):
        self.number, self.events = number, events
        self.run = None          # the coordinator's record of the task this process runs
        self.gone = False        # exited, or killed by the coordinator
        self.spawned = time.perf_counter()
        self.proc = None

    def _watch(self, reader) -> None:
        threading.Thread(target=reader, daemon=True, name=f"facsimile-batch-{self.number}").start()

    def kill(self) -> None:
        """Stop the process now and wait for it (its outputs must not change after this)."""
        self.gone = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:   # unkillable (a dead NFS mount): leave it
                pass


class Worker(_Slot):
    """A long-lived worker process; ``rigged`` are the rig tasks it ran (bakes prefer it)."""

    persistent = True

    def __init__(self, number: int, events: queue.Queue, prefix: list, env: dict, log: Path):
        super().__init__(number, events)
        self.ready, self.rigged, self.log = False, set(), Path(log)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "wb") as handle:   # the child keeps its own descriptor
            self.proc = subprocess.Popen([*prefix, "batch-worker"], env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=handle)
        self._watch(self._read)

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            if line.startswith(MARK):   # anything else is Blender talking: not ours
                try:
                    self.events.put((self, json.loads(line[len(MARK):])))
                except ValueError:
                    pass
        self.events.put((self, {"event": "exit", "code": self.proc.wait()}))

    def send(self, run, args: list, stdout: Path, stderr: Path) -> None:
        """Hand a task over; a dead worker's broken pipe shows up as its exit event."""
        self.run = run
        line = json.dumps({"id": run.task.id, "args": args, "stdout": str(stdout), "stderr": str(stderr)})
        try:
            self.proc.stdin.write(line.encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass

    def close(self, wait: float = 60.0) -> None:
        """No more tasks: the worker ends when its stdin closes."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            self.kill()
        self.gone = True


class OneShot(_Slot):
    """``--isolate``: one process running one task's ``rig``/``bake`` command, then exiting."""

    persistent = False

    def __init__(self, number: int, events: queue.Queue, prefix: list, env: dict, run,
                 args: list, stdout: Path, stderr: Path):
        super().__init__(number, events)
        self.run = run
        with open(stdout, "wb") as out, open(stderr, "wb") as err:
            self.proc = subprocess.Popen([*prefix, *args], env=env, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)
        self.events.put((self, {"event": "start", "id": run.task.id}))
        self._watch(lambda: self.events.put((self, {"event": "exit", "code": self.proc.wait()})))

    def close(self, wait: float = 60.0) -> None:
        self.gone = True
