# SPDX-License-Identifier: GPL-3.0-or-later
"""Video source, bpy-free parts: decoding, the ONNX face landmarker, MediaPipe's gaps
(names, _neutral, tongueOut), calibration, One-Euro smoothing, gaps without a face."""

from __future__ import annotations

import math

import numpy as np
import pytest

from blender_addon.core import arkit
from blender_addon.core.takes import TakeError
from blender_addon.core.video import take as tv
from blender_addon.core.video import landmarker as lmk

av = pytest.importorskip("av")


# ------------------------------------------------------------------ small synthetic videos

def write_video(path, frames, fps=30, codec="libx264", rotation=None, times=None):
    """Encode (H, W, 3) uint8 frames; ``times`` (seconds) makes a variable-rate file."""
    from fractions import Fraction

    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height = frames[0].shape[1], frames[0].shape[0]
        stream.pix_fmt = "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i, f in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def marker_frames(n=6, h=64, w=96):
    """Frames with a bright block in the top-left corner and the frame index in green."""
    frames = []
    for i in range(n):
        f = np.zeros((h, w, 3), np.uint8)
        f[:16, :24, 0] = 255
        f[:, :, 1] = 20 * i
        frames.append(f)
    return frames


def test_decode_size_rate_times(tmp_path):
    from blender_addon.core.video.decode import VideoReader

    path = write_video(tmp_path / "a.mp4", marker_frames(12), fps=24)
    with VideoReader(path) as video:
        assert (video.info.width, video.info.height) == (96, 64)
        assert video.info.fps == pytest.approx(24.0)
        got = list(video.frames())
    assert [i for _t, i, _f in got] == list(range(12))
    np.testing.assert_allclose([t for t, _i, _f in got], np.arange(12) / 24, atol=1e-3)
    assert got[0][2].shape == (64, 96, 3) and got[0][2].dtype == np.uint8
    assert got[0][2][:16, :24, 0].mean() > 200          # RGB order, top-left marker
    # a sub-range, as the operator's start/stop use it
    with VideoReader(path) as video:
        part = list(video.frames(start=3, stop=7))
    assert [i for _t, i, _f in part] == [3, 4, 5, 6]
    assert part[0][0] == pytest.approx(3 / 24, abs=1e-3)


def test_decode_applies_phone_rotation(tmp_path):
    """A portrait phone clip is stored sideways with a display rotation: frames come upright."""
    from blender_addon.core.video.decode import VideoReader

    path = write_video(tmp_path / "r.mp4", marker_frames(3), rotation=90)
    with VideoReader(path) as video:
        assert video.info.rotation == 90
        assert (video.info.width, video.info.height) == (64, 96)
        _t, _i, f = next(iter(video.frames()))
    # 90 degrees counter-clockwise for display: the top-left marker ends bottom-left.
    assert f.shape == (96, 64, 3)
    assert f[-24:, :16, 0].mean() > 200 and f[:24, :16, 0].mean() < 50


def test_decode_variable_frame_rate_keeps_real_times(tmp_path):
    from blender_addon.core.video.decode import VideoReader

    times = np.array([0.0, 0.033, 0.066, 0.133, 0.166, 0.2])   # one dropped frame
    path = write_video(tmp_path / "vfr.mkv", marker_frames(6), times=times)
    with VideoReader(path) as video:
        got = np.array([t for t, _i, _f in video.frames()])
    np.testing.assert_allclose(got, times, atol=2e-3)


def test_decode_errors_are_one_line(tmp_path):
    from blender_addon.core.video.decode import VideoReader

    with pytest.raises(TakeError, match="file not found"):
        VideoReader(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(TakeError) as err:
        VideoReader(bad)
    assert "bad.mp4" in str(err.value) and "\n" not in str(err.value)


def test_no_face_is_an_error_not_a_crash(tmp_path):
    path = write_video(tmp_path / "empty.mp4", [np.full((96, 128, 3), 90, np.uint8)] * 4)
    with pytest.raises(TakeError, match="no face found"):
        tv.read_video(path)


def test_cancel_and_progress(tmp_path):
    path = write_video(tmp_path / "c.mp4", [np.full((64, 64, 3), 90, np.uint8)] * 30)
    calls = []
    with pytest.raises(tv.Cancelled):
        tv.track_video(path, progress=lambda f, s: calls.append(s),
                       cancelled=lambda: len(calls) > 0 or True)


# ------------------------------------------------------------------ landmarker pieces

def test_anchors_and_sampling():
    anchors = lmk.ssd_anchors()
    assert anchors.shape == (896, 2)
    assert anchors.min() > 0 and anchors.max() < 1
    img = (np.arange(40 * 50 * 3) % 251).astype(np.uint8).reshape(40, 50, 3)
    ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_allclose(lmk.sample_affine(img, ident, 40, 50), img, atol=1e-4)
    roi = lmk.Roi(25.0, 20.0, 16.0, 0.0)
    crop = lmk.sample_affine(img, lmk.roi_matrix(roi, 16), 16, 16)
    np.testing.assert_allclose(crop, img[12:28, 17:33], atol=1e-4)


def test_roi_rotation_levels_the_eyes():
    """A face tilted so its left eye (image right) is lower gets a positive ROI angle, and
    the ROI matrix maps the crop's horizontal axis onto the tilted eye line."""
    right_eye, left_eye = np.array([100.0, 100.0]), np.array([140.0, 120.0])
    angle = lmk._angle(right_eye, left_eye)
    assert angle == pytest.approx(math.atan2(20, 40))
    m = lmk.roi_matrix(lmk.Roi(120, 110, 100, angle), 256)
    direction = m[:, 0]
    assert direction[1] / direction[0] == pytest.approx(0.5)


def test_blendshape_landmark_subset():
    assert lmk.BLENDSHAPE_LANDMARKS.shape == (146,)
    assert len(set(lmk.BLENDSHAPE_LANDMARKS.tolist())) == 146
    assert lmk.BLENDSHAPE_LANDMARKS.max() == 477          # includes the 10 iris points


def test_procrustes_recovers_a_rotation():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(33, 3))
    r = tv.euler_to_rotation(np.array([0.2, -0.4, 0.1]))
    dst = 3.0 * src @ r.T + np.array([5.0, -2.0, 1.0])
    np.testing.assert_allclose(lmk.procrustes_rotation(src, dst, np.ones(33)), r, atol=1e-9)


# ------------------------------------------------------------------ MediaPipe's gaps

def test_mediapipe_names_map_to_arkit():
    assert lmk.MP_BLENDSHAPES[0] == "_neutral" and len(lmk.MP_BLENDSHAPES) == 52
    assert set(lmk.MP_BLENDSHAPES[1:]) == set(arkit.ARKIT_52) - {"tongueOut"}
    mp = np.arange(52, dtype=np.float32)[None] / 100
    out = tv.mediapipe_to_arkit(mp)
    assert out.shape == (1, 52)
    assert out[0, arkit.ARKIT_INDEX["tongueOut"]] == 0.0
    for j, name in enumerate(lmk.MP_BLENDSHAPES[1:], start=1):
        assert out[0, arkit.ARKIT_INDEX[name]] == pytest.approx(j / 100)
    assert 0.0 not in out[0, [arkit.ARKIT_INDEX[n] for n in lmk.MP_BLENDSHAPES[1:]]]  # _neutral gone


def test_regions_cover_every_channel_once():
    names = [n for region in tv.REGIONS.values() for n in region]
    assert sorted(names) == sorted(arkit.ARKIT_52)
    assert all(tv.REGION_OF[n] == "cheeks" for n in ("noseSneerLeft", "cheekSquintRight"))
    assert tv.REGION_OF["eyeWideLeft"] == "eyes"


def test_calibration_neutral_and_gains():
    w = np.full((3, 52), 0.2, np.float32)
    w[1] = 0.6
    w[2] = 1.0
    neutral = np.full(52, 0.2)
    out = tv.calibrate(w, neutral, None)
    np.testing.assert_allclose(out[0], 0.0, atol=1e-6)        # rest pose -> 0
    np.testing.assert_allclose(out[1], 0.5, atol=1e-6)        # (0.6 - 0.2) / 0.8
    np.testing.assert_allclose(out[2], 1.0, atol=1e-6)        # full range kept
    boosted = tv.calibrate(w, neutral, {"cheeks": 2.0, "mouth": 1.0})
    cheek, mouth = arkit.ARKIT_INDEX["noseSneerLeft"], arkit.ARKIT_INDEX["jawOpen"]
    assert boosted[1, cheek] == pytest.approx(1.0) and boosted[1, mouth] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown region"):
        tv.calibrate(w, None, {"nose": 2.0})


def test_one_euro_steady_at_rest_and_fast_on_motion():
    fps = 30.0
    t = np.arange(300) / fps
    rng = np.random.default_rng(0)
    rest = 0.1 + 0.02 * rng.normal(size=t.size)
    smooth = tv.one_euro(rest, t)
    assert np.diff(smooth).std() < 0.5 * np.diff(rest).std()
    step = (t > 5).astype(float)
    out = tv.one_euro(step, t)
    assert out[int(5 * fps) + 5] > 0.9                        # a step is followed within 5 frames
    lazy = tv.one_euro(step, t, tv.OneEuro(min_cutoff=0.3, beta=0.0))
    assert lazy[int(5 * fps) + 5] < out[int(5 * fps) + 5]     # tunable: less beta = more lag


def test_fill_missing_short_and_long_gaps():
    t = np.arange(100) / 30.0
    v = np.full((100, 1), 0.8)
    found = np.ones(100, bool)
    found[10:13] = False            # 0.1 s: interpolated
    found[40:80] = False            # 1.33 s: relaxes to 0
    v[~found] = np.nan
    out, filled, longest = tv.fill_missing(t, np.nan_to_num(v), found, 0.5)
    assert filled == 43 and longest == pytest.approx(40 / 30.0, abs=0.05)
    np.testing.assert_allclose(out[10:13], 0.8)
    assert out[60, 0] == pytest.approx(0.0) and out[41, 0] > 0.3 and out[79, 0] > 0.3


def test_euler_convention_round_trip_and_axes():
    e = np.array([[0.3, 0.0, 0.0], [0.0, 0.3, 0.0], [0.0, 0.0, 0.3], [0.1, -0.2, 0.3]])
    r = tv.euler_to_rotation(e)
    np.testing.assert_allclose(tv.rotation_to_euler(r), e, atol=1e-12)
    nose = np.array([0.0, 0.0, 1.0])
    assert (r[0] @ nose)[1] < 0          # pitch > 0: nose down
    assert (r[1] @ nose)[0] > 0          # yaw > 0: toward the face's left (+X)
    left = np.array([1.0, 0.0, 0.0])
    assert (r[2] @ left)[1] > 0          # roll > 0: its left side up (tilt to its right)


def _canonical_face_image(features: bool):
    """A 320-pixel Lambert-shaded sphere with MediaPipe's canonical face laid on it as
    landmarks (10 px per cm); ``features`` paints dark eyes and a dark lip line."""
    with np.load(lmk.MODEL_DIR / lmk.GEOMETRY) as geo:
        canon = geo["vertices"].astype(np.float64)
    points = np.c_[160 + 10 * canon[:, 0], 160 - 10 * canon[:, 1], -10 * canon[:, 2]]
    landmarks = np.r_[points, np.repeat(points[:1], 10, axis=0)]
    yy, xx = np.mgrid[0:320, 0:320] + 0.5
    dx, dy = (xx - 160) / 120, (yy - 160) / 120
    nz = np.sqrt(np.clip(1 - dx ** 2 - dy ** 2, 0, None))
    light = np.array([-0.4, -0.5, 0.77])
    luma = np.where(nz > 0, 40 + 180 * np.clip(dx * light[0] + dy * light[1] + nz * light[2], 0, 1), 20)
    if features:
        # eyes and brows (within 2 cm of an eye's centre) and lips (around the mouth line)
        eyes = [canon[[33, 133]].mean(0), canon[[263, 362]].mean(0)]
        mouth = canon[[13, 14]].mean(0)
        near = np.zeros(len(canon), bool)
        for c in eyes:
            near |= np.linalg.norm(canon[:, :2] - c[:2], axis=1) < 2.0
        near |= (np.abs(canon[:, 0] - mouth[0]) < 2.5) & (np.abs(canon[:, 1] - mouth[1]) < 0.8)
        for x, y in points[near, :2]:
            luma = np.where((xx - x) ** 2 + (yy - y) ** 2 < 9, luma * 0.3, luma)
    return np.repeat(luma[..., None], 3, axis=2).astype(np.uint8), landmarks


def test_feature_contrast_tells_a_face_from_a_shaded_ball():
    """Issue 15 case 8: the landmarks a shaded ball gets have no features under them."""
    ball, landmarks = _canonical_face_image(False)
    face, _ = _canonical_face_image(True)
    smooth, featured = lmk.feature_contrast(ball, landmarks), lmk.feature_contrast(face, landmarks)
    assert smooth < lmk.MIN_FEATURE_CONTRAST / 2
    assert featured > 2 * lmk.MIN_FEATURE_CONTRAST
    # unitless: the same face in dim light reads the same
    dim = (face.astype(np.float64) * 0.25).astype(np.uint8)
    assert lmk.feature_contrast(dim, landmarks) == pytest.approx(featured, rel=0.1)
