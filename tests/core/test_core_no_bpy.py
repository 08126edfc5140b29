# SPDX-License-Identifier: GPL-3.0-or-later
"""The core never imports bpy: training and pipelines use it without Blender."""

import ast
import subprocess
import sys
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "blender_addon" / "core"


def test_no_bpy_import_in_source():
    offenders = []
    for path in sorted(CORE.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.ImportFrom) and node.level > 0:
                # A relative import must stay inside core/: above it live the bpy modules.
                depth = len(path.relative_to(CORE).parts) - 1      # packages below core/
                if node.level > depth + 1:
                    names = ["<outside core>"]
            for name in names:
                if name.split(".")[0] in ("bpy", "bmesh", "mathutils", "bpy_extras", "addon_utils", "<outside core>"):
                    offenders.append(f"{path.relative_to(CORE)}:{node.lineno} imports {name}")
    assert not offenders, "core must not import Blender modules:\n" + "\n".join(offenders)


def test_core_imports_with_bpy_unavailable():
    """Import every core module in a fresh interpreter where `import bpy` fails."""
    modules = sorted(
        "blender_addon.core." + ".".join(p.relative_to(CORE).with_suffix("").parts)
        for p in CORE.rglob("*.py") if p.name != "__init__.py"
    )
    code = (
        "import sys; sys.modules['bpy'] = None; sys.modules['mathutils'] = None\n"
        "import importlib\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "assert 'bpy' not in [k for k, v in sys.modules.items() if v is not None]\n"
        "print('ok', len(" + repr(modules) + "))"
    )
    root = CORE.parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         env={"PYTHONPATH": str(root), "PATH": ""})
    assert out.returncode == 0, out.stderr
