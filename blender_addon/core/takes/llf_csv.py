# SPDX-License-Identifier: GPL-3.0-or-later
"""Live Link Face (Epic, iOS) CSV takes: reader and writer.

Layout (checked against a real take): a header ``Timecode,BlendShapeCount,EyeBlinkLeft,...``
then one row per tracked frame. Columns are found by *name*, never by position: the CSV
order is not the ARKit order (JawRight/JawLeft and MouthRight/MouthLeft are swapped), and
other tools write subsets or reorder. Any spelling :func:`arkit.normalize_name` accepts is a
blend-shape column; ``HeadYaw/HeadPitch/HeadRoll`` and ``Left|RightEyeYaw/Pitch/Roll`` are
rotations in radians; anything else is ignored with a warning.

Timecode ``HH:MM:SS:FF.sss`` is a time of day; FF is a frame number on the app's timecode
base (60 by default) and ``.sss`` a fraction of a frame, not milliseconds. So
``t = h*3600 + m*60 + s + FF.sss / base``, made relative to the first row. The base is not
stored in the file; see :func:`detect_timecode_fps`. A take that crosses midnight keeps
counting up. Rows with ``BlendShapeCount == 0`` (no face tracked) are skipped, as the app
itself does when it replays; empty cells follow the gap policy of :mod:`.table`.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np

from .. import arkit
from .errors import TakeError, describe_source, read_text
from .table import fill_gaps, parse_rows
from .take import Take

KIND = "Live Link Face CSV"

# The app's own column order (written back exactly like this): Apple's order in PascalCase,
# except that the app swaps JawRight/JawLeft and MouthRight/MouthLeft.
_APP_SWAPS = {"JawLeft": "JawRight", "JawRight": "JawLeft", "MouthLeft": "MouthRight",
              "MouthRight": "MouthLeft"}
_SHAPE_COLUMNS: tuple[str, ...] = tuple(
    _APP_SWAPS.get(pascal, pascal)
    for pascal in (arkit.to_style(n, "PASCAL")[0] for n in arkit.ARKIT_52))
_ROTATION_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll", "LeftEyeYaw", "LeftEyePitch",
                     "LeftEyeRoll", "RightEyeYaw", "RightEyePitch", "RightEyeRoll")
HEADER: tuple[str, ...] = ("Timecode", "BlendShapeCount") + _SHAPE_COLUMNS + _ROTATION_COLUMNS

# Timecode bases in use; the detected base is snapped to one of these.
TIMECODE_RATES = (24, 25, 30, 48, 50, 60, 72, 96, 100, 120)
DEFAULT_TIMECODE_FPS = 60  # Live Link Face's default


def _key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


# --------------------------------------------------------------------------------------------
# Timecode
# --------------------------------------------------------------------------------------------

def _parse_timecodes(codes: Sequence[str], line_numbers: Sequence[int], where: str) -> np.ndarray:
    """(rows, 4) float array of hours, minutes, seconds, frames (frames keep the fraction).

    ``;`` before the frames (drop-frame notation) is accepted like ``:``.
    """
    def bad(i: int, why: str) -> TakeError:
        return TakeError(f"{where}: line {line_numbers[i]}: bad timecode {codes[i].strip()[:24]!r} "
                         f"({why}; expected HH:MM:SS:FF.sss)", line=line_numbers[i])

    text = "\n".join(codes).replace(";", ",").replace(":", ",").replace('"', "")
    try:
        parts = np.loadtxt(text.split("\n"), delimiter=",", ndmin=2, comments=None)
        ok = parts.shape == (len(codes), 4)  # (loadtxt skips blank lines)
    except ValueError:
        ok = False
    if not ok:  # find the offending line for the message
        for i, code in enumerate(codes):
            fields = code.strip().strip('"').replace(";", ":").split(":")
            if len(fields) != 4:
                raise bad(i, f"{len(fields)} fields")
            try:
                [float(f) for f in fields]
            except ValueError:
                raise bad(i, "not a number") from None
        raise TakeError(f"{where}: unreadable timecodes")
    h, m, s, f = parts.T
    whole = np.stack([h, m, s], axis=1)
    invalid = ((whole != np.round(whole)).any(axis=1) | (parts < 0).any(axis=1)
               | (m >= 60) | (s >= 60) | ~np.isfinite(parts).all(axis=1))
    if invalid.any():
        raise bad(int(np.argmax(invalid)), "out of range")
    return parts


def detect_timecode_fps(whole_seconds: np.ndarray, frames: np.ndarray) -> int:
    """Guess the timecode base from the FF values (not stored in the file).

    Where the seconds field ticks over, FF wraps: ``... 57, 59`` then ``01``. With the usual
    step between rows (2 frames here), the base is ``step + FF_before - FF_after`` = 60. That
    holds for any uniform row rate, so it is taken as the median over all wraps and snapped
    to a standard base above the largest FF seen. A take that never crosses a second cannot
    show its base; then the smallest standard base above the largest FF is used, but at
    least 60, the app's default. NTSC drop-frame (29.97) reads as 30: 0.1 % slow, harmless.
    """
    max_frame = int(np.floor(frames.max())) if frames.size else 0
    allowed = [r for r in TIMECODE_RATES if r > max_frame] or [max_frame + 1]
    d_sec, d_frame = np.diff(whole_seconds), np.diff(frames)
    within = (d_sec == 0) & (d_frame > 0)
    wraps = d_sec == 1
    if within.any() and wraps.any():
        step = float(np.median(d_frame[within]))
        estimate = float(np.median(step + frames[:-1][wraps] - frames[1:][wraps]))
        return int(min(allowed, key=lambda r: abs(r - estimate)))
    return int(next((r for r in allowed if r >= DEFAULT_TIMECODE_FPS), allowed[0]))


def _split_timecodes(lines: Sequence[str], tc_col: int):
    """(timecodes, rest of each row): the rest is numbers only and parses in one C call."""
    if tc_col == 0:  # the app's layout: one C-level partition per row
        split = [line.partition(",") for line in lines]
        return [s[0] for s in split], [s[2] for s in split]
    codes, rests = [], []
    for line in lines:
        fields = line.split(",")
        codes.append(fields.pop(tc_col) if len(fields) > tc_col else "")
        rests.append(",".join(fields))
    return codes, rests


class _ColumnRoles:
    """Which value column is which: blend shapes (by any spelling), rotations, the count."""

    def __init__(self, columns: Sequence[str]):
        self.shapes: dict[str, int] = {}      # ARKit name -> column
        self.rotations: dict[str, int] = {}   # "HeadYaw" ... -> column
        self.count: Optional[int] = None      # BlendShapeCount column
        self.ignored: list[str] = []
        self.duplicates: list[tuple[str, str]] = []   # (first column, later column) of one channel
        rotation_keys = {_key(r): r for r in _ROTATION_COLUMNS}
        for c, name in enumerate(columns):
            key = _key(name)
            arkit_name = arkit.normalize_name(name)
            if key == "blendshapecount" and self.count is None:
                self.count = c
            elif key in rotation_keys:
                self.rotations.setdefault(rotation_keys[key], c)
            elif arkit_name and arkit_name not in self.shapes:
                self.shapes[arkit_name] = c
            elif arkit_name:
                self.duplicates.append((columns[self.shapes[arkit_name]], name))
            else:
                self.ignored.append(name or "(unnamed)")


# --------------------------------------------------------------------------------------------
# Reader
# --------------------------------------------------------------------------------------------

def read_llf_csv(path: Union[str, os.PathLike], fps: Optional[float] = None) -> Take:
    """Read a Live Link Face CSV take. ``fps`` = the timecode base if known (else detected)."""
    where = describe_source(KIND, path)
    text = read_text(path, where)
    return parse_llf_csv(text, where=where, fps=fps)


def parse_llf_csv(text: str, where: str = KIND, fps: Optional[float] = None) -> Take:
    """Parse the text of a Live Link Face CSV (see :func:`read_llf_csv`)."""
    lines = text.splitlines()
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    if not numbered:
        raise TakeError(f"{where}: the file is empty")
    header_line, header = numbered[0]
    if "," not in header and header.count(";") >= 2:
        raise TakeError(f"{where}: values are separated by ';' (a spreadsheet saved with regional "
                        f"settings); save it as CSV with commas and import again", line=header_line)
    columns = [c.strip().strip('"').strip() for c in header.split(",")]
    while columns and not columns[-1]:
        columns.pop()
    keys = [_key(c) for c in columns]
    if "timecode" not in keys:
        raise TakeError(f"{where}: missing column 'Timecode' (is this a Live Link Face CSV?)",
                        line=header_line)
    tc_col = keys.index("timecode")
    rows = numbered[1:]
    if not rows:
        raise TakeError(f"{where}: no data rows below the header")
    line_numbers = np.array([n for n, _ in rows])

    codes, rests = _split_timecodes([line for _, line in rows], tc_col)
    value_columns = columns[:tc_col] + columns[tc_col + 1:]
    roles = _ColumnRoles(value_columns)
    if not roles.shapes:
        raise TakeError(f"{where}: no blend-shape columns (expected names like 'EyeBlinkLeft')",
                        line=header_line)
    if roles.duplicates:
        first, later = roles.duplicates[0]
        raise TakeError(f"{where}: columns '{first}' and '{later}' are the same blend shape; "
                        f"remove one of them and import again", line=header_line)
    warnings: list[str] = []
    if roles.ignored:
        warnings.append(f"ignored {len(roles.ignored)} unknown column(s): "
                        f"{', '.join(roles.ignored[:5])}")
    missing = [n for n in arkit.ARKIT_52 if n not in roles.shapes]
    if missing:
        warnings.append(f"{len(missing)} blend shape(s) not in the file, left at 0: "
                        f"{', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}")

    values = parse_rows(rests, line_numbers, value_columns, where)
    parts = _parse_timecodes(codes, line_numbers, where)

    # Rows without a tracked face carry zeros, not a pose: drop them.
    if roles.count is not None:
        count = values[:, roles.count]
        keep = ~(count == 0)
        if not keep.any():
            raise TakeError(f"{where}: no row has a tracked face (BlendShapeCount is 0 everywhere)")
        if not keep.all():
            warnings.append(f"skipped {int((~keep).sum())} row(s) without a tracked face")
            values, parts, line_numbers = values[keep], parts[keep], line_numbers[keep]

    times, keep = _times_from_timecodes(parts, line_numbers, fps, where, warnings)
    values, line_numbers = values[keep], line_numbers[keep]

    names = list(roles.shapes)
    shape_idx = [roles.shapes[n] for n in names]
    weights = values[:, shape_idx]
    shape_names = [value_columns[c] for c in shape_idx]
    report = fill_gaps(weights, times, shape_names, line_numbers, where)
    if report.filled:
        warnings.append(f"filled {report.filled} empty blend-shape value(s) from neighbours")
    if np.nanmin(weights) < -0.01 or np.nanmax(weights) > 1.01:
        warnings.append("blend-shape values outside 0-1 were clipped")

    def rotation(prefix: str) -> Optional[np.ndarray]:
        wanted = [prefix + axis for axis in ("Pitch", "Yaw", "Roll")]  # Take order
        if not all(w in roles.rotations for w in wanted):
            return None
        block = values[:, [roles.rotations[w] for w in wanted]]
        gaps = fill_gaps(block, times, wanted, line_numbers, where, allow_empty=True)
        if gaps.empty_columns:
            warnings.append(f"{prefix} rotation columns are empty; rotation not imported")
            return None
        return block

    return Take(times=times, names=names, weights=weights,
                head_rotation=rotation("Head"), eye_rotation_left=rotation("LeftEye"),
                eye_rotation_right=rotation("RightEye"), source=where, warnings=warnings)


def _times_from_timecodes(parts, line_numbers, fps, where, warnings):
    """Seconds from the first row, and the mask of rows kept (duplicate timecodes dropped)."""
    h, m, s, frames = parts.T
    whole = h * 3600 + m * 60 + s
    if fps is None:
        base = detect_timecode_fps(whole, frames)
    else:
        base = float(fps)
        if not base > 0:
            raise TakeError(f"{where}: timecode frame rate must be positive, got {fps}")
        over = frames >= base
        if over.any():
            i = int(np.argmax(over))
            raise TakeError(f"{where}: line {line_numbers[i]}: timecode frame {frames[i]:g} does "
                            f"not fit a {base:g} fps timecode", line=int(line_numbers[i]))
    seconds = whole + frames / base
    # Time of day: a take running past midnight restarts at 0; keep counting up instead.
    back = np.diff(seconds) < -43200.0
    if back.any():
        seconds = seconds + 86400.0 * np.concatenate(([0], np.cumsum(back)))
    step = np.diff(seconds)
    if (step < 0).any():
        i = int(np.argmax(step < 0)) + 1
        raise TakeError(f"{where}: line {line_numbers[i]}: timecode goes back in time "
                        f"(rows must be in recording order)", line=int(line_numbers[i]))
    keep = np.concatenate(([True], step > 0))
    if not keep.all():
        warnings.append(f"dropped {int((~keep).sum())} row(s) repeating the previous timecode")
    seconds = seconds[keep]
    return seconds - seconds[0], keep


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------

def _timecodes(times: np.ndarray, base: int, start: float) -> list:
    """``HH:MM:SS:FF.sss`` strings; quantised to 1/1000 frame, computed in integers so
    float error never prints a frame as ``59.999`` of the previous one."""
    q = np.round((start + times) * base * 1000.0).astype(np.int64)
    frames_total, frac = np.divmod(q, 1000)
    secs_total, ff = np.divmod(frames_total, base)
    hh, rest = np.divmod(secs_total, 3600)
    mm, ss = np.divmod(rest, 60)
    return [f"{a % 24:02d}:{b:02d}:{c:02d}:{d:02d}.{e:03d}" for a, b, c, d, e in
            zip(hh.tolist(), mm.tolist(), ss.tolist(), ff.tolist(), frac.tolist())]


def format_llf_csv(take: Take, timecode_fps: int = DEFAULT_TIMECODE_FPS,
                   start_time: float = 0.0) -> str:
    """A take as Live Link Face CSV text, in the app's exact column order.

    ``start_time`` = time of day of the first row in seconds. Channels the take lacks are
    written as 0 (rotations too), as the app does when head tracking is off.
    """
    if int(timecode_fps) != timecode_fps or timecode_fps <= 0:
        raise ValueError(f"timecode fps must be a positive whole number, got {timecode_fps}")
    base = int(timecode_fps)
    t = take.n_frames
    weights = take.to_arkit52()
    shape_order = [arkit.ARKIT_INDEX[arkit.normalize_name(c)] for c in _SHAPE_COLUMNS]
    table = np.zeros((t, 52 + 9))
    table[:, :52] = weights[:, shape_order]
    for offset, rot in ((52, take.head_rotation), (55, take.eye_rotation_left),
                        (58, take.eye_rotation_right)):
        if rot is not None:  # Take stores (pitch, yaw[, roll]); the CSV wants yaw, pitch, roll
            table[:, offset] = rot[:, 1]
            table[:, offset + 1] = rot[:, 0]
            if rot.shape[1] == 3:
                table[:, offset + 2] = rot[:, 2]
    row_format = ",".join(["%.10f"] * table.shape[1])
    codes = _timecodes(take.times - take.times[0], base, start_time)
    body = [f"{code},61,{row_format % tuple(row)}" for code, row in zip(codes, table.tolist())]
    return ",".join(HEADER) + "\n" + "\n".join(body) + "\n"


def write_llf_csv(path: Union[str, os.PathLike], take: Take,
                  timecode_fps: int = DEFAULT_TIMECODE_FPS, start_time: float = 0.0) -> None:
    """Write a take as a Live Link Face CSV file (see :func:`format_llf_csv`)."""
    text = format_llf_csv(take, timecode_fps, start_time)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(text)
