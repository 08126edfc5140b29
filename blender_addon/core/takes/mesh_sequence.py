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
ROBUST_PASSES = 4   # reweighting passes of the rigid fit; the weights settle after 2-3
# tongueOut has no ICT shape, so the encoder cannot see it: the take leaves it out.
ENCODED_CHANNELS = tuple(n for n in arkit.ARKIT_52 if n != "tongueOut")


def rigid_align(points: np.ndarray, reference: np.ndarray,
                passes: int = ROBUST_PASSES) -> np.ndarray:
    """``points`` (N,3) moved by the rotation + translation that best fits ``reference``.

    Weighted Kabsch, reweighted with a Cauchy loss on the residuals: vertices that do not
    follow the rigid motion (jaw, lips) lose their say after the first pass.
    """
    p = np.asarray(points, dtype=np.float64)
    q = np.asarray(reference, dtype=np.float64)
    w = np.ones(len(p))
    aligned = p
    for _ in range(max(1, passes)):
        wn = w / w.sum()
        cp, cq = wn @ p, wn @ q
        h = (p - cp).T @ ((q - cq) * wn[:, None])
        u, _s, vt = np.linalg.svd(h)
        d = np.sign(np.linalg.det(vt.T @ u.T)) or 1.0
        rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
        aligned = (p - cp) @ rot.T + cq
        residual = np.linalg.norm(aligned - q, axis=1)
        scale = np.median(residual) + 1e-12
        w = 1.0 / (1.0 + (residual / (2.0 * scale)) ** 2)
    return aligned


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
        # On the proxy, as rig.predict does: the same shape at a fraction of the cost.
        self.facing_ok = bool(looks_toward_minus_y(self.head.prepared.verts,
                                                             self.head.prepared.faces))

    def expressed_proxy(self, verts_world: np.ndarray) -> np.ndarray:
        """(P,3) proxy vertices in the canonical frame, displaced as in this frame."""
        verts = np.asarray(verts_world, dtype=np.float64)
        if verts.shape != (self.n_vertices, 3):
            raise TakeError(f"a frame has {verts.shape[0]} vertices, the neutral "
                            f"{self.n_vertices}: the mesh must keep its topology")
        if not np.isfinite(verts).all():
            raise TakeError("a frame has vertices at infinite or undefined positions")
        skin = verts[self.head.skin]
        if self.stabilize:
            skin = rigid_align(skin, self._neutral_skin)
        disp = self.head.norm.apply_vectors(skin - self._neutral_skin)
        return self.head.prepared.verts + disp[self._nearest]

    def encode(self, verts_world: np.ndarray) -> np.ndarray:
        """(52,) ARKit weights in [0, 1] of one frame (tongueOut is always 0)."""
        from .. import features

        feeds = features.expression_feeds(self.head.prepared, self.expressed_proxy(verts_world))
        code = inference.run(self.model, feeds, self.provider, outputs=["code"])["code"]
        ict = np.asarray(code, dtype=np.float64).reshape(-1)[:len(arkit.ICT_53)]
        return np.clip(self._to_arkit @ ict, 0.0, 1.0).astype(np.float32)

    def encode_all(self, frames_world, progress: Optional[Callable[[int], None]] = None
                   ) -> np.ndarray:
        """(T, 52) for an iterable of (V,3) frames, consumed one at a time (a generator
        of evaluated frames never holds the whole sequence); ``progress(done)`` after each."""
        out = []
        for verts in frames_world:
            out.append(self.encode(verts))
            if progress is not None:
                progress(len(out))
        return np.array(out, np.float32).reshape(-1, len(arkit.ARKIT_52))


def take_from_codes(weights: np.ndarray, times, source: str = "animated mesh",
                    warnings: Optional[list] = None) -> Take:
    """A Take from encoded (T, 52) ARKit weights; the channel the encoder cannot see is left out."""
    cols = [arkit.ARKIT_INDEX[n] for n in ENCODED_CHANNELS]
    return Take(times=np.asarray(times, dtype=np.float64), names=list(ENCODED_CHANNELS),
                weights=np.asarray(weights)[:, cols], source=source, warnings=warnings or [])
