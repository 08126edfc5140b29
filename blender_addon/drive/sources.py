# SPDX-License-Identifier: GPL-3.0-or-later
"""Performance sources in the scene: take objects, shape-key animation, animated meshes.

Every source ends up as a :class:`Take` placed at a first scene frame:

* a **take object** (``take_object.py``) is an Empty that Facsimile makes from a take file,
  a video or an encoded mesh;
* any **mesh with ARKit-named shape-key animation** (a glTF/FBX import, an ARKit-rigged
  character) is read by name, whatever the spelling;
* an **animated mesh of any topology** is evaluated frame by frame and encoded
  (``core/takes/mesh_sequence.py``) into a take object.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager

import bpy
import numpy as np

from ..core.takes import PlacedTake, Take, TakeError
from ..core.takes.shape_keys import take_from_channels
from .. import animation, take_object
from ..mesh_io import read_mesh
from ..take_object import is_take_object, remove_ids

_KEY_PATH = re.compile(r'^key_blocks\["(.*)"\]\.value$')


def _channels(obj):
    """(names, F-curves) of the named channels of a source object (any names)."""
    if is_take_object(obj):
        return take_object.channel_curves(obj)
    if obj is not None and obj.type == "MESH" and obj.data.shape_keys is not None:
        return animation.named_fcurves(animation.assigned_fcurves(obj.data.shape_keys), _KEY_PATH)
    return [], []


def source_problem(obj) -> str:
    """Why ``obj`` cannot be a source ('' when it can): for polls and reports."""
    if obj is None:
        return "no source: import a take, or pick an object with ARKit shape-key animation"
    if obj.type not in {"EMPTY", "MESH"}:
        return f"'{obj.name}' is a {obj.type.lower()}, not a take or a mesh"
    if not _channels(obj)[1]:
        return (f"'{obj.name}' has no animated ARKit shape keys; to use any other animated mesh, "
                "encode it first (Encode Mesh Animation)")
    return ""


def read_source(obj, scene) -> PlacedTake:
    """The performance of a source object, sampled at every scene frame its keys cover."""
    problem = source_problem(obj)
    if problem:
        raise TakeError(problem)
    names, curves = _channels(obj)
    first, last = animation.keyed_range(curves)
    frames = np.arange(first, last + 1)
    values = np.stack([animation.sample(fc, frames) for fc in curves], axis=1)
    fps = scene.render.fps / scene.render.fps_base
    take = take_from_channels(names, frames, values, fps, source=f"'{obj.name}'")
    return PlacedTake(take, first, obj)


# ------------------------------------------------------------------ glTF / FBX takes

_IMPORTERS = {".glb": "gltf", ".gltf": "gltf", ".fbx": "fbx"}


def _all_ids() -> set:
    return {idb for attr in dir(bpy.data) if isinstance(getattr(bpy.data, attr, None),
                                                          bpy.types.bpy_prop_collection)
            for idb in getattr(bpy.data, attr) if isinstance(idb, bpy.types.ID)}


@contextmanager
def _imported(context):
    """Import inside: everything the importer makes is removed on the way out, and the
    selection, active object, frame range and rate it changed are put back."""
    scene, layer = context.scene, context.view_layer
    settings = (scene.frame_start, scene.frame_end, scene.render.fps, scene.render.fps_base)
    active, selected = layer.objects.active, set(context.selected_objects)
    before = _all_ids()
    try:
        yield
    finally:
        # Selection first, while the view layer still lists the imported objects.
        scene.frame_start, scene.frame_end, scene.render.fps, scene.render.fps_base = settings
        for obj in layer.objects:
            obj.select_set(obj in selected)
        layer.objects.active = active
        remove_ids(list(_all_ids() - before))


def take_from_scene_file(context, path: str) -> Take:
    """The ARKit morph animation of a glTF/FBX file, read and then removed from the scene.

    The mesh with the most animated ARKit channels is the performer. Nothing the import
    made is left behind, whether the read succeeds or not.
    """
    name, ext = os.path.basename(path), os.path.splitext(path)[1].lower()
    if ext not in _IMPORTERS:
        raise TakeError(f"'{name}': not a glTF or FBX file")
    with _imported(context):
        before = _all_ids()
        try:
            getattr(bpy.ops.import_scene, _IMPORTERS[ext])(filepath=path)
        except RuntimeError as err:
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unknown error"
            raise TakeError(f"'{name}': cannot import the file ({reason})") from None
        meshes = [o for o in _all_ids() - before if isinstance(o, bpy.types.Object)
                  and o.type == "MESH"]
        performer = max(meshes, key=lambda o: len(_channels(o)[1]), default=None)
        if performer is None or not _channels(performer)[1]:
            raise TakeError(f"'{name}': no mesh with shape-key (morph) animation")
        placed = read_source(performer, context.scene)
    placed.take.source = f"'{name}'"
    return placed.take


# ------------------------------------------------------------------ animated meshes

def rest_mesh(obj):
    """(verts_world (V,3), faces (F,3)) of the mesh at rest (its Basis, no modifiers)."""
    arrays = read_mesh(obj)
    return arrays.verts_world, arrays.faces


def evaluate_frame(context, obj, frame: int) -> np.ndarray:
    """(V,3) world positions of ``obj`` as evaluated at scene ``frame`` (main thread only).

    Whatever deforms it (shape keys, mesh cache, armature, modifiers) is included. The
    evaluated object's own mesh is read in bulk: no to_mesh() copy per frame, and the
    ``position`` attribute's contiguous array rather than ``vertices``' ``co`` (a per-vertex
    proxy, ~4x slower to read).
    """
    context.scene.frame_set(int(frame))
    evaluated = obj.evaluated_get(context.evaluated_depsgraph_get())
    mesh = evaluated.data
    co = np.empty(3 * len(mesh.vertices), np.float32)
    position = mesh.attributes.get("position")
    if position is not None and position.data_type == "FLOAT_VECTOR" and position.domain == "POINT":
        position.data.foreach_get("vector", co)
    else:   # not expected in Blender 4.2+, where every mesh stores its positions so
        mesh.vertices.foreach_get("co", co)
    matrix = np.array(evaluated.matrix_world, dtype=np.float32)
    return co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]


def evaluated_frames(context, obj, frames):
    """Yield :func:`evaluate_frame` at each scene frame; the scene returns to its current
    frame afterwards."""
    scene = context.scene
    current = scene.frame_current
    try:
        for frame in frames:
            yield evaluate_frame(context, obj, frame)
    finally:
        scene.frame_set(current)
