# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo's embedded Rocketbox head, as the installed extension ships it, and the sheet's font."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from bl_ext.user_default.facsimile.cli import demo, render


def _peak(obj, name: str) -> float:
    """Largest displacement of one shape key, as a fraction of the mesh's width."""
    keys = obj.data.shape_keys.key_blocks
    n = len(obj.data.vertices)
    basis, co = np.empty(n * 3, np.float32), np.empty(n * 3, np.float32)
    keys[0].data.foreach_get("co", basis)
    keys[name].data.foreach_get("co", co)
    width = np.ptp(basis.reshape(-1, 3)[:, 0])
    return float(np.linalg.norm((co - basis).reshape(-1, 3), axis=1).max() / width)


def test_asset_and_credit_ship_inside_the_extension():
    folder = Path(demo.ASSET).parent
    assert demo.ASSET.is_file() and demo.ASSET.stat().st_size < 64 * 1024
    credits = (folder / "CREDITS.md").read_text()
    assert "Microsoft Rocketbox" in credits and "MIT License" in credits


def test_default_head_is_a_human_face_toward_minus_y_with_visible_shapes(addon):
    head = demo.default_head()
    assert len(head.data.vertices) == 1593 and len(head.data.polygons) == 3120
    assert {m.name for m in head.data.materials} == {"DemoSkin", "DemoEyeWhite", "DemoIris"}
    bpy.context.view_layer.objects.active = head
    head.select_set(True)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    # Shapes an animator can see (Suzanne's jaw moves 0.6 % of its width).
    assert _peak(head, "jawOpen") > 0.05
    assert _peak(head, "eyeBlinkLeft") > 0.01
    assert _peak(head, "mouthSmileLeft") > 0.02


def test_font_draws_decimal_points_and_brackets():
    for text in ("0.7", "(", ")", "%"):
        image = np.zeros((20, 40, 4), np.float32)
        render.draw_text(image, text, 0, 0, scale=2)
        assert image[..., 0].sum() > 0, text
    blank, dot = np.zeros((20, 40, 4), np.float32), np.zeros((20, 40, 4), np.float32)
    render.draw_text(blank, "0 7", 0, 0)
    render.draw_text(dot, "0.7", 0, 0)
    assert dot[..., 0].sum() > blank[..., 0].sum()
