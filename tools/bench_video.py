# SPDX-License-Identifier: GPL-3.0-or-later
"""Speed of the video source on this machine: decoding alone, then decoding + tracking.

    python -m tools.bench_video [VIDEO] [--frames N]    # no VIDEO: the test performance clip
    python -m tools.bench_video --make-720p SRC OUT.mp4   # SRC's frames in a 1280x720 30 fps H.264 clip

Prints frames per second (wall clock), CPU milliseconds per frame and the split between
the stages, so "faster than real time" can be checked for a given resolution and rate.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def make_720p(src: str, out: str, seconds: float = 10.0) -> None:
    """SRC's frames (looped) scaled to 2/3 of a 1280x720 frame, H.264 at 30 fps."""
    import av

    frames = []
    with av.open(src) as inp:
        for f in inp.decode(video=0):
            frames.append(f.reformat(width=480, height=480).to_ndarray(format="rgb24"))
    with av.open(out, "w") as dst:
        stream = dst.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        canvas = np.full((720, 1280, 3), 70, np.uint8)
        for i in range(int(seconds * 30)):
            x = 400 + int(120 * np.sin(i / 40))
            canvas[:] = 70
            canvas[120:600, x:x + 480] = frames[i % len(frames)]
            for packet in stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)


def bench(path: str, frames: int | None = None) -> dict:
    from blender_addon.core.video import take as tv
    from blender_addon.core.video import decode

    with decode.VideoReader(path) as video:
        info = video.info
        t0, c0, n = time.perf_counter(), time.process_time(), 0
        for _ in video.frames(stop=frames):
            n += 1
        decode_wall, decode_cpu = time.perf_counter() - t0, time.process_time() - c0
    c0 = time.process_time()
    track = tv.track_video(path, tv.VideoOptions(stop=frames))
    cpu = time.process_time() - c0
    return {"video": os.path.basename(path), "size": f"{info.width}x{info.height}", "fps": info.fps,
            "frames": len(track.times), "decode_fps": n / decode_wall, "decode_cpu_ms": 1e3 * decode_cpu / n,
            "track_fps": track.tracking_fps, "track_cpu_ms": 1e3 * cpu / len(track.times),
            "realtime_factor": track.tracking_fps / info.fps if info.fps else float("nan"),
            "face_found": float(track.found.mean()), "detector_runs": track.detector_runs,
            "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?")
    parser.add_argument("--frames", type=int)
    parser.add_argument("--make-720p", nargs=2, metavar=("SRC", "OUT"))
    args = parser.parse_args(argv)
    if args.make_720p:
        make_720p(*args.make_720p)
        print(f"[bench_video] wrote {args.make_720p[1]}")
    if args.make_720p and not args.video:
        return
    video = args.video
    if not video:
        # The project's own clip (tests/blender/video_scene.py renders it once, cached), as
        # tools/video_docs.py uses it: the bench runs anywhere the tests run.
        from tools.video_docs import _test_video

        video = str(_test_video())
        print(f"[bench_video] no VIDEO given: the test performance {video}")
    if video:
        result = bench(video, args.frames)
        for key, value in result.items():
            print(f"[bench_video] {key}: {value:.2f}" if isinstance(value, float) else f"[bench_video] {key}: {value}")
        print(f"[bench_video] {result['video']}: decoding {result['decode_fps']:.0f} frames per second, "
              f"decoding + tracking {result['track_fps']:.1f} frames per second "
              f"({result['realtime_factor']:.2f}x its {result['fps']:.0f} fps)")


if __name__ == "__main__":
    main()
