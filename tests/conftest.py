# SPDX-License-Identifier: GPL-3.0-or-later
"""Test harness: the add-on runs inside real Blender (the PyPI ``bpy`` module).

* ``HOME`` and Blender's user folders point at a throw-away directory before bpy
  is imported, so no developer's Blender configuration is read or written.
* ``addon`` (fixture) resets Blender to factory settings, enables the add-on
  through ``addon_utils`` exactly as Blender does, and resets again afterwards.
* ``ict`` / ``facecap`` (fixtures) load the shared data or skip with a reason.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ADDON_MODULE = "blender_addon"

_home = Path(tempfile.mkdtemp(prefix="facsimile-test-home-"))
os.environ["HOME"] = str(_home)
for var, sub in (("BLENDER_USER_CONFIG", "config"), ("BLENDER_USER_SCRIPTS", "scripts"),
                 ("BLENDER_USER_DATAFILES", "datafiles"), ("BLENDER_USER_EXTENSIONS", "extensions")):
    os.environ[var] = str(_home / sub)

# Blender as a Python module; importing it also makes `addon_utils` importable.
import bpy  # noqa: E402


def data_dir() -> Path:
    return Path(os.environ.get("FACSIMILE_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def bpy_module():
    return bpy


def _factory_reset(bpy):
    bpy.ops.wm.read_factory_settings(use_empty=True)


@pytest.fixture
def addon(bpy_module):
    """The add-on enabled in a factory-fresh, empty Blender; yields its module."""
    import addon_utils

    bpy = bpy_module
    _factory_reset(bpy)
    module = addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=_raise)
    assert module is not None, "add-on failed to enable"
    yield module
    addon_utils.disable(ADDON_MODULE, default_set=True, handle_error=_raise)
    _factory_reset(bpy)


def _raise(ex):
    raise ex


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
