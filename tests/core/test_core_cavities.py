# SPDX-License-Identifier: GPL-3.0-or-later
"""Closed cavities (core.cavities) and the rig's outer-skin step, no bpy: a procedural
head of revolution with a closed pocket (a bag behind a narrow opening, as a mouth bag or
an eye socket fused to the skin) against the same head with an open hole; a Rocketbox
head for the real thing (skipped when the data is missing)."""

from pathlib import Path

import numpy as np
import pytest
from conftest import data_dir

from blender_addon.core import cavities, rig
from blender_addon.core.mesh.topology import boundary_vertices

ROCKETBOX = data_dir() / "rocketbox" / "rocketbox_female02.npz"


def _profile(pocket: bool, n_outer: int = 60):
    """(rho, depth) along a surface of revolution about the -Y axis: a unit sphere from
    its back pole to an opening of radius 0.12 facing -Y, then (with ``pocket``) a neck
    going in and a bulb of radius 0.3 closing at depth 0.75 behind the opening."""
    t0 = np.arcsin(0.12)
    theta = np.linspace(np.pi, t0, n_outer)                 # angle from the -Y axis
    rho, depth = list(np.sin(theta)), list(1.0 - np.cos(theta))   # depth from the front pole
    inner = np.zeros(len(rho), bool).tolist()
    if pocket:
        rim = depth[-1]
        for s in np.linspace(0, 0.15, 5)[1:]:               # the neck
            rho.append(0.12), depth.append(rim + s), inner.append(True)
        radius = 0.3
        start = np.arcsin(0.12 / radius)
        centre = rim + 0.15 + radius * np.cos(start)
        for a in np.linspace(start, np.pi, 16)[1:]:         # the bulb, to its far pole
            rho.append(radius * np.sin(a)), depth.append(centre - radius * np.cos(a)), inner.append(True)
    return np.array(rho), np.array(depth), np.array(inner)


def revolved_head(pocket: bool, segments: int = 48):
    """(verts, faces, inner) in Blender's frame (face toward -Y), 10 units wide: a head
    with a closed pocket (``pocket``) or with an open hole where the pocket would be."""
    rho, depth, inner = _profile(pocket)
    verts, is_inner, rings = [], [], []
    for i, (r, d) in enumerate(zip(rho, depth)):
        if r < 1e-9:                                        # a pole: one vertex
            rings.append([len(verts)])
            verts.append([0.0, d - 1.0, 0.0])
            is_inner.append(inner[i])
            continue
        ring = []
        for j in range(segments):
            a = 2 * np.pi * j / segments
            ring.append(len(verts))
            verts.append([r * np.cos(a), d - 1.0, r * np.sin(a)])
            is_inner.append(inner[i])
        rings.append(ring)
    faces = []
    for a, b in zip(rings[:-1], rings[1:]):
        if len(a) == 1:
            faces += [[a[0], b[j], b[(j + 1) % segments]] for j in range(segments)]
        elif len(b) == 1:
            faces += [[a[j], b[0], a[(j + 1) % segments]] for j in range(segments)]
        else:
            for j in range(segments):
                k = (j + 1) % segments
                faces += [[a[j], b[j], b[k]], [a[j], b[k], a[k]]]
    verts = np.array(verts) * 5.0
    faces = np.array(faces)
    # Outward normals: the sphere's faces wind so the signed volume is positive.
    c = verts.mean(0)
    vol = np.einsum("ij,ij->i", verts[faces[:, 0]] - c, np.cross(verts[faces[:, 1]] - c, verts[faces[:, 2]] - c)).sum()
    if vol < 0:
        faces = faces[:, ::-1]
    return verts, faces, np.array(is_inner)


def test_closed_pocket_is_found_and_open_hole_is_not():
    verts, faces, inner = revolved_head(pocket=True)
    assert len(boundary_vertices(len(verts), faces).nonzero()[0]) == 0      # watertight
    canon = (verts - verts.mean(0)) / np.ptp(verts[:, 0])
    found = cavities.find_cavities(canon, faces)
    deep = inner & (verts[:, 1] > np.median(verts[inner, 1]))             # the far half of the bag
    assert found[deep].all() and found[inner].mean() > 0.75          # the neck is seen through the opening
    assert not found[~inner].any()                                         # the outer skin stays
    open_verts, open_faces, _ = revolved_head(pocket=False)
    canon = (open_verts - open_verts.mean(0)) / np.ptp(open_verts[:, 0])
    assert not cavities.find_cavities(canon, open_faces).any()


def test_visibility_flipped_mesh_is_the_same():
    verts, faces, _ = revolved_head(pocket=True)
    canon = (verts - verts.mean(0)) / np.ptp(verts[:, 0])
    a = cavities.outer_visibility(canon, faces)
    b = cavities.outer_visibility(canon, faces[:, ::-1])                   # a mesh imported inside out
    np.testing.assert_allclose(a, b, atol=0.1)
    assert a[~revolved_head(pocket=True)[2]].mean() > 0.3                  # a sphere: about half
    np.testing.assert_array_equal(cavities.find_cavities(canon, faces), cavities.find_cavities(canon, faces[:, ::-1]))


def test_follow_matrix_fades_with_depth_and_averages():
    outer = np.array([[0.0, 0, 0], [0.1, 0, 0], [0.0, 0.1, 0]])
    points = np.array([[0.0, 0, 0.01], [0.0, 0, 0.2]])
    w, att = cavities.follow_matrix(points, outer)
    rows = np.asarray(w.sum(1)).ravel()
    np.testing.assert_allclose(rows, att, rtol=1e-5)
    assert att[0] > 0.9 and att[1] < 0.01


def test_rig_sees_only_the_outer_skin_and_the_pocket_follows():
    verts, faces, inner = revolved_head(pocket=True)
    head = rig.prepare_head(verts, faces, cavities=True)
    assert head.cavity is not None and head.cavity[inner].mean() > 0.75 and not head.cavity[~inner].any()
    # No network input inside the pocket: every proxy vertex the networks see is outer skin.
    canon_inner = head.norm.apply(verts[inner & (verts[:, 1] > np.median(verts[inner, 1]))])
    gap = np.linalg.norm(head.prepared.verts[:, None] - canon_inner[None], axis=-1).min()
    assert gap > 0.01
    assert head.prepared.n < rig.prepare_head(verts, faces, cavities=False).prepared.n
    off = rig.predict(verts, faces, provider="CPU", cavities=False, eye_rules=False)
    on = rig.predict(verts, faces, provider="CPU", cavities=True, eye_rules=False)
    assert off.cavity is None and on.cavity is not None
    moved = np.linalg.norm(on.ict_deltas, axis=-1)                          # (53,V)
    # Smooth follow: no cavity vertex moves more than the outer skin's largest motion,
    # and the bottom of the bag moves less than its neck.
    assert moved[:, on.cavity].max() <= moved[:, ~on.cavity].max() + 1e-6
    depth = verts[:, 1]
    bottom = on.cavity & (depth > np.percentile(depth[inner], 90))
    neck = on.cavity & (depth < np.percentile(depth[inner], 20))
    assert moved[:, bottom].mean() < moved[:, neck].mean()


@pytest.mark.skipif(not ROCKETBOX.exists(), reason=f"Rocketbox test head not at {ROCKETBOX} (set FACSIMILE_DATA)")
def test_rocketbox_mouth_bag_is_found_and_its_floor_follows_the_jaw():
    from blender_addon.core import arkit

    with np.load(ROCKETBOX) as d:
        to_b = lambda a: np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)  # noqa: E731
        verts, faces = to_b(d["neutral"]).astype(np.float64), d["faces"].astype(np.int64)
    result = rig.predict(verts, faces, provider="CPU", eye_rules=False)
    cav = result.cavity
    assert 50 < cav.sum() < 0.2 * result.skin.sum()                        # a mouth bag, not the face
    # All of it lies behind the lips, around the mouth's height, inside the head.
    skin = verts[result.skin & ~cav]
    assert (verts[cav, 1] > skin[:, 1].min()).all()
    jaw = result.ict_deltas[arkit.ICT_53.index("jawOpen")]
    low = cav & (verts[:, 2] < np.median(verts[cav, 2]))
    high = cav & (verts[:, 2] > np.percentile(verts[cav, 2], 90))
    assert np.linalg.norm(jaw[low], axis=1).mean() > np.linalg.norm(jaw[high], axis=1).mean()
