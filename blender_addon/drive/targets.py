# SPDX-License-Identifier: GPL-3.0-or-later
"""Targets: which shape keys of a character a performance drives, and how.

* **DIRECT**: a Facsimile-rigged mesh, or any mesh whose keys have ARKit names in any
  spelling (``eyeBlink_L``, ``blendShape1.jawOpen``); ICT-named halves
  (``browInnerUp_L``) follow their ARKit channel. Values are copied channel by channel.
* **SOLVE**: a mesh with its own rig under other names (VRoid ``Fcl_*``, hand-sculpted
  visemes). The network predicts the ARKit expressions on that mesh and the rig's weights
  are solved to reproduce them (``core/custom_rig_solver.py``).

``AUTO`` picks DIRECT when the mesh has at least one ARKit-named key, else SOLVE. A plan
maps (F, 52) mapped ARKit weights to (F, K) values of the keys it drives.
"""

from __future__ import annotations

import hashlib

import numpy as np

from ..core import rig as core_rig
from ..core.cache import BoundedCache
from ..core.custom_rig_solver import CustomRigSolver
from ..core.errors import TargetError
from ..core.mapping import ChannelMap
from ..core.target_plan import MODES, TargetPlan, direct_rows
from .. import mesh_io
from . import fold

# (mesh checksum, provider) -> (arkit deltas (52,V,3), regions (V,R)), this session
_PREDICTIONS = BoundedCache(max_size=4)


def plan_target(obj, mode: str = "AUTO", provider: str = "AUTO",
                cmap: ChannelMap | None = None) -> TargetPlan:
    """Decide how ``obj`` is driven; SOLVE runs the networks on it (cached per mesh).

    The channel map ``cmap`` (core/mapping.py) sends channels to keys of other names: every
    key it names must exist on ``obj`` (a TargetError names the first missing), and such a
    map is driven directly (AUTO picks DIRECT; SOLVE refuses it)."""
    if obj is None or obj.type != "MESH":
        raise TargetError(f"'{getattr(obj, 'name', '?')}' is not a mesh")
    if mode not in MODES:
        raise ValueError(f"unknown target mode {mode!r}")
    keys = obj.data.shape_keys
    # Every key but the Basis and the live preview's folded key (fold.py), with its index.
    index = [i for i, kb in enumerate(keys.key_blocks) if i > 0 and kb.name != fold.PREVIEW_KEY] \
        if keys is not None else []
    if not index:
        raise TargetError(f"'{obj.name}' has no shape keys: rig it first (Rig Face), or give it "
                          "its own shape keys to solve for")
    blocks = [keys.key_blocks[i] for i in index]
    names = [kb.name for kb in blocks]
    if cmap is not None:
        missing = cmap.missing_keys(names)
        if missing:
            raise TargetError(f"'{obj.name}' has no shape key for {len(missing)} of the retarget "
                              f"map's targets ({', '.join(missing[:3])}{'…' if len(missing) > 3 else ''}); "
                              "fix the map (Auto-Map, or load the preset for this rig)")
        if mode == "SOLVE" and cmap.key_targets():
            raise TargetError(f"the retarget map sends {len(cmap.key_targets())} channel(s) to named "
                              "shape keys, which Solve does not use: set Targets to Auto or Direct")
    positions, rows = direct_rows(names, cmap)
    # ARKit-named keys whose channels the map sends elsewhere still make the mesh a direct
    # target (driving none of its keys), not one to solve.
    named = bool(positions) or (cmap is not None and bool(direct_rows(names)[0]))
    if mode == "DIRECT" or (mode == "AUTO" and named):
        if not named:
            raise TargetError(f"'{obj.name}' has no ARKit-named shape keys to drive directly; "
                              "use Solve for a custom rig")
        return TargetPlan(obj.name, "DIRECT", [names[i] for i in positions],
                          np.array([index[i] for i in positions], np.int64), rows=rows)
    preview_muted = fold.folded_names(keys)
    used = [i for i, kb in enumerate(blocks) if not kb.mute or kb.name in preview_muted]
    expression, regions = predicted_expressions(obj, provider)
    solver = CustomRigSolver(expression, mesh_io.key_deltas_world(obj, [blocks[i] for i in used]), regions)
    return TargetPlan(obj.name, "SOLVE", [names[i] for i in used],
                      np.array([index[i] for i in used]), solver=solver)


def predicted_expressions(obj, provider: str = "AUTO") -> tuple[np.ndarray, np.ndarray]:
    """(52,V,3) world-space ARKit shapes the network predicts on ``obj``, and its (V,R)
    region weights. Cached on the mesh's geometry, so preview and bake run the networks once."""
    arrays = mesh_io.read_mesh(obj)
    digest = hashlib.blake2b(np.ascontiguousarray(arrays.verts_world, np.float32).tobytes(),
                             digest_size=16)
    digest.update(np.ascontiguousarray(arrays.faces).tobytes())
    key = (digest.hexdigest(), provider)

    def predict():
        try:
            result = core_rig.predict(arrays.verts_world, arrays.faces, provider=provider)
        except core_rig.RigError as err:
            raise TargetError(f"'{obj.name}': {err}") from None
        return result.arkit_deltas(), result.region_weights

    return _PREDICTIONS.get_or_compute(key, predict)


def clear_cache() -> None:
    _PREDICTIONS.clear()
