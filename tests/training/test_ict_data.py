# SPDX-License-Identifier: GPL-3.0-or-later
"""ICT-FaceKit: the OBJ -> npz converter (offline, on a tiny fake FaceXModel folder and on
OBJs rebuilt from the shared copy) and the loader (on the shared copy)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_export.data import ict as ictlib
from model_export.data.ict_convert import FaceXLayout, convert_facexmodel, fan_triangulate

REQUIRED_KEYS = {
    "neutral", "faces", "face_poly_index", "exp_basis", "exp_names", "id_basis", "id_names",
    "skin_vidx", "skin_faces", "face_vidx", "face_faces", "narrow_face_vidx", "narrow_face_faces",
    "landmarks_multipie68",
}


# --- a tiny FaceXModel folder -------------------------------------------------------------------

def _write_obj(path: Path, vertices, polygons=(), uvs=(), polygon_uvs=()) -> None:
    lines = ["# test OBJ", "mtllib ICTFaceModelMaterial.mtl"]
    lines += [f"v {x!r} {y!r} {z!r}" for x, y, z in np.asarray(vertices, np.float64).tolist()]
    lines += [f"vt {u!r} {v!r}" for u, v in np.asarray(uvs, np.float64).tolist()]
    lines += ["usemtl M_Face", "s 1"]
    for k, poly in enumerate(polygons):
        if polygon_uvs:
            lines.append("f " + " ".join(f"{v + 1}/{t + 1}" for v, t in zip(poly, polygon_uvs[k])))
        else:
            lines.append("f " + " ".join(str(v + 1) for v in poly))
    path.write_text("\n".join(lines) + "\n")


# 8 vertices: "face" 0..4 (a quad and a triangle), "head" 5..7 (a quad using face vertices).
TINY_NEUTRAL = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0], [0.5, 1.5, 0.1],
                         [2, 0, 0], [2, 1, 0], [2, 2, 0.3]], np.float64) + 0.1
TINY_POLYGONS = [[0, 1, 2, 3], [3, 2, 4], [1, 5, 6, 2], [2, 6, 7, 4]]
TINY_UVS = [(0.0, 0.0), (0.5, 0.0), (0.5, 0.5), (0.0, 0.5), (0.25, 0.75), (1.0, 0.0),
            (1.0, 0.5), (1.0, 1.0)]
TINY_LAYOUT = FaceXLayout(
    n_vertices=8,
    geometries=(("face", 0, 4), ("head_and_neck", 5, 7)),
    crops={"narrow_face": (0, 3, 0), "face": (0, 4, 1), "skin": (0, 7, 3)},
)


@pytest.fixture
def tiny_facexmodel(tmp_path):
    folder = tmp_path / "FaceXModel"
    folder.mkdir()
    rng = np.random.default_rng(0)
    shapes = {name: TINY_NEUTRAL + rng.normal(0, 0.1, TINY_NEUTRAL.shape)
              for name in ("jawOpen", "eyeBlink_L", "identity000", "identity001", "cheekRaiser_L")}
    _write_obj(folder / "generic_neutral_mesh.obj", TINY_NEUTRAL, TINY_POLYGONS, TINY_UVS,
               TINY_POLYGONS)
    for name, verts in shapes.items():   # shape OBJs are full meshes, like upstream
        _write_obj(folder / f"{name}.obj", verts, TINY_POLYGONS)
    config = {"expressions": ["jawOpen", "eyeBlink_L"], "idx_to_landmark_verts": [0, 2, 4],
              "idx_to_rigid_verts": [0, 1], "idx_to_fitting_verts": [1, 2, 3]}
    (folder / "vertex_indices.json").write_text(json.dumps(config))
    return folder, shapes


def test_fan_triangulation_keeps_polygon_order():
    tris, owner = fan_triangulate([np.array([10, 11, 12, 13]), np.array([1, 2, 3]),
                                   np.array([5, 6, 7, 8, 9])])
    assert tris.tolist() == [[10, 11, 12], [10, 12, 13], [1, 2, 3], [5, 6, 7], [5, 7, 8], [5, 8, 9]]
    assert owner.tolist() == [0, 0, 1, 2, 2, 2]


def test_convert_tiny_facexmodel(tiny_facexmodel, tmp_path):
    folder, shapes = tiny_facexmodel
    out = convert_facexmodel(folder, tmp_path / "out" / "ict_facekit.npz", layout=TINY_LAYOUT)
    with np.load(out) as d:
        assert REQUIRED_KEYS <= set(d.files)
        assert d["neutral"].dtype == np.float32 and d["faces"].dtype == np.int32
        np.testing.assert_allclose(d["neutral"], TINY_NEUTRAL, atol=1e-6)
        assert d["faces"].tolist() == [[0, 1, 2], [0, 2, 3], [3, 2, 4], [1, 5, 6], [1, 6, 2],
                                       [2, 6, 7], [2, 7, 4]]
        assert d["face_poly_index"].tolist() == [0, 0, 1, 2, 2, 3, 3]
        assert d["poly_sizes"].tolist() == [4, 3, 4, 4]
        assert d["faces_uv"].tolist() == d["faces"].tolist()   # uv i == vertex i here
        # Deltas = shape OBJ - neutral, in the expressions order of vertex_indices.json.
        assert list(d["exp_names"]) == ["jawOpen", "eyeBlink_L"]
        np.testing.assert_allclose(d["exp_basis"][1], shapes["eyeBlink_L"] - TINY_NEUTRAL,
                                   atol=1e-6)
        assert list(d["id_names"]) == ["identity000", "identity001"]
        np.testing.assert_allclose(d["id_basis"][0], shapes["identity000"] - TINY_NEUTRAL,
                                   atol=1e-6)
        assert list(d["extra_names"]) == ["cheekRaiser_L"]
        # Crops are polygon-range prefixes, re-indexed into their own vertex list.
        assert d["narrow_face_vidx"].tolist() == [0, 1, 2, 3]
        assert d["narrow_face_faces"].tolist() == [[0, 1, 2], [0, 2, 3]]
        assert len(d["face_faces"]) == 3 and len(d["skin_faces"]) == 7
        assert d["vertex_region"].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
        assert d["landmarks_multipie68"].tolist() == [0, 2, 4]


def test_convert_rejects_wrong_vertex_count(tiny_facexmodel, tmp_path):
    folder, _ = tiny_facexmodel
    with pytest.raises(ValueError, match="vertices"):
        convert_facexmodel(folder, tmp_path / "x.npz")   # the real ICT layout


def test_download_wrapper_offline(tiny_facexmodel, tmp_path, monkeypatch):
    """download_ict on a fake GitHub archive: picks FaceXModel/ and LICENSE, converts."""
    import functools
    import io
    import zipfile

    from model_export.data import ict_convert

    folder, _ = tiny_facexmodel
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        root = f"ICT-FaceKit-{ict_convert.ICT_COMMIT}"
        for path in folder.iterdir():
            archive.write(path, f"{root}/FaceXModel/{path.name}")
        archive.writestr(f"{root}/LICENSE", "MIT License\n")
        archive.writestr(f"{root}/README.md", "not extracted")
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url)
        return io.BytesIO(buffer.getvalue())

    monkeypatch.setattr(ict_convert.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(ict_convert, "convert_facexmodel",
                        functools.partial(ict_convert.convert_facexmodel, layout=TINY_LAYOUT))
    out = ict_convert.download_ict(tmp_path / "ict")
    commit = ict_convert.ICT_COMMIT
    assert requested == [f"https://github.com/ICT-VGL/ICT-FaceKit/archive/{commit}.zip"]
    assert out == tmp_path / "ict" / "ict_facekit.npz" and out.exists()
    assert (tmp_path / "ict" / "LICENSE").read_text() == "MIT License\n"


# --- against the shared copy --------------------------------------------------------------------

def _polygons_from_triangles(faces, owner, n_polygons):
    """Undo the fan triangulation: (p0, pk, pk+1) triangles back to polygons."""
    polygons = [[] for _ in range(n_polygons)]
    for tri, p in zip(faces.tolist(), owner.tolist()):
        polygons[p] = list(tri) if not polygons[p] else polygons[p] + [tri[2]]
    return polygons


@pytest.mark.data
@pytest.mark.slow
def test_convert_reproduces_shared_npz(ict_path, tmp_path):
    """OBJs rebuilt from the shared npz convert back to the same arrays (order, dtypes)."""
    with np.load(ict_path) as ref:
        bases = ("id_basis", "exp_basis", "extra_basis")
        ref = {k: ref[k] for k in ref.files if k not in bases} | {
            "exp2": ref["exp_basis"][:2], "id2": ref["id_basis"][:2],
            "extra1": ref["extra_basis"][:1]}
    folder = tmp_path / "FaceXModel"
    folder.mkdir()
    n_polygons = len(ref["poly_sizes"])
    polygons = _polygons_from_triangles(ref["faces"], ref["face_poly_index"], n_polygons)
    polygon_uvs = _polygons_from_triangles(ref["faces_uv"], ref["face_poly_index"], n_polygons)
    neutral = ref["neutral"].astype(np.float64)
    _write_obj(folder / "generic_neutral_mesh.obj", neutral, polygons, ref["uv"].astype(np.float64),
               polygon_uvs)
    names = list(ref["exp_names"][:2])
    for name, delta in zip(names, ref["exp2"]):
        _write_obj(folder / f"{name}.obj", neutral + delta)
    for k, delta in enumerate(ref["id2"]):
        _write_obj(folder / f"identity{k:03d}.obj", neutral + delta)
    _write_obj(folder / f"{ref['extra_names'][0]}.obj", neutral + ref["extra1"][0])
    (folder / "vertex_indices.json").write_text(json.dumps({
        "expressions": names, "idx_to_landmark_verts": ref["landmarks_multipie68"].tolist(),
        "idx_to_rigid_verts": ref["rigid_vidx"].tolist(),
        "idx_to_fitting_verts": ref["fitting_vidx"].tolist()}))

    with np.load(convert_facexmodel(folder, tmp_path / "ict_facekit.npz")) as out:
        for key in ("faces", "face_poly_index", "poly_sizes", "faces_uv", "vertex_region",
                    "region_names", "landmarks_multipie68", "rigid_vidx", "fitting_vidx",
                    "skin_vidx", "skin_faces", "face_vidx", "face_faces", "narrow_face_vidx",
                    "narrow_face_faces"):
            np.testing.assert_array_equal(out[key], ref[key], err_msg=key)
            assert out[key].dtype == ref[key].dtype, key
        np.testing.assert_array_equal(out["neutral"], ref["neutral"])
        np.testing.assert_array_equal(out["uv"], ref["uv"])
        np.testing.assert_allclose(out["exp_basis"], ref["exp2"], atol=2e-6)
        np.testing.assert_allclose(out["id_basis"], ref["id2"], atol=2e-6)
        assert out["exp_basis"].dtype == np.float32 and out["id_basis"].dtype == np.float32


# --- loader ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ict(ict_path):
    return ictlib.load_ict(ict_path)


def test_data_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FACSIMILE_DATA", str(tmp_path))
    assert ictlib.ict_data_dir() == tmp_path / "ict"
    with pytest.raises(FileNotFoundError, match="FACSIMILE_DATA"):
        ictlib.load_ict()
    monkeypatch.delenv("FACSIMILE_DATA")
    assert ictlib.ict_data_dir() == ictlib.REPO_ROOT.parent / "shared" / "data" / "ict"


@pytest.mark.data
def test_loader_shapes_and_crops(ict, ict_path):
    v = ictlib.SKIN_VERTEX_COUNT
    assert ict.neutral.shape == (v, 3) and ict.neutral.dtype == np.float32
    assert ict.id_basis.shape == (100, v, 3) and ict.exp_basis.shape == (53, v, 3)
    assert ict.faces.shape == (22288, 3) and ict.faces.max() == v - 1
    assert len(ict.exp_names) == 53 and ict.exp_names[0] == "browDown_L"
    assert (ict.narrow_face.sum(), ict.face.sum(), ict.skin.sum()) == (6706, 9409, 11248)
    assert ict.landmarks.shape == (68,) and ict.narrow_face[ict.landmarks].all()
    with np.load(ict_path) as d:
        vidx, faces = ict.submesh(ict.narrow_face)
        np.testing.assert_array_equal(vidx, d["narrow_face_vidx"])
        np.testing.assert_array_equal(faces, d["narrow_face_faces"])
        np.testing.assert_array_equal(ict.submesh(ict.skin)[1], d["skin_faces"])


@pytest.mark.data
def test_loader_is_in_blender_frame(ict):
    lm = ict.landmark_positions()
    assert np.argmin(lm[:, 1]) == 30                      # nose tip is the front-most: -Y
    assert lm[[37, 44], 2].min() > lm[[51, 57], 2].max()  # eyes above the mouth: +Z up
    assert lm[45, 0] > 0 > lm[36, 0]                      # left eye (42-47) at +X
    blink = np.linalg.norm(ict.exp_basis[ict.exp_index("eyeBlink_L")], axis=1)
    assert ict.neutral[np.argmax(blink), 0] > 0           # ICT _L moves +X
    jaw = ict.exp_basis[ict.exp_index("jawOpen")]
    assert jaw[ict.landmarks[8], 2] < -1.0                # jawOpen drops the chin (-Z), in cm


@pytest.mark.data
def test_mesh_is_the_linear_model(ict):
    id_coeffs, exp_coeffs = np.zeros(100), np.zeros(53)
    id_coeffs[3], exp_coeffs[ict.exp_index("jawOpen")] = 1.5, 0.5
    expected = ict.neutral + 1.5 * ict.id_basis[3] + 0.5 * ict.exp_basis[ict.exp_index("jawOpen")]
    np.testing.assert_allclose(ict.mesh(id_coeffs, exp_coeffs), expected, atol=1e-5)
    np.testing.assert_array_equal(ict.mesh(), ict.neutral)
    np.testing.assert_allclose(ict.mesh(id_coeffs[:4]), ict.mesh(id_coeffs), atol=1e-6)
    with pytest.raises(ValueError):
        ict.mesh(np.zeros(101))


@pytest.mark.data
def test_loader_is_cached_and_read_only(ict, ict_path):
    assert ictlib.load_ict(ict_path) is ict
    with pytest.raises(ValueError):
        ict.neutral[0, 0] = 1.0
    assert ict.mesh().flags.writeable   # results are the caller's own


def test_submesh_reindexes():
    faces = np.array([[0, 1, 2], [1, 3, 2], [3, 4, 2]])
    vidx, sub = ictlib.submesh(faces, np.array([False, True, True, True, False]))
    assert vidx.tolist() == [1, 2, 3] and sub.tolist() == [[0, 2, 1]]


def test_ensure_ict_downloads_only_when_absent(tmp_path, monkeypatch):
    from model_export.data import ict as ict_module
    from model_export.data import ict_convert

    calls = []

    def fake_download(dest):
        calls.append(Path(dest))
        Path(dest).mkdir(parents=True, exist_ok=True)
        (Path(dest) / ict_module.NPZ_NAME).write_bytes(b"converted")

    monkeypatch.setenv("FACSIMILE_DATA", str(tmp_path))
    monkeypatch.setattr(ict_convert, "download_ict", fake_download)
    path = ict_module.ensure_ict(log=lambda _msg: None)
    assert calls == [tmp_path / "ict"] and path == tmp_path / "ict" / ict_module.NPZ_NAME
    ict_module.ensure_ict(log=lambda _msg: None)
    assert len(calls) == 1
