# SPDX-License-Identifier: GPL-3.0-or-later
"""The zip `build.py extension` makes is valid and installs like an artist installs it."""

import zipfile

import bpy
import pytest

from tools import extension

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def linux_zip(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    zips = extension.build(out, ["linux-x64"])  # also runs Blender's own `validate`
    assert len(zips) == 1
    return zips[0]


def test_zip_contents(linux_zip):
    with zipfile.ZipFile(linux_zip) as zf:
        names = zf.namelist()
        manifest = zf.read("blender_manifest.toml").decode()
    assert "blender_manifest.toml" in names and "__init__.py" in names
    assert "core/inference.py" in names
    assert any(n.startswith("models/") for n in names)
    wheels = [n for n in names if n.startswith("wheels/")]
    assert any(n.startswith("wheels/onnxruntime-") and "manylinux" in n for n in wheels)
    assert not any("win_amd64" in n or "macosx" in n for n in wheels), "split per platform"
    assert not any(n.startswith("wheels/numpy") for n in wheels), "numpy must never be bundled"
    assert not any("__pycache__" in n for n in names)
    for key in ('id = "facsimile"', 'type = "add-on"', 'blender_version_min = "4.2.0"',
                '"SPDX:GPL-3.0-or-later"', '"Animation"', '"Rigging"', 'platforms = ["linux-x64"]'):
        assert key in manifest


def test_zip_installs_and_enables_in_blender(linux_zip):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.extensions.package_install_files(
        filepath=str(linux_zip), repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}
    module = "bl_ext.user_default.facsimile"
    try:
        assert module in bpy.context.preferences.addons
        assert hasattr(bpy.types, "FACSIMILE_PT_rig")
        prefs = bpy.context.preferences.addons[module].preferences
        assert prefs.execution_provider == "AUTO"
    finally:
        import addon_utils

        addon_utils.disable(module, default_set=True)
        bpy.ops.wm.read_factory_settings(use_empty=True)
    assert not hasattr(bpy.types, "FACSIMILE_PT_rig")
