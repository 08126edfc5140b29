# SPDX-License-Identifier: GPL-3.0-or-later
"""The rules after the networks: what an animator checks first (issue 13).

The networks rig the skin; these rules fill in what a skin rig trained on ICT cannot do
on another artist's head, each from geometry alone:

1. **Gaze**: the eyeballs (``core.eyes.find_eyes``: loose parts, separate objects or
   welded patches) turn about their fitted centres for the eight eyeLook* keys, by the
   rig's gaze angles (``eyes.gaze_angles``); a separate eye object gets its own eyeLook*
   deltas.
2. **Blink**: where the network's eyeBlink leaves the eye open (less than
   ``eye_opening.CLOSED`` of the opening covered), the upper lid is brought onto the lower one
   (``eye_opening.complete_blink``); the closure per eye, before and after, goes to the report.
   eyeSquint and eyeWide move the same margins by a share of the gap (``core.lid_shapes``).
   In the jaw shapes, lips that end behind the front teeth are pushed back out
   (``core.lip_collision``).
3. **tongueOut**: a tongue (a loose part, a tongue modelled on a mouth bag's floor, or the
   bag's floor itself) moves forward out of the mouth, between the lips (``core.tongue``);
   when there is none the report says so and the key is left out.

Everything runs in the canonical frame of ``rig.PreparedHead`` and writes world-space
deltas into the :class:`rig.RigResult`.
"""

from __future__ import annotations

import time

import numpy as np

from . import arkit, eye_opening, eyes, lid_shapes, lip_collision, parts, tongue


def _ict(name: str) -> int:
    """ICT index of an ARKit eye name ("eyeLookInLeft" -> "eyeLookIn_L")."""
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if name.endswith(side):
            return arkit.ICT_INDEX[name[: -len(side)] + suffix]
    raise KeyError(name)


def _changed(after: np.ndarray, before: np.ndarray) -> np.ndarray:
    """(V,) rows of two (V,3) shapes that differ (column by column: numpy's reductions over
    a length-3 axis cost several times more on a dense head)."""
    d = after != before
    return d[:, 0] | d[:, 1] | d[:, 2]


def _lap(steps: dict, name: str, since: float) -> float:
    """Add the seconds since ``since`` to ``steps[name]`` (``RigResult.steps``: what each
    rule costs, for ``bench rig``); returns now."""
    now = time.perf_counter()
    steps[name] = steps.get(name, 0.0) + now - since
    return now


def apply(result, head, deltas_proxy: np.ndarray, objects: list[np.ndarray], complete_blink: bool = True,
          gaze: dict | None = None, blink_paint: dict | None = None) -> None:
    """Apply the three rules to ``result`` in place. ``deltas_proxy`` (P,53,3) canonical
    deltas on the proxy (read for the mouth line only: the rules read geometry); ``objects``
    separate eye meshes, world space; ``complete_blink`` False leaves the blink as the
    networks made it (the ablation); ``gaze`` the animator's gaze angles per direction
    (degrees, ``eyes.gaze_angles``; None: the calibration). ``blink_paint`` {"Left": (V,),
    "Right": (V,)}, how much of each vertex's predicted upper-lid weight the painted groups keep
    (0..1, ``rig._lid_paint``), scales the blink's completion vertex by vertex: painted groups
    are the artist's word on where the blink acts, so a lid painted out stays still and a lid
    left as predicted still closes."""
    t = time.perf_counter()
    gaze = eyes.gaze_angles(gaze)
    norm = head.norm
    points = norm.apply(head.verts_world).astype(np.float64)
    faces = np.asarray(head.faces, np.int64)
    skin = head.skin
    skin_faces = faces[skin[faces[:, 0]] & skin[faces[:, 1]] & skin[faces[:, 2]]]
    canon_objects = [norm.apply(o).astype(np.float64) for o in objects]
    report = result.report
    found = eyes.find_eyes(points, head.part_labels, skin, skin_faces, canon_objects)
    report.eyes_found = found[0].source if found else ""
    eye_mask = np.zeros(len(points), bool)
    for eye in found:
        if eye.source == "object":
            own = canon_objects[eye.obj]
            result.eye_object_deltas[eye.obj] = {
                name: norm.invert_vectors(d) for name, d in eyes.gaze_deltas(eye, own, gaze).items()}
        else:
            eye_mask[eye.vertices] = True
            for name, d in eyes.gaze_deltas(eye, points[eye.vertices], gaze).items():
                result.ict_deltas[_ict(name), eye.vertices] += norm.invert_vectors(d)
        t = _lap(result.steps, "eyes", t)
        blink = _ict(f"eyeBlink{eye.side}")
        before = norm.apply_vectors(result.ict_deltas[blink]).astype(np.float64)
        closure = eye_opening.lid_closure(eye, points, skin_faces, before)
        report.closure_network[eye.side] = closure
        report.completed[eye.side] = False
        if complete_blink and not closure >= eye_opening.CLOSED:
            after = eye_opening.complete_blink(eye, points, skin_faces, skin, before)
            if blink_paint is not None:
                after = before + (after - before) * np.clip(blink_paint[eye.side], 0.0, 1.0)[:, None]
            if eye.source != "object":
                after[eye.vertices] = before[eye.vertices]       # the eyeball itself never blinks
            changed = _changed(after, before)
            result.ict_deltas[blink, changed] = norm.invert_vectors(after[changed])
            closure = eye_opening.lid_closure(eye, points, skin_faces, after)
            report.completed[eye.side] = True
        report.closure[eye.side] = closure
        t = _lap(result.steps, "blink", t)
        # eyeSquint raises the lower lid, eyeWide lifts the upper one, on the same margins;
        # the upper lid rides with eyeLookDown/Up, as far as the eye turns (none at 0°).
        for key, which, share in (("eyeSquint", "lower", lid_shapes.SQUINT_SHARE),
                                  ("eyeWide", "upper", -lid_shapes.WIDE_SHARE),
                                  ("eyeLookDown", "upper", lid_shapes.lid_ride("Down", gaze)),
                                  ("eyeLookUp", "upper", lid_shapes.lid_ride("Up", gaze))):
            if share == 0.0:
                continue
            k = _ict(f"{key}{eye.side}")
            before = norm.apply_vectors(result.ict_deltas[k]).astype(np.float64)
            after = lid_shapes.move_margin(eye, points, skin_faces, skin, before, which, share)
            if eye.source != "object":
                after[eye.vertices] = before[eye.vertices]
            changed = _changed(after, before)
            result.ict_deltas[k, changed] = norm.invert_vectors(after[changed])
        t = _lap(result.steps, "lids", t)
    t = _lap(result.steps, "eyes", t)

    # Lips stay in front of the teeth in the jaw shapes (core.lip_collision).
    teeth = lip_collision.teeth_mask(points, head.part_labels, eye_mask)
    if teeth.any():
        for k in parts.JAW_SHAPES:
            before = norm.apply_vectors(result.ict_deltas[k]).astype(np.float64)
            after, pushed = lip_collision.push_lips_out(points, skin, teeth, before)
            if pushed:
                changed = _changed(after, before)
                result.ict_deltas[k, changed] = norm.invert_vectors(after[changed])
                report.lips_pushed[arkit.ICT_53[k]] = pushed
    t = _lap(result.steps, "lips", t)

    found_tongue = tongue.find_tongue(points, faces, skin, exclude=eye_mask)
    if found_tongue.any():
        on_skin = skin[found_tongue].mean() > 0.5
        body = np.zeros(len(points), bool)
        if on_skin:
            # A tongue modelled on the bag's floor (its own upper layer) moves, not the floor.
            body = tongue.tongue_body(points, faces, found_tongue, skin)
            report.tongue_found = "body" if body.any() else "mouth_floor"
        else:
            # A loose tongue moves alone: the mouth bag's floor it touches (same positions
            # join the pieces) stays, or the bag would tear open under the lips.
            found_tongue &= ~skin
            report.tongue_found = "part"
        # The tongue comes out between the lips: at the mouth line the jaw shapes show.
        line = parts.mouth_line(head.prepared.verts, deltas_proxy) if len(deltas_proxy) else None
        moved = tongue.tongue_out(points, body if body.any() else found_tongue, skin, line, body=body.any())
        result.extra["tongueOut"] = norm.invert_vectors(moved)
    _lap(result.steps, "tongue", t)
