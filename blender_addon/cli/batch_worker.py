# SPDX-License-Identifier: GPL-3.0-or-later
"""The inside of a long-lived batch worker: ``facsimile batch-worker`` (internal command).

``batch --jobs N`` starts N of these (``cli/batch_pool.py``) instead of one process per
task: importing bpy, enabling the add-on and loading the networks cost about 3 s, against
a tenth of a second for rigging a head or baking a 1,000-frame take. Each worker reads
tasks from its stdin, one JSON line each, and runs them one after another with the CLI's
own ``main`` (the same ``rig``/``bake`` commands a one-process-per-task batch runs), so a
task's work is identical either way:

* each task starts on a factory-fresh empty scene (``commands._start`` ->
  ``pipeline.new_file``), while the networks stay loaded (``core/inference`` caches its
  sessions);
* file descriptors 1 and 2 (Python's and Blender's C code's output alike) go to the task's
  own log files while it runs; between tasks, to the worker's log;
* the worker answers on its original stdout, in lines starting with :data:`MARK`
  (``start`` when a task begins, ``done`` with the CLI's exit status when it ends);
  anything else Blender prints there is ignored by the coordinator;
* stdin is the coordinator's command pipe, so it is moved aside and replaced by the null
  device before any task runs: a child process a task starts cannot eat the next task.

A task that crashes the worker (a segfault in Blender, a kill) or hangs is the
coordinator's business: it sees the pipe close or the time run out, names the task and
starts a new worker.

Test hooks (read only here, only in a worker; for tests/blender/test_batch.py):
``FACSIMILE_TEST_WORKER_CRASH=TEXT`` kills the worker with SIGKILL (``os._exit(70)``
where there are no signals) when a task's arguments contain TEXT, and
``FACSIMILE_TEST_WORKER_HANG=TEXT`` makes such a task sleep forever.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time

MARK = "@@facsimile-batch-worker "
CRASH_HOOK = "FACSIMILE_TEST_WORKER_CRASH"
HANG_HOOK = "FACSIMILE_TEST_WORKER_HANG"


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def _point(fd_out: int, fd_err: int) -> None:
    """Make descriptors 1 and 2 write where ``fd_out`` and ``fd_err`` do."""
    _flush()
    os.dup2(fd_out, 1)
    os.dup2(fd_err, 2)


def _test_hooks(args: list) -> None:
    text = "\0".join(args)
    crash, hang = os.environ.get(CRASH_HOOK), os.environ.get(HANG_HOOK)
    if crash and crash in text:
        _flush()
        if hasattr(signal, "SIGKILL"):   # what a segfault or the OOM killer looks like from outside
            os.kill(os.getpid(), signal.SIGKILL)
        os._exit(70)
    if hang and hang in text:
        while True:
            time.sleep(60)


def run_task(main, args: list, stdout_path: str, stderr_path: str) -> int:
    """``main(args)`` with its output in the two log files; the CLI's exit status."""
    saved = (os.dup(1), os.dup(2))
    try:
        with open(stdout_path, "w", encoding="utf-8") as out, open(stderr_path, "w", encoding="utf-8") as err:
            _point(out.fileno(), err.fileno())
            try:
                _test_hooks(args)
                code = main(list(args))
            except SystemExit as done:   # argparse or a command leaving early
                code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
                if not isinstance(done.code, (int, type(None))):
                    print(f"facsimile: error: {done.code}", file=sys.stderr)
            except Exception as err_:   # main() catches its own; this is a bug in between
                print(f"facsimile: error: {type(err_).__name__}: {err_}", file=sys.stderr)
                code = 1
            _flush()
    finally:
        _point(*saved)
        for fd in saved:
            os.close(fd)
    return int(code)


def serve(main) -> int:
    """Run tasks from stdin until it closes; ``main`` is the CLI's ``commands.main``."""
    _flush()
    answer = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    commands = os.fdopen(os.dup(0), "r", encoding="utf-8")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)   # idle: whatever is printed goes to the worker's log (its stderr)

    def say(**message) -> None:
        answer.write(MARK + json.dumps(message) + "\n")
        answer.flush()

    say(event="ready", pid=os.getpid())
    for line in commands:
        if not line.strip():
            continue
        task = json.loads(line)
        say(event="start", id=task["id"])
        code = run_task(main, task["args"], task["stdout"], task["stderr"])
        say(event="done", id=task["id"], code=code)
    answer.close()
    return 0


def add_parser(sub, main) -> None:
    """The internal ``batch-worker`` command (no help entry: only ``batch`` starts it)."""
    p = sub.add_parser("batch-worker")
    p.set_defaults(func=lambda _args: serve(main), own_status=True)
