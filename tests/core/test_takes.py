# SPDX-License-Identifier: GPL-3.0-or-later
"""Takes: the Take container, Live Link Face CSV and Face Cap TXT readers and writers."""

import time
from pathlib import Path

import numpy as np
import pytest
from conftest import data_dir

from blender_addon.core import arkit
from blender_addon.core.takes import (Take, TakeError, read_facecap_txt, read_llf_csv,
                                      write_facecap_txt, write_llf_csv)
from blender_addon.core.takes.facecap_txt import FACECAP_ORDER, format_facecap_txt, \
    parse_facecap_txt
from blender_addon.core.takes.llf_csv import HEADER, format_llf_csv, parse_llf_csv

DATA = data_dir()
FACECAP_NPZ = DATA / "facecap" / "facecap.npz"

# Verbatim from a real Live Link Face take (video.md §4.2).
REAL_HEADER = (
    "Timecode,BlendShapeCount,EyeBlinkLeft,EyeLookDownLeft,EyeLookInLeft,EyeLookOutLeft,"
    "EyeLookUpLeft,EyeSquintLeft,EyeWideLeft,EyeBlinkRight,EyeLookDownRight,EyeLookInRight,"
    "EyeLookOutRight,EyeLookUpRight,EyeSquintRight,EyeWideRight,JawForward,JawRight,JawLeft,"
    "JawOpen,MouthClose,MouthFunnel,MouthPucker,MouthRight,MouthLeft,MouthSmileLeft,"
    "MouthSmileRight,MouthFrownLeft,MouthFrownRight,MouthDimpleLeft,MouthDimpleRight,"
    "MouthStretchLeft,MouthStretchRight,MouthRollLower,MouthRollUpper,MouthShrugLower,"
    "MouthShrugUpper,MouthPressLeft,MouthPressRight,MouthLowerDownLeft,MouthLowerDownRight,"
    "MouthUpperUpLeft,MouthUpperUpRight,BrowDownLeft,BrowDownRight,BrowInnerUp,BrowOuterUpLeft,"
    "BrowOuterUpRight,CheekPuff,CheekSquintLeft,CheekSquintRight,NoseSneerLeft,NoseSneerRight,"
    "TongueOut,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw,LeftEyePitch,LeftEyeRoll,RightEyeYaw,"
    "RightEyePitch,RightEyeRoll")


def make_take(frames=90, fps=30.0, seed=0, rotations=True) -> Take:
    """A smooth procedural performance over all 52 channels."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames) / fps
    phase, speed = rng.random(52) * 6.28, 0.5 + 2 * rng.random(52)
    weights = 0.5 + 0.5 * np.sin(t[:, None] * speed + phase)
    head = np.stack([0.2 * np.sin(t), 0.3 * np.cos(0.7 * t), 0.05 * np.sin(2 * t)], 1)
    eye = np.stack([0.1 * np.sin(3 * t), 0.2 * np.cos(2 * t), np.zeros_like(t)], 1)
    return Take(times=t, names=list(arkit.ARKIT_52), weights=weights,
                head_rotation=head if rotations else None,
                eye_rotation_left=eye if rotations else None,
                eye_rotation_right=-eye if rotations else None, fps=fps, source="test")


def csv_text(rows, header=REAL_HEADER):
    return header + "\n" + "\n".join(rows) + "\n"


def llf_row(timecode, value=0.25, count=61, n=61):
    return f"{timecode},{count}," + ",".join([f"{value:.10f}"] * n)


# --------------------------------------------------------------------------------------------
# Take
# --------------------------------------------------------------------------------------------

def test_take_validates_and_clips():
    take = Take(times=[0, 0.5, 1.0], names=["jawOpen", "eyeBlinkLeft"],
                weights=[[0, 1.2], [0.5, -0.1], [1, 1]], source="x")
    assert take.weights.dtype == np.float32
    assert take.weights.min() == 0 and take.weights.max() == 1
    assert take.fps == 2.0 and take.duration == 1.0 and len(take) == 3
    with pytest.raises(TakeError, match="must increase"):
        Take(times=[0, 1, 1], names=["jawOpen"], weights=np.zeros((3, 1)))
    with pytest.raises(TakeError, match="missing"):
        Take(times=[0, 1], names=["jawOpen"], weights=[[0], [np.nan]])
    with pytest.raises(TakeError, match="not ARKit"):
        Take(times=[0, 1], names=["eyeBlink_L"], weights=np.zeros((2, 1)))
    with pytest.raises(TakeError, match="twice"):
        Take(times=[0, 1], names=["jawOpen", "jawOpen"], weights=np.zeros((2, 2)))
    with pytest.raises(TakeError, match="shape"):
        Take(times=[0, 1], names=["jawOpen"], weights=np.zeros((3, 1)))
    with pytest.raises(TakeError, match="no frames"):
        Take(times=[], names=["jawOpen"], weights=np.zeros((0, 1)))
    with pytest.raises(TakeError, match="head rotation"):
        Take(times=[0, 1], names=["jawOpen"], weights=np.zeros((2, 1)),
             head_rotation=np.zeros((2, 2)))


def test_take_channels_sampling_and_frames():
    take = Take(times=[0.0, 0.1, 0.2], names=["jawOpen", "eyeBlinkLeft"],
                weights=[[0, 1], [1, 0], [0.5, 0.5]], head_rotation=np.zeros((3, 3)))
    full = take.to_arkit52()
    assert full.shape == (3, 52)
    assert full[1, arkit.ARKIT_INDEX["jawOpen"]] == 1 and full[0, 0] == 1
    assert full.sum() == pytest.approx(take.weights.sum())
    np.testing.assert_allclose(take.sample([0.05, 0.15, -1.0, 9.0]),
                               [[0.5, 0.5], [0.75, 0.25], [0, 1], [0.5, 0.5]], atol=1e-6)
    assert take.fps == pytest.approx(10.0)
    assert take.frame_range(24, 1) == (1, 6)  # 0.2 s at 24 fps = 4.8 -> 5 frames after 1
    frames, times = take.scene_frames(24, 10)
    assert frames[0] == 10 and frames[-1] == 15
    np.testing.assert_allclose(times, (frames - 10) / 24)

    resampled = make_take(frames=61, fps=60).resample(24)
    assert resampled.fps == 24 and resampled.n_frames == 25  # 1.0 s -> 0..24
    assert resampled.head_rotation.shape == (25, 3)
    np.testing.assert_allclose(np.diff(resampled.times), 1 / 24)


def test_take_unwraps_rotations():
    yaw = np.array([3.0, 3.1, -3.1, -3.0])  # crosses +-pi
    take = Take(times=[0, 1, 2, 3], names=["jawOpen"], weights=np.zeros((4, 1)),
                head_rotation=np.stack([np.zeros(4), yaw, np.zeros(4)], 1))
    assert np.abs(np.diff(take.head_rotation[:, 1])).max() < 0.2


# --------------------------------------------------------------------------------------------
# Live Link Face CSV
# --------------------------------------------------------------------------------------------

def test_llf_header_is_the_apps():
    assert ",".join(HEADER) == REAL_HEADER


def test_llf_round_trip(tmp_path):
    take = make_take()
    path = tmp_path / "take.csv"
    write_llf_csv(path, take)
    back = read_llf_csv(path)
    assert back.warnings == []
    assert back.names == [arkit.normalize_name(c) for c in HEADER[2:54]]
    np.testing.assert_allclose(back.to_arkit52(), take.to_arkit52(), atol=1e-7)
    np.testing.assert_allclose(back.times, take.times, atol=1e-4)
    np.testing.assert_allclose(back.head_rotation, take.head_rotation, atol=1e-9)
    np.testing.assert_allclose(back.eye_rotation_right, take.eye_rotation_right, atol=1e-9)
    assert back.fps == 30 and back.source == "Live Link Face CSV 'take.csv'"


def test_llf_timecode_format():
    text = format_llf_csv(make_take(frames=3, fps=30), start_time=12 * 3600 + 27 * 60 + 47.5)
    rows = text.splitlines()[1:]
    assert [r.split(",")[0] for r in rows] == ["12:27:47:30.000", "12:27:47:32.000",
                                               "12:27:47:34.000"]
    assert rows[0].split(",")[1] == "61" and len(rows[0].split(",")) == 63


def test_facecap_performance_through_llf(tmp_path):
    if not FACECAP_NPZ.exists():
        pytest.skip(f"facecap data not found at {FACECAP_NPZ} (set FACSIMILE_DATA)")
    with np.load(FACECAP_NPZ) as data:
        names, weights = [str(n) for n in data["names"]], data["anim_weights"]
        times = data["anim_times"].astype(np.float64)
    normalized = [arkit.normalize_name(n) for n in names]
    assert None not in normalized
    assert tuple(names) == FACECAP_ORDER
    take = Take(times=times - times[0], names=normalized, weights=weights, fps=30, source="npz")
    path = tmp_path / "facecap.csv"
    write_llf_csv(path, take)
    back = read_llf_csv(path)
    assert back.fps == 30 and back.n_frames == 335
    order = [back.names.index(n) for n in normalized]
    assert np.abs(back.weights[:, order] - weights).max() <= 1 / 255
    assert abs(back.duration - (times[-1] - times[0])) < 1e-3


def test_llf_columns_found_by_name(tmp_path):
    take = make_take(frames=40)
    lines = format_llf_csv(take).splitlines()
    rng = np.random.default_rng(3)
    order = rng.permutation(len(HEADER))
    shuffled = [",".join(np.array(line.split(","))[order]) for line in lines]
    back = parse_llf_csv("\n".join(shuffled))
    np.testing.assert_allclose(back.to_arkit52(), take.to_arkit52(), atol=1e-7)
    np.testing.assert_allclose(back.head_rotation, take.head_rotation, atol=1e-9)
    np.testing.assert_allclose(back.times, take.times, atol=1e-4)


def test_llf_other_spellings_and_subsets():
    text = ("timecode,eyeBlink_L,blendShape1.jawOpen,Mystery\n"
            "00:00:01:00.000,0.5,0.25,7\n00:00:01:02.000,0.75,0.5,7\n")
    take = parse_llf_csv(text)
    assert take.names == ["eyeBlinkLeft", "jawOpen"]
    assert take.head_rotation is None
    assert any("Mystery" in w for w in take.warnings)
    assert any("50 blend shape(s)" in w for w in take.warnings)
    np.testing.assert_allclose(take.times, [0, 2 / 60])


def test_llf_windows_file_with_bom(tmp_path):
    text = format_llf_csv(make_take(frames=10)).replace("\n", "\r\n")
    path = tmp_path / "win.csv"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_llf_csv(path).n_frames == 10


@pytest.mark.parametrize("base, step, expected", [
    (60, 2, 60), (60, 1, 60), (60, 12, 60), (30, 1, 30), (25, 1, 25), (24, 1, 24),
    (50, 2, 50), (48, 2, 48), (120, 4, 120)])
def test_llf_detects_timecode_base(base, step, expected):
    frames = np.arange(0, 3 * base, step)  # three seconds of rows
    rows = [llf_row(f"10:00:{f // base:02d}:{f % base:02d}.000") for f in frames]
    take = parse_llf_csv(csv_text(rows))
    np.testing.assert_allclose(take.times, (frames - frames[0]) / expected, atol=1e-9)
    assert take.fps == pytest.approx(expected / step, rel=0.01)


def test_llf_explicit_timecode_base_and_short_takes():
    rows = [llf_row(f"00:00:00:{f:02d}.000") for f in range(0, 20, 2)]  # no second wrap
    assert parse_llf_csv(csv_text(rows)).times[1] == pytest.approx(2 / 60)  # the app default
    assert parse_llf_csv(csv_text(rows), fps=24).times[1] == pytest.approx(2 / 24)
    with pytest.raises(TakeError, match="does not fit a 10 fps timecode"):
        parse_llf_csv(csv_text(rows), fps=10)


def test_llf_midnight_duplicates_and_dropouts():
    rows = [llf_row("23:59:59:58.000"), llf_row("23:59:59:58.000"), llf_row("00:00:00:00.000"),
            llf_row("00:00:00:02.000", count=0), llf_row("00:00:00:04.000")]
    take = parse_llf_csv(csv_text(rows))
    np.testing.assert_allclose(take.times, [0, 2 / 60, 6 / 60])
    assert any("repeating" in w for w in take.warnings)
    assert any("without a tracked face" in w for w in take.warnings)


def test_llf_isolated_gaps_are_interpolated():
    rows = [llf_row(f"00:00:01:{f:02d}.000", value=f / 100) for f in range(0, 20, 2)]
    cells = rows[3].split(",")
    cells[2], cells[20] = "", "nan"  # EyeBlinkLeft empty, JawOpen NaN
    rows[3] = ",".join(cells)
    take = parse_llf_csv(csv_text(rows))
    w = take.to_arkit52()
    assert w[3, arkit.ARKIT_INDEX["eyeBlinkLeft"]] == pytest.approx(0.06, abs=1e-6)
    assert w[3, arkit.ARKIT_INDEX["jawOpen"]] == pytest.approx(0.06, abs=1e-6)
    assert any("filled 2" in w for w in take.warnings)


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("\n  \n", "the file is empty"),
    (REAL_HEADER + "\n", "no data rows"),
    (REAL_HEADER.replace("Timecode,", "Time,") + "\n1,61," + ",".join(["0"] * 61),
     "missing column 'Timecode'"),
    ("Timecode,Foo,Bar\n00:00:00:00.0,1,2\n", "no blend-shape columns"),
    (csv_text([llf_row("00:00:00:00.000"), llf_row("00:00:00:0x.000")]),
     r"line 3: bad timecode '00:00:00:0x.000'"),
    (csv_text([llf_row("00:00:00:00.000"), llf_row("00:00:00.000")]), r"line 3: bad timecode"),
    (csv_text([llf_row("00:00:00:00.000"), llf_row("00:61:00:00.000")]),
     r"line 3: bad timecode .*\(out of range"),
    (csv_text([llf_row("00:00:01:00.000"), llf_row("00:00:00:00.000")]),
     "line 3: timecode goes back"),
    (csv_text([llf_row("00:00:00:00.000"), llf_row("00:00:00:02.000", n=60)]),
     "line 3 has 61 values, expected 62"),
    (csv_text([llf_row("00:00:00:00.000"),
               llf_row("00:00:00:02.000").replace("0.2500000000", "abc", 1)]),
     "line 3, column 'EyeBlinkLeft': 'abc' is not a number"),
    (csv_text([llf_row(f"00:00:00:{f:02d}.000", value=float("nan")) for f in range(4)]),
     "column 'EyeBlinkLeft' has no values"),
    (csv_text([llf_row(f"00:00:00:{f:02d}.000", count=0) for f in range(4)]),
     "no row has a tracked face"),
])
def test_llf_malformed_inputs(text, message):
    with pytest.raises(TakeError, match=message) as info:
        parse_llf_csv(text, where="Live Link Face CSV 'x.csv'")
    assert str(info.value).startswith("Live Link Face CSV 'x.csv': ")
    assert "\n" not in str(info.value)


def test_llf_long_gap_is_an_error():
    rows = [llf_row(f"00:00:{f // 60:02d}:{f % 60:02d}.000") for f in range(0, 60, 2)]
    for i in range(5, 20):
        cells = rows[i].split(",")
        cells[HEADER.index("JawOpen")] = ""
        rows[i] = ",".join(cells)
    with pytest.raises(TakeError, match="column 'JawOpen' is empty on lines 7-21") as info:
        parse_llf_csv(csv_text(rows))
    assert info.value.line == 7


def test_llf_file_errors(tmp_path):
    with pytest.raises(TakeError, match="cannot open"):
        read_llf_csv(tmp_path / "missing.csv")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00\x81garbage")
    with pytest.raises(TakeError, match="'binary.csv': not a text file"):
        read_llf_csv(binary)


def test_llf_huge_file_parses_fast(tmp_path):
    rows = 200_000
    base = 60
    frames = np.arange(rows)
    seconds, ff = np.divmod(frames, base)
    minutes, ss = np.divmod(seconds, 60)
    hours, mm = np.divmod(minutes, 60)
    values = ",61," + ",".join(f"{v:.10f}" for v in np.linspace(0, 1, 61))
    body = "\n".join(f"{h:02d}:{m:02d}:{s:02d}:{f:02d}.000{values}" for h, m, s, f in
                     zip(hours.tolist(), mm.tolist(), ss.tolist(), ff.tolist()))
    path = tmp_path / "huge.csv"
    path.write_text(REAL_HEADER + "\n" + body + "\n")
    start = time.perf_counter()
    take = read_llf_csv(path)
    elapsed = time.perf_counter() - start
    assert take.n_frames == rows and take.fps == 60
    assert take.duration == pytest.approx((rows - 1) / 60)
    print(f"read {rows} rows in {elapsed:.2f} s")
    assert elapsed < 15.0, f"200k rows took {elapsed:.1f} s"


# --------------------------------------------------------------------------------------------
# Face Cap TXT
# --------------------------------------------------------------------------------------------

def test_facecap_round_trip(tmp_path):
    take = make_take(frames=50)
    take.head_position = np.random.default_rng(4).normal(size=(50, 3))
    take.eye_rotation_left = take.eye_rotation_left[:, :2]
    take.eye_rotation_right = take.eye_rotation_right[:, :2]
    path = tmp_path / "cap.txt"
    write_facecap_txt(path, take)
    text = path.read_text()
    assert text.startswith("bs,browInnerUp,browDown_L,")
    assert text.splitlines()[1].startswith("k,0.000,")
    back = read_facecap_txt(path)
    assert back.source == "Face Cap TXT 'cap.txt'" and back.warnings == []
    np.testing.assert_allclose(back.to_arkit52(), take.to_arkit52(), atol=1e-6)
    np.testing.assert_allclose(back.times, take.times, atol=1e-6)
    np.testing.assert_allclose(back.head_rotation, take.head_rotation, atol=1e-6)
    np.testing.assert_allclose(back.head_position, take.head_position, atol=1e-6)
    np.testing.assert_allclose(back.eye_rotation_left, take.eye_rotation_left, atol=1e-6)
    assert back.fps == 30


def test_facecap_layout_details():
    # Times in ms not starting at 0, degrees, an info line, Face Cap's own naming.
    text = ("info,Face Cap,1.0\n"
            "bs,jawOpen,eyeBlink_L,mouthSmile_R\n"
            "k,1000,1,2,3,90,0,-45,10,20,30,40,0.5,0.25,1\n"
            "k,1033.333,1,2,3,90,0,-45,10,20,30,40,0.6,0.25,1\n")
    take = parse_facecap_txt(text)
    assert take.names == ["jawOpen", "eyeBlinkLeft", "mouthSmileRight"]
    np.testing.assert_allclose(take.times, [0, 0.033333], atol=1e-6)
    np.testing.assert_allclose(take.head_rotation[0], np.radians([90, 0, -45]))
    np.testing.assert_allclose(take.eye_rotation_right[0], np.radians([30, 40]))
    np.testing.assert_allclose(take.head_position[0], [1, 2, 3])
    np.testing.assert_allclose(take.weights[1], [0.6, 0.25, 1])


def test_facecap_without_names_and_percentages():
    weights = ",".join(["50"] * 52)
    text = f"k,0,0,0,0,0,0,0,0,0,0,0,{weights}\nk,40,0,0,0,0,0,0,0,0,0,0,{weights}\n"
    take = parse_facecap_txt(text)
    assert take.names == [arkit.normalize_name(n) for n in FACECAP_ORDER]
    assert take.weights.max() == pytest.approx(0.5)
    assert any("default order" in w for w in take.warnings)
    assert any("percentages" in w for w in take.warnings)


@pytest.mark.parametrize("text, message", [
    ("", "the file is empty"),
    ("info,x\nbs,jawOpen\n", "no keyframe lines"),
    ("bs,jawOpen,eyeBlink_L\nk,0,0,0,0,0,0,0,0,0,0,0,0.5\n", "line 2 has 12 values, expected 13"),
    ("bs,jawOpen\nk,0,0,0,0,0,0,0,0,0,0,0,0.5\nk,x,0,0,0,0,0,0,0,0,0,0,0.5\n",
     "line 3, column 'time_ms': 'x' is not a number"),
    ("bs,jawOpen\nk,50,0,0,0,0,0,0,0,0,0,0,0.5\nk,10,0,0,0,0,0,0,0,0,0,0,0.5\n",
     "line 3: time goes back"),
    ("bs,foo,bar\nk,0,0,0,0,0,0,0,0,0,0,0,0.5,0.5\n", "no known blend-shape names"),
])
def test_facecap_malformed_inputs(text, message):
    with pytest.raises(TakeError, match=message):
        parse_facecap_txt(text, where="Face Cap TXT 'x.txt'")


def test_facecap_writer_accepts_any_order():
    take = make_take(frames=5, rotations=False)
    text = format_facecap_txt(take, names=("jawOpen", "EyeBlinkLeft"))
    assert text.splitlines()[0] == "bs,jawOpen,EyeBlinkLeft"
    back = parse_facecap_txt(text)
    assert back.names == ["jawOpen", "eyeBlinkLeft"]
    np.testing.assert_allclose(back.weights, take.to_arkit52()[:, [17, 0]], atol=1e-6)
