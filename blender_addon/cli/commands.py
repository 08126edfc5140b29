# SPDX-License-Identifier: GPL-3.0-or-later
"""The headless command line, for ``python -m blender_addon`` and ``blender --command facsimile``.

    rig    MESH… --out OUT.blend [--object NAME]… [--naming N] [--strength S] [--tighten T] [--gaze-in DEG]…
           [--existing E]
    bake   TARGET… --take TAKE --out OUT.blend [--glb OUT.glb] [--mode M] [--map MAP.json|PRESET] [--nla]
           [--fps FPS] [--frame-range START END] [--naming N] [--existing E] …
    encode MESH --out TAKE.csv [--object NAME] [--frame-range START END] [--fps FPS] …
    demo   [--out DIR]
    batch  MANIFEST.json [--jobs N] [--only TASK] [--isolate] [--task-timeout S]
    record --protocol livelinkface|facecap|ifacialmocap --seconds S --out TAKE.csv [--port N]

``rig``, ``bake`` and ``encode`` take ``--json PATH|-`` (``report.py``). One progress line
per stage on stdout; bad input exits 2 with one line on stderr (``facsimile: error: …``),
any other failure exits 1 the same way, and then no output file is written
(``pipeline.Outputs``). Every argument is checked (``validate``) before Blender loads
anything. bpy is imported only when a command runs, so ``--help`` and ``--version`` are
instant. docs/cli.md lists every flag (a test holds it to ``build_parser``).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from ..core.eyes import GAZE_DEGREES, GAZE_RANGE
from ..options import EXISTING_ITEMS
from . import batch, batch_worker

ADDON = __package__.rpartition(".")[0] or "blender_addon"
MANIFEST = Path(__file__).resolve().parents[1] / "blender_manifest.toml"
NAMINGS = ("ARKIT", "ARKIT_LR", "ICT53")          # rig/props.py NAMING_ITEMS
EXISTING = tuple(item[0] for item in EXISTING_ITEMS)
MODES = ("AUTO", "DIRECT", "SOLVE")                # core/target_plan.py MODES
NEUTRALS = ("REST", "START")                       # drive/ops.py encode_mesh 'neutral'
MAX_FRAME = 1_048_574                              # Blender's last frame
GAZE_TOWARD = {"In": "toward the nose", "Out": "away from the nose", "Up": "up", "Down": "down"}
_handle = None


def version() -> str:
    """The extension's version, from its manifest (shipped beside the code)."""
    import tomllib

    try:
        with open(MANIFEST, "rb") as handle:
            return str(tomllib.load(handle)["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def _start():
    """Blender with the add-on enabled, on an empty scene."""
    import bpy  # first: it makes Blender's own modules (addon_utils) importable
    import addon_utils

    from .pipeline import CliError, new_file

    new_file()
    package = sys.modules.get(ADDON)
    if package is not None and getattr(package, "__file__", None) and not hasattr(package, "__time__"):
        # Imported by ``python -m`` rather than by Blender: without the time stamp Blender's
        # addon_utils takes the package for changed on disk and reloads it, saying so.
        import os

        package.__time__ = os.path.getmtime(package.__file__)
    if ADDON not in bpy.context.preferences.addons:
        if addon_utils.enable(ADDON, default_set=True) is None:
            raise CliError(f"could not enable the add-on {ADDON}")


def _check_out(out: str, inputs, suffix: str = ".blend", flag: str = "--out") -> None:
    from .pipeline import CliError

    path = Path(out)
    if path.suffix.lower() != suffix:
        raise CliError(f"{flag} {path.name}: the output must be a {suffix} file")
    resolved = path.resolve()
    for given in inputs:
        if Path(given).resolve() == resolved:
            raise CliError(f"{flag} {path.name} is also an input; write to another file so the input is kept")
    if path.exists() and path.is_dir():
        raise CliError(f"{flag} {path.name} is a folder")


def _check_frames(args) -> None:
    from .pipeline import CliError

    if args.frame_range is not None:
        start, end = args.frame_range
        if end < start:
            raise CliError(f"--frame-range {start} {end}: the end is before the start")
        if max(abs(start), abs(end)) > MAX_FRAME:
            raise CliError(f"--frame-range {start} {end}: frames must be within ±{MAX_FRAME:,}")
    if args.fps is not None and not (math.isfinite(args.fps) and 1 <= args.fps <= 1000):
        raise CliError(f"--fps {args.fps:g}: must be a frame rate between 1 and 1000")


def _outputs(args) -> list:
    return [p for p in (getattr(args, "out", None), getattr(args, "glb", None)) if p]


def validate(args) -> None:
    """Every argument checked before Blender loads anything: exit 2, one line."""
    from .pipeline import CliError

    inputs = []
    if args.command == "rig":
        inputs = args.meshes
        _check_out(args.out, inputs)
        if not math.isfinite(args.strength) or not 0 < args.strength <= 10:
            raise CliError(f"--strength {args.strength:g}: must be above 0 and at most 10")
        if not 0 <= args.tighten <= 0.9:                                    # also refuses nan
            raise CliError(f"--tighten {args.tighten:g}: must be between 0 and 0.9")
        for direction in GAZE_DEGREES:
            angle = getattr(args, f"gaze_{direction.lower()}")
            if not GAZE_RANGE[0] <= angle <= GAZE_RANGE[1]:              # also refuses nan
                raise CliError(f"--gaze-{direction.lower()} {angle:g}: must be between {GAZE_RANGE[0]:g} and "
                               f"{GAZE_RANGE[1]:g} degrees")
    elif args.command == "bake":
        map_file = args.map and (args.map.lower().endswith(".json") or "/" in args.map or "\\" in args.map)
        inputs = [*args.targets, args.take, *([args.map] if map_file else [])]
        _check_out(args.out, inputs)
        if args.glb:
            _check_out(args.glb, [*inputs, args.out], ".glb", "--glb")
        if args.frame_step < 1:
            raise CliError(f"--frame-step {args.frame_step}: must be 1 or more")
        if not math.isfinite(args.offset) or abs(args.offset) > 1e6:
            raise CliError(f"--offset {args.offset:g}: must be a finite number of frames within ±1,000,000")
        if not math.isfinite(args.smoothing) or not 0 <= args.smoothing <= 1000:
            raise CliError(f"--smoothing {args.smoothing:g}: must be between 0 and 1000 frames")
        if args.timecode_fps < 0 or args.timecode_fps > 1000:
            raise CliError(f"--timecode-fps {args.timecode_fps}: must be 0 (detect) or a frame rate")
        _check_frames(args)
    elif args.command == "encode":
        inputs = [args.mesh]
        _check_out(args.out, inputs, ".csv")
        _check_frames(args)
    json_path = getattr(args, "json", None)
    if json_path not in (None, "-"):
        path = Path(json_path)
        if path.suffix.lower() != ".json":
            raise CliError(f"--json {path.name}: the report must be a .json file (or - for stdout)")
        if path.is_dir():
            raise CliError(f"--json {path.name} is a folder")
        if any(Path(p).resolve() == path.resolve() for p in [*inputs, *_outputs(args)]):
            raise CliError(f"--json {path.name} is also an input or output; write the report to another file")


def _write_outputs(report, writers) -> None:
    """Every output at once or none (``pipeline.Outputs``: scratch names renamed into place
    when all are complete), then named in the report and the log. ``writers`` take the
    Outputs, in order (the one most likely to fail first)."""
    from . import pipeline

    outputs = pipeline.Outputs()
    try:
        for write in writers:
            write(outputs)
        written = outputs.commit()
    finally:
        outputs.discard()
    report.set(outputs=written)
    for path in written:
        pipeline.stage(f"wrote {path}")


def cmd_rig(args, report) -> None:
    from . import pipeline

    _start()
    for path in args.meshes:
        pipeline.stage(f"loading {Path(path).name}")
        meshes = pipeline.import_meshes(path)
        for obj in pipeline.named(meshes, args.object, path) if args.object else [pipeline.largest(meshes)]:
            entry = pipeline.rig(obj, args.naming, args.strength, args.existing,
                                 others=meshes, all_keys=args.all_keys,
                                 gaze={d: getattr(args, f"gaze_{d.lower()}") for d in GAZE_DEGREES},
                                 tighten=args.tighten)
            report.add("objects", {"file": str(Path(path).resolve()), **entry})
    _write_outputs(report, [lambda outputs: pipeline.save_blend(args.out, outputs)])


def cmd_bake(args, report) -> None:
    from . import pipeline

    _start()
    bpy = sys.modules["bpy"]
    scene = bpy.context.scene
    if args.fps is not None:   # before the take is placed: it is resampled to the scene rate
        pipeline.set_fps(args.fps)
    source = pipeline.import_take(args.take, args.timecode_fps)
    map_path = pipeline.load_map(args.map) if args.map else None
    scene.facsimile_drive.mode = args.mode
    driven = []
    for path in args.targets:
        pipeline.stage(f"loading {Path(path).name}")
        objs, to_rig = pipeline.targets_of(path)
        for obj in to_rig:
            entry = pipeline.rig(obj, args.naming, existing="SKIP", others=objs)
            report.add("objects", {"file": str(Path(path).resolve()), **entry})
        driven += pipeline.driven(objs)
    options = dict(frame_step=args.frame_step, time_offset=args.offset, smoothing=args.smoothing,
                   existing=args.existing, placement="NLA" if args.nla else "ACTION")
    if args.frame_range is not None:
        options.update(use_take_range=False, frame_start=args.frame_range[0], frame_end=args.frame_range[1])
        # The scene range is what a .glb export (and playback) covers.
        scene.frame_start, scene.frame_end = args.frame_range
    entry = pipeline.bake(driven, **options)
    report.add("bakes", {"take": str(Path(args.take).resolve()), "source": source.name,
                         "mode": args.mode, "map": map_path and str(map_path), "nla": args.nla, **entry})
    writers = [lambda outputs: pipeline.save_blend(args.out, outputs)]
    if args.glb:   # written first: the exporter is the step most likely to fail
        writers.insert(0, lambda outputs: pipeline.export_glb(args.glb, driven, outputs))
    _write_outputs(report, writers)


def cmd_encode(args, report) -> None:
    from . import encode, pipeline

    _start()
    if args.fps is not None:   # before the import: importers place keys at the scene rate
        pipeline.set_fps(args.fps)
    pipeline.stage(f"loading {Path(args.mesh).name}")
    meshes = pipeline.import_meshes(args.mesh)
    obj = pipeline.named(meshes, [args.object], args.mesh)[0] if args.object else pipeline.largest(meshes)
    outputs = pipeline.Outputs()
    try:
        scratch, _ = outputs.scratch(args.out)
        entry = encode.encode(obj, args.frame_range, args.neutral, not args.keep_head_motion, scratch)
        written = outputs.commit()
    finally:
        outputs.discard()
    report.add("encodes", {"file": str(Path(args.mesh).resolve()), **entry})
    report.set(outputs=written)
    for path in written:
        pipeline.stage(f"wrote {path}")


def cmd_demo(args, _report) -> None:
    from . import demo

    _start()
    demo.run(Path(args.out), render=not args.no_render)


def cmd_record(argv) -> int:
    """The bpy-free headless recorder (``core/live/record.py``) with its own arguments and
    exit status: 0 frames written, 1 nothing arrived, 2 bad input or the port in use."""
    from ..core.live import record

    return record.main(list(argv), prog="python -m blender_addon record")


def _json_flag(p) -> None:
    p.add_argument("--json", metavar="REPORT.json|-",
                   help="write a machine-readable report of what was done to this file, or to stdout "
                        "with - (progress lines then go to stderr)")


def _rig_flags(p, rig_command: bool) -> None:
    what = "" if rig_command else " (for targets rigged on the fly)"
    p.add_argument("--naming", default="ARKIT", choices=NAMINGS, help=f"shape-key names{what} (default ARKIT)")
    if rig_command:
        p.add_argument("--strength", type=float, default=1.0,
                       help="scale of every generated shape, above 0 up to 10 (default 1)")
        p.add_argument("--tighten", type=float, default=0.0, metavar="T",
                       help="fade out motion under this share of each shape's peak, 0 to 0.9 (default 0: the "
                            "networks' answer; 0.1-0.2 for sculpted and game rigs)")
        for direction, toward in GAZE_TOWARD.items():
            p.add_argument(f"--gaze-{direction.lower()}", type=float, default=GAZE_DEGREES[direction], metavar="DEG",
                           help=f"degrees eyeLook{direction} turns the eyeballs {toward} at weight 1, "
                                f"0 to 90 (default {GAZE_DEGREES[direction]:g}, the calibration)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m blender_addon",
                                     description="Facsimile headless pipeline (also: blender "
                                                 "--command facsimile …)")
    parser.add_argument("--version", action="version", version=f"facsimile {version()}")
    sub = parser.add_subparsers(dest="command", required=True,
                                metavar="{rig,bake,encode,demo,batch,record}")   # batch-worker: internal

    p = sub.add_parser("rig", help="rig head meshes: FX_ region groups + 52 ARKit shape keys")
    p.add_argument("meshes", nargs="+", metavar="MESH", help=".obj, .glb/.gltf, .fbx or .blend")
    p.add_argument("--out", required=True, metavar="OUT.blend")
    p.add_argument("--object", action="append", metavar="NAME",
                   help="rig this mesh object (repeatable; default: each file's largest mesh)")
    _rig_flags(p, True)
    p.add_argument("--existing", default="SKIP", choices=EXISTING,
                   help="your shape keys under the names the rig writes: SKIP keeps them, REPLACE "
                        "replaces them and re-rigs a rigged mesh (its FX_ groups); default SKIP")
    _json_flag(p)
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
    p.add_argument("--mode", default="AUTO", choices=MODES,
                   help="how targets are driven: AUTO (DIRECT when a mesh has ARKit-named keys, "
                        "else SOLVE), DIRECT (copy channels by name), SOLVE (solve the mesh's own keys)")
    p.add_argument("--map", metavar="MAP.json|PRESET",
                   help="retarget map: a JSON file (Save Retarget Map) or a preset by name (VRoid, "
                        "Rocketbox, or one saved with Save Preset)")
    p.add_argument("--nla", action="store_true",
                   help="put the baked keys in a new action placed as an NLA strip at the take's start "
                        "(a new track 'Facsimile'), leaving the active action as it is")
    p.add_argument("--fps", type=float, metavar="FPS",
                   help="scene frame rate the take is placed at (default: Blender's, 24)")
    p.add_argument("--frame-range", type=int, nargs=2, metavar=("START", "END"),
                   help="bake these scene frames (default: the frames the take covers)")
    p.add_argument("--frame-step", type=int, default=1, help="key every Nth frame (default 1)")
    p.add_argument("--offset", type=float, default=0.0, help="shift the keys by frames")
    p.add_argument("--smoothing", type=float, default=0.0, help="Gaussian sigma in frames")
    p.add_argument("--existing", default="SKIP", choices=EXISTING,
                   help="your own animation curves on the keys the bake writes: SKIP keeps them, "
                        "REPLACE replaces them (Facsimile's earlier bake is always replaced)")
    _rig_flags(p, False)
    p.add_argument("--timecode-fps", type=int, default=0,
                   help="Live Link Face timecode base (default: detect)")
    _json_flag(p)
    p.set_defaults(func=cmd_bake)

    p = sub.add_parser("encode", help="encode an animated mesh into an ARKit take (.csv), as "
                                      "Encode Mesh Animation does")
    p.add_argument("mesh", metavar="MESH",
                   help="animated mesh: .glb/.gltf/.fbx with animation, or a .blend (any topology, "
                        "any deformation: shape keys, armature, modifiers)")
    p.add_argument("--out", required=True, metavar="TAKE.csv", help="Live Link Face CSV to write")
    p.add_argument("--object", metavar="NAME", help="encode this mesh object (default: the largest mesh)")
    p.add_argument("--frame-range", type=int, nargs=2, metavar=("START", "END"),
                   help="frames to encode (default: the frames its animation covers)")
    p.add_argument("--fps", type=float, metavar="FPS",
                   help="scene frame rate the animation is read at (default: Blender's, 24)")
    p.add_argument("--neutral", default="REST", choices=NEUTRALS,
                   help="the expressionless face: REST (the mesh without animation) or START "
                        "(the first frame); default REST")
    p.add_argument("--keep-head-motion", action="store_true",
                   help="do not align frames to the neutral first (default: head motion is removed)")
    _json_flag(p)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("demo", help="rig the default head and bake the default performance")
    p.add_argument("--out", default="out", help="output folder (default: out)")
    p.add_argument("--no-render", action="store_true", help="skip the contact sheet")
    p.set_defaults(func=cmd_demo)

    batch.add_parser(sub)
    p = sub.add_parser("record", add_help=False,
                       help="record a phone's live stream (Live Link Face, Face Cap, "
                            "iFacialMocap) to a Live Link Face CSV (--help for options)")
    p.add_argument("record_args", nargs=argparse.REMAINDER,
                   help="--protocol livelinkface|facecap|ifacialmocap --seconds S --out TAKE.csv "
                        "[--port N] [--host ADDR] [--phone IP]")
    batch_worker.add_parser(sub, main)
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["record"]:   # its options are the recorder's own (argparse would eat them)
        return cmd_record(argv[1:])
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:   # --help, --version, or a usage error argparse already printed
        return int(done.code or 0)
    t0 = time.perf_counter()
    try:
        from .pipeline import CliError
    except ImportError as err:   # no bpy: not inside Blender nor the project's venv
        print(f"facsimile: error: {err} (run inside Blender or the project's .venv)", file=sys.stderr)
        return 2
    from .report import Report

    report = None
    status = 0
    try:
        validate(args)
        report = Report(getattr(args, "json", None), args.command, version())
        if getattr(args, "own_status", False):   # batch, its workers: their status, their report
            status = args.func(args) or 0   # 1 when a task failed, the others still done
        else:
            args.func(args, report)
    except CliError as err:
        status, error = 2, str(err)
    except Exception as err:   # a bug or a full disk: still one line, and a distinct status
        status, error = 1, f"{type(err).__name__}: {err}"
    else:
        error = None
    seconds = time.perf_counter() - t0
    if error is not None:
        print(f"facsimile: error: {error}", file=sys.stderr, flush=True)
    else:
        print(f"[facsimile] done in {seconds:.1f} s", flush=True)
    if report is not None:
        report.set(ok=error is None, exit_status=status, error=error, seconds=round(seconds, 3))
        try:
            report.write()
        except OSError as err:
            print(f"facsimile: error: --json: cannot write the report ({err.strerror})", file=sys.stderr)
            return status or 1
    return status


def exit_process(code: int):
    """End a headless ``python`` process (the bpy module) with ``code``, files already written.

    The bpy module's exit handlers are not safe to run here: Blender 4.2's crash once the glTF
    exporter has run, and 4.2's and 4.3's once an add-on whose properties have Python callbacks
    was unregistered (a Python class freed after Python has finalised: SIGSEGV, status 139,
    although every output was complete), and 4.5's hang for good (a futex wait) after a file's
    Python driver was refused (the hostile CLI test's evil.blend). Every output is written and
    closed by now, so the process leaves without them, with the command's own status. Not for
    ``blender --command``: Blender itself ends that process.
    """
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    if sys.modules.get("bpy") is not None:
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
