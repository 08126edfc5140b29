# SPDX-License-Identifier: GPL-3.0-or-later
"""Build ``ict_facekit.npz`` from the upstream ICT-FaceKit ``FaceXModel/`` folder.

The shared data folder already holds the converted file; this module is how it is made
again from the public source (https://github.com/ICT-VGL/ICT-FaceKit, MIT licence), so the
project never depends on a copy nobody can rebuild.

Upstream facts the conversion relies on (ICT-FaceKit README and ``Scripts/face_model_io.py``):

* Every shape OBJ (``identity000..099``, the 53 expressions, 4 extras) is a **full mesh** with
  the neutral's topology; a mode is ``obj - generic_neutral_mesh`` (upstream does exactly
  this). The identity OBJs are already scaled to one standard deviation, so the deltas are
  stored as they are and identity weights are drawn from N(0, 1).
* Expression order is ``vertex_indices.json["expressions"]``; identities are read as
  ``identity000``, ``identity001``, ... until the first missing file (upstream's loop).
* Polygons are quads and a few triangles. They are fan-triangulated in OBJ order,
  ``(v0, v1, v2), (v0, v2, v3)``, and ``face_poly_index`` keeps each triangle's polygon, because
  the README's polygon ranges (which define the face / narrow face / skin crops) count polygons.
* Coordinates stay in ICT's own frame (Y up, +Z forward, centimetres); the loader
  (:mod:`model_export.data.ict`) converts to Blender's frame.

Values are parsed and differenced in float64 and only then rounded to float32, so deltas of
vertices a shape does not move are ~1e-13, not float32 parse noise.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ICT_REPOSITORY = "https://github.com/ICT-VGL/ICT-FaceKit"
ICT_COMMIT = "da5f95a607f5e6b37755b38d3385d7f2853732e5"
NEUTRAL_OBJ = "generic_neutral_mesh.obj"
CONFIG_JSON = "vertex_indices.json"
NPZ_NAME = "ict_facekit.npz"


@dataclass(frozen=True)
class FaceXLayout:
    """Index ranges of the model's parts, all 0-based and inclusive as in the upstream README.

    ``geometries`` is ``(name, first_vertex, last_vertex)`` and must tile the vertex array.
    Each crop is ``(first_vertex, last_vertex, last_polygon)``: a prefix of the vertices and of
    the polygons, which is how ICT orders its mesh (face first, then head, then the rest).
    """

    n_vertices: int
    geometries: tuple[tuple[str, int, int], ...]
    crops: dict[str, tuple[int, int, int]]


# README "Topology" and "Face area details" tables of the pinned commit.
ICT_LAYOUT = FaceXLayout(
    n_vertices=26719,
    geometries=(
        ("face", 0, 9408), ("head_and_neck", 9409, 11247), ("mouth_socket", 11248, 13293),
        ("eye_socket_left", 13294, 13677), ("eye_socket_right", 13678, 14061),
        ("gums_and_tongue", 14062, 17038), ("teeth", 17039, 21450),
        ("eyeball_left", 21451, 23020), ("eyeball_right", 23021, 24590),
        ("lacrimal_fluid_left", 24591, 24794), ("lacrimal_fluid_right", 24795, 24998),
        ("eye_blend_left", 24999, 25022), ("eye_blend_right", 25023, 25046),
        ("eye_occlusion_left", 25047, 25198), ("eye_occlusion_right", 25199, 25350),
        ("eyelashes_left", 25351, 26034), ("eyelashes_right", 26035, 26718),
    ),
    crops={
        "narrow_face": (0, 6705, 6559),   # facial mask, forehead to chin
        "face": (0, 9408, 9229),          # + ears and front of the neck
        "skin": (0, 11247, 11143),        # + back of the head and neck: the whole outer skin
    },
)


@dataclass(frozen=True)
class ObjMesh:
    """The parts of a Wavefront OBJ this project reads (positions in float64)."""

    vertices: np.ndarray          # (V, 3) float64
    uvs: np.ndarray               # (T, 2) float64
    polygons: list[np.ndarray]    # per polygon, 0-based vertex indices
    polygon_uvs: list[np.ndarray]  # per polygon, 0-based uv indices (-1 where absent)


def _resolve(index: str, count: int) -> int:
    """OBJ indices are 1-based; negative ones count back from the last element read so far."""
    i = int(index)
    return i - 1 if i > 0 else count + i


def read_obj(path: Path, *, with_faces: bool = True) -> ObjMesh:
    """Parse ``v``, ``vt`` and ``f`` records; everything else (materials, groups) is ignored.

    Shape OBJs only need their positions (``with_faces=False``), which skips the slow part.
    """
    v_tokens: list[str] = []
    vt_rows: list[list[float]] = []
    polygons: list[np.ndarray] = []
    polygon_uvs: list[np.ndarray] = []
    n_v = n_vt = 0
    with open(path, "r", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("v "):
                v_tokens.extend(line.split()[1:4])
                n_v += 1
            elif not with_faces:
                continue
            elif line.startswith("vt "):
                vt_rows.append([float(t) for t in line.split()[1:3]])
                n_vt += 1
            elif line.startswith("f "):
                corners = [c.split("/") for c in line.split()[1:]]
                polygons.append(np.array([_resolve(c[0], n_v) for c in corners], np.int64))
                polygon_uvs.append(np.array(
                    [_resolve(c[1], n_vt) if len(c) > 1 and c[1] else -1 for c in corners],
                    np.int64))
    vertices = np.array(v_tokens, dtype=np.float64).reshape(-1, 3)
    uvs = np.array(vt_rows, dtype=np.float64).reshape(-1, 2)
    return ObjMesh(vertices, uvs, polygons, polygon_uvs)


def fan_triangulate(polygons: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Triangles ``(p0, pk, pk+1)`` for each polygon, in order, and each triangle's polygon."""
    triangles, owner = [], []
    for index, poly in enumerate(polygons):
        for k in range(1, len(poly) - 1):
            triangles.append((poly[0], poly[k], poly[k + 1]))
            owner.append(index)
    return np.asarray(triangles, np.int32).reshape(-1, 3), np.asarray(owner, np.int32)


def _shape_deltas(folder: Path, names: list[str], neutral: np.ndarray) -> np.ndarray:
    """(K, V, 3) float32 deltas ``shape - neutral`` of the full-mesh OBJs ``folder/name.obj``."""
    deltas = np.empty((len(names), *neutral.shape), np.float32)
    for k, name in enumerate(names):
        vertices = read_obj(folder / f"{name}.obj", with_faces=False).vertices
        if vertices.shape != neutral.shape:
            raise ValueError(f"{name}.obj has {len(vertices)} vertices, neutral has {len(neutral)}")
        deltas[k] = vertices - neutral
    return deltas


def _identity_names(folder: Path) -> list[str]:
    names = []
    while (folder / f"identity{len(names):03d}.obj").exists():
        names.append(f"identity{len(names):03d}")
    return names


def _crop(triangles: np.ndarray, owner: np.ndarray, first: int, last: int,
          last_polygon: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertex indices and re-indexed triangles of a prefix crop (see :class:`FaceXLayout`)."""
    keep = owner <= last_polygon
    faces = triangles[keep]
    if faces.size and (faces.min() < first or faces.max() > last):
        raise ValueError(f"polygons 0..{last_polygon} use vertices outside {first}..{last}")
    return np.arange(first, last + 1, dtype=np.int32), (faces - first).astype(np.int32)


def convert_facexmodel(folder: str | Path, out_path: str | Path,
                       layout: FaceXLayout = ICT_LAYOUT) -> Path:
    """Convert an ICT-FaceKit ``FaceXModel/`` folder into the project's ``ict_facekit.npz``.

    Writes the keys documented in ``shared/data/ict/README.md`` with the same dtypes and
    returns the path written. ``layout`` is only replaced by tests that use a tiny mesh.
    """
    folder, out_path = Path(folder), Path(out_path)
    config = json.loads((folder / CONFIG_JSON).read_text(encoding="utf-8"))
    neutral_obj = read_obj(folder / NEUTRAL_OBJ)
    neutral = neutral_obj.vertices
    if len(neutral) != layout.n_vertices:
        raise ValueError(f"{NEUTRAL_OBJ} has {len(neutral)} vertices, layout expects "
                         f"{layout.n_vertices}: not the pinned ICT-FaceKit model")

    triangles, owner = fan_triangulate(neutral_obj.polygons)
    uv_triangles, _ = fan_triangulate(neutral_obj.polygon_uvs)

    exp_names = list(config["expressions"])
    id_names = _identity_names(folder)
    known = {NEUTRAL_OBJ, *(f"{n}.obj" for n in exp_names + id_names)}
    extra_names = sorted(p.stem for p in folder.glob("*.obj") if p.name not in known)

    vertex_region = np.empty(layout.n_vertices, np.int8)
    covered = np.zeros(layout.n_vertices, bool)
    for index, (_, first, last) in enumerate(layout.geometries):
        vertex_region[first:last + 1] = index
        covered[first:last + 1] = True
    if not covered.all():
        raise ValueError("layout geometries do not cover every vertex")

    arrays = {
        "neutral": neutral.astype(np.float32),
        "faces": triangles,
        "face_poly_index": owner,
        "poly_sizes": np.array([len(p) for p in neutral_obj.polygons], np.int32),
        "uv": neutral_obj.uvs.astype(np.float32),
        "faces_uv": uv_triangles,
        "exp_basis": _shape_deltas(folder, exp_names, neutral),
        "exp_names": np.array(exp_names),
        "extra_basis": _shape_deltas(folder, extra_names, neutral),
        "extra_names": np.array(extra_names),
        "id_basis": _shape_deltas(folder, id_names, neutral),
        "id_names": np.array(id_names),
        "vertex_region": vertex_region,
        "region_names": np.array([name for name, _, _ in layout.geometries]),
        "landmarks_multipie68": np.array(config["idx_to_landmark_verts"], np.int32),
        "rigid_vidx": np.array(config.get("idx_to_rigid_verts", []), np.int32),
        "fitting_vidx": np.array(config.get("idx_to_fitting_verts", []), np.int32),
    }
    for crop, (first, last, last_polygon) in layout.crops.items():
        vidx, faces = _crop(triangles, owner, first, last, last_polygon)
        arrays[f"{crop}_vidx"], arrays[f"{crop}_faces"] = vidx, faces

    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_path, **arrays)
    return out_path


def download_ict(dest: str | Path, commit: str = ICT_COMMIT, timeout: float = 120.0) -> Path:
    """Fetch ICT-FaceKit at ``commit`` from GitHub and write ``dest/ict_facekit.npz``.

    Also copies the upstream ``LICENSE`` next to it (MIT requires the notice to travel with
    the data). Needs network access; everything after the download is
    :func:`convert_facexmodel`, which is tested offline.
    """
    dest = Path(dest)
    url = f"{ICT_REPOSITORY}/archive/{commit}.zip"
    with tempfile.TemporaryDirectory(prefix="ict-facekit-") as tmp:
        archive_path = Path(tmp) / "ict-facekit.zip"
        # Streamed to disk: the archive is a few hundred MB of OBJs.
        with urllib.request.urlopen(url, timeout=timeout) as response, \
                open(archive_path, "wb") as handle:
            shutil.copyfileobj(response, handle)
        with zipfile.ZipFile(archive_path) as archive:
            root = archive.namelist()[0].split("/")[0]          # ICT-FaceKit-<commit>
            wanted = [m for m in archive.namelist()
                      if m.startswith(f"{root}/FaceXModel/") or m == f"{root}/LICENSE"]
            archive.extractall(tmp, wanted)
        out = convert_facexmodel(Path(tmp) / root / "FaceXModel", dest / NPZ_NAME)
        if (Path(tmp) / root / "LICENSE").exists():
            shutil.copyfile(Path(tmp) / root / "LICENSE", dest / "LICENSE")
    return out
