# SPDX-License-Identifier: GPL-3.0-or-later
"""The three live formats by name: default port, a decoder factory and the encoder.

A decoder is an object with ``feed(data, sender) -> [LiveFrame]``: Live Link Face and
iFacialMocap give exactly one frame per datagram, Face Cap assembles frames across
datagrams per sender. ``sender`` is the (host, port) the datagram came from; formats that
carry no subject name (Face Cap, iFacialMocap) name the frame by the host, so several
phones stay apart. ``encode(frame) -> [bytes]`` is the inverse, for test senders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from . import facecap_osc, ifacialmocap, livelinkface
from .errors import LiveError
from .frame import LiveFrame


class _LiveLinkFaceDecoder:
    def feed(self, data: bytes, sender=("", 0)) -> list:
        return [livelinkface.decode(data)]


class _IFacialMocapDecoder:
    def feed(self, data: bytes, sender=("", 0)) -> list:
        return [ifacialmocap.decode(data, subject=str(sender[0]))]


@dataclass(frozen=True)
class Protocol:
    name: str                 # what --protocol and the UI enum use
    label: str                # what the artist reads
    default_port: int
    max_datagram: int         # larger datagrams are counted as malformed
    new_decoder: Callable[[], object]
    encode: Callable[[LiveFrame], list]
    handshake: Optional[bytes] = None  # sent to the phone before it streams, if any


PROTOCOLS: dict = {p.name: p for p in (
    Protocol(livelinkface.NAME, "Live Link Face", livelinkface.DEFAULT_PORT,
             livelinkface.MAX_DATAGRAM, _LiveLinkFaceDecoder,
             lambda frame: [livelinkface.encode(frame)]),
    Protocol(facecap_osc.NAME, "Face Cap (OSC)", facecap_osc.DEFAULT_PORT,
             facecap_osc.MAX_DATAGRAM, facecap_osc.FaceCapDecoder, facecap_osc.encode),
    Protocol(ifacialmocap.NAME, "iFacialMocap", ifacialmocap.DEFAULT_PORT,
             ifacialmocap.MAX_DATAGRAM, _IFacialMocapDecoder,
             lambda frame: [ifacialmocap.encode(frame)], handshake=ifacialmocap.HANDSHAKE),
)}


def get_protocol(name: str) -> Protocol:
    """The protocol called ``name``, or a one-line :class:`LiveError` listing the choices."""
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise LiveError(f"unknown live protocol {name!r}; expected one of "
                        f"{', '.join(PROTOCOLS)}") from None
