# SPDX-License-Identifier: GPL-3.0-or-later
"""Facial region labels on the ICT-FaceKit skin, derived from its geometry and its FACS shapes.

Every one of the 11,248 skin vertices gets exactly one of the regions named in
:mod:`blender_addon.core.regions` (order, names and descriptions live there). The labels are
computed, not painted, so they can be rebuilt and reviewed: ``python -m model_export.data.regions``
rewrites ``model_export/data/ict_regions_labels.npy``.

How a vertex is labelled
------------------------
1. **Which shapes move it** (inside ICT's narrow face area, the facial mask). Per expression,
   the displacement length at each vertex is divided by that shape's largest one, so a subtle
   shape counts as much as jawOpen. Shapes form families (:data:`FAMILIES`: brow, lid, cheek,
   nose, mouth); a vertex belongs to the family with the highest relative motion, or is
   "static" when no shape moves it by :data:`STATIC_LEVEL` of that shape's peak.
2. **Where it is** relative to the 68 landmarks (front view x, z; see :class:`FaceFrame`).
   Lid family: upper / lower lid by the line through the eye corners. Brow family: forehead
   above the brow band, glabella between the inner brow ends, brows. Cheek family (cheek
   raisers): cheek, jaw below the mouth-corner-to-jaw line, brow/forehead at the temple.
   Nose and mouth families: mouth corners (a disc at each lip corner), then, above the mouth
   slit, nose inside the nose outline, upper lip inside the nasolabial fold line, a band along
   that line (nasolabial) and cheek beyond; below the slit lower lip, chin and jaw.
3. **Outside the facial mask** nothing deforms much, so geometry decides: ears (ICT meshes
   the auricle densely; that seed plus what stands out of the head surface around it), neck
   (below the side-view line chin, lower jaw, under the ear lobe, nape; the skin under the
   chin inside the mask too), skin in front of the lower ear is jaw, skin that the frontalis
   still pulls strongly is forehead, and the rest is scalp.
4. **Clean-up.** Majority voting over mesh neighbours (:data:`SMOOTHING_ROUNDS` rounds)
   smooths borders; every region keeps only its largest connected piece (other pieces join
   their neighbours); then the right half is copied from the left through ICT's exact
   mirror-vertex map, so L/R regions are exact mirror images. Sided regions are never allowed
   on the other side or on the midline.

Facial thresholds are fractions of the eye width or the mouth width; only the ear detection
uses centimetres, because it depends on ICT's mesh resolution rather than on proportions.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from blender_addon.core.regions import REGION_INDEX, REGION_MIRROR_INDEX, REGION_NAMES
from model_export.data.ict import ICTFaceKit, REPO_ROOT, load_ict

LABELS_PATH = Path(__file__).with_name("ict_regions_labels.npy")
FIGURE_PATH = REPO_ROOT / "docs" / "images" / "regions.png"

# Shape families by ICT name prefix. eyeSquint counts as cheek: it raises the lower lid *and*
# the cheek below it, and the lids are better delimited by blink/wide/look.
FAMILIES: dict[str, tuple[str, ...]] = {
    "brow": ("browDown", "browInnerUp", "browOuterUp"),
    "lid": ("eyeBlink", "eyeWide", "eyeLook"),
    "cheek": ("cheekSquint", "eyeSquint"),
    "nose": ("noseSneer",),
    "mouth": ("mouth", "jaw", "cheekPuff"),
}
STATIC_LEVEL = 0.10      # below this fraction of every shape's peak motion a vertex is "static"
HAIRLINE_LEVEL = 0.5     # brow motion that still makes skin beyond the facial mask "forehead"
SMOOTHING_ROUNDS = 4

# Ear detection (centimetres: ICT's own mesh resolution, not a facial proportion).
EAR_SEED_EDGE = 0.4      # the auricle is meshed far more densely than the head around it
EAR_PROTRUSION = 0.3     # how far outside the head surface an auricle vertex sits
EAR_EXTENT = 3.4         # ear outline, in standard deviations of the seed's side-view spread
EAR_RING = (3.6, 4.6)    # annulus around the ear whose vertices give the head surface there


@dataclass(frozen=True)
class FaceFrame:
    """Landmark anchors of the character's left half (x >= 0), front view (x, z) unless noted.

    Labels are computed for the left half and mirrored, so only left-side anchors are needed;
    ``eye_width`` and ``mouth_half`` set the scale of every facial threshold.
    """

    eye_inner: np.ndarray      # landmark 42
    eye_outer: np.ndarray      # landmark 45
    eye_width: float
    brow_x: np.ndarray         # landmarks 22..26 (inner to outer)
    brow_z: np.ndarray
    nose_root_z: float         # landmark 27
    nose_tip_z: float          # landmark 30
    nostril: np.ndarray        # landmark 35, outer edge of the left nostril
    nose_base_z: float         # landmark 33, subnasale
    mouth_corner: np.ndarray   # landmark 54
    mouth_half: float          # x of the mouth corner: half the mouth width
    slit_x: np.ndarray         # the mouth slit (between the inner lips), centre to corner
    slit_z: np.ndarray
    lower_lip_z: float         # landmark 57, bottom of the lower lip
    chin_yz: np.ndarray        # (y, z) of landmark 8
    jaw_yz: np.ndarray         # (y, z) of landmark 12, lower jaw below the mouth corner
    jaw_side: np.ndarray       # landmark 14, jaw contour below the ear (cheek / jaw split)

    @classmethod
    def from_landmarks(cls, landmarks: np.ndarray) -> "FaceFrame":
        xz = landmarks[:, [0, 2]]
        slit = np.array([xz[[62, 66]].mean(0), xz[[63, 65]].mean(0), xz[64]])
        return cls(
            eye_inner=xz[42], eye_outer=xz[45], eye_width=float(np.linalg.norm(xz[45] - xz[42])),
            brow_x=xz[22:27, 0], brow_z=xz[22:27, 1],
            nose_root_z=float(xz[27, 1]), nose_tip_z=float(xz[30, 1]), nostril=xz[35],
            nose_base_z=float(xz[33, 1]),
            mouth_corner=xz[54], mouth_half=float(xz[54, 0]), slit_x=slit[:, 0], slit_z=slit[:, 1],
            lower_lip_z=float(xz[57, 1]),
            chin_yz=landmarks[8, 1:], jaw_yz=landmarks[12, 1:], jaw_side=xz[14],
        )

    def eye_line_z(self, x: np.ndarray) -> np.ndarray:
        """The line through the eye corners, extended: upper lid above, lower lid below."""
        (x0, z0), (x1, z1) = self.eye_inner, self.eye_outer
        return z0 + (x - x0) * (z1 - z0) / (x1 - x0)

    def brow_line_z(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.brow_x, self.brow_z)

    def brow_top_z(self, x: np.ndarray) -> np.ndarray:
        """Top of the brow band: the eyebrow and the skin just above it."""
        return self.brow_line_z(x) + 0.25 * self.eye_width

    def slit_z_at(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.slit_x, self.slit_z)

    def cheek_jaw_z(self, x: np.ndarray) -> np.ndarray:
        """The line from the mouth corner to the jaw contour below the ear; jaw below it."""
        (x0, z0), (x1, z1) = self.mouth_corner, self.jaw_side
        return z0 + (x - x0) * (z1 - z0) / (x1 - x0)

    def fold_x_at(self, z: np.ndarray) -> np.ndarray:
        """The nasolabial fold: from the alar crease (beside the nostril, at the nose tip's
        height) to just outside the mouth corner, extended linearly."""
        x0, z0 = float(self.nostril[0]) + 0.175 * self.eye_width, self.nose_tip_z
        x1, z1 = float(self.mouth_corner[0]) * 1.3, float(self.mouth_corner[1])
        return x0 + (z - z0) * (x1 - x0) / (z1 - z0)

    def nose_half_width(self, z: np.ndarray) -> np.ndarray:
        """Half width of the nose outline at height z: bridge, tip, alae, base."""
        w, nx = self.eye_width, float(self.nostril[0])
        heights = [self.nose_base_z - 0.08 * w, float(self.nostril[1]), self.nose_tip_z,
                   self.nose_root_z]
        widths = [0.9 * nx, nx + 0.175 * w, nx, 0.35 * w]
        order = np.argsort(heights)
        inside = (z > heights[0]) & (z < self.nose_root_z + 0.12 * w)
        return np.where(inside, np.interp(z, np.take(heights, order), np.take(widths, order)), 0.0)


def relative_motion(exp_basis: np.ndarray) -> np.ndarray:
    """(K, V) displacement length of each shape divided by that shape's largest one."""
    magnitude = np.linalg.norm(exp_basis, axis=-1)
    return magnitude / np.maximum(magnitude.max(axis=1, keepdims=True), 1e-12)


def family_motion(exp_basis: np.ndarray, exp_names: tuple[str, ...]) -> np.ndarray:
    """(len(FAMILIES), V): per family, the highest relative motion among its shapes."""
    relative = relative_motion(exp_basis)
    motion = np.zeros((len(FAMILIES), exp_basis.shape[1]))
    for f, prefixes in enumerate(FAMILIES.values()):
        members = [j for j, name in enumerate(exp_names) if name.startswith(prefixes)]
        motion[f] = relative[members].max(axis=0)
    return motion


def vertex_adjacency(faces: np.ndarray, n_vertices: int) -> sp.csr_matrix:
    """Symmetric 0/1 vertex adjacency of a triangle mesh."""
    i = faces[:, [0, 1, 2, 1, 2, 0]].ravel()
    j = faces[:, [1, 2, 0, 0, 1, 2]].ravel()
    adjacency = sp.coo_matrix((np.ones(len(i)), (i, j)), shape=(n_vertices, n_vertices)).tocsr()
    adjacency.data[:] = 1.0
    return adjacency


def mirror_map(points: np.ndarray, tolerance: float = 0.05) -> np.ndarray:
    """Index of each vertex's mirror twin across x = 0 (ICT's mesh is symmetric to ~0.005 cm)."""
    distance, twin = cKDTree(points).query(points * np.array([-1.0, 1.0, 1.0]))
    if distance.max() > tolerance or not np.array_equal(twin[twin], np.arange(len(points))):
        raise ValueError("mesh is not mirror-symmetric: cannot mirror region labels")
    return twin


def _max_edge_length(points: np.ndarray, faces: np.ndarray) -> np.ndarray:
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    length = np.linalg.norm(points[edges[:, 0]] - points[edges[:, 1]], axis=1)
    longest = np.zeros(len(points))
    np.maximum.at(longest, edges[:, 0], length)
    np.maximum.at(longest, edges[:, 1], length)
    return longest


def ear_mask(points: np.ndarray, faces: np.ndarray, candidates: np.ndarray,
             eye_width: float) -> np.ndarray:
    """The left auricle (x > 0) among ``candidates`` (ICT's face area outside the facial mask).

    Seed: the densely meshed ear interior. Its side-view (y, z) spread gives an elliptic
    outline; inside it, the ear is the seed plus whatever stands out of the head surface,
    which is a plane fitted to a ring of head vertices around the outline. That catches the
    helix rim and the back of the auricle but not the flat skin in front of the ear.
    """
    y, z = points[:, 1], points[:, 2]
    left = candidates & (points[:, 0] > 0)
    seed = left & (_max_edge_length(points, faces) < EAR_SEED_EDGE) & (points[:, 0] > 2 * eye_width)
    if seed.sum() < 10:
        raise ValueError("no densely meshed ear found: is this the ICT-FaceKit skin?")
    side = np.stack([y, z], axis=1)
    centre = side[seed].mean(axis=0)
    precision = np.linalg.inv(np.cov(side[seed].T))
    spread = np.sqrt(np.einsum("ij,jk,ik->i", side - centre, precision, side - centre))
    ring = (points[:, 0] > 0) & (spread > EAR_RING[0]) & (spread < EAR_RING[1])
    design = np.column_stack([y, z, np.ones(len(points))])
    plane, *_ = np.linalg.lstsq(design[ring], points[ring, 0], rcond=None)
    protrusion = points[:, 0] - design @ plane
    return left & (spread < EAR_EXTENT) & (seed | (protrusion > EAR_PROTRUSION))


class _Sides:
    """Turns a region stem into the label of the vertex's side: ``brow`` -> brow_L / brow_R."""

    def __init__(self, x: np.ndarray):
        self.left = x >= 0

    def __call__(self, stem: str, mask: np.ndarray) -> np.ndarray:
        return np.where(self.left[mask], REGION_INDEX[stem + "_L"], REGION_INDEX[stem + "_R"])


def _label_outside_mask(points: np.ndarray, frame: FaceFrame, ear: np.ndarray,
                        brow_motion: np.ndarray, labels: np.ndarray, outside: np.ndarray,
                        sides: _Sides) -> np.ndarray:
    """Scalp, ears, neck, pre-auricular jaw and the frontalis hairline, by geometry.

    Returns the mask of vertices below the neck line (the caller also applies it under the
    chin, inside the facial mask).
    """
    x, y, z = np.abs(points[:, 0]), points[:, 1], points[:, 2]
    ear_y, ear_z = y[ear].mean(), z[ear].mean()
    lobe_z = z[ear].min()
    w = frame.eye_width
    # Neck line in side view: under the chin, along the lower jaw, below the ear lobe, nape.
    line_y = [frame.chin_yz[0], frame.jaw_yz[0], ear_y, y.max()]
    line_z = [frame.chin_yz[1], frame.jaw_yz[1], lobe_z - 0.2 * w, lobe_z - 1.15 * w]
    below_neck_line = z < np.interp(y, line_y, line_z)

    rest = outside & ~ear
    labels[rest] = REGION_INDEX["scalp"]
    forehead = rest & (brow_motion > HAIRLINE_LEVEL) & (z > frame.brow_top_z(x))
    labels[forehead] = REGION_INDEX["forehead"]
    pre_auricular = rest & (y < ear_y) & (z < ear_z)
    labels[pre_auricular] = sides("jaw", pre_auricular)
    labels[rest & below_neck_line] = REGION_INDEX["neck"]
    labels[ear] = sides("ear", ear)
    return below_neck_line


def _label_facial_mask(points: np.ndarray, frame: FaceFrame, motion: np.ndarray,
                       labels: np.ndarray, inside: np.ndarray, sides: _Sides) -> None:
    """Regions of ICT's narrow face area from the dominant shape family and the landmarks."""
    x, z = np.abs(points[:, 0]), points[:, 2]   # left-half coordinates; side comes from sides()
    w, half = frame.eye_width, frame.mouth_half
    family = np.argmax(motion, axis=0)
    moving = motion.max(axis=0) >= STATIC_LEVEL
    zone = {name: inside & moving & (family == f) for f, name in enumerate(FAMILIES)}

    def put(mask, region):
        sided = region + "_L" in REGION_INDEX
        labels[mask] = sides(region, mask) if sided else REGION_INDEX[region]

    # Static skin at the mask's edge (beside the eyes): forehead above the brows, else cheek.
    static = inside & ~moving
    put(static & (z > frame.brow_line_z(x)), "forehead")
    put(static & (z <= frame.brow_line_z(x)), "cheek")

    above_eye_line = z > frame.eye_line_z(x)
    put(zone["lid"] & above_eye_line, "upper_lid")
    put(zone["lid"] & ~above_eye_line, "lower_lid")

    # Brows: forehead above the brow band, glabella between the inner brow ends.
    brow_band = z <= frame.brow_top_z(x)
    between = x < 0.9 * frame.brow_x[0]
    glabella = between & (z < frame.brow_z[0] + 0.1 * w)
    put(zone["brow"] & (~brow_band | (between & ~glabella)), "forehead")
    put(zone["brow"] & brow_band & glabella, "glabella")
    put(zone["brow"] & brow_band & ~between, "brow")

    # Cheek raisers: cheek, except below the corner-to-jaw line (jaw) and the temples beside
    # the eye, which browOuterUp shares (brow band or forehead).
    temple = above_eye_line & (x > frame.eye_outer[0])
    put(zone["cheek"] & ~temple & (z >= frame.cheek_jaw_z(x)), "cheek")
    put(zone["cheek"] & ~temple & (z < frame.cheek_jaw_z(x)), "jaw")
    put(zone["cheek"] & temple & brow_band, "brow")
    put(zone["cheek"] & temple & ~brow_band, "forehead")

    # Mid-face, where sneer and mouth shapes overlap: the nose inside its outline, the upper
    # lip inside the nasolabial fold, a band along the fold, cheek beyond it.
    in_nose = x < frame.nose_half_width(z)
    (cx, cz) = frame.mouth_corner
    corner = zone["mouth"] & (np.hypot(x - cx - 0.1 * half, z - cz) < 0.42 * half) \
        & (x > cx - 0.2 * half)
    put(corner, "mouth_corner")
    above_slit = z > frame.slit_z_at(x)
    midface = (zone["nose"] | (zone["mouth"] & above_slit)) & ~corner
    fold_x = frame.fold_x_at(z)
    upper_lip = midface & ~in_nose & (x < fold_x) & (z < frame.nose_base_z)
    fold = midface & ~in_nose & ~upper_lip & (x < fold_x + 0.5 * half) \
        & (z < frame.nose_tip_z) & (z > cz - 0.2 * half)
    put(midface & in_nose, "nose")
    put(upper_lip, "upper_lip")
    put(fold, "nasolabial")

    # Below the mouth slit: lower lip down to the mentolabial sulcus, then the chin, whose
    # half width narrows from 0.8 to 0.64 of the mouth's towards the jaw line.
    below = zone["mouth"] & ~above_slit & ~corner
    sulcus_z = frame.lower_lip_z - 0.25 * half
    lower_lip = below & (x < cx) & (z > sulcus_z)
    chin = below & ~lower_lip & (x < np.interp(z, [frame.chin_yz[1], sulcus_z], [0.64, 0.8]) * cx)
    put(lower_lip, "lower_lip")
    put(chin, "chin")
    # What is left beside the mouth: cheek above the corner-to-jaw line, jaw below.
    beside = (midface & ~in_nose & ~upper_lip & ~fold) | (below & ~lower_lip & ~chin)
    put(beside & (z >= frame.cheek_jaw_z(x)), "cheek")
    put(beside & (z < frame.cheek_jaw_z(x)), "jaw")


def _side_allowed(x: np.ndarray) -> np.ndarray:
    """(V, R) which labels a vertex may take: its own side's and central ones (only central
    ones on the midline), so clean-up never puts brow_R on the left or a lid on the nose."""
    allowed = np.ones((len(x), len(REGION_NAMES)), bool)
    for r, name in enumerate(REGION_NAMES):
        if name.endswith("_L"):
            allowed[:, r] = x > 1e-4
        elif name.endswith("_R"):
            allowed[:, r] = x < -1e-4
    return allowed


def smooth_labels(labels: np.ndarray, adjacency: sp.csr_matrix, allowed: np.ndarray,
                  rounds: int = SMOOTHING_ROUNDS) -> np.ndarray:
    """Majority vote of each vertex and its neighbours, ``rounds`` times (ties: lower index)."""
    n_regions = allowed.shape[1]
    for _ in range(rounds):
        one_hot = np.eye(n_regions)[labels]
        votes = adjacency @ one_hot + one_hot
        votes[~allowed] = -1.0
        labels = np.argmax(votes, axis=1)
    return labels


def remove_islands(labels: np.ndarray, adjacency: sp.csr_matrix,
                   allowed: np.ndarray) -> np.ndarray:
    """Keep each region's largest connected piece; other pieces join their neighbours."""
    labels = labels.copy()
    for region in range(allowed.shape[1]):
        members = np.flatnonzero(labels == region)
        if len(members) == 0:
            continue
        _, piece = connected_components(adjacency[members][:, members], directed=False)
        labels[members[piece != np.argmax(np.bincount(piece))]] = -1
    while (labels < 0).any():   # fill from the borders inward
        known = labels >= 0
        votes = adjacency[:, known] @ np.eye(allowed.shape[1])[labels[known]]
        votes[~allowed] = 0.0
        fill = ~known & (votes.max(axis=1) > 0)
        if not fill.any():
            raise ValueError("cannot fill unlabelled vertices: disconnected mesh part?")
        labels[fill] = np.argmax(votes[fill], axis=1)
    return labels


def mirror_labels(labels: np.ndarray, twin: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Right half := mirror image of the left half, so L/R regions are exact mirrors."""
    labels = labels.copy()
    right = x < 0
    labels[right] = np.asarray(REGION_MIRROR_INDEX)[labels[twin[right]]]
    return labels


def build_region_labels(ict: ICTFaceKit) -> tuple[np.ndarray, list[str]]:
    """(V,) int8 region index of every skin vertex and the region names, in order."""
    points = ict.neutral.astype(np.float64)
    frame = FaceFrame.from_landmarks(points[ict.landmarks])
    motion = family_motion(ict.exp_basis, ict.exp_names)
    sides = _Sides(points[:, 0])
    twin = mirror_map(points)

    outside = ~ict.narrow_face
    ear_left = ear_mask(points, ict.faces, ict.face & outside, frame.eye_width)
    ear = ear_left | ear_left[twin]

    labels = np.full(ict.n_vertices, -1, np.int64)
    _label_facial_mask(points, frame, motion, labels, ict.narrow_face, sides)
    below_neck_line = _label_outside_mask(points, frame, ear, motion[list(FAMILIES).index("brow")],
                                          labels, outside, sides)
    # Under the chin the facial mask reaches below the jaw: that skin is neck (submental).
    labels[ict.narrow_face & below_neck_line & (points[:, 1] > frame.chin_yz[0])] = \
        REGION_INDEX["neck"]
    if (labels < 0).any():
        raise AssertionError(f"{int((labels < 0).sum())} vertices left unlabelled")

    adjacency = vertex_adjacency(ict.faces, ict.n_vertices)
    allowed = _side_allowed(points[:, 0])
    labels = smooth_labels(labels, adjacency, allowed)
    labels = remove_islands(labels, adjacency, allowed)
    labels = mirror_labels(labels, twin, points[:, 0])
    return labels.astype(np.int8), list(REGION_NAMES)


def write_region_labels(labels: np.ndarray, labels_path: Path = LABELS_PATH) -> None:
    np.save(labels_path, labels.astype(np.int8))


def load_region_labels(path: Path = LABELS_PATH) -> np.ndarray:
    """The stored (11248,) int8 labels, indices into ``REGION_NAMES``."""
    return np.load(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ict", type=Path, default=None,
                        help="ict_facekit.npz (default: $FACSIMILE_DATA/ict)")
    parser.add_argument("--figure", type=Path, nargs="?", const=FIGURE_PATH, default=None,
                        help=f"also render the region picture (default path {FIGURE_PATH})")
    args = parser.parse_args(argv)

    ict = load_ict(args.ict)
    labels, names = build_region_labels(ict)
    write_region_labels(labels)
    counts = np.bincount(labels, minlength=len(names))
    for name, count in zip(names, counts):
        print(f"{name:16s} {count:6d}")
    print(f"wrote {LABELS_PATH}")
    if args.figure is not None:
        from model_export.data.regions_figure import render_region_figure

        render_region_figure(ict.neutral, ict.faces, labels, args.figure)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
