# SPDX-License-Identifier: GPL-3.0-or-later
"""Running live sessions: the receiver per scene, the main-thread timer, the file-load stop.

Nothing here is saved in the .blend: a session is Python state (:data:`_sessions`, by scene
name) around a :class:`core.live.LiveReceiver`, whose socket lives on its worker thread.
The UI never waits on the network: :func:`tick`, called by a ``bpy.app.timers`` callback
on the main thread, takes the newest frame of the chosen subject (older ones were dropped
by the receiver, never queued), calibrates it and hands it to ``live_feed``, where the
drive preview writes it to the targets' keys; the head and eye rotations go onto the live
Empties that Link Rotation constrains to. Up to 60 Hz: a frame that arrived within 3/4
of a 60 Hz frame of the last one applied is dropped.

Background Blender (tests, the bpy module) runs no timers, so :func:`tick` is a plain
function the timer calls and tests call directly. Stop, unregistering the add-on and
loading another file (``load_pre``) close every socket.
"""

from __future__ import annotations

import collections
import time
from dataclasses import dataclass, field
from typing import Optional

import bpy
import numpy as np
from bpy.app.handlers import persistent

from .. import live_feed, take_object
from ..core.live import LiveReceiver
from ..core.live.calibration import Neutral

TICK = 1.0 / 120.0          # timer period: half a 60 Hz frame, so a frame waits < 8 ms
MIN_APPLY = 1.0 / 60.0      # apply at most at 60 Hz; a faster phone's extra frames are dropped
NEUTRAL_SECONDS = 0.5       # Calibrate uses the frames of the last half second
REDRAW_EVERY = 0.25         # the status line in the sidebar
LIVE_OBJECT = "Facsimile Live"


@dataclass
class Session:
    """One scene's live capture."""

    scene_name: str
    receiver: LiveReceiver
    subject: Optional[str] = None          # chosen by the artist; None: the first one heard
    subjects: list = field(default_factory=list)   # heard, in order of first arrival
    neutral: Optional[Neutral] = None
    recent: collections.deque = field(default_factory=lambda: collections.deque(maxlen=240))
    latencies: collections.deque = field(default_factory=lambda: collections.deque(maxlen=4096))
    applied: int = 0
    last_apply: float = -1.0                # arrival time of the last frame applied
    last_redraw: float = 0.0
    record_started: float = 0.0

    @property
    def current_subject(self) -> Optional[str]:
        if self.subject is not None:
            return self.subject
        return self.subjects[0] if self.subjects else None


_sessions: dict = {}   # scene name -> Session


def session(scene) -> Optional[Session]:
    return _sessions.get(scene.name_full)


def running(scene) -> bool:
    return scene.name_full in _sessions


def _ensure_live_object(scene) -> str:
    """The Empty (and its eye children) that carry the live rotations; made once per scene."""
    obj = bpy.data.objects.get(LIVE_OBJECT)
    if not take_object.is_take_object(obj):
        obj = bpy.data.objects.new(LIVE_OBJECT, None)
        obj.empty_display_type, obj.empty_display_size = "SPHERE", 0.1
        obj[take_object.TAKE_MARKER] = "live capture"
        obj.rotation_mode = take_object.ROTATION_MODE
        for side, sign in (("L", 1.0), ("R", -1.0)):
            eye = bpy.data.objects.new(f"{obj.name} Eye.{side}", None)
            eye.empty_display_type, eye.empty_display_size = "PLAIN_AXES", 0.03
            eye.parent, eye.rotation_mode = obj, take_object.ROTATION_MODE
            x, y, z = take_object.EYE_OFFSET
            eye.location = (sign * x, y, z)
            scene.collection.objects.link(eye)
    if obj.name not in scene.objects:
        scene.collection.objects.link(obj)
        for eye in take_object.eye_objects(obj).values():
            if eye.name not in scene.objects:
                scene.collection.objects.link(eye)
    return obj.name


def start(scene, protocol: str, port: int, host: str, handshake_to=None) -> Session:
    """Bind and run a receiver for ``scene`` (LiveError with one line if the port is taken)."""
    stop(scene)
    receiver = LiveReceiver(protocol, port, host=host, handshake_to=handshake_to).start()
    live = Session(scene.name_full, receiver)
    _sessions[scene.name_full] = live
    live_feed.go_live(scene, _ensure_live_object(scene))
    if not bpy.app.timers.is_registered(_timer):
        bpy.app.timers.register(_timer, first_interval=0.0, persistent=True)
    return live


def stop(scene) -> Optional[Session]:
    """Close the scene's socket; the targets go back to the take (or stay as last seen)."""
    live = _sessions.pop(scene.name_full, None)
    if live is None:
        return None
    live.receiver.stop()
    live_feed.end(scene)
    obj = bpy.data.objects.get(LIVE_OBJECT)
    if obj is not None:   # the linked head and eyes go back to rest
        for o in (obj, *take_object.eye_objects(obj).values()):
            o.rotation_euler = (0.0, 0.0, 0.0)
    return live


def stop_all() -> None:
    for name in list(_sessions):
        live = _sessions.pop(name)
        live.receiver.stop()
    live_feed.clear()


def _set_rotation(obj, rotation) -> None:
    if obj is not None and rotation is not None:
        obj.rotation_euler = take_object.blender_euler(np.asarray(rotation)[None])[0]


def apply_frame(scene, live: Session, received) -> None:
    """Calibrate one received frame and show it: keys through the preview, rotations on
    the live Empties."""
    frame = received.frame
    neutral = live.neutral
    weights = neutral.apply_weights(frame.weights) if neutral else frame.weights
    live_feed.publish(scene, weights, received.arrival)
    live.latencies.append(time.monotonic() - received.arrival)
    obj = live_feed.rotation_object(scene)
    if obj is not None:
        head = neutral.apply_head(frame.head_rotation) if neutral else frame.head_rotation
        _set_rotation(obj, head)
        eyes = take_object.eye_objects(obj)
        _set_rotation(eyes.get("L"), frame.eye_rotation_left)
        _set_rotation(eyes.get("R"), frame.eye_rotation_right)
    live.applied += 1


def tick() -> int:
    """Apply the newest frame of every live scene (main thread); returns frames applied."""
    done = 0
    for name, live in list(_sessions.items()):
        scene = bpy.data.scenes.get(name)
        if scene is None:   # renamed or deleted: nobody can see it any more
            _sessions.pop(name).receiver.stop()
            continue
        fresh = live.receiver.poll()
        for subject in fresh:
            if subject not in live.subjects:
                live.subjects.append(subject)
        received = fresh.get(live.current_subject)
        # Up to 60 Hz by the phone's own spacing (3/4 of a frame: arrival jitter must not
        # halve a 60 Hz stream); a faster phone's in-between frames are dropped, not queued.
        if received is None or received.arrival - live.last_apply < MIN_APPLY * 0.75:
            continue
        live.recent.append(received)
        live.last_apply = received.arrival
        apply_frame(scene, live, received)
        done += 1
    return done


def calibrate(scene) -> Neutral:
    """Capture the neutral from the chosen subject's frames of the last half second."""
    live = session(scene)
    if live is None:
        raise ValueError("live capture is not running")
    newest = live.recent[-1].arrival if live.recent else 0.0
    frames = [r.frame for r in live.recent
              if r.subject == live.current_subject and r.arrival >= newest - NEUTRAL_SECONDS]
    live.neutral = Neutral.from_frames(frames)   # ValueError when nothing arrived yet
    return live.neutral


def _redraw() -> None:
    for window in getattr(bpy.context.window_manager, "windows", ()):
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()


def _timer() -> Optional[float]:
    if not _sessions:
        return None   # unregisters the timer
    try:
        tick()
    except Exception as err:   # a timer that raises is removed by Blender: keep it alive
        print(f"Facsimile: live capture: {type(err).__name__}: {err}")
    now = time.monotonic()
    for live in _sessions.values():
        if now - live.last_redraw >= REDRAW_EVERY:
            live.last_redraw = now
            _redraw()
            break
    return TICK


@persistent
def on_load_pre(*_args):
    stop_all()


def register():
    bpy.app.handlers.load_pre.append(on_load_pre)


def unregister():
    if on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(on_load_pre)
    stop_all()
    if bpy.app.timers.is_registered(_timer):
        bpy.app.timers.unregister(_timer)
