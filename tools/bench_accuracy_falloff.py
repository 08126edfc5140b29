# SPDX-License-Identifier: GPL-3.0-or-later
"""``bench accuracy`` section (h): the "Tighten" rig option (``core.falloff``) on every head.

What the option trades: artists' rigs keep each shape's motion near its peak, ICT's scans
spread it thin and far. Each head is rigged as the add-on does by default (cavities and eye
rules on) at a few settings of the option; the default (0) is not chosen here — the table
shows the trade-off so an animator knows what the option does to which kind of head. The
last column is a diagnostic, not a method: the prediction cut to the vertices the artist's
own shape moves (> 0.1 mm), which says how much of the error is *where* the motion lands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_export import evaluate
from tools.bench_accuracy import _rig, gain_metrics

AMOUNTS = (0.0, 0.1, 0.2, 0.3)
SUPPORT_MM = 0.1


def _support_only(pred: np.ndarray, gt: np.ndarray, unit_mm: float) -> float:
    """Relative error at the best single gain of the prediction cut to the artist's support."""
    cut = pred * (np.linalg.norm(gt, axis=-1) * unit_mm > SUPPORT_MM)[..., None]
    return gain_metrics(cut, gt)["relative_at_gain"]


def _row(heads, model_dir) -> dict:
    row = {}
    for amount in AMOUNTS:
        ms = []
        for h in heads:
            pred, _result, _s = _rig(h, model_dir, True, True, tighten=amount)
            m = gain_metrics(pred, h.gt)
            if amount == 0.0:
                m["support_only"] = _support_only(pred, h.gt, h.unit_mm)
            ms.append(m)
        row[amount] = {k: float(np.mean([m[k] for m in ms])) for k in ms[0]}
    return row


def run(ict_heads, model_dir: Path | None) -> dict:
    rows = {"facecap": _row([evaluate.facecap_head()], model_dir)}
    for name in evaluate.ROCKETBOX_HEADS:
        rows[name] = _row([evaluate.rocketbox_head(name)], model_dir)
    rows["ICT held-out, closed sockets (3)"] = _row(evaluate.ict_socket_heads(), model_dir)
    rows[f"ICT held-out (a) ({len(ict_heads)})"] = _row(ict_heads, model_dir)
    for name, row in rows.items():
        print(f"  tighten {name}: " + "; ".join(f"{a:g} {m['relative']:.3f}/{m['relative_at_gain']:.3f}"
                                                for a, m in row.items()), flush=True)
    return rows


def table(rows: dict, heading: bool = True) -> list[str]:
    """Section (h) of benchmarks.md (with its ``heading``), the "falloff" block of models.md."""
    cols = " | ".join(f"Tighten {a:g}" for a in AMOUNTS)
    lines = [*(["### (h) the Tighten option: how far shapes reach (relative / rel. at g\\*)", ""] if heading else []),
             ("Each head rigged with the add-on's defaults and the *Tighten* rig option at 0 (the default: the "
              "networks' answer) to 0.3 (motion under 30 % of each shape's peak fades out; `core/falloff.py`). "
              "Cells: relative error / relative error at the best single gain g\\* (as in (f)). *Support only* is "
              "a diagnostic, not a method: the default prediction cut to the vertices the artist's own shape moves "
              f"(> {SUPPORT_MM} mm), at g\\*."), "",
             f"| head | {cols} | support only |", "|---|" + "---|" * (len(AMOUNTS) + 1)]
    for name, row in rows.items():
        cells = " | ".join(f"{m['relative']:.3f} / {m['relative_at_gain']:.3f}" for m in row.values())
        lines.append(f"| {name} | {cells} | {row[AMOUNTS[0]]['support_only']:.3f} |")
    return lines + [""]
