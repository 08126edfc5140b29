# SPDX-License-Identifier: GPL-3.0-or-later
"""What a batch has already done: done-markers, and outputs written all at once. No bpy.

A task's outputs are written under temporary names in their final folder and renamed into
place only when the worker succeeded (a rename within one folder is atomic), so a final
name is either absent or complete. Then a marker ``OUTPUT/.facsimile-batch/KEY.json``
records the command and the size and modification time of every input and output.

A task is up to date when its marker exists, names the same command, and every input and
output still has the recorded size and time. So a finished output is not redone; a changed
input, changed options, a replaced, truncated or deleted output are redone; a crashed
worker left no marker (and only temporary files, removed before the retry), so it is redone.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

STATE_FOLDER = ".facsimile-batch"
MARKER_VERSION = 1


def state_dir(output: Path) -> Path:
    return Path(output) / STATE_FOLDER


def marker_path(output: Path, task) -> Path:
    return state_dir(output) / f"{task.key}.json"


def log_paths(output: Path, task) -> tuple:
    """(stdout, stderr) of the task's last worker: kept, so a failure can be read in full."""
    logs = state_dir(output) / "logs"
    return logs / f"{task.key}.out.txt", logs / f"{task.key}.err.txt"


def fingerprint(paths) -> dict:
    """{path: [size, mtime_ns]} (None for a missing file)."""
    out = {}
    for p in paths:
        try:
            st = os.stat(p)
            out[str(p)] = [st.st_size, st.st_mtime_ns]
        except OSError:
            out[str(p)] = None
    return out


def up_to_date(output: Path, task) -> tuple:
    """(True, "up to date") or (False, why the task must run)."""
    path = marker_path(output, task)
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return False, "not done yet"
    except (OSError, ValueError):
        return False, "unreadable marker"
    if marker.get("version") != MARKER_VERSION or marker.get("command") != task.args():
        return False, "options changed"
    now_in = fingerprint(task.inputs)
    for p, fp in now_in.items():
        if fp is None:
            return False, f"input missing: {Path(p).name}"
        if marker.get("inputs", {}).get(p) != fp:
            return False, f"input changed: {Path(p).name}"
    for p, fp in fingerprint(task.outputs).items():
        if fp is None:
            return False, f"output missing: {Path(p).name}"
        if marker.get("outputs", {}).get(p) != fp:
            return False, f"output changed: {Path(p).name}"
    return True, "up to date"


def temp_names(task, token: str) -> dict:
    """{final: temporary} in the same folder, same extension (Blender picks the format by it)."""
    return {p: p.with_name(f"{p.stem}.partial-{token}{p.suffix}") for p in task.outputs}


def remove_stale(task) -> list:
    """Delete temporary files a killed worker (or batch) left for this task's outputs."""
    removed = []
    for p in task.outputs:
        if p.parent.is_dir():
            for stale in p.parent.glob(f"{p.stem}.partial-*{p.suffix}"):
                try:
                    stale.unlink()
                    removed.append(stale)
                except OSError:
                    pass
    return removed


def forget(output: Path, task) -> None:
    """The task is about to run: its old marker no longer describes its outputs."""
    try:
        marker_path(output, task).unlink()
    except FileNotFoundError:
        pass


def commit(output: Path, task, temps: dict, inputs_before: dict, seconds: float) -> None:
    """Rename every temporary output into place, then write the marker (itself atomically).

    ``inputs_before`` is the inputs' fingerprint taken before the worker started: an input
    edited while the task ran does not get marked as done with the new version.
    """
    missing = [t.name for t in temps.values() if not t.is_file()]
    if missing:
        raise OSError(f"the worker did not write {', '.join(missing)}")
    for final, temp in temps.items():
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)
    write_json(marker_path(output, task), {
        "version": MARKER_VERSION, "task": task.id, "command": task.args(),
        "inputs": inputs_before, "outputs": fingerprint(task.outputs),
        "seconds": round(seconds, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")})


def write_json(path: Path, data) -> Path:
    """``data`` as JSON at ``path``, through a temporary name and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def last_line(path: Path, fallback: str = "") -> str:
    """The last non-empty line of a log (the CLI's one-line error), or ``fallback``."""
    try:
        lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return fallback
    lines = [ln for ln in lines if ln]
    return lines[-1] if lines else fallback


def read_marker(output: Path, task) -> Optional[dict]:
    try:
        return json.loads(marker_path(output, task).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
