# SPDX-License-Identifier: GPL-3.0-or-later
"""Long work without freezing Blender: one helper for rigging, video import, mesh encoding.

A :class:`Job` is the work of one operator run, safe on a worker thread (ONNX Runtime,
FFmpeg and numpy release the GIL): it reports ``progress``/``status`` and polls
``cancel``. :class:`JobOperator` runs it from the UI: a worker thread, a timer, progress in
the panel (:func:`draw`) and in the status bar, Esc or the panel's ✕ cancel, and every
event the job does not need passes through, so the viewport, the timeline and the other
panels stay usable while it runs. The result is written on the main thread in one go.

The job state is module state, never a property: nothing of a running job is saved into
the .blend, so a file saved mid-run reopens with no stuck progress bar. Loading a file
cancels whatever runs (:func:`on_load_pre`). Headless (no window) the operators call
:meth:`Job.run` inline, as scripts and the command line expect.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable, Optional

import bpy
from bpy.app.handlers import persistent

_RUNNING: dict = {}
"""kind ('rig', 'video', 'encode', …) -> the Job running now; at most one of each kind."""

TICK = 0.1          # seconds between progress updates
FEED_SLICE = 0.05   # seconds of main-thread work (a feeder) per tick: the UI keeps its frame rate


class Job:
    """One long computation: ``work(job)`` returns the result, reporting through the job."""

    def __init__(self, kind: str, work: Callable[["Job"], Any], status: str = "starting"):
        self.kind, self.work = kind, work
        self.progress, self.status = 0.0, status
        self.cancel = False            # set by Esc, ✕ or a file load; the work polls it
        self.result: Any = None
        self.error: Optional[BaseException] = None
        self.done = False

    def report(self, fraction: float, status: Optional[str] = None) -> None:
        """Progress callback for the work (any thread): a fraction in [0, 1] and what it does."""
        self.progress = min(max(float(fraction), 0.0), 1.0)
        if status is not None:
            self.status = status

    def cancelled(self) -> bool:
        """Cancel poll for the work (core functions take it as ``cancelled=``)."""
        return self.cancel

    def run(self) -> None:
        """Do the work here (worker thread, or inline headless); errors are kept, not raised."""
        try:
            self.result = self.work(self)
        except Exception as ex:   # reported on the main thread by the operator
            self.error = ex
        finally:
            self.done = True

    def check(self) -> Any:
        """The result, or the kept error raised (inline runs)."""
        if self.error is not None:
            raise self.error
        return self.result


def running(kind: str) -> Optional[Job]:
    job = _RUNNING.get(kind)
    return job if job is not None and not job.done else None


def cancel_all() -> None:
    for job in list(_RUNNING.values()):
        job.cancel = True
    _RUNNING.clear()


def draw(layout, kind: str, hint: str = "Esc cancels") -> bool:
    """The progress bar and ✕ of a running ``kind`` in a panel; False when none runs."""
    job = running(kind)
    if job is None:
        return False
    row = layout.row(align=True)
    text = f"{job.status}{' — cancelling' if job.cancel else ''}"
    row.progress(factor=job.progress, type="BAR", text=text or "working…")
    row.operator("facsimile.cancel_job", text="", icon="CANCEL").kind = kind
    if hint:
        layout.label(text=f"{hint}; nothing changes until it finishes", icon="INFO")
    return True


def _redraw(context) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "PROPERTIES"}:
                area.tag_redraw()


class JobOperator:
    """Mixin for an operator whose work runs as a :class:`Job`.

    ``start_job`` from ``execute``/``invoke``; the operator implements
    ``job_finished(context, job) -> set`` (main thread: write or report). ``feeder``, if
    given, is called on the main thread for a slice of each tick with the context, and returns
    False when it has nothing more to give now (work that needs Blender's data, such as
    evaluating frames, fed to the worker through a queue); an error it raises cancels the
    job and is reported as the job's.
    """

    job_label = "Facsimile"

    def start_job(self, context, job: Job, feeder: Optional[Callable[[Any], bool]] = None) -> set:
        if running(job.kind) is not None:
            raise RuntimeError(f"a {job.kind} job is already running")   # callers check first
        _RUNNING[job.kind] = job
        self._job, self._feeder, self._feed_error = job, feeder, None
        self._thread = threading.Thread(target=job.run, name=f"facsimile-{job.kind}", daemon=True)
        self._thread.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(TICK, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        self._show(context)
        return {"RUNNING_MODAL"}

    def _show(self, context) -> None:
        job = self._job
        context.window_manager.progress_update(int(job.progress * 100))
        if context.workspace is not None:
            context.workspace.status_text_set(
                f"{self.job_label}: {job.status} {100 * job.progress:.0f} %"
                f"{' — cancelling' if job.cancel else ' — Esc cancels'}")
        _redraw(context)

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC" and event.value == "PRESS":
            job.cancel = True
            return {"RUNNING_MODAL"}   # Esc is the job's while it runs
        if event.type != "TIMER":
            return {"PASS_THROUGH"}    # the rest of Blender keeps working
        if self._feeder is not None and not job.cancel and not job.done:
            deadline = time.perf_counter() + FEED_SLICE
            try:
                while time.perf_counter() < deadline and self._feeder(context):
                    pass
            except Exception as ex:   # the data went away mid-run: stop the worker, report this
                self._feed_error, job.cancel = ex, True
        self._show(context)
        if self._thread.is_alive():
            return {"PASS_THROUGH"}
        self._end(context)
        if self._feed_error is not None:
            job.error = self._feed_error
        return self.job_finished(context, job)

    def cancel(self, context):
        """Blender ends the modal (a file is loaded, the window closes): stop the work."""
        self._job.cancel = True
        self._thread.join(timeout=5.0)
        self._end(context)

    def _end(self, context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
            wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        if _RUNNING.get(self._job.kind) is self._job:
            del _RUNNING[self._job.kind]
        self._job_ended(context)
        _redraw(context)

    def _job_ended(self, context) -> None:
        """Hook: clean up what the feeder changed (the scene frame, a queue)."""


class FACSIMILE_OT_cancel_job(bpy.types.Operator):
    """Stop the running job (the same as Esc); nothing is changed"""

    bl_idname = "facsimile.cancel_job"
    bl_label = "Cancel"
    bl_options = {"INTERNAL"}

    kind: bpy.props.StringProperty(options={"HIDDEN", "SKIP_SAVE"})

    def execute(self, context):
        job = running(self.kind)
        if job is not None:
            job.cancel = True
        return {"FINISHED"}


@persistent
def on_load_pre(*_args):
    cancel_all()


classes = (FACSIMILE_OT_cancel_job,)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.app.handlers.load_pre.append(on_load_pre)


def unregister():
    if on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(on_load_pre)
    cancel_all()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
