# SPDX-License-Identifier: GPL-3.0-or-later
"""Face Cap (Bannaflak, iOS) TXT takes: reader and writer.

Layout (as read by the Diffeomorphic and Faceit importers; no official spec is published):

* ``info,...`` lines: free-form, ignored;
* ``bs,<name>,<name>,...``: the blend-shape names, ARKit rawValue style (``browDown_L``,
  ``jawOpen``, ...), in Face Cap's own order (brows first, not Apple's order);
* ``k,<t_ms>,<hx>,<hy>,<hz>,<hrx>,<hry>,<hrz>,<eLx>,<eLy>,<eRx>,<eRy>,<w_1>,...,<w_n>``: one
  key per tracked frame: time in milliseconds, head position, head Euler XYZ in degrees,
  left then right eye Euler XY in degrees, then one weight per ``bs`` name.

Head Euler X/Y/Z become the Take's (pitch, yaw, roll) and eye X/Y its (pitch, yaw), all in
radians; signs are Face Cap's own. Head position is kept in Face Cap's units. Times are made
relative to the first key. A file without a ``bs`` line is read with Face Cap's default order
(:data:`FACECAP_ORDER`) when each key has exactly 52 weights.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import numpy as np

from .. import arkit
from .errors import TakeError, describe_source, read_text
from .table import fill_gaps, parse_rows
from .take import Take

KIND = "Face Cap TXT"

# Face Cap's channel order (its OSC indices and the three.js facecap.glb morph order).
FACECAP_ORDER: tuple[str, ...] = (
    "browInnerUp", "browDown_L", "browDown_R", "browOuterUp_L", "browOuterUp_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L",
    "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R", "eyeBlink_L", "eyeBlink_R", "eyeSquint_L",
    "eyeSquint_R", "eyeWide_L", "eyeWide_R", "cheekPuff", "cheekSquint_L", "cheekSquint_R",
    "noseSneer_L", "noseSneer_R", "jawOpen", "jawForward", "jawLeft", "jawRight", "mouthFunnel",
    "mouthPucker", "mouthLeft", "mouthRight", "mouthRollUpper", "mouthRollLower",
    "mouthShrugUpper", "mouthShrugLower", "mouthClose", "mouthSmile_L", "mouthSmile_R",
    "mouthFrown_L", "mouthFrown_R", "mouthDimple_L", "mouthDimple_R", "mouthUpperUp_L",
    "mouthUpperUp_R", "mouthLowerDown_L", "mouthLowerDown_R", "mouthPress_L", "mouthPress_R",
    "mouthStretch_L", "mouthStretch_R", "tongueOut",
)

_POSE_COLUMNS = ("time_ms", "head_x", "head_y", "head_z", "head_rot_x", "head_rot_y",
                 "head_rot_z", "left_eye_x", "left_eye_y", "right_eye_x", "right_eye_y")
_N_POSE = len(_POSE_COLUMNS)


def read_facecap_txt(path: Union[str, os.PathLike]) -> Take:
    """Read a Face Cap TXT export into a Take."""
    where = describe_source(KIND, path)
    text = read_text(path, where)
    return parse_facecap_txt(text, where=where)


def parse_facecap_txt(text: str, where: str = KIND) -> Take:
    """Parse the text of a Face Cap TXT export (see the module doc for the layout)."""
    if not text.strip():
        raise TakeError(f"{where}: the file is empty")
    bs_names: Optional[list] = None
    keys, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        tag, _, rest = line.strip().partition(",")
        tag = tag.strip().lower()
        if tag == "k":
            keys.append(rest)
            numbers.append(number)
        elif tag == "bs" and bs_names is None:
            bs_names = [n.strip() for n in rest.split(",")]
            while bs_names and not bs_names[-1]:
                bs_names.pop()
        # "info" and anything else: not animation.
    if not keys:
        raise TakeError(f"{where}: no keyframe lines ('k,...'); is this a Face Cap TXT export?")
    warnings: list[str] = []
    if bs_names is None:
        bs_names = list(FACECAP_ORDER)
        warnings.append("no 'bs' line with blend-shape names; assumed Face Cap's default order")
    line_numbers = np.array(numbers)
    values = parse_rows(keys, line_numbers, list(_POSE_COLUMNS) + bs_names, where)

    # Name the weight columns; unknown names are dropped, duplicates keep the first.
    shape_cols: dict[str, int] = {}
    ignored = []
    for c, name in enumerate(bs_names):
        arkit_name = arkit.normalize_name(name)
        if arkit_name and arkit_name not in shape_cols:
            shape_cols[arkit_name] = _N_POSE + c
        else:
            ignored.append(name)
    if not shape_cols:
        raise TakeError(f"{where}: no known blend-shape names on the 'bs' line")
    if ignored:
        warnings.append(f"ignored {len(ignored)} unknown blend shape(s): {', '.join(ignored[:5])}")

    time_ms = values[:, 0]
    if np.isnan(time_ms).any():
        i = int(np.argmax(np.isnan(time_ms)))
        raise TakeError(f"{where}: line {numbers[i]}: the key has no time", line=numbers[i])
    step = np.diff(time_ms)
    if (step < 0).any():
        i = int(np.argmax(step < 0)) + 1
        raise TakeError(f"{where}: line {numbers[i]}: time goes back "
                        f"({time_ms[i]:g} ms after {time_ms[i - 1]:g} ms)", line=numbers[i])
    keep = np.concatenate(([True], step > 0))
    if not keep.all():
        warnings.append(f"dropped {int((~keep).sum())} key(s) repeating the previous time")
        values, line_numbers = values[keep], line_numbers[keep]
    times = (values[:, 0] - values[0, 0]) / 1000.0

    names = list(shape_cols)
    weights = values[:, [shape_cols[n] for n in names]]
    report = fill_gaps(weights, times, [bs_names[shape_cols[n] - _N_POSE] for n in names],
                       line_numbers, where)
    if report.filled:
        warnings.append(f"filled {report.filled} empty blend-shape value(s) from neighbours")
    # Face Cap writes 0-1; a file holding 0-100 (percent, as iFacialMocap streams) would
    # otherwise clip to a face stuck at full strength.
    # A percentage file is above 1 on most frames (blinks, a resting jaw); a few values above
    # 1 among 0-1 frames are tracking glitches, which are clipped, not a reason to divide
    # the whole take by 100.
    peak = float(weights.max())
    over = (weights > 1.01).any(axis=1)
    if 1.5 < peak <= 100.0 and weights.min() >= 0.0 and over.mean() >= 0.5:
        weights = weights / 100.0
        warnings.append(f"blend-shape values look like percentages (max {peak:g}); divided by 100")
    elif over.any():
        first = int(line_numbers[int(np.argmax(over))])
        warnings.append(f"clipped blend-shape values above 1 (max {peak:g}) on {int(over.sum())} frame(s), "
                        f"first on line {first}")

    def pose(columns: Sequence[int], label: str, degrees: bool) -> Optional[np.ndarray]:
        block = values[:, list(columns)]
        gaps = fill_gaps(block, times, [_POSE_COLUMNS[c] for c in columns], line_numbers,
                         where, allow_empty=True)
        if gaps.empty_columns:
            warnings.append(f"{label} columns are empty; {label} not imported")
            return None
        return np.radians(block) if degrees else block

    return Take(times=times, names=names, weights=weights,
                head_rotation=pose((4, 5, 6), "head rotation", True),
                eye_rotation_left=pose((7, 8), "left eye rotation", True),
                eye_rotation_right=pose((9, 10), "right eye rotation", True),
                head_position=pose((1, 2, 3), "head position", False),
                source=where, warnings=warnings)


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------

def format_facecap_txt(take: Take, names: Sequence[str] = FACECAP_ORDER) -> str:
    """A take as Face Cap TXT text: a ``bs`` line with ``names`` (any spelling of the ARKit
    channels), then one ``k`` line per sample. Missing channels and poses are written as 0."""
    arkit_idx = []
    for name in names:
        a = arkit.normalize_name(name)
        if a is None:
            raise ValueError(f"not an ARKit blend-shape name: {name!r}")
        arkit_idx.append(arkit.ARKIT_INDEX[a])
    t = take.n_frames
    table = np.zeros((t, _N_POSE + len(names)))
    table[:, 0] = np.round((take.times - take.times[0]) * 1000.0, 3)
    if take.head_position is not None:
        table[:, 1:4] = take.head_position
    if take.head_rotation is not None:
        table[:, 4:7] = np.degrees(take.head_rotation)
    for offset, eye in ((7, take.eye_rotation_left), (9, take.eye_rotation_right)):
        if eye is not None:
            table[:, offset:offset + 2] = np.degrees(eye[:, :2])
    table[:, _N_POSE:] = take.to_arkit52()[:, arkit_idx]
    row_format = ",".join(["%.3f"] + ["%.6f"] * (table.shape[1] - 1))
    lines = ["bs," + ",".join(names)]
    lines += [f"k,{row_format % tuple(row)}" for row in table.tolist()]
    return "\n".join(lines) + "\n"


def write_facecap_txt(path: Union[str, os.PathLike], take: Take,
                      names: Sequence[str] = FACECAP_ORDER) -> None:
    """Write a take as a Face Cap TXT file (see :func:`format_facecap_txt`)."""
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write(format_facecap_txt(take, names))
