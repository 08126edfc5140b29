# SPDX-License-Identifier: GPL-3.0-or-later
"""The one exception every take reader raises.

Its message is shown as-is in Blender's report bar, so it is a single line that names the
format, the file and what is wrong, in the artist's terms:
``Live Link Face CSV 'take.csv': missing column 'Timecode'``.
"""

from __future__ import annotations

import os
from typing import Optional, Union

from ..errors import FacsimileError


class TakeError(FacsimileError, ValueError):
    """A take cannot be read. ``str(err)`` is the one-line message for the artist.

    Subclasses ValueError so generic callers that catch bad-input errors still catch it.
    ``line`` is the 1-based line of the file where the problem is, when there is one.
    """

    def __init__(self, message: str, line: Optional[int] = None):
        super().__init__(" ".join(message.split()))  # one line, whatever the caller built
        self.line = line


def describe_source(kind: str, path: Union[str, os.PathLike, None]) -> str:
    """``"Live Link Face CSV 'take.csv'"``: the prefix every message of one reader starts with.

    Only the file name, not the full path: the report bar is narrow and the artist just
    picked the file.
    """
    if path is None:
        return kind
    return f"{kind} '{os.path.basename(os.fspath(path))}'"


def read_text(path: Union[str, os.PathLike], where: str) -> str:
    """A take file's text (UTF-8, BOM tolerated), or a :class:`TakeError` naming ``where``."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as err:
        raise TakeError(f"{where}: cannot open the file ({err.strerror})") from None
    # Windows tools (Excel's "Unicode text", PowerShell's Out-File) write UTF-16: read it,
    # by its byte-order mark or by the NUL bytes every ASCII character then carries.
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        encoding = "utf-16"
    elif len(raw) >= 4 and raw[1:4:2] == b"\0\0" and raw[0:4:2].count(b"\0") == 0:
        encoding = "utf-16-le"
    elif len(raw) >= 4 and raw[0:4:2] == b"\0\0" and raw[1:4:2].count(b"\0") == 0:
        encoding = "utf-16-be"
    else:
        encoding = "utf-8-sig"
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError:
        raise TakeError(f"{where}: not a text file (neither UTF-8 nor UTF-16); is it the right file?") from None
    if "\0" in text:
        raise TakeError(f"{where}: not a text file (it holds binary data); is it the right file?")
    return text
