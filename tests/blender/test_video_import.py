# SPDX-License-Identifier: GPL-3.0-or-later
"""A video the project renders with KNOWN ARKit weights, imported back.

The Face Cap head is animated through its own artist-made ARKit shapes (jaw, blinks of each
eye, smiles of each side, brows) and a small head motion, rendered in headless Blender
(Workbench, 320x320, 30 fps) and encoded to H.264 by Blender's FFmpeg
(``tests/video_scene.py``). The recovered curves must follow the known ones.

Rendering takes about a minute, so the mp4 is kept in ``.cache/test_video`` under a hash of
the scene code and Blender's version (delete the folder to force a new render).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.video import take as tv
from blender_helpers import clean_env, wheels_ready

pytest.importorskip("av")
HERE = Path(__file__).resolve().parent
CACHE = HERE.parents[1] / ".cache" / "test_video"
CHECKED = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight")
NEUTRAL = (0, 25)   # the performance holds a neutral face for its first second


def _render(npz: Path, out: Path) -> None:
    """Render in a fresh Blender process: factory settings there cannot touch this one."""
    code = ("import sys, video_scene as vs, numpy as np\n"
            "perf = vs.known_performance()\n"
            f"vs.render_video({str(out)!r}, {str(npz)!r}, perf)\n"
            f"np.savez({str(out.with_suffix('.npz'))!r}, weights=perf.weights, head=perf.head, "
            "names=np.array(perf.names))\n")
    # The helpers beside this file, the add-on from the installed extension: never the source tree.
    env = clean_env(PYTHONPATH=HERE, HOME=tempfile.mkdtemp(prefix="facsimile-render-"))
    done = subprocess.run([sys.executable, "-c", code], cwd=HERE, env=env, capture_output=True,
                          text=True, timeout=1200)
    assert done.returncode == 0 and out.exists(), done.stderr[-3000:]


@pytest.fixture(scope="session")
def known_video(facecap_path, bpy_module):
    """(mp4 path, names, weights (T, n), head (T, 3)) of the rendered known performance."""
    wheels_ready()
    digest = hashlib.sha256()
    digest.update((HERE / "video_scene.py").read_bytes())
    digest.update(bpy_module.app.version_string.encode())
    digest.update(str(Path(facecap_path).stat().st_size).encode())
    CACHE.mkdir(parents=True, exist_ok=True)
    mp4 = CACHE / f"known-{digest.hexdigest()[:16]}.mp4"
    if not (mp4.exists() and mp4.with_suffix(".npz").exists()):
        _render(Path(facecap_path), mp4)
    with np.load(mp4.with_suffix(".npz")) as d:
        return mp4, [str(n) for n in d["names"]], d["weights"], d["head"]


@pytest.fixture(scope="session")
def known_track(known_video):
    wheels_ready()
    path = known_video[0]
    return tv.track_video(path, tv.VideoOptions())


def _pearson(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _report(name: str, values: dict) -> None:
    """Print the measured values (shown with -s / in the log) and keep them for the docs."""
    print(f"\n[video] {name}: " + json.dumps({k: round(v, 3) for k, v in values.items()}))


def test_recovered_curves_follow_the_known_ones(known_video, known_track):
    path, names, weights, head = known_video
    track = known_track
    assert track.found.all(), "the landmarker lost the face in some rendered frames"
    assert track.detector_runs <= 3, "tracking should carry the face from frame to frame"
    take = tv.take_from_track(track, tv.VideoOptions(neutral_range=NEUTRAL))
    assert take.n_frames == len(weights)
    assert take.fps == pytest.approx(30.0)
    assert "tongueOut" in take.names and np.all(take.weights[:, take.names.index("tongueOut")] == 0)
    pearson = {n: _pearson(take.weights[:, take.names.index(n)], weights[:, names.index(n)])
               for n in names}
    _report("pearson", pearson)
    for name in CHECKED:
        assert pearson[name] >= 0.8, f"{name}: Pearson {pearson[name]:.3f} < 0.8"
    # Left/right: each recovered eye follows its own side better than the other.
    for side, other in (("Left", "Right"), ("Right", "Left")):
        got = take.weights[:, take.names.index(f"eyeBlink{side}")]
        assert _pearson(got, weights[:, names.index(f"eyeBlink{side}")]) > \
            _pearson(got, weights[:, names.index(f"eyeBlink{other}")]) + 0.2
        got = take.weights[:, take.names.index(f"mouthSmile{side}")]
        assert _pearson(got, weights[:, names.index(f"mouthSmile{side}")]) > \
            _pearson(got, weights[:, names.index(f"mouthSmile{other}")]) + 0.2
    # Head rotation: right axes, right signs, relative to the neutral frames.
    rot = {axis: _pearson(take.head_rotation[:, i], head[:, i])
           for i, axis in enumerate(("pitch", "yaw", "roll"))}
    _report("head rotation pearson", rot)
    assert min(rot.values()) >= 0.8
    err = np.degrees(np.sqrt(np.mean((take.head_rotation - head) ** 2, axis=0)))
    _report("head rotation rms degrees", dict(zip(("pitch", "yaw", "roll"), err)))
    assert err.max() < 4.0
    _report("tracking", {"frames per second": track.tracking_fps, "frames": len(track.times)})


def test_smoothing_and_calibration_keep_the_curves(known_video, known_track):
    _path, names, weights, _head = known_video
    raw = tv.take_from_track(known_track, tv.VideoOptions(smoothing=None))
    smooth = tv.take_from_track(known_track, tv.VideoOptions(neutral_range=NEUTRAL))
    for name in CHECKED:
        truth = weights[:, names.index(name)]
        a = _pearson(raw.weights[:, raw.names.index(name)], truth)
        b = _pearson(smooth.weights[:, smooth.names.index(name)], truth)
        assert b > a - 0.03, f"{name}: smoothing cost {a - b:.3f} Pearson"
    # The neutral frames read ~0 after calibration, and stay steadier than raw.
    j = smooth.names.index("browInnerUp")
    assert np.abs(smooth.weights[: NEUTRAL[1], j]).max() < 0.05
    jitter = lambda take: np.abs(np.diff(take.weights[: NEUTRAL[1]], axis=0)).mean()  # noqa: E731
    assert jitter(smooth) < jitter(raw)
    # A region gain scales that region only.
    boosted = tv.take_from_track(known_track, tv.VideoOptions(neutral_range=NEUTRAL,
                                                                gains={"brows": 2.0}))
    jb, jj = boosted.names.index("browInnerUp"), boosted.names.index("jawOpen")
    assert boosted.weights[:, jb].max() > smooth.weights[:, jb].max()
    np.testing.assert_allclose(boosted.weights[:, jj], smooth.weights[:, jj])


def _mirror_copy(src: Path, dst: Path) -> Path:
    wheels_ready()
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        stream_in = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=stream_in.average_rate)
        stream.width, stream.height, stream.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        for frame in inp.decode(stream_in):
            rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24")[:, ::-1])
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return dst


def test_mirrored_video_option(known_video, tmp_path):
    """A mirrored (selfie) recording swaps sides; the mirrored option puts them back."""
    path, names, weights, head = known_video
    mirrored = _mirror_copy(path, tmp_path / "selfie.mp4")
    fixed = tv.read_video(mirrored, tv.VideoOptions(mirrored=True, neutral_range=NEUTRAL))
    as_is = tv.read_video(mirrored, tv.VideoOptions(neutral_range=NEUTRAL))
    truth = weights[:, names.index("eyeBlinkLeft")]
    got_fixed = fixed.weights[:, fixed.names.index("eyeBlinkLeft")]
    got_as_is = as_is.weights[:, as_is.names.index("eyeBlinkLeft")]
    _report("mirrored", {"fixed": _pearson(got_fixed, truth), "as is": _pearson(got_as_is, truth)})
    assert _pearson(got_fixed, truth) >= 0.8
    assert _pearson(got_as_is, truth) < _pearson(got_fixed, truth) - 0.2
    # yaw flips sign in the mirror; the option flips it back
    assert _pearson(fixed.head_rotation[:, 1], head[:, 1]) >= 0.8
    assert _pearson(as_is.head_rotation[:, 1], head[:, 1]) <= -0.8


# ------------------------------------------------------------------ in Blender

def test_import_video_operator_makes_a_drive_source(addon, known_video):
    import bpy

    path, names, weights, _head = known_video
    scene = bpy.context.scene
    scene.render.fps = 30
    result = bpy.ops.facsimile.import_video(filepath=str(path), start_frame=1, use_neutral=True,
                                            neutral_first=1, neutral_last=25)
    assert result == {"FINISHED"}
    src = scene.facsimile_drive.source
    assert src is not None and src.name.startswith("Take known-")
    assert (scene.frame_start, scene.frame_end) == (1, len(weights))
    for name in arkit.ARKIT_52:
        assert name in src.keys()
    state = scene.facsimile_video
    assert state.last_frames == len(weights) and state.last_fps > 0 and state.last_found == 1.0
    # the keyed channel follows the known jaw
    scene.frame_set(1)
    jaw = []
    for f in range(1, len(weights) + 1):
        scene.frame_set(f)
        jaw.append(src["jawOpen"])
    assert _pearson(np.array(jaw), weights[:, names.index("jawOpen")]) >= 0.8
    assert src.rotation_mode == "YXZ"


def test_import_video_operator_reports_bad_input(addon, tmp_path):
    import bpy

    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 256)
    with pytest.raises(RuntimeError, match="broken.mp4"):
        bpy.ops.facsimile.import_video(filepath=str(bad))
    assert bpy.context.scene.facsimile_drive.source is None
    with pytest.raises(RuntimeError, match="no such file"):
        bpy.ops.facsimile.import_video(filepath=str(tmp_path / "missing.mov"))


def test_cli_bake_takes_a_video(known_video, addon, tmp_path):
    """``facsimile bake HEAD --take VIDEO``: tracked, then baked like any take."""
    import bpy

    from bl_ext.user_default.facsimile import animation
    from blender_helpers import monkey_head, run_cli

    path, names, weights, _head = known_video
    monkey_head("Head")
    bpy.ops.wm.obj_export(filepath=str(tmp_path / "head.obj"), export_selected_objects=True,
                          export_materials=False, forward_axis="NEGATIVE_Y", up_axis="Z")
    out = run_cli("bake", tmp_path / "head.obj", "--take", path, "--out", tmp_path / "baked.blend",
                  home=tmp_path / "home")
    assert out.returncode == 0, out.stderr
    assert "reading take" in out.stdout and "baking onto" in out.stdout
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "baked.blend"))
    head = next(o for o in bpy.data.objects if o.type == "MESH")
    fc = next(fc for fc in animation.assigned_fcurves(head.data.shape_keys)
              if fc.data_path == animation.key_path("jawOpen"))
    co = np.empty(2 * len(fc.keyframe_points), np.float32)
    fc.keyframe_points.foreach_get("co", co)
    baked = co.reshape(-1, 2)[:, 1]
    # the new file runs at 24 fps: the 30 fps take is resampled onto its frames
    fps = bpy.context.scene.render.fps / bpy.context.scene.render.fps_base
    assert len(baked) == int(round((len(weights) - 1) / 30.0 * fps)) + 1
    truth = np.interp(np.arange(len(baked)) / fps, np.arange(len(weights)) / 30.0,
                      weights[:, names.index("jawOpen")])
    assert _pearson(baked, truth) >= 0.8


def test_background_job_reports_progress_and_cancels(addon, known_video):
    """What the modal operator runs on its worker thread: progress with frames per second,
    and Esc (job.cancel) stopping it with nothing produced."""
    import threading

    import bpy

    from bl_ext.user_default.facsimile.video import ops as video_ops

    assert hasattr(bpy.types, "FACSIMILE_PT_video") and hasattr(bpy.types.Scene, "facsimile_video")
    path = str(known_video[0])
    job = video_ops.VideoJob(path, tv.VideoOptions(stop=60))
    thread = threading.Thread(target=job.run)
    thread.start()
    thread.join(timeout=300)
    assert job.error is None and job.track is not None and len(job.track.times) == 60
    assert job.progress == pytest.approx(1.0) and job.status.endswith("fps")

    job = video_ops.VideoJob(path, tv.VideoOptions())
    job.cancel = True
    thread = threading.Thread(target=job.run)
    thread.start()
    thread.join(timeout=60)
    assert isinstance(job.error, tv.Cancelled) and job.track is None


def test_truncated_video_imports_its_part_and_says_so(addon, known_video, tmp_path):
    """A file cut short with its index in front (faststart) decodes its first half without
    an error: the take says the file looks truncated instead of passing for the whole."""
    import av
    import bpy

    path, _names, weights, _head = known_video
    whole = tmp_path / "faststart.mp4"
    with av.open(str(path)) as inp, av.open(str(whole), "w", options={"movflags": "faststart"}) as out:
        stream_in = inp.streams.video[0]
        stream = out.add_stream_from_template(stream_in)
        for packet in inp.demux(stream_in):
            if packet.dts is not None:
                packet.stream = stream
                out.mux(packet)
    data = whole.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    take = tv.read_video(cut)
    assert 0 < take.n_frames < len(weights) - 10
    assert any(f"of the {len(weights)} its header announces: the file looks truncated" in w
               for w in take.warnings), take.warnings
    assert not any("truncated" in w for w in tv.read_video(whole, tv.VideoOptions(stop=30)).warnings)
    assert bpy.ops.facsimile.import_video(filepath=str(cut)) == {"FINISHED"}
