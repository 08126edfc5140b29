# SPDX-License-Identifier: GPL-3.0-or-later
"""Eyes, lids and tongue (issue 13): the rules after the networks, measured per test head.

Part of ``python build.py bench accuracy`` (section (g) of docs/benchmarks.md, and the
"eyes" block of docs/models.md); ``python -m tools.bench_accuracy_eyes [--json FILE]`` runs
this part alone and prints it. Per head (facecap, both Rocketbox heads), each next to
predicting nothing:

* lid closure L/R at eyeBlink = 1: the artist's own blink, the network alone, after the
  rules (no ground truth used by the rules; predicting nothing closes nothing);
* eyeLook* MAE against the truth where it exists: Rocketbox's eight shapes (its eyeballs
  turn in the head mesh), facecap's separate eyes driven by its recorded rotations over its
  performance; and the angles each artist turns the eyeballs at weight 1; on heads whose
  artist turns loose eyeballs (Rocketbox), the MAE again with the rig's gaze option set to
  those angles, as an animator would (a diagnostic: no default is chosen on it);
* tongueOut MAE on Rocketbox (facecap's tongueOut is an empty key);
* eyeSquint / eyeWide lid-margin shares, and the overall relative error, rules off and on.

Also :func:`calibrate_gaze` and :func:`calibrate_lid_ride`, the measurements behind
``core.eyes.GAZE_DEGREES`` and ``core.lid_shapes.LID_RIDE``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from blender_addon.core import arkit, eye_opening, eyes, lid_shapes, rig
from model_export import evaluate as ev
from model_export.data.ict import data_root

LOOK = [arkit.ARKIT_INDEX[n] for n in arkit.ARKIT_52 if n.startswith("eyeLook")]
TONGUE = arkit.ARKIT_INDEX["tongueOut"]
DIRECTIONS = ("In", "Out", "Up", "Down")
BALL = ("nothing", "on", "at_artist_angles")


def _to_blender(a: np.ndarray) -> np.ndarray:
    """Y-up, +Z-forward (the data's frame) -> Blender (Z up, face toward -Y)."""
    return np.stack([a[..., 0], -a[..., 2], a[..., 1]], axis=-1)


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    """(T,4) xyzw -> (T,3,3)."""
    x, y, z, w = np.moveaxis(np.asarray(q, np.float64), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1)], -2)


def calibrate_gaze() -> dict:
    """Degrees of eye rotation per unit eyeLook* weight, per direction, least squares on
    facecap's recorded performance. The recorded rotations are absolute (the eye's rest
    pose is the first frame, itself looking ~10 deg down), so weights 0 = straight ahead;
    yaw carries a constant outward divergence per eye, fitted as an intercept. Face Cap's
    node ``eyeLeft`` (-X) is the subject's right eye (the README's naming caveat)."""
    with np.load(data_root() / "facecap" / "facecap.npz") as d:
        names = [str(n) for n in d["names"]]
        w = d["anim_weights"].astype(np.float64)
        yaw_rows, yaw_t, pitch_rows, pitch_t = [], [], [], []
        for k, (node, suffix, outward) in enumerate((("L", "_R", -1.0), ("R", "_L", 1.0))):
            gaze = _quat_matrix(d[f"eye_rot_{node}"]) @ np.array([0.0, 0.0, 1.0])   # data frame: +Z forward
            yaw = np.degrees(np.arctan2(gaze[:, 0], gaze[:, 2])) * outward            # + = toward the eye's own side
            pitch = np.degrees(np.arcsin(np.clip(gaze[:, 1], -1, 1)))                 # + = up
            col = {key: w[:, names.index(f"eyeLook{key}{suffix}")] for key in DIRECTIONS}
            icpt = np.zeros((len(w), 2))
            icpt[:, k] = 1.0
            yaw_rows.append(np.c_[col["Out"], -col["In"], icpt])
            yaw_t.append(yaw)
            pitch_rows.append(np.c_[col["Up"], -col["Down"]])
            pitch_t.append(pitch)
            up_seen = float(col["Up"].max())
        a, t = np.concatenate(yaw_rows), np.concatenate(yaw_t)
        yaw_fit = np.linalg.lstsq(a, t, rcond=None)[0]
        yaw_rms = float(np.sqrt(np.mean((a @ yaw_fit - t) ** 2)))
        a, t = np.concatenate(pitch_rows), np.concatenate(pitch_t)
        down = np.linalg.lstsq(a[:, 1:], t, rcond=None)[0]
        pitch_rms = float(np.sqrt(np.mean((a[:, 1:] @ down - t) ** 2)))
    return {"Out": float(yaw_fit[0]), "In": float(yaw_fit[1]), "Down": float(down[0]),
            "yaw_intercepts": yaw_fit[2:].tolist(), "yaw_rms": yaw_rms, "pitch_rms": pitch_rms,
            "max_eyeLookUp_weight": up_seen}


def _canonical(head: ev.TestHead, eye_objects=()):
    """(prepared head, canonical points, skin faces, the eyes the core finds)."""
    prepared = rig.prepare_head(head.verts, head.faces)
    points = prepared.norm.apply(head.verts).astype(np.float64)
    skin_faces = head.faces[prepared.skin[head.faces].all(1)]
    objects = [prepared.norm.apply(o).astype(np.float64) for o in eye_objects]
    found = eyes.find_eyes(points, prepared.part_labels, prepared.skin, skin_faces, objects)
    return prepared, points, skin_faces, found


def calibrate_lid_ride() -> dict:
    """Share of the lid gap facecap's artist eyeLookDown / eyeLookUp move the upper-lid
    margin (per eye): the measurement behind ``core.lid_shapes.LID_RIDE``."""
    head = ev.facecap_head()
    rest, _truth, _w = facecap_eyes()
    prepared, points, skin_faces, found = _canonical(head, rest)
    out = {}
    for eye in found:
        for key in ("Down", "Up"):
            d = prepared.norm.apply_vectors(head.gt[arkit.ARKIT_INDEX[f"eyeLook{key}{eye.side}"]])
            out[f"{key}{eye.side}"] = lid_shapes.margin_share(eye, points, skin_faces, prepared.skin,
                                                             d.astype(np.float64), "upper")
    return out


def facecap_eyes() -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """Facecap's eye meshes (Blender frame), and per frame their true positions from the
    recorded rotations. The meshes rest in the first frame's pose (looking ~10 deg down),
    so both sides are taken relative to it: truth v(t) = c + R(t) R(0)^T (v_rest - c),
    weights w(t) - w(0). Returns (rest meshes, true meshes (T,N,3) per eye, weights (T,52)
    ARKit order)."""
    with np.load(data_root() / "facecap" / "facecap.npz") as d:
        rest, truth = [], []
        for node in ("L", "R"):
            v = d[f"eye{node}_verts"].astype(np.float64)
            c = d[f"eye_center_{node}"].astype(np.float64)
            rot = _quat_matrix(d[f"eye_rot_{node}"])
            rel = rot @ rot[0].T
            moved = c + np.einsum("tij,nj->tni", rel, v - c)
            rest.append(_to_blender(v))
            truth.append(_to_blender(moved))
        names = [arkit.normalize_name(str(n)) for n in d["names"]]
        weights = d["anim_weights"][:, [names.index(n) for n in arkit.ARKIT_52]].astype(np.float64)
        weights = weights - weights[:1]
    return rest, truth, weights


def _eye_performance_mm(result: rig.RigResult, rest, truth, weights) -> tuple[float, float]:
    """Mean eye-vertex error (mm) over facecap's performance: rules vs eyes held still."""
    err, still = [], []
    for k, (v, t) in enumerate(zip(rest, truth)):
        deltas = result.eye_object_deltas[k] if k < len(result.eye_object_deltas) else {}
        pred = np.repeat(v[None], len(weights), 0)
        for name, dd in deltas.items():
            pred += weights[:, arkit.ARKIT_INDEX[name], None, None] * dd[None]
        err.append(np.linalg.norm(pred - t, axis=-1).mean() * 10.0)
        still.append(np.linalg.norm(v[None] - t, axis=-1).mean() * 10.0)
    return float(np.mean(err)), float(np.mean(still))


def _rotation_degrees(before: np.ndarray, after: np.ndarray) -> float:
    """Angle (degrees) of the best rigid rotation taking ``before`` to ``after`` (Kabsch)."""
    p, q = before - before.mean(0), after - after.mean(0)
    u, _s, vt = np.linalg.svd(p.T @ q)
    r = vt.T @ np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))]) @ u.T
    return float(np.degrees(np.arccos(np.clip((np.trace(r) - 1.0) / 2.0, -1.0, 1.0))))


def _artist(head: ev.TestHead, prepared, points, skin_faces, found) -> dict:
    """What the artist's own shapes do, measured like the rules: closure of its blink per
    eye, and the angle its eyeLook* shapes turn loose eyeballs (mean of both eyes)."""
    out = {"closure": {}, "gaze_degrees": {}, "per_eye": {}}
    angles = {d: [] for d in DIRECTIONS}
    for eye in found:
        blink = prepared.norm.apply_vectors(head.gt[arkit.ARKIT_INDEX[f"eyeBlink{eye.side}"]]).astype(np.float64)
        out["closure"][eye.side] = eye_opening.lid_closure(eye, points, skin_faces, blink)
        if eye.source == "part":
            for d in DIRECTIONS:
                move = head.gt[arkit.ARKIT_INDEX[f"eyeLook{d}{eye.side}"]][eye.vertices]
                angles[d].append(_rotation_degrees(head.verts[eye.vertices], head.verts[eye.vertices] + move))
            out["per_eye"][eye.side] = {d: angles[d][-1] for d in DIRECTIONS}
    out["gaze_degrees"] = {d: float(np.mean(a)) for d, a in angles.items() if a}
    return out


def _at_artist_angles(head: ev.TestHead, prepared, points, found, per_eye: dict, eyeball: np.ndarray) -> float:
    """Diagnostic, never a setting: eyeLook* MAE (mm) over the eyeball vertices when the
    rule turns the found eyeballs about their fitted centres by the artist's own angles.
    Small = the centres, axes and signs are right, and only the angle differs."""
    pred = np.zeros((len(LOOK), len(points), 3))
    for eye in found:
        if eye.side not in per_eye:
            continue
        for name, d in eyes.gaze_deltas(eye, points[eye.vertices], per_eye[eye.side]).items():
            pred[LOOK.index(arkit.ARKIT_INDEX[name]), eye.vertices] = prepared.norm.invert_vectors(d)
    err = np.linalg.norm(pred[:, eyeball] - head.gt[LOOK][:, eyeball], axis=-1)
    return float(err.mean() * head.unit_mm)


def _margin_shares(head: ev.TestHead, prepared, points, skin_faces, found, off: rig.RigResult,
                   on: rig.RigResult) -> dict:
    """Per eye, the share of the lid gap eyeSquint (lower margin, up) and eyeWide (upper
    margin, away: negative) move: truth, network alone, after the rules."""
    out = {}
    for eye in found:
        for key, which in (("eyeSquint", "lower"), ("eyeWide", "upper")):
            name = f"{key}{eye.side}"
            out[name] = {label: lid_shapes.margin_share(
                eye, points, skin_faces, prepared.skin,
                prepared.norm.apply_vectors(d).astype(np.float64), which)
                for label, d in (("truth", head.gt[arkit.ARKIT_INDEX[name]]), ("off", off.arkit_delta(name)),
                                 ("on", on.arkit_delta(name)))}
    return out


def measure(head: ev.TestHead, eye_objects=()) -> tuple[dict, rig.RigResult]:
    off = rig.predict(head.verts, head.faces, provider="CPU", eye_rules=False)
    on = rig.predict(head.verts, head.faces, provider="CPU", eye_rules=True, eye_objects=eye_objects)
    prepared, points, skin_faces, found = _canonical(head, eye_objects)
    row = {"eyes_found": on.report.eyes_found, "tongue_found": on.report.tongue_found,
           "closure_network": on.report.closure_network, "closure": on.report.closure,
           "rules_seconds": on.timings.get("rules", 0.0),
           "artist": _artist(head, prepared, points, skin_faces, found),
           "lid_margin_share": _margin_shares(head, prepared, points, skin_faces, found, off, on)}
    e_off = ev.errors_mm(off.arkit_deltas(), head.gt, head.unit_mm)
    e_on = ev.errors_mm(on.arkit_deltas(), head.gt, head.unit_mm)
    e_none = ev.errors_mm(np.zeros_like(head.gt), head.gt, head.unit_mm)
    row["relative"] = {"off": e_off["relative"], "on": e_on["relative"]}
    row["eyeLook_mae"] = {"nothing": float(e_none["per_key"][LOOK].mean()), "off": float(e_off["per_key"][LOOK].mean()),
                          "on": float(e_on["per_key"][LOOK].mean())}
    gaze = row["artist"]["gaze_degrees"]
    if gaze:
        # Diagnostic, never a default: the gaze option set to the artist's measured angles (to
        # 0.1°, as an animator types them in the Rig panel), the rest of the rig unchanged.
        set_to = {d: round(a, 1) for d, a in gaze.items()}
        at = rig.predict(head.verts, head.faces, provider="CPU", eye_rules=True, eye_objects=eye_objects,
                         gaze=set_to)
        row["eyeLook_mae"]["at_artist_gaze"] = float(ev.errors_mm(at.arkit_deltas(), head.gt,
                                                                  head.unit_mm)["per_key"][LOOK].mean())
        row["artist_gaze_set"] = set_to
    row["tongueOut_mae"] = {"nothing": float(e_none["per_key"][TONGUE]), "off": float(e_off["per_key"][TONGUE]),
                            "on": float(e_on["per_key"][TONGUE])}
    eyeball = np.zeros(len(head.verts), bool)
    moving = np.linalg.norm(head.gt[LOOK], axis=-1).max(0) > 0
    eyeball[moving & ~off.skin] = True                         # loose parts the truth turns
    if eyeball.any():
        def mae(pred):
            return float(np.linalg.norm(pred[LOOK][:, eyeball] - head.gt[LOOK][:, eyeball], axis=-1).mean()
                         * head.unit_mm)
        row["eyeball_eyeLook_mae"] = {
            "nothing": mae(np.zeros_like(head.gt)), "on": mae(on.arkit_deltas()),
            "at_artist_angles": _at_artist_angles(head, prepared, points, found, row["artist"]["per_eye"], eyeball)}
    return row, on


def run() -> dict:
    out = {"gaze_calibration": calibrate_gaze(), "lid_ride_calibration": calibrate_lid_ride()}
    fc = ev.facecap_head()
    rest, truth, weights = facecap_eyes()
    row, result = measure(fc, rest)
    row["eye_performance_mm"] = dict(zip(("on", "still"), _eye_performance_mm(result, rest, truth, weights)))
    out["facecap"] = row
    for name in ev.ROCKETBOX_HEADS:
        out[name] = measure(ev.rocketbox_head(name))[0]
    return out


def _f(x, fmt="{:.2f}") -> str:
    return "–" if x is None or not np.isfinite(x) else fmt.format(x)


def _ratio(m: dict) -> str:
    return f"{m['on'] / m['nothing']:.2f}" if m["nothing"] > 0 else "–"


def table(out: dict, heading: bool = True) -> list[str]:
    """The per-head tables (benchmarks.md section (g) with its ``heading``, the "eyes" block
    of models.md without)."""
    cal = out["gaze_calibration"]
    heads = {k: v for k, v in out.items() if not k.endswith("_calibration")}
    lines = [
        *(["### (g) eyes, lids and tongue: the rules after the networks (issue 13)", ""] if heading else []),
        ("Per test head, each next to predicting nothing. *Closure*: share of the eye opening covered at "
         "eyeBlink = 1, artist's own blink / network alone → after the rules (target ≥ 0.90; no ground truth "
         "used by the rules; nothing closes 0). *eyeLook\\**, *tongueOut*: MAE (mm) over the head, predicting "
         "nothing / network alone / after the rules, and rules ÷ nothing (target ≤ 0.50 on Rocketbox). "
         "*Eyeballs*: the same eyeLook\\* MAE over the eyeball vertices only, nothing / rules (in brackets, a "
         "diagnostic: our fitted centres and axes turned by the artist's own angles). Facecap's eyes are "
         "separate objects, scored over its recorded performance below; its tongueOut is an empty key."), "",
        "| head | found | closure L | closure R | eyeLook\\* MAE mm | ÷ nothing | eyeballs mm | tongueOut MAE mm "
        "| ÷ nothing | relative error off → on |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in heads.items():
        art, cn, c = row["artist"]["closure"], row["closure_network"], row["closure"]
        look, tongue = row["eyeLook_mae"], row["tongueOut_mae"]
        ball = row.get("eyeball_eyeLook_mae")
        found = f"eyes: {row['eyes_found'] or 'none'}, tongue: {row.get('tongue_found') or 'none'}"
        closure = [f"{_f(art.get(s))} / {_f(cn.get(s))} → {_f(c.get(s))}" for s in ("Left", "Right")]
        lines.append(
            f"| {name} | {found} | {closure[0]} | {closure[1]} | "
            f"{look['nothing']:.3f} / {look['off']:.3f} / {look['on']:.3f} | {_ratio(look)} | "
            f"{'–' if ball is None else '{:.2f} / {:.2f} ({:.2f})'.format(*(ball[k] for k in BALL))} | "
            f"{tongue['nothing']:.3f} / {tongue['off']:.3f} / {tongue['on']:.3f} | {_ratio(tongue)} | "
            f"{row['relative']['off']:.3f} → {row['relative']['on']:.3f} |")
    set_rows = {name: row for name, row in heads.items() if "at_artist_gaze" in row["eyeLook_mae"]}
    if set_rows:
        lines += ["", "Angle set to the artist's, as an animator would (a diagnostic, no default chosen on it): "
                      "the Rig panel's *Gaze* angles set to the angles each artist's shapes turn the eyeballs "
                      "(below), eyeLook\\* MAE ÷ nothing at the default angles → with them set: " + "; ".join(
                          f"{name} {_ratio(row['eyeLook_mae'])} → "
                          f"{row['eyeLook_mae']['at_artist_gaze'] / row['eyeLook_mae']['nothing']:.2f}"
                          for name, row in set_rows.items()) + "."]
    lines += ["", "Lid margins: share of the lid gap eyeSquint raises the lower margin and eyeWide lifts the "
                  "upper one (negative), mean of both eyes, truth / network / rules: " + "; ".join(
                      f"{name} squint {_mean_share(row, 'eyeSquint')}, wide {_mean_share(row, 'eyeWide')}"
                      for name, row in heads.items()) + "."]
    fc = heads.get("facecap", {}).get("eye_performance_mm")
    if fc:
        lines += ["", f"Facecap's eyes over its recorded performance (separate eye objects driven by its "
                      f"eyeLook\\* weights vs its recorded eye rotations): {fc['on']:.2f} mm mean vertex "
                      f"error with the rules, {fc['still']:.2f} mm with the eyes held still (nothing)."]
    artists = {name: row["artist"]["gaze_degrees"] for name, row in heads.items() if row["artist"]["gaze_degrees"]}
    lines += ["", "Gaze angle at weight 1, per direction: facecap's recorded rotations against its eyeLook\\* "
                  f"weights (the calibration): In {cal['In']:.1f}°, Out {cal['Out']:.1f}°, Down {cal['Down']:.1f}° "
                  f"(yaw RMS {cal['yaw_rms']:.2f}°, pitch RMS {cal['pitch_rms']:.2f}°; it never looks up, "
                  f"largest eyeLookUp {cal['max_eyeLookUp_weight']:.2f}); `core.eyes.GAZE_DEGREES` = "
                  + ", ".join(f"{d} {eyes.GAZE_DEGREES[d]:.1f}°" for d in DIRECTIONS)
                  + ". The Rocketbox artist's shapes turn the eyeballs (measured, not used): "
                  + "; ".join(f"{name} " + ", ".join(f"{d} {a:.1f}°" for d, a in deg.items())
                              for name, deg in artists.items()) + "."]
    lines += ["", "Upper lid riding with the gaze (share of the lid gap facecap's artist moves the upper "
                  "margin): " + ", ".join(f"{k} {v:+.2f}" for k, v in out["lid_ride_calibration"].items())
              + f"; `core.lid_shapes.LID_RIDE` = Down {lid_shapes.LID_RIDE['Down']:+.2f}, "
                f"Up {lid_shapes.LID_RIDE['Up']:+.2f}.", ""]
    return lines


def _mean_share(row: dict, key: str) -> str:
    shares = row.get("lid_margin_share", {})
    vals = [" / ".join(_f(float(np.mean([v[label] for k, v in shares.items() if k.startswith(key)])))
                       for label in ("truth", "off", "on"))] if shares else ["–"]
    return vals[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args(argv)
    out = run()
    print(json.dumps(out, indent=1, default=float))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    print("\n".join(table(out)))


if __name__ == "__main__":
    main()
