# SPDX-License-Identifier: GPL-3.0-or-later
"""ICT-FaceKit ("ICT Face Model Light") as the training code uses it: the skin, in Blender's frame.

Only the continuous outer skin is kept: vertices 0..11247 (face, then head and neck). The
mouth socket, eye sockets, teeth, eyeballs and lashes follow in the upstream vertex order and
are cut off at load time; the artists' training heads take them from
:mod:`model_export.data.ict_parts`.

Frame and units: the add-on and the networks work in Blender's frame (Z up, the face looks
toward -Y, +X is the character's left). ICT is Y up, +Z forward, in centimetres, so positions
and deltas become ``(x, -z, y)``; centimetres are kept. ICT's ``_L`` is the subject's left,
which is +X in both frames, so no name or side changes.

Model: ``mesh = neutral + id_coeffs @ id_basis + exp_coeffs @ exp_basis`` with identity
coefficients ~ N(0, 1) (the identity modes are already scaled by their standard deviation)
and expression weights in [0, 1].

Data location: ``$FACSIMILE_DATA/ict/ict_facekit.npz``, default ``<repo>/../shared/data``.
:func:`download_ict` / :func:`convert_facexmodel` rebuild the file from the public source.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from blender_addon.core.mesh.topology import connected_components
from model_export.data.ict_convert import NPZ_NAME, convert_facexmodel, download_ict

__all__ = [
    "SKIN_VERTEX_COUNT", "FACE_VERTEX_COUNT", "NARROW_FACE_VERTEX_COUNT",
    "ICTFaceKit", "load_ict", "data_root", "ict_data_dir", "ict_npz_path", "ict_to_blender",
    "submesh", "convert_facexmodel", "download_ict", "MOUTH_PARTS", "ICTHeadWithMouth", "load_ict_with_mouth",
]

# Upstream vertex ranges are prefixes: narrow face [0, 6705] within face [0, 9408] within skin.
NARROW_FACE_VERTEX_COUNT = 6706
FACE_VERTEX_COUNT = 9409
SKIN_VERTEX_COUNT = 11248

REPO_ROOT = Path(__file__).resolve().parents[2]


def data_root() -> Path:
    """``$FACSIMILE_DATA``; else ``shared/data`` beside the repository when it exists (the
    team's machines); else ``.cache/data`` inside it, where :func:`ensure_ict` downloads."""
    if "FACSIMILE_DATA" in os.environ:
        return Path(os.environ["FACSIMILE_DATA"])
    shared = REPO_ROOT.parent / "shared" / "data"
    return shared if shared.exists() else REPO_ROOT / ".cache" / "data"


def ensure_ict(log=print) -> Path:
    """The ICT npz path, downloading and converting ICT-FaceKit first when it is absent."""
    path = ict_npz_path()
    if not path.exists():
        from .ict_convert import download_ict

        log(f"ICT-FaceKit not found at {path}: downloading it from its public home (MIT licence)")
        download_ict(path.parent)
    return path


def ict_data_dir() -> Path:
    return data_root() / "ict"


def ict_npz_path() -> Path:
    return ict_data_dir() / NPZ_NAME


def ict_to_blender(points: np.ndarray) -> np.ndarray:
    """ICT (Y up, +Z forward) -> Blender (Z up, -Y forward); also right for deltas."""
    points = np.asarray(points)
    return np.stack([points[..., 0], -points[..., 2], points[..., 1]], axis=-1)


def submesh(faces: np.ndarray, vertex_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertices of ``vertex_mask`` and the triangles lying entirely on them, re-indexed.

    Returns ``(vidx, sub_faces)`` with ``sub_faces`` indexing into ``vidx``.
    """
    vertex_mask = np.asarray(vertex_mask, bool)
    vidx = np.flatnonzero(vertex_mask).astype(np.int32)
    remap = np.full(len(vertex_mask), -1, np.int32)
    remap[vidx] = np.arange(len(vidx), dtype=np.int32)
    keep = vertex_mask[faces].all(axis=1)
    return vidx, remap[faces[keep]]


def _frozen(array: np.ndarray) -> np.ndarray:
    """Loaded models are cached and shared, so their arrays must not be edited in place."""
    array.flags.writeable = False
    return array


@dataclass(frozen=True, eq=False)
class ICTFaceKit:
    """The ICT skin in Blender's frame: float32, centimetres. Build it with :func:`load_ict`.

    ``landmarks`` are the 68 Multi-PIE landmark vertices (upstream
    ``idx_to_landmark_verts``). All 68 lie on the skin, inside the narrow face area (the
    loader checks it), so they index ``neutral`` directly. Order: 0-16 jaw contour from the
    character's right (-X) to left, 17-21 / 22-26 right / left brow, 27-30 nose bridge,
    31-35 nostrils, 36-41 / 42-47 right / left eye, 48-59 outer lips, 60-67 inner lips.
    """

    neutral: np.ndarray      # (V, 3) float32
    faces: np.ndarray        # (F, 3) int32, the skin triangles
    id_basis: np.ndarray     # (100, V, 3) float32 deltas, 1 std each
    exp_basis: np.ndarray    # (53, V, 3) float32 deltas
    exp_names: tuple[str, ...]
    id_names: tuple[str, ...]
    landmarks: np.ndarray    # (68,) int32
    narrow_face: np.ndarray  # (V,) bool, vertices 0..6705
    face: np.ndarray         # (V,) bool, vertices 0..9408
    skin: np.ndarray         # (V,) bool, all

    @property
    def n_vertices(self) -> int:
        return len(self.neutral)

    def exp_index(self, name: str) -> int:
        return self.exp_names.index(name)

    def mesh(self, id_coeffs: np.ndarray | None = None,
             exp_coeffs: np.ndarray | None = None) -> np.ndarray:
        """Vertices (V, 3) float32 for identity coefficients (100,) and expression weights (53,).

        Either may be omitted (zeros) or shorter than the basis (the leading modes).
        """
        verts = self.neutral.copy()
        for coeffs, basis in ((id_coeffs, self.id_basis), (exp_coeffs, self.exp_basis)):
            if coeffs is None:
                continue
            coeffs = np.asarray(coeffs, np.float32).ravel()
            if len(coeffs) > len(basis):
                raise ValueError(f"{len(coeffs)} coefficients for a basis of {len(basis)}")
            verts += np.tensordot(coeffs, basis[:len(coeffs)], axes=1)
        return verts

    def submesh(self, vertex_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(vidx, faces)`` of a crop, e.g. ``ict.submesh(ict.narrow_face)``.

        Keeps every triangle whose three corners are in the crop, so for ``face`` it also keeps
        one head-polygon triangle lying on face vertices that the npz's ``face_faces`` (built
        from the polygon range) leaves out; ``narrow_face`` and ``skin`` match the npz exactly.
        """
        return submesh(self.faces, vertex_mask)

    def landmark_positions(self, verts: np.ndarray | None = None) -> np.ndarray:
        """(68, 3) landmark positions on ``verts`` (default: the neutral)."""
        return (self.neutral if verts is None else np.asarray(verts))[self.landmarks]


def _prefix_mask(count: int) -> np.ndarray:
    mask = np.zeros(SKIN_VERTEX_COUNT, bool)
    mask[:count] = True
    return _frozen(mask)


@lru_cache(maxsize=2)
def _load(path: str) -> ICTFaceKit:
    with np.load(path) as data:
        skin_vidx = data["skin_vidx"]
        if not np.array_equal(skin_vidx, np.arange(SKIN_VERTEX_COUNT)):
            raise ValueError(f"{path}: skin_vidx is not the prefix 0..{SKIN_VERTEX_COUNT - 1}")
        landmarks = data["landmarks_multipie68"].astype(np.int32)
        if landmarks.max() >= NARROW_FACE_VERTEX_COUNT:
            raise ValueError(f"{path}: a landmark lies outside the narrow face area")

        def skin_part(key: str) -> np.ndarray:
            array = data[key][..., :SKIN_VERTEX_COUNT, :]
            return _frozen(np.ascontiguousarray(ict_to_blender(array), dtype=np.float32))

        return ICTFaceKit(
            neutral=skin_part("neutral"),
            faces=_frozen(data["skin_faces"].astype(np.int32)),
            id_basis=skin_part("id_basis"),
            exp_basis=skin_part("exp_basis"),
            exp_names=tuple(str(n) for n in data["exp_names"]),
            id_names=tuple(str(n) for n in data["id_names"]),
            landmarks=_frozen(landmarks),
            narrow_face=_prefix_mask(NARROW_FACE_VERTEX_COUNT),
            face=_prefix_mask(FACE_VERTEX_COUNT),
            skin=_prefix_mask(SKIN_VERTEX_COUNT),
        )


def load_ict(path: str | Path | None = None) -> ICTFaceKit:
    """The ICT skin model from ``path`` (default :func:`ict_npz_path`), cached per path.

    Raises ``FileNotFoundError`` with the expected location when the data is absent.
    """
    path = Path(path) if path is not None else ict_npz_path()
    if not path.exists():
        raise FileNotFoundError(
            f"ICT-FaceKit data not found at {path}: set FACSIMILE_DATA to the folder holding "
            f"ict/{NPZ_NAME}, or build it with model_export.data.ict.download_ict(<folder>/ict)")
    return _load(str(path.resolve()))


# ------------------------------------------------------------------ the mouth, for evaluation only

MOUTH_PARTS = ("upper_teeth", "lower_teeth", "gums_and_tongue", "eyeballs")


@dataclass(frozen=True, eq=False)
class ICTHeadWithMouth:
    """The ICT skin plus its loose inner parts (teeth, gums and tongue, eyeballs), Blender frame, cm.

    Never used for training (the networks rig the skin only). It checks how the add-on's
    loose-part rules (``core.parts``) move teeth on heads whose teeth really move: ICT's
    expressions carry the lower teeth, gums and tongue. ``part`` is -1 on the skin, else an
    index into :data:`MOUTH_PARTS`; upper and lower teeth are told apart by ICT's own
    jawOpen (the teeth it moves are the lower ones). The mouth and eye sockets, attached to
    the skin in ICT, are left out, as the training skin leaves them out.
    """

    neutral: np.ndarray      # (V,3) float64
    faces: np.ndarray        # (F,3) int64
    id_basis: np.ndarray     # (100,V,3) float64
    exp_basis: np.ndarray    # (53,V,3) float64
    part: np.ndarray         # (V,) int8
    landmarks: np.ndarray    # (68,) indices (all on the skin)


def load_ict_with_mouth(path: str | Path | None = None) -> ICTHeadWithMouth:
    path = Path(path) if path is not None else ict_npz_path()
    with np.load(path) as data:
        region = data["vertex_region"]
        names = [str(n) for n in data["region_names"]]
        index = {n: names.index(n) for n in ("gums_and_tongue", "teeth", "eyeball_left", "eyeball_right")}
        keep = (np.arange(len(region)) < SKIN_VERTEX_COUNT) | np.isin(region, list(index.values()))
        remap = -np.ones(len(keep), np.int64)
        remap[keep] = np.arange(int(keep.sum()))
        faces = data["faces"]
        faces = remap[faces[keep[faces].all(axis=1)]]
        exp = ict_to_blender(data["exp_basis"][:, keep]).astype(np.float64)
        region = region[keep]
        jaw_open = [str(n) for n in data["exp_names"]].index("jawOpen")
        moved = np.linalg.norm(exp[jaw_open], axis=1) > 1e-3
        part = np.full(len(region), -1, np.int8)
        teeth = region == index["teeth"]
        # A tooth is one loose part: lower when ICT's jawOpen moves any of it.
        comp = connected_components(len(region), faces)
        lower = np.isin(comp, np.unique(comp[teeth & moved]))
        part[teeth & ~lower] = MOUTH_PARTS.index("upper_teeth")
        part[teeth & lower] = MOUTH_PARTS.index("lower_teeth")
        part[region == index["gums_and_tongue"]] = MOUTH_PARTS.index("gums_and_tongue")
        part[np.isin(region, [index["eyeball_left"], index["eyeball_right"]])] = MOUTH_PARTS.index("eyeballs")
        return ICTHeadWithMouth(
            neutral=ict_to_blender(data["neutral"][keep]).astype(np.float64),
            faces=faces,
            id_basis=ict_to_blender(data["id_basis"][:, keep]).astype(np.float64),
            exp_basis=exp,
            part=part,
            landmarks=data["landmarks_multipie68"].astype(np.int64),
        )
