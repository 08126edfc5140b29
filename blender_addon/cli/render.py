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
    ".": ".../.../.../.../.#.", ",": ".../.../.../.#./#..", "(": "..#/.#./.#./.#./..#",
    ")": "#../.#./.#./.#./#..", "/": "..#/..#/.#./#../#..", "%": "#.#/..#/.#./#../#.#",
    "+": ".../.#./###/.#./...", "=": ".../###/.../###/...", "_": ".../.../.../.../###",
    "'": ".#./.#./.../.../...", "?": "###/..#/.##/.../.#.", "!": ".#./.#./.#./.../.#.",
}


def setup(scene, size=192, samples: int = 8) -> None:
    """Cycles on the CPU, ``size`` pixels square (or a (width, height) pair), ``samples``
    samples, denoised if possible."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.use_denoising = True
    width, height = (size, size) if isinstance(size, int) else size
    scene.render.resolution_x, scene.render.resolution_y = int(width), int(height)
    scene.render.resolution_percentage = 100
    scene.render.threads_mode = "FIXED"
    scene.render.threads = 1   # renders are a side job: leave the other core alone
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    if scene.world is None:
        scene.world = bpy.data.worlds.new("Facsimile World")
    scene.world.color = (0.05, 0.05, 0.06)


def _world_bounds(objs) -> tuple[np.ndarray, np.ndarray]:
    lows, highs = [], []
    for obj in objs:
        co = np.empty(len(obj.data.vertices) * 3, np.float32)
        obj.data.vertices.foreach_get("co", co)
        matrix = np.array(obj.matrix_world)
        world = co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
        lows.append(world.min(axis=0))
        highs.append(world.max(axis=0))
    return np.min(lows, axis=0), np.max(highs, axis=0)


def _object(name: str, new_data):
    """The scene object ``name``, created with ``new_data(name)`` the first time (so framing
    twice moves one camera instead of adding another)."""
    obj = bpy.data.objects.get(name)
    if obj is None:
        obj = bpy.data.objects.new(name, new_data(name))
    if obj.name not in bpy.context.scene.collection.objects:
        bpy.context.scene.collection.objects.link(obj)
    return obj


def frame_front(scene, objs, margin: float = 1.15, bottom: float = 0.0, box=None):
    """An orthographic camera looking at ``objs`` (one object or several) from the front
    (-Y), plus a key light and a fill. ``bottom`` leaves out that fraction of their height
    from below (a neck); ``box`` = (left, right, bottom, top) fractions of their width and
    height frames a part of them (a face without the skull)."""
    if not isinstance(objs, (list, tuple)):
        objs = [objs]
    lo, hi = _world_bounds(objs)
    size = hi - lo
    if box is not None:
        lo, hi = lo.copy(), hi.copy()
        lo[0], hi[0] = lo[0] + box[0] * size[0], lo[0] + box[1] * size[0]
        lo[2], hi[2] = lo[2] + box[2] * size[2], lo[2] + box[3] * size[2]
    lo[2] += bottom * (hi[2] - lo[2])
    center = 0.5 * (lo + hi)
    # The orthographic scale spans the wider side of the image.
    aspect = scene.render.resolution_x / scene.render.resolution_y
    width, height = float(hi[0] - lo[0]), float(hi[2] - lo[2])
    extent = (max(width, height * aspect) if aspect >= 1 else max(width / aspect, height)) * margin
    cam = _object("Facsimile Camera", lambda name: bpy.data.cameras.new(name))
    cam.data.type, cam.data.ortho_scale = "ORTHO", extent
    cam.data.clip_end = 100.0 * extent
    cam.location = (center[0], lo[1] - 5.0 * extent, center[2])
    cam.rotation_euler = (math.pi / 2, 0.0, 0.0)
    scene.camera = cam
    # A soft key from the front, above and to the side, and a dim fill from the other side.
    for name, energy, angle, rotation in (("Facsimile Key", 3.0, 0.3, (60, -10, -25)),
                                          ("Facsimile Fill", 0.8, 0.6, (75, 20, 40))):
        sun = _object(name, lambda n: bpy.data.lights.new(n, "SUN"))
        sun.data.energy, sun.data.angle = energy, angle
        sun.rotation_euler = tuple(math.radians(a) for a in rotation)
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


def contact_sheet(images, labels=None, columns: int = 4, pad: int = 4, scale: int = 2) -> np.ndarray:
    """Tile equally sized (H, W, 4) images in a grid with optional labels under each
    (``scale`` pixels per font pixel)."""
    h, w = images[0].shape[:2]
    rows = math.ceil(len(images) / columns)
    label_h = 7 * scale + 4 if labels else 0
    sheet = np.zeros((rows * (h + label_h + pad) + pad, columns * (w + pad) + pad, 4), np.float32)
    sheet[..., 3] = 1.0
    sheet[..., :3] = 0.12
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + label_h + pad), pad + c * (w + pad)
        sheet[top:top + h, left:left + w] = image
        if labels:
            draw_text(sheet, labels[i], left + 2, top + h + scale + 2, scale)
    return sheet
