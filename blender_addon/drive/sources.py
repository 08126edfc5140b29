"""Performance sources in the scene: take objects, shape-key animation, animated meshes.

Every source ends up as a :class:`Take` placed at a first scene frame:

* a **take object** is an Empty that Facsimile makes from a take file (Live Link Face CSV,
  Face Cap TXT) or from an encoded mesh: one custom property per ARKit channel, keyed on
  every scene frame (editable in the Graph Editor, saved in the .blend, no add-on needed
  to play it), its own rotation = the head rotation, and two child Empties for the eyes,
  so a Copy Rotation constraint can drive any object or bone;
* any **mesh with ARKit-named shape-key animation** (a glTF/FBX import, an ARKit-rigged
  character) is read by name, whatever the spelling;
* an **animated mesh of any topology** is evaluated frame by frame and encoded
  (``core/takes/mesh_sequence.py``) into a take object.

Rotations: a take's (pitch, yaw, roll) are about ARKit's face axes (X to the subject's
left, Y up, Z out of the face). Blender's face frame (X left, Z up, face toward -Y) maps
those axes to X, Z and -Y, so the Euler angles become (pitch, -roll, yaw) in mode 'YXZ'
(roll innermost, yaw outermost, as a head turns).
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager

import bpy
import numpy as np

from ..core.takes import PlacedTake, Take, TakeError
from ..core.takes.shape_keys import take_from_channels
from ..rig.opsdata import read_mesh
from . import animation

TAKE_MARKER = "facsimile_take"   # custom property on a take object: where it came from
ROTATION_MODE = "YXZ"
EYE_OFFSET = (0.032, -0.06, 0.035)  # where the eye Empties sit on the take object (display only)
_KEY_PATH = re.compile(r'^key_blocks\["(.*)"\]\.value$')
_PROP_PATH = re.compile(r'^\["(.*)"\]$')


def is_take_object(obj) -> bool:
    return obj is not None and obj.type == "EMPTY" and TAKE_MARKER in obj.keys()


def _channels(obj):
    """(names, F-curves) of the named channels of a source object (any names)."""
    if is_take_object(obj):
        curves, pattern = animation.assigned_fcurves(obj), _PROP_PATH
    elif obj is not None and obj.type == "MESH" and obj.data.shape_keys is not None:
        curves, pattern = animation.assigned_fcurves(obj.data.shape_keys), _KEY_PATH
    else:
        return [], []
    names, found = [], []
    for fc in curves:
        match = pattern.match(fc.data_path)
        if match and not fc.mute:
            names.append(bpy.utils.unescape_identifier(match.group(1)))
            found.append(fc)
    return names, found


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


# ------------------------------------------------------------------ take objects

def blender_euler(rotation: np.ndarray) -> np.ndarray:
    """(T, 2|3) take (pitch, yaw[, roll]) -> (T, 3) Blender Euler XYZ values (module doc)."""
    out = np.zeros((len(rotation), 3))
    out[:, 0] = rotation[:, 0]
    out[:, 2] = rotation[:, 1]
    if rotation.shape[1] > 2:
        out[:, 1] = -rotation[:, 2]
    return out


def _key_rotation(obj, bag, frames, rotation) -> None:
    obj.rotation_mode = ROTATION_MODE
    euler = blender_euler(rotation)
    for axis in range(3):
        bag_fc = animation.new_fcurve(bag, "rotation_euler", axis)
        animation.set_keys(bag_fc, frames, euler[:, axis])


def create_take_object(context, take: Take, name: str, start_frame: int):
    """A take object for ``take`` with its first sample on ``start_frame``; returns it.

    The take is resampled to the scene rate so every key sits on a whole frame; it covers
    ``start_frame`` to ``start_frame + n - 1``. On failure everything created is removed.
    """
    scene = context.scene
    # Always resampled, even at the scene's own rate: recorded times jitter (dropped
    # frames, 59.94 vs 60 Hz), and two samples must never land on one frame.
    take = take.resample(scene.render.fps / scene.render.fps_base)
    frames = start_frame + np.arange(take.n_frames)
    created = []
    try:
        obj = bpy.data.objects.new(name, None)
        created.append(obj)
        obj.empty_display_type, obj.empty_display_size = "SPHERE", 0.1
        scene.collection.objects.link(obj)
        obj[TAKE_MARKER] = take.source
        bag = animation.channelbag(obj, "OBJECT", f"{obj.name} Take")
        created.append(obj.animation_data.action)
        for c, channel in enumerate(take.names):
            obj[channel] = float(take.weights[0, c])
            obj.id_properties_ui(channel).update(min=0.0, max=1.0, soft_min=0.0, soft_max=1.0)
            fc = animation.new_fcurve(bag, animation.prop_path(channel))
            animation.set_keys(fc, frames, take.weights[:, c])
        if take.head_rotation is not None:
            _key_rotation(obj, bag, frames, take.head_rotation)
        for side, rotation, sign in (("L", take.eye_rotation_left, 1.0),
                                     ("R", take.eye_rotation_right, -1.0)):
            if rotation is None:
                continue
            eye = bpy.data.objects.new(f"{obj.name} Eye.{side}", None)
            created.append(eye)
            eye.empty_display_type, eye.empty_display_size = "PLAIN_AXES", 0.03
            eye.parent = obj
            eye.location = (sign * EYE_OFFSET[0], EYE_OFFSET[1], EYE_OFFSET[2])
            scene.collection.objects.link(eye)
            eye_bag = animation.channelbag(eye, "OBJECT", f"{eye.name} Take")
            created.append(eye.animation_data.action)
            _key_rotation(eye, eye_bag, frames, rotation)
    except Exception:
        remove_ids(created)
        raise
    return obj


def keyed_frames(obj) -> tuple[int, int]:
    """(first, last) scene frame of a source's keys."""
    return animation.keyed_range(_channels(obj)[1])


def eye_objects(take_obj) -> dict:
    """{'L': Empty, 'R': Empty} of a take object (either may be missing)."""
    return {child.name.rsplit(".", 1)[-1]: child for child in take_obj.children
            if child.name.startswith(f"{take_obj.name} Eye.")}


def remove_ids(ids) -> None:
    """Delete datablocks made by a failed or temporary import (any type)."""
    alive = [i for i in ids if i is not None]
    if alive:
        bpy.data.batch_remove(alive)


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


def evaluated_frames(context, obj, frames):
    """Yield (V,3) world positions of ``obj`` as evaluated at each scene frame.

    Whatever deforms it (shape keys, mesh cache, armature, modifiers) is included; the
    scene returns to its current frame afterwards.
    """
    scene = context.scene
    current = scene.frame_current
    try:
        for frame in frames:
            scene.frame_set(int(frame))
            depsgraph = context.evaluated_depsgraph_get()
            evaluated = obj.evaluated_get(depsgraph)
            mesh = evaluated.to_mesh()
            try:
                co = np.empty(len(mesh.vertices) * 3, np.float32)
                mesh.vertices.foreach_get("co", co)
            finally:
                evaluated.to_mesh_clear()
            matrix = np.array(evaluated.matrix_world, dtype=np.float64)
            yield co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3]
    finally:
        scene.frame_set(current)
