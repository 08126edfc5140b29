# SPDX-License-Identifier: GPL-3.0-or-later
"""``--json``: a machine-readable report of what a command did, for pipelines.

``--json PATH`` writes it to a file (atomically: a scratch file renamed into place);
``--json -`` prints it on stdout, and then stdout carries nothing else: from the start of
the command, everything written to file descriptor 1 (the progress lines, and whatever
Blender or a library prints) goes to stderr instead, so ``… --json - | jq`` always parses.
The report is written when the command fails too (``"ok": false`` and the error line).
No bpy: it is set up before Blender loads anything.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

SCHEMA = 1   # raised when a key changes meaning; new keys may appear at any time


class Report:
    def __init__(self, destination: str | None, command: str, version: str):
        self.destination = destination
        self.data = {"schema": SCHEMA, "command": command, "version": version, "ok": False}
        self._stdout_fd = None
        if destination == "-":
            # Keep the real stdout for the report only; fd 1 (Python's and C's) becomes stderr.
            sys.stdout.flush()
            self._stdout_fd = os.dup(1)
            os.dup2(2, 1)

    def add(self, key: str, entry) -> None:
        self.data.setdefault(key, []).append(entry)

    def set(self, **values) -> None:
        self.data.update(values)

    def write(self) -> None:
        if self.destination is None:
            return
        text = json.dumps(self.data, indent=2, default=str) + "\n"
        if self._stdout_fd is not None:
            sys.stdout.flush()
            with os.fdopen(self._stdout_fd, "w", encoding="utf-8") as real_stdout:
                real_stdout.write(text)
            self._stdout_fd = None
            return
        path = Path(self.destination).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
