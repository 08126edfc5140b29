# SPDX-License-Identifier: GPL-3.0-or-later
"""Headless recorder: listen for S seconds, write what arrived as a Live Link Face CSV.

``python -m blender_addon.core.live.record --protocol livelinkface --port 11111
--seconds 30 --out take.csv``. For TDs on a stage machine without a UI, and for tests.

The CSV is the one :func:`takes.read_llf_csv` (and so ``import_take``) reads, written by
:func:`takes.write_llf_csv`: one row per frame *received*, in arrival order, values as
received (iFacialMocap's 0-100 already divided by 100, degrees already radians), no
resampling. The Timecode column is the arrival time of day: arrival order is what was
recorded, and a sender's own clock may repeat or jump back after a lost packet or a
restart, which a CSV reader must reject. Rows are kept at least 2/1000 of a 60 fps frame
apart so two datagrams read in one go still get distinct timecodes.

Several subjects (phones) in one run: the first one heard goes to ``--out``, each other
to ``<stem>_<subject>.csv`` next to it; nothing heard is dropped.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from .. import arkit
from ..takes.llf_csv import DEFAULT_TIMECODE_FPS, write_llf_csv
from ..takes.take import Take
from .errors import LiveError
from .protocols import PROTOCOLS, get_protocol
from .receiver import LiveReceiver

# Two timecode quanta of the CSV writer (1/1000 frame at 60 fps): distinct after rounding.
MIN_STEP = 2.0 / (DEFAULT_TIMECODE_FPS * 1000.0)


@dataclass
class RecordResult:
    files: list = field(default_factory=list)   # [(subject, path, frames)], first heard first
    frames: int = 0
    malformed: int = 0
    seconds: float = 0.0


def _filled(rows: list) -> Optional[np.ndarray]:
    """(T, 3) from per-frame vectors or None; gaps hold the previous value (0 at the start)."""
    if all(r is None for r in rows):
        return None
    out = np.zeros((len(rows), 3))
    last = np.zeros(3)
    for i, r in enumerate(rows):
        if r is not None:
            last = r
        out[i] = last
    return out


def _time_of_day(wall: float) -> float:
    t = time.localtime(wall)
    return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec + (wall % 1.0)


def frames_to_take(received: list, source: str = "live recording") -> Take:
    """A Take of received frames (one subject), times = arrival, strictly increasing."""
    if not received:
        raise ValueError("no frames to make a take of")
    arrival = np.array([r.arrival for r in received], dtype=np.float64)
    times = arrival - arrival[0]
    for i in range(1, times.size):  # sequential on purpose: each step depends on the last
        if times[i] < times[i - 1] + MIN_STEP:
            times[i] = times[i - 1] + MIN_STEP
    frames = [r.frame for r in received]
    return Take(times=times, names=list(arkit.ARKIT_52),
                weights=np.stack([f.weights for f in frames]),
                head_rotation=_filled([f.head_rotation for f in frames]),
                eye_rotation_left=_filled([f.eye_rotation_left for f in frames]),
                eye_rotation_right=_filled([f.eye_rotation_right for f in frames]),
                head_position=_filled([f.head_position for f in frames]), source=source)


def _subject_path(out: Path, subject: str) -> Path:
    safe = re.sub(r"[^\w.-]+", "_", subject).strip("._") or "subject"
    return out.with_name(f"{out.stem}_{safe}{out.suffix or '.csv'}")


def write_recording(received: list, out_csv, label: str = "live") -> list:
    """Write one CSV per subject (see the module doc); returns [(subject, path, frames)]."""
    by_subject: dict = {}
    for r in received:  # dicts keep first-arrival order
        by_subject.setdefault(r.subject, []).append(r)
    out = Path(out_csv)
    written = []
    for i, (subject, rows) in enumerate(by_subject.items()):
        path = out if i == 0 else _subject_path(out, subject)
        take = frames_to_take(rows, source=f"{label} '{subject}'")
        write_llf_csv(path, take, timecode_fps=DEFAULT_TIMECODE_FPS,
                      start_time=_time_of_day(rows[0].wall))
        written.append((subject, str(path), len(rows)))
    return written


def record(protocol: str, port: Optional[int], seconds: float, out_csv,
           host: str = "127.0.0.1", handshake_to: Optional[tuple] = None,
           on_ready: Optional[Callable[[LiveReceiver], None]] = None,
           stop: Optional[threading.Event] = None) -> RecordResult:
    """Listen ``seconds`` from the start (or until ``stop`` is set) and write the CSV(s).

    ``on_ready(receiver)`` runs once the socket is bound (tests start their sender there).
    Raises :class:`LiveError` if the port cannot be bound. Writes nothing when no frame
    arrived (``result.frames == 0``).
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    spec = get_protocol(protocol)
    stop = stop or threading.Event()
    receiver = LiveReceiver(spec.name, port, host=host, handshake_to=handshake_to)
    receiver.start_recording()
    receiver.start()
    t0 = time.monotonic()
    try:
        if on_ready is not None:
            on_ready(receiver)
        stop.wait(seconds)
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the take early; what arrived is still written
    finally:
        receiver.stop()
    received = receiver.stop_recording()
    stats = receiver.stats()
    result = RecordResult(frames=len(received), malformed=stats.malformed,
                          seconds=time.monotonic() - t0)
    if received:
        result.files = write_recording(received, out_csv, label=spec.label)
    return result


def main(argv=None, prog: str = "python -m blender_addon.core.live.record") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Record a live face stream to a Live Link Face CSV take.")
    parser.add_argument("--protocol", required=True, choices=sorted(PROTOCOLS))
    parser.add_argument("--port", type=int, default=None,
                        help="UDP port (default: the protocol's: "
                             + ", ".join(f"{p.name} {p.default_port}" for p in PROTOCOLS.values())
                             + ")")
    parser.add_argument("--seconds", type=float, required=True, help="how long to listen")
    parser.add_argument("--out", required=True, help="CSV file to write")
    parser.add_argument("--host", default="0.0.0.0",
                        help="address to listen on (default: all interfaces, so a phone "
                             "on the network reaches it)")
    parser.add_argument("--phone", default=None,
                        help="iFacialMocap only: the phone's IP, to send it the handshake")
    args = parser.parse_args(argv)
    spec = PROTOCOLS[args.protocol]
    handshake_to = None
    if args.phone:
        if spec.handshake is None:
            parser.error(f"--phone is for iFacialMocap; {spec.label} needs no handshake")
        handshake_to = (args.phone, spec.default_port)
    try:
        result = record(args.protocol, args.port, args.seconds, args.out, host=args.host,
                        handshake_to=handshake_to)
    except (LiveError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    port = args.port if args.port is not None else spec.default_port
    if not result.frames:
        extra = f" ({result.malformed} malformed datagram(s) dropped)" if result.malformed else ""
        print(f"error: no {spec.label} frames arrived on port {port} in {args.seconds:g} s"
              f"{extra}; is the phone streaming to this computer?", file=sys.stderr)
        return 1
    for subject, path, n in result.files:
        print(f"recorded {n} frame(s) of {subject!r} to {os.fspath(path)}")
    if result.malformed:
        print(f"dropped {result.malformed} malformed datagram(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
