# SPDX-License-Identifier: GPL-3.0-or-later
"""Smoke test of the whole product, per Blender version: a fresh process of this clean Blender,
no test runner on its path, an empty user folder, the built zip installed by Blender's own
installer, then every feature once (``smoke_product.py``). Each step must end FINISHED or in a
one-line report, never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from blender_helpers import clean_env
from conftest import data_dir
from test_video_import import known_video  # noqa: F401  (the rendered face clip, cached)

HERE = Path(__file__).resolve().parent
MUST_FINISH = ("install", "rig Suzanne", "import take", "preview on", "preview off", "bake", "encode mesh",
               "export glTF", "uninstall")


def _smoke(tmp_path: Path, facecap: str = "-", video: str = "-") -> dict[str, str]:
    home = Path(tempfile.mkdtemp(prefix="facsimile-smoke-"))
    env = clean_env(BLENDER_USER_RESOURCES=home / "blender", HOME=home)
    done = subprocess.run([sys.executable, "-P", str(HERE / "smoke_product.py"), os.environ["FACSIMILE_ZIP"],
                           str(tmp_path / "work"), facecap, video], env=env, capture_output=True, text=True,
                          timeout=900, cwd=tmp_path)
    steps = dict(re.findall(r"^STEP (.+?): (\S+)", done.stdout, flags=re.M))
    assert "Traceback" not in done.stdout + done.stderr, done.stdout[-4000:] + done.stderr[-4000:]
    assert done.returncode == 0, done.stderr[-4000:]
    return steps


def test_every_feature_from_the_installed_zip(tmp_path):
    steps = _smoke(tmp_path)
    for name in MUST_FINISH:
        assert steps.get(name) == "FINISHED", (name, steps)
    # A clip with no face is refused in one line: nothing to track is not a crash.
    assert steps["import video"] == "REPORT"


@pytest.mark.slow
@pytest.mark.data
def test_every_feature_with_the_facecap_head_and_a_face_video(tmp_path, known_video):
    steps = _smoke(tmp_path, facecap=str(data_dir() / "facecap" / "facecap.npz"), video=str(known_video[0]))
    for name in (*MUST_FINISH, "rig facecap", "import video"):
        assert steps.get(name) == "FINISHED", (name, steps)
