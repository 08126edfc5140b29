# SPDX-License-Identifier: GPL-3.0-or-later
"""Live capture in real Blender: a sender replays a take over loopback in each format.

127.0.0.1 only. Background Blender runs no timers, so the test loop calls the function the
timer calls (``live.session.tick``) while a sender thread paces frames at 60 Hz like a
phone. Nothing asserts on timing: loops wait for what arrived (with a generous deadline
that only turns a hang into a failure), never for how fast.
"""

from __future__ import annotations

import socket
import threading
import time

import bpy
import numpy as np
import pytest

from bl_ext.user_default.facsimile import animation, take_object
from bl_ext.user_default.facsimile.core import arkit
from bl_ext.user_default.facsimile.core.live import LiveFrame
from bl_ext.user_default.facsimile.core.live.protocols import PROTOCOLS
from bl_ext.user_default.facsimile.core.takes import files as take_files
from bl_ext.user_default.facsimile.live import session
from blender_helpers import monkey_head, run_cli, select_only

ADDON = "bl_ext.user_default.facsimile"
LOOPBACK = "127.0.0.1"
JAW = arkit.ARKIT_INDEX["jawOpen"]
HANG = 60.0   # seconds: only a receiver that never gets its frames runs into this
# iFacialMocap sends integers 0-100: its values are exact to 1/200 after rounding.
TOLERANCE = {"livelinkface": 1e-6, "facecap": 1e-6, "ifacialmocap": 1.0 / 200 + 1e-6}


def _frames(n=60, seed=0, subject="Stage"):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 60.0
    out = []
    for k in range(n):
        w = rng.uniform(0.0, 1.0, 52)
        w[JAW] = 0.5 + 0.45 * np.sin(6.0 * t[k])
        out.append(LiveFrame(weights=w, subject=subject,
                             head_rotation=[0.1 * np.sin(t[k]), 0.2, 0.0],
                             eye_rotation_left=[0.05, 0.1, 0.0], eye_rotation_right=[0.05, -0.1, 0.0],
                             frame_number=1000 + k, frame_rate=(60, 1)))
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Sender(threading.Thread):
    """Replays frames (and any extra raw datagrams first) to a port at 60 Hz."""

    def __init__(self, protocol, port, frames, junk=(), repeat=1):
        super().__init__(daemon=True)
        self.encode = PROTOCOLS[protocol].encode
        self.port, self.frames, self.junk, self.repeat = port, frames, list(junk), repeat

    def run(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for data in self.junk:
                s.sendto(data, (LOOPBACK, self.port))
            for _ in range(self.repeat):
                for frame in self.frames:
                    for data in self.encode(frame):
                        s.sendto(data, (LOOPBACK, self.port))
                    time.sleep(1.0 / 60.0)


def _start(protocol, port):
    settings = bpy.context.scene.facsimile_live
    settings.protocol, settings.address = protocol, "LOCAL"
    settings.port = port
    assert bpy.ops.facsimile.live_start() == {"FINISHED"}
    return session.session(bpy.context.scene)


def _pump_until(live, done, on_tick=None):
    deadline = time.monotonic() + HANG
    while not done():
        assert time.monotonic() < deadline, "the live frames never arrived"
        if session.tick() and on_tick is not None:
            on_tick()
        time.sleep(0.002)


def _rigged_monkey():
    obj = monkey_head()
    assert bpy.ops.facsimile.rig() == {"FINISHED"}
    return obj


@pytest.fixture
def stop_live(addon):
    yield
    session.stop_all()


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_jaw_follows_live_while_previewing(addon, stop_live, protocol):
    monkey = _rigged_monkey()
    jaw_key = monkey.data.shape_keys.key_blocks["jawOpen"]
    port = _free_port()
    live = _start(protocol, port)
    select_only(monkey)
    assert bpy.ops.facsimile.preview(enable=True) == {"FINISHED"}   # no take needed while live
    frames = _frames(90)
    seen = []

    def check():   # every applied frame is on the key at once, through the retarget map
        applied = live.recent[-1].frame
        seen.append(applied.weight("jawOpen"))
        assert jaw_key.value == pytest.approx(applied.weight("jawOpen"), abs=1e-6)

    sender = Sender(protocol, port, frames)
    sender.start()
    _pump_until(live, lambda: not sender.is_alive() and live.receiver.stats().frames == len(frames),
                check)
    session.tick()
    sent = [f.weight("jawOpen") for f in frames]
    assert jaw_key.value == pytest.approx(sent[-1], abs=TOLERANCE[protocol])
    assert len(seen) >= 2 and len(set(np.round(seen, 3))) >= 2   # it moved
    for value in seen:   # only frames that were sent, in order (stale ones dropped)
        assert min(abs(value - s) for s in sent) <= TOLERANCE[protocol]
    stats = live.receiver.stats()
    assert stats.frames == len(frames) and stats.malformed == 0
    # The retarget map applies to live frames as to a take.
    channel = next(c for c in bpy.context.scene.facsimile_drive.channels if c.name == "jawOpen")
    channel.gain = 0.5
    session.apply_frame(bpy.context.scene, live, live.recent[-1])
    assert jaw_key.value == pytest.approx(0.5 * live.recent[-1].frame.weight("jawOpen"), abs=1e-6)
    # Head rotation reaches the live Empty that Link Rotation constrains to.
    head = monkey_head("Head", (3, 0, 0))
    assert bpy.ops.facsimile.link_rotation(part="HEAD") == {"FINISHED"}
    assert head.constraints["Facsimile Head"].target.name == session.LIVE_OBJECT
    rot = live.recent[-1].frame.head_rotation
    np.testing.assert_allclose(bpy.data.objects[session.LIVE_OBJECT].rotation_euler,
                               take_object.blender_euler(rot[None])[0], atol=1e-6)
    # Stop closes the socket: the port can be bound again, and the take-less preview is idle.
    assert bpy.ops.facsimile.live_stop() == {"FINISHED"}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, port))
    assert not session.running(bpy.context.scene)


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_record_makes_a_take_that_bakes(addon, stop_live, protocol):
    monkey = _rigged_monkey()
    port = _free_port()
    live = _start(protocol, port)
    assert bpy.ops.facsimile.live_record() == {"FINISHED"}
    frames = _frames(45, seed=1)
    junk = [b"", b"\x00" * 7, b"garbage that is no frame", b"\xff" * 4000]
    sender = Sender(protocol, port, frames, junk=junk)
    sender.start()
    _pump_until(live, lambda: not sender.is_alive() and live.receiver.stats().frames == len(frames))
    stats = live.receiver.stats()
    assert stats.malformed >= 3   # counted and dropped; the empty datagram may be ignored
    assert bpy.ops.facsimile.live_record() == {"FINISHED"}
    scene = bpy.context.scene
    take_obj = scene.facsimile_drive.source
    assert take_object.is_take_object(take_obj) and take_obj.name.startswith("Take Live ")
    # The take object holds what was sent, resampled to the scene's rate like an import.
    first, last = take_object.keyed_frames(take_obj)
    assert (scene.frame_start, scene.frame_end) == (first, last) and last > first
    scene.frame_set(first)
    assert take_obj["jawOpen"] == pytest.approx(frames[0].weight("jawOpen"), abs=TOLERANCE[protocol])
    select_only(monkey)
    assert bpy.ops.facsimile.bake() == {"FINISHED"}
    curves = animation.assigned_fcurves(monkey.data.shape_keys)
    assert any(fc.data_path == animation.key_path("jawOpen") for fc in curves)
    # A second Record makes a second take.
    assert bpy.ops.facsimile.live_record() == {"FINISHED"}
    before = live.receiver.stats().frames
    sender = Sender(protocol, port, frames[:10])
    sender.start()
    _pump_until(live, lambda: not sender.is_alive() and live.receiver.stats().frames == before + 10)
    assert bpy.ops.facsimile.live_record() == {"FINISHED"}
    assert scene.facsimile_drive.source != take_obj
    assert scene.facsimile_drive.source.name.startswith("Take Live ")


def test_calibrate_subtracts_the_neutral(addon, stop_live):
    port = _free_port()
    live = _start("livelinkface", port)
    rest = np.full(52, 0.2)
    neutral = [LiveFrame(weights=rest, subject="Stage", head_rotation=[0.1, 0.0, 0.0])] * 10
    sender = Sender("livelinkface", port, neutral)
    sender.start()
    _pump_until(live, lambda: not sender.is_alive() and live.receiver.stats().frames == 10)
    session.tick()
    assert bpy.ops.facsimile.live_calibrate() == {"FINISHED"}
    assert live.neutral is not None
    np.testing.assert_allclose(live.neutral.weights, rest, atol=1e-6)
    weights = live.neutral.apply_weights(np.full(52, 0.6))
    np.testing.assert_allclose(weights, (0.6 - 0.2) / 0.8, atol=1e-6)
    assert bpy.ops.facsimile.live_calibrate(clear=True) == {"FINISHED"} and live.neutral is None


def test_port_in_use_is_one_line(addon, stop_live):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind((LOOPBACK, 0))
        port = taken.getsockname()[1]
        settings = bpy.context.scene.facsimile_live
        settings.address, settings.port = "LOCAL", port
        with pytest.raises(RuntimeError, match="already in use"):
            bpy.ops.facsimile.live_start()
    assert not session.running(bpy.context.scene)


def test_load_and_unregister_close_the_socket(addon, stop_live, tmp_path):
    port = _free_port()
    _start("facecap", port)
    path = tmp_path / "saved.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(path))
    bpy.ops.wm.open_mainfile(filepath=str(path))   # load_pre stops it
    assert not session.running(bpy.context.scene)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((LOOPBACK, port))
    _start("facecap", port)
    import addon_utils

    addon_utils.disable(ADDON, default_set=True)   # unregister stops it
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((LOOPBACK, port))
    finally:
        addon_utils.enable(ADDON, default_set=True)   # as the fixture expects to find it


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_cli_record_writes_a_csv_import_take_reads(addon, tmp_path, protocol):
    port = _free_port()
    out = tmp_path / "take.csv"
    frames = _frames(60, seed=2)
    # Blender starts in the child process first: keep sending until the recorder is done.
    sender = Sender(protocol, port, frames, repeat=12)
    sender.start()
    done = run_cli("record", "--protocol", protocol, "--port", port, "--seconds", 4,
                   "--host", LOOPBACK, "--out", out, timeout=300)
    assert done.returncode == 0, done.stderr
    take = take_files.read_text_take(str(out))
    sent = np.stack([f.weights for f in frames])
    # One row per frame received, in arrival order, values as sent.
    index = [int(np.argmin(np.abs(sent - row).max(axis=1))) for row in take.to_arkit52()]
    for i, row in zip(index, take.to_arkit52()):
        np.testing.assert_allclose(row, sent[i], atol=TOLERANCE[protocol])
    steps = np.diff(index) % len(frames)
    assert np.all(steps == 1)   # consecutive, wrapping at the replay's end: nothing reordered
    assert bpy.ops.facsimile.import_take(filepath=str(out)) == {"FINISHED"}
    assert take_object.is_take_object(bpy.context.scene.facsimile_drive.source)
