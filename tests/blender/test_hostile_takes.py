# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile take files through the import operator (issue 15): one line, nothing made."""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.takes import Take
from bl_ext.user_default.facsimile.core.takes.llf_csv import format_llf_csv
from blender_helpers import monkey_head
from hostile_helpers import assert_file_same, file_state, memory_ceiling, refused  # noqa: F401


def _text(frames=120, fps=60.0) -> str:
    t = np.arange(frames) / fps
    return format_llf_csv(Take(times=t, names=list(arkit.ARKIT_52),
                               weights=0.5 + 0.4 * np.sin(t[:, None] * np.arange(1, 53))))


def _hours_later(text: str, hours: int) -> str:
    rows = text.splitlines()
    h, rest = rows[-1].split(":", 1)
    rows[-1] = f"{int(h) + hours:02d}:{rest}"
    return "\n".join(rows) + "\n"


def test_last_row_hours_later_is_refused_and_nothing_made(addon, tmp_path):
    """Case 1: 14-80 s, 4.6-18 GB and a 1-518,668 frame range before; now one line."""
    monkey_head()
    bpy.context.scene.frame_end = 77
    path = tmp_path / "gap.csv"
    path.write_text(_hours_later(_text(), 6))
    before = file_state()
    msg = refused(bpy.ops.facsimile.import_take, filepath=str(path))
    assert "frame 119 comes 6.0 h after" in msg and "cut the stray rows" in msg
    assert_file_same(before, file_state())


@pytest.mark.parametrize("case", ["utf16", "duplicate", "semicolon", "rotation"])
def test_small_file_problems(addon, tmp_path, case):
    monkey_head()
    text = _text(frames=30)
    path = tmp_path / f"{case}.csv"
    before = file_state()
    if case == "utf16":
        path.write_bytes(text.encode("utf-16"))
        assert bpy.ops.facsimile.import_take(filepath=str(path)) == {"FINISHED"}
        return
    if case == "duplicate":
        rows = text.splitlines()
        text = "\n".join([rows[0] + ",JAWOPEN"] + [r + ",0.1" for r in rows[1:]])
        message = "are the same blend shape"
    elif case == "semicolon":
        text = text.replace(",", ";")
        message = "separated by ';'"
    else:
        rows = text.splitlines()
        col = rows[0].split(",").index("HeadYaw")
        cells = rows[3].split(",")
        cells[col] = "1e30"
        rows[3] = ",".join(cells)
        text = "\n".join(rows)
        message = "not in radians"
    path.write_text(text)
    msg = refused(bpy.ops.facsimile.import_take, filepath=str(path))
    assert message in msg
    assert_file_same(before, file_state())
