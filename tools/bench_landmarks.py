# SPDX-License-Identifier: GPL-3.0-or-later
"""``python build.py bench landmarks``: face landmarks from a render, with and without.

The rig's landmark step (``core/landmarks.py``: MediaPipe's face detector and landmarker
on a numpy front render of the head's proxy, cast back onto the surface) and its one use,
the canonical pose, measured on

* held-out ICT heads upright, and the same heads pitched +15 and -15 deg (chin down / up,
  about the X axis; the shapes turned with them) -- heads whose pose is outside the
  training pool's 8 deg tilt;
* the test heads (facecap, both Rocketbox heads), reported only;
* heads without a face (Suzanne, a sphere): the landmarks must not be found;
* the step's cost on facecap subdivided to 2.7k, 43k and 172k vertices.

``reference`` prints ICT's own pose against MediaPipe's canonical face
(``core.landmarks.REFERENCE_POSE``) and how far upright ICT identities stray from it
(``DEAD_ZONE``), from ICT identities drawn as the training pool draws them, on a seed of
their own (never the held-out or test heads).

Writes the table into docs/models.md (block ``landmarks``).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from blender_addon.core import arkit, landmarks, rig
from blender_addon.core.mesh.topology import triangulate
from model_export import evaluate
from model_export.data import dataset
from model_export.data.ict import load_ict
from model_export.data.regions import load_region_labels
from tools.bench_accuracy import blink_share, gain_metrics
from tools.docblock import write_block

ROOT = Path(__file__).resolve().parent.parent
MODELS_DOC = ROOT / "docs" / "models.md"
REFERENCE_SEED = 2024
PITCHES = (15.0, -15.0)


def pitched(head: evaluate.TestHead, pitch: float) -> evaluate.TestHead:
    """The head and its shapes turned ``pitch`` degrees about X (chin down for > 0)."""
    turn = landmarks.angles_to_rotation(pitch, 0.0, 0.0)
    return replace(head, name=f"{head.name} pitched {pitch:+.0f}°", verts=head.verts @ turn.T, gt=head.gt @ turn.T)


def uv_sphere(rings: int = 24) -> tuple[np.ndarray, np.ndarray]:
    theta, phi = np.meshgrid(np.linspace(0.0, np.pi, rings), np.linspace(0.0, 2 * np.pi, 2 * rings, endpoint=False),
                             indexing="ij")
    verts = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1).reshape(-1, 3)
    m = 2 * rings
    faces = []
    for i in range(rings - 1):
        for j in range(m):
            a, b, c, d = i * m + j, i * m + (j + 1) % m, (i + 1) * m + j, (i + 1) * m + (j + 1) % m
            faces += [(a, c, b), (b, c, d)]
    return verts, np.array(faces)


def suzanne() -> tuple[np.ndarray, np.ndarray]:
    with np.load(ROOT / "tests" / "core" / "data" / "suzanne.npz") as d:
        return d["verts"].astype(np.float64), triangulate(d["corners"], d["sizes"])


def rig_head(head: evaluate.TestHead, use_landmarks: bool):
    result = rig.predict(head.verts, head.faces, provider="CPU", landmarks=use_landmarks)
    pred = result.ict_deltas if head.names == arkit.ICT_53 else result.arkit_deltas()
    m = gain_metrics(pred, head.gt)
    m["blink_share"] = blink_share(pred, head.gt, head.names, head.unit_mm)
    return m, result.landmarks


def measure_group(heads) -> dict:
    row = {"n": len(heads), "found": 0, "turned": 0, "seconds": []}
    for h in heads:
        for use in (False, True):
            m, found = rig_head(h, use)
            for k, v in m.items():
                row.setdefault(f"{k}_{'on' if use else 'off'}", []).append(v)
            if use:
                row["found"] += int(found.found)
                row["turned"] += int(found.corrected)
                row["seconds"].append(found.seconds)
        print(f"  {h.name}: relative {row['relative_off'][-1]:.3f} -> {row['relative_on'][-1]:.3f} "
              f"(face {'found' if found.found else 'not found'}, turn {found.turn_degrees:.1f}°, "
              f"{'corrected' if found.corrected else 'left'})", flush=True)
    return {k: (float(np.mean(v)) if isinstance(v, list) else v) for k, v in row.items()}


def cost_rows() -> tuple[float, list[tuple[str, int, float, float]]]:
    """(seconds to load the detector and landmark networks, [(head, vertices, wall s best
    of 5, CPU s best of 5)]) of the landmark step on facecap at three densities."""
    from blender_addon.core import features
    from blender_addon.core.mesh.head import normalize_head, split_parts
    from blender_addon.core.mesh.proxy import build_proxy

    from blender_addon.core import inference

    inference.clear_cache()
    t = time.perf_counter()
    landmarks._landmarker()
    load = time.perf_counter() - t
    rows = []
    for head in [evaluate.facecap_head()] + evaluate.facecap_dense_heads((2, 3)):
        skin_v, skin_f, _ = split_parts(head.verts, head.faces).skin_mesh()
        norm = normalize_head(skin_v)
        proxy = build_proxy(norm.apply(skin_v), skin_f, max_verts=features.PROXY_MAX_VERTS, welded=True)
        wall, cpu = np.inf, np.inf
        for _ in range(5):
            t, c = time.perf_counter(), time.process_time()
            rig._find_landmarks(proxy, norm)
            wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
        rows.append((head.name, len(head.verts), wall, cpu))
    return load, rows


def table(groups: dict, faceless: dict, costs) -> list[str]:
    lines = ["### Face landmarks from a render (`core/landmarks.py`, `python build.py bench landmarks`)", "",
             ("MediaPipe's face detector and landmarker (the networks Import Video ships) run on a numpy front "
              "render of the head's proxy (`core/mesh/render.py`: z-buffer, Lambert shading, 256 px; the whole "
              "head, then the face's region); the 478 landmarks are cast back onto the surface through the triangle "
              "buffer. Their use: the head's pose against ICT's (a similarity fit to MediaPipe's canonical face, "
              f"ICT's own pose {landmarks.REFERENCE_POSE} pitch/yaw/roll deg measured on {REFERENCE_N} ICT "
              "identities of a seed of their own) — a head turned more than "
              f"{landmarks.DEAD_ZONE:.0f}° from it (the training pool's random tilt is 8°; upright ICT identities "
              "stray up to 4°) is rigged turned upright, the shapes turned back. "
              "*relative* = sum|pred - gt| / sum|gt|, *rel. at g\\** after the best single gain, *blink* = "
              "share of the artist's lid motion (bench accuracy (f)); eye rules and cavity step on, as shipped. "
              "Facecap and Rocketbox are test heads: nothing was chosen on them."), "",
             "| heads | face found | turned | relative off → on | rel. at g* off → on | blink off → on |",
             "|---|---|---|---|---|---|"]
    for name, r in groups.items():
        lines.append(f"| {name} | {r['found']}/{r['n']} | {r['turned']} | {r['relative_off']:.3f} → "
                     f"{r['relative_on']:.3f} | {r['relative_at_gain_off']:.3f} → {r['relative_at_gain_on']:.3f} | "
                     f"{r['blink_share_off']:.2f} → {r['blink_share_on']:.2f} |")
    for name, found in faceless.items():
        lines.append(f"| {name} (no face) | {'found' if found else 'none'} | | | | |")
    load, rows = costs
    lines += ["", ("Cost of the step, best of 5 (wall / CPU seconds; it renders the proxy, at most 3,000 "
                   "vertices, so it hardly grows with the head): " + ", ".join(
                       f"{n:,} vertices {w:.3f} / {c:.3f} s" for _name, n, w, c in rows)
                   + f"; loading its two networks once per Blender session: {load:.3f} s. "
                   "A head turned past the dead zone is not rendered again."), ""]
    return lines


REFERENCE_N = 24


def reference(n: int = REFERENCE_N) -> None:
    """ICT's pose against MediaPipe's canonical face, over identities drawn as the pool does."""
    ict, rng = load_ict(), np.random.default_rng(REFERENCE_SEED)
    poses = []
    for i in range(n):
        neutral, _ = dataset.head_geometry(ict, dataset.random_identity(rng), rng)
        vidx, faces = ict.submesh(getattr(ict, dataset.CROPS[i % len(dataset.CROPS)]))
        head = rig.prepare_head(neutral[vidx], faces, cavities=False, landmarks=True)
        if head.landmarks.found:
            poses.append(head.landmarks.pose)
    poses = np.array(poses)
    mean = poses.mean(0)
    ref = landmarks.angles_to_rotation(*mean)
    turns = []
    for p in poses:
        q = landmarks.angles_to_rotation(*p) @ ref.T
        turns.append(np.degrees(np.arccos(np.clip((np.trace(q) - 1) / 2, -1, 1))))
    print(f"found {len(poses)}/{n}; REFERENCE_POSE = {tuple(np.round(mean, 1))}; spread {np.round(poses.std(0), 1)}; "
          f"turn from it: median {np.median(turns):.1f}, max {np.max(turns):.1f} deg")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("what", nargs="?", default="bench", choices=("bench", "reference"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.what == "reference":
        reference()
        return
    t0 = time.perf_counter()
    ict, labels = load_ict(), load_region_labels()
    held = evaluate.ict_heldout_heads(ict, labels)
    groups = {"ICT held-out (10), upright": measure_group(held)}
    for p in PITCHES:
        groups[f"ICT held-out (10), pitched {p:+.0f}°"] = measure_group([pitched(h, p) for h in held])
    groups["ICT held-out, closed sockets (3)"] = measure_group(evaluate.ict_socket_heads())
    groups["facecap (test)"] = measure_group([evaluate.facecap_head()])
    for name in evaluate.ROCKETBOX_HEADS:
        groups[f"{name} (test)"] = measure_group([evaluate.rocketbox_head(name)])
    faceless = {}
    for name, (v, f) in (("Suzanne", suzanne()), ("sphere", uv_sphere())):
        faceless[name] = rig.predict(v, f, provider="CPU", landmarks=True).landmarks.found
    lines = table(groups, faceless, cost_rows())
    lines.append(f"Measured in {time.perf_counter() - t0:.0f} s on this machine (CPU).")
    print("\n".join(lines))
    if not args.no_write:
        write_block(MODELS_DOC, "landmarks", lines)


if __name__ == "__main__":
    main()
