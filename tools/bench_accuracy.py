# SPDX-License-Identifier: GPL-3.0-or-later
"""``python build.py bench accuracy``: the rig's accuracy against baselines, same run.

Prints the tables and writes them into docs/benchmarks.md (between markers, so the
other benchmarks' sections stay). ``--models DIR`` evaluates another model folder
(e.g. a training experiment) without touching the docs unless ``--write`` is given.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from blender_addon.core import arkit
from model_export import evaluate
from model_export.data.ict import load_ict
from model_export.data.regions import load_region_labels
from tools.docblock import write_block

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
METHODS = ("nothing", "surface_transfer", "global_only", "facsimile")
LABELS = {"nothing": "predict nothing", "surface_transfer": "surface transfer of ICT mean (auto-aligned)",
          "global_only": "global code only (NFR-style ablation)", "facsimile": "**Facsimile (NFS)**"}
METRICS = (("mae", "MAE mm"), ("p95", "P95 mm"), ("active_mae", "active MAE mm"), ("relative", "relative"))


def _table(rows: dict, with_performance: bool) -> list[str]:
    cols = list(METRICS) + ([("performance", "performance mm")] if with_performance else [])
    lines = ["| method | " + " | ".join(c[1] for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for m in METHODS:
        vals = " | ".join(f"{rows[m][k]:.3f}" for k, _ in cols)
        lines.append(f"| {LABELS[m]} | {vals} |")
    return lines


def _mean(results: list[dict]) -> dict:
    return {m: {k: float(np.mean([r[m][k] for r in results])) for k, _ in METRICS} for m in METHODS}


def run(model_dir: Path | None) -> tuple[list[str], dict]:
    t0 = time.perf_counter()
    ict = load_ict()
    labels = load_region_labels()
    lines = []
    summary = {}

    heads = evaluate.ict_heldout_heads(ict, labels)
    per_head = []
    for h in heads:
        r = evaluate.evaluate_head(h, ict, model_dir)
        per_head.append(r)
        print(f"  {h.name}: facsimile MAE {r['facsimile']['mae']:.3f} mm, surface transfer "
              f"{r['surface_transfer']['mae']:.3f}, global-only {r['global_only']['mae']:.3f}", flush=True)
    ict_mean = _mean(per_head)
    summary["ict_heldout"] = ict_mean
    lines += ["### (a) 10 held-out ICT identities, stylized and re-meshed (53 ICT shapes)", "",
              "Heads: " + ", ".join(f"`{h.name}`" for h in heads) + ".", ""]
    lines += _table(ict_mean, False) + [""]

    fc = evaluate.facecap_head()
    r = evaluate.evaluate_head(fc, ict, model_dir)
    summary["facecap"] = {m: {k: v for k, v in r[m].items() if k != "per_key"} for m in METHODS}
    lines += ["### (b) facecap head: another artist's mesh and 52 ARKit shapes, its 335-frame performance", ""]
    lines += _table(r, True) + [""]
    worst = np.argsort(-r["facsimile"]["per_key"])[:8]
    lines += ["Largest per-key MAE (Facsimile / surface transfer, mm): " + ", ".join(
        f"{arkit.ARKIT_52[i]} {r['facsimile']['per_key'][i]:.2f}/{r['surface_transfer']['per_key'][i]:.2f}"
        for i in worst) + ".", ""]

    code = evaluate.facs_code_error(ict, labels, model_dir)
    summary["facs_code"] = code
    lines += ["### (c) expression encoder: FACS code from a mesh (held-out identities, topologies, expressions)",
              "", (f"Mean absolute error of the 53 weights: **{code['mae']:.3f}** "
                   f"(on active weights > 0.05: {code['active_mae']:.3f}), {code['n']} meshes."), ""]
    mouth = [evaluate.evaluate_mouth(h, model_dir) for h in evaluate.ict_mouth_heads()]
    cols = list(mouth[0]["facsimile"])
    summary["ict_mouth"] = {m: {k: float(np.mean([r[m][k] for r in mouth])) for k in cols} for m in mouth[0]}
    lines += ["### (d) inner parts: teeth, gums and tongue of 6 held-out ICT heads (the loose-part rules)", "",
              ("The networks rig the skin; the add-on's loose-part rules (`core/parts.py`) decide which inner "
              "parts follow the jaw and how. Mean vertex error (mm) of each part in jawOpen, and over all inner "
              "vertices in the four jaw shapes. Upper teeth and eyes must stay still; ICT's lower teeth, gums "
              "and tongue move (gums and tongue are one mesh in ICT, partly moving, so a rigid part cannot "
              "match it)."), "",
              "| method | " + " | ".join(c.replace("_", " ") for c in cols) + " |", "|---|" + "---|" * len(cols)]
    mouth_labels = {"nothing": "inner parts stay still", "global_only": LABELS["global_only"],
                    "facsimile": LABELS["facsimile"]}
    for m, row in summary["ict_mouth"].items():
        lines.append(f"| {mouth_labels[m]} | " + " | ".join(f"{row[k]:.2f}" for k in cols) + " |")
    lines += [""]
    lines += [f"Measured in {time.perf_counter() - t0:.0f} s on this machine (CPU), all methods in the same run."]
    return lines, summary


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="", help="model folder (default: the shipped models)")
    parser.add_argument("--write", action="store_true", help="write docs/benchmarks.md even with --models")
    parser.add_argument("--json", default="", help="also write the summary as JSON here")
    args = parser.parse_args(argv)
    model_dir = Path(args.models) if args.models else None
    if model_dir:
        import os

        os.environ.setdefault("FACSIMILE_ABLATION", str(model_dir / "ablation" / "rig_global.onnx"))
    lines, summary = run(model_dir)
    print("\n".join(lines))
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    if model_dir is None or args.write:
        write_block(DOC, "accuracy", lines, "## Accuracy (`python build.py bench accuracy`)")


if __name__ == "__main__":
    main()
