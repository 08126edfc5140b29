# SPDX-License-Identifier: GPL-3.0-or-later
"""Build the installable extension: one zip per platform, with ONNX Runtime inside.

Uses Blender's own extension tool (``blender_ext.py``, shipped inside the bpy
wheel) for both ``build --split-platforms`` and ``validate``, so the rules checked
are exactly the ones ``blender --command extension validate`` applies.

ONNX Runtime versions per platform (all cp311: Blender 4.2 LTS to 5.0):

* linux-x64   1.31.1  newest; tested in-process with bpy 5.0.1 by the test-suite.
* windows-x64 1.18.1  Blender 4.2-5.0 preload MSVCP140 14.29 from ``blender.crt``;
                      ORT wheels from 1.19 on are built with a newer VS2022 runtime
                      and fail with "DLL initialization routine failed" there.
* macos-arm64 1.23.2  the last release with a ``macosx_13_0`` wheel; 1.31.1 needs
                      macOS 14.

Pure-Python dependencies ship in every zip: ONNX Runtime's (flatbuffers, packaging,
protobuf), as the extension rules ask ("wheels must include their dependencies"), and
threadpoolctl (the eigensolver runs on one BLAS thread, see core/spectral.py); numpy never
does: Blender has its own, and a bundled numpy would shadow it for every add-on.
The models are exported at ONNX opset 17 / IR 8, which all three versions load (a test
runs them in 1.18.1, the oldest, and compares with the current runtime).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "blender_addon"
CACHE = ROOT / ".cache" / "wheels"

PLATFORMS = {
    # platform: (onnxruntime version, pip --platform tag)
    "linux-x64": ("1.31.1", "manylinux_2_28_x86_64"),
    "windows-x64": ("1.18.1", "win_amd64"),
    "macos-arm64": ("1.23.2", "macosx_13_0_arm64"),
}
# PyAV (FFmpeg's libraries in one wheel) decodes performance videos (blender_addon/video).
# abi3 wheels; macOS arm64 stays on 15.1.0, the last release with a macosx_13_0 wheel.
AV_VERSIONS = {"linux-x64": "18.1.0", "windows-x64": "18.1.0", "macos-arm64": "15.1.0"}
PURE_DEPS = ("flatbuffers==25.12.19", "packaging==26.3", "protobuf==7.36.2", "threadpoolctl==3.8.0")
# Never copied into the staged extension.
EXCLUDE = shutil.ignore_patterns("__pycache__", "*.pyc", ".*", "*.zip")


def blender_ext_tool() -> Path:
    import importlib.util

    # Locate the wheel's folder without importing bpy (importing it is slow).
    base = Path(importlib.util.find_spec("bpy").origin).parent
    found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit("blender_ext.py not found inside the bpy package")
    return found[-1]


def _pip_download(spec: str, dest: Path, platform: str | None) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
           "--only-binary=:all:", "--python-version", "3.11", "-d", str(dest), spec]
    if platform:
        cmd += ["--implementation", "cp", "--platform", platform]
    subprocess.run(cmd, check=True)


def _platform_wheel(name: str, version: str, plat: str, tag: str) -> list[Path]:
    folder = CACHE / plat
    pattern = f"{name}-{version}-*.whl"
    if not list(folder.glob(pattern)):
        _pip_download(f"{name}=={version}", folder, tag)
    found = sorted(folder.glob(pattern))
    if not found:
        raise SystemExit(f"no {name} {version} wheel for {plat}")
    return found


def fetch_wheels(platforms: list[str]) -> list[Path]:
    """Download (once, cached in .cache/wheels) every wheel the zips need."""
    wheels = []
    for spec in PURE_DEPS:
        name, version = spec.split("==")
        pattern = f"{name}-{version}-*.whl"
        if not list(CACHE.joinpath("any").glob(pattern)):
            _pip_download(spec, CACHE / "any", None)
        wheels += sorted(CACHE.joinpath("any").glob(pattern))
    for plat in platforms:
        version, tag = PLATFORMS[plat]
        wheels += _platform_wheel("onnxruntime", version, plat, tag)
        wheels += _platform_wheel("av", AV_VERSIONS[plat], plat, tag)
    if any(w.name.startswith("numpy-") for w in wheels):
        raise SystemExit("refusing to bundle numpy: Blender ships its own")
    return wheels


def stage(platforms: list[str], staging: Path) -> Path:
    """Copy the add-on into ``staging/facsimile`` with its wheels and a filled manifest."""
    src = staging / "facsimile"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(ADDON, src, ignore=EXCLUDE)
    wheel_dir = src / "wheels"
    wheel_dir.mkdir()
    for wheel in fetch_wheels(platforms):
        shutil.copy2(wheel, wheel_dir / wheel.name)
    manifest = src / "blender_manifest.toml"
    text = manifest.read_text()
    wheel_list = ",\n".join(f'  "./wheels/{w.name}"' for w in sorted(wheel_dir.iterdir()))
    plat_list = ", ".join(f'"{p}"' for p in platforms)
    text = re.sub(r"^platforms = .*$", f"platforms = [{plat_list}]", text, flags=re.M)
    text = text.replace("\n[permissions]", f"\nwheels = [\n{wheel_list},\n]\n\n[permissions]", 1)
    manifest.write_text(text)
    return src


def build(out: Path, platforms: list[str]) -> list[Path]:
    tool = blender_ext_tool()
    out.mkdir(parents=True, exist_ok=True)
    staging = ROOT / "build" / "extension"
    staging.mkdir(parents=True, exist_ok=True)
    src = stage(platforms, staging)
    before = set(out.glob("facsimile-*.zip"))
    for old in before:
        old.unlink()
    subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(src), "--output-dir", str(out),
                    "--split-platforms"], check=True)
    zips = sorted(out.glob("facsimile-*.zip"))
    for z in zips:
        subprocess.run([sys.executable, str(tool), "validate", str(z)], check=True)
        with zipfile.ZipFile(z) as zf:
            names = zf.namelist()
        size = z.stat().st_size / 1e6
        print(f"[extension] {z.name}: {len(names)} files, {size:.1f} MB, validated")
    return zips


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="dist")
    parser.add_argument("--platform", action="append", default=[], choices=sorted(PLATFORMS))
    args = parser.parse_args(argv)
    build(ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out),
          args.platform or list(PLATFORMS))


if __name__ == "__main__":
    main()
