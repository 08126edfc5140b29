# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile take files (issue 15): every bad file is one clear TakeError, or it is repaired
and the take's warnings say what was repaired. Pure core, no Blender."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core import arkit
from blender_addon.core.takes import Take, TakeError, read_llf_csv
from blender_addon.core.takes import take as take_module
from blender_addon.core.takes.facecap_txt import format_facecap_txt, parse_facecap_txt
from blender_addon.core.takes.llf_csv import HEADER, format_llf_csv, parse_llf_csv


def _take(frames=60, fps=60.0, times=None, rotations=False) -> Take:
    t = np.arange(frames) / fps if times is None else np.asarray(times, float)
    w = 0.5 + 0.4 * np.sin(t[:, None] * np.arange(1, 53))
    head = np.stack([0.1 * np.sin(t), 0.05 * t, 0 * t], 1) if rotations else None
    return Take(times=t, names=list(arkit.ARKIT_52), weights=w, head_rotation=head)


def _one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text and len(text) < 400
    return text


# ------------------------------------------------------------------ case 1: time span and key count

@pytest.mark.parametrize("hours", [6, 24])
def test_a_last_row_hours_later_is_refused_naming_the_frame(hours):
    """Case 1: a CSV whose last row is hours after the rest ended in a 1-518,668 frame
    range and 31-126 M keyframes; now the reader refuses before anything is made."""
    times = np.r_[np.arange(335) / 60.0, hours * 3600.0]
    text = format_llf_csv(_take(times=np.r_[np.arange(335) / 60.0, 335 / 60.0]))
    rows = text.splitlines()
    good = parse_llf_csv(text)
    # Rewrite the last timecode by hand: hours later.
    h, m, rest = rows[-1].split(",", 1)[0].split(":", 2)
    rows[-1] = f"{(int(h) + hours) % 24:02d}:{m}:{rest}," + rows[-1].split(",", 1)[1]
    if hours == 24:     # same time of day, next day: the timecode alone cannot say; the Take can
        with pytest.raises(TakeError) as err:
            _take(times=times)
    else:
        with pytest.raises(TakeError) as err:
            parse_llf_csv("\n".join(rows), where="Live Link Face CSV 'x.csv'")
    msg = _one_line(err)
    assert "frame 335" in msg and "h after" in msg and "cut the stray rows" in msg
    assert good.n_frames == 336


def test_dropouts_of_a_few_seconds_are_not_gaps():
    """A face that looked away for 20 s leaves a gap the reader must keep (rows skipped)."""
    times = np.r_[np.arange(100) / 60.0, 20.0 + np.arange(100) / 60.0]
    assert _take(times=times).n_frames == 200


def test_duration_and_key_count_are_bounded():
    with pytest.raises(TakeError) as err:
        _take(times=np.arange(0, take_module.MAX_DURATION_S + 60, 30.0))
    assert "more than the 1.0 h" in _one_line(err)
    old = take_module.MAX_KEYS
    take_module.MAX_KEYS = 52 * 100
    try:
        with pytest.raises(TakeError) as err:
            _take(frames=101)
        assert "M keys" in _one_line(err) and "split the file" in _one_line(err)
    finally:
        take_module.MAX_KEYS = old


# ------------------------------------------------------------------ case 14: small file problems

def test_utf16_csv_is_read(tmp_path):
    text = format_llf_csv(_take(frames=30))
    for encoding, bom in (("utf-16", ""), ("utf-16-le", ""), ("utf-16-be", "")):
        path = tmp_path / f"{encoding}.csv"
        path.write_bytes((bom + text).encode(encoding))
        assert read_llf_csv(path).n_frames == 30


def test_binary_file_is_not_a_text_file(tmp_path):
    path = tmp_path / "x.csv"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(TakeError) as err:
        read_llf_csv(path)
    assert "not a text file" in _one_line(err)


def test_duplicate_column_is_named():
    text = format_llf_csv(_take(frames=10))
    rows = text.splitlines()
    rows = [rows[0] + ",EyeBlink_L"] + [r + ",0.5" for r in rows[1:]]
    with pytest.raises(TakeError) as err:
        parse_llf_csv("\n".join(rows), where="Live Link Face CSV 'x.csv'")
    msg = _one_line(err)
    assert "'EyeBlinkLeft' and 'EyeBlink_L' are the same blend shape" in msg and "remove one" in msg


def test_semicolon_csv_says_so():
    text = format_llf_csv(_take(frames=10)).replace(",", ";")
    with pytest.raises(TakeError) as err:
        parse_llf_csv(text, where="Live Link Face CSV 'x.csv'")
    assert "separated by ';'" in _one_line(err) and "commas" in _one_line(err)


@pytest.mark.parametrize("value", [1e30, -1e30, 100.0])
def test_absurd_head_rotation_is_refused(value):
    take = _take(frames=10, rotations=True)
    text = format_llf_csv(take)
    rows = text.splitlines()
    col = rows[0].split(",").index("HeadYaw")
    cells = rows[5].split(",")
    cells[col] = repr(value)
    rows[5] = ",".join(cells)
    with pytest.raises(TakeError) as err:
        parse_llf_csv("\n".join(rows), where="Live Link Face CSV 'x.csv'")
    assert "head rotation" in _one_line(err) and "not in radians" in _one_line(err)


def test_ordinary_rotations_still_pass():
    assert _take(frames=200, rotations=True).head_rotation is not None


# ------------------------------------------------------------------ case 10: Face Cap outlier

def test_facecap_one_outlier_is_clipped_not_a_percentage():
    take = _take(frames=120, fps=30.0)
    text = format_facecap_txt(take)
    lines = text.splitlines()
    k = [i for i, line in enumerate(lines) if line.startswith("k,")][40]
    cells = lines[k].split(",")
    cells[-1] = "1.6"
    lines[k] = ",".join(cells)
    back = parse_facecap_txt("\n".join(lines))
    # The other frames keep their values (not divided by 100) and the outlier is clipped.
    np.testing.assert_allclose(back.to_arkit52()[:40], take.to_arkit52()[:40], atol=2e-3)
    assert back.weights.max() <= 1.0
    assert any("clipped blend-shape values above 1 (max 1.6) on 1 frame" in w for w in back.warnings)


def test_facecap_percentages_still_divided():
    take = _take(frames=60, fps=30.0)
    text = format_facecap_txt(take)
    lines = []
    for line in text.splitlines():
        if line.startswith("k,"):
            cells = line.split(",")
            cells[8:] = [f"{float(c) * 100:.3f}" for c in cells[8:]]
            line = ",".join(cells)
        lines.append(line)
    back = parse_facecap_txt("\n".join(lines))
    assert any("percentages" in w for w in back.warnings)
    assert back.weights.max() <= 1.0 and back.weights.max() > 0.8
