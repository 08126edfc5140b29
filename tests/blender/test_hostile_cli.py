# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile command lines (issue 15): arguments checked before any work, exit 2 with one
line, inputs never overwritten, target files opened with Python auto-execution off."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.takes import Take, write_llf_csv
from blender_helpers import clean_env, monkey_head, run_cli
from hostile_helpers import memory_ceiling  # noqa: F401


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile_cli")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    monkey_head("Head")
    bpy.ops.wm.obj_export(filepath=str(tmp / "head.obj"), export_selected_objects=True,
                          export_materials=False, forward_axis="NEGATIVE_Y", up_axis="Z")
    # A target .blend that would leave a mark if any of its Python ran: a registered text
    # block and a Python-expression driver.
    marker = tmp / "ran.txt"
    text = bpy.data.texts.new("evil.py")
    text.write(f"open({str(marker)!r}, 'w').write('text')\n")
    text.use_module = True
    obj = bpy.data.objects["Head"]
    obj.shape_key_add(name="Basis")
    kb = obj.shape_key_add(name="jawOpen")
    fc = kb.driver_add("value")
    fc.driver.expression = f"len(open({str(marker)!r}, 'w').write('driver')) * 0"
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp / "evil.blend"))
    t = np.arange(12) / 24.0
    write_llf_csv(tmp / "take.csv", Take(times=t, names=list(arkit.ARKIT_52),
                                         weights=np.full((12, 52), 0.3), fps=24.0))
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return tmp


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


CASES = {
    "out_is_input": (("rig", "{dir}/head.obj", "--out", "{dir}/head.obj"), "must be a .blend"),
    "out_equal_blend_input": (("bake", "{dir}/evil.blend", "--take", "{dir}/take.csv", "--out", "{dir}/evil.blend"),
                              "is also an input"),
    "out_not_blend": (("rig", "{dir}/head.obj", "--out", "{dir}/x.txt"), "must be a .blend"),
    "offset_nan": (("bake", "{dir}/head.obj", "--take", "{dir}/take.csv", "--out", "{dir}/o.blend",
                    "--offset", "nan"), "--offset nan"),
    "offset_huge": (("bake", "{dir}/head.obj", "--take", "{dir}/take.csv", "--out", "{dir}/o.blend",
                     "--offset", "1e30"), "--offset 1e+30"),
    "frame_step_0": (("bake", "{dir}/head.obj", "--take", "{dir}/take.csv", "--out", "{dir}/o.blend",
                      "--frame-step", "0"), "--frame-step 0"),
    "smoothing_negative": (("bake", "{dir}/head.obj", "--take", "{dir}/take.csv", "--out", "{dir}/o.blend",
                            "--smoothing", "-3"), "--smoothing -3"),
    "glb_not_glb": (("bake", "{dir}/head.obj", "--take", "{dir}/take.csv", "--out", "{dir}/o.blend",
                     "--glb", "{dir}/o.blend"), ".glb file"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_arguments_exit_2_before_any_work(files, case):
    args, message = CASES[case]
    digests = {p.name: _digest(p) for p in files.iterdir() if p.is_file()}
    out = run_cli(*[a.format(dir=files) for a in args], home=files / "home")
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and message in errors[0], out.stderr
    assert "[facsimile] loading" not in out.stdout, "checked before any work"
    assert "module changed on disk" not in out.stdout + out.stderr
    assert {p.name: _digest(p) for p in files.iterdir() if p.is_file()} == digests


def test_an_operator_error_is_printed_once(files):
    (files / "gap.csv").write_text("Timecode,JawOpen\n" + "".join(
        f"00:00:00:{i:02d}.000,0.5\n" for i in range(20)) + "06:00:00:00.000,0.5\n")
    out = run_cli("bake", files / "head.obj", "--take", files / "gap.csv", "--out", files / "o.blend",
                  home=files / "home")
    assert out.returncode == 2
    both = out.stdout + out.stderr
    assert both.count("cut the stray rows") == 1, both
    assert "module changed on disk" not in both
    assert not (files / "o.blend").exists()


# The user's preference is read as Blender's own binary reads it at startup (the bpy module
# starts from factory preferences, so the launcher asks for the saved ones explicitly). The
# bpy module of Blender 4.2 crashes in read_userpref (signal 11): there the same preference
# is set in the session, which is what loading it does.
_WITH_PREFS = """
import importlib, os, sys
import bpy, addon_utils
if bpy.app.version >= (4, 3, 0):
    assert bpy.ops.wm.read_userpref() == {"FINISHED"}
else:
    bpy.context.preferences.filepaths.use_scripts_auto_execute = True
assert bpy.context.preferences.filepaths.use_scripts_auto_execute, "the saved preference did not load"
if sys.argv[1] == "--plain-open":
    bpy.ops.wm.open_mainfile(filepath=sys.argv[2])
    bpy.context.scene.frame_set(2)
    os._exit(0)     # bpy 4.2's exit handlers crash after this file's scripts ran (signal 11)
module = "bl_ext.user_default.facsimile"
assert addon_utils.enable(module, default_set=True) is not None
entry = importlib.import_module(module + ".__main__")
entry.exit_process(entry.main(sys.argv[1:]))
"""


@pytest.fixture
def autorun_preference():
    """The user's saved preferences with "Auto Run Python Scripts" on, for the processes
    started by this test (the file is put back afterwards)."""
    config = Path(bpy.utils.resource_path("USER")) / "config"
    userpref = config / "userpref.blend"
    saved = userpref.read_bytes() if userpref.exists() else None
    code = ("import bpy\n"
            "bpy.context.preferences.filepaths.use_scripts_auto_execute = True\n"
            "assert bpy.ops.wm.save_userpref() == {'FINISHED'}\n")
    done = subprocess.run([sys.executable, "-c", code], env=clean_env(), capture_output=True, text=True)
    assert done.returncode == 0 and userpref.exists(), done.stderr[-2000:]
    yield
    if saved is None:
        userpref.unlink()
    else:
        userpref.write_bytes(saved)


def _with_prefs(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _WITH_PREFS, *map(str, args)], env=clean_env(),
                          capture_output=True, text=True, timeout=900)


def test_target_blend_runs_no_python_whatever_the_preference(files, autorun_preference):
    """Must-show 5: with auto-run on in the user's preferences, opening evil.blend plainly
    runs its registered text (the control); the CLI opens it and nothing runs."""
    marker = files / "ran.txt"
    control = _with_prefs("--plain-open", files / "evil.blend")
    assert control.returncode == 0, control.stderr[-2000:]
    assert marker.exists(), "the control: with auto-run on, the file's text and driver run"
    marker.unlink()
    out = _with_prefs("bake", files / "evil.blend", "--take", files / "take.csv", "--out", files / "baked.blend")
    assert not marker.exists(), out.stdout + out.stderr
    # The bake itself refuses the driven key, in one line, and writes nothing.
    assert out.returncode == 2 and "drivers set 1 of its keys" in out.stderr, out.stderr
    assert not (files / "baked.blend").exists()
