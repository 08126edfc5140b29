# SPDX-License-Identifier: GPL-3.0-or-later
"""The re-rig workflow: panel options as defaults, Update Rig, Rig All Selected, small-shape warning."""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile.cli import demo
from bl_ext.user_default.facsimile.rig import ops as rig_ops
from blender_helpers import base_coords, monkey_head, snapshot


def _key(obj, name: str) -> np.ndarray:
    kb = obj.data.shape_keys.key_blocks[name]
    co = np.empty(len(kb.points) * 3, np.float32)
    kb.points.foreach_get("co", co)
    return co.reshape(-1, 3)


def _select(*objs) -> None:
    for o in bpy.context.view_layer.objects:
        o.select_set(False)
    for o in objs:
        o.select_set(True)
    bpy.context.view_layer.objects.active = objs[0]


def test_panel_options_are_the_operators_defaults(addon):
    head = demo.default_head()
    _select(head)
    state = bpy.context.scene.facsimile_rig
    state.naming, state.strength = "ARKIT_LR", 0.5
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    keys = head.data.shape_keys.key_blocks
    assert "eyeBlink_L" in keys and "eyeBlinkLeft" not in keys
    half = np.abs(_key(head, "jawOpen") - base_coords(head)).max()
    # A second Rig Face stops on the FX_ groups until the panel says replace them.
    with pytest.raises(RuntimeError, match="Replace FX_ groups' in the Rig panel"):
        bpy.ops.facsimile.rig()
    state.replace_groups, state.strength = True, 1.0
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    full = np.abs(_key(head, "jawOpen") - base_coords(head)).max()
    assert full == pytest.approx(2 * half, rel=1e-3)
    # An option the caller sets still wins over the panel.
    assert bpy.ops.facsimile.generate_shapes(strength=0.25) == {"FINISHED"}
    assert np.abs(_key(head, "jawOpen") - base_coords(head)).max() == pytest.approx(full / 4, rel=1e-3)


def test_update_rig_follows_the_painted_groups_and_keeps_the_artists_keys(addon):
    head = demo.default_head()
    _select(head)
    head.shape_key_add(name="Basis", from_mix=False)
    mine = head.shape_key_add(name="mouthSmileLeft", from_mix=False)
    co = base_coords(head).copy()
    co[:, 2] += 0.01
    mine.points.foreach_set("co", co.ravel())
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    assert rig_ops.owned_keys(head) == set(k.name for k in head.data.shape_keys.key_blocks[1:]) - {"mouthSmileLeft"}
    before = snapshot(head)
    jaw = _key(head, "jawOpen").copy()
    # Paint: the jaw region loses all its weight; Update Rig regenerates from the paint.
    for vg in head.vertex_groups:
        if vg.name.startswith("FX_") and "jaw" in vg.name.lower():
            vg.remove(list(range(len(head.data.vertices))))
    assert bpy.ops.facsimile.update_rig() == {"FINISHED"}
    after = snapshot(head)
    assert not np.allclose(_key(head, "jawOpen"), jaw)
    np.testing.assert_array_equal(after["keys"]["mouthSmileLeft"][0], before["keys"]["mouthSmileLeft"][0])
    assert set(after["keys"]) == set(before["keys"])         # replaced, none added
    assert set(after["groups"]) == set(before["groups"])     # the paint is kept
    # Generate Shapes with its defaults regenerates Facsimile's keys (it used to add 0).
    assert bpy.ops.facsimile.generate_shapes() == {"FINISHED"}


def test_update_rig_needs_fx_groups(addon):
    head = monkey_head()
    _select(head)
    assert not bpy.ops.facsimile.update_rig.poll()


def test_rig_all_selected_rigs_each_mesh_and_names_failures(addon):
    a, b = demo.default_head("A"), monkey_head("B")
    c = monkey_head("C", location=(3, 0, 0))
    c.vertex_groups.new(name="FX_nose")      # refused: groups exist, replace is off
    _select(a, b, c)
    assert bpy.ops.facsimile.rig_selected() == {"FINISHED"}
    assert a.data.shape_keys is not None and b.data.shape_keys is not None
    assert c.data.shape_keys is None


def test_small_shapes_warn_with_a_hint(addon, capfd):
    head = demo.suzanne()     # the demo's Suzanne: its largest shape moves under 1 % of its width
    _select(head)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    out = capfd.readouterr()
    assert "shapes on 'DemoSuzanne' are small" in out.out + out.err, out.out
    assert "Update Rig" in out.out + out.err
    human = demo.default_head()
    _select(human)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    out = capfd.readouterr()
    assert "are small" not in out.out + out.err


def test_import_menu_entries_and_drop_handlers_are_registered(addon):
    assert bpy.types.FileHandler.bl_rna is not None
    handlers = {cls.bl_idname: cls for cls in bpy.types.FileHandler.__subclasses__()}
    take, video = handlers["FACSIMILE_FH_take"], handlers["FACSIMILE_FH_video"]
    assert take.bl_import_operator == "facsimile.import_take" and ".csv" in take.bl_file_extensions
    assert video.bl_import_operator == "facsimile.import_video" and ".mp4" in video.bl_file_extensions
    drawn = [f.__name__ for f in bpy.types.TOPBAR_MT_file_import._dyn_ui_initialize()]
    assert drawn.count("menu_import") == 2
    assert bpy.types.FACSIMILE_PT_video.bl_parent_id == "FACSIMILE_PT_drive"


def test_tighten_keeps_shapes_near_their_peak_and_zero_is_the_default_rig(addon):
    """The Tighten option (core.falloff) from the Rig panel through Update Rig: fewer vertices
    move, the peak keeps its size, and Tighten 0 gives the default rig back exactly."""
    head = demo.default_head()
    _select(head)
    state = bpy.context.scene.facsimile_rig
    assert state.tighten == 0.0
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    assert bpy.ops.facsimile.update_rig() == {"FINISHED"}          # the painted groups' rig, Tighten 0
    base = base_coords(head)
    default = {n: _key(head, n) - base for n in ("jawOpen", "mouthSmileLeft", "noseSneerLeft")}
    state.tighten = 0.3
    assert bpy.ops.facsimile.update_rig() == {"FINISHED"}
    for name, before in default.items():
        after = _key(head, name) - base
        length, kept = np.linalg.norm(before, axis=1), np.linalg.norm(after, axis=1)
        assert (kept > 1e-5).sum() < 0.8 * (length > 1e-5).sum(), name
        assert kept.max() == pytest.approx(length.max(), rel=0.1), name
    state.tighten = 0.0
    assert bpy.ops.facsimile.update_rig() == {"FINISHED"}
    for name, before in default.items():
        assert np.array_equal(_key(head, name) - base, before), name
