# SPDX-License-Identifier: GPL-3.0-or-later
"""The documentation picture of the artists' training heads (:mod:`model_export.data.artist`).

``python -m model_export.data.artist_figure`` writes ``docs/images/artist_pool.png``: a grid
of random artist pool entries as a modeller would hand them over, each twice: from the front
(re-meshed skin, loose parts) and cut in half down the middle, seen from the character's
left, where the closed eye sockets, the mouth bag, eyeballs and teeth show. Colours: the
outer skin the networks see, the cavity the add-on's finder cuts away before them
(``core.cavities``, red), loose parts (blue) and, in the front view, the wireframe density.
Rendered with matplotlib (painter's algorithm, no OpenGL), like the regions picture.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from blender_addon.core.rig import prepare_head

from . import artist, dataset
from .ict_parts import load_ict_parts
from .regions import load_region_labels

ROOT = Path(__file__).resolve().parents[2]
FIGURE_PATH = ROOT / "docs" / "images" / "artist_pool.png"
SKIN, CAVITY, PART = np.array([0.93, 0.78, 0.66]), np.array([0.85, 0.15, 0.15]), np.array([0.35, 0.55, 0.90])


def _draw(ax, points, faces, colors, sx, sy, look, two_sided=False, edges=False):
    from matplotlib.collections import PolyCollection

    corners = points[faces]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    facing = -(normals @ look)
    if two_sided:
        facing = np.abs(facing)
    visible = np.flatnonzero(facing > 0)
    order = visible[np.argsort(-(corners[visible].mean(axis=1) @ look))]
    shade = 0.3 + 0.7 * facing[order, None]
    ax.add_collection(PolyCollection(corners[order][:, :, [sx, sy]], facecolors=np.clip(colors[order] * shade, 0, 1),
                                     edgecolors=(0, 0, 0, 0.15) if edges else "none", linewidths=0.15,
                                     antialiased=False))
    pad = 0.03 * np.ptp(points, axis=0).max()
    ax.set_xlim(points[:, sx].min() - pad, points[:, sx].max() + pad)
    ax.set_ylim(points[:, sy].min() - pad, points[:, sy].max() + pad)
    ax.set_aspect("equal")
    ax.set_axis_off()


def sample_heads(n: int, seed: int = 7):
    """``n`` artist heads: ``(spec, verts, faces, vertex colours)``; cavities and closed
    sockets alternate so the grid shows both."""
    labels = load_region_labels()
    parts = load_ict_parts(labels)
    heads = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        spec = artist.random_spec(rng)
        spec.eyes = spec.mouth = ("closed", "open")[i % 2]
        verts, faces, _, _ = artist.artist_mesh(parts, spec, dataset.random_identity(rng), rng)
        head = prepare_head(verts, faces, cavities=True)
        color = np.where(head.skin[:, None], SKIN, PART)
        color[head.cavity] = CAVITY
        heads.append((spec, verts, faces, color))
    return heads


def render(path: Path = FIGURE_PATH, n: int = 12, columns: int = 6, dpi: int = 110) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heads = sample_heads(n)
    rows = 2 * int(np.ceil(n / columns))
    figure = Figure(figsize=(2.6 * columns, 2.9 * rows))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, columns)
    for i, (spec, verts, faces, color) in enumerate(heads):
        r, c = 2 * (i // columns), i % columns
        face_color = color[faces].mean(axis=1)
        _draw(axes[r, c], verts, faces, face_color, 0, 2, np.array([0.0, 1.0, 0.0]), edges=spec.density == "low")
        # The right half (x < 0) seen from the character's left: inside the head.
        cut = faces[(verts[faces][:, :, 0] < 0.0).all(1)]
        _draw(axes[r + 1, c], verts, cut, color[cut].mean(axis=1), 1, 2, np.array([-1.0, 0.0, 0.0]), two_sided=True)
        items = [f"{k} {v:.2f}" for k, v in spec.warp.items()] or [f"proportions: {spec.proportions}"]
        warp = ", ".join(items[:3]) + ("\n" + ", ".join(items[3:]) if len(items) > 3 else "")
        axes[r, c].set_title(f"{spec.crop}, {spec.density} ({len(verts)} vertices)\n"
                             f"eyes/mouth {spec.eyes}; eyeballs {spec.eyeballs}; teeth {spec.mouth_parts}",
                             fontsize=6.5)
        axes[r + 1, c].set_title(f"pitch {spec.pitch_deg:+.0f}°; {warp}", fontsize=6)
    for ax in axes.ravel()[2 * n:]:
        ax.set_axis_off()
    for r in range(rows):
        for c in range(columns):
            if not axes[r, c].collections:
                axes[r, c].set_axis_off()
    figure.suptitle("Artists' training heads (model_export.data.artist): front, and cut down the middle. "
                    "Red: cavity cut away before the networks; blue: loose parts; tan: the outer skin", fontsize=9)
    figure.subplots_adjust(left=0.01, right=0.99, top=0.93, bottom=0.01, wspace=0.05, hspace=0.35)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=FIGURE_PATH)
    args = parser.parse_args(argv)
    print(render(args.out))


if __name__ == "__main__":
    main()
