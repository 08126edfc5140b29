# SPDX-License-Identifier: GPL-3.0-or-later
"""Eyeballs without ground truth: where they are, how they turn, how far the lids close.

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
* **Lids** (:func:`opening_area`, :func:`lid_closure`, :func:`complete_blink`): the eye
  opening is what a viewer in front of the face sees of the eyeball: rays along +Y through
  the eyeball's disc that reach the sphere before any skin. This needs no hole in the skin
  (heads with fused, hole-free sockets have an opening too) and counts a lid that sinks
  into the eyeball as open. Closure = 1 - open area after the shape / before it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .mesh.bins import box_pairs

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

# Lids. A blink is complete when this share of the opening is covered (issue 13: >= 0.9).
CLOSED = 0.9
# Pixels across the eyeball's disc when measuring the opening.
GRID = 48
# Skin within this share of the radius behind the sphere still covers the eyeball: lid
# margins rest on the eyeball, and a fitted sphere sits a little outside a meshed one.
COVER_TOLERANCE = 0.08
# The completed upper lid ends this share of the radius outside the eyeball, so the
# closed lid never sinks into it.
CLEARANCE = 0.02
# The completion fades over the upper lid with this length, in eyeball radii: the upper
# lid covers the eyeball's upper half, so its skin moves over about one radius.
LID_FALLOFF = 0.6


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
    # The last openings measured (``opening``) with copies of their inputs: the rules ask
    # for the rest opening of each eye seven times (closure, blink, four lid shapes).
    _openings: list = field(default_factory=list, repr=False, compare=False)

    @property
    def suffix(self) -> str:
        return self.side


@dataclass
class Opening:
    """The eye opening as seen from the front: pixels of the eyeball's disc."""

    xz: np.ndarray                # (P,2) pixel centres (x, z) inside the disc
    depth: np.ndarray             # (P,) y of the sphere's front surface there
    open: np.ndarray              # (P,) bool: the sphere is the first thing a ray meets
    pixel_area: float


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


# ------------------------------------------------------------------ lids

def _disc(eye: Eye, grid: int = GRID) -> tuple[np.ndarray, np.ndarray, float]:
    step = 2.0 * eye.radius / grid
    g = (np.arange(grid) + 0.5) * step - eye.radius
    gx, gz = np.meshgrid(g, g, indexing="ij")
    rho2 = gx ** 2 + gz ** 2
    inside = rho2 < eye.radius ** 2
    xz = np.stack([gx[inside] + eye.centre[0], gz[inside] + eye.centre[2]], axis=1)
    depth = eye.centre[1] - np.sqrt(eye.radius ** 2 - rho2[inside])
    return xz, depth, step * step


def _covered(xz: np.ndarray, depth: np.ndarray, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P,) bool: a triangle lies in front of (smaller y than) ``depth`` at pixel ``xz``."""
    covered = np.zeros(len(xz), bool)
    if len(faces) == 0:
        return covered
    tri = verts[faces]                                           # (T,3,3)
    a, b, c = tri[:, 0][:, [0, 2]], tri[:, 1][:, [0, 2]], tri[:, 2][:, [0, 2]]
    e1, e2 = b - a, c - a
    den = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(den) > 1e-14
    a, e1, e2, den, tri = a[ok], e1[ok], e2[ok], den[ok], tri[ok]
    lo = np.minimum(np.minimum(tri[:, 0], tri[:, 1]), tri[:, 2])[:, [0, 2]]
    hi = np.maximum(np.maximum(tri[:, 0], tri[:, 1]), tri[:, 2])[:, [0, 2]]
    # Each triangle meets only the pixels in its box (``mesh.bins``), not all of them.
    for t, q in box_pairs(xz, lo, hi, pad=1e-12):
        d = xz[q] - a[t]
        u = (d[:, 0] * e2[t, 1] - d[:, 1] * e2[t, 0]) / den[t]
        v = (e1[t, 0] * d[:, 1] - e1[t, 1] * d[:, 0]) / den[t]
        inside = (u >= -1e-9) & (v >= -1e-9) & (u + v <= 1 + 1e-9)
        inside &= ((xz[q] >= lo[t] - 1e-12) & (xz[q] <= hi[t] + 1e-12)).all(-1)
        y = tri[t, 0, 1] * (1 - u - v) + tri[t, 1, 1] * u + tri[t, 2, 1] * v
        covered[q[inside & (y < depth[q])]] = True
    return covered


def _eye_faces(eye: Eye, verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Skin faces that can hide the eyeball: near its disc, not part of the eye itself."""
    f = np.asarray(faces)
    # Per vertex, then per face (a corner near the disc; a corner in front of the centre).
    v = np.asarray(verts)
    near_v = (np.abs(v[:, 0] - eye.centre[0]) < 1.3 * eye.radius) & (np.abs(v[:, 2] - eye.centre[2]) < 1.3 * eye.radius)
    near = _any_corner(near_v, f) & _any_corner(v[:, 1] < eye.centre[1] + eye.radius, f)
    if eye.source != "object":
        own = np.zeros(len(verts), bool)
        own[eye.vertices[eye.weights > 0]] = True
        near &= ~_any_corner(own, f)
    return f[near]


def _any_corner(mask: np.ndarray, f: np.ndarray) -> np.ndarray:
    """(F,) a corner of each face is in ``mask`` (three gathers: numpy's any over a length-3
    axis costs several times more)."""
    return mask[f[:, 0]] | mask[f[:, 1]] | mask[f[:, 2]]


def opening(eye: Eye, verts: np.ndarray, faces: np.ndarray, grid: int = GRID) -> Opening:
    """What a viewer in front sees of the eyeball (``verts`` canonical, ``faces`` the skin's;
    faces of the eye itself are ignored). The last two answers are kept on ``eye`` and
    given again for equal inputs (the same eye, vertex positions, faces and grid)."""
    key = (np.asarray(verts, np.float64), np.asarray(faces), grid, eye.centre, eye.radius, eye.source,
           eye.vertices, eye.weights)
    for seen, answer in eye._openings:
        if all(a is b or np.array_equal(a, b) for a, b in zip(seen, key)):
            return answer
    xz, depth, area = _disc(eye, grid)
    f = _eye_faces(eye, verts, faces)
    covered = _covered(xz, depth + COVER_TOLERANCE * eye.radius, np.asarray(verts, np.float64), f)
    answer = Opening(xz, depth, ~covered, area)
    copies = tuple(np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in key)
    eye._openings = [(copies, answer)] + eye._openings[:1]
    return answer


def lid_closure(eye: Eye, verts: np.ndarray, faces: np.ndarray, delta: np.ndarray) -> float:
    """How far ``delta`` (V,3 canonical, e.g. eyeBlink) closes the eye: 1 - open area after /
    before, clipped to [0, 1]; nan when no opening is seen at rest."""
    v = np.asarray(verts, np.float64)
    before = opening(eye, v, faces).open.sum()
    if before == 0:
        return float("nan")
    after = opening(eye, v + delta, faces).open.sum()
    return float(np.clip(1.0 - after / before, 0.0, 1.0))


def _margins(eye: Eye, verts: np.ndarray, faces: np.ndarray, candidates: np.ndarray):
    """Upper and lower lid margins: per column of the opening, the candidate vertex nearest
    the top (bottom) open pixel, on the sphere. Returns (upper_idx, lower_idx, column_x)."""
    from scipy.spatial import cKDTree

    op = opening(eye, verts, faces)
    if not op.open.any() or len(candidates) == 0:
        return None
    xz = op.xz[op.open]
    depth = op.depth[op.open]
    cols = np.round((xz[:, 0] - xz[:, 0].min()) / np.sqrt(op.pixel_area)).astype(int)
    tree = cKDTree(verts[candidates])
    # Per column (in increasing order): its top and bottom pixel, the first one on ties, as
    # a loop of argmax/argmin would pick them; then one query for all of them.
    col = np.unique(cols, return_inverse=True)[1]
    order = np.arange(len(cols))

    def first_per_column(*keys):
        o = np.lexsort((order, *keys, col))
        return o[np.r_[True, col[o][1:] != col[o][:-1]]]

    top, bot, first = first_per_column(-xz[:, 1]), first_per_column(xz[:, 1]), first_per_column()
    ups, lows = (candidates[tree.query(np.stack([xz[k, 0], depth[k], xz[k, 1]], axis=1))[1]] for k in (top, bot))
    return ups, lows, xz[first, 0]


def complete_blink(eye: Eye, verts: np.ndarray, faces: np.ndarray, skin: np.ndarray,
                   delta: np.ndarray) -> np.ndarray:
    """``delta`` (V,3 canonical) with the upper lid brought onto the lower one where it
    stops short of :data:`CLOSED`, and nothing else changed.

    The lid margins come from the opening (:func:`_margins`). Each upper-margin vertex's
    target is the lower margin below it (as ``delta`` moves it), pushed out to
    ``1 + CLEARANCE`` radii so the lid rests on the eyeball instead of cutting its chord.
    The correction spreads over the upper lid (skin above the lower margin, in front of
    the eyeball's centre and outside the sphere), fading with the distance to the margin
    (``LID_FALLOFF`` radii) and taken, along the lid, from the margin column at the same x.
    """
    from scipy.spatial import cKDTree

    v = np.asarray(verts, np.float64)
    d = np.asarray(delta, np.float64).copy()
    rel = v - eye.centre
    dist = np.linalg.norm(rel, axis=1)
    cand = np.flatnonzero(skin & (dist < 2.0 * eye.radius) & (rel[:, 1] < 0.0))
    found = _margins(eye, v, faces, cand)
    if found is None:
        return d
    ups, lows, _ = found
    # Per upper-margin vertex: its lower partner (the nearest lower-margin vertex in x).
    ux, lx = v[ups, 0], v[lows, 0]
    order = np.argsort(lx)
    target = np.stack([np.interp(ux, lx[order], (v[lows] + d[lows])[order, a]) for a in range(3)], axis=1)
    tr = target - eye.centre
    tn = np.linalg.norm(tr, axis=1, keepdims=True)
    target = eye.centre + tr / np.maximum(tn, 1e-12) * np.maximum(tn, (1 + CLEARANCE) * eye.radius)
    gap0 = v[ups] - np.stack([np.interp(ux, lx[order], v[lows][order, a]) for a in range(3)], axis=1)
    now = v[ups] + d[ups] - target
    g = np.linalg.norm(gap0, axis=1)
    remaining = np.einsum("ij,ij->i", now, gap0) / np.maximum(g, 1e-12) ** 2
    fix = np.where((remaining > 1.0 - CLOSED)[:, None], target - (v[ups] + d[ups]), 0.0)
    fix[np.isin(ups, lows)] = 0.0                               # a corner: both lids at once
    if not fix.any():
        return d
    # Spread over the upper lid.
    ux_unique, first = np.unique(ux, return_index=True)
    fix_by_x = fix[first]
    lower_z = np.interp(v[:, 0], lx[order], v[lows][order, 2])
    lid = skin & (rel[:, 1] < 0.0) & (dist >= 0.98 * eye.radius) & (v[:, 2] >= lower_z + 0.25 * (
        np.interp(v[:, 0], ux_unique, v[ups][first, 2]) - lower_z))
    lid &= np.abs(rel[:, 0]) < 1.5 * eye.radius
    lid_idx = np.flatnonzero(lid)
    if len(lid_idx) == 0:
        return d
    near = cKDTree(v[ups]).query(v[lid_idx])[0]
    fade = np.exp(-(near / (LID_FALLOFF * eye.radius)) ** 2)
    corr = np.stack([np.interp(v[lid_idx, 0], ux_unique, fix_by_x[:, a], left=0.0, right=0.0)
                     for a in range(3)], axis=1)
    d[lid_idx] += corr * fade[:, None]
    # Collision: nothing the blink moves ends inside the eyeball.
    moved = lid_idx
    p = v[moved] + d[moved] - eye.centre
    pn = np.linalg.norm(p, axis=1)
    inside = pn < (1 + CLEARANCE) * eye.radius
    inside &= dist[moved] >= (1 + CLEARANCE) * eye.radius       # was outside at rest
    d[moved[inside]] = (eye.centre + p[inside] / pn[inside, None] * (1 + CLEARANCE) * eye.radius
                        - v[moved[inside]])
    return d


@dataclass
class EyeReport:
    """What the operator tells the artist about the eyes and the mouth interior."""

    eyes_found: str = ""                          # "", "part", "object" or "welded"
    closure: dict = field(default_factory=dict)   # {"Left": 0..1, "Right": 0..1} after the rules
    closure_network: dict = field(default_factory=dict)  # the network's blink alone
    completed: dict = field(default_factory=dict)        # {"Left": bool}: geometric closure applied
    tongue_found: str = ""                        # "", "part", "body" or "mouth_floor"
    lips_pushed: dict = field(default_factory=dict)      # {jaw shape: lip vertices kept off the teeth}
