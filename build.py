#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Facsimile's one entry point: setup, test, demo, extension, train, bench.

Runs with any Python 3 (stdlib only); everything that needs bpy, torch or ONNX
Runtime runs inside the project's virtual environment (``.venv``), which
``setup`` creates and every other command creates on demand.

    python build.py demo        # set up, rig a default head and bake a performance
    python build.py test        # set up, test the built zip installed in Blender 4.2, 4.5 and 5.0
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

def _blender_series(args) -> tuple[list[str], list[str]]:
    """(series that run the asked tests, series that run only the compatibility tier): the
    ones named by --blender / FACSIMILE_BLENDER run everything asked; with none named, the
    default series do and the series between them run the compatibility tier."""
    from tools import blender_envs

    wanted = args.blender or os.environ.get("FACSIMILE_BLENDER", "").split(",")
    wanted = [s.strip() for s in wanted if s.strip()]
    unknown = [s for s in wanted if s not in blender_envs.BPY_VERSIONS]
    if unknown:
        sys.exit(f"[build] unknown Blender series {unknown}; known: {sorted(blender_envs.BPY_VERSIONS)}")
    if wanted:
        return wanted, []
    return list(blender_envs.DEFAULT_SERIES), list(blender_envs.COMPAT_SERIES)


def _test_zip(cuda: bool = False) -> Path:
    """The Linux zip, built exactly as `build.py extension` builds it (this machine is linux-x64);
    with ``cuda`` the NVIDIA variant is built too (found beside it as ``…-cuda.zip``)."""
    out = ROOT / "build" / "test-dist"
    if in_venv(["-m", "tools.extension", "--out", out, "--platform", "linux-x64", *(["--cuda"] if cuda else [])]) != 0:
        sys.exit("[build] building the extension failed")
    return next(out.glob("facsimile-*-linux_x64.zip"))


def _junit_counts(xml: Path) -> dict:
    import xml.etree.ElementTree as ET

    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if xml.exists():
        for suite in ET.parse(xml).getroot().iter("testsuite"):
            for key in counts:
                counts[key] += int(suite.get(key, 0))
    return counts


def _split_targets(pytest_args: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Pytest paths for the Blender suite, paths for the development suite, and shared options."""
    blender, dev, options = [], [], []
    for arg in pytest_args:
        if arg.startswith("-") or not (ROOT / arg.split("::")[0]).exists():
            options.append(arg)
        elif Path(arg).parts[:2] == ("tests", "blender"):
            blender.append(arg)
        else:
            dev.append(arg)
    if not blender and not dev:
        blender, dev = ["tests/blender"], ["tests/core", "tests/training", "tests/packaging"]
    return blender, dev, options


def cmd_test(args) -> None:
    """The Blender suite in a clean Blender of every promised version (the built zip installed
    as an artist installs it), and the core and training suites in the development venv."""
    from tools import blender_envs

    cmd_setup()
    blender_paths, dev_paths, options = _split_targets(args.pytest_args)
    results = ROOT / "build" / "test-results"
    results.mkdir(parents=True, exist_ok=True)
    runs = []
    if dev_paths:
        xml = results / "dev.xml"
        log(f"development venv: {' '.join(dev_paths)}")
        rc = in_venv(["-m", "pytest", *dev_paths, *options, f"--junitxml={xml}"])
        runs.append(("development venv", rc, _junit_counts(xml)))
    if blender_paths:
        zip_path = _test_zip(cuda=True)
        cuda_zip = zip_path.with_name(zip_path.stem + "-cuda.zip")
        full, compat = _blender_series(args)
        # The compatibility tier runs where the whole suite was asked for (no paths named).
        compat = compat if blender_paths == ["tests/blender"] else []
        series_list = full + compat
        paths = {**{s: blender_paths for s in full}, **{s: list(blender_envs.COMPAT_TESTS) for s in compat}}
        pythons = {s: blender_envs.ensure(s, _find_base_python()) for s in series_list}
        # The Blender versions run side by side (separate processes, user folders and result
        # files): much of a Blender test is waiting (subprocesses, sockets, renders), so two
        # versions on two cores take little more than one. FACSIMILE_TEST_SERIAL=1 runs them
        # one after the other with their output live.
        parallel = len(series_list) > 1 and os.environ.get("FACSIMILE_TEST_SERIAL") != "1"
        started = []
        for series in series_list:
            xml = results / f"blender-{series}.xml"
            tier = " (compatibility tier)" if series in compat else ""
            log(f"Blender {series}{tier} (bpy {blender_envs.BPY_VERSIONS[series]}), {zip_path.name} installed: "
                f"{' '.join(paths[series])}{' (output below when it ends)' if parallel else ''}")
            # -c names the Blender suite's own ini: the repository root must not be on sys.path there.
            # -P: `python -m` would otherwise put the working directory (the repository) on sys.path.
            cmd = [str(pythons[series]), "-P", "-m", "pytest", "-c", str(ROOT / "tests" / "blender" / "pytest.ini"),
                   "--rootdir", str(ROOT / "tests" / "blender"), *paths[series], *options, f"--junitxml={xml}"]
            env = dict(blender_envs.test_env(series, zip_path), FACSIMILE_ZIP_CUDA=str(cuda_zip))
            if parallel:
                out = open(results / f"blender-{series}.log", "w")
                started.append((series, xml, out, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out,
                                                                    stderr=subprocess.STDOUT)))
            else:
                rc = subprocess.run(cmd, cwd=ROOT, env=env).returncode
                runs.append((f"Blender {series}", rc, _junit_counts(xml)))
        for series, xml, out, proc in started:
            rc = proc.wait()
            out.close()
            log(f"Blender {series}: pytest output")
            print((results / f"blender-{series}.log").read_text(), flush=True)
            runs.append((f"Blender {series}", rc, _junit_counts(xml)))
    total = {"passed": 0, "failed": 0, "skipped": 0}
    for name, rc, c in runs:
        failed = c["failures"] + c["errors"] + (1 if rc not in (0, 5) and not (c["failures"] + c["errors"]) else 0)
        passed = c["tests"] - c["failures"] - c["errors"] - c["skipped"]
        log(f"{name}: {passed} passed, {failed} failed, {c['skipped']} skipped (pytest exit {rc})")
        total["passed"] += passed
        total["failed"] += failed
        total["skipped"] += c["skipped"]
    print(f"facsimile: {total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped", flush=True)
    sys.exit(1 if total["failed"] or not total["passed"] else 0)


def cmd_demo(args) -> None:
    """The main job as an artist's installed extension runs it (Blender 5.0, the built zip)."""
    from tools import blender_envs

    cmd_setup()
    zip_path = _test_zip()
    series = "5.0"
    blender_envs.ensure(series, _find_base_python())
    user_dir = blender_envs.HOME / series / "user"
    if user_dir.exists():
        shutil.rmtree(user_dir)
    out = Path(args.out).resolve()
    sys.exit(blender_envs.run_installed_cli(series, zip_path, ["demo", "--out", str(out)], user_dir))


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

    p = sub.add_parser("test", help="build the zip, install it into a clean Blender of each promised version "
                                     "and run the Blender suite there; core and training suites in .venv")
    p.add_argument("--blender", action="append", default=[], metavar="SERIES",
                   help="Blender series to test (4.2, 4.3, 4.4, 4.5, 5.0; repeatable; default: the "
                        "whole suite on 4.2, 4.5 and 5.0, the compatibility tier on 4.3 and 4.4)")
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

    p = sub.add_parser("bench", help="benchmarks: accuracy, rig, drive, video, install, live, batch, soak")
    p.add_argument("which", choices=["accuracy", "rig", "drive", "video", "install", "live", "batch", "soak", "landmarks"])
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
