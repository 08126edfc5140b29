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

GPU providers: the Windows zip carries ``onnxruntime-directml`` (DirectML on any DirectX 12
GPU, and the CPU), the macOS build offers CoreML as it is. ``--cuda`` also builds NVIDIA
variants (``…-linux_x64-cuda.zip``, ``…-windows_x64-cuda.zip``) with ``onnxruntime-gpu``:
1.23.2 on Linux (CUDA 12.x, cuDNN 9.x), 1.18.1 on Windows (CUDA 11.8, cuDNN 8.x; newer
releases hit the MSVC runtime problem above). Those wheels are 158-300 MB, so the variants
are separate downloads outside the 120 MB budget of the default zips.

SciPy 1.17.1 (cp311 wheels for all three platforms; it declares numpy>=1.26.4, the numpy that
Blender 4.2-5.0 bundle) carries the core's KD-trees, sparse matrices, ARPACK, graph
components, ndimage and fft; see docs/install.md for why it ships rather than being rewritten.

Pure-Python dependencies ship in every zip: ONNX Runtime's (flatbuffers, packaging,
protobuf), as the extension rules ask ("wheels must include their dependencies"), and
threadpoolctl (the eigensolver runs on one BLAS thread, see core/spectral.py); numpy never
does: Blender has its own, and a bundled numpy would shadow it for every add-on.
The models are exported at ONNX opset 17 / IR 8, which all three versions load (a test
runs them in 1.18.1, the oldest, and compares with the current runtime).
"""

from __future__ import annotations

import argparse
import ast
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
# The ONNX Runtime package of each default zip (same versions as PLATFORMS).
ORT_PACKAGE = {"linux-x64": "onnxruntime", "windows-x64": "onnxruntime-directml", "macos-arm64": "onnxruntime"}
# The NVIDIA variants: platform -> (package, version).
CUDA_ORT = {"linux-x64": ("onnxruntime-gpu", "1.23.2"), "windows-x64": ("onnxruntime-gpu", "1.18.1")}
# PyAV (FFmpeg's libraries in one wheel) decodes performance videos (blender_addon/video).
# abi3 wheels; macOS arm64 stays on 15.1.0, the last release with a macosx_13_0 wheel.
AV_VERSIONS = {"linux-x64": "18.1.0", "windows-x64": "18.1.0", "macos-arm64": "15.1.0"}
# SciPy: one version everywhere (macOS arm64 gets its macosx_12_0 OpenBLAS wheel).
SCIPY_VERSION = "1.17.1"
# The store's limit is larger; ours keeps a download an artist does not think twice about.
MAX_ZIP_MB = 120
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
    else:
        # A pure dependency ships as its py3-none-any wheel, never the build machine's binary one:
        # protobuf's preferred wheel here is cp310-abi3-manylinux, which is Linux only, and which
        # Blender 4.3's installer skips ("other Python version") — older installers read abi3
        # wheels' cp310 as "3.10 only".
        cmd += ["--implementation", "py", "--abi", "none", "--platform", "any"]
    subprocess.run(cmd, check=True)


def _platform_wheel(name: str, version: str, plat: str, tag: str) -> list[Path]:
    folder = CACHE / plat
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"   # wheel names use underscores
    if not list(folder.glob(pattern)):
        _pip_download(f"{name}=={version}", folder, tag)
    found = sorted(folder.glob(pattern))
    if not found:
        raise SystemExit(f"no {name} {version} wheel for {plat}")
    return found


def _is_pure(wheel: Path) -> bool:
    """A wheel every platform and every Blender 4.2+ installer takes: no ABI, no platform."""
    return wheel.name.endswith("-none-any.whl")


def fetch_wheels(platforms: list[str], cuda: bool = False) -> list[Path]:
    """Download (once, cached in .cache/wheels) every wheel the zips need."""
    wheels = []
    for spec in PURE_DEPS:
        name, version = spec.split("==")
        pattern = f"{name}-{version}-*.whl"
        if not any(_is_pure(w) for w in CACHE.joinpath("any").glob(pattern)):
            _pip_download(spec, CACHE / "any", None)
        wheels += sorted(w for w in CACHE.joinpath("any").glob(pattern) if _is_pure(w))
    for plat in platforms:
        version, tag = PLATFORMS[plat]
        package = ORT_PACKAGE[plat]
        if cuda:
            package, version = CUDA_ORT[plat]
        wheels += _platform_wheel(package, version, plat, tag)
        wheels += _platform_wheel("av", AV_VERSIONS[plat], plat, tag)
        wheels += _platform_wheel("scipy", SCIPY_VERSION, plat, tag)
    if any(w.name.startswith("numpy-") for w in wheels):
        raise SystemExit("refusing to bundle numpy: Blender ships its own")
    return wheels


# Compiled into Blender (no file to find) and the packages Blender's own Python bundles beside
# the bpy module (the bpy wheel declares them as its dependencies, mirroring that set).
BLENDER_BUILTIN = {"bpy", "_bpy", "mathutils", "bmesh", "gpu", "blf", "aud", "bl_math", "imbuf", "idprop",
                   "freestyle", "bgl"}
BLENDER_BUNDLED = {"numpy", "requests", "zstandard", "certifi", "charset_normalizer", "idna", "urllib3",
                   "Cython", "cython"}


def blender_provided() -> set[str]:
    """Top-level modules any Blender 4.2-5.0 gives an add-on: built-ins, its scripts, its Python's packages."""
    import importlib.util

    base = Path(importlib.util.find_spec("bpy").origin).parent
    names = set(BLENDER_BUILTIN | BLENDER_BUNDLED)
    for version_dir in base.glob("[0-9]*.[0-9]*"):
        for folder in (version_dir / "scripts" / "modules", version_dir / "scripts" / "startup",
                       version_dir / "python" / "lib" / "python3.11" / "site-packages"):
            for entry in folder.glob("*"):
                names.add(entry.name.split(".")[0])
    return names


def wheel_top_levels(wheel: Path) -> set[str]:
    """The importable top-level names a wheel installs (from its RECORD, not its metadata's word)."""
    with zipfile.ZipFile(wheel) as zf:
        record = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
        rows = zf.read(record).decode().splitlines()
    names = set()
    for row in rows:
        first = row.split(",")[0].split("/")[0]
        if first.endswith((".dist-info", ".data")) or not first:
            continue
        names.add(first[:-3] if first.endswith(".py") else first.split(".")[0])
    return names


def imported_top_levels(package: Path) -> dict[str, set[str]]:
    """Every absolute import in the package's Python files, function-level ones included:
    top-level module name -> the files importing it."""
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(package)))
    return found


def check_imports(package: Path, wheels_by_platform: dict[str, list[Path]]) -> None:
    """Fail unless every third-party import of the add-on is Blender's or in that platform's wheels."""
    imports = imported_top_levels(package)
    allowed_everywhere = set(sys.stdlib_module_names) | blender_provided()
    problems = []
    for plat, wheels in wheels_by_platform.items():
        shipped = set().union(*(wheel_top_levels(w) for w in wheels))
        for name, files in sorted(imports.items()):
            if name not in allowed_everywhere and name not in shipped:
                problems.append(f"{plat}: '{name}' (imported by {', '.join(sorted(files))}) is neither "
                                f"in Blender nor in the zip's wheels")
    if problems:
        raise SystemExit("[extension] " + "\n[extension] ".join(problems))
    third_party = sorted(n for n in imports if n not in allowed_everywhere)
    print(f"[extension] imports checked: third-party {', '.join(third_party)} ship as wheels on "
          f"{', '.join(wheels_by_platform)}", flush=True)


def stage(platforms: list[str], staging: Path, cuda: bool = False) -> Path:
    """Copy the add-on into ``staging/facsimile`` with its wheels and a filled manifest."""
    src = staging / "facsimile"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(ADDON, src, ignore=EXCLUDE)
    wheel_dir = src / "wheels"
    wheel_dir.mkdir()
    for wheel in fetch_wheels(platforms, cuda):
        shutil.copy2(wheel, wheel_dir / wheel.name)
    check_imports(src, {plat: fetch_wheels([plat], cuda) for plat in platforms})
    manifest = src / "blender_manifest.toml"
    text = manifest.read_text()
    wheel_list = ",\n".join(f'  "./wheels/{w.name}"' for w in sorted(wheel_dir.iterdir()))
    plat_list = ", ".join(f'"{p}"' for p in platforms)
    text = re.sub(r"^platforms = .*$", f"platforms = [{plat_list}]", text, flags=re.M)
    text = text.replace("\n[permissions]", f"\nwheels = [\n{wheel_list},\n]\n\n[permissions]", 1)
    manifest.write_text(text)
    return src


def build(out: Path, platforms: list[str], cuda: bool = False) -> list[Path]:
    """Build, validate and size-check one zip per platform (the NVIDIA variants with ``cuda``)."""
    tool = blender_ext_tool()
    out.mkdir(parents=True, exist_ok=True)
    staging = ROOT / "build" / ("extension-cuda" if cuda else "extension")
    staging.mkdir(parents=True, exist_ok=True)
    if cuda:
        platforms = [p for p in platforms if p in CUDA_ORT]
    src = stage(platforms, staging, cuda)
    built = staging / "dist"
    if built.exists():
        shutil.rmtree(built)
    built.mkdir()
    subprocess.run([sys.executable, str(tool), "build", "--source-dir", str(src), "--output-dir", str(built),
                    "--split-platforms"], check=True)
    zips = []
    for z in sorted(built.glob("facsimile-*.zip")):
        subprocess.run([sys.executable, str(tool), "validate", str(z)], check=True)
        target = out / (z.stem + "-cuda.zip" if cuda else z.name)
        target.unlink(missing_ok=True)
        shutil.move(str(z), target)
        with zipfile.ZipFile(target) as zf:
            names = zf.namelist()
        size = target.stat().st_size / 1e6
        note = " (NVIDIA variant: a separate download, outside the default budget)" if cuda else ""
        print(f"[extension] {target.name}: {len(names)} files, {size:.1f} MB, validated{note}", flush=True)
        if size > MAX_ZIP_MB and not cuda:
            raise SystemExit(f"[extension] {target.name} is {size:.1f} MB, over the {MAX_ZIP_MB} MB limit")
        zips.append(target)
    return zips


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="dist")
    parser.add_argument("--platform", action="append", default=[], choices=sorted(PLATFORMS))
    parser.add_argument("--cuda", action="store_true",
                        help="also build the NVIDIA (onnxruntime-gpu) variants for Linux and Windows")
    args = parser.parse_args(argv)
    out = ROOT / args.out if not Path(args.out).is_absolute() else Path(args.out)
    platforms = args.platform or list(PLATFORMS)
    build(out, platforms)
    if args.cuda:
        build(out, platforms, cuda=True)


if __name__ == "__main__":
    main()
