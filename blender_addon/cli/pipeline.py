# SPDX-License-Identifier: GPL-3.0-or-later
"""Headless jobs behind the CLI: load meshes, rig, bake a take, save .blend and .glb.

Each job runs the add-on's own operators (``facsimile.rig``, ``facsimile.import_take``,
``facsimile.bake``), so a pipeline gets exactly what an artist gets in the UI, and the
operators' one-line reports become the CLI's error messages.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import bpy

from .. import animation
from ..core import arkit
from ..core.errors import FacsimileError
from ..core.regions import REGION_NAMES, group_name
from ..core.target_plan import direct_rows
from ..rig.props import GAZE_NAMES, gaze_degrees

MESH_EXTENSIONS = (".obj", ".glb", ".gltf", ".fbx", ".blend")
OWNED_KEYS = "facsimile_keys"   # rig/ops.py: the keys Facsimile wrote (an ID property, public)
_KEY_PATH = re.compile(r'^key_blocks\["(.*)"\]\.value$')


class CliError(FacsimileError):
    """Bad input: printed as one line, exit status 2."""


def stage(msg: str) -> None:
    print(f"[facsimile] {msg}", flush=True)


def _operator_error(err: RuntimeError) -> str:
    """The last line of an operator's report ('Error: Facsimile: …' -> '…')."""
    text = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
    for prefix in ("Error: ", "Facsimile: "):
        text = text.split(prefix, 1)[-1]
    return text


@contextlib.contextmanager
def _blender_output(keep: Callable[[str], bool]):
    """Blender prints operator reports and file messages itself (C code, file descriptor 1);
    captured here and passed on filtered, so an error reaches the user once, as the CLI's
    own line, and saving or reading a scratch file adds no noise."""
    sys.stdout.flush()
    saved = os.dup(1)
    lines: list = []   # everything Blender printed, for the caller (the JSON report)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield lines
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
            sink.seek(0)
            lines += sink.read().decode("utf-8", "replace").splitlines()
            for line in lines:
                if keep(line):
                    print(line, flush=True)


def _not_an_error(line: str) -> bool:
    return not line.startswith("Error:")


def call(op: Callable, what: str, **kwargs) -> dict:
    """Run an operator; its reports as {'info': [...], 'warnings': [...]} (CliError on failure)."""
    try:
        with _blender_output(_not_an_error) as lines:
            result = op(**kwargs)
    except RuntimeError as err:
        raise CliError(f"{what}: {_operator_error(err)}") from None
    if result != {"FINISHED"}:
        raise CliError(f"{what}: cancelled")
    return reports_of(lines)


def reports_of(lines) -> dict:
    """Operator reports among the lines Blender printed ('Info: Facsimile: …')."""
    found = {"info": [], "warnings": []}
    for line in lines:
        for prefix, kind in (("Info: ", "info"), ("Warning: ", "warnings")):
            if line.startswith(prefix):
                found[kind].append(line[len(prefix):].split("Facsimile: ", 1)[-1].strip())
    return found


def new_file() -> None:
    """An empty scene with Python auto-execution off, whatever the user's preference.

    ``read_homefile`` keeps the preferences, so the add-on stays enabled
    (``read_factory_settings`` would disable it under ``blender --command``). The empty
    scene is then saved and reopened with ``use_scripts=False``: that is what turns the
    session's auto-execution flag off, so the target .blend files appended next cannot run
    their registered scripts or Python drivers (a pipeline runs files it did not write).
    """
    bpy.ops.wm.read_homefile(use_empty=True)
    with tempfile.TemporaryDirectory(prefix="facsimile-") as folder, _blender_output(lambda line: False):
        empty = os.path.join(folder, "empty.blend")
        bpy.ops.wm.save_as_mainfile(filepath=empty, check_existing=False, copy=True)
        bpy.ops.wm.open_mainfile(filepath=empty, use_scripts=False, load_ui=False)


def import_meshes(path: str) -> list:
    """Mesh objects of an .obj/.glb/.gltf/.fbx/.blend file, linked into the scene."""
    name, ext = Path(path).name, Path(path).suffix.lower()
    if ext not in MESH_EXTENSIONS:
        raise CliError(f"{name}: unsupported mesh file (use {', '.join(MESH_EXTENSIONS)})")
    if not os.path.isfile(path):
        raise CliError(f"{name}: no such file")
    before = set(bpy.data.objects)
    try:
        if ext == ".obj":
            bpy.ops.wm.obj_import(filepath=path)
        elif ext in (".glb", ".gltf"):
            bpy.ops.import_scene.gltf(filepath=path)
        elif ext == ".fbx":
            bpy.ops.import_scene.fbx(filepath=path)
        else:
            with bpy.data.libraries.load(path, link=False) as (src, dst):
                dst.objects = list(src.objects)
            for obj in dst.objects:
                if obj is not None and obj.name not in bpy.context.scene.collection.all_objects:
                    bpy.context.scene.collection.objects.link(obj)
    except (RuntimeError, OSError) as err:
        raise CliError(f"{name}: cannot import ({_operator_error(err)})") from None
    meshes = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    if not meshes:
        raise CliError(f"{name}: no mesh in the file")
    return meshes


def largest(meshes) -> object:
    return max(meshes, key=lambda o: len(o.data.vertices))


def named(meshes, names, path: str) -> list:
    """The meshes called ``names`` among those a file brought in (CliError naming the others)."""
    by_name = {o.name: o for o in meshes}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CliError(f"{Path(path).name}: no mesh object named {', '.join(map(repr, missing))} "
                       f"(it has {', '.join(map(repr, sorted(by_name)))})")
    return [by_name[n] for n in names]


def activate(objs) -> None:
    for obj in bpy.context.view_layer.objects:
        obj.select_set(False)
    for obj in objs:
        obj.select_set(True)
    bpy.context.view_layer.objects.active = objs[0]


def _key_names(obj) -> set:
    """The mesh's shape keys but its reference (Basis) key."""
    keys = obj.data.shape_keys
    return {kb.name for kb in keys.key_blocks if kb != keys.reference_key} if keys is not None else set()


def _owned(obj) -> set:
    keys = obj.data.shape_keys
    return set(keys.get(OWNED_KEYS, ())) if keys is not None else set()


def rig_names(naming: str) -> list:
    """The shape-key names a rig writes in a naming style."""
    if naming == "ICT53":
        return list(arkit.ICT_53)
    return [arkit.to_style(name, naming)[0] for name in arkit.ARKIT_52]


def rig(obj, naming: str = "ARKIT", strength: float = 1.0, existing: str = "SKIP", others=(),
        all_keys: bool = False, gaze: dict | None = None, tighten: float = 0.0) -> dict:
    """Rig ``obj`` with ``facsimile.rig``; what was written, for the JSON report. ``others``
    (the file's other meshes) are selected with it, so separate eyeballs among them get their
    eyeLook* keys (rig/eye_objects.py); ``all_keys`` creates tongueOut even without a tongue;
    ``gaze`` {"In": degrees, …} sets the gaze angles (unset: the Rig panel's); ``tighten`` the
    Tighten option (``core.falloff``).

    ``existing='REPLACE'`` also replaces FX_ groups (a re-rig); with 'SKIP' a mesh that
    already has them is refused before any work, naming the flag that re-rigs it.
    """
    fx = [g.name for g in obj.vertex_groups if g.name.startswith("FX_")]
    if fx and existing != "REPLACE":
        raise CliError(f"'{obj.name}' is already rigged ({len(fx)} FX_ groups): re-rig it with "
                       "--existing REPLACE (the keys Facsimile wrote are regenerated either way)")
    stage(f"rigging '{obj.name}' ({len(obj.data.vertices)} vertices)")
    activate([obj, *[o for o in others if o is not obj]])
    before, t0 = _key_names(obj), time.perf_counter()
    angles = {GAZE_NAMES[d]: math.radians(a) for d, a in (gaze or {}).items()}
    reports = call(bpy.ops.facsimile.rig, f"rig '{obj.name}'", naming=naming, strength=strength,
                   existing=existing, replace_groups=existing == "REPLACE", all_keys=all_keys,
                   tighten=tighten, **angles)
    owned, state = _owned(obj), bpy.context.scene.facsimile_rig
    return {
        "object": obj.name, "vertices": len(obj.data.vertices), "naming": naming,
        "strength": strength, "tighten": tighten, "existing": existing,
        "gaze": {**gaze_degrees(state), **{d: round(a, 3) for d, a in (gaze or {}).items()}},
        "groups": [group_name(r) for r in REGION_NAMES],
        "keys_added": sorted(_key_names(obj) - before),
        "keys_replaced": sorted(owned & before),
        "keys_kept": sorted((set(rig_names(naming)) & before) - owned),
        "provider": state.last_provider, "network_seconds": round(float(state.last_seconds), 3),
        "seconds": round(time.perf_counter() - t0, 3),
        "warnings": reports["warnings"], "reports": reports["info"],
    }


def targets_of(path: str) -> tuple[list, list]:
    """(meshes to drive, meshes that need rigging first) of one target file.

    Meshes with shape keys are driven (directly or by solve); a file with none gets its
    largest mesh rigged, the other meshes selected with it, so separate eyeballs get their
    eyeLook* keys; of those, the bake drives the ones that got keys (``driven``).
    """
    meshes = import_meshes(path)
    keyed = [o for o in meshes if o.data.shape_keys is not None and len(o.data.shape_keys.key_blocks) > 1]
    if keyed:
        return keyed, []
    head = largest(meshes)
    return [head, *[o for o in meshes if o is not head]], [head]


def driven(objs) -> list:
    """Meshes of ``objs`` that have keys to drive (after rigging)."""
    return [o for o in objs if o.data.shape_keys is not None and len(o.data.shape_keys.key_blocks) > 1]


class Outputs:
    """The files a command writes, all or none: each is written under a scratch name beside
    its destination and renamed into place only when every one is complete, so a command
    that fails (a .glb export after the .blend, a full disk) leaves no output behind."""

    def __init__(self):
        self.pending: list = []   # (scratch, final)

    def scratch(self, path: str) -> tuple[Path, Path]:
        final = Path(path).resolve()
        final.parent.mkdir(parents=True, exist_ok=True)
        # The scratch name keeps the suffix: Blender's writers add theirs when it is missing.
        tmp = final.with_name(f".{final.stem}.facsimile-{os.getpid()}{final.suffix}")
        self.pending.append((tmp, final))
        return tmp, final

    def commit(self) -> list:
        for tmp, final in self.pending:
            os.replace(tmp, final)
        done, self.pending = [str(final) for _, final in self.pending], []
        return done

    def discard(self) -> None:
        for tmp, _ in self.pending:
            with contextlib.suppress(OSError):
                tmp.unlink()
        self.pending = []


def save_blend(path: str, outputs: Outputs | None = None) -> Path:
    """Save the session as ``path`` (under a scratch name when ``outputs`` collects it)."""
    out = Path(path).resolve()
    target = out
    if outputs is not None:
        target, out = outputs.scratch(path)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    with _blender_output(lambda line: not line.startswith("Info: Saved")):
        bpy.ops.wm.save_as_mainfile(filepath=str(target), check_existing=False)
    return out


def export_glb(path: str, objs, outputs: Outputs | None = None) -> Path:
    """The meshes with their shape keys (morph targets) and baked animation as one .glb."""
    out = Path(path).resolve()
    target = out
    if outputs is not None:
        target, out = outputs.scratch(path)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
    activate(objs)
    # No resampling: the baked LINEAR keys go out as they are, one per frame.
    call(bpy.ops.export_scene.gltf, f"export {out.name}", filepath=str(target), export_format="GLB",
         use_selection=True, export_animations=True, export_morph=True,
         export_morph_animation=True, export_frame_range=True, export_force_sampling=False,
         export_current_frame=False, export_anim_slide_to_zero=False)
    return out


def import_take(path: str, timecode_fps: int = 0) -> object:
    """The take as the scene's source (the import operator, so errors read the same)."""
    stage(f"reading take {Path(path).name}")
    from ..core.video.decode import EXTENSIONS as VIDEO_EXTENSIONS

    if Path(path).suffix.lower() in VIDEO_EXTENSIONS:   # a performance video: track it first
        call(bpy.ops.facsimile.import_video, f"video {Path(path).name}", filepath=str(path),
             start_frame=1, set_range=True)
        return bpy.context.scene.facsimile_drive.source
    call(bpy.ops.facsimile.import_take, f"take {Path(path).name}", filepath=str(path),
         start_frame=1, timecode_fps=timecode_fps, set_range=True)
    return bpy.context.scene.facsimile_drive.source


def is_map_file(value: str) -> bool:
    """``--map``: a JSON file (a .json name or a path), else a preset's name."""
    return value.lower().endswith(".json") or os.sep in value or "/" in value


def load_map(value: str) -> Path:
    """A retarget map (a JSON file, or a preset by name: shipped VRoid/Rocketbox or the
    user's own) as the scene's map; the file it was read from."""
    if is_map_file(value):
        if not os.path.isfile(value):
            raise CliError(f"map {Path(value).name}: no such file")
        call(bpy.ops.facsimile.load_map, f"map {Path(value).name}", filepath=str(value))
        return Path(value).resolve()
    from .. import map_presets
    from ..core.mapping import MappingError

    try:
        path = map_presets.find(value)
    except MappingError as err:
        raise CliError(f"--map: {err}") from None
    call(bpy.ops.facsimile.load_map_preset, f"map {path.stem}", preset=path.stem)
    return path


def set_fps(fps: float) -> None:
    """The scene rate (takes are placed at it): whole rates exactly, others as fps/fps_base."""
    render = bpy.context.scene.render
    whole = math.ceil(fps - 1e-9)
    render.fps, render.fps_base = whole, whole / fps


def scene_fps() -> float:
    render = bpy.context.scene.render
    return render.fps / render.fps_base


def baked_keys(obj) -> list:
    """The shape keys whose curves Facsimile baked (F-curve group ``Facsimile``)."""
    keys = obj.data.shape_keys
    if keys is None:
        return []
    found = []
    for fc in animation.assigned_fcurves(keys) + animation.placed_fcurves(keys):
        match = _KEY_PATH.match(fc.data_path)
        if match and fc.group is not None and fc.group.name == animation.GROUP:
            found.append(match.group(1))
    return list(dict.fromkeys(found))   # an active-action bake and a strip: once


def _keyed_frames(obj) -> list:
    """Scene frames of the keys Facsimile baked on ``obj`` (one curve: all share them)."""
    keys = obj.data.shape_keys
    for fc in animation.assigned_fcurves(keys) + animation.placed_fcurves(keys):
        if fc.group is not None and fc.group.name == animation.GROUP:
            co = [0.0] * (2 * len(fc.keyframe_points))
            fc.keyframe_points.foreach_get("co", co)
            return [round(x, 3) if x != int(x) else int(x) for x in co[0::2]]
    return []


def drive_mode(obj, mode: str) -> str:
    """How ``facsimile.bake`` drives ``obj`` ('DIRECT'/'SOLVE'), as drive/targets.py decides."""
    if mode != "AUTO":
        return mode
    names = [kb.name for kb in obj.data.shape_keys.key_blocks[1:]]
    # A map that sends channels to named keys (--map VRoid) is driven directly.
    mapped = any(c.target == "KEY" for c in bpy.context.scene.facsimile_drive.channels)
    return "DIRECT" if mapped or direct_rows(names)[0] else "SOLVE"


def bake(objs, **options) -> dict:
    """Bake the scene's source onto ``objs``; frames and targets, for the JSON report."""
    stage(f"baking onto {', '.join(repr(o.name) for o in objs)}")
    activate(objs)
    t0 = time.perf_counter()
    reports = call(bpy.ops.facsimile.bake, "bake", **options)
    frames = _keyed_frames(objs[0])
    mode = bpy.context.scene.facsimile_drive.mode
    return {
        "frames": {"first": frames[0] if frames else None, "last": frames[-1] if frames else None,
                   "count": len(frames), "step": options.get("frame_step", 1)},
        "fps": scene_fps(),
        "targets": [{"object": o.name, "mode": drive_mode(o, mode), "keys": baked_keys(o)} for o in objs],
        "seconds": round(time.perf_counter() - t0, 3),
        "warnings": reports["warnings"], "reports": reports["info"],
    }
