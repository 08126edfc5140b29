# SPDX-License-Identifier: GPL-3.0-or-later
"""``python build.py bench install``: what shipping SciPy costs, against doing without it.

Three measurements, written into docs/install.md:

1. **Zip size** per platform, and how much of it is the SciPy wheel (the zip without it is
   what the "no SciPy" route would ship).
2. **In a clean Blender 5.0** (the built Linux zip installed by Blender's installer, a fresh
   process each run): enabling the add-on, importing the SciPy modules the core uses, and the
   first Rig Face on Suzanne and on the facecap head.
3. **The heaviest thing SciPy does for us**, the 64 smallest eigenpairs of the proxy's
   Laplacian (sparse shift-invert Lanczos, ARPACK), against the numpy-only replacement (a
   dense symmetric eigendecomposition), on the same proxy-sized mesh.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

from tools import blender_envs, extension
from tools.docblock import write_block

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "install.md"
REPEATS = 3

_IN_BLENDER = """
import json, sys, time
import numpy as np
t0 = time.perf_counter()
import bpy, addon_utils
t1 = time.perf_counter()
module = "bl_ext.user_default.facsimile"
assert addon_utils.enable(module, default_set=True) is not None
t2 = time.perf_counter()
import scipy.sparse, scipy.sparse.linalg, scipy.spatial, scipy.ndimage, scipy.fft, scipy.sparse.csgraph
t3 = time.perf_counter()
bpy.ops.mesh.primitive_monkey_add(size=1.0)
assert bpy.ops.facsimile.rig() == {"FINISHED"}
t4 = time.perf_counter()
out = {"import_bpy": t1 - t0, "enable": t2 - t1, "scipy_import": t3 - t2, "rig_suzanne": t4 - t3}
if sys.argv[1] != "-":
    with np.load(sys.argv[1]) as d:
        v = np.asarray(d["neutral"], float) * 0.01
        faces = np.asarray(d["faces"]).tolist()
    v = np.stack([v[:, 0], -v[:, 2], v[:, 1]], axis=1)
    mesh = bpy.data.meshes.new("Facecap")
    mesh.from_pydata(v.tolist(), [], faces)
    obj = bpy.data.objects.new("Facecap", mesh)
    bpy.context.scene.collection.objects.link(obj)
    for o in bpy.context.view_layer.objects:
        o.select_set(o is obj)
    bpy.context.view_layer.objects.active = obj
    t5 = time.perf_counter()
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    out["rig_facecap"] = time.perf_counter() - t5
print("RESULT " + json.dumps(out))
"""


def zip_sizes() -> list[tuple[str, float, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for z in extension.build(Path(tmp), list(extension.PLATFORMS)):
            with zipfile.ZipFile(z) as zf:
                scipy_mb = sum(i.compress_size for i in zf.infolist() if i.filename.startswith("wheels/scipy-")) / 1e6
            rows.append((z.name.rsplit("-", 1)[-1].removesuffix(".zip"), z.stat().st_size / 1e6, scipy_mb))
    return rows


def in_blender(zip_path: Path, facecap: Path | None) -> dict[str, float]:
    python = blender_envs.ensure("5.0", sys.executable)
    runs = []
    for _ in range(REPEATS):
        user = Path(tempfile.mkdtemp(prefix="facsimile-bench-install-"))
        env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
        env["BLENDER_USER_RESOURCES"] = str(user)
        subprocess.run([str(python), "-P", "-c",
                        "import sys, bpy; sys.exit(bpy.ops.extensions.package_install_files("
                        "filepath=sys.argv[1], repo='user_default', enable_on_install=False) != {'FINISHED'})",
                        str(zip_path)], env=env, check=True, capture_output=True)
        done = subprocess.run([str(python), "-P", "-c", _IN_BLENDER, str(facecap or "-")], env=env,
                              capture_output=True, text=True, check=True)
        line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
        runs.append(json.loads(line[7:]))
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]}


def eigensolver(facecap: Path | None) -> dict[str, float]:
    """Sparse ARPACK (shipped) against dense numpy eigh on a proxy-sized head."""
    from blender_addon.core import spectral
    from blender_addon.core.mesh.proxy import loop_free_subdivide

    if facecap is not None:
        with np.load(facecap) as d:
            v, f = np.asarray(d["neutral"], float), np.asarray(d["faces"])
    else:   # a subdivided octahedron sphere, when the data is absent
        v = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], float)
        f = np.array([[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]])
        for _ in range(5):
            v, f = loop_free_subdivide(v, f)[:2]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
    L = spectral.cotan_laplacian(v, f)
    mass = spectral.lumped_mass(v, f)
    area = float(mass.sum())
    k = 64
    sparse_t, dense_t = [], []
    for _ in range(REPEATS):
        t = time.perf_counter()
        spectral._generalized_eigh(L, mass, k, area)
        sparse_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        inv = 1.0 / np.sqrt(mass)
        B = (L.toarray() * inv[:, None]) * inv[None, :]
        np.linalg.eigh(B)
        dense_t.append(time.perf_counter() - t)
    return {"vertices": len(v), "sparse": min(sparse_t), "dense": min(dense_t)}


def main(argv=None) -> None:
    from model_export.data.ict import data_root

    facecap = data_root() / "facecap" / "facecap.npz"
    facecap = facecap if facecap.exists() else None
    sizes = zip_sizes()
    zip_path = next((ROOT / "build").glob("**/facsimile-*-linux_x64.zip"), None)
    if zip_path is None:
        zip_path = extension.build(ROOT / "build" / "test-dist", ["linux-x64"])[0]
    blender = in_blender(zip_path, facecap)
    eig = eigensolver(facecap)
    lines = ["| zip | size (MB) | of which SciPy (MB) | without SciPy (MB) |", "|---|---|---|---|"]
    lines += [f"| {plat} | {total:.1f} | {sp:.1f} | {total - sp:.1f} |" for plat, total, sp in sizes]
    lines += ["", f"Clean Blender 5.0, installed Linux zip, median of {REPEATS} fresh processes:", "",
              "| step | seconds |", "|---|---|",
              f"| enable the add-on (SciPy not imported yet) | {blender['enable']:.3f} |",
              f"| import the SciPy modules the core uses (once, on the first rig) | {blender['scipy_import']:.3f} |",
              f"| first Rig Face, Suzanne (after that import) | {blender['rig_suzanne']:.3f} |",
              f"| first Rig Face as a user waits for it (import + rig) | "
              f"{blender['scipy_import'] + blender['rig_suzanne']:.3f} |"]
    if "rig_facecap" in blender:
        lines.append(f"| next Rig Face, facecap head | {blender['rig_facecap']:.3f} |")
    lines += ["", f"The 64 smallest Laplacian eigenpairs of a {eig['vertices']}-vertex head, best of {REPEATS}: "
              f"SciPy's sparse shift-invert Lanczos {eig['sparse']:.3f} s, numpy's dense `eigh` (the no-SciPy "
              f"route) {eig['dense']:.3f} s ({eig['dense'] / eig['sparse']:.0f}x)."]
    print("\n".join(lines))
    write_block(DOC, "install", lines)


if __name__ == "__main__":
    main(sys.argv[1:])
