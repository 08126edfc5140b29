# SPDX-License-Identifier: GPL-3.0-or-later
"""The errors Facsimile raises for the artist, and the one way to say "cancelled".

Every error whose message is meant for the artist (bad input, a missing model, a mesh that
cannot be driven) derives from :class:`FacsimileError`, so an operator, a handler or the
command line catches that one class and shows ``str(err)`` as it is; anything else is a
bug and is reported as one. Each subclass also keeps the builtin it has always been
(``ValueError`` for bad input, ``RuntimeError`` for a failure to run), so code that
catches those still does.
"""


class FacsimileError(Exception):
    """A one-line message for the artist (the report bar, the CLI's stderr)."""


class TargetError(FacsimileError, ValueError):
    """A mesh cannot be driven."""


class Cancelled(Exception):
    """The artist cancelled a running job; nothing was written or produced."""
