# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile heads for the rig (issue 15): each ends in one clear line, and either the file
is exactly as before or the rig is right and the report says what was corrected."""

from __future__ import annotations

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core import rig as core_rig
from blender_helpers import base_coords, key_deltas, mesh_object, monkey_head, snapshot, assert_same
from hostile_helpers import assert_file_same, file_state, memory_ceiling, refused  # noqa: F401



def _jaw_size(obj) -> float:
    d = key_deltas(obj, "jawOpen")
    return float(np.linalg.norm(d, axis=1).max() / np.linalg.norm(np.ptp(base_coords(obj), axis=0)))


# ------------------------------------------------------------------ case 2: mirrored, inward normals

def test_mirrored_head_is_rigged_as_seen(addon):
    """Case 2: scale x = -1 rigged a wrong rig (jaw 0.100 -> 0.023 of the diagonal)."""
    ref = monkey_head("Ref")
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    mirrored = monkey_head("Mirrored", location=(4, 0, 0))
    mirrored.scale.x = -1.0
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    assert _jaw_size(mirrored) == pytest.approx(_jaw_size(ref), rel=0.1)
    # eyeBlinkLeft closes the eye on the character's left as seen (+X in the world).
    blink = np.linalg.norm(key_deltas(mirrored, "eyeBlinkLeft"), axis=1)
    world_x = base_coords(mirrored)[:, 0] * mirrored.scale.x
    assert blink[world_x > 0.1].sum() > 5 * blink[world_x < -0.1].sum()


def test_inward_normals_are_corrected(addon):
    ref = monkey_head("Ref")
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    flipped = monkey_head("Flipped", location=(4, 0, 0))
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="SELECT")
    bpy.ops.mesh.flip_normals()
    bpy.ops.object.mode_set(mode="OBJECT")
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    assert _jaw_size(flipped) == pytest.approx(_jaw_size(ref), rel=0.1)
    prepared = core_rig.prepare_head(np.asarray(base_coords(flipped), float),
                                     _tris(flipped))
    assert any("normals point inward" in n for n in prepared.notes)


def _tris(obj) -> np.ndarray:
    mesh = obj.data
    mesh.calc_loop_triangles()
    t = np.empty(len(mesh.loop_triangles) * 3, np.int32)
    mesh.loop_triangles.foreach_get("vertices", t)
    return t.reshape(-1, 3)


# ------------------------------------------------------------------ case 3: linked library

def test_linked_object_is_refused(addon, tmp_path):
    monkey_head("Linked")
    lib = tmp_path / "lib.blend"
    bpy.data.libraries.write(str(lib), {bpy.data.objects["Linked"]})
    bpy.ops.wm.read_factory_settings(use_empty=True)
    import addon_utils
    addon_utils.enable("bl_ext.user_default.facsimile", default_set=True)
    with bpy.data.libraries.load(str(lib), link=True) as (src, dst):
        dst.objects = ["Linked"]
    obj = dst.objects[0]
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    before = snapshot(obj)
    msg = refused(bpy.ops.facsimile.rig)
    assert "linked from" in msg and "Make Local" in msg
    assert_same(before, snapshot(obj))


# ------------------------------------------------------------------ case 5: existing keys, any spelling

ARTIST_KEYS = ("JawOpen", "EYEBLINKLEFT", "eyeBlink_R", "blendShape1.mouthSmile_L")


def _with_artist_keys():
    obj = monkey_head()
    obj.shape_key_add(name="Basis", from_mix=False)
    for name in ARTIST_KEYS:
        obj.shape_key_add(name=name, from_mix=False)
    return obj


def test_existing_keys_in_other_spellings_are_kept_not_duplicated(addon):
    obj = _with_artist_keys()
    assert bpy.ops.facsimile.rig(existing="SKIP") == {"FINISHED"}
    names = [kb.name for kb in obj.data.shape_keys.key_blocks[1:]]
    # Suzanne has no tongue: tongueOut is left out (issue 13), so 51 names in all
    assert len(names) == 51, "no duplicates: the artist's 4 keys + 47 new ones"
    channels = [arkit.normalize_name(n) for n in names]
    assert sorted(channels) == sorted(n for n in arkit.ARKIT_52 if n != "tongueOut")
    assert not np.abs(key_deltas(obj, "JawOpen")).any(), "Keep leaves the artist's key as it was"


def test_existing_keys_in_other_spellings_are_replaced_under_their_names(addon):
    obj = _with_artist_keys()
    assert bpy.ops.facsimile.rig(existing="REPLACE") == {"FINISHED"}
    names = [kb.name for kb in obj.data.shape_keys.key_blocks[1:]]
    assert len(names) == 51 and set(ARTIST_KEYS) <= set(names) and "jawOpen" not in names
    assert np.abs(key_deltas(obj, "JawOpen")).max() > 0.01, "the jaw opens on the artist's key"


# ------------------------------------------------------------------ case 9: mirror modifier

def test_half_head_with_mirror_modifier_is_refused(addon):
    obj = monkey_head()
    obj.modifiers.new("Mirror", "MIRROR")
    before = file_state()
    msg = refused(bpy.ops.facsimile.rig)
    assert "unapplied Mirror modifier" in msg and "apply it" in msg
    assert_file_same(before, file_state())


def test_other_modifiers_are_ignored(addon):
    obj = monkey_head()
    obj.modifiers.new("Subsurf", "SUBSURF")
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    assert len(obj.data.shape_keys.key_blocks) == 52     # Basis + 51 (no tongue on Suzanne)


# ------------------------------------------------------------------ case 12: shape-key setups

def test_absolute_keys_are_refused(addon):
    obj = monkey_head()
    obj.shape_key_add(name="Basis", from_mix=False)
    obj.shape_key_add(name="Key 1", from_mix=False)
    obj.data.shape_keys.use_relative = False
    before = file_state()
    msg = refused(bpy.ops.facsimile.rig)
    assert "absolute shape keys" in msg
    assert_file_same(before, file_state())


def test_replace_makes_the_key_relative_to_the_basis_and_keeps_locked_keys(addon):
    obj = monkey_head()
    obj.shape_key_add(name="Basis", from_mix=False)
    other = obj.shape_key_add(name="Other", from_mix=False)
    jaw = obj.shape_key_add(name="jawOpen", from_mix=False)
    jaw.relative_key = other
    smile = obj.shape_key_add(name="mouthSmileLeft", from_mix=False)
    smile.lock_shape = True
    assert bpy.ops.facsimile.rig(existing="REPLACE") == {"FINISHED"}
    assert obj.data.shape_keys.key_blocks["jawOpen"].relative_key.name == "Basis"
    assert not np.abs(key_deltas(obj, "mouthSmileLeft")).any(), "a locked key is never written"


def test_a_users_fx_group_does_not_block_predict_regions(addon):
    obj = monkey_head()
    obj.vertex_groups.new(name="FX_custom")
    assert bpy.ops.facsimile.predict_regions() == {"FINISHED"}
    assert "FX_custom" in obj.vertex_groups


# ------------------------------------------------------------------ case 13: degenerate meshes

def _cube():
    v = [[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)]
    f = [[0, 1, 3, 2], [4, 6, 7, 5], [0, 4, 5, 1], [2, 3, 7, 6], [0, 2, 6, 4], [1, 5, 7, 3]]
    return v, f


DEGENERATE = {
    "cube": (_cube(), "only 8 vertices"),
    "two_triangles": (([[0, 0, 0], [1, 0, 0], [0, 0, 1], [1, 0, 1]], [[0, 1, 2], [1, 3, 2]]), "only 4 vertices"),
    "collinear": (([[i, 0, 0] for i in range(10)], [[i, i + 1, i + 2] for i in range(8)]), "flat as a line"),
}


@pytest.mark.parametrize("case", list(DEGENERATE))
def test_degenerate_meshes_are_refused_clearly(addon, case):
    (verts, faces), message = DEGENERATE[case]
    mesh_object(case, np.array(verts, float), faces)
    before = file_state()
    msg = refused(bpy.ops.facsimile.rig)
    assert message in msg
    assert_file_same(before, file_state())


def test_two_separate_spheres_are_rigged_with_a_warning(addon):
    bpy.ops.mesh.primitive_uv_sphere_add(location=(-1.5, 0, 0))
    bpy.ops.mesh.primitive_uv_sphere_add(location=(1.5, 0, 0))
    bpy.ops.object.select_all(action="SELECT")
    bpy.ops.object.join()
    obj = bpy.context.object
    prepared = core_rig.prepare_head(base_coords(obj).astype(float), _tris(obj))
    assert any("2 separate surfaces" in n for n in prepared.notes)


# ------------------------------------------------------------------ limits: a head above 2 M vertices

def test_a_huge_head_asks_first(addon, monkeypatch):
    """The ceiling is lowered to Suzanne's size rather than building 2 M vertices here."""
    monkeypatch.setattr(core_rig, "LARGE_HEAD_VERTS", 400)
    obj = monkey_head()
    before = file_state()
    msg = refused(bpy.ops.facsimile.rig)
    assert "confirm_large=True" in msg and "decimate" in msg
    assert_file_same(before, file_state())
    assert bpy.ops.facsimile.rig(confirm_large=True) == {"FINISHED"}
    assert len(obj.data.shape_keys.key_blocks) == 52     # Basis + 51 (no tongue on Suzanne)


# ------------------------------------------------------------------ inputs that already passed

def test_nan_vertices_are_refused(addon):
    obj = monkey_head()
    obj.data.vertices[3].co = (float("nan"), 0, 0)
    before = file_state()
    msg = refused(bpy.ops.facsimile.rig)
    assert "infinite or undefined" in msg
    # NaN != NaN: compare the rest, and that nothing was added.
    after = file_state()
    assert after["scene"] == before["scene"] and obj.data.shape_keys is None and not obj.vertex_groups


@pytest.mark.parametrize("scale", [1e-9, 1e6])
def test_extreme_scales_are_rigged_in_proportion(addon, scale):
    obj = monkey_head()
    obj.scale = (scale,) * 3
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    assert 0.01 < _jaw_size(obj) < 0.5


def test_shared_mesh_data_and_ngons(addon):
    obj = monkey_head()
    bpy.ops.object.mode_set(mode="EDIT")
    bpy.ops.mesh.select_all(action="SELECT")
    bpy.ops.mesh.tris_convert_to_quads()
    bpy.ops.object.mode_set(mode="OBJECT")
    twin = obj.copy()                          # the same mesh data, two objects
    bpy.context.scene.collection.objects.link(twin)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    assert twin.data.shape_keys is not None and len(twin.data.shape_keys.key_blocks) == 52   # no tongue


# ------------------------------------------------------------------ case 11: the facing report

FACING = "does not seem to look toward -Y"


def _facing_case(case: str):
    if case in ("two spheres", "grid"):
        if case == "grid":
            bpy.ops.mesh.primitive_grid_add(x_subdivisions=24, y_subdivisions=24, size=0.5)
        else:
            bpy.ops.mesh.primitive_uv_sphere_add(radius=0.2, location=(-0.3, 0, 0))
            bpy.ops.mesh.primitive_uv_sphere_add(radius=0.2, location=(0.3, 0, 0))
            bpy.ops.object.select_all(action="SELECT")
            bpy.ops.object.join()
        return bpy.context.object
    obj = monkey_head()
    if case == "triangulated":
        obj.modifiers.new("Tri", "TRIANGULATE").quad_method = "BEAUTY"
        bpy.ops.object.modifier_apply(modifier="Tri")
    elif case in ("looking up", "looking backwards"):
        obj.rotation_euler = (-np.pi / 2, 0, 0) if case == "looking up" else (0, 0, np.pi)
        bpy.ops.object.transform_apply(location=False, rotation=True, scale=False)
    return obj


@pytest.mark.parametrize("case, warned", [("n-gons", False), ("triangulated", False), ("looking up", True),
                                          ("looking backwards", True), ("two spheres", True), ("grid", True)])
def test_the_facing_report(addon, capfd, case, warned):
    """Case 11: a false alarm on a correct n-gon Suzanne, and no warning for Suzanne looking
    up or backwards, two spheres, a flat grid; now the other way round."""
    _facing_case(case)
    capfd.readouterr()
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    out = capfd.readouterr()
    assert (FACING in out.out + out.err) == warned, out.out + out.err


def test_nonmanifold_and_zero_area_faces_on_a_full_head(addon):
    """A whole Suzanne with fins (three faces on one edge), a duplicated face and zero-area
    faces (coincident and collinear corners) rigs: finite keys on every vertex, the mesh's
    own positions, faces and vertex count untouched."""
    obj = monkey_head()
    mesh = obj.data
    verts = base_coords(obj).astype(float)
    faces = [list(p.vertices) for p in mesh.polygons]
    a, b = faces[0][0], faces[0][1]
    n = len(verts)
    extra_v = [verts[a] + [0, 0.05, 0.05], verts[a] - [0, 0.05, 0.05],           # two fins on edge a-b
               verts[b], verts[b], verts[b] + [0.01, 0, 0],                     # coincident corners
               verts[a] + [0.2, 0, 0], verts[a] + [0.3, 0, 0]]                  # collinear corners
    extra_f = [[a, b, n], [b, a, n + 1], faces[5][::-1],
               [n + 2, n + 3, n + 4], [a, n + 5, n + 6]]
    # from_pydata without validate(), which would delete the faces this test is about
    data = bpy.data.meshes.new("Broken")
    data.from_pydata(np.concatenate([verts, extra_v]).tolist(), [], faces + extra_f)
    data.update()
    broken = bpy.data.objects.new("Broken", data)
    bpy.context.scene.collection.objects.link(broken)
    bpy.data.objects.remove(obj)
    bpy.context.view_layer.objects.active = broken
    broken.select_set(True)
    before = snapshot(broken)
    assert len(broken.data.polygons) == len(faces) + len(extra_f)
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    np.testing.assert_array_equal(base_coords(broken), before["co"])
    assert len(broken.data.polygons) == len(faces) + len(extra_f)
    keys = broken.data.shape_keys.key_blocks
    assert len(keys) == 52                                # Basis + 51 (no tongue on Suzanne)
    for name in ("jawOpen", "eyeBlinkLeft", "mouthSmileRight"):
        delta = key_deltas(broken, name)
        assert np.isfinite(delta).all() and np.abs(delta).max() > 0
    assert 0.01 < _jaw_size(broken) < 0.5
