# SPDX-License-Identifier: GPL-3.0-or-later
"""Headless jobs behind the CLI: load meshes, rig, bake a take, save .blend and .glb.

Each job runs the add-on's own operators (``facsimile.rig``, ``facsimile.import_take``,
``facsimile.bake``), so a pipeline gets exactly what an artist gets in the UI, and the
operators' one-line reports become the CLI's error messages.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import bpy

from ..core.errors import FacsimileError

MESH_EXTENSIONS = (".obj", ".glb", ".gltf", ".fbx", ".blend")


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


def call(op: Callable, what: str, **kwargs) -> None:
    try:
        result = op(**kwargs)
    except RuntimeError as err:
        raise CliError(f"{what}: {_operator_error(err)}") from None
    if result != {"FINISHED"}:
        raise CliError(f"{what}: cancelled")


def new_file() -> None:
    """An empty scene. ``read_homefile`` keeps the preferences, so the add-on stays enabled
    (``read_factory_settings`` would disable it under ``blender --command``)."""
    bpy.ops.wm.read_homefile(use_empty=True)


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


def activate(objs) -> None:
    for obj in bpy.context.view_layer.objects:
        obj.select_set(False)
    for obj in objs:
        obj.select_set(True)
    bpy.context.view_layer.objects.active = objs[0]


def rig(obj, naming: str = "ARKIT", others=(), all_keys: bool = False) -> None:
    """Rig ``obj``; ``others`` (the file's other meshes) are selected with it, so separate
    eyeballs among them get their eyeLook* keys (rig/eye_objects.py)."""
    stage(f"rigging '{obj.name}' ({len(obj.data.vertices)} vertices)")
    activate([obj, *[o for o in others if o is not obj]])
    call(bpy.ops.facsimile.rig, f"rig '{obj.name}'", naming=naming, all_keys=all_keys)


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


def save_blend(path: str) -> Path:
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    bpy.ops.wm.save_as_mainfile(filepath=str(out), check_existing=False)
    return out


def export_glb(path: str, objs) -> Path:
    """The meshes with their shape keys (morph targets) and baked animation as one .glb."""
    out = Path(path).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    activate(objs)
    # No resampling: the baked LINEAR keys go out as they are, one per frame.
    call(bpy.ops.export_scene.gltf, f"export {out.name}", filepath=str(out), export_format="GLB",
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


def bake(objs, **options) -> None:
    stage(f"baking onto {', '.join(repr(o.name) for o in objs)}")
    activate(objs)
    call(bpy.ops.facsimile.bake, "bake", **options)
