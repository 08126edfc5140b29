# SPDX-License-Identifier: GPL-3.0-or-later
"""The headless command line, for ``python -m blender_addon`` and ``blender --command facsimile``.

    rig  MESH… --out OUT.blend
    bake TARGET… --take TAKE --out OUT.blend [--glb OUT.glb]
    demo [--out DIR]

One progress line per stage on stdout; bad input exits 2 with one line on stderr
(``facsimile: error: …``), any other failure exits 1 the same way. bpy is imported only
when a command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ADDON = __package__.rpartition(".")[0] or "blender_addon"
_handle = None


def _start():
    """Blender with the add-on enabled, on an empty scene."""
    import bpy  # first: it makes Blender's own modules (addon_utils) importable
    import addon_utils

    from .pipeline import CliError, new_file

    new_file()
    if ADDON not in bpy.context.preferences.addons:
        if addon_utils.enable(ADDON, default_set=True) is None:
            raise CliError(f"could not enable the add-on {ADDON}")


def cmd_rig(args) -> None:
    from . import pipeline

    _start()
    for path in args.meshes:
        pipeline.stage(f"loading {Path(path).name}")
        meshes = pipeline.import_meshes(path)
        pipeline.rig(pipeline.largest(meshes), args.naming, meshes, args.all_keys)
    pipeline.stage(f"wrote {pipeline.save_blend(args.out)}")


def cmd_bake(args) -> None:
    from . import pipeline

    _start()
    pipeline.import_take(args.take, args.timecode_fps)
    driven = []
    for path in args.targets:
        pipeline.stage(f"loading {Path(path).name}")
        objs, to_rig = pipeline.targets_of(path)
        for obj in to_rig:
            pipeline.rig(obj, others=objs)
        driven += pipeline.driven(objs)
    pipeline.bake(driven, frame_step=args.frame_step, time_offset=args.offset,
                  smoothing=args.smoothing)
    pipeline.stage(f"wrote {pipeline.save_blend(args.out)}")
    if args.glb:
        pipeline.stage(f"wrote {pipeline.export_glb(args.glb, driven)}")


def cmd_demo(args) -> None:
    from . import demo

    _start()
    demo.run(Path(args.out), render=not args.no_render)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m blender_addon",
                                     description="Facsimile headless pipeline (also: blender "
                                                 "--command facsimile …)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("rig", help="rig head meshes: FX_ region groups + 52 ARKit shape keys")
    p.add_argument("meshes", nargs="+", metavar="MESH", help=".obj, .glb/.gltf, .fbx or .blend")
    p.add_argument("--out", required=True, metavar="OUT.blend")
    p.add_argument("--naming", default="ARKIT", choices=("ARKIT", "ARKIT_LR", "ICT53"))
    p.add_argument("--all-keys", action="store_true",
                   help="create all 52 ARKit keys, tongueOut even where the head has no tongue")
    p.set_defaults(func=cmd_rig)

    p = sub.add_parser("bake", help="bake a take onto one or many characters")
    p.add_argument("targets", nargs="+", metavar="TARGET",
                   help="rigged .blend, or a mesh file (.obj/.glb/.fbx; rigged on the fly when "
                        "it has no shape keys, solved when its keys are not ARKit names)")
    p.add_argument("--take", required=True, metavar="TAKE",
                   help="Live Link Face .csv, Face Cap .txt, .glb/.gltf/.fbx with ARKit morph "
                        "animation, or a performance video (.mp4/.mov/…, face-tracked)")
    p.add_argument("--out", required=True, metavar="OUT.blend")
    p.add_argument("--glb", metavar="OUT.glb", help="also write the baked characters as glTF")
    p.add_argument("--frame-step", type=int, default=1, help="key every Nth frame (default 1)")
    p.add_argument("--offset", type=float, default=0.0, help="shift the keys by frames")
    p.add_argument("--smoothing", type=float, default=0.0, help="Gaussian sigma in frames")
    p.add_argument("--timecode-fps", type=int, default=0,
                   help="Live Link Face timecode base (default: detect)")
    p.set_defaults(func=cmd_bake)

    p = sub.add_parser("demo", help="rig the default head and bake the default performance")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--no-render", action="store_true", help="skip the contact sheet")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:   # --help, or a usage error argparse already printed
        return int(done.code or 0)
    t0 = time.perf_counter()
    try:
        from .pipeline import CliError
    except ImportError as err:   # no bpy: not inside Blender nor the project's venv
        print(f"facsimile: error: {err} (run inside Blender or the project's .venv)", file=sys.stderr)
        return 2
    try:
        args.func(args)
    except CliError as err:
        print(f"facsimile: error: {err}", file=sys.stderr)
        return 2
    except Exception as err:   # a bug or a full disk: still one line, and a distinct status
        print(f"facsimile: error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(f"[facsimile] done in {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


def exit_process(code: int):
    """End a headless ``python`` process (the bpy module) with ``code``, files already written.

    The bpy module of Blender 4.2 crashes in its C++ exit handlers once the glTF exporter has
    run (a Python class freed after Python has finalised: SIGSEGV, status 139, although
    every output was complete). Leaving without those handlers gives the command's own
    status; later Blender versions exit normally. Not for ``blender --command``: Blender
    itself ends that process.
    """
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    bpy = sys.modules.get("bpy")
    if bpy is not None and bpy.app.version < (4, 3, 0):
        os._exit(code)
    sys.exit(code)


def _blender_command(argv) -> int:
    return main(list(argv))


def register():
    global _handle
    import bpy

    if hasattr(bpy.utils, "register_cli_command") and _handle is None:   # Blender 4.2+
        _handle = bpy.utils.register_cli_command("facsimile", _blender_command)


def unregister():
    global _handle
    import bpy

    if _handle is not None:
        bpy.utils.unregister_cli_command(_handle)
        _handle = None
