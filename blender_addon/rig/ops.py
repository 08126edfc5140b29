# SPDX-License-Identifier: GPL-3.0-or-later
"""Rig operators: ``facsimile.predict_regions``, ``facsimile.generate_shapes``, ``facsimile.rig``.

Their idnames and options are public API that TDs script against.

Run from a script or headless (``execute``) they work synchronously. Run from the
UI (``invoke``) they are modal: the networks run on a worker thread (ONNX Runtime
releases the GIL), the panel shows a progress bar, Esc cancels, and the results are
written on the main thread in one go. Nothing is written until everything is
computed, and the writes roll back if any fails, so a cancelled or failed run
leaves the mesh exactly as it was; a finished one is a single undo step.
"""

from __future__ import annotations

import threading

import bpy
import numpy as np

from .. import mesh_io, prefs
from ..options import EXISTING_ITEMS
from ..core import rig as core_rig
from ..core.errors import Cancelled, FacsimileError
from ..core.regions import REGION_NAMES, group_name
from . import eye_objects, opsdata

NAMING_ITEMS = (
    ("ARKIT", "ARKit", "ARKit camelCase: eyeBlinkLeft"),
    ("ARKIT_LR", "ARKit _L/_R", "eyeBlink_L (Face Cap, ARKit raw values)"),
    ("ICT53", "ICT 53", "ICT-FaceKit's 53 shapes: browInnerUp and cheekPuff split in halves"),
)
LOCALIZATION_ITEMS = (
    ("PREDICTED", "Predicted", "Localize expressions with the predicted region weights"),
    ("PAINTED", "Painted FX_ groups", "Localize expressions with the FX_ vertex groups as painted"),
)


def _target(context):
    obj = context.active_object
    if obj is None or obj.type != "MESH":
        return None
    return obj


class _RigJob:
    """The computation of one operator run, safe to run on a worker thread."""

    def __init__(self, arrays: mesh_io.MeshArrays, painted: np.ndarray | None, strength: float, provider: str,
                 eyes=(), eye_arrays=()):
        self.arrays, self.painted, self.strength, self.provider = arrays, painted, strength, provider
        self.eyes, self.eye_arrays = list(eyes), list(eye_arrays)     # separate eye objects (issue 13)
        self.progress, self.stage = 0.0, "starting"
        self.cancel = False
        self.result: core_rig.RigResult | None = None
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            self.result = core_rig.predict(
                self.arrays.verts_world, self.arrays.faces, provider=self.provider,
                painted_weights=self.painted, strength=self.strength,
                progress=self._on_progress, cancelled=lambda: self.cancel,
                eye_objects=[a.verts_world for a in self.eye_arrays])
        except Exception as ex:  # reported on the main thread
            self.error = ex

    def _on_progress(self, fraction: float, stage: str) -> None:
        self.progress, self.stage = fraction, stage


class _RigOperatorBase:
    """Shared flow: gather (main thread) -> compute (thread or inline) -> write (main thread)."""

    bl_options = {"REGISTER", "UNDO"}
    writes_groups = False
    writes_shapes = False

    @classmethod
    def poll(cls, context):
        return _target(context) is not None and context.mode == "OBJECT"

    # ---- stages

    def _gather(self, context):
        obj = _target(context)
        if obj is None:
            raise core_rig.RigError("select a mesh object")
        if self.writes_groups and opsdata.fx_groups(obj) and not getattr(self, "replace_groups", False):
            raise core_rig.RigError(
                "this mesh already has FX_ region groups; enable 'Replace FX_ groups' to overwrite them")
        painted = None
        if self.writes_shapes and getattr(self, "localization", "PREDICTED") == "PAINTED":
            painted = opsdata.read_region_weights(obj)
            if painted is None:
                raise core_rig.RigError("no FX_ groups to localize with: run Predict Regions first, or choose "
                                        "'Predicted' localization")
        arrays = mesh_io.read_mesh(obj)
        eyes = eye_objects.candidates(context, obj) if self.writes_shapes else []
        return obj, _RigJob(arrays, painted, getattr(self, "strength", 1.0), prefs.provider_choice(context),
                            eyes, eye_objects.read(eyes))

    def _write(self, context, obj, job: _RigJob) -> set:
        result = job.result
        txn = opsdata.Transaction(obj)
        eye_txns, eye_names, all_keys = [], [], self._all_keys(context)
        report = []
        try:
            if self.writes_groups:
                txn.remove_fx_groups([group_name(r) for r in REGION_NAMES])
                txn.write_region_groups(result.region_weights)
                report.append(f"{len(REGION_NAMES)} FX_ region groups")
            if self.writes_shapes:
                txn.ensure_basis()
                statuses = eye_objects.write_shapes(txn, result, job.arrays, self.naming,
                                                    self.existing == "REPLACE", all_keys)
                eye_txns, eye_names = eye_objects.write_eye_keys(job.eyes, job.eye_arrays, result, self.naming,
                                                                 self.existing == "REPLACE")
                report.append(f"{len(statuses['added'])} shape keys added")
                if statuses["replaced"]:
                    report.append(f"{len(statuses['replaced'])} replaced")
                if statuses["skipped"]:
                    report.append(f"{len(statuses['skipped'])} existing kept (skipped: "
                                  f"{', '.join(statuses['skipped'][:4])}{'…' if len(statuses['skipped']) > 4 else ''})")
            obj.data.update()
        except Exception:
            for eye_txn in reversed(eye_txns):
                eye_txn.rollback()
            txn.rollback()
            raise
        state = context.scene.facsimile_rig
        state.last_provider = result.provider
        state.last_seconds = float(sum(result.timings.values()))
        jaw = int(result.jaw_part.sum())
        still = eye_objects.still_parts(result)
        msg = f"Facsimile: {', '.join(report)} on '{obj.name}' in {state.last_seconds:.2f} s ({result.provider})"
        if jaw:
            msg += f"; {jaw} vertices of loose parts (lower teeth, tongue) follow the jaw"
        if still:
            msg += f"; {still} vertices of loose parts (upper teeth, …) left still"
        if self.writes_shapes:
            msg += "; " + eye_objects.report_line(result, all_keys and self.naming != "ICT53", eye_names)
        state.last_report = msg
        self.report({"INFO"}, msg)
        if not result.facing_ok:
            self.report({"WARNING"}, "Facsimile: the face does not seem to look toward -Y (Blender's front); "
                                     "results may be wrong — rotate the head to face -Y and apply rotation")
        return {"FINISHED"}

    def _all_keys(self, context) -> bool:
        """The operator's "Create all 52 keys", defaulting to the scene's option."""
        if not hasattr(self, "all_keys"):
            return False
        if self.properties.is_property_set("all_keys"):
            return self.all_keys
        return context.scene.facsimile_rig.all_keys

    # ---- synchronous (scripts, headless)

    def execute(self, context):
        try:
            obj, job = self._gather(context)
            job.run()
            if job.error is not None:
                raise job.error
            return self._write(context, obj, job)
        except FacsimileError as ex:
            self.report({"ERROR"}, f"Facsimile: {ex}")
            return {"CANCELLED"}
        except Exception as ex:  # a bug or a full disk: the mesh was rolled back, say what happened
            self.report({"ERROR"}, f"Facsimile: failed, nothing was changed ({type(ex).__name__}: {ex})")
            return {"CANCELLED"}

    # ---- modal (UI): compute on a worker thread, Esc cancels

    def invoke(self, context, _event):
        if context.window is None:
            return self.execute(context)
        try:
            self._obj, self._job = self._gather(context)
        except FacsimileError as ex:
            self.report({"ERROR"}, f"Facsimile: {ex}")
            return {"CANCELLED"}
        self._thread = threading.Thread(target=self._job.run, name="facsimile-rig", daemon=True)
        self._thread.start()
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 100)
        _set_progress(context, 0.0, "starting", True)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC":
            job.cancel = True
        if event.type != "TIMER":
            return {"RUNNING_MODAL"}
        context.window_manager.progress_update(int(job.progress * 100))
        _set_progress(context, job.progress, job.stage, True)
        if self._thread.is_alive():
            return {"RUNNING_MODAL"}
        self._finish_modal(context)
        if isinstance(job.error, Cancelled) or (job.cancel and job.result is None):
            self.report({"WARNING"}, "Facsimile: cancelled, nothing was changed")
            return {"CANCELLED"}
        if job.error is not None:
            self.report({"ERROR"}, f"Facsimile: {job.error}")
            return {"CANCELLED"}
        return self._write(context, self._obj, job)

    def _finish_modal(self, context):
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        _set_progress(context, 1.0, "", False)


def _set_progress(context, fraction: float, stage: str, running: bool) -> None:
    state = context.scene.facsimile_rig
    state.progress, state.stage, state.running = fraction, stage, running
    for area in context.screen.areas if context.screen else ():
        if area.type == "VIEW_3D":
            area.tag_redraw()


class FACSIMILE_OT_predict_regions(_RigOperatorBase, bpy.types.Operator):
    """Predict facial region weights and write them as FX_ vertex groups"""

    bl_idname = "facsimile.predict_regions"
    bl_label = "Predict Regions"
    writes_groups = True

    replace_groups: bpy.props.BoolProperty(
        name="Replace FX_ groups", default=False,
        description="Overwrite existing FX_ groups (only those; other groups are never touched)")


class FACSIMILE_OT_generate_shapes(_RigOperatorBase, bpy.types.Operator):
    """Generate the ARKit shape keys with the networks, localized by region weights"""

    bl_idname = "facsimile.generate_shapes"
    bl_label = "Generate Shapes"
    writes_shapes = True

    naming: bpy.props.EnumProperty(name="Naming", items=NAMING_ITEMS, default="ARKIT")
    strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, soft_max=2.0,
                                      description="Scale of every generated shape")
    localization: bpy.props.EnumProperty(name="Localize with", items=LOCALIZATION_ITEMS, default="PREDICTED")
    existing: bpy.props.EnumProperty(name="Existing keys", items=EXISTING_ITEMS, default="SKIP")
    all_keys: bpy.props.BoolProperty(
        name="Create all 52 keys", default=False,
        description="Create every ARKit name, tongueOut even where the head has no tongue to move "
                    "(for pipelines that expect all 52); unset, the scene's Rig option decides")


class FACSIMILE_OT_rig(_RigOperatorBase, bpy.types.Operator):
    """Rig the face: region weights as FX_ groups and the 52 ARKit shape keys, in one step"""

    bl_idname = "facsimile.rig"
    bl_label = "Rig Face"
    writes_groups = True
    writes_shapes = True

    replace_groups: bpy.props.BoolProperty(name="Replace FX_ groups", default=False)
    naming: bpy.props.EnumProperty(name="Naming", items=NAMING_ITEMS, default="ARKIT")
    strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, soft_max=2.0)
    existing: bpy.props.EnumProperty(name="Existing keys", items=EXISTING_ITEMS, default="SKIP")
    all_keys: bpy.props.BoolProperty(
        name="Create all 52 keys", default=False,
        description="Create every ARKit name, tongueOut even where the head has no tongue to move "
                    "(for pipelines that expect all 52); unset, the scene's Rig option decides")


classes = (FACSIMILE_OT_predict_regions, FACSIMILE_OT_generate_shapes, FACSIMILE_OT_rig)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)

