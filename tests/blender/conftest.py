# SPDX-License-Identifier: GPL-3.0-or-later
"""The Blender suite runs the add-on the way an artist has it.

``python build.py test`` starts this suite in a clean ``bpy`` environment per Blender version
(``tools/blender_envs.py``: bpy, the numpy that Blender bundles, nothing else) with
``FACSIMILE_ZIP`` naming the extension zip it just built. Before any test module is imported:

* ``BLENDER_USER_RESOURCES`` points at a throw-away folder, so no developer's Blender
  configuration is read or written;
* the zip is installed with Blender's own installer (``extensions.package_install_files``),
  which unpacks its wheels into the extension site-packages Blender manages;
* the source tree is checked not to be importable: tests import the add-on as
  ``bl_ext.user_default.facsimile``, from the installed folder.

Fixtures: ``addon`` (the add-on enabled in a factory-fresh, empty Blender), ``ict_path`` /
``facecap_path`` / ``rocketbox_dir`` (shared data, or a skip with the reason).
"""

from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADDON_MODULE = "bl_ext.user_default.facsimile"

_zip = os.environ.get("FACSIMILE_ZIP", "")
if not _zip or not Path(_zip).is_file():
    raise pytest.UsageError("the Blender suite tests the built extension: run it with `python build.py test` "
                            f"(FACSIMILE_ZIP={_zip!r} is not a zip)")
if importlib.util.find_spec("blender_addon") is not None or importlib.util.find_spec("tools") is not None:
    raise pytest.UsageError("the source tree is importable in the Blender suite; run it with `python build.py test`")

_home = Path(tempfile.mkdtemp(prefix="facsimile-blender-home-"))
os.environ["HOME"] = str(_home)
os.environ["BLENDER_USER_RESOURCES"] = str(_home / "blender")

import bpy  # noqa: E402  (after the user folders are set)


def _install() -> Path:
    # As an artist installs it: enabled on install, which also puts the extension site-packages
    # (its wheels) on sys.path, so test modules can import PyAV at collection.
    done = bpy.ops.extensions.package_install_files(filepath=_zip, repo="user_default", enable_on_install=True)
    if done != {"FINISHED"}:
        raise pytest.UsageError(f"Blender's installer did not install {_zip}: {done}")
    # Saved as enabled: the fresh Blender processes some tests start (the CLI, renders) share
    # this user folder, and a Blender that starts with the extension disabled removes its
    # wheels from the extension site-packages, under this process's feet.
    bpy.ops.wm.save_userpref()
    spec = importlib.util.find_spec(ADDON_MODULE)
    if spec is None:
        raise pytest.UsageError(f"{ADDON_MODULE} is not importable after installing {_zip}")
    return Path(spec.origin).parent


INSTALLED = _install()


def data_dir() -> Path:
    return Path(os.environ.get("FACSIMILE_DATA", ROOT.parent / "shared" / "data"))


def pytest_report_header(config):
    return [f"Blender {bpy.app.version_string}, numpy {__import__('numpy').__version__}, "
            f"add-on installed from {Path(_zip).name} at {INSTALLED}"]


@pytest.fixture(scope="session")
def bpy_module():
    return bpy


def _factory_reset():
    bpy.ops.wm.read_factory_settings(use_empty=True)


def _raise(ex):
    raise ex


@pytest.fixture
def addon(bpy_module):
    """The add-on enabled in a factory-fresh, empty Blender; yields its module."""
    import addon_utils

    _factory_reset()
    module = addon_utils.enable(ADDON_MODULE, default_set=True, handle_error=_raise)
    assert module is not None, "add-on failed to enable"
    yield module
    addon_utils.disable(ADDON_MODULE, default_set=True, handle_error=_raise)
    _factory_reset()


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


_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """The bpy module of Blender 4.2 and 4.3 can crash in its C++ exit handlers (a Python
    class freed after Python has finalised: once the glTF exporter has run on 4.2, once an
    add-on with property callbacks was unregistered on both; see cli.commands.exit_process and
    smoke_product.py); leave with pytest's own status, reports written."""
    if bpy.app.version < (4, 4, 0):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)
