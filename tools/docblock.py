# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmarks write their tables into the docs between markers, leaving the rest alone."""

from __future__ import annotations

from pathlib import Path


def write_block(doc: Path, key: str, lines: list[str], heading: str = "") -> None:
    """Replace the ``<!-- bench:KEY:begin/end -->`` block of ``doc`` (append it if absent)."""
    begin, end = f"<!-- bench:{key}:begin -->", f"<!-- bench:{key}:end -->"
    block = "\n".join([begin, *lines, end])
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    if begin in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + (f"{heading}\n\n" if heading else "") + block + "\n"
    doc.write_text(text)
    print(f"[bench] wrote {doc}")
