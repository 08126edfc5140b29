# SPDX-License-Identifier: GPL-3.0-or-later
"""Live capture core (no bpy): the three wire formats, the receiver and the recorder.

Everything network-bound uses 127.0.0.1 only. Nothing asserts on timing: the sender paces
at 60 Hz like a phone, and the receiver's stop drains the socket, so every assertion is on
what arrived, never on when.
"""

import socket
import struct
import threading
import time

import numpy as np
import pytest

from blender_addon.core import arkit
from blender_addon.core.live import (DatagramError, LiveError, LiveFrame, LiveReceiver,
                                     facecap_osc, ifacialmocap, livelinkface, osc)
from blender_addon.core.live.protocols import PROTOCOLS
from blender_addon.core.live.record import main as record_main
from blender_addon.core.live.record import record
from blender_addon.core.takes import read_llf_csv
from blender_addon.core.takes.facecap_txt import FACECAP_ORDER

LOOPBACK = "127.0.0.1"
SUBJECTS = ["", "A", "iPhone de Zoë 😀", "x" * 3000]


def make_frames(n=30, seed=0, subject="Face", eye_roll=True):
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n):
        eyes = rng.uniform(-0.3, 0.3, (2, 3))
        if not eye_roll:
            eyes[:, 2] = 0.0
        frames.append(LiveFrame(
            weights=rng.uniform(0, 1, 52), subject=subject,
            head_rotation=rng.uniform(-0.5, 0.5, 3), eye_rotation_left=eyes[0],
            eye_rotation_right=eyes[1], frame_number=5_000_000 + k, sub_frame=0.25,
            frame_rate=(60, 1)))
    return frames


def assert_same(a: LiveFrame, b: LiveFrame, tol=1e-6, rot_tol=1e-6):
    np.testing.assert_allclose(a.weights, b.weights, atol=tol, rtol=0)
    for name in ("head_rotation", "eye_rotation_left", "eye_rotation_right"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), atol=rot_tol, rtol=0,
                                   err_msg=name)


# ------------------------------------------------------------------------------------------
# Live Link Face
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("subject", SUBJECTS)
def test_livelinkface_round_trip(subject):
    for sent in make_frames(5, subject=subject):
        got = livelinkface.decode(livelinkface.encode(sent))
        assert_same(sent, got)
        assert got.subject == subject
        assert (got.frame_number, got.sub_frame, got.frame_rate) == (sent.frame_number, 0.25, (60, 1))
        assert got.protocol == "livelinkface"


def _issue_layout(values61, name="Phone", version=6, count=61, tail=b""):
    """A datagram built exactly as the issue (and PyLiveLinkFace) describes it."""
    device = b"$" + b"0F6C4A2E-1D3B-4F5A-9C8D-7E6F5A4B3C2D"
    assert len(device) == 37
    raw = name.encode("utf-8")
    return (struct.pack("<I", version) + device + struct.pack(">i", len(raw)) + raw
            + struct.pack(">ifii", 1234, 0.5, 60, 1) + struct.pack(">B", count)
            + struct.pack(">61f", *values61) + tail)


def test_livelinkface_issue_layout_and_enum_order():
    """Unreal's order has JawLeft before JawRight and MouthLeft before MouthRight (the CSV
    swaps both pairs); the decoder maps by the enum's names."""
    values = np.zeros(61)
    wire = {n: i for i, n in enumerate(livelinkface.LLF_NAMES)}
    assert (wire["JawForward"], wire["JawLeft"], wire["JawRight"], wire["JawOpen"]) == (14, 15, 16, 17)
    assert (wire["MouthLeft"], wire["MouthRight"], wire["TongueOut"]) == (21, 22, 51)
    values[wire["JawLeft"]] = 0.25
    values[wire["JawRight"]] = 0.75
    values[wire["MouthLeft"]] = 0.125
    values[wire["MouthRight"]] = 0.875
    values[wire["EyeBlinkLeft"]] = 0.5
    values[52:55] = (0.1, 0.2, 0.3)        # head yaw, pitch, roll
    values[55:58] = (0.01, 0.02, 0.03)     # left eye yaw, pitch, roll
    frame = livelinkface.decode(_issue_layout(values, "Zoë"))
    assert frame.weight("jawLeft") == 0.25 and frame.weight("jawRight") == 0.75
    assert frame.weight("mouthLeft") == 0.125 and frame.weight("mouthRight") == 0.875
    assert frame.weight("eyeBlinkLeft") == 0.5 and frame.weight("eyeBlinkRight") == 0
    np.testing.assert_allclose(frame.head_rotation, (0.2, 0.1, 0.3), atol=1e-7)  # pitch, yaw, roll
    np.testing.assert_allclose(frame.eye_rotation_left, (0.02, 0.01, 0.03), atol=1e-7)
    assert frame.subject == "Zoë" and frame.device_id == "0F6C4A2E-1D3B-4F5A-9C8D-7E6F5A4B3C2D"
    assert frame.frame_number == 1234 and frame.frame_rate == (60, 1)
    # and the encoder writes those very bytes
    assert livelinkface.encode(frame) == _issue_layout(values.astype(np.float32), "Zoë")


def test_livelinkface_malformed():
    good = livelinkface.encode(make_frames(1, subject="S")[0])
    for cut in range(len(good)):  # every truncation
        with pytest.raises(DatagramError):
            livelinkface.decode(good[:cut])
    bad = [good + b"\x00",                                      # oversized
           b"\x05" + good[1:],                                  # another version
           _issue_layout(np.zeros(61), count=60),               # wrong count
           _issue_layout(np.full(61, np.nan)),                  # NaN values
           good[:1] + struct.pack(">i", -3) + good[5:],         # negative device-id length
           good[:41] + struct.pack(">i", 1 << 30) + good[45:],  # subject past the end
           good[:41] + struct.pack(">i", 2) + good[45:],        # subject cut: rest misread
           b"\x06" + struct.pack(">i", 2) + b"\xff\xfe" + good[41:],  # device id not UTF-8
           b"GET / HTTP/1.1\r\n\r\n", bytes(70000)]
    for datagram in bad:
        with pytest.raises(DatagramError):
            livelinkface.decode(datagram)


# ------------------------------------------------------------------------------------------
# OSC and Face Cap
# ------------------------------------------------------------------------------------------

def test_osc_messages_and_nested_bundles():
    inner = osc.bundle([osc.message("/b", 2.5, "texté")])
    packet = osc.bundle([osc.message("/a", 1, -2), inner, osc.message("/c")])
    messages, is_bundle = osc.parse(packet)
    assert is_bundle
    assert [(m.address, m.args) for m in messages] == [("/a", (1, -2)), ("/b", (2.5, "texté")),
                                                       ("/c", ())]
    messages, is_bundle = osc.parse(osc.message("/W", 3, 0.5))
    assert not is_bundle and messages[0].args == (3, 0.5)
    for bad in (b"", b"/W\x00", osc.message("/W", 3, 0.5)[:-4], b"#bundle\x00\x00",
                osc.bundle([osc.message("/W", 1, 0.5)])[:-2], b"\x00\x01\x02\x03",
                osc.bundle([osc.message("/W", 1, 0.5)]) + b"\x00\x00\x00\x40"):
        with pytest.raises(DatagramError):
            osc.parse(bad)


@pytest.mark.parametrize("as_bundle", [True, False])
def test_facecap_round_trip(as_bundle):
    decoder = facecap_osc.FaceCapDecoder()
    sent = make_frames(6, eye_roll=False)
    got = []
    for frame in sent:
        for datagram in facecap_osc.encode(frame, bundle=as_bundle):
            got += decoder.feed(datagram, (LOOPBACK, 5000))
    assert len(got) == len(sent)
    for a, b in zip(sent, got):
        assert_same(a, b)
        assert b.subject == LOOPBACK


def test_facecap_index_order_is_facecaps_own():
    decoder = facecap_osc.FaceCapDecoder()
    msgs = [osc.message("/W", i, 0.0) for i in range(52)]
    msgs[FACECAP_ORDER.index("jawLeft")] = osc.message("/W", FACECAP_ORDER.index("jawLeft"), 0.25)
    msgs[26] = osc.message("/W", 26, 0.25)   # Face Cap index 26 is jawLeft, 27 jawRight
    msgs[27] = osc.message("/W", 27, 0.75)
    msgs[30] = osc.message("/W", 30, 0.125)  # mouthLeft
    msgs[0] = osc.message("/W", 0, 0.5)      # browInnerUp
    (frame,) = decoder.feed(osc.bundle(msgs + [osc.message("/HR", 10.0, 20.0, 30.0)]))
    assert frame.weight("jawLeft") == 0.25 and frame.weight("jawRight") == 0.75
    assert frame.weight("mouthLeft") == 0.125 and frame.weight("browInnerUp") == 0.5
    np.testing.assert_allclose(frame.head_rotation, np.radians([10, 20, 30]))


def test_facecap_loose_messages_with_a_lost_packet():
    decoder = facecap_osc.FaceCapDecoder()
    sender = (LOOPBACK, 1)
    out = []
    for i in range(52):
        if i != 7:  # one /W lost
            out += decoder.feed(osc.message("/W", i, 0.5), sender)
    assert out == []  # incomplete: waits
    out += decoder.feed(osc.message("/W", 0, 0.25), sender)  # next frame starts
    assert len(out) == 1 and out[0].weights[arkit.ARKIT_INDEX["browInnerUp"]] == 0.5
    # another sender's messages never mix into this one's frame
    other = decoder.feed(osc.bundle([osc.message("/W", 0, 1.0)]), (LOOPBACK, 2))
    assert len(other) == 1 and other[0].weight("browInnerUp") == 1.0


def test_facecap_malformed_leaves_state_alone():
    decoder = facecap_osc.FaceCapDecoder()
    for bad in (osc.message("/W", 52, 0.5), osc.message("/W", 1), osc.message("/HR", 1.0, 2.0),
                osc.message("/foo", 1.0), osc.message("/W", 1, float("nan")),
                osc.message("/W", 1, "x"), b"garbage!", bytes(20000)):
        with pytest.raises(DatagramError):
            decoder.feed(bad)
    frames = []
    for i in range(52):
        frames += decoder.feed(osc.message("/W", i, 0.5))
    assert len(frames) == 1 and np.all(frames[0].weights == 0.5)


# ------------------------------------------------------------------------------------------
# iFacialMocap
# ------------------------------------------------------------------------------------------

def test_ifacialmocap_round_trip_any_key_order():
    rng = np.random.default_rng(1)
    for sent in make_frames(5, subject="127.0.0.1"):
        text = ifacialmocap.encode(sent).decode()
        tokens = [t for t in text.split("|") if t]
        blends = [t for t in tokens if "#" not in t]
        bones = [t for t in tokens if "#" in t]
        rng.shuffle(blends)
        shuffled = ("|".join(blends + bones) + "|").encode()
        for datagram in (ifacialmocap.encode(sent), shuffled,
                         ifacialmocap.encode(sent, separator="&")):
            got = ifacialmocap.decode(datagram, subject="127.0.0.1")
            assert_same(sent, got, tol=1 / 200)
            assert got.subject == "127.0.0.1"


def test_ifacialmocap_names_and_handshake():
    text = b"jawLeft-25|jawRight-75|mouthLeft-10|eyeBlink_L-100|browInnerUp_L&40|" \
           b"=head#10.0,20.0,30.0,0.1,0.2,0.3|rightEye#1.0,2.0,0.0|leftEye#3.0,4.0,0.0|"
    frame = ifacialmocap.decode(text)
    assert frame.weight("jawLeft") == 0.25 and frame.weight("jawRight") == 0.75
    assert frame.weight("mouthLeft") == pytest.approx(0.1) and frame.weight("eyeBlinkLeft") == 1.0
    assert frame.weight("browInnerUp") == 0  # v2's half channel is not browInnerUp
    np.testing.assert_allclose(frame.head_rotation, np.radians([10, 20, 30]))
    np.testing.assert_allclose(frame.head_position, [0.1, 0.2, 0.3])
    np.testing.assert_allclose(frame.eye_rotation_left, np.radians([3, 4, 0]))
    assert ifacialmocap.HANDSHAKE == b"iFacialMocap_sahuasouryya9218sauhuiayeta91555dy3719"
    assert ifacialmocap.is_handshake(ifacialmocap.HANDSHAKE_V2)
    for bad in (ifacialmocap.HANDSHAKE, b"\xff\xfe|", b"no separators", b"foo-1|bar-2|",
                b"jawOpen-x|", b"jawOpen-5|=head#1,2|", b"jawOpen|", b"jawOpen-inf|",
                b"jawOpen-1|" * 3000):
        with pytest.raises(DatagramError):
            ifacialmocap.decode(bad)


# ------------------------------------------------------------------------------------------
# Receiver
# ------------------------------------------------------------------------------------------

def _send(port, datagrams):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, (LOOPBACK, port))


def test_receiver_keeps_latest_per_subject_and_counts():
    receiver = LiveReceiver("livelinkface", port=0, host=LOOPBACK).start()
    assert receiver.poll() == {}  # a consumer is watching from now on
    alice = make_frames(5, subject="Alice")
    bob = make_frames(3, seed=2, subject="Bob")
    datagrams = [livelinkface.encode(f) for f in alice[:3]] + [b"junk", b"\x06\x00"] \
        + [livelinkface.encode(f) for f in bob] + [livelinkface.encode(f) for f in alice[3:]] \
        + [bytes(70000)[:60000]]
    _send(receiver.port, datagrams)
    receiver.stop()
    stats = receiver.stats()
    assert (stats.frames, stats.malformed) == (8, 3)
    assert stats.dropped == 6  # 4 of Alice's and 2 of Bob's were replaced unseen
    assert stats.subjects == ("Alice", "Bob") and not stats.running
    latest = receiver.poll()
    assert set(latest) == {"Alice", "Bob"}
    assert_same(latest["Alice"].frame, alice[-1])
    assert_same(latest["Bob"].frame, bob[-1])
    assert receiver.poll() == {}  # consumed
    assert stats.last_timecode == alice[-1].timecode != ""


def test_receiver_records_every_frame_in_order():
    with LiveReceiver("ifacialmocap", port=0, host=LOOPBACK) as receiver:
        receiver.start_recording()
        sent = make_frames(40)
        _send(receiver.port, [ifacialmocap.encode(f) for f in sent])
    frames = receiver.stop_recording()
    assert [round(float(r.frame.weights[0]) * 100) for r in frames] == \
        [round(float(f.weights[0]) * 100) for f in sent]
    assert all(r.subject == LOOPBACK for r in frames)


def test_port_in_use_is_one_line():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocker:
        blocker.bind((LOOPBACK, 0))
        port = blocker.getsockname()[1]
        with pytest.raises(LiveError) as err:
            LiveReceiver("facecap", port=port, host=LOOPBACK).start()
        message = str(err.value)
        assert "\n" not in message and str(port) in message and "in use" in message
        assert record_main(["--protocol", "facecap", "--port", str(port), "--seconds", "1",
                            "--out", "unused.csv", "--host", LOOPBACK]) == 2


def test_record_without_frames_fails(tmp_path, capsys):
    out = tmp_path / "take.csv"
    code = record_main(["--protocol", "livelinkface", "--port", "0", "--seconds", "0.05",
                        "--out", str(out), "--host", LOOPBACK])
    assert code == 1 and not out.exists()
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no Live Link Face frames" in err


# ------------------------------------------------------------------------------------------
# A phone replaying a take at 60 Hz into the headless recorder, in each format
# ------------------------------------------------------------------------------------------

def _pace(datagram_groups, sock, address):
    """Send each frame's datagrams, one frame per 1/60 s like a phone (not asserted on)."""
    start = time.perf_counter()
    for k, group in enumerate(datagram_groups):
        delay = start + k / 60.0 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        for d in group:
            sock.sendto(d, address)


def _replay(protocol, frames, tmp_path, **encode_kw):
    """Replay ``frames`` into :func:`record`; returns the CSV path(s) written."""
    spec = PROTOCOLS[protocol]
    stop = threading.Event()
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind((LOOPBACK, 0))
    groups = [spec.encode(f) if not encode_kw else facecap_osc.encode(f, **encode_kw)
              for f in frames]
    errors = []

    def run_phone(receiver):
        try:
            target = (LOOPBACK, receiver.port)
            if spec.handshake:  # iFacialMocap streams only after the receiver's handshake
                phone.settimeout(30)
                data, target = phone.recvfrom(1024)
                assert data == spec.handshake and target[1] == receiver.port
            _pace(groups, phone, target)
        except Exception as err:  # reported in the test thread
            errors.append(err)
        finally:
            stop.set()

    def on_ready(receiver):
        threading.Thread(target=run_phone, args=(receiver,), daemon=True).start()

    out = tmp_path / f"{protocol}.csv"
    handshake_to = phone.getsockname() if spec.handshake else None
    result = record(protocol, 0, 60.0, out, host=LOOPBACK, handshake_to=handshake_to,
                    on_ready=on_ready, stop=stop)
    phone.close()
    assert not errors, errors
    assert result.malformed == 0
    return result


@pytest.mark.parametrize("protocol,tol,kw", [
    ("livelinkface", 1e-6, {}),
    ("facecap", 1e-6, {}),
    ("facecap", 1e-6, {"bundle": False}),
    ("ifacialmocap", 1 / 200, {}),
])
def test_replayed_take_is_recorded_exactly(protocol, tol, kw, tmp_path):
    sent = make_frames(45, seed=3, subject="Stage Left", eye_roll=False)
    result = _replay(protocol, sent, tmp_path, **kw)
    assert result.frames == len(sent) and len(result.files) == 1
    subject, path, n = result.files[0]
    take = read_llf_csv(path)
    assert take.n_frames == n == len(sent)
    np.testing.assert_allclose(take.to_arkit52(), np.stack([f.weights for f in sent]),
                               atol=tol, rtol=0)
    for name in ("head_rotation", "eye_rotation_left", "eye_rotation_right"):
        np.testing.assert_allclose(getattr(take, name),
                                   np.stack([getattr(f, name) for f in sent]), atol=1e-6,
                                   rtol=0, err_msg=name)
    assert subject == ("Stage Left" if protocol == "livelinkface" else LOOPBACK)


def test_two_phones_two_takes(tmp_path):
    a = make_frames(20, seed=4, subject="Alice")
    b = make_frames(20, seed=5, subject="Bob ü")
    interleaved = [f for pair in zip(a, b) for f in pair]
    result = _replay("livelinkface", interleaved, tmp_path)
    assert [(s, n) for s, _, n in result.files] == [("Alice", 20), ("Bob ü", 20)]
    assert result.files[0][1].endswith("livelinkface.csv")
    for (_, path, _), sent in zip(result.files, (a, b)):
        np.testing.assert_allclose(read_llf_csv(path).to_arkit52(),
                                   np.stack([f.weights for f in sent]), atol=1e-6, rtol=0)


# ------------------------------------------------------------------ calibration

def test_neutral_calibration_matches_video_calibration():
    from blender_addon.core.live.calibration import Neutral
    from blender_addon.core.video.take import calibrate

    frames = make_frames(9, seed=3)
    neutral = Neutral.from_frames(frames)
    rest = np.median(np.stack([f.weights for f in frames]).astype(np.float64), axis=0)
    np.testing.assert_allclose(neutral.weights, rest)
    later = make_frames(4, seed=4)
    w = np.stack([f.weights for f in later])
    np.testing.assert_allclose(neutral.apply_weights(w), calibrate(w, rest, None))
    np.testing.assert_allclose(neutral.apply_weights(w[0]), calibrate(w[:1], rest, None)[0])
    # The rest pose itself maps to (nearly) zero weights and zero head rotation.
    face = 0.9 * frames[0].weights   # below the 0.95 cap on rest values
    still = [LiveFrame(weights=face, head_rotation=frames[0].head_rotation)] * 3
    calm = Neutral.from_frames(still)
    assert np.abs(calm.apply_weights(face)).max() < 1e-6
    np.testing.assert_allclose(calm.apply_head(frames[0].head_rotation), 0.0, atol=1e-9)
    assert Neutral(weights=rest).apply_head(frames[0].head_rotation) is frames[0].head_rotation
    with pytest.raises(ValueError):
        Neutral.from_frames([])
