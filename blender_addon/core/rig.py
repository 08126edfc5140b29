# SPDX-License-Identifier: GPL-3.0-or-later
"""Neutral head -> region weights + ARKit shape deltas: the rig pipeline, without Blender.

Data flows one way::

    world-space mesh -> skin (loose parts set aside) -> canonical frame
      -> proxy (<= PROXY_MAX_VERTS) -> operators -> rig.onnx -> region weights,
         per-shape responses -> localizer.onnx (predicted or painted weights)
      -> deltas on the proxy -> carried back to every vertex -> world units -> ARKit names

The bpy layer (``rig/ops.py``) only reads the mesh and writes the results.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np

from . import arkit, eyes, inference, parallel, parts
from .errors import Cancelled, FacsimileError
from .eyes import EyeReport

if TYPE_CHECKING:
    import scipy.sparse

    from . import features
    from .mesh.head import Normalization

# ``features`` and ``mesh`` (scipy.sparse, scipy.spatial, ARPACK) are imported inside the
# functions that rig: the add-on imports this module when Blender starts (for RigError,
# RigResult), and scipy there would add ~0.35 s to every Blender start-up. The add-on
# imports them on a background thread once Blender has started instead (``start_warm_up``).
from .regions import REGION_INDEX, REGION_NAMES

MIN_SKIN_VERTS = 30
"""Fewer vertices on the head's surface than this cannot carry a face (a cube has 8)."""
LARGE_HEAD_VERTS = 2_000_000
"""Above this the operators ask first (``confirm_large``): memory and minutes grow with it."""

RIG_MODEL = "rig.onnx"
LOCALIZER_MODEL = "localizer.onnx"


_warm_up: threading.Thread | None = None


def _import_rig_modules() -> None:
    try:
        from . import cavities, face_rules, features  # noqa: F401  (SciPy's sparse, csgraph, ARPACK, k-d trees)
        from .mesh import proxy  # noqa: F401
    except Exception:       # a broken install: the rig itself raises it, with its message
        pass


def start_warm_up() -> None:
    """Import what a rig needs on a background thread: SciPy costs ~0.3 s on a 2-core
    laptop, which the first Rig Face would otherwise pay. Imports only, nothing computed.
    The rig waits for the thread before its own imports, so the two never import at once."""
    global _warm_up
    if _warm_up is None:
        _warm_up = threading.Thread(target=_import_rig_modules, name="facsimile-warm-up", daemon=True)
        _warm_up.start()


def wait_for_warm_up() -> None:
    """Block until the warm-up started by :func:`start_warm_up` is done (no-op otherwise)."""
    if _warm_up is not None:
        _warm_up.join()


class RigError(FacsimileError, ValueError):
    """Input a rig cannot be built from; the message is shown to the artist."""


@dataclass
class RigResult:
    region_weights: np.ndarray          # (V,R) per original vertex, rows sum to 1 (0 off the skin)
    ict_deltas: np.ndarray              # (53,V,3) world-space deltas, ICT order
    skin: np.ndarray                    # (V,) bool: vertices the networks rigged
    jaw_part: np.ndarray                # (V,) bool: loose parts that follow the jaw (lower teeth, tongue)
    facing_ok: bool                     # the face looks toward -Y
    provider: str                       # execution provider actually used
    timings: dict = field(default_factory=dict)   # seconds per stage; they add up to the rig's time
    # Seconds of steps inside the stages, not added to the total: "cavities", "landmarks" (in "proxy"),
    # the rules' "eyes", "blink", "lids", "lips", "tongue" (in "rules").
    steps: dict = field(default_factory=dict)
    # ARKit shapes ICT has no shape for, made by the rules after the networks (tongueOut
    # when a tongue is found); absent names are still keys.
    extra: dict = field(default_factory=dict)
    # Per separate eye object passed to predict (same order): {eyeLook* name: (N,3) world
    # deltas}, empty for an object that is not an eyeball.
    eye_object_deltas: list = field(default_factory=list)
    report: EyeReport = field(default_factory=EyeReport)
    notes: list = field(default_factory=list)   # what was corrected or is doubtful, one line each
    # (V,) bool: skin inside closed cavities (sockets, mouth bags, nasal tubes) that
    # followed the outer skin instead of being rigged (``core.cavities``); None when the
    # cavity step was off.
    cavity: np.ndarray | None = None
    # The face landmarks (``core.landmarks``); None when the step was off.
    landmarks: LandmarkReport | None = None

    @property
    def seconds(self) -> float:
        """The rig's time: the sum of its stages (the steps timed inside them are in
        ``steps``, not here)."""
        return float(sum(self.timings.values()))

    def arkit_delta(self, name: str) -> np.ndarray:
        """(V,3) one ARKit shape: its ICT shape (a view), the sum of two for the split
        ones; tongueOut from the rules when a tongue was found, zeros otherwise."""
        idx = arkit.ict_indices_of(name)
        if not idx:
            if name in self.extra:
                return self.extra[name]
            return np.zeros(self.ict_deltas.shape[1:], self.ict_deltas.dtype)
        out = self.ict_deltas[idx[0]]
        for i in idx[1:]:
            out = out + self.ict_deltas[i]
        return out

    def arkit_deltas(self) -> np.ndarray:
        """(52,V,3) in ARKit order: split ICT halves summed, tongueOut still."""
        return np.stack([self.arkit_delta(name) for name in arkit.ARKIT_52])

    def named_deltas(self, style: str = "ARKIT"):
        """(name, (V,3) deltas) pairs, one shape at a time, in the naming style asked for
        ('ARKIT', 'ARKIT_LR', 'ICT53')."""
        if style == "ICT53":
            return zip(arkit.ICT_53, self.ict_deltas)
        return ((arkit.to_style(name, style)[0], self.arkit_delta(name)) for name in arkit.ARKIT_52)


@dataclass
class PreparedHead:
    """Everything that depends on the neutral only (reused by later localizations)."""

    skin: np.ndarray                    # (V,) bool
    notes: list                         # corrections made and doubts, for the report
    part_labels: np.ndarray             # (V,) loose part (seams welded) of non-skin vertices, -1 on skin
    verts_world: np.ndarray             # (V,3)
    norm: Normalization
    carry: scipy.sparse.csr_matrix      # (V,P) proxy values -> every vertex (rows off the skin empty)
    prepared: features.PreparedMesh
    n_verts: int
    faces: np.ndarray | None = None     # (F,3) the original triangles (the eye and mouth rules)
    # Closed cavities (``core.cavities``): the networks saw the outer skin only; ``carry``
    # moves these rows with it, fading with depth, ``carry_regions`` without the fading.
    cavity: np.ndarray | None = None    # (V,) bool, None when the step was off
    carry_regions: scipy.sparse.csr_matrix | None = None
    cavity_attenuation: np.ndarray | None = None   # (C,) per cavity row, in row order
    cavity_seconds: float = 0.0
    # Face landmarks from a front render (``core.landmarks``): None when the step was off.
    landmarks: LandmarkReport | None = None
    _nearest_skin: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def skin_canonical(self) -> np.ndarray:
        """(S,3) the skin vertices in the canonical frame."""
        return self.norm.apply(self.verts_world[self.skin])

    def nearest_skin(self) -> np.ndarray:
        """(P,) for each proxy vertex, the nearest skin vertex: how per-vertex values of the
        original mesh (painted weights, a source frame's displacement) reach the proxy."""
        if self._nearest_skin is None:
            from scipy.spatial import cKDTree

            self._nearest_skin = cKDTree(self.skin_canonical).query(self.prepared.verts)[1]
        return self._nearest_skin


@dataclass
class LandmarkReport:
    """What the landmark step found (``core.landmarks``), for the artist's report."""

    found: bool                          # a face was found on the render
    points: np.ndarray | None = None     # (478,3) world positions on the surface (NaN off it)
    turn_degrees: float = 0.0            # how far the head's pose is from ICT's
    pose: tuple = ()                     # (pitch, yaw, roll) degrees against MediaPipe's canonical face
    corrected: bool = False              # the rig turned the head by that much first
    seconds: float = 0.0
    unavailable: str = ""                # why the step could not run (its models missing)

    def line(self) -> str:
        if self.unavailable:
            return f"face landmarks unavailable ({self.unavailable}): rigged without them"
        if not self.found:
            return "no face found on a front render of the head: rigged without landmarks"
        if self.corrected:
            return (f"face landmarks found; the head is pitched {self.turn_degrees:.0f}° from an upright, "
                    "forward-looking pose and was rigged pitched upright")
        return "face landmarks found"


def _find_landmarks(proxy, norm) -> tuple[LandmarkReport, np.ndarray | None]:
    """The landmark step on the proxy (at most ``PROXY_MAX_VERTS`` vertices, so the cost
    does not grow with the head; a 256-pixel render has fewer pixels across the face than
    the proxy has vertices): (report, rotation for the canonical frame or None)."""
    from . import landmarks

    t = time.perf_counter()
    try:
        found = landmarks.find_landmarks(proxy.verts, proxy.faces)
    except FacsimileError as err:      # the tracker's models missing or broken: rig without
        return LandmarkReport(False, seconds=time.perf_counter() - t, unavailable=str(err)), None
    if found is None:
        return LandmarkReport(False, seconds=time.perf_counter() - t), None
    rotation, angle = landmarks.pose_correction(found)
    points = norm.invert(np.nan_to_num(found.points)).astype(np.float64)
    points[~found.valid] = np.nan
    pose = tuple(float(a) for a in landmarks.rotation_angles(landmarks.landmark_pose(found)))
    return LandmarkReport(True, points, angle, pose, rotation is not None, time.perf_counter() - t), rotation


def prepare_head(verts_world: np.ndarray, faces: np.ndarray, cavities: bool = True,
                 landmarks: bool = True) -> PreparedHead:
    wait_for_warm_up()
    from . import features
    from .mesh.head import normalize_head, split_parts
    from .mesh.proxy import build_proxy

    verts = np.asarray(verts_world, np.float64)
    faces = np.asarray(faces, np.int64)
    if verts.ndim != 2 or verts.shape[1] != 3 or len(verts) < 4:
        raise RigError("the mesh has too few vertices to be a head")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) < 2:
        raise RigError("the mesh has no faces: Facsimile needs a surface, not a point cloud")
    if not np.isfinite(verts).all():
        raise RigError("the mesh has vertices at infinite or undefined positions")
    # One weld and one component search serve the skin, the proxy and the loose parts.
    notes = []
    head_parts = split_parts(verts, faces)
    skin_verts, skin_faces, skin_welded = head_parts.skin_mesh()
    if len(skin_faces) < 2:
        raise RigError("no connected surface large enough to be a head was found")
    extent = np.ptp(skin_verts, axis=0)
    if extent.max() <= 0:
        raise RigError("the mesh has zero size")
    from .mesh.topology import face_areas

    if face_areas(skin_verts, skin_faces).sum() <= 1e-9 * float(extent @ extent) or \
            np.sort(extent)[1] <= 1e-6 * extent.max():
        raise RigError("the mesh is flat as a line (its faces have no area): model a head surface and rig again")
    if len(skin_verts) < MIN_SKIN_VERTS:
        raise RigError(f"the head's surface has only {len(skin_verts)} vertices; a face needs at least "
                       f"{MIN_SKIN_VERTS} (subdivide it or rig a modelled head)")
    if head_parts.facing_inward():
        # Inward normals (flipped faces, or a mirrored transform that read_mesh did not see)
        # turn every shape inside out; flipping the winding here is exact.
        faces = faces[:, ::-1].copy()
        head_parts.faces = head_parts.faces[:, ::-1].copy()
        skin_faces = skin_faces[:, ::-1].copy()
        notes.append("corrected: the normals point inward; rigged with them outward (Mesh › Normals › "
                     "Recalculate Outside to fix the mesh itself)")
    shells = head_parts.large_skin_shells()
    if shells > 1:
        notes.append(f"the head is {shells} separate surfaces of similar size (two heads?); rigged as one — "
                     "rig each head on its own object")
    norm = normalize_head(skin_verts)
    proxy = build_proxy(norm.apply(skin_verts), skin_faces,
                                max_verts=features.PROXY_MAX_VERTS, welded=True)
    found = None
    if landmarks:
        found, rotation = _find_landmarks(proxy, norm)
        if rotation is not None:
            # The proxy's vertices are vertices of the skin, so turning them is exact.
            world = norm.invert(proxy.verts)
            norm = normalize_head(skin_verts, rotation=rotation)
            proxy.verts = norm.apply(world)
    # Original skin vertex -> its welded skin vertex, which the proxy locates.
    skin = head_parts.skin_of_original
    position = np.empty(len(head_parts.skin), np.int64)
    position[skin_welded] = np.arange(len(skin_welded))
    proxy = proxy.take(position[head_parts.vertex_map[skin]])
    carry = proxy.carry_matrix(rows=np.flatnonzero(skin), n_rows=len(verts))
    used = np.zeros(len(head_parts.verts), bool)
    used[head_parts.faces.ravel()] = True
    part_labels = np.where(used & ~head_parts.skin, head_parts.part, -1)[head_parts.vertex_map]
    if not cavities:
        prepared = features.prepare(proxy.verts, proxy.faces)
        return PreparedHead(skin, notes, part_labels, verts, norm, carry, prepared, len(verts), faces,
                            landmarks=found)
    from .cavities import outer_skin

    outer = outer_skin(proxy, carry, head_parts, norm, verts, skin)
    prepared = features.prepare(outer.verts, outer.faces)
    return PreparedHead(skin, notes, part_labels, verts, norm, outer.carry, prepared, len(verts), faces,
                        outer.cavity, outer.carry_regions, outer.attenuation, outer.seconds, found)


def predict(verts_world: np.ndarray, faces: np.ndarray, *, provider: str = "AUTO",
            painted_weights: np.ndarray | None = None, strength: float = 1.0,
            progress: Callable[[float, str], None] | None = None,
            cancelled: Callable[[], bool] | None = None,
            rig_model: str = RIG_MODEL, localizer_model: str | None = LOCALIZER_MODEL,
            eye_rules: bool = True, eye_objects=(), cavities: bool = True,
            landmarks: bool = True, gaze: dict | None = None, tighten: float = 0.0) -> RigResult:
    """Rig a head given in world space (any unit, Z up, facing -Y).

    ``painted_weights`` (V,R), when given, replaces the predicted region weights as the
    localization (an artist's repainted ``FX_`` groups); rows are renormalized.
    ``progress(fraction, stage)`` is called between stages and ``cancelled()`` polled
    there; on cancel :class:`Cancelled` is raised before anything is returned.
    ``localizer_model=None`` runs a global-code-only rig (the benchmark's ablation).
    ``eye_rules`` applies the rules after the networks (``core.face_rules``: eyeballs
    turn for eyeLook*, the blink closes, tongueOut); ``eye_objects`` are separate eye
    meshes, world-space (N,3) arrays in the head's frame, that get eyeLook* keys of their own.
    ``gaze`` sets the rig's range of eye motion: degrees the eyeballs turn at eyeLook* = 1,
    any of ``{"In", "Out", "Up", "Down"}`` (``eyes.gaze_angles``; the rest, or all with
    None, the calibrated ``eyes.GAZE_DEGREES``).
    ``cavities`` runs the networks on the outer skin only and lets closed cavities (eye
    sockets, mouth bags fused to the skin) follow it (``core.cavities``).
    ``landmarks`` looks for a face on a front render of the head (``core.landmarks``) and
    turns a head that is far from upright and forward-looking into that pose first;
    ``RigResult.landmarks`` says what was found.
    ``tighten`` (0 to below 1) fades out the weak, far-reaching part of every predicted shape
    (``core.falloff``), for sculpted and game-rig styles; 0 keeps the networks' answer.
    """
    timings = {}
    try:                                   # bad input fails before any work
        gaze = eyes.gaze_angles(gaze)
    except ValueError as err:
        raise RigError(str(err)) from None
    if not 0.0 <= float(tighten) < 1.0:
        raise RigError(f"tighten {float(tighten):g}: must be at least 0 and below 1")

    def stage(frac, name):
        if cancelled is not None and cancelled():
            raise Cancelled()
        if progress is not None:
            progress(frac, name)

    t = time.perf_counter()
    stage(0.0, "proxy")
    verts_world = np.asarray(verts_world, np.float64)
    head = prepare_head(verts_world, faces, cavities, landmarks)
    timings["proxy"] = time.perf_counter() - t

    t = time.perf_counter()
    stage(0.35, "inference")
    from . import features

    out = inference.run(rig_model, features.rig_feeds(head.prepared), provider)
    responses = out["responses"]                                   # (P,53,3)
    _check_finite(out, rig_model)
    if localizer_model is None:
        return _rules(_finish(head, responses, np.full((len(responses), len(REGION_NAMES)),
                                                       1.0 / len(REGION_NAMES)), strength, timings, t),
                      head, responses * float(strength), eye_rules, eye_objects, gaze=gaze)
    weights_proxy = out["region_weights"]
    if painted_weights is not None:
        painted = np.asarray(painted_weights, np.float64)[head.skin]
        if painted.shape[1] != len(REGION_NAMES):
            raise RigError(f"painted weights need {len(REGION_NAMES)} regions, got {painted.shape[1]}")
        loc_weights = painted[head.nearest_skin()]
        sums = loc_weights.sum(1, keepdims=True)
        loc_weights = np.where(sums > 1e-8, loc_weights / np.maximum(sums, 1e-8), weights_proxy)
    else:
        loc_weights = weights_proxy
    loc = inference.run(localizer_model, {"region_weights": loc_weights}, provider)
    _check_finite(loc, localizer_model)
    omega = loc["localization"]
    stage(0.7, "transfer")
    deltas_proxy = omega[:, :, None] * responses
    if tighten:
        from .falloff import tighten as tighten_shapes

        deltas_proxy = tighten_shapes(deltas_proxy, tighten)
    result = _finish(head, deltas_proxy, weights_proxy, strength, timings, t)
    # Painted groups are the artist's word on where each shape acts: the blink's geometric
    # completion goes only as far as the paint keeps each vertex's upper-lid weight (a lid
    # painted out stays still; groups left as predicted close the eye as Rig Face does).
    blink_paint = None if painted_weights is None else _lid_paint(painted_weights, result.region_weights)
    return _rules(result, head, deltas_proxy * float(strength), eye_rules, eye_objects, gaze=gaze,
                  blink_paint=blink_paint)


def _lid_paint(painted_weights: np.ndarray, predicted: np.ndarray) -> dict:
    """{"Left": (V,), "Right": (V,)}: how much of each vertex's predicted upper-lid weight the
    painted groups keep, 0..1 (rows normalized as the localization reads them). Lid vertices
    are shared with the lower lid and the brow, so the share itself is below 1 at the margin;
    the ratio is 1 wherever the artist left the groups as predicted. ARKit's Left is the
    character's left, +X: the ``_L`` regions."""
    painted = np.asarray(painted_weights, np.float64)
    painted = painted / np.maximum(painted.sum(1, keepdims=True), 1e-8)
    out = {}
    for side, region in (("Left", "upper_lid_L"), ("Right", "upper_lid_R")):
        k = REGION_INDEX[region]
        out[side] = np.clip(painted[:, k] / np.maximum(predicted[:, k], 1e-3), 0.0, 1.0)
    return out


def _rules(result: RigResult, head: PreparedHead, deltas_proxy: np.ndarray, eye_rules: bool,
           eye_objects, gaze: dict | None = None, blink_paint: dict | None = None) -> RigResult:
    """The eye and mouth rules after the networks (``core.face_rules``), in place."""
    objects = [np.asarray(o, np.float64).reshape(-1, 3) for o in eye_objects]
    result.eye_object_deltas = [{} for _ in objects]
    if not eye_rules:
        return result
    from . import face_rules

    t = time.perf_counter()
    face_rules.apply(result, head, deltas_proxy, objects, gaze=gaze, blink_paint=blink_paint)
    result.timings["rules"] = time.perf_counter() - t
    return result


def _check_finite(outputs: dict, model: str) -> None:
    """A model that loads but computes NaN (a corrupt or mismatched file, a broken GPU
    driver) must not reach the mesh: 52 keys of NaN look rigged and destroy the render."""
    for name, value in outputs.items():
        if not np.isfinite(value).all():
            raise RigError(f"the model '{model}' produced invalid numbers (NaN) for '{name}'; nothing was "
                           "written — reinstall the extension, or choose the CPU in the preferences")


def _prepare_steps(head: PreparedHead) -> dict:
    """Seconds of the steps timed inside "proxy" (``RigResult.steps``)."""
    steps = {}
    if head.cavity is not None:
        steps["cavities"] = head.cavity_seconds
    if head.landmarks is not None:
        steps["landmarks"] = head.landmarks.seconds
    return steps


def _finish(head: PreparedHead, deltas_proxy: np.ndarray, weights_proxy: np.ndarray, strength: float,
            timings: dict, t_inference: float) -> RigResult:
    """Carry proxy results back to every vertex, in world units."""
    from .mesh.head import looks_toward_minus_y

    info = inference.last_session_info()
    timings["inference"] = time.perf_counter() - t_inference
    t = time.perf_counter()
    # World units on the proxy (a scale commutes with interpolation): per vertex, only
    # the interpolation itself is left, one sparse product filling every row at once.
    world = deltas_proxy * (float(strength) * head.norm.scale)
    if head.norm.rotation is not None:              # back from the turned canonical pose
        world = world @ head.norm.rotation
    world = world.astype(np.float32)
    ict_deltas = parallel.sparse_dot(head.carry, world, shapes_first=True)          # (53,V,3)
    carry_regions = head.carry if head.carry_regions is None else head.carry_regions
    region_weights = np.clip(parallel.sparse_dot(carry_regions, weights_proxy.astype(np.float32)), 0.0, None)
    region_weights /= np.maximum(region_weights.sum(1, keepdims=True), 1e-12)
    jaw_part = _loose_parts_follow_jaw(head, deltas_proxy * float(strength), ict_deltas)
    if head.cavity is not None and head.cavity.any():
        from .cavities import mouth_bag_follows_jaw

        mouth_bag_follows_jaw(head, deltas_proxy * float(strength), ict_deltas)
    timings["transfer"] = time.perf_counter() - t
    # On the proxy: the same shape at a fraction of the cost for dense heads.
    facing = _faces_front(head.landmarks) or looks_toward_minus_y(head.prepared.verts, head.prepared.faces)
    return RigResult(region_weights, ict_deltas, head.skin, jaw_part, bool(facing),
                     info.label if info else "", timings, notes=list(head.notes), cavity=head.cavity,
                     landmarks=head.landmarks, steps=_prepare_steps(head))


FRONT_DEGREES = 45.0
"""A face the landmarker finds on the front render within this of straight on (yaw and pitch)
looks toward -Y: -Y is then the nearest of the six axis directions to where it looks, the
question :func:`mesh.head.looks_toward_minus_y` answers from the shape alone."""


def _faces_front(found: "LandmarkReport | None") -> bool:
    """The face found on the front render says the head looks toward -Y: direct evidence,
    where the shape's cues (``facing_score``) can be fooled by a neck and shoulders or by the
    cavities cut out of the proxy. No face found decides nothing (Suzanne, a sphere, a head
    turned away: the render shows no face)."""
    if found is None or not found.found or len(found.pose) < 2:
        return False
    pitch, yaw = found.pose[0], found.pose[1]
    return abs(yaw) <= FRONT_DEGREES and abs(pitch) <= FRONT_DEGREES


def _loose_parts_follow_jaw(head: PreparedHead, deltas_proxy: np.ndarray,
                            ict_deltas: np.ndarray) -> np.ndarray:
    """Lower teeth, tongue and gums follow the jaw shapes (see ``core.parts``); in place."""
    loose = np.flatnonzero(head.part_labels >= 0)
    jaw_part = np.zeros(head.n_verts, bool)
    if len(loose) == 0:
        return jaw_part
    points = head.norm.apply(head.verts_world[loose])
    follows = parts.jaw_part_mask(points, head.part_labels[loose], head.prepared.verts, deltas_proxy)
    if follows.any():
        anchors = parts.jaw_anchors(deltas_proxy)
        moved = parts.follow_jaw(points[follows], head.prepared.verts[anchors],
                                 deltas_proxy[anchors].transpose(1, 0, 2))
        jaw = list(parts.JAW_SHAPES)                 # follow_jaw moves nothing else
        ict_deltas[np.ix_(jaw, loose[follows])] = head.norm.invert_vectors(moved[jaw])
        jaw_part[loose[follows]] = True
    return jaw_part


SMALL_SHAPES = 0.02
"""Below this, the largest predicted motion (as a fraction of the skin's width) is too small
to read on screen: Suzanne's peaks at 0.9 % (jawOpen 0.6 %), a human head's jawOpen at
15–20 %. The rig operators warn with a hint then."""


RULE_SHAPES = ("eyeBlink", "eyeLook", "eyeSquint", "eyeWide")


def peak_motion(result: RigResult, verts_world: np.ndarray) -> tuple[float, str]:
    """(largest displacement of any ARKit shape on the skin over the skin's width, that shape's
    name). The skin only: eyeballs turning for eyeLook* say nothing about the face's shapes."""
    skin = np.asarray(verts_world)[result.skin]
    if len(skin) == 0:
        return 0.0, ""
    width = float(np.ptp(skin[:, 0]))
    # (53,) per ICT shape: the largest squared length, then its root (the same numbers as
    # the norm of every row, without copying 53 shapes of the skin's rows first).
    d = result.ict_deltas
    peaks = np.sqrt((d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1] + d[..., 2] * d[..., 2])[:, result.skin].max(axis=1))
    # The network's shapes only: the eye rules close a blink or turn a gaze whatever its size,
    # and Strength does not scale them, so they say nothing about what Strength should fix.
    peaks[[i for i, n in enumerate(arkit.ICT_53) if n.startswith(RULE_SHAPES)]] = 0.0
    best = int(np.argmax(peaks))
    name = arkit.ICT_53[best]
    return (float(peaks[best]) / width if width > 0 else 0.0), name
