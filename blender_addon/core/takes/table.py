# SPDX-License-Identifier: GPL-3.0-or-later
"""Numeric tables in text take files: fast parsing with line-numbered errors, and gap repair.

Mocap CSVs run to hundreds of thousands of rows x 60 columns, so values are parsed by
numpy's C reader in one call. Only when that fails do we walk the rows in Python, and then
only to say *which* line and column is wrong, because that is what the artist needs to fix
or report the file.

Gap policy (shared by all readers, so every source behaves the same):

* an empty or ``nan`` cell in a run of at most ``max_gap`` consecutive rows of one column is
  filled by linear interpolation in time between its neighbours (held at the take's ends):
  a dropped value in a tracked performance is noise, and the neighbours are the best guess;
* a longer run is an error, because inventing more than a fraction of a second of motion
  would silently put animation on the character that the performer never did;
* a column with no value at all is an error for blend shapes; readers treat rotation
  columns that are entirely empty as absent instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .errors import TakeError

MAX_GAP_ROWS = 10  # 1/6 s at 60 Hz, 1/3 s at 30 Hz

_NUMBER = re.compile(r"^\s*[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?\s*$|^\s*[-+]?(?:nan|inf)\s*$",
                     re.IGNORECASE)


def _fill_empty_cells(lines: Sequence[str]) -> list:
    """Write ``nan`` into empty cells with str.replace (C speed; a regex is ~50x slower)."""
    text = "\n" + "\n".join(lines) + "\n"
    text = text.replace(",,", ",nan,").replace(",,", ",nan,")  # twice: runs of empties
    text = text.replace("\n,", "\nnan,").replace(",\n", ",nan\n")
    return text[1:-1].split("\n")


def _cell(text: str) -> float:
    text = text.strip().strip('"')
    return float(text) if text else float("nan")


def parse_rows(lines: Sequence[str], line_numbers: Sequence[int], columns: Sequence[str],
               where: str) -> np.ndarray:
    """Parse comma-separated numeric ``lines`` into a (rows, len(columns)) float64 array.

    ``line_numbers`` are the 1-based file lines of ``lines`` and ``columns`` the column names,
    used only in messages. Empty cells become NaN (see :func:`fill_gaps`). Raises TakeError
    naming the first bad line: wrong number of fields or a cell that is not a number.
    """
    n = len(columns)
    if not lines:
        return np.zeros((0, n))
    for attempt in (lines, None):
        try:
            if attempt is None:
                attempt = _fill_empty_cells(lines)
            values = np.loadtxt(attempt, delimiter=",", dtype=np.float64, ndmin=2,
                                comments=None, quotechar='"')
            # loadtxt skips blank lines: a row count that differs means misaligned rows.
            if values.shape == (len(lines), n):
                return values
            break
        except ValueError:
            continue
    return _parse_rows_slowly(lines, line_numbers, columns, where)


def _parse_rows_slowly(lines, line_numbers, columns, where) -> np.ndarray:
    """Row by row: either parses what the fast reader refused, or names the bad line."""
    n = len(columns)
    out = np.empty((len(lines), n))
    for r, (line, number) in enumerate(zip(lines, line_numbers)):
        fields = line.split(",")
        if len(fields) == n + 1 and not fields[-1].strip():
            fields.pop()  # a trailing comma some writers add
        if len(fields) != n:
            raise TakeError(f"{where}: line {number} has {len(fields)} values, expected {n}",
                            line=number)
        for c, text in enumerate(fields):
            if text.strip().strip('"') and not _NUMBER.match(text.strip().strip('"')):
                raise TakeError(f"{where}: line {number}, column '{columns[c]}': "
                                f"{text.strip()[:20]!r} is not a number", line=number)
        out[r] = [_cell(text) for text in fields]
    return out


@dataclass
class GapReport:
    """What :func:`fill_gaps` did: ``filled`` cells, and columns it had to give up on."""

    filled: int = 0
    empty_columns: list = field(default_factory=list)  # column indices with no value at all


def fill_gaps(values: np.ndarray, times: np.ndarray, columns: Sequence[str],
              line_numbers: Sequence[int], where: str, max_gap: int = MAX_GAP_ROWS,
              allow_empty: bool = False) -> GapReport:
    """Interpolate NaN runs of at most ``max_gap`` rows in place (policy in the module doc).

    Columns that are entirely NaN raise TakeError, or with ``allow_empty`` are left as they
    are and listed in the report. A longer run raises TakeError with its line span.
    """
    report = GapReport()
    bad = np.isnan(values)
    if not bad.any():
        return report
    for c in np.flatnonzero(bad.any(axis=0)):
        missing = bad[:, c]
        if missing.all():
            if not allow_empty:
                raise TakeError(f"{where}: column '{columns[c]}' has no values")
            report.empty_columns.append(int(c))
            continue
        edges = np.diff(np.concatenate(([0], missing.astype(np.int8), [0])))
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        longest = int(np.argmax(stops - starts))
        if stops[longest] - starts[longest] > max_gap:
            first, last = line_numbers[starts[longest]], line_numbers[stops[longest] - 1]
            raise TakeError(f"{where}: column '{columns[c]}' is empty on lines {first}-{last} "
                            f"({stops[longest] - starts[longest]} rows; at most {max_gap} "
                            f"missing rows in a row are filled in)", line=int(first))
        ok = ~missing
        values[missing, c] = np.interp(times[missing], times[ok], values[ok, c])
        report.filled += int(missing.sum())
    return report
