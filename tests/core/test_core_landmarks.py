# SPDX-License-Identifier: GPL-3.0-or-later
"""Landmarks from a render (core.mesh.render, core.landmarks), no bpy: the rasterizer on
meshes whose picture is known, MediaPipe's landmarks on a rendered ICT head against ICT's
own 68 landmarks, nothing on a sphere or Suzanne, and the rig turning a pitched head."""

from pathlib import Path

import numpy as np
import pytest

from blender_addon.core import landmarks, rig
from blender_addon.core.mesh.head import normalize_head
from blender_addon.core.mesh.render import rasterize, render_front
from blender_addon.core.mesh.topology import triangulate
from tests.conftest import to_blender_frame

DATA = Path(__file__).parent / "data"
# MediaPipe mesh index -> Multi-PIE 68 index of the same feature (outer / inner eye corners,
# nose tip, mouth corners, chin), subject's right first.
SAME_POINTS = ((33, 36), (133, 39), (362, 42), (263, 45), (1, 30), (61, 48), (291, 54), (152, 8))


def _square(x0, x1, z0, z1, y):
    """Two triangles facing -Y, a rectangle at depth y."""
    v = np.array([[x0, y, z0], [x1, y, z0], [x1, y, z1], [x0, y, z1]], float)
    return v, np.array([[0, 1, 2], [0, 2, 3]])


def uv_sphere(rings=24):
    theta, phi = np.meshgrid(np.linspace(0, np.pi, rings), np.linspace(0, 2 * np.pi, 2 * rings, endpoint=False),
                             indexing="ij")
    v = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1).reshape(-1, 3)
    m = 2 * rings
    f = [(i * m + j, (i + 1) * m + j, i * m + (j + 1) % m) for i in range(rings - 1) for j in range(m)]
    f += [(i * m + (j + 1) % m, (i + 1) * m + j, (i + 1) * m + (j + 1) % m) for i in range(rings - 1) for j in range(m)]
    return v, np.array(f)


def test_rasterizer_covers_exactly_the_pixels_inside_and_keeps_the_nearest():
    # Image positions: a triangle with corners on pixel centres' grid lines.
    uv = np.array([[2.0, 2.0], [12.0, 2.0], [2.0, 12.0]])
    tri, bary, depth = rasterize(uv, np.array([1.0, 1.0, 1.0]), np.array([[0, 1, 2]]), 16, 16)
    j, i = np.nonzero(tri == 0)
    # Pixel centres (i+.5, j+.5) inside x >= 2, y >= 2, x + y <= 14: 55 of them.
    assert len(i) == 55
    assert ((i + 0.5 >= 2) & (j + 0.5 >= 2) & (i + j + 1 <= 14)).all()
    assert np.allclose(bary[tri == 0].sum(1), 1.0) and np.allclose(depth[tri == 0], 1.0)
    assert (tri[tri != 0] == -1).all() and np.isinf(depth[tri == -1]).all()
    # Two overlapping rectangles: the nearer (smaller y) one wins wherever both are, in
    # either drawing order.
    a_v, a_f = _square(-1, 0.5, -1, 1, y=0.0)
    b_v, b_f = _square(-0.5, 1, -1, 1, y=-1.0)
    for verts, faces, near in ((np.r_[a_v, b_v], np.r_[a_f, b_f + 4], (2, 3)),
                               (np.r_[b_v, a_v], np.r_[b_f, a_f + 4], (0, 1))):
        r = render_front(verts, faces, size=40, margin=0.0)
        u = r.to_image(np.array([[0.0, 0.0, 0.0]]))[0].astype(int)        # x = 0 is under both
        assert r.triangle[u[1], u[0]] in near
        assert r.image[u[1], u[0]].sum() > 0


def test_surface_points_land_on_the_surface_and_the_picture_is_oriented():
    # A tilted plane y = 0.1 x - 0.2 z - 0.1: points cast back must lie on it, under the
    # image position they were cast from.
    def plane(x, z):
        return 0.1 * x - 0.2 * z - 0.1

    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float)
    verts = np.c_[corners[:, 0], plane(corners[:, 0], corners[:, 1]), corners[:, 1]]
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    r = render_front(verts, faces, size=64, margin=0.5)
    rng = np.random.default_rng(0)
    truth = np.c_[rng.uniform(-0.9, 0.9, 20), np.zeros(20), rng.uniform(-0.9, 0.9, 20)]
    points, face, _bary = r.surface_points(r.to_image(truth))
    assert (face >= 0).all()
    assert np.allclose(points[:, [0, 2]], truth[:, [0, 2]], atol=1e-9)
    assert np.allclose(points[:, 1], plane(truth[:, 0], truth[:, 2]), atol=1e-9)
    # +X (the character's left) is on the image's right, +Z up.
    left, top = r.to_image(np.array([[1.0, 0, 0], [0, 0, 1.0]]))
    assert left[0] > 32 and top[1] < 32
    # Off the mesh: no face, NaN point.
    p, f, _ = r.surface_points(np.array([[1.5, 1.5]]))
    assert f[0] == -1 and np.isnan(p).all()


@pytest.fixture(scope="module")
def ict_head(ict_path):
    with np.load(ict_path) as d:
        verts = to_blender_frame(d["neutral"]).astype(np.float64)
        return verts, d["skin_faces"].astype(np.int64), verts[d["landmarks_multipie68"]]


def test_landmarks_on_a_rendered_ict_head_match_its_own(ict_head):
    verts, faces, truth = ict_head
    found = landmarks.find_landmarks(verts, faces)
    assert found is not None
    eyes = np.linalg.norm(truth[45] - truth[36])
    for mp_index, pie_index in SAME_POINTS:
        assert found.valid[mp_index]
        assert np.linalg.norm(found.points[mp_index] - truth[pie_index]) < 0.15 * eyes, (mp_index, pie_index)
    # The landmarks lie on the surface: each is inside the triangle it names.
    tri = verts[faces[found.face[:468][found.valid[:468]]]]
    assert np.isfinite(found.points[:468][found.valid[:468]]).all() and len(tri) > 400


def test_no_face_on_a_sphere_or_suzanne():
    v, f = uv_sphere()
    assert landmarks.find_landmarks(v, f) is None
    with np.load(DATA / "suzanne.npz") as d:
        assert landmarks.find_landmarks(d["verts"], triangulate(d["corners"], d["sizes"])) is None
    result = rig.predict(v * 10.0, f, provider="CPU")
    assert result.landmarks is not None and not result.landmarks.found
    assert "no face found" in result.landmarks.line()


def test_normalization_with_a_rotation_round_trips():
    rng = np.random.default_rng(1)
    verts = rng.normal(size=(50, 3))
    turn = landmarks.angles_to_rotation(20.0, -5.0, 3.0)
    norm = normalize_head(verts, rotation=turn)
    assert np.allclose(norm.invert(norm.apply(verts)), verts, atol=1e-5)
    d = rng.normal(size=(4, 50, 3))
    assert np.allclose(norm.invert_vectors(norm.apply_vectors(d)), d, atol=1e-5)
    assert np.allclose(landmarks.rotation_angles(turn), (20.0, -5.0, 3.0))


def test_a_pitched_head_is_rigged_turned_upright(ict_head):
    """The ICT head pitched 15 deg: the landmarks see the turn, the rig turns the head
    upright for the networks and its shapes back, so they match the upright head's, turned."""
    verts, faces, _truth = ict_head
    turn = landmarks.angles_to_rotation(15.0, 0.0, 0.0)
    upright = rig.predict(verts, faces, provider="CPU", eye_rules=False)
    tilted = rig.predict(verts @ turn.T, faces, provider="CPU", eye_rules=False)
    plain = rig.predict(verts @ turn.T, faces, provider="CPU", eye_rules=False, landmarks=False)
    assert tilted.landmarks.found and tilted.landmarks.corrected and tilted.landmarks.turn_degrees > 10
    assert "pitched" in tilted.landmarks.line()
    assert plain.landmarks is None
    expected = upright.ict_deltas @ turn.T

    def error(result):
        return float(np.linalg.norm(result.ict_deltas - expected, axis=-1).sum() / np.linalg.norm(expected, axis=-1).sum())

    assert error(tilted) < 0.5 * error(plain)
