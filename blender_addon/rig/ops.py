# SPDX-License-Identifier: GPL-3.0-or-later
"""Rig operators: ``facsimile.predict_regions``, ``facsimile.generate_shapes``, ``facsimile.rig``,
``facsimile.update_rig``, ``facsimile.rig_selected``.

Their idnames and options are public API that TDs script against. An option a caller does
not set is taken from the Rig panel (``scene.facsimile_rig``, ``props.OPTION_NAMES``).
Facsimile remembers the keys it wrote (``OWNED_KEYS`` on the mesh's shape-key block): a
re-run regenerates those and applies ``existing`` only to keys the artist made.

Run from a script or headless (``execute``) they work synchronously. Run from the
UI (``invoke``) they run as a :mod:`jobs` job: the networks on a worker thread, progress
in the Rig panel and the status bar, Esc or ✕ cancels, Blender stays usable, and the
results are written on the main thread in one go. Nothing is written until everything is
computed, and the writes roll back if any fails, so a cancelled or failed run
leaves the mesh exactly as it was; a finished one is a single undo step.
"""

from __future__ import annotations

import bpy
import numpy as np

from .. import jobs, mesh_io, prefs
from ..options import EXISTING_ITEMS
from ..core import rig as core_rig
from ..core.errors import Cancelled, FacsimileError
from ..core.regions import REGION_NAMES, group_name
from . import eye_objects, opsdata
from .props import LOCALIZATION_ITEMS, NAMING_ITEMS, OPTION_NAMES, GazeOptions, gaze_degrees, tighten_property

OWNED_KEYS = "facsimile_keys"
"""ID property on the shape-key block: the names of the keys Facsimile wrote."""


def _target(context):
    obj = context.active_object
    if obj is None or obj.type != "MESH":
        return None
    return obj


def owned_keys(obj) -> set:
    keys = obj.data.shape_keys
    return set(keys.get(OWNED_KEYS, ())) if keys is not None else set()


def rig_job(arrays: mesh_io.MeshArrays, painted: np.ndarray | None, strength: float, provider: str,
            eyes=(), eye_arrays=(), gaze: dict | None = None, tighten: float = 0.0) -> jobs.Job:
    """The computation of one operator run as a :class:`jobs.Job` (safe on a worker thread);
    ``eyes`` are separate eye objects selected with the head (issue 13), read as ``eye_arrays``;
    ``gaze`` the gaze angles in degrees (``core.eyes.gaze_angles``), ``tighten`` the Tighten
    option (``core.falloff``)."""

    def work(job):
        return core_rig.predict(arrays.verts_world, arrays.faces, provider=provider, painted_weights=painted,
                                strength=strength, progress=lambda f, stage: job.report(f, stage),
                                cancelled=job.cancelled, eye_objects=[a.verts_world for a in eye_arrays],
                                gaze=gaze, tighten=tighten)

    job = jobs.Job("rig", work)
    job.arrays, job.eyes, job.eye_arrays = arrays, list(eyes), list(eye_arrays)
    return job


class _RigOperatorBase(jobs.JobOperator):
    """Shared flow: gather (main thread) -> compute (thread or inline) -> write (main thread)."""

    bl_options = {"REGISTER", "UNDO"}
    job_label = "Facsimile rig"
    writes_groups = False
    writes_shapes = False

    @classmethod
    def poll(cls, context):
        return _target(context) is not None and context.mode == "OBJECT"

    # ---- stages

    def _panel_defaults(self, context) -> None:
        """Options the caller left unset come from the Rig panel."""
        state = context.scene.facsimile_rig
        for name in OPTION_NAMES:
            if name in self.properties.bl_rna.properties and not self.properties.is_property_set(name):
                setattr(self, name, getattr(state, name))

    def _gather(self, context, obj=None):
        obj = obj or _target(context)
        if obj is None:
            raise core_rig.RigError("select a mesh object")
        check_editable(obj, self.writes_shapes, getattr(self, "confirm_large", False))
        if self.writes_groups and opsdata.fx_groups(obj) and not getattr(self, "replace_groups", False):
            raise core_rig.RigError(
                f"'{obj.name}' already has FX_ region groups; enable 'Replace FX_ groups' in the Rig "
                "panel to overwrite them, or Update Rig to regenerate the shapes from them")
        painted = None
        if self.writes_shapes and getattr(self, "localization", "PREDICTED") == "PAINTED":
            painted = opsdata.read_region_weights(obj)
            if painted is None:
                raise core_rig.RigError("no FX_ groups to localize with: run Predict Regions first, or choose "
                                        "'Predicted' localization")
        arrays = mesh_io.read_mesh(obj)
        eyes = eye_objects.candidates(context, obj) if self.writes_shapes else []
        gaze = gaze_degrees(self) if isinstance(self, GazeOptions) else None
        return obj, rig_job(arrays, painted, getattr(self, "strength", 1.0), prefs.provider_choice(context),
                            eyes, eye_objects.read(eyes), gaze, getattr(self, "tighten", 0.0))

    def _write(self, context, obj, job: jobs.Job) -> set:
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
                owned = owned_keys(obj)
                txn.ensure_basis()
                statuses = eye_objects.write_shapes(txn, result, job.arrays, self.naming,
                                                    self.existing == "REPLACE", all_keys, owned)
                eye_txns, eye_names = eye_objects.write_eye_keys(job.eyes, job.eye_arrays, result, self.naming,
                                                                 self.existing == "REPLACE")
                # Set last: a failure above rolls back the keys and leaves the old list.
                obj.data.shape_keys[OWNED_KEYS] = sorted(owned | set(statuses["added"]) | set(statuses["replaced"]))
                report.append(f"{len(statuses['added'])} shape keys added")
                if statuses["replaced"]:
                    report.append(f"{len(statuses['replaced'])} replaced")
                if statuses["skipped"]:
                    report.append(f"{len(statuses['skipped'])} existing kept (skipped: "
                                  f"{', '.join(statuses['skipped'][:4])}{'…' if len(statuses['skipped']) > 4 else ''})")
                if statuses["locked"]:
                    report.append(f"{len(statuses['locked'])} locked keys kept ({', '.join(statuses['locked'][:4])})")
            obj.data.update()
        except Exception:
            for eye_txn in reversed(eye_txns):
                eye_txn.rollback()
            txn.rollback()
            raise
        state = context.scene.facsimile_rig
        state.last_provider = result.provider
        state.last_seconds = result.seconds
        jaw = int(result.jaw_part.sum())
        still = eye_objects.still_parts(result)
        msg = f"Facsimile: {', '.join(report)} on '{obj.name}' in {state.last_seconds:.2f} s ({result.provider})"
        if jaw:
            msg += f"; {jaw} vertices of loose parts (lower teeth, tongue) follow the jaw"
        if still:
            msg += f"; {still} vertices of loose parts (upper teeth, …) left still"
        if self.writes_shapes:
            msg += "; " + eye_objects.report_line(result, all_keys and self.naming != "ICT53", eye_names)
        if result.landmarks is not None:
            msg += "; " + result.landmarks.line()
        state.last_report = msg
        self.report({"INFO"}, msg)
        if job.arrays.mirrored:
            self.report({"WARNING"}, f"Facsimile: corrected: '{obj.name}' has a mirroring (negative) scale; "
                                     "rigged as it looks in the scene, left and right as seen there")
        for note in result.notes:
            self.report({"WARNING"}, f"Facsimile: {note}")
        if not result.facing_ok:
            self.report({"WARNING"}, "Facsimile: the face does not seem to look toward -Y (Blender's front); "
                                     "results may be wrong — rotate the head to face -Y and apply rotation")
        if self.writes_shapes:
            peak, name = core_rig.peak_motion(result, job.arrays.verts_world)
            if peak < core_rig.SMALL_SHAPES:
                self.report({"WARNING"}, f"Facsimile: the shapes on '{obj.name}' are small (the largest, {name}, "
                                         f"moves {100 * peak:.1f} % of the head's width); raise Strength in the "
                                         "Rig panel, or paint the FX_ groups and Update Rig")
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
        self._panel_defaults(context)
        try:
            obj, job = self._gather(context)
            job.run()
            job.check()
            return self._write(context, obj, job)
        except FacsimileError as ex:
            self.report({"ERROR"}, f"Facsimile: {ex}")
            return {"CANCELLED"}
        except Exception as ex:  # a bug or a full disk: the mesh was rolled back, say what happened
            self.report({"ERROR"}, f"Facsimile: failed, nothing was changed ({type(ex).__name__}: {ex})")
            return {"CANCELLED"}

    # ---- modal (UI): compute on a worker thread, Esc cancels

    def invoke(self, context, event):
        if context.window is None:
            return self.execute(context)
        self._panel_defaults(context)
        obj = _target(context)
        if obj is not None and len(obj.data.vertices) > core_rig.LARGE_HEAD_VERTS and not self.confirm_large:
            # Ask first; on OK Blender calls execute (synchronously) with the option set.
            self.confirm_large = True
            return context.window_manager.invoke_confirm(self, event)
        if jobs.running("rig") is not None:
            self.report({"ERROR"}, "Facsimile: a rig is already running (Esc or ✕ cancels it)")
            return {"CANCELLED"}
        try:
            self._obj, job = self._gather(context)
        except FacsimileError as ex:
            self.report({"ERROR"}, f"Facsimile: {ex}")
            return {"CANCELLED"}
        return self.start_job(context, job)

    def job_finished(self, context, job):
        """Main thread, the worker done: write everything in one go, or report why not."""
        if isinstance(job.error, Cancelled) or (job.cancel and job.result is None):
            self.report({"WARNING"}, "Facsimile: cancelled, nothing was changed")
            return {"CANCELLED"}
        if job.error is not None:
            message = str(job.error) if isinstance(job.error, FacsimileError) else \
                f"failed, nothing was changed ({type(job.error).__name__}: {job.error})"
            self.report({"ERROR"}, f"Facsimile: {message}")
            return {"CANCELLED"}
        try:
            return self._write(context, self._obj, job)
        except Exception as ex:   # rolled back by _write
            self.report({"ERROR"}, f"Facsimile: failed, nothing was changed ({type(ex).__name__}: {ex})")
            return {"CANCELLED"}


def check_editable(obj, writes_shapes: bool, confirm_large: bool) -> None:
    """What makes a rig impossible or unwise, before any work: one line each."""
    if obj.library is not None or obj.data.library is not None:
        lib = (obj.library or obj.data.library).filepath
        raise core_rig.RigError(f"'{obj.name}' is linked from '{lib}' and cannot be edited here (nothing would "
                                "be saved); make it local (Object › Relations › Make Local) or rig it in its own file")
    for mod in obj.modifiers:
        if mod.type == "MIRROR" and (mod.show_viewport or mod.show_render):
            raise core_rig.RigError(f"'{obj.name}' is half a head with an unapplied Mirror modifier "
                                    f"('{mod.name}'): apply it (Ctrl+A › Modifier) and rig the whole head")
    keys = obj.data.shape_keys
    if writes_shapes and keys is not None and not keys.use_relative:
        raise core_rig.RigError(f"'{obj.name}' has absolute shape keys (Relative unchecked), which play by "
                                "time, not by value: check Relative in its Shape Keys panel, or rig a copy")
    n = len(obj.data.vertices)
    if n > core_rig.LARGE_HEAD_VERTS and not confirm_large:
        raise core_rig.RigError(f"'{obj.name}' has {n / 1e6:.1f} M vertices (above "
                                f"{core_rig.LARGE_HEAD_VERTS // 1_000_000} M): rigging it takes minutes and "
                                "gigabytes; decimate it, or run again with confirm_large=True")


_CONFIRM_LARGE = dict(name="Confirm large mesh", default=False, options={"SKIP_SAVE"},
                      description=f"Rig a mesh above {core_rig.LARGE_HEAD_VERTS // 1_000_000} M vertices "
                                  "(minutes, gigabytes)")


class FACSIMILE_OT_predict_regions(_RigOperatorBase, bpy.types.Operator):
    """Predict facial region weights and write them as FX_ vertex groups"""

    bl_idname = "facsimile.predict_regions"
    bl_label = "Predict Regions"
    writes_groups = True
    confirm_large: bpy.props.BoolProperty(**_CONFIRM_LARGE)

    replace_groups: bpy.props.BoolProperty(
        name="Replace FX_ groups", default=False,
        description="Overwrite existing FX_ groups (only those; other groups are never touched)")


class FACSIMILE_OT_generate_shapes(GazeOptions, _RigOperatorBase, bpy.types.Operator):
    """Generate the ARKit shape keys with the networks, localized by region weights"""

    bl_idname = "facsimile.generate_shapes"
    bl_label = "Generate Shapes"
    writes_shapes = True
    confirm_large: bpy.props.BoolProperty(**_CONFIRM_LARGE)

    naming: bpy.props.EnumProperty(name="Naming", items=NAMING_ITEMS, default="ARKIT")
    strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, soft_max=2.0,
                                      description="Scale of every generated shape")
    tighten: tighten_property()
    localization: bpy.props.EnumProperty(name="Localize with", items=LOCALIZATION_ITEMS, default="PREDICTED")
    existing: bpy.props.EnumProperty(name="Existing keys", items=EXISTING_ITEMS, default="SKIP")
    all_keys: bpy.props.BoolProperty(
        name="Create all 52 keys", default=False,
        description="Create every ARKit name, tongueOut even where the head has no tongue to move "
                    "(for pipelines that expect all 52); unset, the scene's Rig option decides")


class FACSIMILE_OT_rig(GazeOptions, _RigOperatorBase, bpy.types.Operator):
    """Rig the face: region weights as FX_ groups and the 52 ARKit shape keys, in one step"""

    bl_idname = "facsimile.rig"
    bl_label = "Rig Face"
    writes_groups = True
    writes_shapes = True
    confirm_large: bpy.props.BoolProperty(**_CONFIRM_LARGE)

    replace_groups: bpy.props.BoolProperty(name="Replace FX_ groups", default=False)
    naming: bpy.props.EnumProperty(name="Naming", items=NAMING_ITEMS, default="ARKIT")
    strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, soft_max=2.0)
    tighten: tighten_property()
    existing: bpy.props.EnumProperty(name="Existing keys", items=EXISTING_ITEMS, default="SKIP")
    all_keys: bpy.props.BoolProperty(
        name="Create all 52 keys", default=False,
        description="Create every ARKit name, tongueOut even where the head has no tongue to move "
                    "(for pipelines that expect all 52); unset, the scene's Rig option decides")


class FACSIMILE_OT_update_rig(GazeOptions, _RigOperatorBase, bpy.types.Operator):
    """Regenerate the shape keys from the FX_ groups as painted; only Facsimile's own keys are replaced"""

    bl_idname = "facsimile.update_rig"
    bl_label = "Update Rig"
    writes_shapes = True
    localization = "PAINTED"     # the point of the operator: not an option
    existing = "SKIP"            # the artist's keys stay; Facsimile's are regenerated

    naming: bpy.props.EnumProperty(name="Naming", items=NAMING_ITEMS, default="ARKIT")
    strength: bpy.props.FloatProperty(name="Strength", default=1.0, min=0.0, soft_max=2.0)
    tighten: tighten_property()

    @classmethod
    def poll(cls, context):
        obj = _target(context)
        return obj is not None and context.mode == "OBJECT" and bool(opsdata.fx_groups(obj))


class FACSIMILE_OT_rig_selected(bpy.types.Operator):
    """Rig Face on every selected mesh in turn with the Rig panel's options; one undo step"""

    bl_idname = "facsimile.rig_selected"
    bl_label = "Rig All Selected"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT" and any(o.type == "MESH" for o in context.selected_objects)

    def execute(self, context):
        done, failed = [], []
        for obj in [o for o in context.selected_objects if o.type == "MESH"]:
            try:
                with context.temp_override(active_object=obj, object=obj):
                    bpy.ops.facsimile.rig("EXEC_DEFAULT")
                done.append(obj.name)
            except RuntimeError as err:   # the operator's one-line report; that mesh is unchanged
                failed.append(f"'{obj.name}': {str(err).strip().splitlines()[-1].split('Facsimile: ', 1)[-1]}")
        if not done:
            self.report({"ERROR"}, f"Facsimile: nothing rigged ({'; '.join(failed)})")
            return {"CANCELLED"}
        msg = f"Facsimile: rigged {len(done)} of {len(done) + len(failed)} meshes"
        if failed:
            self.report({"WARNING"}, f"{msg}; not rigged: {'; '.join(failed)}")
        else:
            self.report({"INFO"}, f"{msg} ({', '.join(done)})")
        return {"FINISHED"}


classes = (FACSIMILE_OT_predict_regions, FACSIMILE_OT_generate_shapes, FACSIMILE_OT_rig,
           FACSIMILE_OT_update_rig, FACSIMILE_OT_rig_selected)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
