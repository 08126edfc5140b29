# SPDX-License-Identifier: GPL-3.0-or-later
"""Headless renders in the bpy module, and contact sheets composed with numpy.

Cycles on the CPU (EEVEE and Workbench need a GPU context the bpy module does not have
headless), small and with few samples plus denoising, so a sheet of 8 frames takes
seconds. Images go through files and ``bpy.data.images`` (the Render Result has no
readable pixels in background mode); the sheet is saved through ``bpy.data.images`` too,
so nothing beyond Blender and numpy is needed. Labels use a built-in 3x5 pixel font.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import bpy
import numpy as np

# 3x5 glyphs, rows top to bottom ('#' = ink).
_FONT = {
    "A": "###/#.#/###/#.#/#.#", "B": "##./#.#/##./#.#/##.", "C": "###/#../#../#../###",
    "D": "##./#.#/#.#/#.#/##.", "E": "###/#../##./#../###", "F": "###/#../##./#../#..",
    "G": "###/#../#.#/#.#/###", "H": "#.#/#.#/###/#.#/#.#", "I": "###/.#./.#./.#./###",
    "J": "..#/..#/..#/#.#/###", "K": "#.#/#.#/##./#.#/#.#", "L": "#../#../#../#../###",
    "M": "#.#/###/###/#.#/#.#", "N": "##./#.#/#.#/#.#/#.#", "O": "###/#.#/#.#/#.#/###",
    "P": "###/#.#/###/#../#..", "Q": "###/#.#/#.#/###/..#", "R": "##./#.#/##./#.#/#.#",
    "S": "###/#../###/..#/###", "T": "###/.#./.#./.#./.#.", "U": "#.#/#.#/#.#/#.#/###",
    "V": "#.#/#.#/#.#/#.#/.#.", "W": "#.#/#.#/###/###/#.#", "X": "#.#/#.#/.#./#.#/#.#",
    "Y": "#.#/#.#/.#./.#./.#.", "Z": "###/..#/.#./#../###", "0": "###/#.#/#.#/#.#/###",
    "1": ".#./##./.#./.#./###", "2": "###/..#/###/#../###", "3": "###/..#/###/..#/###",
    "4": "#.#/#.#/###/..#/..#", "5": "###/#../###/..#/###", "6": "###/#../###/#.#/###",
    "7": "###/..#/..#/..#/..#", "8": "###/#.#/###/#.#/###", "9": "###/#.#/###/..#/###",
    " ": ".../.../.../.../...", "-": ".../.../###/.../...", ":": ".../.#./.../.#./...",
}


def setup(scene, size: int = 192, samples: int = 8) -> None:
    """Cycles on the CPU, ``size`` pixels square, ``samples`` samples, denoised if possible."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = True
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 1   # renders are a side job: leave the other core alone
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    if scene.world is None:
        scene.world = bpy.data.worlds.new("Facsimile World")
    scene.world.color = (0.05, 0.05, 0.06)


def frame_front(scene, obj, margin: float = 1.15):
    """An orthographic camera looking at ``obj`` from the front (-Y), plus a key light."""
    co = np.empty(len(obj.data.vertices) * 3, np.float32)
    obj.data.vertices.foreach_get("co", co)
    matrix = np.array(obj.matrix_world)
    world = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    lo, hi = world.min(axis=0), world.max(axis=0)
    center = 0.5 * (lo + hi)
    extent = float(max(hi[0] - lo[0], hi[2] - lo[2])) * margin
    cam_data = bpy.data.cameras.new("Facsimile Camera")
    cam_data.type, cam_data.ortho_scale = "ORTHO", extent
    cam_data.clip_end = 100.0 * extent
    cam = bpy.data.objects.new("Facsimile Camera", cam_data)
    cam.location = (center[0], lo[1] - 5.0 * extent, center[2])
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.collection.objects.link(cam)
    scene.camera = cam
    sun_data = bpy.data.lights.new("Facsimile Key", "SUN")
    sun_data.energy = 3.0
    sun = bpy.data.objects.new("Facsimile Key", sun_data)
    sun.rotation_euler = (math.radians(60), math.radians(-25), math.radians(-30))
    scene.collection.objects.link(sun)
    return cam


def load_png(path) -> np.ndarray:
    """(H, W, 4) float32, top row first."""
    image = bpy.data.images.load(str(path), check_existing=False)
    try:
        w, h = image.size
        pixels = np.empty(w * h * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(h, w, 4)[::-1]


def save_png(array: np.ndarray, path) -> Path:
    """Write (H, W, 4) float RGBA (top row first) as a PNG through bpy.data.images."""
    h, w = array.shape[:2]
    image = bpy.data.images.new("Facsimile Sheet", w, h, alpha=True)
    try:
        image.pixels.foreach_set(np.ascontiguousarray(array[::-1], np.float32).ravel())
        image.filepath_raw = str(path)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return Path(path)


def render_frames(scene, frames) -> list:
    """Render each scene frame; returns (H, W, 4) arrays. The current frame is restored."""
    current = scene.frame_current
    images = []
    with tempfile.TemporaryDirectory(prefix="facsimile-render-") as tmp:
        try:
            for frame in frames:
                scene.frame_set(int(frame))
                scene.render.filepath = str(Path(tmp) / f"f{int(frame):05d}.png")
                bpy.ops.render.render(write_still=True)
                images.append(load_png(scene.render.filepath))
        finally:
            scene.frame_set(current)
    return images


def draw_text(image: np.ndarray, text: str, x: int, y: int, scale: int = 2,
              color=(1.0, 1.0, 1.0, 1.0)) -> None:
    """Stamp ``text`` (upper-cased; unknown characters become spaces) at (x, y) from the top left."""
    for i, char in enumerate(text.upper()):
        glyph = _FONT.get(char, _FONT[" "]).split("/")
        for row, bits in enumerate(glyph):
            for col, bit in enumerate(bits):
                if bit == "#":
                    top, left = y + row * scale, x + (4 * i + col) * scale
                    image[top:top + scale, left:left + scale] = color


def contact_sheet(images, labels=None, columns: int = 4, pad: int = 4) -> np.ndarray:
    """Tile equally sized (H, W, 4) images in a grid with optional labels under each."""
    h, w = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    label_h = 14 if labels else 0
    sheet = np.zeros((rows * (h + label_h + pad) + pad, columns * (w + pad) + pad, 4), np.float32)
    sheet[..., 3] = 1.0
    sheet[..., :3] = 0.12
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + label_h + pad), pad + c * (w + pad)
        sheet[top:top + h, left:left + w] = image
        if labels:
            draw_text(sheet, labels[i], left + 2, top + h + 2)
    return sheet
