# SPDX-License-Identifier: GPL-3.0-or-later
"""A performance video the project makes itself: the Face Cap head, animated through its own
artist-made ARKit shape keys with known weights, rendered in headless Blender and encoded
to H.264 mp4 by Blender's own FFmpeg.

The head is painted with vertex colours (skin, eyebrows, lips, eyes with iris and pupil,
teeth, a dark mouth cavity) and lit by Workbench's studio light with shadows and cavity,
which is enough for MediaPipe's detector and landmarker to treat it as a face. Workbench
renders without a GPU here (software OpenGL), about 10 frames per second at 320x320.

Used by tests/test_video*.py and by tools/video_docs.py (the docs picture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import bpy
import numpy as np

from blender_helpers import addon_module, facecap_object

FPS = 30
# Channels the known performance drives and the tests check.
DRIVEN = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight",
          "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "browDownLeft", "browDownRight")


@dataclass
class Performance:
    """Known ARKit weights (T, len(names)) and head rotation (T, 3) pitch/yaw/roll, radians."""

    names: tuple
    weights: np.ndarray
    head: np.ndarray
    fps: int = FPS

    @property
    def frames(self) -> int:
        return len(self.weights)

    def channel(self, name: str) -> np.ndarray:
        return self.weights[:, self.names.index(name)]


def _bump(t, centre, width):
    """Smooth 0 -> 1 -> 0 over ``width`` seconds around ``centre`` (raised cosine)."""
    x = np.clip((t - centre) / width * 2.0, -1.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


def known_performance(seconds: float = 8.0, fps: int = FPS, neutral_seconds: float = 1.0,
                      head_motion: bool = True) -> Performance:
    """Jaw, blinks (each eye alone and both), smiles (each side alone and both), brows, and a
    small head motion; the first ``neutral_seconds`` are a held neutral face."""
    t = np.arange(int(round(seconds * fps))) / fps
    n0 = neutral_seconds
    w = {name: np.zeros_like(t) for name in DRIVEN}
    # jaw: three openings of different size and speed
    w["jawOpen"] = 0.75 * _bump(t, n0 + 0.8, 1.0) + 0.45 * _bump(t, n0 + 3.3, 0.6) + 0.9 * _bump(t, n0 + 5.6, 1.2)
    # blinks: 0.27 s each; left alone, right alone, both, and a longer left wink
    blink = 0.27
    w["eyeBlinkLeft"] = (_bump(t, n0 + 0.5, blink) + _bump(t, n0 + 2.4, blink) + _bump(t, n0 + 4.6, 0.6)
                         + _bump(t, n0 + 6.5, blink))
    w["eyeBlinkRight"] = _bump(t, n0 + 1.5, blink) + _bump(t, n0 + 2.4, blink) + _bump(t, n0 + 5.1, 0.6)
    # smiles: left alone, right alone, both
    w["mouthSmileLeft"] = 0.9 * _bump(t, n0 + 1.4, 1.1) + 0.8 * _bump(t, n0 + 4.2, 1.0)
    w["mouthSmileRight"] = 0.9 * _bump(t, n0 + 2.8, 1.1) + 0.8 * _bump(t, n0 + 4.2, 1.0)
    # brows: raise, one side, frown
    w["browInnerUp"] = 0.9 * _bump(t, n0 + 0.9, 1.0) + 0.6 * _bump(t, n0 + 5.0, 0.8)
    w["browOuterUpLeft"] = 0.8 * _bump(t, n0 + 0.9, 1.0) + 0.9 * _bump(t, n0 + 3.0, 0.9)
    w["browOuterUpRight"] = 0.8 * _bump(t, n0 + 0.9, 1.0)
    w["browDownLeft"] = w["browDownRight"] = 0.8 * _bump(t, n0 + 6.2, 1.0)
    weights = np.clip(np.stack([w[n] for n in DRIVEN], axis=1), 0.0, 1.0)
    head = np.zeros((len(t), 3))
    if head_motion:
        ramp = np.clip((t - n0) / 0.5, 0.0, 1.0)
        head[:, 0] = np.radians(6.0) * np.sin(2 * np.pi * (t - n0) / 3.1) * ramp     # pitch
        head[:, 1] = np.radians(10.0) * np.sin(2 * np.pi * (t - n0) / 4.3) * ramp    # yaw
        head[:, 2] = np.radians(5.0) * np.sin(2 * np.pi * (t - n0) / 2.3) * ramp     # roll
    return Performance(DRIVEN, weights.astype(np.float32), head, fps)


# ---------------------------------------------------------------------------------------------
# The head
# ---------------------------------------------------------------------------------------------

SKIN = (0.80, 0.55, 0.43)
BROW = (0.10, 0.06, 0.04)
LIP = (0.62, 0.26, 0.25)
SCLERA = (0.92, 0.90, 0.86)
IRIS = (0.22, 0.13, 0.07)
PUPIL = (0.01, 0.01, 0.01)
TEETH = (0.93, 0.90, 0.82)
CAVITY = (0.16, 0.03, 0.03)


def _paint(npz_path) -> np.ndarray:
    """(V, 3) colours for the head + eyes + teeth vertices, in facecap's own frame (cm,
    Y up, +Z forward), placed with the shapes' own motion (brows, lips)."""
    with np.load(npz_path) as d:
        v = d["neutral"].astype(np.float64)
        names = [str(n) for n in d["names"]]
        deltas = d["deltas"]
        eyes = [(d["eyeL_verts"], d["eye_center_L"]), (d["eyeR_verts"], d["eye_center_R"])]
        teeth = d["teeth_verts"]
    mag = {n: np.linalg.norm(deltas[i], axis=1) for i, n in enumerate(names)}
    col = np.tile(np.array(SKIN), (len(v), 1))
    # Eyebrows: an arch over each eye, on the front of the face.
    for side in (-1.0, 1.0):
        cx = side * 3.35
        dx = v[:, 0] - cx
        arch = 2.61 + 1.75 - 0.07 * dx ** 2 + 0.12 * side * dx
        band = (np.abs(dx) < 2.6) & (np.abs(v[:, 1] - arch) < 0.55 - 0.08 * np.abs(dx)) & (v[:, 2] > 2.0)
        col[band] = BROW
    # Lips: what rolling the lips in moves most, around the mouth.
    roll = np.maximum(mag["mouthRollLower"], mag["mouthRollUpper"])
    lips = (roll > 0.45 * roll.max()) & (np.abs(v[:, 0]) < 2.5) & (v[:, 1] > -5.6) & (v[:, 1] < -3.7) & (v[:, 2] > 4.0)
    col[lips] = LIP
    parts = [col]
    for verts, centre in eyes:
        p = verts - centre
        cos = p[:, 2] / np.maximum(np.linalg.norm(p, axis=1), 1e-9)
        c = np.tile(np.array(SCLERA), (len(verts), 1))
        c[cos > 0.90] = IRIS
        c[cos > 0.975] = PUPIL
        parts.append(c)
    parts.append(np.tile(np.array(TEETH), (len(teeth), 1)))
    return np.concatenate(parts)


def build_head(npz_path):
    """The Face Cap head (+ eyes, teeth, a dark mouth cavity) with its own ARKit shape keys
    named in ARKit camelCase; returns the object."""
    arkit = addon_module("core.arkit")
    obj, gt, names, n_skin = facecap_object(npz_path)
    obj.name = "PerformerHead"
    basis = obj.shape_key_add(name="Basis", from_mix=False)
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    basis.data.foreach_get("co", co)
    co = co.reshape(-1, 3)
    for i, raw in enumerate(names):
        kb = obj.shape_key_add(name=arkit.normalize_name(raw) or raw, from_mix=False)
        moved = co.copy()
        moved[:n_skin] += gt[i]
        kb.data.foreach_set("co", moved.ravel())
        kb.value = 0.0          # a new key block starts at 1.0 in Blender 5
    colours = _paint(npz_path)
    attr = obj.data.color_attributes.new("Paint", "FLOAT_COLOR", "POINT")
    rgba = np.c_[colours, np.ones(len(colours))].astype(np.float32)
    attr.data.foreach_set("color", rgba.ravel())
    obj.data.color_attributes.active_color = attr
    for poly in obj.data.polygons:
        poly.use_smooth = True
    # Mouth cavity: a dark ellipsoid behind the lips, seen when the jaw opens.
    bpy.ops.mesh.primitive_uv_sphere_add(segments=24, ring_count=12, radius=1.0,
                                         location=(0.0, -0.035, -0.048))
    cavity = bpy.context.object
    cavity.name = "MouthCavity"
    cavity.scale = (0.022, 0.02, 0.018)
    cav = cavity.data.color_attributes.new("Paint", "FLOAT_COLOR", "POINT")
    cav.data.foreach_set("color", np.tile(np.r_[CAVITY, 1.0], len(cavity.data.vertices)).astype(np.float32))
    cavity.parent = obj
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    return obj


def setup_render(scene, size: int = 320, fps: int = FPS) -> None:
    """Camera, Workbench lighting and H.264 output for a square ``size`` render."""
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.fps = fps
    scene.render.fps_base = 1.0
    shading = scene.display.shading
    shading.light = "STUDIO"
    shading.color_type = "VERTEX"
    shading.show_shadows = True
    shading.shadow_intensity = 0.35
    shading.show_cavity = True
    shading.cavity_type = "WORLD"
    shading.show_specular_highlight = True
    world = bpy.data.worlds.new("VideoWorld")
    world.color = (0.30, 0.32, 0.36)
    scene.world = world
    scene.display.render_aa = "FXAA"   # multi-sample AA costs ~1 s a frame in software GL
    scene.view_settings.view_transform = "Standard"
    cam_data = bpy.data.cameras.new("VideoCamera")
    cam_data.lens = 85.0
    cam = bpy.data.objects.new("VideoCamera", cam_data)
    scene.collection.objects.link(cam)
    # The face looks down -Y; the camera sits in front of it at eye-to-mouth height.
    cam.location = (0.0, -0.75, 0.005)
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.camera = cam


def animate(obj, performance: Performance, start: int = 1) -> None:
    """Keyframe the shape keys and the head rotation of ``obj`` on every frame."""
    keys = obj.data.shape_keys
    frames = start + np.arange(performance.frames, dtype=np.float32)
    for j, name in enumerate(performance.names):
        kb = keys.key_blocks[name]
        kb.value = float(performance.weights[0, j])
        kb.keyframe_insert("value", frame=start)
    for axis in range(3):
        obj.rotation_euler[axis] = 0.0
        obj.keyframe_insert("rotation_euler", index=axis, frame=start)
    # Write every key at once through the F-curves (fast, no per-frame operator calls).
    _set_curves(keys.animation_data, [f'key_blocks["{n}"].value' for n in performance.names],
                [0] * len(performance.names), frames, performance.weights.T)
    pitch, yaw, roll = performance.head.T
    # ARKit-style (pitch, yaw, roll) -> Blender Euler of a head facing -Y: X=pitch, Y=-roll, Z=yaw.
    euler = np.stack([pitch, -roll, yaw])
    obj.rotation_mode = "YXZ"   # R = Rz(yaw) @ Rx(pitch) @ Ry(-roll): yaw outermost, as in the Take
    _set_curves(obj.animation_data, ["rotation_euler"] * 3, [0, 1, 2], frames, euler)


def _set_curves(anim_data, paths, indices, frames, values) -> None:
    for path, index, vals in zip(paths, indices, values):
        fc = _fcurve(anim_data, path, index)
        fc.keyframe_points.clear()
        fc.keyframe_points.add(len(frames))
        co = np.stack([frames, np.asarray(vals, np.float32)], axis=1).ravel()
        fc.keyframe_points.foreach_set("co", co)
        fc.keyframe_points.foreach_set("interpolation", [0] * len(frames))  # CONSTANT: exact per frame
        fc.update()


def _fcurve(anim_data, path, index):
    """The F-curve for (path, index) in the action slot ``anim_data`` animates, across
    Blender 4.x / 5.x action layouts (slotted actions: one action may serve several IDs)."""
    action = anim_data.action
    slot = getattr(anim_data, "action_slot", None)
    if slot is not None:
        from bpy_extras import anim_utils

        curves = anim_utils.action_get_channelbag_for_slot(action, slot).fcurves
    else:
        curves = action.fcurves
    fc = curves.find(path, index=index)
    if fc is None:
        fc = curves.new(path, index=index)
    return fc


def render_video(path, npz_path, performance: Performance, size: int = 320) -> Path:
    """Render ``performance`` on the Face Cap head to an H.264 mp4 at ``path``."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    head = build_head(npz_path)
    setup_render(scene, size, performance.fps)
    animate(head, performance)
    scene.frame_start, scene.frame_end = 1, performance.frames
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):
        settings.media_type = "VIDEO"
    settings.file_format = "FFMPEG"
    ff = scene.render.ffmpeg
    ff.format = "MPEG4"
    ff.codec = "H264"
    ff.constant_rate_factor = "HIGH"
    ff.gopsize = 12
    path = Path(path)
    scene.render.filepath = str(path)
    scene.render.use_file_extension = False
    bpy.ops.render.render(animation=True)
    if not path.exists():
        raise RuntimeError(f"Blender did not write {path}")
    return path


def render_still(path, npz_path, weights: dict, size: int = 320, head=(0.0, 0.0, 0.0)) -> Path:
    """One PNG of the head with the given ARKit weights (for pictures and quick checks)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    obj = build_head(npz_path)
    setup_render(scene, size)
    for name, value in weights.items():
        obj.data.shape_keys.key_blocks[name].value = value
    obj.rotation_mode = "YXZ"
    obj.rotation_euler = (head[0], -head[2], head[1])
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return Path(path)
