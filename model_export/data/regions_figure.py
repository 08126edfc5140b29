# SPDX-License-Identifier: GPL-3.0-or-later
"""The documentation picture of the facial regions: the ICT head coloured by region.

A small software renderer on matplotlib (no OpenGL, so it runs on CI and headless
machines): flat-shaded triangles drawn back to front (painter's algorithm) after dropping
those facing away, which is exact enough for a convex-ish head at this resolution.
``python -m model_export.data.regions --figure`` writes ``docs/images/regions.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blender_addon.core.regions import REGION_NAMES

# L and R share a hue (R lighter), so pairs read as pairs and sides stay distinguishable.
PALETTE: dict[str, tuple[float, float, float]] = {
    "scalp": (0.87, 0.83, 0.68), "forehead": (0.98, 0.68, 0.45), "glabella": (0.80, 0.25, 0.30),
    "brow_L": (0.50, 0.30, 0.12), "brow_R": (0.72, 0.52, 0.30),
    "upper_lid_L": (0.12, 0.35, 0.85), "upper_lid_R": (0.45, 0.62, 0.98),
    "lower_lid_L": (0.00, 0.60, 0.62), "lower_lid_R": (0.35, 0.85, 0.85),
    "nose": (0.95, 0.45, 0.72),
    "cheek_L": (0.25, 0.62, 0.18), "cheek_R": (0.58, 0.85, 0.42),
    "nasolabial_L": (0.50, 0.22, 0.70), "nasolabial_R": (0.74, 0.55, 0.92),
    "upper_lip": (0.88, 0.12, 0.12), "lower_lip": (0.96, 0.55, 0.08),
    "mouth_corner_L": (0.92, 0.80, 0.05), "mouth_corner_R": (1.00, 0.93, 0.50),
    "chin": (0.40, 0.42, 0.80),
    "jaw_L": (0.12, 0.42, 0.42), "jaw_R": (0.40, 0.70, 0.66),
    "ear_L": (0.62, 0.32, 0.45), "ear_R": (0.85, 0.58, 0.70),
    "neck": (0.66, 0.66, 0.68),
}

# Camera directions (where the camera looks) and screen axes, in Blender's frame.
VIEWS: dict[str, tuple[np.ndarray, int, int]] = {
    "front": (np.array([0.0, 1.0, 0.0]), 0, 2),    # from -Y: +X (character's left) to the right
    "side": (np.array([-1.0, 0.0, 0.0]), 1, 2),    # from +X: the face looks to the left
}


def triangle_labels(faces: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A triangle takes the label most of its corners have (the first corner's on a 3-way tie)."""
    a, b, c = labels[faces].T
    return np.where((a == b) | (a == c), a, np.where(b == c, b, a))


def draw_mesh(ax, points: np.ndarray, faces: np.ndarray, face_colors: np.ndarray,
              view: str) -> None:
    """Flat-shaded, back-face-culled, depth-sorted triangles of ``points`` on ``ax``."""
    from matplotlib.collections import PolyCollection

    look, sx, sy = VIEWS[view]
    corners = points[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    facing = -(normals @ look)                     # ICT's triangles wind outward
    visible = np.flatnonzero(facing > 0)
    depth = corners[visible].mean(axis=1) @ look
    order = visible[np.argsort(-depth)]            # farthest first
    shade = 0.35 + 0.65 * facing[order, None]      # headlight: ambient + Lambert
    polygons = corners[order][:, :, [sx, sy]]
    ax.add_collection(PolyCollection(polygons, facecolors=np.clip(face_colors[order] * shade, 0, 1),
                                     edgecolors="none", antialiased=False))
    ax.set_xlim(points[:, sx].min() - 0.5, points[:, sx].max() + 0.5)
    ax.set_ylim(points[:, sy].min() - 0.5, points[:, sy].max() + 0.5)
    ax.set_aspect("equal")
    ax.set_axis_off()


def render_region_figure(points: np.ndarray, faces: np.ndarray, labels: np.ndarray,
                         path: Path, names: tuple[str, ...] = REGION_NAMES, dpi: int = 130) -> Path:
    """Front and side views of the mesh coloured by region, with a legend; writes ``path``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colors = np.array([PALETTE[name] for name in names])
    face_colors = colors[triangle_labels(faces, np.asarray(labels, np.int64))]
    points = np.asarray(points, np.float64)

    figure = Figure(figsize=(13, 6.5))
    FigureCanvasAgg(figure)
    front, side = figure.subplots(1, 2, gridspec_kw={"wspace": 0.02})
    draw_mesh(front, points, faces, face_colors, "front")
    draw_mesh(side, points, faces, face_colors, "side")
    front.set_title("front", fontsize=10)
    side.set_title("side (character's left)", fontsize=10)
    counts = np.bincount(np.asarray(labels, np.int64), minlength=len(names))
    handles = [Patch(color=colors[i], label=f"{name} ({counts[i]})")
               for i, name in enumerate(names)]
    figure.legend(handles=handles, loc="center right", fontsize=8, frameon=False,
                  title="region (ICT vertices)", title_fontsize=9)
    figure.subplots_adjust(left=0.0, right=0.84, top=0.94, bottom=0.02)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path

