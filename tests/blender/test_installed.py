# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on runs from the installed zip, and imports nothing a user's Blender lacks.

The import check does not trust the build's bookkeeping: every top-level module the installed
add-on names in an import statement (function-level ones included) is looked up in a fresh
process of this clean Blender, without the test runner on its path, and must resolve to
Python's standard library, Blender itself (its built-ins, its scripts, the packages its Python
bundles: the bpy wheel's declared dependencies) or the extension site-packages that Blender
filled from the zip's wheels."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from blender_helpers import clean_env
from conftest import ADDON_MODULE, INSTALLED, ROOT

_LOOKUP = """
import importlib, importlib.util, json, pkgutil, sys
import bpy, addon_utils
assert addon_utils.enable(sys.argv[1], default_set=True) is not None
package = importlib.import_module(sys.argv[1])
failed = {}
for info in pkgutil.walk_packages(package.__path__, sys.argv[1] + "."):
    if info.name.rsplit(".", 1)[-1] == "__main__":
        continue
    try:
        importlib.import_module(info.name)
    except Exception as err:  # noqa: BLE001
        failed[info.name] = repr(err)
origins = {}
for name in json.loads(sys.argv[2]):
    spec = importlib.util.find_spec(name)
    origins[name] = None if spec is None else (spec.origin if spec.origin not in (None, "namespace")
                                               else list(spec.submodule_search_locations)[0])
print(json.dumps({"failed": failed, "origins": origins,
                  "ext_site": [p for p in sys.path if "extensions" in p and "site-packages" in p]}))
"""


def _imported_top_levels(package: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(package)))
    return found


def test_the_addon_is_the_installed_one(addon):
    path = Path(addon.__file__).resolve()
    assert addon.__name__ == ADDON_MODULE
    assert path.parent == INSTALLED.resolve()
    assert ROOT not in path.parents, "the add-on must never run from the source tree here"
    assert importlib.util.find_spec("blender_addon") is None


def _blender_dists() -> set[str]:
    """bpy and what its wheel declares: the packages Blender's own Python bundles."""
    names = {"bpy"}
    for req in importlib.metadata.requires("bpy") or []:
        names.add(req.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower())
    return names


def test_every_import_is_blender_or_shipped():
    imports = _imported_top_levels(INSTALLED)
    third_party = sorted(n for n in imports if n not in sys.stdlib_module_names)
    done = subprocess.run([sys.executable, "-P", "-c", _LOOKUP, ADDON_MODULE, json.dumps(third_party)],
                          env=clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["failed"], f"modules of the add-on that do not import in a clean Blender: {report['failed']}"
    ext_site = [Path(p).resolve() for p in report["ext_site"]]
    assert ext_site, "Blender did not put the extension site-packages on sys.path"
    venv_site = Path(importlib.util.find_spec("bpy").origin).resolve().parents[1]
    providers = importlib.metadata.packages_distributions()
    allowed_dists = _blender_dists()
    problems = []
    for name in third_party:
        origin = report["origins"][name]
        where = ", ".join(sorted(imports[name]))
        if origin is None:
            problems.append(f"{name} (imported by {where}) is not importable in a clean Blender")
            continue
        if origin == "built-in":
            continue                                    # compiled into Blender: bpy, mathutils, …
        origin = Path(origin).resolve()
        if any(site in origin.parents for site in ext_site):
            continue                                    # unpacked from the zip's wheels
        if (venv_site / "bpy") in origin.parents:
            continue                                    # Blender's own scripts (bpy_extras, addon_utils, …)
        dists = {d.lower() for d in providers.get(name, [])}
        if venv_site in origin.parents and dists & allowed_dists:
            continue                                    # bundled with Blender's Python (numpy, …)
        problems.append(f"{name} (imported by {where}) comes from {origin}, neither Blender nor the zip")
    assert not problems, "\n".join(problems)


def test_shipped_wheels_hold_what_the_addon_imports():
    """scipy, ONNX Runtime, PyAV and threadpoolctl load from the extension's own site-packages."""
    done = subprocess.run([sys.executable, "-P", "-c", _LOOKUP, ADDON_MODULE,
                           json.dumps(["scipy", "onnxruntime", "av", "threadpoolctl"])],
                          env=clean_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for name, origin in report["origins"].items():
        assert origin and "extensions" in origin, (name, origin)
