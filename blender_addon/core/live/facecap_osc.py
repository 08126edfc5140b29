# SPDX-License-Identifier: GPL-3.0-or-later
"""Face Cap (Bannaflak, iOS) live mode: OSC over UDP, decoder and encoder.

Addresses (bannaflak.com/face-cap/livemode.html): ``/W`` int32 index + float32 weight, the
index in Face Cap's own order (:data:`FACECAP_ORDER`, brows first, *not* Apple's order);
``/HR`` head rotation x, y, z in degrees; ``/HRQ`` the same as a quaternion x, y, z, w;
``/ELR`` and ``/ERR`` left and right eye rotation x, y in degrees; ``/HT`` head position
x, y, z. Like the Face Cap TXT reader, Euler x/y/z become (pitch, yaw, roll) in radians,
signs unchanged.

The protocol has no frame marker, so frames are assembled per sender: an OSC bundle is
one frame; loose messages make a frame once all 52 indices have arrived, or when an index
(or a pose address) repeats before that, which means a packet was lost: the partial frame
is emitted with the missing channels held at their last value rather than stalling. A pose
message that follows the 52 weights belongs to the next frame (one frame late, 16 ms).
The protocol carries no subject name; the receiver names a sender by its address.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import arkit
from ..takes.facecap_txt import FACECAP_ORDER
from . import osc
from .errors import DatagramError
from .frame import LiveFrame

NAME = "facecap"
DEFAULT_PORT = 8080   # Face Cap's Unity example receiver; the app's port is typed in
MAX_DATAGRAM = 16384  # a full frame as one bundle is about 1.3 kB

# Face Cap index -> ARKit index, by name.
_FC_TO_ARKIT = np.array([arkit.ARKIT_INDEX[arkit.normalize_name(n)] for n in FACECAP_ORDER])
assert sorted(_FC_TO_ARKIT.tolist()) == list(range(52)), "FACECAP_ORDER must cover ARKit-52"

_ARITY = {"/W": 2, "/HR": 3, "/HRQ": 4, "/ELR": 2, "/ERR": 2, "/HT": 3}
_POSE = ("/HR", "/HRQ", "/ELR", "/ERR", "/HT")


def _numbers(msg: osc.Message) -> list:
    want = _ARITY[msg.address]
    if len(msg.args) != want:
        raise DatagramError(f"Face Cap {msg.address} needs {want} values, got {len(msg.args)}")
    out = []
    for a in msg.args:
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a):
            raise DatagramError(f"Face Cap {msg.address} has a non-numeric or infinite value")
        out.append(a)
    if msg.address == "/W":
        index = out[0]
        if index != int(index) or not 0 <= index < 52:
            raise DatagramError(f"Face Cap /W index {index} is outside 0-51")
        out[0] = int(index)
    return out


def read_messages(data: bytes) -> tuple[list, bool]:
    """The Face Cap messages of one datagram, checked: ([(address, values)], is_bundle).

    Messages with other addresses are skipped; a datagram with none of Face Cap's is
    foreign and raises :class:`DatagramError`.
    """
    if len(data) > MAX_DATAGRAM:
        raise DatagramError(f"Face Cap datagram of {len(data)} bytes is oversized")
    messages, is_bundle = osc.parse(data)
    known = [(m.address, _numbers(m)) for m in messages if m.address in _ARITY]
    if not known:
        raise DatagramError("OSC datagram without Face Cap addresses")
    return known, is_bundle


class _Sender:
    """Frame assembly state of one sender (phone)."""

    def __init__(self):
        self.weights = np.zeros(52, dtype=np.float32)  # ARKit order, last known
        self.pose: dict = {}                            # address -> last values
        self.seen: set = set()                          # Face Cap indices this frame
        self.pose_seen: set = set()

    def pending(self) -> bool:
        return bool(self.seen or self.pose_seen)

    def apply(self, address: str, values: list) -> None:
        if address == "/W":
            self.weights[_FC_TO_ARKIT[values[0]]] = values[1]
            self.seen.add(values[0])
        else:
            self.pose[address] = values
            self.pose_seen.add(address)

    def emit(self, subject: str) -> LiveFrame:
        self.seen.clear()
        self.pose_seen.clear()
        return make_frame(self.weights.copy(), self.pose, subject)


def make_frame(weights: np.ndarray, pose: dict, subject: str = "") -> LiveFrame:
    """A LiveFrame from ARKit-ordered weights and the last /HR /HRQ /ELR /ERR /HT values."""
    def radians(address: str) -> Optional[np.ndarray]:
        v = pose.get(address)
        if v is None:
            return None
        r = np.radians(np.asarray(v, dtype=np.float64))
        return np.array([r[0], r[1], r[2] if r.size > 2 else 0.0])

    return LiveFrame(weights=weights, subject=subject, protocol=NAME,
                     head_rotation=radians("/HR"), eye_rotation_left=radians("/ELR"),
                     eye_rotation_right=radians("/ERR"), head_position=pose.get("/HT"),
                     head_quaternion=pose.get("/HRQ"))


class FaceCapDecoder:
    """Turns datagrams into frames, one assembly state per sender."""

    def __init__(self):
        self._senders: dict = {}

    def feed(self, data: bytes, sender=("", 0)) -> list:
        """Frames completed by this datagram (often none for a loose message).

        ``sender`` = (host, port); frames are named by the host. A malformed datagram
        raises :class:`DatagramError` and leaves the assembly state as it was.
        """
        known, is_bundle = read_messages(data)
        state = self._senders.get(tuple(sender))
        if state is None:
            state = self._senders[tuple(sender)] = _Sender()
        subject = str(sender[0])
        frames = []
        if is_bundle:
            if state.pending():  # loose messages before: they were a frame of their own
                frames.append(state.emit(subject))
            for address, values in known:
                state.apply(address, values)
            frames.append(state.emit(subject))
            return frames
        for address, values in known:
            repeat = (values[0] in state.seen) if address == "/W" else (address in state.pose_seen)
            if repeat:
                frames.append(state.emit(subject))
            state.apply(address, values)
            if len(state.seen) == 52:
                frames.append(state.emit(subject))
        return frames


def encode(frame: LiveFrame, bundle: bool = True) -> list:
    """Datagrams Face Cap would send for ``frame``: one bundle, or one message each.

    Pose messages come first, then the 52 weights in Face Cap's index order, so a receiver
    assembling loose messages closes the frame on the last weight.
    """
    msgs = []
    if frame.head_position is not None:
        msgs.append(osc.message("/HT", *map(float, frame.head_position)))
    if frame.head_rotation is not None:
        msgs.append(osc.message("/HR", *map(float, np.degrees(frame.head_rotation))))
    if frame.head_quaternion is not None:
        msgs.append(osc.message("/HRQ", *map(float, frame.head_quaternion)))
    for address, rot in (("/ELR", frame.eye_rotation_left), ("/ERR", frame.eye_rotation_right)):
        if rot is not None:
            msgs.append(osc.message(address, *map(float, np.degrees(rot[:2]))))
    for index in range(52):
        msgs.append(osc.message("/W", index, float(frame.weights[_FC_TO_ARKIT[index]])))
    return [osc.bundle(msgs)] if bundle else msgs
