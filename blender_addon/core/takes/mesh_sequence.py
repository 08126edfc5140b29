# SPDX-License-Identifier: GPL-3.0-or-later
"""Takes from an animated mesh of any topology: the expression encoder reads each frame.

An artist's animated head (shape keys under any names, a mesh cache, an armature, any
deformer) is just a sequence of vertex positions. For each frame the expression encoder
(``expression_encoder.onnx``) looks at the displacement from the neutral and answers the
53 ICT FACS weights, which become ARKit weights (:func:`arkit.ict_to_arkit_matrix`). The
pipeline matches training exactly (``model_export/evaluate.py``): the neutral is prepared
once by :func:`rig.prepare_head` (skin, canonical frame, proxy of at most 3k vertices),
simplified further to the encoder's own proxy of at most 1k vertices (:func:`encoder_proxy`,
with its spectral operators), and each frame's displacement is carried to those vertices.

Head motion is not expression: a mesh cache of a performer nodding would read as brows
and jaw. With ``stabilize`` each frame is first rigidly aligned to the neutral by a
robust (iteratively reweighted) Kabsch fit, so the cranium, which moves rigidly, decides
the alignment and the jaw, which does not, is down-weighted instead of being half undone.
"""

from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from .. import arkit, inference
from .. import rig as core_rig
from .errors import TakeError
from .take import Take

ENCODER_MODEL = "expression_encoder.onnx"
# Frames prepared together (one batched rigid fit), and the granularity of progress reports.
BATCH = 8
# A network run's largest activation, at most (frames_per_run): half a core's L2 cache on this
# machine (2 MB; most desktop CPUs have 0.5-2 MB). On the facecap head (1.9k proxy vertices)
# that is one frame a run: with export.EncoderGraph 1 frame measured ~7 % faster than 2.
RUN_BYTES = 1 << 19
ROBUST_PASSES = 4   # reweighting passes of the rigid fit; the weights settle after 2-3
FIT_POINTS = 1024   # vertices the rigid fit looks at (evenly spread): plenty for 6 parameters
# The encoder runs on a proxy of at most this many vertices (the rig's own proxy, simplified
# further): its cost is linear in the vertices, and the FACS code is not. On 40 held-out ICT
# meshes (0.7k-3k vertices) the code's MAE was 0.1005 on the whole mesh and 0.1004 on a 1k
# proxy (active weights 0.347 / 0.348; at 800 vertices 0.100 / 0.353), measured on
# model_export/evaluate.facs_code_error's meshes. Training draws meshes of 700-3000 vertices.
ENCODER_MAX_VERTS = 1000
# tongueOut has no ICT shape, so the encoder cannot see it: the take leaves it out.
ENCODED_CHANNELS = tuple(n for n in arkit.ARKIT_52 if n != "tongueOut")


def rigid_align(points: np.ndarray, reference: np.ndarray,
                passes: int = ROBUST_PASSES) -> np.ndarray:
    """``points`` (N,3) moved by the rotation + translation that best fits ``reference``.

    Weighted Kabsch, reweighted with a Cauchy loss on the residuals: vertices that do not
    follow the rigid motion (jaw, lips) lose their say after the first pass.
    """
    return rigid_align_batch(np.asarray(points)[None], reference, passes)[0]


def fit_points(n: int) -> slice:
    """The vertices (every k-th) the rigid fit looks at: at most about :data:`FIT_POINTS`."""
    return slice(None, None, max(1, -(-n // FIT_POINTS)))


def rigid_fit_batch(points: np.ndarray, reference: np.ndarray,
                    passes: int = ROBUST_PASSES) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rigid motions that carry B point sets (B,N,3) onto ``reference`` (N,3):
    ``(rot (B,3,3), cp (B,3), cq (B,3))``, a point p going to ``rot @ (p - cp) + cq``.

    Robust weighted Kabsch, one batched SVD per pass instead of B small ones.
    """
    # Coordinates first, (B,3,N): numpy's broadcasts and small stacked products are slow
    # along a last axis of 3 and fast along N (measured ~2.8x faster on 8 frames of 977 points).
    ps = np.ascontiguousarray(np.swapaxes(np.asarray(points, dtype=np.float64), 1, 2))
    qs = np.ascontiguousarray(np.asarray(reference, dtype=np.float64).T)
    w = np.ones((ps.shape[0], ps.shape[2]))
    passes = max(1, passes)
    for done in range(1, passes + 1):
        wn = w / w.sum(axis=1, keepdims=True)
        cp = (ps @ wn[..., None])[..., 0]
        cq = wn @ qs.T
        centred = ps - cp[..., None]
        # sum_n wn (p - cp)(q - cq)^T, with sum_n wn (p - cp) = 0: q needs no centring.
        h = (centred * wn[:, None]) @ qs.T
        u, _s, vt = np.linalg.svd(h)
        v, ut = np.swapaxes(vt, 1, 2), np.swapaxes(u, 1, 2)
        fix = np.ones((len(ps), 1, 3))
        fix[:, 0, 2] = np.where(np.linalg.det(v @ ut) < 0, -1.0, 1.0)
        rot = (v * fix) @ ut                                              # V diag(1,1,d) U^T
        if done == passes:   # the last pass's reweighting would go unused
            break
        moved = rot @ centred
        moved += cq[..., None]
        moved -= qs
        residual = np.sqrt(np.einsum("bin,bin->bn", moved, moved))
        scale = np.median(residual, axis=1, keepdims=True) + 1e-12
        w = 1.0 / (1.0 + (residual / (2.0 * scale)) ** 2)
    return rot, cp, cq


def rigid_align_batch(points: np.ndarray, reference: np.ndarray,
                      passes: int = ROBUST_PASSES) -> np.ndarray:
    """:func:`rigid_align` of B frames at once: (B,N,3) -> (B,N,3).

    Six degrees of freedom need few points: the fit uses at most :data:`FIT_POINTS`
    evenly spread vertices (:func:`fit_points`) and moves them all.
    """
    p = np.asarray(points, dtype=np.float64)
    pick = fit_points(p.shape[1])
    rot, cp, cq = rigid_fit_batch(p[:, pick], np.asarray(reference)[pick], passes)
    return np.einsum("bni,bji->bnj", p - cp[:, None], rot) + cq[:, None]


def frames_per_run(n_vertices: int, width: int = 64) -> int:
    """How many frames one network run takes: as many as keep a run's largest activations
    (an (N, frames x width) float32 matrix) within :data:`RUN_BYTES`: activations that leave
    the core's cache cost more than the per-run overhead that larger runs would save."""
    return max(1, RUN_BYTES // (4 * width * max(1, n_vertices)))


def encoder_operator_feeds(model, operator_feeds: dict, provider: str = "AUTO") -> dict:
    """``operator_feeds`` (:meth:`features.PreparedMesh.operator_feeds`) completed with what
    this encoder graph reads: the shipped graph takes the operators pre-arranged
    (:func:`features.encoder_feeds`), one exported before reads them as they are."""
    from .. import features

    session, _info = inference.get_session(model, provider)
    wanted = {i.name for i in session.get_inputs()}
    if wanted <= set(operator_feeds) | {"features"}:
        return operator_feeds
    return {**operator_feeds, **features.encoder_feeds(operator_feeds)}


def expression_codes(model, features_batch: np.ndarray, operator_feeds: dict, provider: str = "AUTO") -> np.ndarray:
    """(B, code) expression codes of B frames of one mesh, features (B,N,9).

    ``model_export/export.py`` gives the encoder a leading batch axis: the frames go through
    in runs of :func:`frames_per_run`. An encoder exported before it had none (features
    (N,9)) and is run one frame at a time, to the same codes. ``operator_feeds`` are
    completed by :func:`encoder_operator_feeds` (pass its answer to do that once).
    """
    session, _info = inference.get_session(model, provider)
    operator_feeds = encoder_operator_feeds(model, operator_feeds, provider)
    if len(next(i for i in session.get_inputs() if i.name == "features").shape) != 3:
        return np.stack([inference.run(model, {"features": f, **operator_feeds}, provider, outputs=["code"])["code"]
                         for f in features_batch])
    step = frames_per_run(features_batch.shape[1])
    return np.concatenate([inference.run(model, {"features": features_batch[i:i + step], **operator_feeds},
                                         provider, outputs=["code"])["code"]
                           for i in range(0, len(features_batch), step)])


def encoder_proxy(prepared, max_verts: int = ENCODER_MAX_VERTS):
    """``(PreparedMesh, rows)``: the mesh the encoder reads, ``prepared`` (the rig's proxy,
    canonical frame) itself when it has at most ``max_verts`` vertices, else a proxy of it
    simplified to that; ``rows`` (M,) the vertex of ``prepared`` each of its vertices is
    (a simplified proxy's vertices are vertices of its mesh)."""
    from scipy.spatial import cKDTree

    from .. import features
    from ..mesh.proxy import build_proxy

    if prepared.n <= max_verts:
        return prepared, np.arange(prepared.n)
    small = build_proxy(prepared.verts, prepared.faces, max_verts=max_verts, welded=True)
    # A Proxy locates the original vertices on itself, not its vertices among the originals.
    rows = cKDTree(np.asarray(prepared.verts, np.float64)).query(np.asarray(small.verts, np.float64))[1]
    return features.prepare(np.asarray(prepared.verts)[rows], small.faces), rows


class MeshSequenceEncoder:
    """Everything that depends on the neutral, prepared once; :meth:`encode` per frame.

    neutral_world (V,3) and faces (F,3): the source mesh at rest, in world space (Z up,
    facing -Y, any unit). Raises TakeError when that mesh cannot be read as a head.
    """

    def __init__(self, neutral_world: np.ndarray, faces: np.ndarray, provider: str = "AUTO",
                 model: str = ENCODER_MODEL, stabilize: bool = True):
        # scipy-backed on first use, not when Blender starts (the add-on imports this module).
        from ..mesh.head import looks_toward_minus_y

        try:
            self.head = core_rig.prepare_head(neutral_world, faces)
        except (core_rig.RigError, ValueError) as err:
            raise TakeError(f"the source mesh cannot be encoded: {err}") from None
        self.provider, self.model, self.stabilize = provider, model, stabilize
        self.n_vertices = self.head.n_verts
        # Only two subsets of the skin are ever read from a frame: the evenly spread vertices
        # the rigid fit looks at, and the nearest skin vertex of each proxy vertex (as
        # rig.predict carries painted weights onto the proxy). A 61k-vertex source costs what
        # a 3k one does once it is read.
        skin = np.flatnonzero(self.head.skin)
        neutral_skin = self.head.verts_world[skin].astype(np.float64)
        fit = fit_points(len(skin))
        self._fit, self._fit_reference = skin[fit], neutral_skin[fit]
        self.prepared, on_proxy = encoder_proxy(self.head.prepared)
        used, self._spread = np.unique(self.head.nearest_skin()[on_proxy], return_inverse=True)
        self._used, self._used_neutral = skin[used], neutral_skin[used]
        self._to_arkit = arkit.ict_to_arkit_matrix()
        self._feeds = self._base = None
        # On the proxy, as rig.predict does: the same shape at a fraction of the cost.
        self.facing_ok = bool(looks_toward_minus_y(self.head.prepared.verts,
                                                             self.head.prepared.faces))

    def expressed_proxy(self, verts_world: np.ndarray) -> np.ndarray:
        """(P,3) proxy vertices in the canonical frame, displaced as in this frame."""
        return self.expressed_proxies(np.asarray(verts_world)[None])[0]

    def expressed_proxies(self, frames_world: np.ndarray) -> np.ndarray:
        """(B,P,3) the encoder's proxy vertices in the canonical frame for (B,V,3) frames."""
        return self.prepared.verts + self.proxy_displacements(frames_world)

    def proxy_displacements(self, frames_world: np.ndarray) -> np.ndarray:
        """(B,P,3) float32: each vertex of the encoder's proxy (:attr:`prepared`) displaced
        from the neutral, in the canonical frame, for (B,V,3) frames (stabilized: after the frame's rigid fit)."""
        verts = np.asarray(frames_world)
        if verts.ndim != 3 or verts.shape[1:] != (self.n_vertices, 3):
            raise TakeError(f"a frame has {verts.shape[-2] if verts.ndim > 1 else 0} vertices, the neutral "
                            f"{self.n_vertices}: the mesh must keep its topology")
        if not np.isfinite(verts).all():
            raise TakeError("a frame has vertices at infinite or undefined positions")
        norm = self.head.norm
        turn = np.eye(3) if norm.rotation is None else np.asarray(norm.rotation, np.float64)
        # The rigid fit (p -> rot (p - cp) + cq) and the canonical frame's turn and scale
        # (d -> turn d / scale) composed into one 3x3 and one offset a frame: one product
        # over the vertices instead of four passes.
        if self.stabilize:
            rot, cp, cq = rigid_fit_batch(verts[:, self._fit], self._fit_reference)
        else:
            rot, cp, cq = np.broadcast_to(np.eye(3), (len(verts), 3, 3)), np.zeros((len(verts), 3)), 0.0
        linear = turn @ rot / norm.scale                                    # (B,3,3)
        offset = ((cq - (rot @ cp[..., None])[..., 0]) @ turn.T) / norm.scale  # (B,3)
        neutral = self._used_neutral @ turn.T / norm.scale
        disp = verts[:, self._used].astype(np.float64) @ np.ascontiguousarray(np.swapaxes(linear, 1, 2))
        disp += offset[:, None] - neutral
        return disp.astype(np.float32)[:, self._spread]

    def encode(self, verts_world: np.ndarray) -> np.ndarray:
        """(52,) ARKit weights in [0, 1] of one frame (tongueOut is always 0)."""
        return self.encode_batch(np.asarray(verts_world)[None])[0]

    def encode_batch(self, frames_world: np.ndarray) -> np.ndarray:
        """(B, 52) ARKit weights of (B,V,3) frames, the B frames through the network together."""
        from .. import features

        if self._feeds is None:   # what does not change from frame to frame, cast once
            prepared = self.prepared
            self._feeds = encoder_operator_feeds(self.model, prepared.operator_feeds(), self.provider)
            self._base = features.rig_features(prepared)
        disp = self.proxy_displacements(frames_world) * np.float32(features.DISPLACEMENT_SCALE)
        batch = np.empty(disp.shape[:2] + (self._base.shape[1] + 3,), np.float32)
        batch[..., :-3], batch[..., -3:] = self._base, disp
        codes = expression_codes(self.model, batch, self._feeds, self.provider)
        ict = codes[:, :len(arkit.ICT_53)].astype(np.float64)
        return np.clip(ict @ self._to_arkit.T, 0.0, 1.0).astype(np.float32)

    def encode_all(self, frames_world, progress: Optional[Callable[[int], None]] = None,
                   batch: int = BATCH) -> np.ndarray:
        """(T, 52) for an iterable of (V,3) frames, consumed ``batch`` at a time (a generator
        of evaluated frames never holds the whole sequence); ``progress(done)`` after each batch.

        On the calling thread. Encoding on a second thread while Blender evaluates the next
        frames was measured slower on 2 cores (Blender's evaluation is multi-threaded itself
        and holds the GIL the preparation needs); the UI's Encode Mesh already runs this on a
        worker fed by the main thread (``drive/ops.py``).
        """
        out, pending = [], []

        def flush():
            out.append(self.encode_batch(np.stack(pending)))
            pending.clear()
            if progress is not None:
                progress(sum(len(o) for o in out))

        for verts in frames_world:
            pending.append(np.asarray(verts))
            if len(pending) == batch:
                flush()
        if pending:
            flush()
        if not out:
            return np.zeros((0, len(arkit.ARKIT_52)), np.float32)
        return np.concatenate(out).astype(np.float32)


def take_from_codes(weights: np.ndarray, times, source: str = "animated mesh",
                    warnings: Optional[list] = None) -> Take:
    """A Take from encoded (T, 52) ARKit weights; the channel the encoder cannot see is left out."""
    cols = [arkit.ARKIT_INDEX[n] for n in ENCODED_CHANNELS]
    return Take(times=np.asarray(times, dtype=np.float64), names=list(ENCODED_CHANNELS),
                weights=np.asarray(weights)[:, cols], source=source, warnings=warnings or [])
