# SPDX-License-Identifier: GPL-3.0-or-later
"""Face landmarks on a mesh: MediaPipe's face landmarker on a front render, cast back.

The networks the video importer ships (``models/mediapipe``, glued in
``core.video.landmarker``) find a face in a photograph; a shaded front render of the
head (``core.mesh.render``, numpy only) is photograph enough for them. What they return
are image positions; the render's triangle buffer turns each into a point on the surface
(:meth:`Render.surface_points`), so the 478 landmarks become 3-D points of the head.

Two passes: the whole mesh is drawn (a full body or a neck and shoulders leave a small
face), the face detector finds the face, and the face's region is drawn again filling
the picture, where the landmark network reads it (once from the detection, once more from
its own landmarks, as the video tracker does from frame to frame).

A face is accepted as the tracker accepts one: face presence and the features under
the landmarks (``feature_contrast``: a shaded sphere has none). Animals, abstract heads
and Suzanne usually give no face at all; the rig then goes on without landmarks.

Uses (measured in docs/models.md, ``tools/bench_landmarks.py``): :func:`head_rotation`,
the head's rotation against ICT's pose, from a similarity fit of the landmarks to
MediaPipe's canonical face.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .mesh.render import Render, render_front
from .mesh.topology import vertex_normals
from .video import landmarker as mp

RENDER_SIZE = 256          # the landmark network reads 256 x 256; the detector 128 x 128
# The tiny networks run on the CPU whatever the rig's provider: a GPU round trip and a
# CUDA session start cost more than the few milliseconds they take there.
PROVIDER = "CPU"

# Landmarks of MediaPipe's 468-point mesh used by the rig (subject's right / left).
NOSE_TIP = 1
EYE_OUTER = (33, 263)
EYE_INNER = (133, 362)
MOUTH_CORNERS = (61, 291)
CHIN = 152


@dataclass
class MeshLandmarks:
    """The face found on a mesh.

    points    (478, 3) world positions on the surface (NaN where a landmark fell off it)
    face      (478,) triangle index of each point (-1 off the surface)
    image     (478, 2) pixel positions in ``render`` (x right, y down)
    presence  face-presence score of the landmark network
    contrast  features under the landmarks (``landmarker.feature_contrast``)
    """

    points: np.ndarray
    face: np.ndarray
    image: np.ndarray
    presence: float
    contrast: float
    render: Render = field(repr=False)
    seconds: float = 0.0

    @property
    def valid(self) -> np.ndarray:
        return self.face >= 0

    @property
    def eye_distance(self) -> float:
        """Distance between the outer eye corners (world units)."""
        return float(np.linalg.norm(self.points[EYE_OUTER[1]] - self.points[EYE_OUTER[0]]))


def _landmarker() -> mp.FaceLandmarker:
    return mp.FaceLandmarker(provider=PROVIDER, search_tiles=True, with_blendshapes=False)


def find_landmarks(verts, faces, size: int = RENDER_SIZE) -> MeshLandmarks | None:
    """The face on a mesh that looks toward -Y (Z up), or None when none is found.

    ``verts`` (N, 3) and ``faces`` (F, 3) are drawn as given: pass the skin and the loose
    parts it encloses (eyeballs in the sockets look like eyes)."""
    t = time.perf_counter()
    verts = np.asarray(verts, np.float64)
    faces = np.asarray(faces, np.int64)
    if len(faces) == 0:
        return None
    tracker = _landmarker()
    normals = vertex_normals(verts, faces)
    whole = render_front(verts, faces, size, normals=normals)
    det = tracker.detect(whole.image)
    if det is None:
        return None
    # The detection's region (a square 1.5x the face box), drawn again to fill the picture.
    roi = det.roi()
    half = 0.5 * roi.size * whole.pixel
    cx = whole.origin[0] + roi.cx * whole.pixel
    cz = whole.origin[1] - roi.cy * whole.pixel
    close = render_front(verts, faces, size, box=((cx - half, cz - half), (cx + half, cz + half)), margin=0.0,
                         normals=normals)
    roi = mp.Roi(size / 2.0, size / 2.0, float(size), roi.angle)
    lm, presence = tracker.landmarks(close.image, roi)
    lm, presence = tracker.landmarks(close.image, tracker.roi_from_landmarks(lm))
    contrast = mp.feature_contrast(close.image, lm)
    if presence < mp.MIN_PRESENCE or contrast < mp.MIN_FEATURE_CONTRAST:
        return None
    points, face, _bary = close.surface_points(lm[:, :2])
    # The landmarker's own depth (pixel units, toward the camera negative, as the render's
    # y) says where each landmark lies in front of or behind the others: a cast that
    # disagrees by more than a tenth of the picture went through a hole (an eye corner
    # inside an open socket reaches the back of the skull) and is cast again near the
    # depth expected, the offset being the median over all landmarks.
    depth_of = lm[:, 2] * close.pixel
    hit = face >= 0
    if hit.sum() >= 10:
        offset = float(np.median(points[hit, 1] - depth_of[hit]))
        points, face, _bary = close.surface_points(lm[:, :2], expected_depth=depth_of + offset)
    key = [NOSE_TIP, *EYE_OUTER, *MOUTH_CORNERS]
    if (face[key] < 0).any():
        return None
    return MeshLandmarks(points, face, lm[:, :2], presence, contrast, close, time.perf_counter() - t)


# ---------------------------------------------------------------------------------------------
# The head's pose
# ---------------------------------------------------------------------------------------------

_CANONICAL: np.ndarray | None = None


def canonical_face() -> np.ndarray:
    """(468, 3) MediaPipe's canonical face in Blender's axes (cm, facing -Y, Z up)."""
    global _CANONICAL
    if _CANONICAL is None:
        with np.load(mp.MODEL_DIR / mp.GEOMETRY) as geo:
            v = geo["vertices"].astype(np.float64)          # x: subject's left, y up, z toward the viewer
        _CANONICAL = np.c_[v[:, 0], -v[:, 2], v[:, 1]]
    return _CANONICAL


def similarity_fit(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """``(s, R, t)`` of the least-squares similarity ``dst ~ s R src + t`` (Umeyama)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag([1.0, 1.0, d]) @ vt
    s = float((sig * np.array([1.0, 1.0, d])).sum() / max(float((a * a).sum()), 1e-30))
    return s, rot, md - s * rot @ ms


# The landmarks the pose is fitted to: the eye corners, the nose's ridge and tip, the mouth
# corners and lip middles, the brows and the forehead's middle -- features every face has
# in about the same place. Over 24 ICT identities (``REFERENCE_POSE``) they spread the
# fitted pitch by 1.6 deg (standard deviation; largest turn from the mean 4.0 deg), where
# all 468 points spread it by 3.3 (6.5) and MediaPipe's own 33 Procrustes points by 3.7
# (12.2): the jaw line and cheek contour follow each face's profile, not its pose.
POSE_POINTS = np.array([33, 133, 362, 263, 1, 4, 6, 168, 197, 195, 5, 61, 291, 0, 17, 70, 300, 105, 334, 10,
                        151, 9])


def landmark_pose(found: MeshLandmarks) -> np.ndarray:
    """(3, 3) rotation of the canonical face onto the head's landmarks (world axes)."""
    ok = POSE_POINTS[found.valid[POSE_POINTS]]
    _s, rot, _t = similarity_fit(canonical_face()[ok], found.points[ok])
    return rot


def rotation_angles(rot: np.ndarray) -> np.ndarray:
    """(pitch, yaw, roll) degrees of a rotation in Blender axes: about X (chin down is
    positive), about Z and about Y, in that order (R = Rz(yaw) Ry(roll) Rx(pitch))."""
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[2, 2]))
    yaw = np.degrees(np.arctan2(rot[1, 0], rot[0, 0]))
    roll = np.degrees(np.arcsin(np.clip(-rot[2, 0], -1.0, 1.0)))
    return np.array([pitch, yaw, roll])


# ICT's own pose against MediaPipe's canonical face: the mean (pitch, yaw, roll) of the
# landmark fit (``POSE_POINTS``) over 24 ICT identities drawn as the training pool draws
# them (crops, stylizations), on a seed of their own (``python -m tools.bench_landmarks
# reference``). The networks were trained on heads in this pose, give or take the pool's
# random tilt. Spread over those identities: 1.6 deg in pitch (faces differ in profile),
# 0.9 in yaw, 0.7 in roll; the largest turn of one of them from the mean, 4.0 deg.
REFERENCE_POSE = (-2.0, -0.6, 0.1)
# Turns smaller than this are left alone: the training pool tilts every head by up to 8
# deg at random, so the networks already take them, and an upright identity's own profile
# moves the fitted pose by up to 4.0 deg (above), which a correction would add as noise
# (correcting every turn, with all 468 points fitted: held-out ICT relative error 0.104 -> 0.123).
DEAD_ZONE = 8.0


def angles_to_rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """R = Rz(yaw) Ry(roll) Rx(pitch), degrees (the inverse of :func:`rotation_angles`)."""
    p, y, r = np.radians([pitch, yaw, roll])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    ry = np.array([[np.cos(r), 0, np.sin(r)], [0, 1, 0], [-np.sin(r), 0, np.cos(r)]])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def pose_correction(found: MeshLandmarks, dead_zone: float | None = None) -> tuple[np.ndarray | None, float]:
    """``(R, degrees)``: the rotation that turns the head into ICT's pose (None when the
    turn is under ``dead_zone`` degrees, default :data:`DEAD_ZONE`) and the size of that turn."""
    dead_zone = DEAD_ZONE if dead_zone is None else dead_zone
    turn = landmark_pose(found) @ angles_to_rotation(*REFERENCE_POSE).T     # head = turn @ reference
    # Pitch only. Yaw and roll are what the mesh's own mirror symmetry fixes: heads are
    # modelled symmetric about X = 0, and the landmarker, fitted to a stylized face, is the
    # less reliable of the two (on Blender's Suzanne, perfectly symmetric, it reads 6.6° of
    # roll, and turning by it broke the mirror pairing of the eyeballs and with it the blink).
    # Pitch is the turn symmetry cannot see, and the one artists' heads have.
    pitch = float(rotation_angles(turn)[0])
    angle = abs(pitch)
    return (angles_to_rotation(pitch, 0.0, 0.0).T if angle > dead_zone else None), angle


def turn_degrees(rot: np.ndarray) -> float:
    """The angle of a rotation, degrees."""
    return float(np.degrees(np.arccos(np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0))))
