# SPDX-License-Identifier: GPL-3.0-or-later
"""Export the shipped networks again from the saved checkpoint, without training.

    python -m model_export.reexport [--checkpoint PATH] [--out DIR] [--only encoder]

For a change of the graphs only (a batch axis, a faster arrangement of the same arithmetic):
the weights come from ``checkpoints/facsimile.pt``, which ``train.py`` writes with every full
run, so the exported networks answer what the trained ones did (``tests/training``'s parity
test compares them with torch). The model cards' input/output tables and file facts are
refreshed; their training and accuracy sections stay as measured.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .cards import MODELS, refresh_card
from .export import export_encoder, export_localizer, export_rig
from .train import CHECKPOINTS, Recipe, build_models


def load_checkpoint(path: Path):
    """(rig, ablation, encoder) with the weights of a checkpoint saved by ``train.py``, in eval mode."""
    saved = torch.load(str(path))
    rig, ablation, encoder = build_models(Recipe(**saved["recipe"]), saved["n_regions"])
    rig.load_state_dict(saved["rig"])
    ablation.load_state_dict(saved["rig_global"])
    encoder.load_state_dict(saved["encoder"])
    for model in (rig, ablation, encoder):
        model.eval()
    return rig, ablation, encoder


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(CHECKPOINTS / "facsimile.pt"))
    parser.add_argument("--out", default=str(MODELS), help="where the .onnx files go (their cards are refreshed)")
    parser.add_argument("--only", choices=("rig", "localizer", "encoder"), action="append",
                        help="export only these (repeatable); default: the three shipped networks")
    args = parser.parse_args(argv)
    rig, _ablation, encoder = load_checkpoint(Path(args.checkpoint))
    out = Path(args.out)
    jobs = {"rig": lambda: export_rig(rig, out / "rig.onnx"),
            "localizer": lambda: export_localizer(rig, out / "localizer.onnx"),
            "encoder": lambda: export_encoder(encoder, out / "expression_encoder.onnx")}
    for name in args.only or list(jobs):
        path = jobs[name]()
        card = refresh_card(path)
        print(f"[reexport] wrote {path}" + (f"; refreshed {card.name}" if card else ""))


if __name__ == "__main__":
    main()
