# SPDX-License-Identifier: GPL-3.0-or-later
"""Live capture operators: Start / Stop, Record / Stop, Calibrate, the subject to follow.

Idnames and options are public API. Start reports a port in use (or any other reason the
socket cannot open) as one line and changes nothing. Record's second press turns what
arrived into take objects (``opsdata.make_takes``) in one undo step; a failed one leaves
the file as it was.
"""

from __future__ import annotations

import bpy

from ..core.errors import FacsimileError
from ..core.live import LiveError, get_protocol
from . import opsdata, props, session


def _label(scene) -> str:
    live = session.session(scene)
    return live.receiver.protocol.label if live else "live capture"


def finish_recording(op, context) -> set:
    """Make the take objects of the running recording; reports one line either way."""
    scene = context.scene
    live = session.session(scene)
    received = live.receiver.stop_recording()
    if not received:
        op.report({"ERROR"}, "Facsimile: no frames arrived while recording; nothing was made")
        return {"CANCELLED"}
    try:
        made = opsdata.make_takes(context, received, live.current_subject, live.neutral,
                                  live.receiver.protocol.label, scene.frame_start)
    except (FacsimileError, ValueError) as err:
        op.report({"ERROR"}, f"Facsimile: {err}")
        return {"CANCELLED"}
    names = ", ".join(f"'{obj.name}' ({take.n_frames} frames)" for obj, take in made)
    op.report({"INFO"}, f"Facsimile: recorded {names}")
    return {"FINISHED"}


class FACSIMILE_OT_live_start(bpy.types.Operator):
    """Listen for the phone app's stream and drive the previewed meshes (Drive ▸ Live Preview) and the live head and eye Empties with it"""

    bl_idname = "facsimile.live_start"
    bl_label = "Start Live"
    bl_options = {"REGISTER", "UNDO"}   # the live Empties are made on the first start

    def execute(self, context):
        scene = context.scene
        settings = scene.facsimile_live
        spec = get_protocol(settings.protocol)
        handshake = None
        if spec.handshake is not None and settings.phone.strip():
            handshake = (settings.phone.strip(), spec.default_port)
        try:
            live = session.start(scene, spec.name, settings.port, props.HOSTS[settings.address],
                                 handshake)
        except LiveError as err:
            self.report({"ERROR"}, f"Facsimile: {err}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Facsimile: listening for {spec.label} on UDP port "
                              f"{live.receiver.port}")
        if not scene.facsimile_drive.preview:
            self.report({"INFO"}, "Facsimile: select the character and press Live Preview "
                                  "(Drive) to see it move")
        return {"FINISHED"}


class FACSIMILE_OT_live_stop(bpy.types.Operator):
    """Stop listening and close the socket (a recording that runs is kept as a take first)"""

    bl_idname = "facsimile.live_stop"
    bl_label = "Stop Live"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        live = session.session(context.scene)
        if live is None:
            return {"CANCELLED"}
        if live.receiver.recording:
            finish_recording(self, context)
        session.stop(context.scene)
        self.report({"INFO"}, "Facsimile: live capture stopped")
        return {"FINISHED"}


class FACSIMILE_OT_live_record(bpy.types.Operator):
    """Record the live stream; press again to stop and keep it as a take (previewed, solved and baked like an imported one)"""

    bl_idname = "facsimile.live_record"
    bl_label = "Record"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return session.running(context.scene)

    def execute(self, context):
        live = session.session(context.scene)
        if not live.receiver.recording:
            live.receiver.start_recording()
            self.report({"INFO"}, f"Facsimile: recording {_label(context.scene)}")
            return {"FINISHED"}
        return finish_recording(self, context)


class FACSIMILE_OT_live_calibrate(bpy.types.Operator):
    """Hold a neutral face, then press: the last half second becomes the rest pose (weights 0, head straight), as video calibration does"""

    bl_idname = "facsimile.live_calibrate"
    bl_label = "Calibrate"

    clear: bpy.props.BoolProperty(name="Clear", default=False,
                                  description="Forget the calibration: values as the phone sends them")

    @classmethod
    def poll(cls, context):
        return session.running(context.scene)

    def execute(self, context):
        live = session.session(context.scene)
        if self.clear:
            live.neutral = None
            self.report({"INFO"}, "Facsimile: live calibration cleared")
            return {"FINISHED"}
        try:
            neutral = session.calibrate(context.scene)
        except ValueError:
            self.report({"ERROR"}, "Facsimile: no frames arrived yet to calibrate on")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Facsimile: calibrated on {neutral.frames} frame(s)")
        return {"FINISHED"}


class FACSIMILE_OT_live_subject(bpy.types.Operator):
    """Follow this phone (subject) when several stream to Blender"""

    bl_idname = "facsimile.live_subject"
    bl_label = "Follow Subject"
    bl_options = {"INTERNAL"}

    subject: bpy.props.StringProperty(name="Subject")

    @classmethod
    def poll(cls, context):
        return session.running(context.scene)

    def execute(self, context):
        live = session.session(context.scene)
        if live.subject != self.subject:
            live.neutral = None   # another face: its rest pose is its own
        live.subject = self.subject
        return {"FINISHED"}


classes = (FACSIMILE_OT_live_start, FACSIMILE_OT_live_stop, FACSIMILE_OT_live_record,
           FACSIMILE_OT_live_calibrate, FACSIMILE_OT_live_subject)


# Blender's helper: register in order, unregister in reverse.
register, unregister = bpy.utils.register_classes_factory(classes)
