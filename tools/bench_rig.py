# SPDX-License-Identifier: GPL-3.0-or-later
"""``python build.py bench rig``: click-to-keys time for 6k / 50k / 200k-vertex heads, and
the first Rig Face in a fresh Blender on a 69k-vertex head (the cold row).

Runs the add-on's own stages inside real Blender (the bpy module) and prints each:
read (Blender mesh -> arrays), proxy (skin, canonical frame, cavities, proxy, operators),
inference (ONNX Runtime), transfer (proxy -> every vertex), rules (eyes, lids, lips,
tongue after the networks) and writes (24 vertex groups + 52 shape keys). Ratios are against baselines measured in the same run:
the 6k head (how cost grows with size), the classical route an artist uses today
on the same mesh (nearest-surface transfer of a template's 52 deltas, as Surface
Deform does, timed with the same numpy/scipy machinery) and, at 50k, the networks
run on every skin vertex instead of on the proxy.

The cold row (``--cold-only`` runs just it) starts a fresh process per try: Blender (the
bpy module), the add-on enabled, the head built, the two networks' sessions loaded; then
one click of Rig Face (``bpy.ops.facsimile.rig``) is timed from the click to the keys
written, with everything else cold: SciPy not yet imported, no prediction cached, every
first-call cost paid. Its per-step seconds come from the rig's own timings
(``RigResult.timings``, ``RigResult.steps``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tools.docblock import write_block

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
SIZES = (6_000, 50_000, 200_000)
NO_PROXY_SIZE = 50_000    # the networks on every vertex: minutes at 200k
REPEATS = 3
COLD_SIZE = 69_000        # the dense head: facecap with its eyes and teeth, re-meshed
COLD_RUNS = 5             # fresh processes; the fastest is kept (a shared machine's load is not the code's)
COLD_TARGET = 1.0         # seconds (issue 12)
RULE_STEPS = ("eyes", "blink", "lids", "lips", "tongue")


def _facecap_path() -> Path:
    from model_export.data.ict import data_root

    return data_root() / "facecap" / "facecap.npz"


def _head(target: int, path: Path | None = None, parts: bool = False):
    """A head of about ``target`` vertices: facecap (or Suzanne) subdivided, then decimated;
    with ``parts`` its eyeballs and teeth (with the tongue) are in the same mesh."""
    import bpy

    path = _facecap_path() if path is None else path
    if path.exists():
        with np.load(path) as d:
            pieces = [("neutral", "faces")] + ([("eyeL_verts", "eyeL_faces"), ("eyeR_verts", "eyeR_faces"),
                                                ("teeth_verts", "teeth_faces")] if parts else [])
            v = np.concatenate([d[name] for name, _ in pieces]) * 0.01
            offsets = np.cumsum([0] + [len(d[name]) for name, _ in pieces])
            faces = np.concatenate([d[f] + o for (_, f), o in zip(pieces, offsets)])
            verts = np.stack([v[:, 0], -v[:, 2], v[:, 1]], 1)
        mesh = bpy.data.meshes.new("BenchHead")
        mesh.from_pydata(verts.tolist(), [], faces.tolist())
        obj = bpy.data.objects.new("BenchHead", mesh)
        bpy.context.scene.collection.objects.link(obj)
        source = "facecap"
    else:
        bpy.ops.mesh.primitive_monkey_add()
        obj = bpy.context.object
        source = "Suzanne"
    bpy.context.view_layer.objects.active = obj
    level = 0
    while len(obj.data.vertices) * 4 ** level < target:
        level += 1
    with bpy.context.temp_override(object=obj, active_object=obj):
        if level:
            mod = obj.modifiers.new("sub", "SUBSURF")
            mod.levels = level
            bpy.ops.object.modifier_apply(modifier=mod.name)
        if len(obj.data.vertices) > target * 1.05:
            mod = obj.modifiers.new("dec", "DECIMATE")
            mod.ratio = target / len(obj.data.vertices)
            bpy.ops.object.modifier_apply(modifier=mod.name)
    return obj, source


def _surface_transfer_baseline(verts: np.ndarray, faces: np.ndarray, template_v, template_f, template_d):
    """Classical route: closest point on the template surface, copy its 52 deltas."""
    from blender_addon.core.closest_point import closest_point_barycentric, interpolate_barycentric
    from blender_addon.core.mesh.head import normalize_head, split_parts
    from blender_addon.core.mesh.proxy import build_proxy
    from blender_addon.core.mesh.topology import clean_faces

    fi, bary = closest_point_barycentric(verts, template_v, template_f)
    moved = np.moveaxis(template_d, 0, 1)
    return interpolate_barycentric(moved, template_f, fi, bary)


def bench_one(target: int, provider: str) -> dict:
    import bpy

    from blender_addon.core import rig as core_rig
    from blender_addon import mesh_io
    from blender_addon.rig import opsdata

    bpy.ops.wm.read_factory_settings(use_empty=True)
    import addon_utils

    addon_utils.enable("blender_addon", default_set=True)
    obj, source = _head(target)
    n = len(obj.data.vertices)
    t = {}
    t0 = time.perf_counter()
    arrays = mesh_io.read_mesh(obj)
    t["read"] = time.perf_counter() - t0
    core_rig.predict(arrays.verts_world, arrays.faces, provider=provider)      # warm the session cache
    # Best of REPEATS: a shared or virtual machine's hiccups are not the code's cost.
    result = min((core_rig.predict(arrays.verts_world, arrays.faces, provider=provider) for _ in range(REPEATS)),
                 key=lambda r: sum(r.timings.values()))
    t.update(result.timings)
    t0 = time.perf_counter()
    txn = opsdata.Transaction(obj)
    txn.write_region_groups(result.region_weights)
    txn.ensure_basis()
    for name, delta in result.named_deltas("ARKIT"):
        txn.write_shape_key(name, mesh_io.shape_key_coords(arrays, delta), False)
    obj.data.update()
    t["writes"] = time.perf_counter() - t0
    t["total"] = sum(t.get(k, 0.0) for k in ("read", "proxy", "inference", "transfer", "rules", "writes"))

    # Baseline on the same mesh: nearest-surface transfer from a 2.7k-vertex template rig.
    rng = np.random.default_rng(0)
    tv = arrays.verts_world[:: max(1, n // 2700)]
    from blender_addon.core.closest_point import closest_point_barycentric, interpolate_barycentric
    from blender_addon.core.mesh.head import normalize_head, split_parts
    from blender_addon.core.mesh.proxy import build_proxy
    from blender_addon.core.mesh.topology import clean_faces

    proxy = build_proxy(arrays.verts_world, arrays.faces, max_verts=2700)
    td = rng.normal(size=(52, len(proxy.verts), 3)).astype(np.float32)
    t0 = time.perf_counter()
    _surface_transfer_baseline(arrays.verts_world, arrays.faces, proxy.verts, proxy.faces, td)
    t["surface_transfer_baseline"] = time.perf_counter() - t0
    del tv
    if target == NO_PROXY_SIZE:
        t.update(_without_proxy(arrays, provider))
    return {"n": n, "source": source, "provider": result.provider, **t}


def _without_proxy(arrays, provider: str) -> dict:
    """What the proxy saves: spectral operators and the rig network on every skin vertex."""
    from blender_addon.core import features, inference
    from blender_addon.core.closest_point import closest_point_barycentric, interpolate_barycentric
    from blender_addon.core.mesh.head import normalize_head, split_parts
    from blender_addon.core.mesh.proxy import build_proxy
    from blender_addon.core.mesh.topology import clean_faces
    from blender_addon.core import rig as core_rig

    verts, faces, _ = split_parts(arrays.verts_world, arrays.faces).skin_mesh()
    faces, _ = clean_faces(faces)
    t0 = time.perf_counter()
    prepared = features.prepare(normalize_head(verts).apply(verts), faces)
    t1 = time.perf_counter()
    inference.run(core_rig.RIG_MODEL, features.rig_feeds(prepared), provider)
    t2 = time.perf_counter()
    return {"no_proxy_vertices": len(verts), "no_proxy_operators": t1 - t0, "no_proxy_inference": t2 - t1}


def _cold_child(facecap: Path, warm_up: bool) -> dict:
    """In this fresh process: the first Rig Face on the 69k head, the networks loaded and
    nothing else warm. ``warm_up``: first the add-on's background import of SciPy, as a
    fresh Blender with a window runs it once started (``rig.register``), waited for.
    Returns the seconds of the click and of each stage and step."""
    t0 = time.perf_counter()
    import bpy
    import addon_utils  # after bpy, which makes it importable

    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon_utils.enable("blender_addon", default_set=True)
    start_up = time.perf_counter() - t0
    from blender_addon import mesh_io, prefs
    from blender_addon.core import inference
    from blender_addon.core import rig as core_rig

    obj, source = _head(COLD_SIZE, facecap, parts=True)
    for other in bpy.context.scene.objects:
        other.select_set(other == obj)
    bpy.context.view_layer.objects.active = obj
    choice = prefs.provider_choice(bpy.context)
    for model in (core_rig.RIG_MODEL, core_rig.LOCALIZER_MODEL):      # "models loaded"
        inference.get_session(model, choice)
    t0 = time.perf_counter()
    if warm_up:
        core_rig.start_warm_up()
        core_rig.wait_for_warm_up()
    warm_up_seconds = time.perf_counter() - t0
    scipy_before = any(name == "scipy" or name.startswith("scipy.") for name in sys.modules)
    # The operator's own calls, timed where they happen (the read and the prediction);
    # the rest of the click is the writes and the report.
    seen = {}

    def timed(name, fn):
        def call(*args, **kwargs):
            t = time.perf_counter()
            out = fn(*args, **kwargs)
            seen[name] = time.perf_counter() - t
            seen[name + "_out"] = out
            return out
        return call

    predict = core_rig.predict
    mesh_io.read_mesh = timed("read", mesh_io.read_mesh)
    core_rig.predict = timed("predict", predict)
    t0, c0 = time.perf_counter(), time.process_time()
    status = bpy.ops.facsimile.rig()
    total, cpu = time.perf_counter() - t0, time.process_time() - c0
    if status != {"FINISHED"} or "predict_out" not in seen:
        raise SystemExit(f"Rig Face did not finish: {status}")
    result = seen["predict_out"]
    keys = len(obj.data.shape_keys.key_blocks) - 1
    t0 = time.perf_counter()
    warm = predict(seen["read_out"].verts_world, seen["read_out"].faces, provider=choice)
    warm_predict = time.perf_counter() - t0
    return {"n": len(obj.data.vertices), "source": source, "provider": result.provider, "total": total, "cpu": cpu,
            "load": os.getloadavg()[0],
            "read": seen["read"], "predict": seen["predict"], "writes": total - seen["read"] - seen["predict"],
            **result.timings, **result.steps, "keys": keys, "start_up": start_up,
            "warm_up": warm_up, "warm_up_seconds": warm_up_seconds, "scipy_before": scipy_before,
            "eyes_found": result.report.eyes_found, "tongue_found": result.report.tongue_found,
            "cavity": int(result.cavity.sum()) if result.cavity is not None else 0,
            "warm_predict": warm_predict, "warm_rules": warm.timings.get("rules", 0.0)}


def _cold_runs(warm_up: bool) -> list[dict]:
    runs = []
    for _ in range(COLD_RUNS):
        cmd = [sys.executable, "-m", "tools.bench_rig", "--cold-child", str(_facecap_path())]
        out = subprocess.run(cmd + ([] if warm_up else ["--no-warm-up"]), cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"cold run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return runs


def cold_rows() -> list[str]:
    """The cold rows: COLD_RUNS fresh processes each, with and without the add-on's
    warm-up, the fastest kept, in a table of their steps."""
    rows = [(_cold_runs(True), "fresh Blender: the add-on's background import done"),
            (_cold_runs(False), "no warm-up (a script, the command line): SciPy imported in the click")]
    r = min(rows[0][0], key=lambda x: x["total"])
    if r["total"] < COLD_TARGET:
        verdict = f"under the {COLD_TARGET:.0f} s target"
    elif r["cpu"] < COLD_TARGET and r["load"] > (os.cpu_count() or 1):
        verdict = (f"**over** the {COLD_TARGET:.0f} s target in wall-clock time on this machine, shared at the "
                   f"time (load {r['load']:.1f} on {os.cpu_count()} cores); its processor time, {r['cpu']:.2f} s, "
                   "is under it")
    else:
        verdict = f"**over** the {COLD_TARGET:.0f} s target"
    lines = [
        f"First Rig Face in a fresh Blender on {r['source']} with its eyeballs and teeth (tongue included) in one "
        f"mesh, re-meshed to {r['n']:,} vertices; provider {r['provider']}. Each try is a new process: bpy "
        "imported, the add-on enabled, the head built and the two rig networks' sessions loaded (not timed; the "
        "face-landmark networks load in the click, on first use); then "
        "one `bpy.ops.facsimile.rig()` is timed from the click to the keys written, nothing computed before it. "
        "With a window, Blender runs the add-on's warm-up a second after it starts: SciPy imported on a "
        "background thread (`core.rig.start_warm_up`; imports only); the first row waits for it before the "
        "click, the second row has none, as in a script or the command line, where the click imports SciPy. "
        f"Fastest of {COLD_RUNS} tries each; the fresh-Blender click is {verdict}. "
        "*CPU s*: processor time of all the process's threads during the click (on a machine shared with other "
        f"work the wall-clock time grows, this does not; load average {r['load']:.1f} on this run).",
        "",
        "| first Rig Face | vertices | read | proxy (of it: cavities · face landmarks) | networks | transfer | rules: eyes · "
        "blink · lids · lips · tongue | Blender writes and report | **click s** | all tries s | CPU s |",
        "|---|---|---|---|---|---|---|---|---|---|---|"]
    for runs, label in rows:
        r = min(runs, key=lambda x: x["total"])
        steps = " · ".join(f"{r.get(k, 0.0):.3f}" for k in RULE_STEPS)
        tries = ", ".join(f"{x['total']:.2f}" for x in runs)
        lines.append(
            f"| {label} | {r['n']:,} | {r['read']:.3f} | {r['proxy']:.3f} ({r.get('cavities', 0.0):.3f} · {r.get('landmarks', 0.0):.3f}) | "
            f"{r['inference']:.3f} | {r['transfer']:.3f} | {r['rules']:.3f}: {steps} | {r['writes']:.3f} | "
            f"**{r['total']:.3f}** | {tries} | {r['cpu']:.3f} |")
    r = min(rows[0][0], key=lambda x: x["total"])
    lines += ["", f"The warm-up took {r['warm_up_seconds']:.2f} s on its thread. The same prediction again in "
                  f"that process: {r['warm_predict']:.3f} s, of it rules {r['warm_rules']:.3f} s. The click wrote "
                  f"{r['keys']} shape keys; found: eyeballs ({r['eyes_found'] or 'none'}), tongue "
                  f"({r['tongue_found'] or 'none'}), {r['cavity']:,} cavity vertices. Not in the click: "
                  f"Blender's start with the add-on ({r['start_up']:.2f} s here) and the networks' loading."]
    return lines


def run(provider: str = "CPU") -> list[str]:
    rows = [bench_one(size, provider) for size in SIZES]
    base = rows[0]["total"]
    lines = [f"Provider: {rows[0]['provider']}. Head: {rows[0]['source']} re-meshed to each size.", "",
             "| vertices | read | proxy | inference | transfer | rules | Blender writes | **total s** | × 6k head | "
             "surface-transfer baseline s | total / baseline |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']:,} | {r['read']:.3f} | {r['proxy']:.3f} | {r['inference']:.3f} | "
                     f"{r['transfer']:.3f} | {r.get('rules', 0.0):.3f} | {r['writes']:.3f} | **{r['total']:.3f}** | "
                     f"{r['total'] / base:.2f} | "
                     f"{r['surface_transfer_baseline']:.3f} | {r['total'] / r['surface_transfer_baseline']:.2f} |")
    for r in rows:
        if "no_proxy_operators" in r:
            direct = r["no_proxy_operators"] + r["no_proxy_inference"]
            with_proxy = r["proxy"] + r["inference"] + r["transfer"]      # the networks' part, rules aside
            lines += ["", (f"Without the proxy, on the {r['n']:,}-vertex head: spectral operators on its "
                           f"{r['no_proxy_vertices']:,} skin vertices {r['no_proxy_operators']:.2f} s + the rig "
                           f"network {r['no_proxy_inference']:.2f} s = **{direct:.2f} s**, against "
                           f"{with_proxy:.2f} s for proxy, inference and transfer ({direct / with_proxy:.0f}x); the "
                           "eigensolver grows faster than linearly, so at 200k it would take minutes.")]
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--cold-only", action="store_true", help="only the first Rig Face in a fresh Blender")
    parser.add_argument("--cold-child", metavar="FACECAP", help=argparse.SUPPRESS)
    parser.add_argument("--no-warm-up", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.cold_child:
        print(json.dumps(_cold_child(Path(args.cold_child), not args.no_warm_up)))
        return
    cold = cold_rows()
    print("\n".join(cold))
    if not args.no_write:
        write_block(DOC, "rig-cold", cold, "## First Rig Face in a fresh Blender (`python build.py bench rig`)")
    if args.cold_only:
        return
    import bpy  # noqa: F401  (Blender first: it makes addon_utils importable)

    from blender_addon.core import inference

    lines = run("CPU")
    if inference.CUDA in inference.available_providers():
        lines += ["", "CUDA:", ""] + run("CUDA")
    else:
        lines += ["", "CUDA: not offered by this ONNX Runtime (CPU-only machine); run on a GPU machine with "
                      "onnxruntime-gpu for the CUDA rows."]
    print("\n".join(lines))
    if not args.no_write:
        write_block(DOC, "rig", lines, "## Rig speed (`python build.py bench rig`)")


if __name__ == "__main__":
    sys.exit(main())
