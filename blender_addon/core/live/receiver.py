# SPDX-License-Identifier: GPL-3.0-or-later
"""`LiveReceiver`: a UDP socket on a worker thread that keeps the latest frame per subject.

Why this shape: Blender's UI must never wait on the network, and a UI that falls behind
must show the newest pose, not work through a backlog. So the socket lives on a daemon
thread that decodes every datagram as it arrives; the UI side calls :meth:`poll` from a
timer and gets, per subject, only the newest frame it has not seen; frames replaced
before anyone polled are counted as *dropped*, never queued. Recording is separate and
lossless: while :meth:`start_recording` is on, every decoded frame is kept in arrival
order, however busy the consumer is (the kernel buffer is enlarged for bursts).

Bad traffic (malformed, truncated, oversized or foreign datagrams) is counted and dropped;
nothing a sender does can stop the thread. :meth:`stop` ends the thread, reads what is
still queued in the socket, then closes it. All public methods are thread-safe.
"""

from __future__ import annotations

import collections
import errno
import socket
import threading
import time
from dataclasses import dataclass
from typing import Optional

from .errors import DatagramError, LiveError
from .frame import LiveFrame
from .protocols import get_protocol

_RECV_BYTES = 65536           # above UDP's largest payload, so nothing is cut silently
_RCVBUF = 4 << 20             # kernel buffer: ~3 s of any format at 60 Hz while busy
_IDLE_TICK = 0.05             # how often an idle worker checks for stop / handshake
_HANDSHAKE_EVERY = 2.0        # resend the handshake while no frame came for this long
_FPS_WINDOW = 1.0             # seconds of arrivals the frame rate is measured over
MAX_SUBJECTS = 64             # more distinct names than this is not a stage, it is noise


@dataclass(frozen=True)
class ReceivedFrame:
    """A decoded frame with when and from where it arrived."""

    frame: LiveFrame
    arrival: float     # time.monotonic() seconds
    wall: float        # time.time() seconds, for time-of-day timecodes
    sender: tuple      # (host, port)

    @property
    def subject(self) -> str:
        return self.frame.subject


@dataclass(frozen=True)
class LiveStats:
    """What the status line shows."""

    frames: int            # frames decoded
    dropped: int           # frames replaced before the consumer polled them
    malformed: int         # datagrams counted and dropped as not a frame
    fps: float             # frames per second over the last second
    last_timecode: str     # sender timecode of the newest frame ("" if the format has none)
    subjects: tuple        # subject names seen, in order of first arrival
    recorded: int          # frames in the current recording
    running: bool
    last_error: str        # the latest malformed-datagram reason, for diagnosis


class LiveReceiver:
    """Receive one protocol on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(self, protocol: str, port: Optional[int] = None, host: str = "127.0.0.1",
                 handshake_to: Optional[tuple] = None):
        self.protocol = get_protocol(protocol)
        self.host = host
        self._requested_port = self.protocol.default_port if port is None else int(port)
        self._handshake_to = handshake_to
        self._decoder = self.protocol.new_decoder()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None
        self._sock: Optional[socket.socket] = None
        self._port = 0
        self._latest: dict = {}          # subject -> ReceivedFrame
        self._fresh: set = set()          # subjects whose latest frame was not polled yet
        self._polled = False              # drops only count once someone consumes
        self._frames = 0
        self._dropped = 0
        self._malformed = 0
        self._last_error = ""
        self._arrivals: collections.deque = collections.deque(maxlen=1024)
        self._recording: Optional[list] = None
        self._last_frame_at = -float("inf")
        self._last_handshake = -float("inf")

    # ---------------------------------------------------------------------- life cycle
    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`), else the requested one."""
        return self._port or self._requested_port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> "LiveReceiver":
        """Bind and start the worker; :class:`LiveError` with one line if it cannot."""
        if self._thread is not None:
            raise LiveError("the live receiver is already running")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):  # Windows: refuse a shared port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            except OSError:
                pass  # the system's maximum applies; not worth failing over
            sock.bind((self.host, self._requested_port))
        except OSError as err:
            sock.close()
            where = f"{self.host}:{self._requested_port}"
            if err.errno == errno.EADDRINUSE or getattr(err, "winerror", None) == 10048:
                raise LiveError(f"{self.protocol.label}: port {self._requested_port} is already "
                                f"in use on {self.host} (another receiver or app); stop it or "
                                f"choose another port") from None
            raise LiveError(f"{self.protocol.label}: cannot listen on {where} "
                            f"({err.strerror or err})") from None
        sock.settimeout(_IDLE_TICK)
        self._sock = sock
        self._port = sock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"facsimile-live-{self._port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the worker (after it read what is queued) and close the socket. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "LiveReceiver":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------------- consumer side
    def poll(self) -> dict:
        """{subject: ReceivedFrame} of subjects with a frame newer than the last poll."""
        with self._lock:
            self._polled = True
            out = {s: self._latest[s] for s in self._fresh}
            self._fresh.clear()
            return out

    def latest(self, subject: Optional[str] = None) -> Optional[ReceivedFrame]:
        """The newest frame of ``subject`` (of any subject if None); does not consume."""
        with self._lock:
            if subject is not None:
                return self._latest.get(subject)
            if not self._latest:
                return None
            return max(self._latest.values(), key=lambda r: r.arrival)

    def start_recording(self) -> None:
        """Keep every frame from now on, in arrival order (a new recording each call)."""
        with self._lock:
            self._recording = []

    def stop_recording(self) -> list:
        """End the recording: its frames ([ReceivedFrame], arrival order); [] if none ran."""
        with self._lock:
            frames, self._recording = self._recording or [], None
            return frames

    @property
    def recording(self) -> bool:
        with self._lock:
            return self._recording is not None

    def stats(self) -> LiveStats:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._arrivals if t > now - _FPS_WINDOW]
            fps = 0.0
            if len(recent) >= 2 and recent[-1] > recent[0]:
                fps = (len(recent) - 1) / (recent[-1] - recent[0])
            newest = max(self._latest.values(), key=lambda r: r.arrival, default=None)
            return LiveStats(
                frames=self._frames, dropped=self._dropped, malformed=self._malformed,
                fps=fps, last_timecode=newest.frame.timecode if newest else "",
                subjects=tuple(self._latest), running=self.running,
                recorded=len(self._recording) if self._recording is not None else 0,
                last_error=self._last_error)

    # ---------------------------------------------------------------------- worker
    def _run(self) -> None:
        sock = self._sock
        while not self._stop.is_set():
            self._maybe_handshake(sock)
            try:
                data, sender = sock.recvfrom(_RECV_BYTES)
            except socket.timeout:
                continue
            except OSError as err:  # e.g. ICMP port unreachable after a handshake (Windows)
                self._count_bad(f"socket error: {err}")
                continue
            self._handle(data, sender)
        # Drain what already arrived, so Stop right after the last packet loses nothing.
        sock.setblocking(False)
        while True:
            try:
                data, sender = sock.recvfrom(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            self._handle(data, sender)

    def _maybe_handshake(self, sock) -> None:
        if self._handshake_to is None or self.protocol.handshake is None:
            return
        now = time.monotonic()
        if now - self._last_frame_at < _HANDSHAKE_EVERY or \
                now - self._last_handshake < _HANDSHAKE_EVERY:
            return
        self._last_handshake = now
        try:
            sock.sendto(self.protocol.handshake, tuple(self._handshake_to))
        except OSError as err:
            with self._lock:
                self._last_error = f"handshake to {self._handshake_to[0]} failed: {err}"

    def _count_bad(self, reason: str) -> None:
        with self._lock:
            self._malformed += 1
            self._last_error = reason

    def _handle(self, data: bytes, sender: tuple) -> None:
        if len(data) > self.protocol.max_datagram:
            self._count_bad(f"{len(data)}-byte datagram is oversized for "
                            f"{self.protocol.label}")
            return
        try:
            frames = self._decoder.feed(data, sender)
        except DatagramError as err:
            self._count_bad(str(err))
            return
        except Exception as err:  # a decoder bug must not kill the stream either
            self._count_bad(f"{type(err).__name__}: {err}")
            return
        if not frames:
            return
        arrival, wall = time.monotonic(), time.time()
        with self._lock:
            self._last_frame_at = arrival
            for frame in frames:
                subject = frame.subject
                if subject not in self._latest and len(self._latest) >= MAX_SUBJECTS:
                    self._malformed += 1
                    self._last_error = f"more than {MAX_SUBJECTS} subjects; {subject!r} ignored"
                    continue
                received = ReceivedFrame(frame, arrival, wall, tuple(sender))
                if self._polled and subject in self._fresh:
                    self._dropped += 1
                self._latest[subject] = received
                self._fresh.add(subject)
                self._frames += 1
                self._arrivals.append(arrival)
                if self._recording is not None:
                    self._recording.append(received)
