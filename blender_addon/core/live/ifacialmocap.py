# SPDX-License-Identifier: GPL-3.0-or-later
"""iFacialMocap (iOS) UDP text frames: decoder, encoder and the handshake.

The app streams to port 49983 once a receiver has sent it the handshake datagram
:data:`HANDSHAKE` (to the phone's port 49983; the same string is used by VMagicMirror,
VRCFaceTracking's iFacialMocap module and others). Appending ``|sendDataVersion=v2``
asks for the v2 text, which separates name and value with ``&`` instead of ``-`` and adds
a few channels; both are read. One datagram is one frame::

    name-value|name-value|...|=head#rx,ry,rz,tx,ty,tz|rightEye#rx,ry,rz|leftEye#rx,ry,rz|

Names are ARKit rawValues with ``_L``/``_R`` (``eyeBlink_L``, ``jawOpen``), keys in any
order, values integers 0-100 (divided by 100 here). Rotations are degrees; x, y, z become
(pitch, yaw, roll) in radians, signs unchanged. Names this decoder does not know (v2's
``browInnerUp_L`` halves, for one) are skipped; channels a frame lacks are 0.
"""

from __future__ import annotations

import math

import numpy as np

from .. import arkit
from .errors import DatagramError
from .frame import LiveFrame

NAME = "ifacialmocap"
DEFAULT_PORT = 49983
MAX_DATAGRAM = 16384  # a frame is about 1.1 kB of text
HANDSHAKE = b"iFacialMocap_sahuasouryya9218sauhuiayeta91555dy3719"
HANDSHAKE_V2 = HANDSHAKE + b"|sendDataVersion=v2"

# iFacialMocap's name (ARKit rawValue, _L/_R) -> ARKit index, by name.
IFM_NAMES: tuple[str, ...] = tuple(arkit.to_style(n, "ARKIT_LR")[0] for n in arkit.ARKIT_52)
_INDEX = {name: i for i, name in enumerate(IFM_NAMES)}
_BONES = {"head": 6, "rightEye": 3, "leftEye": 3}


def is_handshake(data: bytes) -> bool:
    """Whether a datagram is a receiver's handshake (or its v2 / UDPTCP variants)."""
    return data.startswith(b"iFacialMocap_")


def _float(text: str, token: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatagramError(f"iFacialMocap: bad number in {token[:40]!r}") from None
    if not math.isfinite(value):
        raise DatagramError(f"iFacialMocap: infinite value in {token[:40]!r}")
    return value


def decode(data: bytes, subject: str = "") -> LiveFrame:
    """One datagram -> :class:`LiveFrame` (named ``subject``), or :class:`DatagramError`."""
    if len(data) > MAX_DATAGRAM:
        raise DatagramError(f"iFacialMocap datagram of {len(data)} bytes is oversized")
    if is_handshake(data):
        raise DatagramError("an iFacialMocap handshake, not a frame")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DatagramError("not an iFacialMocap text frame (not UTF-8)") from None
    if "|" not in text:
        raise DatagramError("not an iFacialMocap text frame (no '|')")
    weights = np.zeros(52, dtype=np.float32)
    bones: dict = {}
    found = 0
    for token in text.split("|"):
        token = token.strip()
        if not token:
            continue
        if "#" in token:
            name, _, rest = token.partition("#")
            name = name.lstrip("=")
            if name in _BONES:
                values = [_float(v, token) for v in rest.split(",")]
                if len(values) != _BONES[name]:
                    raise DatagramError(f"iFacialMocap {name} needs {_BONES[name]} values, "
                                        f"got {len(values)}")
                bones[name] = values
            continue
        # The name never contains '-' or '&', so the first one splits (a value may be -5).
        cut = min((i for i in (token.find("-"), token.find("&")) if i > 0), default=-1)
        if cut < 0:
            raise DatagramError(f"iFacialMocap: no value in {token[:40]!r}")
        index = _INDEX.get(token[:cut])
        if index is None:
            continue
        weights[index] = _float(token[cut + 1:], token) / 100.0
        found += 1
    if not found:
        raise DatagramError("iFacialMocap text without a known blend-shape name")

    def rotation(name: str):
        v = bones.get(name)
        return None if v is None else np.radians([v[0], v[1], v[2]])

    head = bones.get("head")
    return LiveFrame(weights=weights, subject=subject, protocol=NAME,
                     head_rotation=rotation("head"), eye_rotation_left=rotation("leftEye"),
                     eye_rotation_right=rotation("rightEye"),
                     head_position=None if head is None else head[3:6])


def encode(frame: LiveFrame, separator: str = "-") -> bytes:
    """The text frame the app would send; weights rounded to whole percent."""
    if separator not in ("-", "&"):
        raise ValueError("separator must be '-' (v1) or '&' (v2)")
    percent = np.rint(np.asarray(frame.weights, dtype=np.float64) * 100.0).astype(int)
    parts = [f"{name}{separator}{p}" for name, p in zip(IFM_NAMES, percent.tolist())]

    def degrees(rot):
        return [repr(float(v)) for v in np.degrees(rot)]

    if frame.head_rotation is not None:
        pos = frame.head_position if frame.head_position is not None else np.zeros(3)
        parts.append("=head#" + ",".join(degrees(frame.head_rotation)
                                          + [repr(float(v)) for v in pos]))
    for name, rot in (("rightEye", frame.eye_rotation_right), ("leftEye", frame.eye_rotation_left)):
        if rot is not None:
            parts.append(f"{name}#" + ",".join(degrees(rot)))
    return ("|".join(parts) + "|").encode("utf-8")
