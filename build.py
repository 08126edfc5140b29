#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Facsimile's one entry point: setup, test, demo, extension, train, bench.

Runs with any Python 3 (stdlib only); everything that needs bpy, torch or ONNX
Runtime runs inside the project's virtual environment (``.venv``), which
``setup`` creates and every other command creates on demand.

    python build.py demo        # set up, rig a default head and bake a performance
    python build.py test        # set up, run the test-suite in real Blender (bpy)
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements.txt"
REQUIREMENTS_NODEPS = ROOT / "requirements-nodeps.txt"
STAMP = VENV / ".facsimile-setup"
# The bpy wheel is built for exactly one Python; Blender 4.2-5.0 and bpy 5.0.1 use 3.11.
PYTHON_VERSION = (3, 11)
# Shared libraries the bpy wheel loads that are not inside it (Debian package names).
SYSTEM_LIBS = {
    "X11": "libx11-6", "Xrender": "libxrender1", "Xxf86vm": "libxxf86vm1", "Xfixes": "libxfixes3",
    "Xi": "libxi6", "xkbcommon": "libxkbcommon0", "gomp": "libgomp1", "SM": "libsm6",
    "ICE": "libice6", "Xext": "libxext6", "GL": "libgl1", "EGL": "libegl1",
}


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list, **kw) -> None:
    log(" ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def in_venv(args: list, **kw) -> int:
    """Run ``python args…`` inside the venv with the repo root as working directory."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.update(kw.pop("env", {}))
    return subprocess.run([str(venv_python()), *map(str, args)], cwd=ROOT, env=env, **kw).returncode


# --------------------------------------------------------------------------- setup

def _find_base_python() -> str:
    if sys.version_info[:2] == PYTHON_VERSION:
        return sys.executable
    name = "python{}.{}".format(*PYTHON_VERSION)
    found = shutil.which(name)
    if found:
        return found
    sys.exit(f"[build] Python {name[6:]} is required (the bpy wheel exists only for it); "
             f"install it and run `{name} build.py …`")


def _missing_system_libs() -> list[str]:
    if not sys.platform.startswith("linux"):
        return []
    import ctypes.util

    return [pkg for lib, pkg in SYSTEM_LIBS.items() if ctypes.util.find_library(lib) is None]


def _install_system_libs() -> None:
    missing = _missing_system_libs()
    if not missing:
        return
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        log(f"installing system libraries bpy needs: {' '.join(missing)}")
        run(["apt-get", "update", "-qq"])
        run(["apt-get", "install", "-y", "-qq", *missing], env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    else:
        log(f"warning: bpy may need these system packages: {' '.join(missing)} (install them with your package manager)")


def _requirements_digest() -> str:
    data = REQUIREMENTS.read_bytes() + REQUIREMENTS_NODEPS.read_bytes() + sys.version.encode()
    return hashlib.sha256(data).hexdigest()


def cmd_setup(_args=None) -> None:
    """Create .venv and install the pinned requirements; quick when already done."""
    digest = _requirements_digest()
    if STAMP.exists() and STAMP.read_text().strip() == digest and venv_python().exists():
        return
    _install_system_libs()
    if not venv_python().exists():
        run([_find_base_python(), "-m", "venv", VENV])
    pip = [venv_python(), "-m", "pip"]
    run([*pip, "install", "-q", "--disable-pip-version-check", "-r", REQUIREMENTS])
    run([*pip, "install", "-q", "--disable-pip-version-check", "--no-deps", "-r", REQUIREMENTS_NODEPS])
    STAMP.write_text(digest)
    log("setup complete")


# --------------------------------------------------------------------------- commands

def cmd_test(args) -> None:
    cmd_setup()
    pytest_args = args.pytest_args or ["tests"]
    sys.exit(in_venv(["-m", "pytest", *pytest_args]))


def cmd_demo(args) -> None:
    cmd_setup()
    sys.exit(in_venv(["-m", "blender_addon", "demo", "--out", args.out]))


def cmd_extension(args) -> None:
    cmd_setup()
    sys.exit(in_venv(["-m", "tools.extension", "--out", args.out, *sum((["--platform", p] for p in args.platform), [])]))


def cmd_train(args) -> None:
    cmd_setup()
    extra = ["--quick"] if args.quick else []
    if args.out:
        extra += ["--out", args.out]
    extra += ["--device", args.device]
    sys.exit(in_venv(["-m", "model_export.train", *extra]))


def cmd_bench(args) -> None:
    cmd_setup()
    sys.exit(in_venv(["-m", f"tools.bench_{args.which}", *args.bench_args]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="build.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup", help="create .venv with the pinned requirements (idempotent)")
    p.set_defaults(func=cmd_setup)

    p = sub.add_parser("test", help="run the test-suite inside real Blender (the bpy module)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="arguments passed to pytest")
    p.set_defaults(func=cmd_test)

    p = sub.add_parser("demo", help="run the main job on an embedded default head and performance")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("extension", help="build the installable extension zip(s) into dist/")
    p.add_argument("--out", default="dist", help="output folder (default: dist)")
    p.add_argument("--platform", action="append", default=[],
                   help="only this platform (linux-x64, windows-x64, macos-arm64); repeatable")
    p.set_defaults(func=cmd_extension)

    p = sub.add_parser("train", help="train the shipped networks from scratch and export them to ONNX")
    p.add_argument("--quick", action="store_true", help="2-minute smoke run (does not touch shipped models)")
    p.add_argument("--out", default="", help="export folder (default: blender_addon/models, or a temp dir with --quick)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto (default): a CUDA GPU when torch sees one, else two CPU worker processes")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("bench", help="benchmarks: accuracy, rig, drive, video")
    p.add_argument("which", choices=["accuracy", "rig", "drive", "video"])
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
