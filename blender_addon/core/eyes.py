# SPDX-License-Identifier: GPL-3.0-or-later
"""Eyeballs without ground truth: where they are and how they turn.

All geometry here is in the rig's canonical frame (``mesh.normalize_head``: Blender axes,
the face looks toward -Y, +X is the character's left, about one unit wide, nose tip at
the origin), so every tolerance is a fraction of the face width or of the eyeball radius.

* **Finding** (:func:`find_eyes`): an eyeball is a sphere-like surface (least-squares
  sphere, RMS radial residual small against the radius) with an eyeball's size, above the
  nose tip and off the midline, that has a mirror twin about the head's midplane. It may be
  a loose part of the head mesh, a separate object (glTF ``EyeLeft``/``EyeRight``), or a
  sphere-like patch welded into the skin (a socket modelled as an eyeball-shaped shell).
* **Gaze** (:func:`gaze_deltas`): the eight eyeLook* keys rotate the eyeball about the
  fitted centre, In/Out about the vertical axis and Up/Down about the horizontal one, by
  the rig's gaze angles at weight 1 (:func:`gaze_angles`: the animator's, per direction,
  else :data:`GAZE_DEGREES`). ARKit's convention: eyeLookOutLeft turns the left eye
  (+X) toward +X.
* **Lids** live in :mod:`.eye_opening` (how far a shape closes the eye opening, and the
  blink's geometric completion) and :mod:`.lid_shapes` (squint, wide, the ride with the gaze).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


# Gaze angle (degrees) at weight 1, per direction. Measured on the facecap performance
# (tools/bench_accuracy_eyes.py ``calibrate_gaze``): the recorded eye rotations
# (``eye_rot_L/R``, absolute, so weights 0 = looking straight ahead) against the eyeLook*
# weights, least squares over both eyes and 335 frames. Pitch: 30.0 deg per unit
# eyeLookDown (RMS 0.09 deg, intercept 0.0); yaw: 29.1 (Out) and 30.7 (In) deg per unit
# (RMS 0.06 deg), with a constant 3.2 deg outward rest divergence taken out as an
# intercept. The performance never looks up (eyeLookUp = 0 throughout), so Up takes
# Down's value: Face Cap maps the three directions it shows with the same gain.
# Facecap is a test head; only these physical angles are taken from it (the issue's
# calibration source). Other artists differ: Rocketbox's turn 8-24 deg (docs/models.md).
GAZE_DEGREES = {"In": 30.7, "Out": 29.1, "Up": 30.0, "Down": 30.0}
# An animator sets a rig's own range of motion (issue 13), per direction, in this range:
# beyond 90 degrees the pupil would face into the head.
GAZE_RANGE = (0.0, 90.0)
GAZE_KEYS = tuple(f"eyeLook{d}{s}" for s in ("Left", "Right") for d in ("Down", "In", "Out", "Up"))

# A surface is sphere-like when the RMS of its distance to the fitted sphere is under this
# share of the radius (a UV sphere at 8x6 segments scores 0.03; a cornea bulge on an
# eyeball, 0.015; a tooth or a flat patch, >0.1) ...
SPHERE_RESIDUAL = 0.05
# ... and has an eyeball's size, in face widths: a human eyeball is ~0.08 of the face's
# width (ICT 0.08, facecap 0.10), cartoon eyes up to twice that; smaller spheres are pupils,
# beads, teeth, bigger ones skulls.
RADIUS_RANGE = (0.03, 0.25)
# A surface too shallow to pin a sphere down (a lens, a patch) is no eyeball: its largest
# extent must reach this share of the fitted diameter.
MIN_SPAN = 0.6
# Twins: the mirror image of one centre lies within this share of the radius of the other,
# and their radii agree within the same share.
TWIN_TOLERANCE = 0.3
# Welded patches: neighbourhood of each skin vertex for the local sphere fit.
PATCH_NEIGHBOURS = 16
PATCH_MIN_VERTS = 12

@dataclass
class Eye:
    side: str                     # "Left" (+X, the character's left) or "Right"
    centre: np.ndarray            # (3,) canonical frame
    radius: float                 # canonical units
    residual: float               # RMS radial residual / radius
    source: str                   # "part", "object" or "welded"
    vertices: np.ndarray          # indices: into the head mesh ("part", "welded") or the object
    weights: np.ndarray           # (n,) share of the rotation each vertex follows (1 for rigid eyeballs)
    obj: int = -1                 # which separate object ("object" only)
    # The last openings measured (``eye_opening.opening``) with copies of their inputs: the rules ask
    # for the rest opening of each eye seven times (closure, blink, four lid shapes).
    _openings: list = field(default_factory=list, repr=False, compare=False)

    @property
    def suffix(self) -> str:
        return self.side


# ------------------------------------------------------------------ spheres

def fit_sphere(points: np.ndarray, trim: float = 0.8) -> tuple[np.ndarray, float, float]:
    """Least-squares sphere ``(centre, radius, residual)`` with ``residual`` the RMS radial
    distance over the radius. Algebraic fit (|p|^2 = 2 c.p + k, linear), refitted on the
    ``trim`` share of points closest to the first sphere, so a cornea bulge or an iris
    inset does not pull the sclera's sphere."""
    p = np.asarray(points, np.float64)
    if len(p) < 4:
        return np.zeros(3), 0.0, np.inf
    centre, radius = _algebraic_sphere(p)
    if trim < 1.0 and len(p) >= 8:
        dev = np.abs(np.linalg.norm(p - centre, axis=1) - radius)
        keep = dev <= np.quantile(dev, trim)
        if keep.sum() >= 4:
            centre, radius = _algebraic_sphere(p[keep])
    if not np.isfinite(radius) or radius <= 0:
        return centre, 0.0, np.inf
    dev = np.linalg.norm(p - centre, axis=1) - radius
    if trim < 1.0 and len(p) >= 8:
        dev = dev[np.abs(dev) <= np.quantile(np.abs(dev), trim)]
    return centre, float(radius), float(np.sqrt(np.mean(dev ** 2)) / radius)


def _algebraic_sphere(p: np.ndarray) -> tuple[np.ndarray, float]:
    shift = p.mean(0)
    q = p - shift                                    # conditioning
    a = np.c_[2.0 * q, np.ones(len(q))]
    sol = np.linalg.lstsq(a, (q ** 2).sum(1), rcond=None)[0]
    c = sol[:3]
    r2 = sol[3] + c @ c
    return c + shift, float(np.sqrt(r2)) if r2 > 0 else 0.0


def is_eyeball(points: np.ndarray, centre: np.ndarray, radius: float, residual: float) -> bool:
    """Sphere-like, eyeball-sized, deep enough to pin the sphere, above the nose tip."""
    if not (residual < SPHERE_RESIDUAL and RADIUS_RANGE[0] <= radius <= RADIUS_RANGE[1]):
        return False
    if np.ptp(points, axis=0).max() < MIN_SPAN * 2.0 * radius:
        return False
    # Eyes sit above the nose tip (canonical z = 0) and off the midline.
    return bool(centre[2] > 0.0 and abs(centre[0]) > 0.5 * radius)


@dataclass
class _Candidate:
    centre: np.ndarray
    radius: float
    residual: float
    source: str
    vertices: np.ndarray
    weights: np.ndarray
    obj: int = -1
    size: int = 0


def find_eyes(points: np.ndarray, part_labels: np.ndarray, skin: np.ndarray | None = None,
              skin_faces: np.ndarray | None = None, objects=()) -> list[Eye]:
    """The eyeball pair of a head, [] when none is found.

    ``points`` (V,3) canonical head vertices, ``part_labels`` (V,) loose part of each
    vertex (-1 on the skin), ``objects`` separate eye meshes as canonical (N,3) arrays.
    Separate objects win over loose parts, which win over welded patches (searched only
    when nothing else is found, and only when ``skin``/``skin_faces`` are given).
    """
    points = np.asarray(points, np.float64)
    found = []
    for k, obj in enumerate(objects):
        obj = np.asarray(obj, np.float64)
        c, r, res = fit_sphere(obj)
        if is_eyeball(obj, c, r, res):
            found.append(_Candidate(c, r, res, "object", np.arange(len(obj)), np.ones(len(obj)), k, len(obj)))
    pair = _pair(found)
    if pair:
        return pair
    labels = np.asarray(part_labels)
    for label in np.unique(labels[labels >= 0]):
        idx = np.flatnonzero(labels == label)
        c, r, res = fit_sphere(points[idx])
        if is_eyeball(points[idx], c, r, res):
            found.append(_Candidate(c, r, res, "part", idx, np.ones(len(idx)), -1, len(idx)))
    pair = _pair(found)
    if pair:
        return _with_attached(pair, points, labels)
    if skin is not None and skin_faces is not None:
        return _pair(welded_candidates(points, skin, skin_faces))
    return []


def _pair(cands: list[_Candidate]) -> list[Eye]:
    """The best mirrored pair: +X side is Left. Largest pair first (an iris or cornea cap
    nested in the eyeball is a smaller sphere-like twin of its own)."""
    best = None
    for i, a in enumerate(cands):
        for b in cands[i + 1:]:
            r = 0.5 * (a.radius + b.radius)
            if a.centre[0] * b.centre[0] >= 0:
                continue
            mirror = b.centre * [-1.0, 1.0, 1.0]
            # The midplane of a skin's bounding box is not always the face's (a shoulder
            # modelled further on one side): the pair's own midpoint may sit off x = 0.
            off = np.abs(a.centre[1:] - mirror[1:]).max()
            mid = abs(a.centre[0] + b.centre[0]) * 0.5
            if off > TWIN_TOLERANCE * r or mid > 2 * TWIN_TOLERANCE * r \
                    or abs(a.radius - b.radius) > TWIN_TOLERANCE * r:
                continue
            score = (a.size + b.size, r)
            if best is None or score > best[0]:
                best = (score, a, b)
    if best is None:
        return []
    _, a, b = best
    left, right = (a, b) if a.centre[0] > 0 else (b, a)
    return [Eye(side, c.centre, c.radius, c.residual, c.source, c.vertices, c.weights, c.obj)
            for side, c in (("Left", left), ("Right", right))]


def _with_attached(pair: list[Eye], points: np.ndarray, labels: np.ndarray) -> list[Eye]:
    """Loose parts that sit wholly inside an eyeball's sphere (grown by 15 %) and in front
    of its centre turn with it: an iris, a pupil or a cornea modelled as its own part."""
    for eye in pair:
        own = set(np.unique(labels[eye.vertices]).tolist())
        extra = []
        for label in np.unique(labels[labels >= 0]):
            if label in own:
                continue
            idx = np.flatnonzero(labels == label)
            p = points[idx]
            if (np.linalg.norm(p - eye.centre, axis=1) < 1.15 * eye.radius).all() and (p[:, 1] < eye.centre[1]).all():
                extra.append(idx)
        if extra:
            eye.vertices = np.concatenate([eye.vertices, *extra])
            eye.weights = np.ones(len(eye.vertices))
    return pair


def welded_candidates(points: np.ndarray, skin: np.ndarray, skin_faces: np.ndarray) -> list[_Candidate]:
    """Sphere-like patches of the skin: each skin vertex fits a sphere to its nearest
    neighbours; vertices whose local spheres are eyeball-sized agree on a centre, and the
    densest centres (one per side) are refitted on every skin vertex near their sphere.
    Patch vertices turn fully in the middle and not at all at the patch's rim, where the
    lids are welded on."""
    from scipy.spatial import cKDTree

    idx = np.flatnonzero(skin)
    p = points[idx]
    if len(p) < PATCH_NEIGHBOURS:
        return []
    tree = cKDTree(p)
    _, nbr = tree.query(p, PATCH_NEIGHBOURS)
    q = p[nbr]                                                   # (S,k,3)
    qc = q - q.mean(1, keepdims=True)
    a = np.concatenate([2.0 * qc, np.ones(qc.shape[:2] + (1,))], axis=2)
    b = (qc ** 2).sum(2)
    ata = np.einsum("ski,skj->sij", a, a) + 1e-12 * np.eye(4)
    sol = np.linalg.solve(ata, np.einsum("ski,sk->si", a, b)[..., None])[..., 0]
    centre = sol[:, :3] + q.mean(1)
    r2 = sol[:, 3] + (sol[:, :3] ** 2).sum(1)
    radius = np.sqrt(np.maximum(r2, 0))
    dev = np.linalg.norm(q - centre[:, None], axis=2) - radius[:, None]
    res = np.sqrt((dev ** 2).mean(1)) / np.maximum(radius, 1e-12)
    ok = (res < SPHERE_RESIDUAL) & (radius >= RADIUS_RANGE[0]) & (radius <= RADIUS_RANGE[1]) \
        & (centre[:, 2] > 0) & (np.abs(centre[:, 0]) > 0.5 * radius)
    from .mesh.topology import boundary_vertices

    border = boundary_vertices(len(points), skin_faces)
    cands = []
    for sign in (1.0, -1.0):
        side = ok & (np.sign(centre[:, 0]) == sign)
        if side.sum() < PATCH_MIN_VERTS:
            continue
        c = centre[side]
        # Densest centre: the one with most others within a fifth of its radius.
        near = cKDTree(c).query_ball_point(c, 0.2 * radius[side], return_length=True)
        c0 = c[np.argmax(near)]
        r0 = float(np.median(radius[side][np.linalg.norm(c - c0, axis=1) < 0.2 * radius[side]]))
        on = np.abs(np.linalg.norm(p - c0, axis=1) - r0) < 0.1 * r0
        on &= p[:, 1] < c0[1] + 0.2 * r0                           # the front of the eyeball
        if on.sum() < PATCH_MIN_VERTS:
            continue
        cc, rr, rs = fit_sphere(p[on])
        if not is_eyeball(p[on], cc, rr, rs):
            continue
        # A welded eyeball is whole skin, lids welded onto it: a patch on the rim of a
        # hole is eyelid skin around a socket whose eyeball is elsewhere (or missing).
        if border[idx[on]].any():
            continue
        verts = idx[on]
        # Falloff: full rotation beyond a fifth of the radius from the patch rim.
        rim = _rim_distance(points, verts, skin_faces)
        w = np.clip(rim / (0.2 * rr), 0.0, 1.0)
        cands.append(_Candidate(cc, rr, rs, "welded", verts, w, -1, len(verts)))
    return cands


def _rim_distance(points: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Distance of each patch vertex to the nearest skin vertex outside the patch that
    shares a face with the patch (its rim)."""
    from scipy.spatial import cKDTree

    inside = np.zeros(len(points), bool)
    inside[verts] = True
    f = np.asarray(faces)
    mixed = f[inside[f].any(1) & ~inside[f].all(1)]
    rim = np.unique(mixed[~inside[mixed]])
    if len(rim) == 0:
        return np.full(len(verts), np.inf)
    return cKDTree(points[rim]).query(points[verts])[0]


# ------------------------------------------------------------------ gaze

def _rotation(axis: int, degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    c, s = np.cos(t), np.sin(t)
    i, j = [(1, 2), (2, 0), (0, 1)][axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def gaze_angles(degrees: dict | None = None) -> dict:
    """The rig's gaze angles (degrees at weight 1) per direction: ``degrees`` gives any of
    In/Out/Up/Down, the calibration (:data:`GAZE_DEGREES`, itself when none is given) the
    rest. ValueError, one line, for an unknown direction or an angle outside GAZE_RANGE."""
    if not degrees:
        return GAZE_DEGREES
    unknown = sorted(set(degrees) - set(GAZE_DEGREES))
    if unknown:
        raise ValueError(f"gaze direction {unknown[0]!r}: must be one of {', '.join(GAZE_DEGREES)}")
    out = dict(GAZE_DEGREES)
    for key, value in degrees.items():
        value = float(value)
        if not GAZE_RANGE[0] <= value <= GAZE_RANGE[1]:          # also refuses nan
            raise ValueError(f"gaze {key} {value:g}°: must be between {GAZE_RANGE[0]:g} and {GAZE_RANGE[1]:g} degrees")
        out[key] = value
    return out


def gaze_rotation(key: str, side: str, degrees: dict | None = None) -> np.ndarray:
    """3x3 rotation of the ``side`` eye ("Left"/"Right") for eyeLook ``key`` ("In", "Out",
    "Up", "Down") at weight 1 (``degrees``: :func:`gaze_angles`), canonical frame. A
    rotation about +Z turns the gaze (-Y) toward +X; one about +X turns it down."""
    deg = gaze_angles(degrees)[key]
    if key in ("In", "Out"):
        toward_plus_x = (key == "Out") == (side == "Left")
        return _rotation(2, deg if toward_plus_x else -deg)
    return _rotation(0, deg if key == "Down" else -deg)


def gaze_deltas(eye: Eye, points: np.ndarray, degrees: dict | None = None) -> dict[str, np.ndarray]:
    """{"eyeLookInLeft": (n,3), ...} the four keys of ``eye``'s side, for ``points`` (n,3)
    (the eye's vertices, canonical frame): rotation about the fitted centre by ``degrees``
    (:func:`gaze_angles`), scaled by each vertex's weight (1 for a rigid eyeball, a falloff
    on a welded patch)."""
    p = np.asarray(points, np.float64) - eye.centre
    degrees = gaze_angles(degrees)
    out = {}
    for key in ("Down", "In", "Out", "Up"):
        r = gaze_rotation(key, eye.side, degrees)
        out[f"eyeLook{key}{eye.side}"] = (p @ r.T - p) * eye.weights[:, None]
    return out


@dataclass
class EyeReport:
    """What the operator tells the artist about the eyes and the mouth interior."""

    eyes_found: str = ""                          # "", "part", "object" or "welded"
    closure: dict = field(default_factory=dict)   # {"Left": 0..1, "Right": 0..1} after the rules
    closure_network: dict = field(default_factory=dict)  # the network's blink alone
    completed: dict = field(default_factory=dict)        # {"Left": bool}: geometric closure applied
    tongue_found: str = ""                        # "", "part", "body" or "mouth_floor"
    lips_pushed: dict = field(default_factory=dict)      # {jaw shape: lip vertices kept off the teeth}
