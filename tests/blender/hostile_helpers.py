# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared by the hostile-input suites (tests/blender/test_hostile_*.py): the one-line
report of a refused operator, the whole-file state, and the 3 GB memory ceiling."""

from __future__ import annotations

import resource

import bpy
import pytest

from blender_helpers import scene_state, snapshot

MAX_RSS_GB = 3.0


def refused(operator, **kwargs) -> str:
    """Run an operator that must refuse; its one-line message (Blender raises it)."""
    with pytest.raises(RuntimeError) as err:
        operator(**kwargs)
    lines = [line for line in str(err.value).strip().splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in lines[0] and "argmin" not in lines[0]
    return lines[0]


def file_state() -> dict:
    """Every mesh object's data (positions, keys, groups) and the scene: objects, actions,
    frame range, drive source."""
    meshes = {o.name: snapshot(o) for o in bpy.data.objects if o.type == "MESH" and o.library is None}
    return {"scene": scene_state(), "meshes": meshes}


def assert_file_same(a: dict, b: dict) -> None:
    from blender_helpers import assert_same

    assert a["scene"] == b["scene"]
    assert list(a["meshes"]) == list(b["meshes"])
    for name in a["meshes"]:
        assert_same(a["meshes"][name], b["meshes"][name])


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2   # kB on Linux


@pytest.fixture(scope="module", autouse=True)
def memory_ceiling():
    """No case of the module takes the process above 3 GB (peak resident set)."""
    yield
    assert peak_rss_gb() < MAX_RSS_GB, f"peak memory {peak_rss_gb():.2f} GB"
