# SPDX-License-Identifier: GPL-3.0-or-later
"""``python build.py bench live``: live capture speed, against the 16.7 ms of a 60 Hz phone.

1. **decode**: frames per second each format decodes (bytes -> LiveFrame, one thread, no
   socket): the worker thread's cost per datagram. Face Cap is measured both ways it can
   arrive (one bundle per frame, and 57 loose messages per frame).
2. **latency** (with the bpy module): a sender on 127.0.0.1 streams Live Link Face at
   60 Hz to ``Drive ▸ Live`` while a 50k-vertex mesh with the 52 ARKit keys is in Live
   Preview; the time from the datagram's arrival (the receiver's timestamp) to the shape-key
   values and the folded preview key being set (``live/session.apply_frame``), median and
   p99. Background Blender runs no timers, so the timer's function is called every 1/120 s
   as the timer would: the latency includes that wait. Depsgraph evaluation and drawing
   come after and are not included (``bench drive`` measures a preview frame's evaluation).

``--write`` puts the table into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

from blender_addon.core.live import facecap_osc, ifacialmocap, livelinkface
from blender_addon.core.live.frame import LiveFrame
from tools.docblock import write_block

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
BUDGET_MS = 1000.0 / 60.0


def _frames(n: int) -> list:
    rng = np.random.default_rng(0)
    return [LiveFrame(weights=rng.uniform(0, 1, 52), subject="Bench",
                      head_rotation=rng.uniform(-0.5, 0.5, 3),
                      eye_rotation_left=rng.uniform(-0.3, 0.3, 3),
                      eye_rotation_right=rng.uniform(-0.3, 0.3, 3), frame_number=k,
                      frame_rate=(60, 1)) for k in range(n)]


def _rate(datagrams_per_frame: list, feed, repeat: int) -> float:
    """Frames per second, best of ``repeat`` passes over the whole list."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for group in datagrams_per_frame:
            for d in group:
                feed(d)
        best = min(best, time.perf_counter() - t0)
    return len(datagrams_per_frame) / best


def run(n: int = 2000, repeat: int = 3) -> list:
    frames = _frames(n)
    sender = ("127.0.0.1", 9)
    rows = []
    llf = [[livelinkface.encode(f)] for f in frames]
    rows.append(("Live Link Face", len(llf[0][0]), _rate(llf, livelinkface.decode, repeat)))
    bundles = [facecap_osc.encode(f) for f in frames]
    dec = facecap_osc.FaceCapDecoder()
    rows.append(("Face Cap (bundle)", len(bundles[0][0]),
                 _rate(bundles, lambda d: dec.feed(d, sender), repeat)))
    loose = [facecap_osc.encode(f, bundle=False) for f in frames]
    dec2 = facecap_osc.FaceCapDecoder()
    rows.append(("Face Cap (57 messages)", sum(map(len, loose[0])),
                 _rate(loose, lambda d: dec2.feed(d, sender), repeat)))
    ifm = [[ifacialmocap.encode(f)] for f in frames]
    rows.append(("iFacialMocap", len(ifm[0][0]),
                 _rate(ifm, lambda d: ifacialmocap.decode(d, "127.0.0.1"), repeat)))
    return rows


def latency(side: int = 224, seconds: float = 10.0) -> dict:
    """Arrival -> keys set on a side x side grid (side 224: 50,176 vertices) in Live Preview."""
    from tools.bench_drive import _grid_head, _select, _start

    bpy = _start()
    from blender_addon.live import session

    obj = _grid_head(bpy, side)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scene = bpy.context.scene
    live = session.start(scene, "livelinkface", port, "127.0.0.1")
    _select(bpy, obj)
    assert bpy.ops.facsimile.preview(enable=True) == {"FINISHED"}
    frames = _frames(int(seconds * 60))
    done = threading.Event()

    def send():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            t0 = time.perf_counter()
            for k, frame in enumerate(frames):
                s.sendto(livelinkface.encode(frame), ("127.0.0.1", port))
                time.sleep(max(0.0, t0 + (k + 1) / 60.0 - time.perf_counter()))
        done.set()

    threading.Thread(target=send, daemon=True).start()
    apply_ms = []
    while not done.is_set():
        t0 = time.perf_counter()
        if session.tick():
            apply_ms.append(1e3 * (time.perf_counter() - t0))
        time.sleep(session.TICK)
    stats = live.receiver.stats()
    session.stop(scene)
    lat = 1e3 * np.array(live.latencies)
    return {"vertices": len(obj.data.vertices), "sent": len(frames), "received": stats.frames,
            "applied": len(lat), "dropped": stats.dropped, "median": float(np.median(lat)),
            "p99": float(np.percentile(lat, 99)), "apply_median": float(np.median(apply_ms)),
            "apply_p99": float(np.percentile(apply_ms, 99))}


def table(decode_rows: list, lat: dict | None) -> list:
    lines = ["| live format | bytes/frame | frames/s decoded | µs/frame | × 60 Hz |",
             "|---|---:|---:|---:|---:|"]
    for name, size, fps in decode_rows:
        lines.append(f"| {name} | {size} | {fps:,.0f} | {1e6 / fps:.1f} | {fps / 60:,.0f} |")
    if lat:
        lines += ["", f"Datagram arrival → shape-key values set, Live Link Face at 60 Hz over "
                      f"127.0.0.1 onto a {lat['vertices']:,}-vertex mesh with 52 ARKit keys in "
                      f"Live Preview ({lat['applied']} of {lat['sent']} frames applied, "
                      f"{lat['dropped']} dropped as stale), budget {BUDGET_MS:.1f} ms:", "",
                  "| | median | p99 |", "|---|---:|---:|",
                  f"| arrival → keys set (incl. the timer's wait, 1/120 s) | "
                  f"{lat['median']:.2f} ms | {lat['p99']:.2f} ms |",
                  f"| of which the main-thread apply (map, plan, keys, folded key) | "
                  f"{lat['apply_median']:.2f} ms | {lat['apply_p99']:.2f} ms |"]
    return lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-latency", action="store_true", help="decode only (no bpy needed)")
    parser.add_argument("--seconds", type=float, default=10.0, help="latency run length")
    parser.add_argument("--write", action="store_true", help="write the table into docs")
    args = parser.parse_args(argv)
    rows = run(args.frames, args.repeat)
    lat = None if args.no_latency else latency(seconds=args.seconds)
    lines = table(rows, lat)
    print("\n".join(lines))
    if args.write:
        write_block(DOC, "live", lines, heading="## Live capture")
    return 0


if __name__ == "__main__":
    sys.exit(main())
