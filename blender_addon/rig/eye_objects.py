# SPDX-License-Identifier: GPL-3.0-or-later
"""The rig's eyes and mouth interior in Blender (issue 13): separate eye objects, which keys
a rig writes, and the one line the operator says about them.

* **Separate eye objects**: glTF avatars keep their eyeballs as their own meshes
  (``EyeLeft``/``EyeRight``). Selected together with the head (the head active), they go to
  the core as world-space arrays; the core decides which are eyeballs (a sphere pair about
  the head's midplane) and each one found gets its own four eyeLook* keys on a Basis. Named
  as ARKit channels, those keys make the eye a DIRECT drive target
  (``drive/targets.plan_target``), so one Drive drives head and eyes together.
* **Which keys**: tongueOut is written only when the rules found a tongue to move, unless
  the artist asks for all 52 names (pipelines that expect every channel).
* **The report**: how far each eye closes at eyeBlink = 1, whether the eyes and the tongue
  were found, in one line.
"""

from __future__ import annotations

import numpy as np

from .. import mesh_io
from ..core import arkit
from ..core.rig import RigError
from . import opsdata

# Meshes bigger than this are no eyeball (a body, a second head): not read, not sent.
MAX_EYE_VERTS = 20000

_SOURCE_WORDS = {"part": "loose parts", "object": "separate objects", "welded": "welded in the skin"}
_TONGUE_WORDS = {"part": "a loose part", "body": "the tongue on the mouth floor", "mouth_floor": "the mouth floor"}


def candidates(context, head) -> list:
    """Selected meshes other than the head that could be eyeballs, in a stable order."""
    objs = [o for o in context.selected_objects
            if o.type == "MESH" and o is not head and 0 < len(o.data.vertices) <= MAX_EYE_VERTS]
    return sorted(objs, key=lambda o: o.name)


def read(objs) -> list[mesh_io.MeshArrays]:
    return [mesh_io.read_mesh(o) for o in objs]


def write_shapes(txn: opsdata.Transaction, result, arrays: mesh_io.MeshArrays, naming: str,
                 replace: bool, all_keys: bool, owned=frozenset()) -> dict:
    """Write the head's shape keys through ``txn``: every ARKit shape, tongueOut only when a
    tongue was found or ``all_keys``; ``owned`` (the keys Facsimile wrote before) are always
    regenerated, the artist's own only with ``replace``.
    Returns {"added"|"replaced"|"skipped"|"locked": [names]}."""
    statuses = {"added": [], "replaced": [], "skipped": [], "locked": []}
    for name in arkit.ARKIT_52 if naming != "ICT53" else ():
        if name == "tongueOut" and name not in result.extra and not all_keys:
            continue
        key = arkit.to_style(name, naming)[0]
        co = mesh_io.shape_key_coords(arrays, result.arkit_delta(name))
        statuses[txn.write_shape_key(key, co, replace or key in owned)].append(key)
    if naming == "ICT53":
        for name, delta in result.named_deltas("ICT53"):
            co = mesh_io.shape_key_coords(arrays, delta)
            statuses[txn.write_shape_key(name, co, replace or name in owned)].append(name)
    return statuses


def write_eye_keys(objs, arrays: list[mesh_io.MeshArrays], result, naming: str,
                   replace: bool) -> tuple[list[opsdata.Transaction], list[str]]:
    """Each separate eye object the core turned gets a Basis and its four eyeLook* keys.
    Returns the transactions (the caller rolls them back on failure) and the names of the
    objects written."""
    for obj, deltas in zip(objs, result.eye_object_deltas):
        # Keys live on the mesh data: a mesh shared by both eyes (linked duplicates) would
        # take one eye's keys over the other's.
        if deltas and obj.data.users > 1:
            raise RigError(f"the eye '{obj.name}' shares its mesh with another object; make it single-user "
                           "(Object > Relations > Make Single User) so each eye gets its own eyeLook keys")
    txns, written = [], []
    try:
        for obj, arr, deltas in zip(objs, arrays, result.eye_object_deltas):
            if not deltas:
                continue
            txn = opsdata.Transaction(obj)
            txns.append(txn)
            txn.ensure_basis()
            for name in sorted(deltas):
                key = arkit.to_style(name, naming)[0]
                txn.write_shape_key(key, mesh_io.shape_key_coords(arr, deltas[name]), replace)
            obj.data.update()
            written.append(obj.name)
    except Exception:
        for txn in reversed(txns):
            txn.rollback()
        raise
    return txns, written


def still_parts(result) -> int:
    """Vertices of loose parts that no shape moves (upper teeth, lashes, …): not the skin,
    not the jaw parts, not eyeballs the gaze turns."""
    moved = np.zeros(len(result.skin), bool)
    for name in arkit.ARKIT_52:
        if name.startswith("eyeLook"):
            moved |= np.abs(result.arkit_delta(name)).max(1) > 0
    return int((~result.skin & ~result.jaw_part & ~moved).sum())


def report_line(result, tongue_written: bool, eye_objects: list[str]) -> str:
    """One line: eyes found and how, closure per eye (the network's when the rules had to
    complete it), the tongue."""
    rep = result.report
    if rep.eyes_found:
        where = _SOURCE_WORDS.get(rep.eyes_found, rep.eyes_found)
        if eye_objects:
            where += f" ({', '.join(eye_objects)})"
        closes = []
        for side in ("Left", "Right"):
            if side not in rep.closure:
                continue
            text = f"{side[0]} {_pct(rep.closure[side])}"
            if rep.completed.get(side):
                text += f" (network {_pct(rep.closure_network.get(side))}, completed)"
            closes.append(text)
        eyes = f"eyes: {where}, turned by eyeLook*; blink closes {', '.join(closes)}"
    else:
        eyes = "eyes: no eyeballs found (eyeLook* moves the lids only)"
    if rep.tongue_found:
        tongue = f"tongue: {_TONGUE_WORDS.get(rep.tongue_found, rep.tongue_found)} moves for tongueOut"
    elif tongue_written:
        tongue = "no tongue found: tongueOut created empty"
    else:
        tongue = "no tongue found: tongueOut not created"
    return f"{eyes}; {tongue}"


def _pct(value) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{100.0 * value:.0f}%"
