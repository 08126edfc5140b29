# SPDX-License-Identifier: GPL-3.0-or-later
"""Convert one MIT Rocketbox head into the demo's embedded default head.

    .venv/bin/python -m tools.make_demo_head

Reads ``../shared/data/rocketbox/rocketbox_male03.npz`` (see its README: Microsoft
Rocketbox avatar library, MIT; Y up, +Z forward, centimetres) and writes
``blender_addon/cli/demo_assets/rocketbox_male03.npz``: only what the demo needs to build
the mesh — the neutral head in Blender's frame (Z up, the face toward -Y, metres, the
neck base at the origin so the take's head rotation pivots there), its triangles, and a
material slot per face (skin, eye white, iris) so blinks read in the render. The ARKit
shapes of the original are left out on purpose: the demo's shapes are the networks'
prediction, and the head stays a test head nothing was trained on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blender_addon.core.mesh.topology import connected_components

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT.parent / "shared" / "data" / "rocketbox" / "rocketbox_male03.npz"
OUT = ROOT / "blender_addon" / "cli" / "demo_assets" / "rocketbox_male03.npz"
SKIN, SCLERA, IRIS = 0, 1, 2


def convert(source: Path = SOURCE) -> dict:
    data = np.load(source)
    cm = data["neutral"].astype(np.float64)
    verts = np.stack([cm[:, 0], -cm[:, 2], cm[:, 1]], axis=1) * 0.01   # Y up, +Z fwd -> Z up, -Y fwd; m
    lo, hi = verts.min(axis=0), verts.max(axis=0)
    verts -= np.array([0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1]), lo[2]])
    faces = data["faces"].astype(np.int64)
    material = np.full(len(faces), SKIN, np.uint8)
    labels = connected_components(len(verts), faces)
    sizes = np.bincount(labels)
    main = int(np.argmax(sizes))
    for comp in np.flatnonzero(sizes):
        if comp == main:
            continue
        members = labels == comp
        ball = verts[members]
        if float(np.ptp(ball[:, 0])) < 0.01:          # not an eyeball
            continue
        on_ball = members[faces].all(axis=1)
        centroid = verts[faces[on_ball]].mean(axis=1)
        # The iris: faces near the ball's front-most point (toward -Y), 6 mm across the
        # front as a human iris is about 12 mm wide.
        apex = ball[np.argmin(ball[:, 1])]
        front = np.hypot(centroid[:, 0] - apex[0], centroid[:, 2] - apex[2]) < 0.006
        material[np.flatnonzero(on_ball)] = np.where(front, IRIS, SCLERA)
    return {"verts": verts.astype(np.float16), "faces": faces.astype(np.int32),
            "face_material": material}


def main() -> None:
    arrays = convert()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(arrays['verts'])} vertices, "
          f"{len(arrays['faces'])} triangles, materials {np.bincount(arrays['face_material']).tolist()})")


if __name__ == "__main__":
    main()
