# SPDX-License-Identifier: GPL-3.0-or-later
"""Video frames as numpy arrays, with PyAV (FFmpeg's libraries in one wheel).

Blender embeds FFmpeg, but its Python API cannot hand a movie's frames to a script: an image
with source ``MOVIE`` exposes one frame through ``pixels`` whatever the frame asked for,
``Image.gl_load`` needs a GPU context (it aborts a headless Blender), movie clips expose no
pixels, and rendering the sequencer to files and loading them back ran at ~7.5 frames per
second for 720p here (docs/video.md has the numbers). So frames come from PyAV, which the
extension ships per platform (``av`` wheels bundle FFmpeg), decoded on a background thread
so decoding overlaps the face tracking.

* Frames are ``(H, W, 3) uint8`` RGB, upright: a phone video's display rotation (portrait
  recordings are stored sideways with a rotation tag) is applied.
* Frames larger than :data:`MAX_SIDE` on their long side are scaled down by FFmpeg while
  converting (tracking reads a 256x256 face crop; 4K only costs time).
* Times are the frames' own presentation times in seconds from the first frame, so a
  variable-frame-rate phone recording keeps its real timing.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, Optional

import numpy as np

from ..takes.errors import TakeError, describe_source

KIND = "Video"
MAX_SIDE = 1920
EXTENSIONS = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mts", ".m2ts", ".mpg", ".mpeg")


@dataclass
class VideoInfo:
    """What the container says about the first video stream (before any frame is decoded)."""

    width: int            # as delivered (after rotation and scaling)
    height: int
    fps: float            # nominal rate (average; 0 when unknown)
    frame_count: int      # best estimate, 0 when unknown
    duration: float       # seconds, 0 when unknown
    codec: str
    rotation: int         # display rotation applied, degrees counter-clockwise

    def describe(self) -> str:
        return f"{self.width}x{self.height} {self.fps:.3g} fps {self.codec}, ~{self.frame_count} frames"


def _av():
    try:
        import av
    except ImportError as ex:  # pragma: no cover - depends on the installation
        raise TakeError("video import needs the PyAV package (`av`), which ships with the "
                        f"Facsimile extension; it could not be loaded here ({ex})") from ex
    return av


def available() -> bool:
    """Whether a video decoder is present."""
    try:
        _av()
    except TakeError:
        return False
    return True


def _scaled(w: int, h: int, max_side: int) -> tuple[int, int]:
    s = min(1.0, max_side / max(w, h))
    if s >= 1.0:
        return w, h
    return max(2, int(round(w * s / 2)) * 2), max(2, int(round(h * s / 2)) * 2)


class VideoReader:
    """Iterate ``(time_seconds, frame_index, rgb)`` over one video file.

    ``with VideoReader(path) as video: for t, i, rgb in video.frames(): ...``
    ``start``/``stop`` (frame indices, stop exclusive) select a part of the take.
    """

    def __init__(self, path, max_side: int = MAX_SIDE):
        self.path = os.fspath(path)
        self.where = describe_source(KIND, self.path)
        if not os.path.isfile(self.path):
            raise TakeError(f"{self.where}: file not found")
        av = _av()
        try:
            self._container = av.open(self.path)
        except Exception as ex:
            reason = _first_line(ex).replace(f": '{self.path}'", "").replace(self.path, os.path.basename(self.path))
            raise TakeError(f"{self.where}: not a video FFmpeg can read ({reason})") from ex
        if not self._container.streams.video:
            self._container.close()
            raise TakeError(f"{self.where}: the file has no video stream")
        self._stream = stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        cc = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(0)
        fps = float(rate) if rate else 0.0
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif self._container.duration:
            duration = self._container.duration / 1e6
        frames = int(stream.frames or 0) or int(round(duration * fps))
        self.max_side = max_side
        self._rotation = self._probe_rotation()
        w, h = cc.width, cc.height
        if self._rotation % 180:
            w, h = h, w
        self._out_w, self._out_h = _scaled(w, h, max_side)
        self.info = VideoInfo(self._out_w, self._out_h, fps, frames, duration, cc.name, self._rotation)

    def _probe_rotation(self) -> int:
        """Display rotation from the first frame's side data (0 when there is none)."""
        try:
            for frame in self._container.decode(self._stream):
                rot = int(round(getattr(frame, "rotation", 0) or 0))
                break
            else:
                rot = 0
            self._container.seek(0, stream=self._stream)
        except Exception:
            rot = 0
        return rot % 360

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _convert(self, frame) -> np.ndarray:
        rot = self._rotation
        w, h = (self._out_h, self._out_w) if rot % 180 else (self._out_w, self._out_h)
        if (w, h) != (frame.width, frame.height):
            rgb = frame.to_ndarray(format="rgb24", width=w, height=h)
        else:
            rgb = frame.to_ndarray(format="rgb24")
        if rot:
            # rotation is counter-clockwise degrees for display, as FFmpeg's autorotate reads it
            rgb = np.ascontiguousarray(np.rot90(rgb, k=rot // 90))
        return rgb

    def frames(self, start: int = 0, stop: Optional[int] = None, prefetch: int = 8
               ) -> Iterator[tuple[float, int, np.ndarray]]:
        """Decoded frames in order, on a background thread (FFmpeg releases the GIL)."""
        q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
        stop_flag = threading.Event()
        done = object()

        def produce():
            try:
                t0 = None
                for index, frame in enumerate(self._container.decode(self._stream)):
                    if stop_flag.is_set() or (stop is not None and index >= stop):
                        break
                    t = frame.time
                    if t is None:
                        t = index / (self.info.fps or 30.0)
                    if t0 is None:
                        t0 = t
                    if index < start:
                        continue
                    item = (float(t - t0), index, self._convert(frame))
                    while not stop_flag.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            pass
            except Exception as ex:  # reported on the consumer's side
                q.put(ex)
                return
            q.put(done)

        worker = threading.Thread(target=produce, name="facsimile-video-decode", daemon=True)
        worker.start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, Exception):
                    raise TakeError(f"{self.where}: decoding failed ({_first_line(item)})") from item
                yield item
        finally:
            stop_flag.set()
            while worker.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    worker.join(timeout=0.05)


def _first_line(ex: Exception) -> str:
    text = str(ex).strip().splitlines()
    return text[0][:160] if text else type(ex).__name__
