# SPDX-License-Identifier: GPL-3.0-or-later
"""The two errors of live capture: a bad datagram, and a receiver that cannot run.

They differ in who handles them. A :class:`DatagramError` is routine on a stage network (a
truncated packet, another app's traffic on the port): the receiver counts it and drops the
datagram, it never reaches the artist as an exception. A :class:`LiveError` (port in use,
no such interface) stops the receiver from starting and is shown as-is in the report bar.
"""

from __future__ import annotations

from ..takes.errors import TakeError


class DatagramError(TakeError):
    """A datagram is not a frame of the expected format (malformed, truncated, oversized or
    foreign). A TakeError because a live stream is a take source like a file: callers that
    already catch bad-input errors catch this one too."""


class LiveError(RuntimeError):
    """The receiver cannot start or run; ``str(err)`` is one line for the artist."""

    def __init__(self, message: str):
        super().__init__(" ".join(message.split()))
