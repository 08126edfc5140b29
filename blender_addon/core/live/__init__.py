# SPDX-License-Identifier: GPL-3.0-or-later
"""Live capture: phone apps stream ARKit weights over UDP; the core decodes and receives them.

Three wire formats, each a codec module with a decoder and its inverse (the encoder, used by
tests and by test senders): Live Link Face (:mod:`.livelinkface`), Face Cap OSC
(:mod:`.facecap_osc`, on the generic :mod:`.osc` codec) and iFacialMocap
(:mod:`.ifacialmocap`). Every decoder yields :class:`LiveFrame` objects (:mod:`.frame`);
:mod:`.protocols` names the three; :mod:`.receiver` runs a socket on a worker thread and
keeps the latest frame per subject; :mod:`.record` is the headless recorder.

Nothing here imports bpy: the Blender side polls :class:`LiveReceiver` from a timer.
"""

from .errors import DatagramError, LiveError
from .frame import LiveFrame
from .protocols import PROTOCOLS, Protocol, get_protocol
from .receiver import LiveReceiver, LiveStats, ReceivedFrame

__all__ = ["DatagramError", "LiveError", "LiveFrame", "PROTOCOLS", "Protocol", "get_protocol",
           "LiveReceiver", "LiveStats", "ReceivedFrame"]
