# SPDX-License-Identifier: GPL-3.0-or-later
"""The development suites: ``tests/core`` (the bpy-free core, from the source tree),
``tests/training`` (torch, onnx, the training code) and ``tests/packaging`` (the zip builder),
run by ``python build.py test`` in the project's ``.venv``.

The Blender suite (``tests/blender``) does not come through here: it has its own ini and
conftest and runs in clean Blender environments against the installed zip.

Fixtures: ``ict_path`` / ``facecap_path`` (the shared data, or a skip with the reason).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    return Path(os.environ.get("FACSIMILE_DATA", ROOT.parent / "shared" / "data"))


def to_blender_frame(a):
    """Y-up, +Z-forward data (ICT, glTF) -> Blender's Z-up, face toward -Y."""
    import numpy as np

    a = np.asarray(a)
    return np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)


@pytest.fixture(scope="session")
def ict_path():
    path = data_dir() / "ict" / "ict_facekit.npz"
    if not path.exists():
        pytest.skip(f"ICT-FaceKit data not found at {path} (set FACSIMILE_DATA)")
    return path


@pytest.fixture(scope="session")
def facecap_path():
    path = data_dir() / "facecap" / "facecap.npz"
    if not path.exists():
        pytest.skip(f"facecap data not found at {path} (set FACSIMILE_DATA)")
    return path
