# SPDX-License-Identifier: GPL-3.0-or-later
"""MediaPipe's face landmarker, re-assembled on ONNX Runtime (no MediaPipe at run time).

The three networks of Google's ``face_landmarker.task`` (converted by
``tools/mediapipe_onnx.py``, shipped in ``models/mediapipe/``) are glued together here the
way MediaPipe's own graph does in VIDEO mode:

1. **Detect** (only when no face is being tracked): BlazeFace short range on the frame
   letterboxed to 128x128, 896 SSD anchors, weighted non-maximum suppression. A face too
   small for the full frame is looked for again in overlapping square tiles (MediaPipe
   itself stops at the full frame, and misses a face under ~1/8 of the frame height).
2. **Region of interest**: a square 1.5x the face box, rotated so the eyes are level.
3. **Landmarks**: the ROI resampled to 256x256 -> 478 points (468 mesh + 10 iris) and a
   face-presence score. The next frame's ROI comes from these landmarks (tracking), so the
   detector runs once per shot, not once per frame. Presence says yes to a shaded grey
   sphere too, so a face must also show features under its landmarks
   (:func:`feature_contrast`; Facsimile's addition).
4. **Blend shapes**: 146 of the landmarks, in pixels -> 52 scores (index 0 ``_neutral``,
   then 51 ARKit names in alphabetical order; ``tongueOut`` is not among them).
5. **Head pose**: weighted Procrustes of 33 landmarks against MediaPipe's canonical face.

Everything is numpy + ONNX Runtime; frames are ``(H, W, 3) uint8`` RGB arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .. import inference
from ..errors import FacsimileError

MODEL_DIR = inference.MODELS_DIR / "mediapipe"
DETECTOR = "face_detector.onnx"
LANDMARKS = "face_landmarks.onnx"
BLENDSHAPES = "face_blendshapes.onnx"
GEOMETRY = "face_geometry.npz"

# MediaPipe's blend-shape output order: `_neutral`, then the ARKit names alphabetically.
MP_BLENDSHAPES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)

# The landmarks the blend-shape network reads (MediaPipe face_blendshapes_graph.cc).
BLENDSHAPE_LANDMARKS = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168,
    172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276,
    282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380,
    381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
    468, 469, 470, 471, 472, 473, 474, 475, 476, 477], dtype=np.int64)

DETECT_SIZE = 128
LANDMARK_SIZE = 256
MIN_DETECTION_SCORE = 0.5
NMS_IOU = 0.3
MIN_PRESENCE = 0.5       # below: the face is lost, detect again
# Below this the landmarks sit on something without facial features (see feature_contrast).
# Brows, pupils, the lip line and nostrils are dark against skin (Weber contrast ~0.3 or more)
# and cover about a quarter of the 468 mesh points, so a face's residual is ~0.3 * sqrt(0.25)
# = 0.15 or more (the project's rendered face video: 0.27-0.31 in every frame, blinks
# included); a smoothly shaded object stays near the fit (a grey sphere the detector takes
# for a face: 0.013-0.038). 0.08 is twice the sphere's and about half a face's.
MIN_FEATURE_CONTRAST = 0.08
ROI_SCALE = 1.5
RIGHT_EYE, LEFT_EYE = 33, 263   # subject's right (image left) / left eye outer corners


class LandmarkerError(FacsimileError, RuntimeError):
    """The tracker's models are missing or cannot run; the message is for the artist."""


@dataclass
class Roi:
    """A rotated square in pixels: centre, side and rotation (radians, image y down)."""

    cx: float
    cy: float
    size: float
    angle: float


@dataclass
class FaceResult:
    """One tracked frame.

    landmarks    (478, 3) pixels: x right, y down, z depth in pixel units (toward the camera
                 is negative), as MediaPipe's normalised landmarks times the frame width
    blendshapes  (52,) MediaPipe order (:data:`MP_BLENDSHAPES`)
    rotation     (3, 3) head rotation, canonical face -> camera (x right, y up, z toward
                 the camera); identity for a face looking straight into the lens
    presence     face-presence score of the landmark network
    roi          the region the landmarks were read from
    """

    landmarks: np.ndarray
    blendshapes: np.ndarray
    rotation: np.ndarray
    presence: float
    roi: Roi


# ---------------------------------------------------------------------------------------------
# Image sampling
# ---------------------------------------------------------------------------------------------

def sample_affine(image: np.ndarray, matrix: np.ndarray, out_h: int, out_w: int,
                  border: str = "replicate") -> np.ndarray:
    """Bilinear resampling: output pixel (u, v) reads the image at ``matrix @ (u+.5, v+.5, 1)``.

    ``matrix`` is 2x3 and maps output pixel centres to image coordinates (pixel centres at
    +0.5). Returns float32 (out_h, out_w, C) in the image's value range. ``border`` is
    'replicate' (clamp) or 'zero'. Gathers from the flattened image with ``take`` (a few ms
    for 256x256 from a 720p frame; fancy 2-D indexing is several times slower).
    """
    h, w = image.shape[:2]
    chans = image.shape[2] if image.ndim == 3 else 1
    u = np.arange(out_w, dtype=np.float32) + 0.5
    v = np.arange(out_h, dtype=np.float32) + 0.5
    m = matrix.astype(np.float32)
    x = (m[0, 0] * u[None, :] + m[0, 1] * v[:, None] + (m[0, 2] - 0.5)).ravel()
    y = (m[1, 0] * u[None, :] + m[1, 1] * v[:, None] + (m[1, 2] - 0.5)).ravel()
    x0 = np.floor(x)
    y0 = np.floor(y)
    fx = (x - x0)[:, None]
    fy = (y - y0)[:, None]
    x0 = x0.astype(np.int32)
    y0 = y0.astype(np.int32)
    xs = (np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1))
    ys = (np.clip(y0, 0, h - 1) * w, np.clip(y0 + 1, 0, h - 1) * w)
    flat = np.ascontiguousarray(image).reshape(h * w, chans)
    taps = [flat.take(yy + xx, axis=0).astype(np.float32) for yy in ys for xx in xs]
    if border == "zero":
        for t, (yy, xx) in zip(taps, [(a, b) for a in (y0, y0 + 1) for b in (x0, x0 + 1)]):
            t *= ((xx >= 0) & (xx < w) & (yy >= 0) & (yy < h))[:, None]
    top = taps[0] + (taps[1] - taps[0]) * fx
    top += ((taps[2] + (taps[3] - taps[2]) * fx) - top) * fy
    return top.reshape(out_h, out_w, chans)


def box_reduce(image: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor`` x ``factor`` pixel blocks (anti-aliasing before a big downscale)."""
    if factor <= 1:
        return image
    h, w = (image.shape[0] // factor) * factor, (image.shape[1] // factor) * factor
    block = image[:h, :w].reshape(h // factor, factor, w // factor, factor, -1)
    return block.mean(axis=(1, 3), dtype=np.float32)


def roi_matrix(roi: Roi, out_size: int) -> np.ndarray:
    """2x3 matrix from output pixels of a ``out_size`` square to the image, for ``roi``."""
    c, s = math.cos(roi.angle), math.sin(roi.angle)
    k = roi.size / out_size
    # image = centre + R @ ((u - out/2) * k): R rotates by +angle with y pointing down.
    return np.array([[c * k, -s * k, roi.cx - (c - s) * roi.size / 2],
                     [s * k, c * k, roi.cy - (s + c) * roi.size / 2]], dtype=np.float64)


def _angle(p0, p1) -> float:
    """MediaPipe's ROI rotation: the angle that brings the p0 -> p1 vector to horizontal."""
    a = -math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0])
    return (a + math.pi) % (2 * math.pi) - math.pi


# ---------------------------------------------------------------------------------------------
# Detection (BlazeFace short range)
# ---------------------------------------------------------------------------------------------

def ssd_anchors() -> np.ndarray:
    """(896, 2) anchor centres of BlazeFace short range (strides 8, 16, 16, 16; 2 per layer)."""
    strides = (8, 16, 16, 16)
    out = []
    i = 0
    while i < len(strides):
        j = i
        while j < len(strides) and strides[j] == strides[i]:
            j += 1
        per_cell = 2 * (j - i)
        fm = math.ceil(DETECT_SIZE / strides[i])
        yy, xx = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        cells = np.stack([xx.ravel(), yy.ravel()], axis=1)
        out.append(np.repeat(cells, per_cell, axis=0))
        i = j
    return np.concatenate(out).astype(np.float32)


_ANCHORS = ssd_anchors()


@dataclass
class Detection:
    """A face box and its 6 keypoints in image pixels (keypoints: right eye, left eye,
    nose tip, mouth, right ear, left ear; right/left of the subject)."""

    score: float
    box: np.ndarray          # (4,) x_min, y_min, x_max, y_max
    keypoints: np.ndarray    # (6, 2)

    def roi(self) -> Roi:
        cx, cy = (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2
        side = max(self.box[2] - self.box[0], self.box[3] - self.box[1]) * ROI_SCALE
        return Roi(float(cx), float(cy), float(side), _angle(self.keypoints[0], self.keypoints[1]))


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def decode_detections(regressors: np.ndarray, scores: np.ndarray,
                      min_score: float = MIN_DETECTION_SCORE) -> list[tuple[float, np.ndarray, np.ndarray]]:
    """Raw detector outputs -> [(score, box (4,), keypoints (6,2))] in 0..1 letterbox units,
    after MediaPipe's weighted non-maximum suppression, best first."""
    raw = regressors.reshape(-1, 16)
    score = 1.0 / (1.0 + np.exp(-np.clip(scores.reshape(-1).astype(np.float64), -100, 100)))
    keep = np.flatnonzero(score >= min_score)
    if keep.size == 0:
        return []
    raw, score, anchors = raw[keep] / DETECT_SIZE, score[keep], _ANCHORS[keep]
    cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
    w, h = raw[:, 2], raw[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    kps = raw[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
    order = np.argsort(-score)
    boxes, kps, score = boxes[order], kps[order], score[order]
    out = []
    alive = np.ones(len(score), bool)
    while alive.any():
        i = int(np.flatnonzero(alive)[0])
        cluster = alive & (_iou(boxes[i], boxes) > NMS_IOU)
        cluster[i] = True
        wts = score[cluster][:, None]
        box = (boxes[cluster] * wts).sum(0) / wts.sum()
        kp = (kps[cluster] * wts[:, :, None]).sum(0) / wts.sum()
        out.append((float(score[i]), box, kp))
        alive &= ~cluster
    return out


# ---------------------------------------------------------------------------------------------
# Head pose
# ---------------------------------------------------------------------------------------------

def procrustes_rotation(src: np.ndarray, dst: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Rotation R (3x3, det +1) of the weighted similarity fit ``dst ~ s R src + t``."""
    w = weights / weights.sum()
    ms, md = (w[:, None] * src).sum(0), (w[:, None] * dst).sum(0)
    cov = ((dst - md) * w[:, None]).T @ (src - ms)
    u, _s, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    return u @ np.diag([1.0, 1.0, d]) @ vt


# ---------------------------------------------------------------------------------------------
# Plausibility: does the image under the landmarks look like a face?
# ---------------------------------------------------------------------------------------------

def _luma_at(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear luma (Rec. 601, 0..255) of an (H, W, 3) image at (N, 2) pixel positions."""
    h, w = image.shape[:2]
    x = np.clip(points[:, 0] - 0.5, 0.0, w - 1.001)
    y = np.clip(points[:, 1] - 0.5, 0.0, h - 1.001)
    x0, y0 = x.astype(np.int64), y.astype(np.int64)
    fx, fy = x - x0, y - y0
    weights = np.array([0.299, 0.587, 0.114])

    def at(yy, xx):
        return image[yy, xx, :3].astype(np.float64) @ weights

    return (at(y0, x0) * (1 - fx) * (1 - fy) + at(y0, x0 + 1) * fx * (1 - fy)
            + at(y0 + 1, x0) * (1 - fx) * fy + at(y0 + 1, x0 + 1) * fx * fy)


def feature_contrast(image: np.ndarray, landmarks: np.ndarray) -> float:
    """How much the image under the 468 mesh landmarks departs from smooth shading.

    The landmark network draws a face on anything the detector hands it, and its presence
    score says 1.0 on a shaded grey sphere too. What a face has and a smooth object has not
    is features: brows, pupils, the lip line and nostrils, darker than the skin around them.
    The luma at the landmarks minus its best quadratic fit over the face (the shading of
    any smooth, evenly lit surface is close to quadratic at that scale), as a standard
    deviation relative to the mean luma: unitless, the same under dim or bright light.
    """
    pts = landmarks[:468, :2]
    luma = _luma_at(image, pts)
    scale = float(np.linalg.norm(landmarks[RIGHT_EYE, :2] - landmarks[LEFT_EYE, :2]))
    q = (pts - pts.mean(0)) / max(scale, 1e-6)
    basis = np.c_[np.ones(len(q)), q, q ** 2, q[:, 0] * q[:, 1]]
    coef, *_ = np.linalg.lstsq(basis, luma, rcond=None)
    return float((luma - basis @ coef).std() / max(float(luma.mean()), 1.0))


# ---------------------------------------------------------------------------------------------
# The tracker
# ---------------------------------------------------------------------------------------------

class FaceLandmarker:
    """Tracks one face through consecutive frames; ``track(frame)`` per frame, in order.

    ``provider`` is the add-on's execution-provider preference (see core.inference).
    ``search_tiles`` also looks for faces smaller than the full-frame detector can see;
    ``with_blendshapes=False`` skips loading the blend-shape network (landmarks only).
    """

    def __init__(self, provider: str = "AUTO", model_dir: Optional[Path] = None, search_tiles: bool = True,
                 with_blendshapes: bool = True):
        folder = Path(model_dir) if model_dir else MODEL_DIR
        missing = [n for n in (DETECTOR, LANDMARKS, BLENDSHAPES, GEOMETRY) if not (folder / n).exists()]
        if missing:
            raise LandmarkerError(f"face tracking models missing in {folder}: {', '.join(missing)} "
                                  "(run `python -m tools.mediapipe_onnx`)")
        try:
            self._det = inference.get_session(folder / DETECTOR, provider)[0]
            self._lmk = inference.get_session(folder / LANDMARKS, provider)[0]
            # Landmarks alone (the rig's, core.landmarks) need no blend-shape network.
            self._bs = inference.get_session(folder / BLENDSHAPES, provider)[0] if with_blendshapes else None
        except inference.InferenceError as ex:
            raise LandmarkerError(str(ex)) from ex
        with np.load(folder / GEOMETRY) as geo:
            self._canonical = geo["vertices"].astype(np.float64)
            self._proc_ids = geo["procrustes_ids"].astype(np.int64)
            self._proc_w = geo["procrustes_weights"].astype(np.float64)
        self.search_tiles = search_tiles
        self.roi: Optional[Roi] = None
        self.detector_runs = 0

    def reset(self) -> None:
        """Forget the tracked face (call between unrelated shots)."""
        self.roi = None

    # ---- stages
    def _detect_in(self, image: np.ndarray, x0: float, y0: float, side_w: float, side_h: float):
        """Detections in the sub-rectangle (x0, y0, side_w, side_h) of ``image``, letterboxed."""
        scale = DETECT_SIZE / max(side_w, side_h)
        factor = int(1.0 / scale / 1.5)
        src, k = (box_reduce(image[int(y0):int(y0 + side_h), int(x0):int(x0 + side_w)], factor), factor) \
            if factor >= 2 else (image[int(y0):int(y0 + side_h), int(x0):int(x0 + side_w)], 1)
        pad_x = (DETECT_SIZE - side_w * scale) / 2
        pad_y = (DETECT_SIZE - side_h * scale) / 2
        # output pixel u -> sub-image pixel (u - pad) / scale, in src's (reduced) pixels
        inv = 1.0 / (scale * k)
        m = np.array([[inv, 0, -pad_x * inv], [0, inv, -pad_y * inv]])
        tensor = sample_affine(src, m, DETECT_SIZE, DETECT_SIZE, border="zero")
        tensor = tensor * (2.0 / 255.0) - 1.0      # the black letterbox bars become -1
        self.detector_runs += 1
        reg, sc = self._det.run(None, {"image": tensor[None].astype(np.float32)})
        found = []
        for score, box, kp in decode_detections(reg, sc):
            to_px = lambda p: (p * DETECT_SIZE - np.array([pad_x, pad_y])) / scale + np.array([x0, y0])  # noqa: E731
            b = np.concatenate([to_px(box[:2]), to_px(box[2:])])
            found.append(Detection(score, b, to_px(kp)))
        return found

    def detect(self, image: np.ndarray) -> Optional[Detection]:
        """The most confident face in the frame, or None; small faces via tiles."""
        h, w = image.shape[:2]
        found = self._detect_in(image, 0, 0, w, h)
        if not found and self.search_tiles:
            side = min(w, h)
            for level in (side, side / 2):
                if found:
                    break
                step = level / 2
                xs = np.arange(0, max(w - level, 0) + 1e-6, step) if w > level else [0.0]
                ys = np.arange(0, max(h - level, 0) + 1e-6, step) if h > level else [0.0]
                for y0 in ys:
                    for x0 in xs:
                        found += self._detect_in(image, float(x0), float(y0), float(level), float(level))
        if not found:
            return None
        return max(found, key=lambda d: d.score)

    def landmarks(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        """(478, 3) landmarks in pixels and the face-presence score for one ROI."""
        m = roi_matrix(roi, LANDMARK_SIZE)
        crop = sample_affine(image, m, LANDMARK_SIZE, LANDMARK_SIZE) * (1.0 / 255.0)
        pts, presence, _aux = self._lmk.run(None, {"image": crop[None].astype(np.float32)})
        pts = pts.reshape(-1, 3).astype(np.float64)
        xy = np.c_[pts[:, :2], np.ones(len(pts))] @ m.T    # crop pixel -> image pixel
        z = pts[:, 2] * (roi.size / LANDMARK_SIZE)
        return np.c_[xy, z], float(1.0 / (1.0 + math.exp(-float(presence.reshape(-1)[0]))))

    def blendshapes(self, landmarks: np.ndarray) -> np.ndarray:
        """(52,) scores in MediaPipe order from (478, 3) pixel landmarks."""
        pts = landmarks[BLENDSHAPE_LANDMARKS, :2].astype(np.float32)[None]
        return self._bs.run(None, {"points": pts})[0].reshape(-1)

    def rotation(self, landmarks: np.ndarray) -> np.ndarray:
        """Head rotation from landmarks (canonical face -> camera, y up, z toward the camera)."""
        ids = self._proc_ids
        screen = np.c_[landmarks[ids, 0], -landmarks[ids, 1], -landmarks[ids, 2]]
        return procrustes_rotation(self._canonical[ids], screen, self._proc_w)

    @staticmethod
    def roi_from_landmarks(landmarks: np.ndarray) -> Roi:
        lo, hi = landmarks[:468, :2].min(0), landmarks[:468, :2].max(0)
        c = (lo + hi) / 2
        side = float(max(hi - lo)) * ROI_SCALE
        return Roi(float(c[0]), float(c[1]), side, _angle(landmarks[RIGHT_EYE], landmarks[LEFT_EYE]))

    # ---- per frame
    def track(self, image: np.ndarray) -> Optional[FaceResult]:
        """Landmarks, blend shapes and head rotation of the face in ``image`` (H, W, 3) RGB
        uint8, or None when there is no face. Frames must come in playback order."""
        while True:
            tracked = self.roi is not None
            if not tracked:
                det = self.detect(image)
                if det is None:
                    return None
                self.roi = det.roi()
            lm, presence = self.landmarks(image, self.roi)
            # Presence alone accepts a shaded sphere (issue 15): a face must also have features.
            if presence >= MIN_PRESENCE and feature_contrast(image, lm) >= MIN_FEATURE_CONTRAST:
                break
            self.roi = None   # lost: a tracked face is looked for again on this very frame
            if not tracked:
                return None
        roi = self.roi
        self.roi = self.roi_from_landmarks(lm)
        return FaceResult(lm, self.blendshapes(lm), self.rotation(lm), presence, roi)
