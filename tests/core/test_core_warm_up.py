# SPDX-License-Identifier: GPL-3.0-or-later
"""The add-on's warm-up: importing ``core.rig`` imports no SciPy (Blender's start-up stays
fast); ``start_warm_up`` imports what a rig needs on a background thread, and a rig started
meanwhile waits for it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys, threading
from blender_addon.core import rig
assert not any(m.split('.')[0] == 'scipy' for m in sys.modules), 'core.rig imported SciPy'
rig.start_warm_up()
rig.start_warm_up()                       # once
assert sum(t.name == 'facsimile-warm-up' for t in threading.enumerate()) <= 1
rig.wait_for_warm_up()
for name in ('scipy.sparse.linalg', 'scipy.sparse.csgraph', 'scipy.spatial', 'blender_addon.core.features',
             'blender_addon.core.face_rules', 'blender_addon.core.cavities'):
    assert name in sys.modules, name
import numpy as np
verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1.0]])
try:
    rig.prepare_head(verts, np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]))
except rig.RigError:
    pass                                   # too small to be a head: it got that far
print('ok')
"""


def test_warm_up_imports_scipy_on_a_thread_and_only_then():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
