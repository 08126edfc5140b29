# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive operators: sources (import, encode, pick), live preview, head/eye rotation
(the retarget map's are in ``map_ops.py``).

Idnames and options are public API. Every operator checks its input before it writes,
reports bad input as one line, and leaves the file as it was (a take object is created
last and removed again if anything fails); each is one undo step.
"""

from __future__ import annotations

import os
import queue
from contextlib import closing

import bpy
import numpy as np
from bpy_extras.io_utils import ImportHelper

from .. import animation, jobs, live_feed, prefs, take_object
from ..core.errors import Cancelled, FacsimileError
from ..core.takes import TakeError
from ..core.video.take import calibrate
from ..core.takes import files as take_files
from ..core.takes.mesh_sequence import BATCH, MeshSequenceEncoder, take_from_codes
from . import preview, sources


def _report_take(op, take, obj) -> None:
    op.report({"INFO"}, f"Facsimile: '{obj.name}' from {take.source}: {take.n_frames} samples, "
                        f"{len(take.names)} channels at {take.fps:g} Hz")
    for warning in take.warnings:
        op.report({"WARNING"}, f"Facsimile: {warning}")


class FACSIMILE_OT_import_take(take_object.NeutralCalibrationOptions, bpy.types.Operator, ImportHelper):
    """Import a performance (Live Link Face CSV, Face Cap TXT, glTF/FBX with ARKit morph animation) as the drive source"""

    bl_idname = "facsimile.import_take"
    bl_label = "Import Take"
    bl_options = {"REGISTER", "UNDO"}

    filter_glob: bpy.props.StringProperty(default=take_files.FILE_FILTER, options={"HIDDEN"})
    start_frame: bpy.props.IntProperty(name="Start frame", default=1,
                                       description="Scene frame of the take's first sample")
    timecode_fps: bpy.props.IntProperty(
        name="Timecode rate", default=0, min=0, max=240,
        description="Live Link Face timecode frame base (0 = detect from the file)")
    set_range: bpy.props.BoolProperty(name="Set scene range", default=True,
                                      description="Make the scene's frame range the take's")
    scene_rate: bpy.props.BoolProperty(
        name="Scene rate from take", default=False,
        description="Set the scene's frame rate to the take's (29.97 as 30/1.001) so every "
                    "recorded sample is a frame; off: the take is resampled to the scene's rate")

    def invoke(self, context, event):
        if not self.properties.is_property_set("start_frame"):
            self.start_frame = context.scene.frame_start
        if self.properties.is_property_set("filepath"):   # dropped on the viewport (import_menu.py)
            return self.execute(context)
        return ImportHelper.invoke(self, context, event)

    def execute(self, context):
        path = bpy.path.abspath(self.filepath)
        render = context.scene.render
        rate = (render.fps, render.fps_base)
        try:
            if take_files.take_kind(path) == "text":
                take = take_files.read_text_take(path, self.timecode_fps or None)
            else:
                take_files.check_file(path)
                take = sources.take_from_scene_file(context, path)
            if self.use_neutral:
                take = calibrated_take(take, self.neutral_first, self.neutral_last)
            if self.scene_rate:
                render.fps, render.fps_base = scene_rate(take.fps)
            name = os.path.splitext(os.path.basename(path))[0]
            obj = take_object.use_take(context, take, f"Take {name}", self.start_frame, self.set_range)
        except FacsimileError as err:
            render.fps, render.fps_base = rate   # nothing changed on failure
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        _report_take(self, take, obj)
        return {"FINISHED"}


def scene_rate(fps: float) -> tuple:
    """(fps, fps_base) of Blender for a recorded rate: whole rates exactly, NTSC rates
    (23.976, 29.97, 59.94) as N/1.001 as Blender's own presets write them."""
    whole = round(fps)
    if abs(fps - whole) < 0.01:
        return max(1, int(whole)), 1.0
    ntsc = round(fps * 1.001)
    if abs(fps - ntsc / 1.001) < 0.01:
        return int(ntsc), 1.001
    return max(1, int(whole)), max(1, int(whole)) / fps


def calibrated_take(take, first: int, last: int):
    """The take with the rest pose of samples ``first``-``last`` (1-based) removed, by the
    video import's own calibration (per-channel median, ``w' = (w - n) / (1 - n)``), and
    their mean head rotation made the rest rotation."""
    import dataclasses

    if last < first:
        raise TakeError("the neutral range ends before it starts")
    if first > take.n_frames:
        raise TakeError(f"the neutral range starts at sample {first}; the take has {take.n_frames}")
    sel = slice(first - 1, min(last, take.n_frames))
    neutral = np.median(take.weights[sel], axis=0)
    changes = {"weights": calibrate(take.weights, neutral, None)}
    if take.head_rotation is not None:
        changes["head_rotation"] = take.head_rotation - take.head_rotation[sel].mean(axis=0)
    return dataclasses.replace(take, **changes)


_END = object()   # the feeder's last item: no more frames


class FACSIMILE_OT_encode_mesh(jobs.JobOperator, bpy.types.Operator):
    """Read the active animated mesh (any topology, any deformation) frame by frame with the expression encoder into a take"""

    bl_idname = "facsimile.encode_mesh"
    bl_label = "Encode Mesh Animation"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Facsimile encode"

    frame_start: bpy.props.IntProperty(name="Start", default=1)
    frame_end: bpy.props.IntProperty(name="End", default=250)
    neutral: bpy.props.EnumProperty(name="Neutral", default="REST", items=(
        ("REST", "Rest mesh", "The mesh without its animation (Basis key, no modifiers)"),
        ("START", "First frame", "The mesh as evaluated on the start frame")))
    stabilize: bpy.props.BoolProperty(
        name="Remove head motion", default=True,
        description="Align every frame rigidly to the neutral first: head turns are not expressions")

    @classmethod
    def poll(cls, context):
        return context.active_object is not None and context.active_object.type == "MESH"

    def invoke(self, context, _event):
        if not self.properties.is_property_set("frame_start"):
            self.frame_start, self.frame_end = context.scene.frame_start, context.scene.frame_end
        return self.execute(context)

    def execute(self, context):
        obj = context.active_object
        if self.frame_end < self.frame_start:
            self.report({"ERROR"}, "Facsimile: the frame range is empty")
            return {"CANCELLED"}
        frames = np.arange(self.frame_start, self.frame_end + 1)
        provider = prefs.provider_choice(context)
        try:
            neutral, faces = sources.rest_mesh(obj)
            if self.neutral == "START":
                with closing(sources.evaluated_frames(context, obj, frames[:1])) as first:
                    neutral = next(first)
            opts = self.options
            if context.window is not None and opts.is_invoke and not (opts.is_repeat or opts.is_repeat_last):
                # From the UI: Blender evaluates frames on the main thread a slice per tick,
                # the encoder reads them on the worker (jobs.py).
                if jobs.running("encode") is not None:
                    raise TakeError("a mesh is already being encoded (Esc or ✕ cancels it)")
                return self._start(context, obj, frames, neutral, faces, provider)
            wm = context.window_manager
            wm.progress_begin(0, len(frames))
            try:
                encoder = MeshSequenceEncoder(neutral, faces, provider, stabilize=self.stabilize)
                # closing(): on an error the scene is back on its frame before the report.
                with closing(sources.evaluated_frames(context, obj, frames)) as evaluated:
                    weights = encoder.encode_all(evaluated, progress=wm.progress_update)
            finally:
                wm.progress_end()
            return self._finish(context, obj, frames, encoder, weights)
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}

    def _finish(self, context, obj, frames, encoder, weights) -> set:
        fps = context.scene.render.fps / context.scene.render.fps_base
        warnings = [] if encoder.facing_ok else [
            "the source mesh does not seem to face -Y; the encoding may be wrong"]
        take = take_from_codes(weights, (frames - frames[0]) / fps, f"'{obj.name}' (encoded)", warnings)
        take_obj = take_object.use_take(context, take, f"Take {obj.name}", self.frame_start, False)
        _report_take(self, take, take_obj)
        return {"FINISHED"}

    # ---- from the UI: a job fed on the main thread

    def _start(self, context, obj, frames, neutral, faces, provider) -> set:
        # The main thread refills the queue once a timer tick (jobs.TICK): its size caps the
        # frames a second (64 frames / 0.1 s: 1.6 ms a frame at best). 64 MB of frames at most.
        frames_in = queue.Queue(maxsize=max(2 * BATCH, min(64, int(64e6 // (12 * max(1, len(neutral)))))))
        stabilize, n = self.stabilize, len(frames)

        def incoming(job):
            while True:
                try:
                    item = frames_in.get(timeout=0.1)
                except queue.Empty:
                    item = None
                if job.cancel:
                    raise Cancelled()
                if item is _END:
                    return
                if item is not None:
                    yield item

        def work(job):
            encoder = MeshSequenceEncoder(neutral, faces, provider, stabilize=stabilize)
            job.report(0.0, f"encoding {n} frames")
            weights = encoder.encode_all(incoming(job),
                                         progress=lambda done: job.report(done / n, f"frame {done} of {n}"))
            return encoder, weights

        self._obj, self._frames, self._next = obj, frames, 0
        self._frames_in, self._current = frames_in, context.scene.frame_current
        return self.start_job(context, jobs.Job("encode", work, status="preparing the neutral"),
                              feeder=self._feed)

    def _feed(self, context) -> bool:
        """One frame evaluated (main thread) onto the queue; False when none can go now."""
        if self._next > len(self._frames) or self._frames_in.full():
            return False
        if self._next == len(self._frames):
            self._frames_in.put_nowait(_END)
        else:
            self._frames_in.put_nowait(sources.evaluate_frame(context, self._obj, self._frames[self._next]))
        self._next += 1
        return True

    def _job_ended(self, context) -> None:
        context.scene.frame_set(self._current)

    def job_finished(self, context, job):
        if job.cancel and (job.error is None or isinstance(job.error, Cancelled)):
            self.report({"WARNING"}, "Facsimile: encoding cancelled, nothing was changed")
            return {"CANCELLED"}
        try:
            encoder, weights = job.check()
            return self._finish(context, self._obj, self._frames, encoder, weights)
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
        except Exception as err:   # a bug, or the mesh deleted mid-run
            self.report({"ERROR"}, f"Facsimile: encoding failed, nothing was changed ({type(err).__name__}: {err})")
        return {"CANCELLED"}


class FACSIMILE_OT_set_source(bpy.types.Operator):
    """Use the active object (a take, or a mesh with ARKit shape-key animation) as the drive source"""

    bl_idname = "facsimile.set_source"
    bl_label = "Use as Source"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        obj = context.active_object
        try:
            placed = sources.read_source(obj, context.scene)   # checks names and keys
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        settings = context.scene.facsimile_drive
        settings.source = obj
        take_object.ensure_channels(settings)
        self.report({"INFO"}, f"Facsimile: '{obj.name}' drives the targets: "
                              f"{len(placed.take.names)} channels, frames {placed.frames[0]}-"
                              f"{placed.frames[-1]}")
        for warning in placed.take.warnings:
            self.report({"WARNING"}, f"Facsimile: {warning}")
        return {"FINISHED"}


class FACSIMILE_OT_preview(bpy.types.Operator):
    """Start or stop driving the selected meshes live from the source while the timeline plays or scrubs"""

    bl_idname = "facsimile.preview"
    bl_label = "Live Preview"
    bl_options = {"REGISTER", "UNDO"}

    enable: bpy.props.BoolProperty(name="Enable", default=True)

    def execute(self, context):
        scene = context.scene
        settings = scene.facsimile_drive
        if not self.enable:
            preview.stop(scene)
            self.report({"INFO"}, "Facsimile: live preview off")
            return {"FINISHED"}
        chosen = [o for o in context.selected_objects if o.type == "MESH" and o != settings.source]
        if not chosen:
            self.report({"ERROR"}, "Facsimile: select the meshes to preview on")
            return {"CANCELLED"}
        try:
            problem = sources.source_problem(settings.source)
            if problem and not live_feed.is_live(scene):   # a live scene needs no take
                raise TakeError(problem)
            take_object.ensure_channels(settings)
            state = preview.start(scene, chosen)
        except (FacsimileError, ValueError) as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        overridden = [o.name for o in chosen if preview.has_key_animation(o)]
        self.report({"INFO"}, f"Facsimile: live preview on {len(state.targets)} mesh(es)")
        if overridden:
            self.report({"WARNING"}, f"Facsimile: keyframes on {', '.join(overridden)} override "
                                     "the preview (Clear Baked Keys to see it)")
        return {"FINISHED"}


ROTATION_PARTS = (("HEAD", "Head", "The take's head rotation"),
                  ("EYE_L", "Left eye", "The subject's left eye (+X)"),
                  ("EYE_R", "Right eye", "The subject's right eye (-X)"))


class FACSIMILE_OT_link_rotation(bpy.types.Operator):
    """Drive the active object, or the active bone in Pose Mode, by the take's head or eye rotation, or the live capture's while it runs (a Copy Rotation constraint)"""

    bl_idname = "facsimile.link_rotation"
    bl_label = "Link Rotation"
    bl_options = {"REGISTER", "UNDO"}

    part: bpy.props.EnumProperty(name="Rotation", items=ROTATION_PARTS, default="HEAD")

    def execute(self, context):
        # While live, the live Empties carry the rotation (set, not keyed, at the packet rate).
        live = live_feed.rotation_object(context.scene)
        take = live or context.scene.facsimile_drive.source
        if not take_object.is_take_object(take):
            self.report({"ERROR"}, "Facsimile: the source is not a take with rotations")
            return {"CANCELLED"}
        label = dict((p[0], p[1].lower()) for p in ROTATION_PARTS)[self.part]
        driver = take if self.part == "HEAD" else take_object.eye_objects(take).get(self.part[-1])
        has_rotation = driver is not None and (live is not None or any(
            fc.data_path == "rotation_euler" for fc in animation.assigned_fcurves(driver)))
        if not has_rotation:
            self.report({"ERROR"}, f"Facsimile: the take has no {label} rotation")
            return {"CANCELLED"}
        owner = context.active_pose_bone if context.mode == "POSE" else context.active_object
        if owner is None or owner == take or owner == driver:
            self.report({"ERROR"}, "Facsimile: select the object or bone to rotate")
            return {"CANCELLED"}
        name = f"Facsimile {label.capitalize()}"
        constraint = owner.constraints.get(name) or owner.constraints.new("COPY_ROTATION")
        constraint.name, constraint.target = name, driver
        constraint.owner_space = constraint.target_space = "LOCAL"
        self.report({"INFO"}, f"Facsimile: '{owner.name}' follows the take's {label} rotation "
                              f"('{name}')")
        return {"FINISHED"}


classes = (FACSIMILE_OT_import_take, FACSIMILE_OT_encode_mesh, FACSIMILE_OT_set_source,
           FACSIMILE_OT_preview, FACSIMILE_OT_link_rotation)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
