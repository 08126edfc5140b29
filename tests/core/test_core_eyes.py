# SPDX-License-Identifier: GPL-3.0-or-later
"""Eyes, lids and tongue rules (core.eyes, core.tongue, core.face_rules), no bpy:
synthetic spheres for the geometry, the facecap and Rocketbox test heads for the real
thing (skipped when the data is missing)."""

from pathlib import Path

import numpy as np
import pytest
from conftest import data_dir

from blender_addon.core import arkit, eye_opening, eyes, rig, tongue
from blender_addon.core.mesh import head as meshlib

DATA = data_dir()
FACECAP = DATA / "facecap" / "facecap.npz"
ROCKETBOX = DATA / "rocketbox" / "rocketbox_male03.npz"


def uv_sphere(centre, radius, rings=10, segments=16):
    """Closed UV sphere: (verts, faces)."""
    verts = [[0, 0, radius], [0, 0, -radius]]
    for i in range(1, rings):
        t = np.pi * i / rings
        for j in range(segments):
            p = 2 * np.pi * j / segments
            verts.append([radius * np.sin(t) * np.cos(p), radius * np.sin(t) * np.sin(p), radius * np.cos(t)])
    faces = []
    ring = lambda i, j: 2 + (i - 1) * segments + j % segments  # noqa: E731
    for j in range(segments):
        faces.append([0, ring(1, j), ring(1, j + 1)])
        faces.append([1, ring(rings - 1, j + 1), ring(rings - 1, j)])
    for i in range(1, rings - 1):
        for j in range(segments):
            faces += [[ring(i, j), ring(i + 1, j), ring(i + 1, j + 1)], [ring(i, j), ring(i + 1, j + 1), ring(i, j + 1)]]
    return np.asarray(verts) + np.asarray(centre, float), np.asarray(faces)


def two_eyes(offset=0.0):
    """Two eyeball parts (labels 0, 1) and a tooth-like box part (2), canonical frame."""
    left, _ = uv_sphere([0.18 + offset, 0.3, 0.2], 0.09)
    right, _ = uv_sphere([-0.18 + offset, 0.3, 0.2], 0.09)
    box = np.random.default_rng(0).uniform([-0.05, 0.2, -0.25], [0.05, 0.3, -0.2], (40, 3))
    points = np.concatenate([left, right, box])
    labels = np.repeat([0, 1, 2], [len(left), len(right), len(box)])
    return points, labels


def test_sphere_fit_is_exact_on_a_sphere_and_poor_on_a_box():
    v, _ = uv_sphere([0.1, -0.2, 0.3], 0.07)
    c, r, res = eyes.fit_sphere(v)
    np.testing.assert_allclose(c, [0.1, -0.2, 0.3], atol=1e-9)
    assert abs(r - 0.07) < 1e-9 and res < 1e-9
    box = np.random.default_rng(1).uniform(-0.1, 0.1, (200, 3)) * [1, 0.2, 1]
    assert eyes.fit_sphere(box)[2] > eyes.SPHERE_RESIDUAL


def test_loose_eyeballs_found_and_paired_left_at_plus_x():
    points, labels = two_eyes(offset=0.02)      # the pair's midplane need not be x = 0
    found = eyes.find_eyes(points, labels)
    assert [e.side for e in found] == ["Left", "Right"]
    assert found[0].centre[0] > 0 > found[1].centre[0]
    assert all(e.source == "part" and abs(e.radius - 0.09) < 1e-6 for e in found)
    assert set(labels[found[0].vertices]) == {0}


def test_a_lone_sphere_or_a_sphere_below_the_nose_is_no_eye():
    points, labels = two_eyes()
    assert eyes.find_eyes(points[labels != 1], labels[labels != 1]) == []
    low = points.copy()
    low[labels < 2, 2] -= 0.5                   # both spheres below the nose tip: not eyes
    assert eyes.find_eyes(low, labels) == []


def test_separate_eye_objects_win():
    left, _ = uv_sphere([0.18, 0.3, 0.2], 0.09)
    right, _ = uv_sphere([-0.18, 0.3, 0.2], 0.09)
    points, labels = two_eyes()
    found = eyes.find_eyes(points, labels, objects=[right, left])
    assert [(e.side, e.source, e.obj) for e in found] == [("Left", "object", 1), ("Right", "object", 0)]


def test_gaze_signs_follow_arkit():
    points, labels = two_eyes()
    for eye in eyes.find_eyes(points, labels):
        pupil = eye.centre + [0.0, -eye.radius, 0.0]        # the front of the eye (face looks -Y)
        d = {k: v[0] for k, v in eyes.gaze_deltas(eye, pupil[None]).items()}
        s = eye.side
        outward = 1.0 if s == "Left" else -1.0               # +X is the subject's left
        assert d[f"eyeLookOut{s}"][0] * outward > 0
        assert d[f"eyeLookIn{s}"][0] * outward < 0
        assert d[f"eyeLookUp{s}"][2] > 0 and d[f"eyeLookDown{s}"][2] < 0
        # A rotation: the pupil stays on the sphere, turned by the calibrated angle.
        moved = pupil + d[f"eyeLookOut{s}"]
        assert abs(np.linalg.norm(moved - eye.centre) - eye.radius) < 1e-9
        angle = np.degrees(np.arccos(np.dot(moved - eye.centre, pupil - eye.centre) / eye.radius ** 2))
        assert abs(angle - eyes.GAZE_DEGREES["Out"]) < 1e-6


def _turn_degrees(before: np.ndarray, after: np.ndarray) -> float:
    """Angle of the rotation about the origin that best takes ``before`` to ``after`` (n,3)."""
    u, _s, vt = np.linalg.svd(before.T @ after)
    r = vt.T @ np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))]) @ u.T
    # atan2(sin, cos), not arccos(cos): arccos loses half the digits near 0 (1e-6 degrees at
    # a zero turn, the last bits of the SVD), where the test asks 1e-6.
    sin = np.linalg.norm([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]]) / 2.0
    return float(np.degrees(np.arctan2(sin, (np.trace(r) - 1.0) / 2.0)))


def test_the_gaze_angle_an_animator_sets_turns_the_eyeball_by_that_angle():
    points, labels = two_eyes()
    assert eyes.gaze_angles() is eyes.GAZE_DEGREES and eyes.gaze_angles({}) is eyes.GAZE_DEGREES
    assert eyes.gaze_angles({"Up": 7.5}) == {**eyes.GAZE_DEGREES, "Up": 7.5}   # the rest: the calibration
    for eye in eyes.find_eyes(points, labels):
        ball = points[labels == (0 if eye.side == "Left" else 1)]
        for angle in (0.0, 7.6, 18.7, 45.0, 90.0):
            d = eyes.gaze_deltas(eye, ball, {"In": angle, "Out": angle, "Up": angle, "Down": angle})
            for key in ("In", "Out", "Up", "Down"):
                moved = ball + d[f"eyeLook{key}{eye.side}"]
                # about the fitted centre: every vertex keeps its distance, and turns by the angle
                np.testing.assert_allclose(np.linalg.norm(moved - eye.centre, axis=1),
                                           np.linalg.norm(ball - eye.centre, axis=1), atol=1e-12)
                assert abs(_turn_degrees(ball - eye.centre, moved - eye.centre) - angle) < 1e-6
    for bad in ({"Up": -1.0}, {"Down": 90.5}, {"In": float("nan")}, {"Left": 10.0}):
        with pytest.raises(ValueError):
            eyes.gaze_angles(bad)


def _rocketbox_neutral():
    """The Rocketbox male03 head's neutral (verts, faces) in Blender's frame."""
    if not ROCKETBOX.exists():
        pytest.skip(f"Rocketbox data missing: {ROCKETBOX}")
    with np.load(ROCKETBOX) as d:
        to_b = lambda a: np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)  # noqa: E731
        return to_b(d["neutral"]).astype(np.float64), d["faces"].astype(np.int64)


def _found_eyes(verts, faces):
    """(prepared head, canonical points, skin faces, the two eyes found) of a head."""
    head = rig.prepare_head(verts, faces)
    points = head.norm.apply(verts).astype(np.float64)
    skin_faces = faces[head.skin[faces].all(1)]
    found = eyes.find_eyes(points, head.part_labels, head.skin, skin_faces)
    assert len(found) == 2
    return head, points, skin_faces, found


def test_gaze_option_on_rocketbox_turns_the_eyeballs_and_leaves_the_default_unchanged():
    from blender_addon.core import lid_shapes

    verts, faces = _rocketbox_neutral()
    default = rig.predict(verts, faces, provider="CPU")
    # Giving the calibrated angles is the default, bit for bit.
    same = rig.predict(verts, faces, provider="CPU", gaze=dict(eyes.GAZE_DEGREES))
    assert np.array_equal(same.ict_deltas, default.ict_deltas)
    gaze = {"In": 10.0, "Out": 20.0, "Up": 5.0, "Down": 15.0}
    result = rig.predict(verts, faces, provider="CPU", gaze=gaze)
    head, points, skin_faces, found = _found_eyes(verts, faces)
    for eye in found:
        rel = points[eye.vertices] - eye.centre
        for key, angle in gaze.items():
            d = head.norm.apply_vectors(result.arkit_delta(f"eyeLook{key}{eye.side}"))[eye.vertices]
            assert abs(_turn_degrees(rel, rel + d) - angle) < 1e-3, (eye.side, key)
            np.testing.assert_allclose(np.linalg.norm(rel + d, axis=1), np.linalg.norm(rel, axis=1), atol=1e-6)
        # The upper lid rides as far as the eye turns: half the calibrated angle, about half the ride.
        d = head.norm.apply_vectors(result.arkit_delta(f"eyeLookDown{eye.side}")).astype(np.float64)
        share = lid_shapes.margin_share(eye, points, skin_faces, head.skin, d, "upper")
        assert share >= 0.9 * lid_shapes.lid_ride("Down", eyes.gaze_angles(gaze)) > 0
    # Only the eyeLook* keys change.
    look = [i for i, n in enumerate(arkit.ICT_53) if n.startswith("eyeLook")]
    rest = np.setdiff1d(np.arange(len(arkit.ICT_53)), look)
    assert np.array_equal(result.ict_deltas[rest], default.ict_deltas[rest])
    assert not np.array_equal(result.ict_deltas[look], default.ict_deltas[look])
    with pytest.raises(rig.RigError, match="gaze Up 95"):
        rig.predict(verts, faces, provider="CPU", gaze={"Up": 95.0})


def _facecap():
    if not FACECAP.exists():
        pytest.skip(f"facecap data missing: {FACECAP}")
    from model_export import evaluate

    head = evaluate.facecap_head()
    with np.load(FACECAP) as d:
        to_b = lambda a: np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)  # noqa: E731
        objects = [to_b(d["eyeL_verts"]).astype(np.float64), to_b(d["eyeR_verts"]).astype(np.float64)]
    return head, objects


def test_facecap_eye_objects_blink_closes_and_completion_closes_from_nothing():
    head, objects = _facecap()
    skin = meshlib.find_skin(head.verts, head.faces)
    norm = meshlib.normalize_head(head.verts[skin])
    points = norm.apply(head.verts).astype(np.float64)
    skin_faces = head.faces[skin[head.faces].all(1)]
    found = eyes.find_eyes(points, np.full(len(points), -1), objects=[norm.apply(o) for o in objects])
    assert [(e.side, e.source) for e in found] == [("Left", "object"), ("Right", "object")]
    assert found[0].obj == 1                    # Face Cap's "eyeRight" node is the subject's left (+X)
    for eye in found:
        blink = head.gt[arkit.ARKIT_INDEX[f"eyeBlink{eye.side}"]] / norm.scale
        assert eye_opening.lid_closure(eye, points, skin_faces, blink) >= eye_opening.CLOSED      # the artist's blink
        none = np.zeros_like(points)
        assert eye_opening.lid_closure(eye, points, skin_faces, none) == 0.0
        done = eye_opening.complete_blink(eye, points, skin_faces, skin, none)
        assert eye_opening.lid_closure(eye, points, skin_faces, done) >= eye_opening.CLOSED
        # Nothing that was outside the eyeball ends inside it.
        before = np.linalg.norm(points - eye.centre, axis=1)
        after = np.linalg.norm(points + done - eye.centre, axis=1)
        moved = np.abs(done).max(1) > 0
        assert (after[moved & (before >= eye.radius)] >= eye.radius).all()


def test_rig_result_carries_the_rules_and_the_report():
    head, objects = _facecap()
    result = rig.predict(head.verts, head.faces, provider="CPU", eye_objects=objects)
    assert result.report.eyes_found == "object"
    assert min(result.report.closure.values()) >= eye_opening.CLOSED
    left = result.eye_object_deltas[1]          # object 1 is the subject's left eye
    assert sorted(left) == sorted(k for k in eyes.GAZE_KEYS if k.endswith("Left"))
    assert (left["eyeLookOutLeft"][:, 0].mean()) > 0
    off = rig.predict(head.verts, head.faces, provider="CPU", eye_rules=False, eye_objects=objects)
    assert off.report.eyes_found == "" and off.eye_object_deltas == [{}, {}]
    assert not off.arkit_delta("tongueOut").any()


def test_rocketbox_loose_eyeballs_turn_and_tongue_is_found():
    if not ROCKETBOX.exists():
        pytest.skip(f"Rocketbox data missing: {ROCKETBOX}")
    with np.load(ROCKETBOX) as d:
        to_b = lambda a: np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)  # noqa: E731
        verts, faces = to_b(d["neutral"]).astype(np.float64), d["faces"].astype(np.int64)
        names = [str(n) for n in d["names"]]
        true_tongue = np.linalg.norm(d["deltas"][names.index("TongueOut")], axis=1) > 1e-3   # float noise elsewhere
    result = rig.predict(verts, faces, provider="CPU")
    assert result.report.eyes_found == "part"
    assert min(result.report.closure.values()) >= eye_opening.CLOSED
    look = result.arkit_delta("eyeLookOutLeft")
    turned = np.abs(look).max(1) > 0
    assert turned.any() and look[turned & (verts[:, 0] > 0)][:, 0].mean() > 0
    # The tongue is modelled on the mouth bag's floor: it moves, whole, and the floor stays.
    assert result.report.tongue_found == "body"
    out = result.arkit_delta("tongueOut")
    moved = np.abs(out).max(1) > 0
    assert (moved & true_tongue).sum() == true_tongue.sum() and (moved & ~true_tongue).sum() <= 2
    assert np.ptp(out[true_tongue], axis=0).max() < 1e-9                 # slides out whole
    assert out[moved, 1].mean() < 0 and out[moved, 2].mean() > 0       # forward (-Y), up to the lips


def _grid(x, y, z, n):
    """A flat (n x n) grid of triangles at height z: (verts, faces)."""
    gx, gy = np.meshgrid(np.linspace(*x, n), np.linspace(*y, n), indexing="ij")
    verts = np.stack([gx.ravel(), gy.ravel(), np.full(n * n, z)], axis=1)
    i, j = np.meshgrid(np.arange(n - 1), np.arange(n - 1), indexing="ij")
    a = (i * n + j).ravel()
    faces = np.concatenate([np.stack([a, a + n, a + n + 1], 1), np.stack([a, a + n + 1, a + 1], 1)])
    return verts, faces


def test_tongue_body_is_the_upper_layer_of_the_mouth_floor():
    floor_v, floor_f = _grid((-0.1, 0.1), (0.1, 0.4), -0.25, 10)
    flap_v, flap_f = _grid((-0.04, 0.04), (0.15, 0.3), -0.23, 5)
    verts = np.concatenate([floor_v, flap_v])
    faces = np.concatenate([floor_f, flap_f + len(floor_v)])
    everything = np.ones(len(verts), bool)
    body = tongue.tongue_body(verts, faces, everything, everything)
    assert body.sum() == len(flap_v) and body[len(floor_v):].all()
    # One layer (a bag's floor without a modelled tongue): no body, the floor itself moves.
    assert not tongue.tongue_body(floor_v, floor_f, np.ones(len(floor_v), bool), np.ones(len(floor_v), bool)).any()


def test_no_tongue_in_a_head_without_a_mouth():
    v, f = uv_sphere([0, 0.5, 0], 0.5, rings=16, segments=24)
    skin = np.ones(len(v), bool)
    assert not tongue.find_tongue(v, f, skin).any()


def test_squint_wide_and_gaze_act_on_the_blink_margins_on_rocketbox():
    from blender_addon.core import lid_shapes

    verts, faces = _rocketbox_neutral()
    result = rig.predict(verts, faces, provider="CPU")
    head, points, skin_faces, found = _found_eyes(verts, faces)
    for eye in found:
        def share(name, which):
            d = head.norm.apply_vectors(result.arkit_delta(f"{name}{eye.side}")).astype(np.float64)
            return lid_shapes.margin_share(eye, points, skin_faces, head.skin, d, which)
        assert share("eyeSquint", "lower") >= 0.9 * lid_shapes.SQUINT_SHARE      # the lower lid rises
        assert share("eyeWide", "upper") <= -0.9 * lid_shapes.WIDE_SHARE         # the upper lid lifts
        assert share("eyeWide", "lower") > -0.05                                 # ... not the lower one
        assert share("eyeLookUp", "upper") <= 0.9 * lid_shapes.LID_RIDE["Up"]     # the lid rides up
        assert share("eyeLookDown", "upper") >= 0.9 * lid_shapes.LID_RIDE["Down"]  # ... and down
        for name in ("eyeSquint", "eyeWide"):
            d = result.arkit_delta(f"{name}{eye.side}")
            assert not d[eye.vertices].any()                                     # the eyeball stays
            moved = points + head.norm.apply_vectors(d)
            r_before = np.linalg.norm(points - eye.centre, axis=1)
            r_after = np.linalg.norm(moved - eye.centre, axis=1)
            outside = head.skin & (r_before >= eye.radius)
            # (the network's own shapes may graze the sphere by a fraction of a percent)
            assert (r_after[outside] >= np.minimum(r_before[outside], eye.radius) * 0.99).all()


def test_lips_stay_in_front_of_facecap_teeth_in_the_jaw_shapes():
    if not FACECAP.exists():
        pytest.skip(f"facecap data missing: {FACECAP}")
    from blender_addon.core import lip_collision

    to_b = lambda a: np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)  # noqa: E731
    with np.load(FACECAP) as d:
        n = len(d["neutral"])
        verts = np.concatenate([to_b(d["neutral"]), to_b(d["teeth_verts"])]).astype(np.float64)
        faces = np.concatenate([d["faces"], d["teeth_faces"] + n]).astype(np.int64)
    off = rig.predict(verts, faces, provider="CPU", eye_rules=False)
    on = rig.predict(verts, faces, provider="CPU")
    assert on.report.lips_pushed.get("jawOpen", 0) > 0
    head = rig.prepare_head(verts, faces)
    points = head.norm.apply(verts).astype(np.float64)
    teeth = lip_collision.teeth_mask(points, head.part_labels, np.zeros(len(points), bool))

    t = np.flatnonzero(teeth)
    lips = np.flatnonzero(head.skin)
    lips = lips[points[lips, 1] < lip_collision._front(points[t], points[lips][:, [0, 2]]) - lip_collision.CLEARANCE]

    def through(result):
        """Lip vertices in front of the teeth at rest that jawOpen carries behind their front."""
        delta = head.norm.apply_vectors(result.arkit_delta("jawOpen")).astype(np.float64)
        q = points + delta
        return int((q[lips, 1] > lip_collision._front(q[t], q[lips][:, [0, 2]])).sum())

    assert through(off) > 0 and through(on) == 0
    moved = np.abs(on.arkit_delta("jawOpen") - off.arkit_delta("jawOpen")).max(1) > 0
    assert not moved[~head.skin].any()                     # the teeth are not what moves


def test_painted_groups_close_the_blink_where_the_lid_is_painted_and_only_there():
    """Update Rig (painted FX_ groups): groups left as predicted close the eye as Rig Face does;
    the left upper lid painted out (its weight moved to the forehead) keeps that blink still."""
    head, objects = _facecap()
    from blender_addon.core.regions import REGION_INDEX

    predicted = rig.predict(head.verts, head.faces, provider="CPU", eye_objects=objects)
    painted = predicted.region_weights.astype(np.float64)
    as_predicted = rig.predict(head.verts, head.faces, provider="CPU", eye_objects=objects,
                               painted_weights=painted)
    assert min(as_predicted.report.closure.values()) >= eye_opening.CLOSED
    lid, forehead = REGION_INDEX["upper_lid_L"], REGION_INDEX["forehead"]
    out = painted.copy()
    out[:, forehead] += out[:, lid]
    out[:, lid] = 0.0
    lid_out = rig.predict(head.verts, head.faces, provider="CPU", eye_objects=objects, painted_weights=out)
    assert lid_out.report.closure["Left"] < 0.5 and lid_out.report.closure["Right"] >= eye_opening.CLOSED
    moved = np.linalg.norm(lid_out.arkit_delta("eyeBlinkLeft"), axis=1)
    assert moved[painted[:, lid] > 0.5].mean() < 0.3 * np.linalg.norm(
        as_predicted.arkit_delta("eyeBlinkLeft"), axis=1)[painted[:, lid] > 0.5].mean()
