# SPDX-License-Identifier: GPL-3.0-or-later
"""The video workflow picture for docs/video.md: a video frame, its tracked landmarks and
the pose it drives on another character, side by side, for a few frames.

    python -m tools.video_docs [VIDEO] [--frames 10,72,132,198] [--out docs/images/video_workflow.png]

Without VIDEO the project's own test performance is used (tests/video_scene.py: the Face
Cap head with known ARKit weights, rendered in Blender; cached in .cache/test_video). The
target is Suzanne, rigged by ``facsimile.rig`` and posed through the imported take object
(the same path as the UI: ``facsimile.import_video``), rendered with Workbench.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("FACSIMILE_DATA", ROOT.parent / "shared" / "data"))


def _test_video() -> Path:
    sys.path.insert(0, str(ROOT / "tests" / "blender"))
    import blender_helpers

    blender_helpers.ADDON_MODULE = "blender_addon"   # the source tree, as this tool runs in .venv
    # The test suite's clips (known-<hash>.mp4), else the one rendered here before.
    folder = ROOT / ".cache" / "test_video"
    cached = sorted(folder.glob("known-*.mp4")) + sorted(folder.glob("docs-known.mp4"))
    if cached:
        return cached[-1]
    import video_scene

    out = ROOT / ".cache" / "test_video" / "docs-known.mp4"
    out.parent.mkdir(parents=True, exist_ok=True)
    return video_scene.render_video(out, DATA / "facecap" / "facecap.npz", video_scene.known_performance())


def _dots(image, points, color, radius=1):
    h, w = image.shape[:2]
    for x, y in points:
        xi, yi = int(round(x)), int(round(y))
        image[max(yi - radius, 0):min(yi + radius + 1, h), max(xi - radius, 0):min(xi + radius + 1, w)] = color


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", nargs="?")
    parser.add_argument("--frames", default="10,72,132,198")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "video_workflow.png"))
    parser.add_argument("--size", type=int, default=320)
    args = parser.parse_args(argv)
    os.environ.setdefault("HOME", tempfile.mkdtemp(prefix="facsimile-docs-"))

    import bpy  # first: it makes Blender's own modules (addon_utils) importable
    import numpy as np

    from blender_addon.core.video import take as tv
    from blender_addon.cli import render

    video = Path(args.video) if args.video else _test_video()
    frames = [int(f) for f in args.frames.split(",")]
    track = tv.track_video(video, tv.VideoOptions(keep_landmarks=True))
    import av

    with av.open(str(video)) as container:
        pictures = [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0))
                    if i in frames]

    bpy.ops.wm.read_factory_settings(use_empty=True)
    import addon_utils as au

    au.enable("blender_addon", default_set=True)
    scene = bpy.context.scene
    scene.render.fps = int(round(track.fps or 30))
    bpy.ops.mesh.primitive_monkey_add(size=1.0)
    target = bpy.context.object
    target.name = "Target"
    bpy.ops.object.shade_smooth()
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    bpy.ops.facsimile.import_video(filepath=str(video), start_frame=1, use_neutral=True,
                                   neutral_first=1, neutral_last=25)
    take_obj = scene.facsimile_drive.source
    keys = target.data.shape_keys.key_blocks
    # Pose the target from the take object (what preview and bake read), head included.
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.show_cavity = True
    scene.display.render_aa = "FXAA"
    scene.render.resolution_x = scene.render.resolution_y = args.size
    scene.render.image_settings.file_format = "PNG"
    render.frame_front(scene, target, margin=1.25)
    scene.world = bpy.data.worlds.new("Docs World")
    scene.world.color = (0.30, 0.32, 0.36)
    scene.view_settings.view_transform = "Standard"
    scene.display.shading.show_shadows = True
    scene.display.shading.shadow_intensity = 0.3
    target.rotation_mode = take_obj.rotation_mode
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k, frame in enumerate(frames):
            scene.frame_set(frame + 1)
            for kb in keys[1:]:
                if kb.name in take_obj.keys():
                    kb.value = float(take_obj[kb.name])
            target.rotation_euler = take_obj.rotation_euler
            scene.render.filepath = str(Path(tmp) / f"t{frame}.png")
            bpy.ops.render.render(write_still=True)
            posed = render.load_png(scene.render.filepath)
            rgb = pictures[k].astype(np.float32) / 255.0
            size = posed.shape[0]
            src = np.concatenate([rgb, np.ones(rgb.shape[:2] + (1,), np.float32)], axis=2)
            if src.shape[0] != size:
                idx = (np.arange(size) * src.shape[0] / size).astype(int)
                src = src[idx][:, (np.arange(size) * src.shape[1] / size).astype(int)]
            marked = src.copy()
            scale = size / pictures[k].shape[0]
            pts = track.landmarks[list(track.frames).index(frame)][:, :2] * scale
            _dots(marked, pts[:468], (0.2, 1.0, 0.3, 1.0), 0)
            _dots(marked, pts[468:], (1.0, 0.2, 0.2, 1.0), 1)
            take = tv.take_from_track(track, tv.VideoOptions(neutral_range=(0, 24)))
            w = dict(zip(take.names, take.weights[frame]))
            top = sorted(w, key=lambda n: -w[n])[:2]
            label = " ".join(f"{n[:9]} {w[n]:.1f}" for n in top)
            row = np.concatenate([src, marked, posed], axis=1)
            render.draw_text(row, f"frame {frame}", 6, 6)
            render.draw_text(row, label, size + 6, size - 16)
            rows.append(row)
    sheet = np.concatenate(rows, axis=0)
    out = render.save_png(sheet, args.out)
    print(f"[video_docs] wrote {out}")


if __name__ == "__main__":
    main()
