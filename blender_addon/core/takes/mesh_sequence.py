# SPDX-License-Identifier: GPL-3.0-or-later
"""Takes from an animated mesh of any topology: the expression encoder reads each frame.

An artist's animated head (shape keys under any names, a mesh cache, an armature, any
deformer) is just a sequence of vertex positions. For each frame the expression encoder
(``expression_encoder.onnx``) looks at the displacement from the neutral and answers the
53 ICT FACS weights, which become ARKit weights (:func:`arkit.ict_to_arkit_matrix`). The
pipeline matches training exactly (``model_export/evaluate.py``): the neutral is prepared
once by :func:`rig.prepare_head` (skin, canonical frame, proxy of at most 3k vertices,
spectral operators), and each frame's displacement is carried to the proxy vertices.

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
# Frames prepared together (rigid fit, proxy, features). The network itself runs one frame
# at a time: a batched export of it (frames stacked on the channel axis, same weights) was
# measured no faster on this CPU, the network being compute-bound at ~0.75 GFLOP a frame.
BATCH = 16
ROBUST_PASSES = 4   # reweighting passes of the rigid fit; the weights settle after 2-3
FIT_POINTS = 1024   # vertices the rigid fit looks at (evenly spread): plenty for 6 parameters
# tongueOut has no ICT shape, so the encoder cannot see it: the take leaves it out.
ENCODED_CHANNELS = tuple(n for n in arkit.ARKIT_52 if n != "tongueOut")


def rigid_align(points: np.ndarray, reference: np.ndarray,
                passes: int = ROBUST_PASSES) -> np.ndarray:
    """``points`` (N,3) moved by the rotation + translation that best fits ``reference``.

    Weighted Kabsch, reweighted with a Cauchy loss on the residuals: vertices that do not
    follow the rigid motion (jaw, lips) lose their say after the first pass.
    """
    return rigid_align_batch(np.asarray(points)[None], reference, passes)[0]


def rigid_align_batch(points: np.ndarray, reference: np.ndarray,
                      passes: int = ROBUST_PASSES) -> np.ndarray:
    """:func:`rigid_align` of B frames at once: (B,N,3) -> (B,N,3), one batched SVD per pass
    instead of B small ones (the per-call overhead was most of the per-frame cost).

    Six degrees of freedom need few points: the fit uses at most :data:`FIT_POINTS`
    evenly spread vertices and moves them all.
    """
    p = np.asarray(points, dtype=np.float64)
    q = np.asarray(reference, dtype=np.float64)
    pick = slice(None, None, max(1, -(-p.shape[1] // FIT_POINTS)))
    ps, qs = p[:, pick], q[pick]
    w = np.ones(ps.shape[:2])
    for _ in range(max(1, passes)):
        wn = w / w.sum(axis=1, keepdims=True)
        cp = np.einsum("bn,bni->bi", wn, ps)
        cq = wn @ qs
        h = np.einsum("bni,bnj->bij", ps - cp[:, None], (qs[None] - cq[:, None]) * wn[..., None])
        u, _s, vt = np.linalg.svd(h)
        v, ut = np.swapaxes(vt, 1, 2), np.swapaxes(u, 1, 2)
        fix = np.ones((len(p), 1, 3))
        fix[:, 0, 2] = np.where(np.linalg.det(v @ ut) < 0, -1.0, 1.0)
        rot = (v * fix) @ ut                                              # V diag(1,1,d) U^T
        residual = np.linalg.norm(np.einsum("bni,bji->bnj", ps - cp[:, None], rot) + cq[:, None] - qs[None],
                                  axis=2)
        scale = np.median(residual, axis=1, keepdims=True) + 1e-12
        w = 1.0 / (1.0 + (residual / (2.0 * scale)) ** 2)
    return np.einsum("bni,bji->bnj", p - cp[:, None], rot) + cq[:, None]


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
        self._neutral_skin = self.head.verts_world[self.head.skin]
        # Proxy vertex <- nearest skin vertex, as rig.predict carries painted weights onto it.
        self._nearest = self.head.nearest_skin()
        self._to_arkit = arkit.ict_to_arkit_matrix()
        self._feeds = self._base = None
        # On the proxy, as rig.predict does: the same shape at a fraction of the cost.
        self.facing_ok = bool(looks_toward_minus_y(self.head.prepared.verts,
                                                             self.head.prepared.faces))

    def expressed_proxy(self, verts_world: np.ndarray) -> np.ndarray:
        """(P,3) proxy vertices in the canonical frame, displaced as in this frame."""
        return self.expressed_proxies(np.asarray(verts_world)[None])[0]

    def expressed_proxies(self, frames_world: np.ndarray) -> np.ndarray:
        """(B,P,3) proxy vertices in the canonical frame for (B,V,3) frames."""
        verts = np.asarray(frames_world, dtype=np.float64)
        if verts.ndim != 3 or verts.shape[1:] != (self.n_vertices, 3):
            raise TakeError(f"a frame has {verts.shape[-2] if verts.ndim > 1 else 0} vertices, the neutral "
                            f"{self.n_vertices}: the mesh must keep its topology")
        if not np.isfinite(verts).all():
            raise TakeError("a frame has vertices at infinite or undefined positions")
        skin = verts[:, self.head.skin]
        if self.stabilize:
            skin = rigid_align_batch(skin, self._neutral_skin)
        disp = self.head.norm.apply_vectors(skin - self._neutral_skin)
        return self.head.prepared.verts + disp[:, self._nearest]

    def encode(self, verts_world: np.ndarray) -> np.ndarray:
        """(52,) ARKit weights in [0, 1] of one frame (tongueOut is always 0)."""
        return self.encode_batch(np.asarray(verts_world)[None])[0]

    def encode_batch(self, frames_world: np.ndarray) -> np.ndarray:
        """(B, 52) ARKit weights of (B,V,3) frames; the operator feeds are cast once, not per frame."""
        from .. import features

        if self._feeds is None:   # what does not change from frame to frame, cast once
            prepared = self.head.prepared
            self._feeds = {k: np.ascontiguousarray(v, np.float32) for k, v in prepared.operator_feeds().items()}
            self._base = features.rig_features(prepared)
        expressed = self.expressed_proxies(frames_world)
        disp = (expressed - self.head.prepared.verts) * features.DISPLACEMENT_SCALE
        base = np.broadcast_to(self._base, disp.shape[:2] + self._base.shape[1:])
        batch = np.concatenate([base, disp], axis=2).astype(np.float32)
        codes = [inference.run(self.model, {"features": f, **self._feeds}, self.provider,
                               outputs=["code"])["code"] for f in batch]
        ict = np.asarray(codes, dtype=np.float64).reshape(len(batch), -1)[:, :len(arkit.ICT_53)]
        return np.clip(ict @ self._to_arkit.T, 0.0, 1.0).astype(np.float32)

    def encode_all(self, frames_world, progress: Optional[Callable[[int], None]] = None,
                   batch: int = BATCH) -> np.ndarray:
        """(T, 52) for an iterable of (V,3) frames, consumed ``batch`` at a time (a generator
        of evaluated frames never holds the whole sequence); ``progress(done)`` after each batch."""
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
