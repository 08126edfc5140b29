# SPDX-License-Identifier: GPL-3.0-or-later
"""Model cards: one Markdown file beside each shipped .onnx, written from measurements.

    python -m model_export.cards --bench bench.json    # after `build.py bench accuracy --json`

A card holds the graph's inputs and outputs (read from the .onnx itself), the
training data and its licence, the recipe and commit it was trained at, and the
accuracy measured by the benchmark (never typed in by hand).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "blender_addon" / "models"

PURPOSE = {
    "rig.onnx": "Neutral head (canonical frame, <= 3k-vertex proxy) -> per-vertex region weights (24, softmax), "
                "identity code (128; dims 0-99 = ICT identity coefficients) and the per-vertex responses of the "
                "53 ICT FACS shapes (53 x 3). Identity encoder, skinning encoder and decoder of Neural Face Skinning.",
    "localizer.onnx": "Skinning block: region weights (N, 24) -> per-vertex activity of each FACS channel (N, 53) "
                      "in [0, 1]. Shape delta = localization * response. Fed the predicted weights, or the "
                      "artist's painted FX_ groups.",
    "expression_encoder.onnx": "Source mesh at rest + its displacement in each of a batch of frames -> one global "
                               "expression code (64) per frame; dims 0-52 are the ICT FACS weights (ICT order). "
                               "Drives sliders from any animated mesh.",
}
DATA = ("ICT-FaceKit light model (USC ICT, MIT licence, commit da5f95a): 100 identity modes and 53 expression "
        "shapes, synthesized into random identities (N(0, s^2), s <= 1.5), stylizations (eyes, nose, mouth, chin, "
        "forehead, face and jaw width), crops (narrow face / face / head and neck), re-meshings at 0.7k-3k "
        "vertices with shuffled vertex order, and small rotations. Region labels: `model_export/data/"
        "ict_regions_labels.npy`. The facecap head is never trained on.")


def io_table(path: Path) -> list[str]:
    """Markdown table of an .onnx file's inputs and outputs, read from the graph itself."""
    model = onnx.load(str(path))

    def shape(v):
        return "(" + ", ".join(d.dim_param or str(d.dim_value) for d in v.type.tensor_type.shape.dim) + ")"

    rows = [f"| input | `{i.name}` | {shape(i)} |" for i in model.graph.input]
    rows += [f"| output | `{o.name}` | {shape(o)} |" for o in model.graph.output]
    return ["| | name | shape |", "|---|---|---|", *rows,
            "", f"ONNX opset {model.opset_import[0].version}, IR {model.ir_version}, float32."]


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _accuracy(name: str, bench: dict) -> list[str]:
    if name == "expression_encoder.onnx":
        c = bench["facs_code"]
        return [f"FACS-code mean absolute error on held-out identities, topologies and expressions: "
                f"**{c['mae']:.3f}** (active weights: {c['active_mae']:.3f}), {c['n']} meshes."]
    lines = ["| test set | MAE mm | P95 mm | active MAE mm | relative | performance mm |", "|---|---|---|---|---|---|"]
    for key, label in (("ict_heldout", "10 held-out ICT heads (stylized, re-meshed)"),
                       ("facecap", "facecap (another artist's head and ARKit shapes)")):
        m = bench[key]["facsimile"]
        perf = f"{m['performance']:.3f}" if "performance" in m else "–"
        lines.append(f"| {label} | {m['mae']:.3f} | {m['p95']:.3f} | {m['active_mae']:.3f} | "
                     f"{m['relative']:.3f} | {perf} |")
    lines += ["", "Baselines and the full tables: `docs/benchmarks.md` (`python build.py bench accuracy`)."]
    return lines


def file_facts(path: Path) -> str:
    """The file's sha256 prefix and size, for a card."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return f"file sha256 prefix `{digest}`; {path.stat().st_size / 1e6:.2f} MB"


def refresh_card(path: Path) -> Path | None:
    """Rewrite the input/output table and the file facts of an existing card from the
    .onnx file (after a re-export); the rest of the card stays. None when there is no card."""
    card = path.with_suffix(".md")
    if not card.exists():
        return None
    text = card.read_text()
    head, rest = text.split("## Inputs and outputs", 1)
    _old_table, tail = rest.split("ONNX opset", 1)
    tail = tail.split("\n", 1)[1]
    text = head + "## Inputs and outputs\n\n" + "\n".join(io_table(path)) + "\n" + tail
    text = re.sub(r"file sha256 prefix `[0-9a-f]+`; [0-9.]+ MB", lambda _m: file_facts(path), text)
    card.write_text(text)
    return card


def write_card(path: Path, title: str, purpose: str, sections: list[str]) -> Path:
    """``<model>.md`` beside ``path``: title, purpose, the graph's inputs and outputs, then ``sections``."""
    lines = [f"# Model card: `{title}`", "", purpose, "", "## Inputs and outputs", "", *io_table(path), "",
             *sections]
    card = path.with_suffix(".md")
    card.write_text("\n".join(lines))
    return card


def write_cards(bench: dict, report: dict, models: Path = MODELS) -> list[Path]:
    written = []
    for name, purpose in PURPOSE.items():
        path = models / name
        sections = ["Mesh inputs come from `blender_addon/core/features.py` (the same code in training and in "
                 "Blender): canonical frame (Blender axes, face width 1, nose tip at the origin), "
                 "`mass`/`evals`/`evecs`/`grad_evecs` from `core/spectral.py`"
                 + ("; the expression encoder takes them pre-arranged once per mesh "
                    "(`project`, `grad_x|y|z`: `features.encoder_feeds`); the add-on runs it on a proxy of "
                    "at most 1k vertices of the source mesh (`core/takes/mesh_sequence.encoder_proxy`)." if name == "expression_encoder.onnx"
                    else "."), "",
                 "## Training", "", DATA, "",
                 f"Recipe: `{json.dumps(report.get('recipe', {}))}`.", "",
                 f"Trained by `python build.py train` in {report.get('total_seconds', 0) / 60:.0f} min "
                 "(2-core CPU); log: `model_export/logs/train.log`.", "",
                 f"Code commit: `{_commit()}`; {file_facts(path)}.", "",
                 "## Measured accuracy", "", *_accuracy(name, bench), "",
                 "Licence: GPL-3.0-or-later (this project); trained on MIT-licensed data.", ""]
        written.append(write_card(path, name, purpose, sections))
    return written


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench", required=True, help="JSON summary from `bench accuracy --json`")
    parser.add_argument("--models", default=str(MODELS))
    args = parser.parse_args(argv)
    models = Path(args.models)
    report = json.loads((models / "training_report.json").read_text())
    for card in write_cards(json.loads(Path(args.bench).read_text()), report, models):
        print(f"[cards] wrote {card}")


if __name__ == "__main__":
    main()
