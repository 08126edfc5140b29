# SPDX-License-Identifier: GPL-3.0-or-later
"""Mesh preprocessing (blender_addon.core.mesh, closest_point): topology, frame,
correspondence and proxies, on procedural meshes and (when present) ICT-FaceKit."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core.closest_point import closest_point_barycentric, interpolate_barycentric
from blender_addon.core.mesh.head import facing_score, find_skin, looks_toward_minus_y, normalize_head, split_parts
from blender_addon.core.mesh.proxy import PRECLUSTER, build_proxy, cluster_simplify, loop_free_subdivide
from blender_addon.core.mesh.topology import clean_faces, connected_components, face_areas, triangulate, vertex_normals, weld
from blender_addon.core.closest_point import _TriangleTable


# ----------------------------------------------------------------------- test meshes


def uv_sphere(n_lat=24, n_lon=32, radii=(1.0, 1.0, 1.0), center=(0, 0, 0), bump=None):
    """Closed UV sphere (single pole vertices, no seam duplicates), optionally an
    ellipsoid and with a radial bump function bump(unit_dirs) -> (N,)."""
    theta = np.linspace(0, np.pi, n_lat + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, n_lon, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    d = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    d = np.concatenate([[[0, 0, 1]], d, [[0, 0, -1]]])
    r = 1.0 + (bump(d) if bump else 0.0)
    v = d * np.asarray(radii) * np.asarray(r)[..., None] + np.asarray(center)
    ring = lambda i: 1 + i * n_lon + np.arange(n_lon)          # noqa: E731
    nxt = lambda a: np.roll(a, -1)                             # noqa: E731
    faces = [np.stack([np.zeros(n_lon, int), nxt(ring(0)), ring(0)], 1)]
    for i in range(n_lat - 2):
        a, b = ring(i), ring(i + 1)
        faces += [np.stack([a, nxt(a), nxt(b)], 1), np.stack([a, nxt(b), b], 1)]
    last = len(v) - 1
    faces.append(np.stack([ring(n_lat - 2), nxt(ring(n_lat - 2)), np.full(n_lon, last)], 1))
    faces = np.concatenate(faces)[:, ::-1]            # counter-clockwise seen from outside
    return v.astype(np.float32), np.ascontiguousarray(faces, dtype=np.int32)


def grid(n, size=1.0, z=0.0):
    x, y = np.meshgrid(np.linspace(0, size, n), np.linspace(0, size, n), indexing="ij")
    v = np.stack([x.ravel(), y.ravel(), np.full(n * n, z)], axis=1)
    i = (np.arange(n - 1)[:, None] * n + np.arange(n - 1)[None, :]).ravel()
    f = np.concatenate([np.stack([i, i + n, i + n + 1], 1), np.stack([i, i + n + 1, i + 1], 1)])
    return v.astype(np.float32), f.astype(np.int32)


def combine(*parts):
    verts, faces, offset = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(np.asarray(f) + offset)
        offset += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def synthetic_head(n_lat=40, n_lon=48):
    """Ellipsoid head facing -Y with a nose bump (below the equator, like a real one)."""
    nose_dir = np.array([0.0, -0.96, -0.28])

    def bump(d):
        return 0.25 * np.exp(-((d - nose_dir) ** 2).sum(1) / 0.02)

    return uv_sphere(n_lat, n_lon, radii=(0.75, 0.9, 1.0), bump=bump)


def rotation(axis, degrees):
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    return {"z": np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
            "x": np.array([[1, 0, 0], [0, c, -s], [0, s, c]])}[axis]


def split_along_equator(v, f):
    """Duplicate the vertices of faces below z=0 so the mesh falls apart into two
    halves with coincident boundary vertices (a UV-seam style split)."""
    below = v[f].mean(axis=1)[:, 2] < 0
    shared = np.intersect1d(f[below], f[~below])
    remap = np.arange(len(v))
    remap[shared] = len(v) + np.arange(shared.size)
    f2 = f.copy()
    f2[below] = remap[f[below]]
    return np.concatenate([v, v[shared]]), f2


@pytest.fixture(scope="module")
def ict(ict_path):
    data = np.load(ict_path)
    to_blender = lambda a: np.stack([a[..., 0], -a[..., 2], a[..., 1]], -1)  # noqa: E731
    return {"verts": to_blender(data["neutral"]), "faces": data["faces"],
            "region": data["vertex_region"], "skin_vidx": data["skin_vidx"],
            "skin_faces": data["skin_faces"], "face_vidx": data["face_vidx"],
            "face_faces": data["face_faces"]}


# -------------------------------------------------------------------------- topology


def test_triangulate_quads_and_ngons_keeps_winding():
    # A triangle, a quad and a convex pentagon, all counter-clockwise in the z=0 plane.
    corners = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    sizes = [3, 4, 5]
    tris, poly = triangulate(corners, sizes, return_poly_index=True)
    assert tris.dtype == np.int32 and tris.shape == (1 + 2 + 3, 3)
    np.testing.assert_array_equal(poly, [0, 1, 1, 2, 2, 2])
    np.testing.assert_array_equal(tris[1:3], [[3, 4, 5], [3, 5, 6]])
    np.testing.assert_array_equal(tris[3:], [[7, 8, 9], [7, 9, 10], [7, 10, 11]])
    # Polygons with fewer than 3 corners are dropped; inconsistent sizes raise.
    assert len(triangulate([0, 1, 2, 3, 4], [2, 3])) == 1
    with pytest.raises(ValueError):
        triangulate([0, 1, 2], [4])


def test_weld_merges_seam_duplicates_only_on_boundaries():
    v, f = uv_sphere(12, 16)
    sv, sf = split_along_equator(v, f)
    assert connected_components(len(sv), sf).max() == 1          # two halves
    wv, wf, vmap = weld(sv, sf)
    assert len(wv) == len(v) and len(wf) == len(sf)
    np.testing.assert_allclose(wv[vmap], sv, atol=1e-6)
    assert connected_components(len(wv), wf).max() == 0          # one piece again
    # A separate part touching interior vertices (eyelash roots on a lid) stays apart.
    touching = (v[[5, 6, 7]] * 1.0, [[0, 1, 2]])
    tv, tf = combine((v, f), touching)
    wv, wf, _ = weld(tv, tf)
    assert len(wv) == len(tv)
    assert len(weld(tv, tf, boundary_only=False)[0]) == len(v)


def test_clean_faces_and_components():
    f = np.array([[0, 1, 2], [2, 1, 0], [0, 0, 1], [3, 4, 5], [1, 2, 0]])
    cleaned, keep = clean_faces(f)
    np.testing.assert_array_equal(cleaned, [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(keep, [True, False, False, True, False])
    labels = connected_components(7, cleaned)
    assert labels[0] == labels[1] == labels[2] != labels[3] == labels[4] == labels[5]
    assert labels[6] not in labels[:6]                                 # isolated vertex


def head_scene():
    """Head (split at a seam) + two eyeballs + teeth inside it + a hair card outside."""
    head = split_along_equator(*synthetic_head())
    eye_l = uv_sphere(10, 12, radii=(0.12,) * 3, center=(0.28, -0.62, 0.2))
    eye_r = uv_sphere(10, 12, radii=(0.12,) * 3, center=(-0.28, -0.62, 0.2))
    teeth = uv_sphere(8, 16, radii=(0.25, 0.1, 0.05), center=(0, -0.6, -0.35))
    card_v, card_f = grid(3, size=0.3, z=1.05)
    parts = [head, eye_l, eye_r, teeth, (card_v, card_f)]
    v, f = combine(*parts)
    n_head = len(head[0])
    return v, f, np.arange(len(v)) < n_head


def test_find_skin_picks_the_head():
    v, f, expected = head_scene()
    np.testing.assert_array_equal(find_skin(v, f), expected)


def test_split_parts_welds_once_for_skin_and_parts():
    # Teeth split at a UV seam are one loose part, not two; the skin agrees with find_skin.
    head = split_along_equator(*synthetic_head())
    tv, tf = split_along_equator(*uv_sphere(8, 16, radii=(0.25, 0.1, 0.05)))
    eye = uv_sphere(10, 12, radii=(0.12,) * 3, center=(0.28, -0.62, 0.2))
    v, f = combine(head, (tv + np.array([0, -0.6, -0.35], np.float32), tf), eye)
    teeth = slice(len(head[0]), len(head[0]) + len(tv))
    parts = split_parts(v, f)
    np.testing.assert_array_equal(parts.skin_of_original, find_skin(v, f))
    assert parts.skin_of_original[:len(head[0])].all() and not parts.skin_of_original[len(head[0]):].any()
    assert len(np.unique(parts.part[parts.vertex_map[teeth]])) == 1
    assert len(np.unique(connected_components(len(v), f)[teeth])) == 2   # control: unwelded, two
    loose = parts.part[parts.vertex_map[len(head[0]):]]
    assert len(np.unique(loose)) == 2                  # teeth and the eye


def test_find_skin_keeps_a_large_separate_neck():
    head_v, head_f = synthetic_head()
    neck = uv_sphere(12, 24, radii=(0.35, 0.35, 0.6), center=(0, 0.1, -1.2))
    v, f = combine((head_v, head_f), neck)
    assert find_skin(v, f).all()


@pytest.mark.data
def test_find_skin_on_ict(ict):
    skin = find_skin(ict["verts"], ict["faces"])
    outer = ict["region"] <= 4            # face, head and neck, mouth and eye sockets
    np.testing.assert_array_equal(skin, outer)


# -------------------------------------------------------------------- frame and scale


def test_normalization_is_invariant_to_units_and_translation():
    v, f = synthetic_head()
    ref = normalize_head(v, f)
    canonical = ref.apply(v)
    assert np.ptp(canonical[:, 0]) == pytest.approx(1.0, rel=1e-6)
    tip = np.argmin(np.where(np.abs(canonical[:, 0]) < 0.15, canonical[:, 1], np.inf))
    np.testing.assert_allclose(canonical[tip], 0.0, atol=1e-6)
    for scale, shift in ((1000.0, (0, 0, 0)), (0.01, (0.3, -2.0, 1.5)), (10.0, (50, 7, -3))):
        moved = v.astype(np.float64) * scale + shift
        norm = normalize_head(moved, f)
        np.testing.assert_allclose(norm.apply(moved), canonical, atol=1e-5)
        np.testing.assert_allclose(norm.invert(norm.apply(moved)), moved,
                                   atol=1e-5 * scale, rtol=1e-6)
        delta = np.array([[0.0, 0.1, 0.0]]) * scale
        np.testing.assert_allclose(norm.apply_vectors(delta) * ref.scale, delta / scale,
                                   rtol=1e-5)
        np.testing.assert_allclose(norm.invert_vectors(norm.apply_vectors(delta)), delta,
                                   rtol=1e-5)


def test_normalization_ignores_loose_vertices_when_faces_given():
    v, f = synthetic_head()
    stray = np.concatenate([v, [[40.0, 0.0, 0.0]]])
    assert normalize_head(stray, f).scale == pytest.approx(normalize_head(v).scale)


WRONG_WAYS = [("z", 90), ("z", -90), ("z", 180), ("x", 90), ("x", -90)]


def test_facing_detection_on_a_synthetic_head():
    v, f = synthetic_head()
    assert looks_toward_minus_y(v, f)
    for axis, deg in WRONG_WAYS:
        assert not looks_toward_minus_y(v @ rotation(axis, deg).T, f), (axis, deg)
    sphere_v, sphere_f = uv_sphere()
    # A shape without a front scores ~0: no face looks toward -Y, so it is reported too
    # (issue 15: two spheres were rigged without a word).
    assert abs(facing_score(sphere_v, sphere_f)) < 0.2
    assert not looks_toward_minus_y(sphere_v, sphere_f)


@pytest.mark.data
@pytest.mark.parametrize("part", ["all", "skin", "face"])
def test_facing_detection_on_ict(ict, part):
    v, f = {"all": (ict["verts"], ict["faces"]),
            "skin": (ict["verts"][ict["skin_vidx"]], ict["skin_faces"]),
            "face": (ict["verts"][ict["face_vidx"]], ict["face_faces"])}[part]
    assert facing_score(v, f) > 0.3
    for axis, deg in WRONG_WAYS:
        assert facing_score(v @ rotation(axis, deg).T, f) < 0, (axis, deg)


def test_vertex_normals():
    v, f = uv_sphere()
    extra = np.concatenate([v, [[5.0, 5.0, 5.0], [0, 0, 3], [1, 0, 3], [2, 0, 3]]])
    faces = np.concatenate([f, [[len(v) + 1, len(v) + 2, len(v) + 3]]])  # zero-area face
    n = vertex_normals(extra, faces)
    assert n.dtype == np.float32
    radial = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert (np.einsum("ij,ij->i", n[:len(v)], radial) > 0.99).all()
    np.testing.assert_array_equal(n[len(v):], 0.0)   # isolated / only zero-area faces


# -------------------------------------------------------------------- correspondence


def brute_force_distance(points, v, f):
    table = _TriangleTable(v.astype(np.float64)[f])
    pairs = np.repeat(points, len(f), axis=0), np.tile(np.arange(len(f)), len(points))
    d2, _ = table.closest(*pairs)
    return np.sqrt(d2.reshape(len(points), len(f)).min(axis=1))


def test_closest_point_reconstructs_points_on_the_surface():
    v, f = synthetic_head()
    rng = np.random.default_rng(1)
    fi = rng.integers(0, len(f), 5000)
    bary = rng.dirichlet([1, 1, 1], 5000)
    points = interpolate_barycentric(v.astype(np.float64), f, fi, bary)
    found_f, found_b = closest_point_barycentric(points, v, f)
    assert found_f.shape == (5000,) and found_b.shape == (5000, 3)
    back = interpolate_barycentric(v.astype(np.float64), f, found_f, found_b)
    np.testing.assert_allclose(back, points, atol=1e-9)
    assert (found_b >= 0).all() and np.allclose(found_b.sum(axis=1), 1.0)


@pytest.mark.parametrize("spread", [0.05, 0.5, 5.0])
def test_closest_point_matches_brute_force(spread):
    v, f, _ = head_scene()
    # Awkward triangles too: a zero-area one and a huge sliver far from the rest.
    v = np.concatenate([v, [[2, 2, 2], [2.5, 2, 2], [3, 2, 2], [-4, -4, 3], [4, -4, 3.1],
                            [0, 4, 3.2]]]).astype(np.float32)
    n = len(v)
    f = np.concatenate([f, [[n - 6, n - 5, n - 4], [n - 3, n - 2, n - 1]]])
    rng = np.random.default_rng(2)
    anchors = v[rng.integers(0, len(v), 600)]
    points = anchors + rng.normal(scale=spread, size=anchors.shape)
    fi, b = closest_point_barycentric(points, v, f)
    found = np.linalg.norm(interpolate_barycentric(v.astype(np.float64), f, fi, b)
                           - points, axis=1)
    np.testing.assert_allclose(found, brute_force_distance(points, v, f), atol=1e-9)


def test_interpolate_barycentric_shapes_and_dtypes():
    v, f = grid(4)
    values = np.arange(16 * 5 * 2, dtype=np.float32).reshape(16, 5, 2)
    out = interpolate_barycentric(values, f, np.array([0, 3]),
                                       np.array([[1, 0, 0], [0.2, 0.3, 0.5]]))
    assert out.shape == (2, 5, 2) and out.dtype == np.float32
    np.testing.assert_allclose(out[0], values[f[0, 0]])
    expected = 0.2 * values[f[3, 0]] + 0.3 * values[f[3, 1]] + 0.5 * values[f[3, 2]]
    np.testing.assert_allclose(out[1], expected, rtol=1e-6)


# ------------------------------------------------------------------------ resolution


def test_loop_free_subdivide():
    v, f = uv_sphere(8, 10)
    sv, sf = loop_free_subdivide(v, f)
    n_edges = len(v) + len(f) - 2                     # Euler: V - E + F = 2
    assert len(sv) == len(v) + n_edges and len(sf) == 4 * len(f)
    np.testing.assert_array_equal(sv[:len(v)], v)
    assert face_areas(sv, sf).sum() == pytest.approx(face_areas(v, f).sum(), rel=1e-5)


def test_loop_free_subdivide_carries_linear_values_exactly():
    v, f = uv_sphere(8, 10)
    deltas = np.stack([v * 2.0 + 1.0, v[:, ::-1]])                    # (2,N,3), linear in position
    sv, sf, sd = loop_free_subdivide(v, f, deltas, axis=1)
    np.testing.assert_allclose(sd, np.stack([sv * 2.0 + 1.0, sv[:, ::-1]]), atol=1e-6)
    _, _, per_vertex = loop_free_subdivide(v, f, v[:, 0])
    np.testing.assert_allclose(per_vertex, sv[:, 0], atol=1e-6)


def test_cluster_simplify_variants_are_clean():
    v, f = uv_sphere(60, 80)
    a_v, a_f, src = cluster_simplify(v, f, 0.2)
    b_v, b_f, _ = cluster_simplify(v, f, 0.2, offset=(0.06, 0.1, 0.14),
                                        rotation=rotation("z", 30) @ rotation("x", 20))
    m_v, _, _ = cluster_simplify(v, f, 0.2, representative="mean")
    assert len(a_v) < len(v) / 5
    assert len(a_v) != len(b_v) or not np.array_equal(a_f, b_f)   # another triangulation
    np.testing.assert_array_equal(a_v, v[src])        # "nearest" keeps input vertices
    assert len(m_v) == len(a_v)
    for verts, faces in ((a_v, a_f), (b_v, b_f)):
        cleaned, keep = clean_faces(faces)
        assert keep.all()                             # no degenerate or duplicate faces
        assert np.unique(faces).size == len(verts)    # no unreferenced vertices


def test_cluster_simplify_keeps_close_sheets_apart():
    """Two parallel sheets closer than a cell (lips, eyelids) must not be glued."""
    top = grid(20, z=0.02)
    bottom = grid(20, z=0.0)
    v, f = combine(top, bottom)
    split_v, split_f, _ = cluster_simplify(v, f, 0.15)
    glued_v, glued_f, _ = cluster_simplify(v, f, 0.15, split_disconnected=False)
    assert connected_components(len(split_v), split_f).max() == 1
    assert connected_components(len(glued_v), glued_f).max() == 0


def test_proxy_of_a_dense_mesh():
    def bump(d):
        return 0.1 * np.sin(3 * d[:, 0]) * np.cos(2 * d[:, 2])

    v, f = uv_sphere(220, 230, bump=bump)             # ~50k vertices
    assert len(v) > 50000
    proxy = build_proxy(v, f, max_verts=5000)
    assert 4000 <= len(proxy.verts) <= 5000
    assert proxy.face_index.shape == (len(v),) and proxy.bary.shape == (len(v), 3)
    x = proxy.to_original(proxy.verts[:, 0])
    err = np.abs(x - v[:, 0])
    assert err.max() < 0.02 and err.mean() < 0.003
    pos = proxy.to_original(proxy.verts)
    assert np.linalg.norm(pos - v, axis=1).max() < 0.03
    again = build_proxy(v, f, max_verts=5000)     # deterministic
    np.testing.assert_array_equal(again.faces, proxy.faces)


def test_dense_proxy_is_clustered_twice_and_still_maps_back():
    # Over PRECLUSTER x max_verts the cell search runs on a first clustering; the result
    # must still fit, stay on the surface, map every vertex back and be deterministic.
    v, f = synthetic_head(120, 140)
    max_verts = 600
    assert len(v) > PRECLUSTER * max_verts
    proxy = build_proxy(v, f, max_verts=max_verts)
    assert 0.8 * max_verts <= len(proxy.verts) <= max_verts
    err = np.linalg.norm(proxy.to_original(proxy.verts) - v, axis=1)
    edge = np.sqrt(face_areas(proxy.verts, proxy.faces).mean() * 2)
    assert err.max() < 0.5 * edge and np.median(err) < 0.05 * edge
    np.testing.assert_array_equal(build_proxy(v, f, max_verts=max_verts).face_index, proxy.face_index)


def test_carry_matrix_is_to_original():
    v, f = uv_sphere(60, 70)
    proxy = build_proxy(v, f, max_verts=800)
    values = np.random.default_rng(0).normal(size=(len(proxy.verts), 7)).astype(np.float32)
    np.testing.assert_allclose(proxy.carry_matrix() @ values, proxy.to_original(values), atol=1e-5)
    # Placed at given rows of a larger matrix: those rows carry, the others stay empty.
    rows = np.sort(np.random.default_rng(1).choice(len(v) + 500, len(v), replace=False))
    placed = proxy.carry_matrix(rows=rows, n_rows=len(v) + 500) @ values
    np.testing.assert_allclose(placed[rows], proxy.to_original(values), atol=1e-5)
    others = np.setdiff1d(np.arange(len(v) + 500), rows)
    assert not placed[others].any()


def test_proxy_of_a_small_mesh_is_the_welded_mesh():
    v, f = split_along_equator(*uv_sphere(16, 20))
    proxy = build_proxy(v, f, max_verts=5000)
    assert len(proxy.verts) == len(weld(v, f)[0])
    np.testing.assert_allclose(proxy.to_original(proxy.verts), v, atol=1e-6)
    assert set(np.unique(proxy.bary)) <= {0.0, 1.0}


def test_proxy_survives_bad_input():
    # Fan-triangulated n-gon, a non-manifold fin, zero-area and duplicate faces, a loose
    # vertex; both the small (identity) and the simplified path.
    v, f = uv_sphere(40, 60)
    n = len(v)
    ngon = np.array([[np.cos(a), np.sin(a), 1.5] for a in np.linspace(0, 2 * np.pi, 30,
                                                                      endpoint=False)])
    ngon_f = triangulate(np.arange(30) + n, [30])
    extra_v = np.concatenate([ngon, [[0, 0, 2.0], [9.0, 9.0, 9.0]]])
    extra_f = np.concatenate([ngon_f, [[f[0, 0], f[0, 1], n + 30], [n, n + 1, n],
                                       [n + 1, n + 2, n + 3]], f[:3]])
    extra_f[-1] = [n + 4, n + 4, n + 4]
    bad_v = np.concatenate([v, extra_v]).astype(np.float32)
    bad_f = np.concatenate([f, extra_f])
    bad_v[n + 3] = (bad_v[n + 1] + bad_v[n + 2]) / 2  # collinear: a zero-area face
    for max_verts in (len(bad_v) + 10, 300):
        proxy = build_proxy(bad_v, bad_f, max_verts=max_verts)
        assert len(proxy.verts) <= max_verts
        out = proxy.to_original(proxy.verts)
        assert out.shape == bad_v.shape and np.isfinite(out).all()


@pytest.mark.data
def test_proxy_of_ict_maps_back_accurately(ict):
    v, f = ict["verts"], ict["faces"]
    proxy = build_proxy(v, f, max_verts=5000)
    assert len(proxy.verts) <= 5000
    err = np.linalg.norm(proxy.to_original(proxy.verts) - v, axis=1)   # centimetres
    assert np.median(err) < 0.05 and err.max() < 1.0
