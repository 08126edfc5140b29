# SPDX-License-Identifier: GPL-3.0-or-later
"""Open Sound Control 1.0 packets: messages and bundles, parsed and built.

Only what a face-capture stream needs, but strictly: every string is NUL-terminated and
padded to 4 bytes, every bundle element has a size that fits, and anything else raises
:class:`DatagramError` so a receiver can count the datagram and drop it. Argument types
``i f s b h d t T F N I`` are read; ``i f s`` are written (what Face Cap sends).
"""

from __future__ import annotations

import struct
from typing import Iterable, NamedTuple

from .errors import DatagramError

BUNDLE_TAG = b"#bundle\x00"
IMMEDIATE = 1  # the OSC time tag meaning "now"
_MAX_DEPTH = 8  # nested bundles deeper than this are not a face stream


class Message(NamedTuple):
    address: str
    args: tuple


def _pad(n: int) -> int:
    return (n + 4) & ~3  # length of a NUL-terminated string padded to 4


def _read_string(data: bytes, pos: int, what: str) -> tuple[str, int]:
    end = data.find(b"\x00", pos)
    if end < 0:
        raise DatagramError(f"OSC {what} is not NUL-terminated")
    nxt = pos + _pad(end - pos)
    if nxt > len(data):
        raise DatagramError(f"OSC {what} padding runs past the datagram")
    try:
        return data[pos:end].decode("utf-8"), nxt
    except UnicodeDecodeError:
        raise DatagramError(f"OSC {what} is not UTF-8") from None


_FIXED = {"i": struct.Struct(">i"), "f": struct.Struct(">f"), "h": struct.Struct(">q"),
          "d": struct.Struct(">d"), "t": struct.Struct(">Q")}
_NO_DATA = {"T": True, "F": False, "N": None, "I": float("inf")}


def _parse_message(data: bytes) -> Message:
    address, pos = _read_string(data, 0, "address")
    if not address.startswith("/"):
        raise DatagramError(f"OSC address {address[:32]!r} does not start with '/'")
    if pos >= len(data):
        return Message(address, ())  # OSC 1.0 allows a missing type-tag string
    tags, pos = _read_string(data, pos, "type tags")
    if not tags.startswith(","):
        raise DatagramError("OSC type tags do not start with ','")
    args = []
    for tag in tags[1:]:
        if tag in _FIXED:
            fmt = _FIXED[tag]
            if pos + fmt.size > len(data):
                raise DatagramError(f"OSC message {address} truncated")
            args.append(fmt.unpack_from(data, pos)[0])
            pos += fmt.size
        elif tag == "s":
            value, pos = _read_string(data, pos, "string argument")
            args.append(value)
        elif tag == "b":
            if pos + 4 > len(data):
                raise DatagramError(f"OSC message {address} truncated")
            (n,) = struct.unpack_from(">i", data, pos)
            end = pos + 4 + n
            if n < 0 or end > len(data):
                raise DatagramError(f"OSC blob in {address} does not fit")
            args.append(bytes(data[pos + 4:end]))
            pos = pos + 4 + ((n + 3) & ~3)
        elif tag in _NO_DATA:
            args.append(_NO_DATA[tag])
        else:
            raise DatagramError(f"OSC type tag {tag!r} not supported")
    if pos != len(data):
        raise DatagramError(f"OSC message {address} has {len(data) - pos} bytes left over")
    return Message(address, tuple(args))


def _parse(data: bytes, depth: int, out: list) -> None:
    if depth > _MAX_DEPTH:
        raise DatagramError("OSC bundles nested too deep")
    if data.startswith(BUNDLE_TAG):
        if len(data) < 16:
            raise DatagramError("OSC bundle truncated before its time tag")
        pos = 16
        while pos < len(data):
            if pos + 4 > len(data):
                raise DatagramError("OSC bundle element size truncated")
            (n,) = struct.unpack_from(">i", data, pos)
            pos += 4
            if n <= 0 or n % 4 or pos + n > len(data):
                raise DatagramError(f"OSC bundle element of {n} bytes does not fit")
            _parse(data[pos:pos + n], depth + 1, out)
            pos += n
    elif data.startswith(b"/"):
        if len(data) % 4:
            raise DatagramError("OSC packet length is not a multiple of 4")
        out.append(_parse_message(data))
    else:
        raise DatagramError("not an OSC packet")


def parse(data: bytes) -> tuple[list, bool]:
    """(messages of the packet in order, nested bundles flattened; whether it was a bundle)."""
    messages: list = []
    _parse(bytes(data), 0, messages)
    return messages, bytes(data[:8]) == BUNDLE_TAG


def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return raw + b"\x00" * (_pad(len(raw)) - len(raw))


def message(address: str, *args) -> bytes:
    """An OSC message; Python ints become ``i``, floats ``f``, str ``s``."""
    tags, payload = [","], []
    for a in args:
        if isinstance(a, bool) or not isinstance(a, (int, float, str)):
            raise TypeError(f"OSC argument {a!r}: only int, float and str are written")
        if isinstance(a, int):
            tags.append("i")
            payload.append(_FIXED["i"].pack(a))
        elif isinstance(a, float):
            tags.append("f")
            payload.append(_FIXED["f"].pack(a))
        else:
            tags.append("s")
            payload.append(_string(a))
    return _string(address) + _string("".join(tags)) + b"".join(payload)


def bundle(elements: Iterable[bytes], timetag: int = IMMEDIATE) -> bytes:
    """An OSC bundle of already-built messages or bundles."""
    parts = [BUNDLE_TAG, struct.pack(">Q", timetag)]
    for e in elements:
        parts.append(struct.pack(">i", len(e)))
        parts.append(e)
    return b"".join(parts)
