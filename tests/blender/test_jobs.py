# SPDX-License-Identifier: GPL-3.0-or-later
"""The long-work helper (jobs.py): progress and cancel through the job object, nothing of a
running job saved into the .blend, a file load cancelling what runs."""

from __future__ import annotations

import threading

import pytest


def test_job_reports_progress_and_cancels(addon):
    from bl_ext.user_default.facsimile import jobs
    from bl_ext.user_default.facsimile.core.errors import Cancelled

    def work(job):
        for i in range(4):
            job.report((i + 1) / 4, f"step {i + 1}")
        return "done"

    job = jobs.Job("test", work)
    thread = threading.Thread(target=job.run)
    thread.start()
    thread.join(timeout=30)
    assert job.done and job.check() == "done"
    assert job.progress == pytest.approx(1.0) and job.status == "step 4"

    gate = threading.Event()

    def slow(job):
        gate.wait(30)
        if job.cancelled():
            raise Cancelled()
        return "finished anyway"

    job = jobs.Job("test", slow)
    thread = threading.Thread(target=job.run)
    thread.start()
    job.cancel = True          # what Esc and the ✕ (facsimile.cancel_job) set
    gate.set()
    thread.join(timeout=30)
    assert isinstance(job.error, Cancelled) and job.result is None
    with pytest.raises(Cancelled):
        job.check()


def test_cancel_button_stops_the_running_job(addon):
    import bpy

    from bl_ext.user_default.facsimile import jobs

    job = jobs.Job("video", lambda j: None)
    jobs._RUNNING["video"] = job      # as JobOperator.start_job registers it
    try:
        assert jobs.running("video") is job
        assert bpy.ops.facsimile.cancel_job(kind="video") == {"FINISHED"}
        assert job.cancel
    finally:
        jobs._RUNNING.clear()


def test_job_state_is_not_saved_into_the_file(addon, tmp_path):
    """A file saved while a job runs reopens with nothing running: no stuck progress bar,
    and the import is not refused. Loading a file cancels the job that ran."""
    import bpy

    from bl_ext.user_default.facsimile import jobs

    for group in (bpy.types.Scene.bl_rna.properties["facsimile_rig"].fixed_type,
                  bpy.types.Scene.bl_rna.properties["facsimile_video"].fixed_type):
        assert not {"running", "progress", "stage", "status", "cancel_requested"} & set(group.properties.keys())
    job = jobs.Job("video", lambda j: None)
    jobs._RUNNING["video"] = job
    path = str(tmp_path / "mid_job.blend")
    bpy.ops.wm.save_as_mainfile(filepath=path)
    bpy.ops.wm.open_mainfile(filepath=path)
    assert job.cancel and jobs.running("video") is None
    # An import is accepted again (it fails on the missing file, not on a running job).
    with pytest.raises(RuntimeError, match="no such file"):
        bpy.ops.facsimile.import_video(filepath=str(tmp_path / "missing.mp4"))
