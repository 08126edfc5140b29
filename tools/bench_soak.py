# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m tools.bench_soak`` (or ``python build.py bench soak``): one Blender, many jobs,
memory flat.

One process of a clean Blender 5.0 with the built Linux zip installed (as
``tools/bench_install.py`` does: Blender's own installer, a throw-away user folder) works
through what an artist does in a long session:

* 20 cycles, each on a new head (Suzanne subdivided once, a different shape and size each
  cycle, so no prediction is reused): Rig Face, import a Live Link Face take (a different
  600-frame take each cycle), live preview on the head while 60 frames are scrubbed, bake
  the take onto the head, then delete the head, the take and their data (so what remains
  is only what the add-on keeps between jobs, not the artist's growing file);
* 5 video imports (a 2-second clip of the project's rendered face, under five names, so
  each is tracked afresh).

The resident set size (``VmRSS``) is read after every step. After a warm-up (the first 5
cycles: ONNX Runtime sessions, the first allocations of each size) it must stay flat: the
caches are bounded (``core/cache.BoundedCache``), the rest is freed. The table with the
slope goes into docs/benchmarks.md (block ``soak``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tools import blender_envs, extension
from tools.docblock import write_block

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
CYCLES = 20
WARMUP = 5
VIDEOS = 5

# Renders the clip in its own process (factory settings there cannot touch the soak).
_RENDER = """
import sys, video_scene as vs
perf = vs.known_performance(seconds=2.0, neutral_seconds=0.5)
vs.render_video(sys.argv[1], sys.argv[2], perf)
"""

_SOAK = r"""
import gc, json, os, shutil, sys, tempfile, time
import numpy as np
import bpy, addon_utils

MODULE = "bl_ext.user_default.facsimile"
assert addon_utils.enable(MODULE, default_set=True) is not None
import importlib
arkit = importlib.import_module(MODULE + ".core.arkit")
takes = importlib.import_module(MODULE + ".core.takes")
llf = importlib.import_module(MODULE + ".core.takes.llf_csv")
cycles, videos, clip = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
work = tempfile.mkdtemp(prefix="facsimile-soak-")


def rss_mb():
    gc.collect()      # cyclic garbage is not a leak; what survives a collection is
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0


def log(step, cycle, seconds):
    print("SOAK " + json.dumps({"step": step, "cycle": cycle, "rss_mb": rss_mb(), "seconds": seconds}),
          flush=True)


def select_only(obj):
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj


def head(i):
    bpy.ops.mesh.primitive_monkey_add(size=0.25 + 0.01 * i)
    obj = bpy.context.object
    obj.name = f"Head{i:02d}"
    sub = obj.modifiers.new("Sub", "SUBSURF")
    sub.levels = 1
    bpy.ops.object.modifier_apply(modifier=sub.name)
    rng = np.random.default_rng(i)
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3) * (1.0 + 0.05 * rng.normal(size=3)).astype(np.float32)   # a new shape
    obj.data.vertices.foreach_set("co", co.ravel())
    obj.data.update()
    return obj


def take_file(i):
    t = np.arange(600) / 60.0
    phase = np.arange(1, 53)[None, :] * (1.0 + 0.1 * i)
    weights = 0.5 + 0.45 * np.sin(t[:, None] * phase)
    path = os.path.join(work, f"take{i:02d}.csv")
    with open(path, "w") as handle:
        handle.write(llf.format_llf_csv(takes.Take(times=t, names=list(arkit.ARKIT_52), weights=weights)))
    return path


def purge():
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    bpy.data.orphans_purge(do_local_ids=True, do_linked_ids=True, do_recursive=True)


scene = bpy.context.scene
scene.render.fps = 30
log("start", 0, 0.0)
for i in range(1, cycles + 1):
    t = time.perf_counter()
    obj = head(i)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    log("rig", i, time.perf_counter() - t)
    t = time.perf_counter()
    assert bpy.ops.facsimile.import_take(filepath=take_file(i), start_frame=1) == {"FINISHED"}
    select_only(obj)
    assert bpy.ops.facsimile.preview(enable=True) == {"FINISHED"}
    for frame in range(1, 601, 10):
        scene.frame_set(frame)
    assert bpy.ops.facsimile.preview(enable=False) == {"FINISHED"}
    log("preview", i, time.perf_counter() - t)
    t = time.perf_counter()
    select_only(obj)
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    baked = obj.data.shape_keys.animation_data
    assert baked is not None and baked.action is not None, "the bake wrote no keys"
    log("bake", i, time.perf_counter() - t)
    purge()
    log("cleared", i, 0.0)
for j in range(1, videos + 1):
    path = os.path.join(work, f"clip{j}.mp4")
    shutil.copy(clip, path)
    t = time.perf_counter()
    assert bpy.ops.facsimile.import_video(filepath=path) == {"FINISHED"}
    log("video", j, time.perf_counter() - t)
    purge()
    log("video cleared", j, 0.0)
"""


def _zip() -> Path:
    found = sorted((ROOT / "build" / "extension" / "dist").glob("facsimile-*-linux_x64.zip"))
    return found[0] if found else extension.build(ROOT / "build" / "test-dist", ["linux-x64"])[0]


def _env(user: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(BLENDER_USER_RESOURCES=str(user), HOME=str(user), **{k: str(v) for k, v in extra.items()})
    return env


def run(cycles: int = CYCLES, videos: int = VIDEOS) -> list[dict]:
    from model_export.data.ict import data_root

    python = blender_envs.ensure("5.0", sys.executable)
    user = Path(tempfile.mkdtemp(prefix="facsimile-bench-soak-"))
    subprocess.run([str(python), "-P", "-c",
                    "import sys, bpy; sys.exit(bpy.ops.extensions.package_install_files("
                    "filepath=sys.argv[1], repo='user_default', enable_on_install=False) != {'FINISHED'})",
                    str(_zip())], env=_env(user), check=True, capture_output=True)
    facecap = data_root() / "facecap" / "facecap.npz"
    if not facecap.exists():
        raise SystemExit(f"bench soak renders its video clip from the facecap head: {facecap} is missing")
    clip = user / "face_clip.mp4"
    subprocess.run([str(python), "-P", "-c", _RENDER, str(clip), str(facecap)],
                   env=_env(user, PYTHONPATH=ROOT / "tests" / "blender"), cwd=ROOT / "tests" / "blender",
                   check=True, capture_output=True)
    done = subprocess.run([str(python), "-P", "-c", _SOAK, str(cycles), str(videos), str(clip)],
                          env=_env(user), capture_output=True, text=True)
    rows = [json.loads(x[5:]) for x in done.stdout.splitlines() if x.startswith("SOAK ")]
    if done.returncode != 0:
        raise SystemExit(f"the soak failed after {len(rows)} steps:\n{done.stderr[-3000:]}")
    return rows


def slope(rows: list[dict], step: str, first: int) -> tuple[float, float]:
    """MB per cycle (least squares) of ``step``'s RSS from cycle ``first`` on, and the spread."""
    pts = [(r["cycle"], r["rss_mb"]) for r in rows if r["step"] == step and r["cycle"] >= first]
    if len(pts) < 2:      # a short trial run: no warm-up to leave out
        pts = [(r["cycle"], r["rss_mb"]) for r in rows if r["step"] == step]
    x, y = np.array(pts, float).T
    return float(np.polyfit(x, y, 1)[0]), float(y.max() - y.min())


def table(rows: list[dict], cycles: int, n_videos: int) -> list[str]:
    by = {(r["step"], r["cycle"]): r for r in rows}
    lines = [f"One clean Blender 5.0 process, the installed Linux zip: {cycles} cycles of a new head "
             "(Suzanne subdivided, ~2k vertices, a new shape each time) rigged, a new 600-frame take "
             "imported, previewed over 60 scrubbed frames and baked, then head and take deleted; then "
             f"{n_videos} video imports (a 2 s rendered face clip under new names). Resident memory "
             "(VmRSS, MB) after each step:", "",
             "| cycle | after rig | after preview | after bake | cleared | rig s | bake s |",
             "|---|---|---|---|---|---|---|"]
    for c in range(1, cycles + 1):
        r = [by[(s, c)] for s in ("rig", "preview", "bake", "cleared")]
        lines.append(f"| {c} | {r[0]['rss_mb']:.0f} | {r[1]['rss_mb']:.0f} | {r[2]['rss_mb']:.0f} | "
                     f"{r[3]['rss_mb']:.0f} | {r[0]['seconds']:.2f} | {r[2]['seconds']:.2f} |")
    videos = [r for r in rows if r["step"] == "video cleared"]
    lines += ["", "| video | after import | cleared | import s |", "|---|---|---|---|"]
    for r in videos:
        imp = by[("video", r["cycle"])]
        lines.append(f"| {r['cycle']} | {imp['rss_mb']:.0f} | {r['rss_mb']:.0f} | {imp['seconds']:.2f} |")
    s_clear, spread = slope(rows, "cleared", WARMUP + 1)
    s_bake, _ = slope(rows, "bake", WARMUP + 1)
    start = by[("start", 0)]["rss_mb"]
    lines += ["", f"Before the first job: {start:.0f} MB. After the warm-up (cycles {WARMUP + 1}-{cycles}) "
              f"the slope is **{s_clear:+.2f} MB per cycle** once a cycle's data is deleted "
              f"({s_bake:+.2f} MB per cycle right after each bake), spread {spread:.0f} MB."]
    if videos:
        v = np.array([r["rss_mb"] for r in videos])
        lines.append(f"Video imports: {v[0]:.0f} MB after the first, {v[-1]:.0f} MB after the last of "
                     f"{len(v)} (the track cache keeps the last 2).")
    return lines


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cycles", type=int, default=CYCLES)
    p.add_argument("--videos", type=int, default=VIDEOS)
    p.add_argument("--no-write", action="store_true", help="print the table, leave the docs alone")
    args = p.parse_args(argv)
    rows = run(args.cycles, args.videos)
    lines = table(rows, args.cycles, args.videos)
    print("\n".join(lines))
    if not args.no_write:
        write_block(DOC, "soak", lines, heading="## Soak: memory over a long session")


if __name__ == "__main__":
    main(sys.argv[1:])
