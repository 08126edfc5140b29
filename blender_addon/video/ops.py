# SPDX-License-Identifier: GPL-3.0-or-later
"""``facsimile.import_video``: a performance video becomes the drive source.

The idname and options are public API. Picked in the file browser (UI) the operator is
a :mod:`jobs` job: decoding and face tracking run on a worker thread, the Video panel and
the status bar show progress with the frames per second, Esc or ✕ cancels and leaves the
file untouched, Blender stays usable. Run from a script, the CLI or headless it works
synchronously. Either way the result is the same take object every other source makes
(``take_object.use_take``), so live preview, solving onto custom rigs and
baking work on it unchanged.

Tracking is the slow part; calibration, gains and smoothing are cheap. The last tracked
video is kept in memory (:data:`_TRACKS`, by path, size and modification time), so
changing those options in the redo panel re-runs in a fraction of a second.
"""

from __future__ import annotations

import os

import bpy

from bpy_extras.io_utils import ImportHelper

from .. import jobs, prefs, take_object
from ..core.cache import BoundedCache
from ..core.errors import Cancelled, FacsimileError
from ..core.takes import TakeError
from ..core.video import take as core_video
from ..core.video import decode

FILE_FILTER = ";".join(f"*{ext}" for ext in decode.EXTENSIONS)
_TRACKS = BoundedCache(max_size=2)   # (path, size, mtime, mirrored, start, stop) -> VideoTrack


def _track_key(path: str, options) -> tuple:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns, options.mirrored, options.start, options.stop)


def cached_track(path: str, options):
    """The kept VideoTrack of ``path`` for these tracking options, or None."""
    try:
        return _TRACKS.get(_track_key(path, options))
    except OSError:
        return None


def _keep_track(path: str, options, track) -> None:
    _TRACKS.put(_track_key(path, options), track)


def clear_cache() -> None:
    _TRACKS.clear()


class VideoJob(jobs.Job):
    """Decode + track one video on any thread; ``progress``/``status`` are read by the UI."""

    def __init__(self, path: str, options):
        super().__init__("video", self._track, status="opening")
        self.path, self.options = path, options

    def _track(self, _job):
        return core_video.track_video(self.path, self.options, self.report, self.cancelled)

    @property
    def track(self):
        return self.result


class FACSIMILE_OT_import_video(take_object.NeutralCalibrationOptions, jobs.JobOperator, bpy.types.Operator,
                                ImportHelper):
    """Track a performance video (mp4, mov, … any size and frame rate) with MediaPipe's face landmarker and make it the drive source"""

    bl_idname = "facsimile.import_video"
    bl_label = "Import Video"
    bl_options = {"REGISTER", "UNDO"}
    job_label = "Facsimile video"

    filter_glob: bpy.props.StringProperty(default=FILE_FILTER, options={"HIDDEN"})
    start_frame: bpy.props.IntProperty(name="Start frame", default=1,
                                       description="Scene frame of the video's first tracked frame")
    set_range: bpy.props.BoolProperty(name="Set scene range", default=True,
                                      description="Make the scene's frame range the take's")
    video_first: bpy.props.IntProperty(name="First video frame", default=1, min=1,
                                       description="First frame of the video to import (1 = its start)")
    video_last: bpy.props.IntProperty(name="Last video frame", default=0, min=0,
                                      description="Last frame of the video to import (0 = its end)")
    mirrored: bpy.props.BoolProperty(
        name="Mirrored video", default=False,
        description="The video is mirrored (a selfie recorded as the preview shows it): flip it "
                    "back so the actor's left drives the character's left")
    gain_brows: bpy.props.FloatProperty(name="Brows", default=1.0, min=0.0, soft_max=3.0,
                                        description="Gain on the brow channels after calibration")
    gain_eyes: bpy.props.FloatProperty(name="Eyes", default=1.0, min=0.0, soft_max=3.0,
                                       description="Gain on blinks, squints, eyeWide and gaze")
    gain_mouth: bpy.props.FloatProperty(name="Mouth", default=1.0, min=0.0, soft_max=3.0,
                                        description="Gain on the jaw and mouth channels")
    gain_cheeks: bpy.props.FloatProperty(name="Cheeks", default=1.0, min=0.0, soft_max=3.0,
                                         description="Gain on cheekPuff, cheekSquint and noseSneer "
                                                     "(MediaPipe reads cheekSquint and noseSneer weakly)")
    smoothing: bpy.props.BoolProperty(name="Smooth", default=True,
                                      description="One-Euro filter: steady at rest, fast on motion")
    min_cutoff: bpy.props.FloatProperty(
        name="Min cutoff", default=core_video.OneEuro.min_cutoff, min=0.01, soft_max=10.0,
        description="Hz; lower is steadier at rest but lags on slow motion")
    beta: bpy.props.FloatProperty(name="Speed", default=core_video.OneEuro.beta, min=0.0, soft_max=20.0,
                                  description="Higher follows fast motion (blinks) with less lag")

    def draw(self, _context):
        layout = self.layout
        layout.use_property_split = True
        col = layout.column(heading="Place")
        col.prop(self, "start_frame")
        col.prop(self, "set_range")
        col = layout.column(heading="Video")
        col.prop(self, "video_first")
        col.prop(self, "video_last")
        col.prop(self, "mirrored")
        col = layout.column(heading="Calibrate")
        col.prop(self, "use_neutral")
        sub = col.column(align=True)
        sub.active = self.use_neutral
        sub.prop(self, "neutral_first")
        sub.prop(self, "neutral_last")
        col = layout.column(heading="Gain", align=True)
        for name in ("gain_brows", "gain_eyes", "gain_mouth", "gain_cheeks"):
            col.prop(self, name)
        col = layout.column(heading="Smooth")
        col.prop(self, "smoothing", text="One-Euro")
        sub = col.column(align=True)
        sub.active = self.smoothing
        sub.prop(self, "min_cutoff")
        sub.prop(self, "beta")

    # ---- options

    def video_options(self, context) -> core_video.VideoOptions:
        neutral = None
        if self.use_neutral:
            neutral = (self.neutral_first - 1, self.neutral_last - 1)
        smoothing = core_video.OneEuro(self.min_cutoff, self.beta) if self.smoothing else None
        return core_video.VideoOptions(
            neutral_range=neutral, smoothing=smoothing, mirrored=self.mirrored,
            gains={"brows": self.gain_brows, "eyes": self.gain_eyes, "mouth": self.gain_mouth,
                   "cheeks": self.gain_cheeks},
            start=self.video_first - 1, stop=self.video_last or None,
            provider=prefs.provider_choice(context))

    def _check(self, path: str) -> None:
        if not os.path.isfile(path):
            raise TakeError(f"'{os.path.basename(path)}': no such file")
        if self.video_last and self.video_last < self.video_first:
            raise TakeError("the last video frame is before the first")
        if self.use_neutral and self.neutral_last < self.neutral_first:
            raise TakeError("the neutral range ends before it starts")

    # ---- finishing (main thread)

    def _finish(self, context, path: str, options, track) -> set:
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            take = core_video.take_from_track(track, options)
            obj = take_object.use_take(context, take, f"Take {name}", self.start_frame, self.set_range)
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        state = context.scene.facsimile_video
        state.last_frames, state.last_fps = take.n_frames, track.tracking_fps
        state.last_found = float(track.found.mean())
        state.last_source = obj.name
        self.report({"INFO"}, f"Facsimile: '{obj.name}' from {take.source}: {take.n_frames} frames at "
                              f"{take.fps:g} fps, face in {100 * track.found.mean():.0f} %, tracked at "
                              f"{track.tracking_fps:.0f} frames/s")
        for warning in take.warnings:
            self.report({"WARNING"}, f"Facsimile: {warning}")
        return {"FINISHED"}

    # ---- synchronous (scripts, CLI, headless) and redo

    def execute(self, context):
        path = bpy.path.abspath(self.filepath)
        try:
            self._check(path)
            options = self.video_options(context)
            track = cached_track(path, options)
            if track is None:
                # Picked in the file browser: track in the background. Scripts, the CLI and
                # redo (F9, which must finish in one call) track right here.
                opts = self.options
                if context.window is not None and opts.is_invoke and not (opts.is_repeat or opts.is_repeat_last):
                    return self._start_modal(context, path, options)
                job = VideoJob(path, options)
                job.run()
                track = job.check()
                _keep_track(path, options, track)
        except FacsimileError as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        return self._finish(context, path, options, track)

    # ---- modal (UI): a worker thread, Esc cancels

    def invoke(self, context, event):
        if not self.properties.is_property_set("start_frame"):
            self.start_frame = context.scene.frame_start
        if self.properties.is_property_set("filepath"):   # dropped on the viewport: options first
            return context.window_manager.invoke_props_dialog(self, width=360)
        return ImportHelper.invoke(self, context, event)

    def _start_modal(self, context, path, options):
        if jobs.running("video") is not None:
            raise TakeError("a video is already being imported (Esc or ✕ cancels it)")
        self._path, self._options = path, options
        return self.start_job(context, VideoJob(path, options))

    def job_finished(self, context, job):
        if isinstance(job.error, Cancelled) or (job.cancel and job.track is None):
            self.report({"WARNING"}, "Facsimile: video import cancelled, nothing was changed")
            return {"CANCELLED"}
        if job.error is not None:
            message = str(job.error) if isinstance(job.error, FacsimileError) else \
                f"video import failed ({type(job.error).__name__}: {job.error})"
            self.report({"ERROR"}, f"Facsimile: {message}")
            return {"CANCELLED"}
        _keep_track(self._path, self._options, job.track)
        return self._finish(context, self._path, self._options, job.track)


classes = (FACSIMILE_OT_import_video,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    clear_cache()
