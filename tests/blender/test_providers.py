# SPDX-License-Identifier: GPL-3.0-or-later
"""Execution providers as the installed builds offer them.

* The preference lists what the installed ONNX Runtime offers, and keeps the choice by name.
* Parity: every GPU provider a build offers gives the CPU's answers on the shipped models
  (max abs diff <= 1e-4 in model units), each skipped with its reason where absent.
* The NVIDIA variant zip (``FACSIMILE_ZIP_CUDA``) on a machine without a working CUDA:
  every feature still runs, on the CPU, and the report names the fallback and its reason.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import bpy
import pytest

from blender_helpers import clean_env
from conftest import ADDON_MODULE

HERE = Path(__file__).resolve().parent
TOLERANCE = 1e-4


def _fresh(script: str, *args, timeout: int = 900) -> subprocess.CompletedProcess:
    home = Path(tempfile.mkdtemp(prefix="facsimile-providers-"))
    env = clean_env(BLENDER_USER_RESOURCES=home / "blender", HOME=home)
    return subprocess.run([sys.executable, "-P", str(HERE / script), *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=home)


def _parity(zip_path: str) -> dict:
    done = _fresh("provider_parity.py", zip_path)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("PARITY "))
    return json.loads(line[7:])


def test_preference_lists_what_the_build_offers(addon):
    from bl_ext.user_default.facsimile.core import inference

    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    # A dynamic enum: its items come from the callback (RNA lists none without a context).
    items = [item[0] for item in type(prefs).__annotations__["execution_provider"].keywords["items"](prefs, bpy.context)]
    assert items == inference.offered_choices()
    assert items[0] == "AUTO" and items[-1] == "CPU"
    prefs.execution_provider = "CPU"
    assert prefs.execution_provider == "CPU" and prefs.execution_provider_name == "CPU"
    prefs.execution_provider_name = "DIRECTML"          # saved on a Windows machine, say
    if "DIRECTML" not in items:
        assert prefs.execution_provider == "AUTO"       # shown as Auto, kept by name
        assert prefs.execution_provider_name == "DIRECTML"


@pytest.mark.parametrize("choice", ["CUDA", "DIRECTML", "COREML"])
def test_each_offered_provider_matches_the_cpu(choice):
    report = _parity(os.environ["FACSIMILE_ZIP"])
    result = report[choice]
    if "skipped" in result:
        pytest.skip(result["skipped"])
    assert result["max_abs_diff"] <= TOLERANCE


@pytest.mark.slow
def test_cuda_variant_runs_everything_and_says_what_ran(tmp_path):
    zip_path = os.environ.get("FACSIMILE_ZIP_CUDA", "")
    if not zip_path or not Path(zip_path).is_file():
        pytest.skip("no CUDA variant zip built for this run (FACSIMILE_ZIP_CUDA)")
    report = _parity(zip_path)
    assert "CUDAExecutionProvider" in report["offered"]
    if "skipped" in report["CUDA"]:          # no NVIDIA GPU here: the CPU runs, and says why
        assert report["label"].startswith("CPU (fallback: CUDA could not start")
    else:
        assert report["CUDA"]["max_abs_diff"] <= TOLERANCE and report["label"] == "CUDA"
    done = _fresh("smoke_product.py", zip_path, tmp_path / "work")
    steps = dict(re.findall(r"^STEP (.+?): (\S+)", done.stdout, flags=re.M))
    assert done.returncode == 0 and "TRACEBACK" not in steps.values(), done.stdout[-3000:]
    assert steps["rig Suzanne"] == steps["bake"] == steps["encode mesh"] == "FINISHED"
