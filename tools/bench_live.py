# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m tools.bench_live``: how many frames per second each live format decodes.

Decode only (bytes -> LiveFrame, in one thread, no socket): the worker thread's cost per
datagram, to compare with a phone's 60 Hz. Face Cap is measured both ways it can arrive
(one bundle per frame, and 57 loose messages per frame). The end-to-end number the issue
asks for (datagram arrival to shape-key values set, median and p99, 50k-vertex target)
needs the Blender side and is not measured here yet.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from blender_addon.core.live import facecap_osc, ifacialmocap, livelinkface
from blender_addon.core.live.frame import LiveFrame


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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'format':<24} {'bytes/frame':>11} {'frames/s':>10} {'us/frame':>9} {'x 60 Hz':>8}")
    for name, size, fps in run(args.frames, args.repeat):
        print(f"{name:<24} {size:>11d} {fps:>10.0f} {1e6 / fps:>9.1f} {fps / 60:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
