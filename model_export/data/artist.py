# SPDX-License-Identifier: GPL-3.0-or-later
"""Training heads that look like artists' heads (issue 12), drawn beside the classic ones.

The classic pool entry (:func:`model_export.data.dataset.make_topology` /
:func:`~model_export.data.dataset.make_pool_mesh`) is an open ICT skin crop. Artists build
heads differently, and each difference is one random choice of an :class:`ArtistSpec`:

* **cavities** - eye sockets open (ICT's holes) or closed by ICT's own socket shells fused
  to the lids; the mouth open or closed by ICT's mouth bag fused to the lips;
* **inner parts** - eyeballs, and teeth with gums and tongue: absent, loose parts, or
  welded into the skin (part vertices within ``WELD_CM`` of the skin are merged with it,
  as a modeller's "merge by distance" does, so the part becomes one surface with the lids,
  the sockets or the mouth bag);
* **crop** - the face mask, the face with ears and throat, or the full head with neck;
* **density** - a low-poly game head (500-1,500 vertices on the face), a mid one (at most
  the networks' proxy size) or a dense one (4k-12k vertices, which the add-on's proxy
  reduces as it would any dense head);
* **proportions** - :func:`model_export.data.proportions.artist_warp` (eyes apart and
  together, up and down, up to 2x; short and long lower faces; narrow and wide mouths;
  snouts; big craniums), and a pitch of +-15 degrees.

Ground truth is ICT's own motion for every vertex of the whole head (its sockets stretch
with the lids and lips, its jaw carries the lower teeth, gums and tongue, its eyeballs
turn), carried through every step by closest-point correspondence: a re-meshed vertex is an
ICT vertex (clustering keeps the cluster's nearest original vertex), a welded part vertex
takes the skin vertex it merged with, and each vertex the networks see takes the values at
its closest point on the re-meshed skin.

Every entry, classic or artist, then goes through exactly the add-on's preprocessing,
:func:`blender_addon.core.rig.prepare_head` with ``cavities=True``: weld, split loose parts,
find the skin, normalize, build the proxy, cut out the closed cavities
(:mod:`blender_addon.core.cavities`) and compute the operators. The networks therefore learn
on what they are given at inference: the outer skin, with loose parts gone and closed
sockets cut away along the rim the cavity finder draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from blender_addon.core import features as featlib
from blender_addon.core.closest_point import closest_point_barycentric, interpolate_barycentric
from blender_addon.core.errors import FacsimileError
from blender_addon.core.mesh.proxy import cluster_simplify
from blender_addon.core.rig import prepare_head

from . import dataset
from .ict import FACE_VERTEX_COUNT, NARROW_FACE_VERTEX_COUNT, SKIN_VERTEX_COUNT
from .ict_parts import ICTParts
from .proportions import artist_warp
from .stylize import random_stylization

__all__ = ["ArtistSpec", "ARTIST_SHARE", "CHOICES", "random_spec", "source_mesh", "remesh",
           "through_addon", "artist_entry", "classic_entry", "pool_entry"]

ARTIST_SHARE = 0.5           # share of the pool drawn as artists' heads (the experiment; see train.Recipe)
WELD_CM = 0.1                # "merge by distance" of a welded part (ICT lids rest ~0.1 cm off the eyeball)
PITCH_DEG = 15.0
TILT_DEG = 5.0               # yaw and roll on top of the pitch

# choice: (options, probabilities)
CHOICES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "crop": (("narrow_face", "face", "skin"), (0.2, 0.3, 0.5)),
    "eyes": (("open", "closed"), (0.5, 0.5)),
    "mouth": (("open", "closed"), (0.5, 0.5)),
    "eyeballs": (("none", "loose", "welded"), (0.3, 0.4, 0.3)),
    "mouth_parts": (("none", "loose", "welded"), (0.35, 0.4, 0.25)),
    "density": (("low", "mid", "dense"), (0.35, 0.35, 0.3)),
    "proportions": (("artist", "classic", "none"), (0.8, 0.1, 0.1)),
}
FACE_VERTS_LOW = (500, 1500)      # vertices on the face (the narrow face mask) of a low-poly head
TOTAL_VERTS_MID = (1500, 3000)
TOTAL_VERTS_DENSE = (4000, 12000)
_CROP_COUNT = {"narrow_face": NARROW_FACE_VERTEX_COUNT, "face": FACE_VERTEX_COUNT, "skin": SKIN_VERTEX_COUNT}


@dataclass
class ArtistSpec:
    crop: str = "skin"
    eyes: str = "open"
    mouth: str = "open"
    eyeballs: str = "none"
    mouth_parts: str = "none"
    density: str = "mid"
    proportions: str = "artist"
    pitch_deg: float = 0.0
    warp: dict = field(default_factory=dict)   # the proportions drawn (for logs and figures)

    def describe(self) -> str:
        warp = " ".join(f"{k}={v:.2f}" for k, v in self.warp.items())
        return (f"{self.crop} eyes:{self.eyes} mouth:{self.mouth} eyeballs:{self.eyeballs} "
                f"teeth:{self.mouth_parts} {self.density} pitch={self.pitch_deg:+.0f} {warp}").strip()


def random_spec(rng: np.random.Generator) -> ArtistSpec:
    picks = {name: options[rng.choice(len(options), p=probs)] for name, (options, probs) in CHOICES.items()}
    return ArtistSpec(**picks, pitch_deg=float(rng.uniform(-PITCH_DEG, PITCH_DEG)))


def _selection(parts: ICTParts, spec: ArtistSpec) -> np.ndarray:
    keep = np.zeros(len(parts.neutral), bool)
    keep[:_CROP_COUNT[spec.crop]] = True
    if spec.eyes == "closed":
        keep |= parts.mask("eye_sockets")
    if spec.mouth == "closed":
        keep |= parts.mask("mouth_socket")
    if spec.eyeballs != "none":
        keep |= parts.mask("eyeballs")
    if spec.mouth_parts != "none":
        keep |= parts.mask("teeth", "gums_and_tongue")
    return keep


def source_mesh(parts: ICTParts, spec: ArtistSpec, id_coeffs: np.ndarray, rng: np.random.Generator):
    """The head on ICT's own topology: ``(verts, faces, deltas (53,V,3), labels, welded_part)``.

    ``welded_part`` marks the vertices of parts to be welded into the skin. The identity,
    then the proportions, act on the whole head, parts included, so eyeballs stay in their
    sockets and teeth in the mouth."""
    neutral = parts.mesh(id_coeffs).astype(np.float64)
    deltas = parts.exp_basis.astype(np.float64)
    if spec.proportions != "none":
        skin_faces = parts.faces[(parts.faces < SKIN_VERTEX_COUNT).all(1)]
        if spec.proportions == "artist":
            warp, spec.warp = artist_warp(neutral[parts.landmarks], rng, neutral[:SKIN_VERTEX_COUNT], skin_faces)
        else:
            warp = random_stylization(neutral[parts.landmarks], rng, rng.uniform(0.3, 1.0))
        warped = warp.apply(neutral)
        deltas = warp.apply(neutral[None] + deltas) - warped[None]
        neutral = warped
    keep = _selection(parts, spec)
    remap = np.full(len(keep), -1, np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    faces = remap[parts.faces[keep[parts.faces].all(1)]]
    welded = np.zeros(len(keep), bool)
    if spec.eyeballs == "welded":
        welded |= parts.mask("eyeballs")
    if spec.mouth_parts == "welded":
        welded |= parts.mask("teeth", "gums_and_tongue")
    return neutral[keep], faces, deltas[:, keep], parts.labels[keep], welded[keep]


def _weld(verts, faces, welded):
    """Merge each welded-part vertex lying within WELD_CM of another surface's vertex into it."""
    from scipy.spatial import cKDTree

    target = ~welded
    if not welded.any() or not target.any():
        return faces
    dist, nearest = cKDTree(verts[target]).query(verts[welded])
    index = np.arange(len(verts))
    snap = dist < WELD_CM
    index[np.flatnonzero(welded)[snap]] = np.flatnonzero(target)[nearest[snap]]
    faces = index[faces]
    return faces[(faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 0] != faces[:, 2])]


def _cell_for(verts, faces, count_of, target, offset, rotation):
    """Bisect the clustering cell so that ``count_of(result) <= target`` (about)."""
    extent = float(np.ptp(verts, axis=0).max())
    lo, hi, best = extent / 600.0, extent / 4.0, None
    for _ in range(16):
        cell = np.sqrt(lo * hi)
        result = cluster_simplify(verts, faces, cell, offset=offset * cell, rotation=rotation)
        n = count_of(result)
        if n > target:
            lo = cell
        else:
            hi, best = cell, (cell, result)
            if n > 0.93 * target:
                break
    return best or (hi, cluster_simplify(verts, faces, hi, offset=offset * hi, rotation=rotation))


def remesh(verts, faces, face_mask, spec: ArtistSpec, rng: np.random.Generator):
    """Re-mesh by vertex clustering on a random grid: ``(faces, source_index)`` with every new
    vertex an original one (``verts[source_index]``). ``face_mask`` marks the face area the
    low-poly vertex count refers to."""
    rotation = dataset._random_rotation(rng, np.pi)
    offset = rng.uniform(0, 1, 3)
    if spec.density == "low":
        target = rng.uniform(*FACE_VERTS_LOW)
        count = lambda r: int(face_mask[r[2]].sum())    # noqa: E731
    else:
        target = rng.uniform(*(TOTAL_VERTS_MID if spec.density == "mid" else TOTAL_VERTS_DENSE))
        count = lambda r: len(r[0])                     # noqa: E731
    _, (_, new_faces, source) = _cell_for(verts, faces, count, target, offset, rotation)
    perm = rng.permutation(len(source))                 # artists' vertex orders are arbitrary
    inverse = np.argsort(perm)
    return inverse[np.asarray(new_faces, np.int64)], np.asarray(source)[perm]


def through_addon(verts, faces, deltas, labels, name: str, id_coeffs) -> dataset.PoolMesh:
    """What the networks see of this head at inference, with its ground truth.

    :func:`blender_addon.core.rig.prepare_head` (the add-on's own preprocessing, cavities on);
    each vertex it hands the networks takes deltas and labels at its closest point on the
    head's skin (the nearest corner's label)."""
    verts = np.asarray(verts, np.float64)
    head = prepare_head(verts, faces, cavities=True)
    prepared = head.prepared
    canon = head.norm.apply(verts)
    skin = head.skin
    skin_faces = faces[skin[faces].all(1)]
    fi, bary = closest_point_barycentric(np.asarray(prepared.verts, np.float64), canon, skin_faces)
    moved = interpolate_barycentric(np.moveaxis(deltas, 0, 1), skin_faces, fi, bary)    # (M,53,3)
    gt = head.norm.apply_vectors(np.moveaxis(moved, 1, 0)).astype(np.float32)
    corner = skin_faces[fi, np.argmax(bary, axis=1)]
    return dataset.PoolMesh(name, prepared, gt, np.asarray(labels)[corner], np.asarray(id_coeffs, np.float32),
                            float(head.norm.scale))


def _rotation(spec: ArtistSpec, rng: np.random.Generator) -> np.ndarray:
    a = np.deg2rad(spec.pitch_deg)
    pitch = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    return dataset._random_rotation(rng, np.deg2rad(TILT_DEG)) @ pitch


def artist_mesh(parts: ICTParts, spec: ArtistSpec, id_coeffs, rng: np.random.Generator):
    """The artist's head as a modeller would hand it over: ``(verts, faces, deltas, labels)``."""
    verts, faces, deltas, labels, welded = source_mesh(parts, spec, id_coeffs, rng)
    faces = _weld(verts, faces, welded)
    face_mask = np.zeros(len(verts), bool)
    face_mask[:NARROW_FACE_VERTEX_COUNT] = True         # the selection keeps the skin prefix first
    faces, source = remesh(verts, faces, face_mask, spec, rng)
    rot = _rotation(spec, rng)
    return verts[source] @ rot.T, faces, deltas[:, source] @ rot.T, labels[source]


def artist_entry(parts: ICTParts, rng: np.random.Generator, name: str,
                 spec: ArtistSpec | None = None) -> tuple[dataset.PoolMesh, ArtistSpec]:
    spec = spec or random_spec(rng)
    id_coeffs = dataset.random_identity(rng)
    verts, faces, deltas, labels = artist_mesh(parts, spec, id_coeffs, rng)
    return through_addon(verts, faces, deltas, labels, name, id_coeffs), spec


def classic_entry(ict, labels, rng: np.random.Generator, name: str) -> dataset.PoolMesh:
    """Today's entry (an open ICT crop, :mod:`~model_export.data.stylize`'s proportions, a tilt
    of up to 8 degrees), through the add-on's preprocessing like every other."""
    topo = dataset.make_topology(ict, labels, rng)
    id_coeffs = dataset.random_identity(rng)
    neutral, deltas = dataset.head_geometry(ict, id_coeffs, rng)
    rot = dataset._random_rotation(rng, np.deg2rad(8.0))
    verts = topo.carry(ict.faces, neutral) @ rot.T
    moved = topo.carry(ict.faces, deltas) @ rot.T
    return through_addon(verts, topo.faces, moved, topo.labels, name, id_coeffs)


def pool_entry(ict, labels, parts: ICTParts | None, seed: int, i: int,
               artist_share: float = ARTIST_SHARE) -> dataset.PoolMesh:
    """Pool entry ``i``: depends only on ``(seed, i)``. A head the add-on would refuse (it
    never happened in testing, but a draw can be extreme) is drawn again.

    ``artist_share`` 0 is the recipe of the shipped models, kept bit for bit: classic
    entries only, normalized and prepared directly (no proxy, no cavity step)."""
    rng = np.random.default_rng([seed, i])
    if artist_share <= 0.0:
        topo = dataset.make_topology(ict, labels, rng)
        return dataset.make_pool_mesh(ict, topo, dataset.random_identity(rng), rng, f"train{i:04d}")
    for attempt in range(4):
        try:
            if parts is not None and rng.random() < artist_share:
                entry, spec = artist_entry(parts, rng, f"train{i:04d}")
                entry.name = f"train{i:04d} {spec.describe()}"
                return entry
            return classic_entry(ict, labels, rng, f"train{i:04d} classic")
        except (FacsimileError, ValueError, np.linalg.LinAlgError):
            if attempt == 3:
                raise
    raise AssertionError("unreachable")


