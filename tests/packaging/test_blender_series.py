# SPDX-License-Identifier: GPL-3.0-or-later
"""`python build.py test` runs the installed zip in every Blender series the manifest promises."""

import tomllib
from pathlib import Path

from tools import blender_envs

ROOT = Path(__file__).resolve().parents[2]
# Blender's release series, in order (4.x ended at 4.5; 5.0 followed).
RELEASED = ("4.0", "4.1", "4.2", "4.3", "4.4", "4.5", "5.0", "5.1", "5.2")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def promised_series() -> list[str]:
    manifest = tomllib.loads((ROOT / "blender_addon" / "blender_manifest.toml").read_text())
    low, high = _version(manifest["blender_version_min"]), _version(manifest["blender_version_max"])
    # blender_version_max is exclusive: 5.1.0 promises 5.0.x, not 5.1.
    return [s for s in RELEASED if low[:2] <= _version(s) and _version(s) + (0,) < high]


def test_every_promised_series_is_tested_by_default():
    promised = promised_series()
    assert promised == ["4.2", "4.3", "4.4", "4.5", "5.0"]
    tested = set(blender_envs.DEFAULT_SERIES) | set(blender_envs.COMPAT_SERIES)
    assert set(promised) <= tested, f"promised but not tested: {sorted(set(promised) - tested)}"
    assert set(promised) <= set(blender_envs.BPY_VERSIONS)
    for series in tested:
        assert blender_envs.BPY_VERSIONS[series].startswith(series + "."), series
    assert not set(blender_envs.DEFAULT_SERIES) & set(blender_envs.COMPAT_SERIES)


def test_the_compatibility_tier_names_real_tests():
    for path in blender_envs.COMPAT_TESTS:
        assert (ROOT / path).is_file(), path
    assert "tests/blender/test_smoke.py" in blender_envs.COMPAT_TESTS   # every feature once
