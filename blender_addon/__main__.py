# SPDX-License-Identifier: GPL-3.0-or-later
"""Headless command line: ``python -m blender_addon COMMAND …`` (with the bpy module).

Each command prints one progress line per stage and exits non-zero with a
one-line message on bad input, so pipelines can call it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


class CliError(Exception):
    """Bad input: printed as one line, exit status 2."""


def _stage(msg: str) -> None:
    print(f"[facsimile] {msg}", flush=True)


def _enable_addon():
    import bpy  # first: it makes Blender's own modules (addon_utils) importable
    import addon_utils

    name = __package__ or "blender_addon"
    if name not in bpy.context.preferences.addons:
        if addon_utils.enable(name, default_set=True) is None:
            raise CliError(f"could not enable the add-on {name}")
    return bpy


def cmd_demo(args) -> None:
    """Open the add-on in headless Blender and save a scene (the rig lands in a later release)."""
    t0 = time.perf_counter()
    _stage("starting Blender")
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    _enable_addon()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _stage("creating the default head")
    bpy.ops.mesh.primitive_monkey_add(size=0.25, location=(0, 0, 1.6))
    head = bpy.context.object
    head.name = "DemoHead"
    blend = (out / "demo.blend").resolve()
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    _stage(f"wrote {blend} in {time.perf_counter() - t0:.1f} s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m blender_addon", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="run the main job on the embedded default head")
    p.add_argument("--out", default="out", help="output folder")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except CliError as ex:
        print(f"facsimile: error: {ex}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
