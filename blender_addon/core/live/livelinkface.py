# SPDX-License-Identifier: GPL-3.0-or-later
"""Live Link Face (Epic Games, iOS) UDP datagrams: decoder and encoder.

One datagram per frame, sent to port 11111 by default. Layout, as Unreal's own listener
reads it (``FAppleARKitLiveLinkRemoteListener::Tick`` in AppleARKitLiveLinkSource.cpp,
network byte order via ``FNboSerializeFromBuffer``)::

    uint8    packet version, 6
    int32    device-id length n (big-endian), then n bytes: the device id (a UUID)
    int32    subject-name length m (big-endian), then m bytes: the UTF-8 subject name
    int32    frame number       \
    float32  sub-frame           |  FQualifiedFrameTime, big-endian
    int32    rate numerator      |
    int32    rate denominator   /
    uint8    value count, 61
    61 x float32 big-endian: EARFaceBlendShape order (see :data:`LLF_NAMES`)

The same bytes are often described (PyLiveLinkFace) as "uint32 little-endian version 6,
then a 37-byte device id ``$`` + UUID": with a 36-character UUID the length field is
``00 00 00 24`` and 0x24 is ``$``, so both readings agree byte for byte. This decoder reads
the length, so device ids of other lengths decode too.

The 61 values are the 52 ARKit weights in Unreal's enum order (which is *not* the CSV
column order: the app's CSV has JawRight before JawLeft) followed by head yaw, pitch, roll
and left then right eye yaw, pitch, roll. Weights are mapped to ARKit by *name* through
:data:`LLF_NAMES`, never by position.
"""

from __future__ import annotations

import struct
import uuid as _uuid
from typing import Optional

import numpy as np

from .. import arkit
from .errors import DatagramError
from .frame import LiveFrame

NAME = "livelinkface"
DEFAULT_PORT = 11111
PACKET_VERSION = 6
VALUE_COUNT = 61
MAX_DATAGRAM = 65507  # UDP's limit: subject names of any length fit below it

# Unreal's EARFaceBlendShape, in enum order (the order of the 61 floats on the wire).
LLF_NAMES: tuple[str, ...] = (
    "EyeBlinkLeft", "EyeLookDownLeft", "EyeLookInLeft", "EyeLookOutLeft", "EyeLookUpLeft",
    "EyeSquintLeft", "EyeWideLeft", "EyeBlinkRight", "EyeLookDownRight", "EyeLookInRight",
    "EyeLookOutRight", "EyeLookUpRight", "EyeSquintRight", "EyeWideRight",
    "JawForward", "JawLeft", "JawRight", "JawOpen",
    "MouthClose", "MouthFunnel", "MouthPucker", "MouthLeft", "MouthRight",
    "MouthSmileLeft", "MouthSmileRight", "MouthFrownLeft", "MouthFrownRight",
    "MouthDimpleLeft", "MouthDimpleRight", "MouthStretchLeft", "MouthStretchRight",
    "MouthRollLower", "MouthRollUpper", "MouthShrugLower", "MouthShrugUpper",
    "MouthPressLeft", "MouthPressRight", "MouthLowerDownLeft", "MouthLowerDownRight",
    "MouthUpperUpLeft", "MouthUpperUpRight",
    "BrowDownLeft", "BrowDownRight", "BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight",
    "CheekPuff", "CheekSquintLeft", "CheekSquintRight", "NoseSneerLeft", "NoseSneerRight",
    "TongueOut",
    "HeadYaw", "HeadPitch", "HeadRoll",
    "LeftEyeYaw", "LeftEyePitch", "LeftEyeRoll",
    "RightEyeYaw", "RightEyePitch", "RightEyeRoll",
)

# wire position i (of the first 52) -> ARKit index, by name.
_WIRE_TO_ARKIT = np.array([arkit.ARKIT_INDEX[arkit.normalize_name(n)] for n in LLF_NAMES[:52]])
assert sorted(_WIRE_TO_ARKIT.tolist()) == list(range(52)), "LLF_NAMES must cover ARKit-52"

_HEAD = struct.Struct(">B")
_LENGTH = struct.Struct(">i")
_TAIL = struct.Struct(">ifiiB")  # frame, sub-frame, numerator, denominator, count
_VALUES = np.dtype(">f4")
_NAMESPACE = _uuid.UUID("6f1c1c52-6a51-4c1e-9d55-4b0f7a6e7a61")  # for default device ids


def _string(data: bytes, pos: int, what: str) -> tuple[str, int]:
    if pos + 4 > len(data):
        raise DatagramError(f"Live Link Face datagram truncated before the {what}")
    (n,) = _LENGTH.unpack_from(data, pos)
    pos += 4
    if n < 0 or pos + n > len(data):
        raise DatagramError(f"Live Link Face datagram: {what} length {n} does not fit "
                            f"the {len(data)}-byte datagram")
    try:
        return data[pos:pos + n].decode("utf-8"), pos + n
    except UnicodeDecodeError:
        raise DatagramError(f"Live Link Face datagram: {what} is not UTF-8") from None


def decode(data: bytes) -> LiveFrame:
    """One datagram -> :class:`LiveFrame`, or :class:`DatagramError`."""
    if len(data) > MAX_DATAGRAM:
        raise DatagramError(f"Live Link Face datagram of {len(data)} bytes is oversized")
    if not data:
        raise DatagramError("empty datagram")
    (version,) = _HEAD.unpack_from(data, 0)
    if version != PACKET_VERSION:
        raise DatagramError(f"not a Live Link Face v{PACKET_VERSION} datagram "
                            f"(first byte {version})")
    device_id, pos = _string(data, 1, "device id")
    subject, pos = _string(data, pos, "subject name")
    end = pos + _TAIL.size + VALUE_COUNT * 4
    if len(data) < end:
        raise DatagramError(f"Live Link Face datagram truncated: {len(data)} of {end} bytes")
    frame_number, sub_frame, numerator, denominator, count = _TAIL.unpack_from(data, pos)
    if count != VALUE_COUNT:
        raise DatagramError(f"Live Link Face datagram has {count} values, expected "
                            f"{VALUE_COUNT}")
    if len(data) != end:
        raise DatagramError(f"Live Link Face datagram oversized: {len(data) - end} bytes "
                            f"after the last value")
    values = np.frombuffer(data, dtype=_VALUES, count=VALUE_COUNT, offset=pos + _TAIL.size)
    values = values.astype(np.float64)
    if not np.isfinite(values).all() or not np.isfinite(sub_frame):
        raise DatagramError("Live Link Face datagram carries a NaN or infinite value")
    weights = np.empty(52, dtype=np.float32)
    weights[_WIRE_TO_ARKIT] = values[:52]
    rot = values[52:]  # yaw, pitch, roll x (head, left eye, right eye)
    return LiveFrame(
        weights=weights, subject=subject, device_id=device_id, protocol=NAME,
        head_rotation=rot[[1, 0, 2]], eye_rotation_left=rot[[4, 3, 5]],
        eye_rotation_right=rot[[7, 6, 8]], frame_number=frame_number,
        sub_frame=float(sub_frame), frame_rate=(numerator, denominator))


def default_device_id(subject: str) -> str:
    """A stable UUID string for a subject (what a phone would send as its device id)."""
    return str(_uuid.uuid5(_NAMESPACE, subject)).upper()


def encode(frame: LiveFrame, device_id: Optional[str] = None) -> bytes:
    """The datagram the app would send for ``frame`` (missing rotations are sent as 0)."""
    device = (device_id if device_id is not None else frame.device_id) or \
        default_device_id(frame.subject)
    device_bytes = device.encode("utf-8")
    subject_bytes = frame.subject.encode("utf-8")
    values = np.zeros(VALUE_COUNT, dtype=np.float64)
    values[:52] = frame.weights[_WIRE_TO_ARKIT]
    for offset, rot in ((52, frame.head_rotation), (55, frame.eye_rotation_left),
                        (58, frame.eye_rotation_right)):
        if rot is not None:  # (pitch, yaw, roll) -> yaw, pitch, roll
            values[offset:offset + 3] = rot[[1, 0, 2]]
    numerator, denominator = frame.frame_rate or (60, 1)
    return b"".join((
        _HEAD.pack(PACKET_VERSION),
        _LENGTH.pack(len(device_bytes)), device_bytes,
        _LENGTH.pack(len(subject_bytes)), subject_bytes,
        _TAIL.pack(int(frame.frame_number or 0), float(frame.sub_frame), int(numerator),
                   int(denominator), VALUE_COUNT),
        values.astype(_VALUES).tobytes(),
    ))
