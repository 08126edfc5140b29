# SPDX-License-Identifier: GPL-3.0-or-later
"""Take objects: a performance as an Empty in the scene, and making one the drive source.

A take object is what Facsimile makes from a take file (Live Link Face CSV, Face Cap TXT,
glTF/FBX), a performance video or an encoded mesh: one custom property per ARKit channel,
keyed on every scene frame (editable in the Graph Editor, saved in the .blend, no add-on
needed to play it), its own rotation = the head rotation, and two child Empties for the
eyes, so a Copy Rotation constraint can drive any object or bone. Both the drive and the
video features make them, through :func:`use_take`.

Rotations: a take's (pitch, yaw, roll) are about ARKit's face axes (X to the subject's
left, Y up, Z out of the face). Blender's face frame (X left, Z up, face toward -Y) maps
those axes to X, Z and -Y, so the Euler angles become (pitch, -roll, yaw) in mode 'YXZ'
(roll innermost, yaw outermost, as a head turns).
"""

from __future__ import annotations

import re

import bpy
import numpy as np

from . import animation
from .core import arkit
from .core.takes import Take

TAKE_MARKER = "facsimile_take"   # custom property on a take object: where it came from
ROTATION_MODE = "YXZ"
EYE_OFFSET = (0.032, -0.06, 0.035)  # where the eye Empties sit on the take object (display only)
_PROP_PATH = re.compile(r'^\["(.*)"\]$')



class NeutralCalibrationOptions:
    """Import options shared by Import Take and Import Video: a stretch where the actor holds a
    neutral face becomes the rest pose (``core.video.take.calibrate``)."""

    use_neutral: bpy.props.BoolProperty(
        name="Calibrate on neutral", default=False,
        description="Samples (video frames) where the actor holds a neutral face: their expression "
                    "becomes the rest pose (weights 0) and their head rotation the rest rotation")
    neutral_first: bpy.props.IntProperty(name="Neutral from", default=1, min=1,
                                         description="First neutral sample (1 = the first)")
    neutral_last: bpy.props.IntProperty(name="Neutral to", default=15, min=1,
                                        description="Last neutral sample")

def is_take_object(obj) -> bool:
    return obj is not None and obj.type == "EMPTY" and TAKE_MARKER in obj.keys()


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


def channel_curves(obj):
    """(names, F-curves) of a take object's channels (its custom properties), unmuted."""
    return animation.named_fcurves(animation.assigned_fcurves(obj), _PROP_PATH)


def keyed_frames(obj) -> tuple[int, int]:
    """(first, last) scene frame of a take object's keys."""
    return animation.keyed_range(channel_curves(obj)[1])


def eye_objects(take_obj) -> dict:
    """{'L': Empty, 'R': Empty} of a take object (either may be missing)."""
    return {child.name.rsplit(".", 1)[-1]: child for child in take_obj.children
            if child.name.startswith(f"{take_obj.name} Eye.")}


def remove_ids(ids) -> None:
    """Delete datablocks made by a failed or temporary import (any type)."""
    alive = [i for i in ids if i is not None]
    if alive:
        bpy.data.batch_remove(alive)


def ensure_channels(settings) -> None:
    """Fill the drive's retarget map with the 52 identity entries if it is empty (operators
    only: UI draw code may not write)."""
    if len(settings.channels) == len(arkit.ARKIT_52):
        return
    settings.channels.clear()
    for name in arkit.ARKIT_52:
        settings.channels.add().name = name


def use_take(context, take: Take, name: str, start: int, set_range: bool):
    """Create the take object, make it the scene's drive source; the scene range follows
    if asked."""
    scene = context.scene
    obj = create_take_object(context, take, name, start)
    settings = scene.facsimile_drive
    settings.source = obj
    ensure_channels(settings)
    if set_range:
        scene.frame_start, scene.frame_end = keyed_frames(obj)
    return obj
