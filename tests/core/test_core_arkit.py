# SPDX-License-Identifier: GPL-3.0-or-later
"""ARKit-52 / ICT-53 names, conversion matrices, name normalising, mirroring, slider groups."""

from pathlib import Path

import numpy as np
import pytest
from conftest import data_dir

from blender_addon.core import arkit

DATA = data_dir()


# --------------------------------------------------------------------------------------------
# Canonical lists
# --------------------------------------------------------------------------------------------

def test_arkit_52_is_apples_order():
    assert len(arkit.ARKIT_52) == 52 and len(set(arkit.ARKIT_52)) == 52
    # Spot checks against the enum table (video.md §4.1).
    expected = {0: "eyeBlinkLeft", 7: "eyeBlinkRight", 14: "jawForward", 15: "jawLeft",
                16: "jawRight", 17: "jawOpen", 18: "mouthClose", 21: "mouthLeft",
                22: "mouthRight", 31: "mouthRollLower", 41: "browDownLeft", 43: "browInnerUp",
                46: "cheekPuff", 49: "noseSneerLeft", 51: "tongueOut"}
    for index, name in expected.items():
        assert arkit.ARKIT_52[index] == name
    assert all(arkit.ARKIT_INDEX[n] == i for i, n in enumerate(arkit.ARKIT_52))


def test_ict_53_order_and_relation_to_arkit():
    assert len(arkit.ICT_53) == 53 and len(set(arkit.ICT_53)) == 53
    assert arkit.ICT_53[:4] == ("browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R")
    assert arkit.ICT_53[26] == "jawOpen" and arkit.ICT_53[-1] == "noseSneer_R"
    # ICT = ARKit with browInnerUp and cheekPuff split and without tongueOut.
    as_arkit = {arkit.normalize_name(n) for n in arkit.ICT_53} - {None}
    assert as_arkit == set(arkit.ARKIT_52) - {"tongueOut", "browInnerUp", "cheekPuff"}


def test_ict_53_matches_the_shipped_ict_data():
    path = DATA / "ict" / "ict_facekit.npz"
    if not path.exists():
        pytest.skip(f"ICT-FaceKit data not found at {path} (set FACSIMILE_DATA)")
    with np.load(path) as data:
        assert tuple(str(n) for n in data["exp_names"]) == arkit.ICT_53


# --------------------------------------------------------------------------------------------
# ICT <-> ARKit
# --------------------------------------------------------------------------------------------

def test_weight_matrices():
    m, a = arkit.ict_to_arkit_matrix(), arkit.arkit_to_ict_matrix()
    assert m.shape == (52, 53) and a.shape == (53, 52)
    identity = np.eye(52)
    identity[51, 51] = 0  # tongueOut does not survive the trip through ICT
    np.testing.assert_allclose(m @ a, identity)

    ict = np.zeros(53, np.float32)
    ict[arkit.ICT_INDEX["browInnerUp_L"]] = 0.2
    ict[arkit.ICT_INDEX["browInnerUp_R"]] = 0.6
    ict[arkit.ICT_INDEX["eyeBlink_L"]] = 0.9
    w = m @ ict
    assert w[arkit.ARKIT_INDEX["browInnerUp"]] == pytest.approx(0.4)  # the mean
    assert w[arkit.ARKIT_INDEX["eyeBlinkLeft"]] == pytest.approx(0.9)

    w = np.zeros(52, np.float32)
    w[arkit.ARKIT_INDEX["cheekPuff"]] = 0.7
    back = a @ w
    assert back[arkit.ICT_INDEX["cheekPuff_L"]] == back[arkit.ICT_INDEX["cheekPuff_R"]] == \
        pytest.approx(0.7)


def test_shapes_transform_opposite_to_weights():
    rng = np.random.default_rng(1)
    ict_shapes = rng.normal(size=(53, 30, 3)).astype(np.float32)
    arkit_shapes = arkit.ict_shapes_to_arkit(ict_shapes)
    assert arkit_shapes.shape == (52, 30, 3)
    np.testing.assert_allclose(
        arkit_shapes[arkit.ARKIT_INDEX["browInnerUp"]],
        ict_shapes[arkit.ICT_INDEX["browInnerUp_L"]] + ict_shapes[arkit.ICT_INDEX["browInnerUp_R"]],
        rtol=1e-6)
    assert not arkit_shapes[arkit.ARKIT_INDEX["tongueOut"]].any()
    # Same mesh either way: ARKit weights on ARKit shapes == mapped weights on ICT shapes.
    w = rng.random(52).astype(np.float32)
    w[arkit.ARKIT_INDEX["tongueOut"]] = 0
    np.testing.assert_allclose(np.tensordot(w, arkit_shapes, 1),
                               np.tensordot(arkit.arkit_to_ict_matrix() @ w, ict_shapes, 1),
                               rtol=1e-4, atol=1e-5)


def test_splitting_arkit_shapes_by_side():
    rng = np.random.default_rng(2)
    x = np.linspace(-1, 1, 41)
    shapes = rng.normal(size=(52, 41, 3))
    for width in (0.0, 0.5):
        ict = arkit.arkit_shapes_to_ict(shapes, x, blend_width=width)
        left = ict[arkit.ICT_INDEX["browInnerUp_L"]]
        right = ict[arkit.ICT_INDEX["browInnerUp_R"]]
        np.testing.assert_allclose(left + right, shapes[arkit.ARKIT_INDEX["browInnerUp"]])
        assert not left[x < -width / 2 - 1e-9].any()   # +X is the left side
        assert not right[x > width / 2 + 1e-9].any()
        back = arkit.ict_shapes_to_arkit(ict)
        np.testing.assert_allclose(back[:51], shapes[:51])


# --------------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("eyeBlinkLeft", "eyeBlinkLeft"),
    ("EyeBlinkLeft", "eyeBlinkLeft"),            # Live Link Face CSV
    ("eyeBlink_L", "eyeBlinkLeft"),              # ARKit rawValue / Face Cap
    ("eyeBlink_l", "eyeBlinkLeft"),
    ("EyeBlink_L", "eyeBlinkLeft"),
    ("eyeBlinkL", "eyeBlinkLeft"),
    ("eyeBlink_Right", "eyeBlinkRight"),
    ("eyeBlink.R", "eyeBlinkRight"),             # Blender's side suffix
    ("EYE_BLINK_LEFT", "eyeBlinkLeft"),
    ("eye blink left", "eyeBlinkLeft"),
    ("eye-blink-left", "eyeBlinkLeft"),
    ("blendShape1.eyeBlinkLeft", "eyeBlinkLeft"),
    ("blendShape1.eyeBlink_L", "eyeBlinkLeft"),   # facecap.glb / Maya FBX
    ("ARKit_eyeBlinkLeft", "eyeBlinkLeft"),
    ("ARKitEyeBlinkLeft", "eyeBlinkLeft"),
    ("arkit_eyeblinkleft", "eyeBlinkLeft"),
    ("blendshape1eyeblinkleft", "eyeBlinkLeft"),
    ("Face.jawOpen", "jawOpen"),
    ("facecap_jawOpen", "jawOpen"),
    ("CTRL_expressions_eyeLookUpR", "eyeLookUpRight"),
    ("eyeLookIn_L", "eyeLookInLeft"),            # sided eye look keeps the side
    ("mouthLeft", "mouthLeft"),                  # directional
    ("MouthRight", "mouthRight"),
    ("jawLeft", "jawLeft"),
    ("cheekPuff", "cheekPuff"),
    ("browInnerUp", "browInnerUp"),
    ("TongueOut", "tongueOut"),
    ("  jawOpen  ", "jawOpen"),
])
def test_normalize_name_accepts_every_convention(raw, expected):
    assert arkit.normalize_name(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "Basis", "Key 1", "Fcl_MTH_A", "mouth_L", "jaw_L", "browInnerUp_L", "cheekPuff_R",
    "eyeBlinkLeft_corrective", "smile", "left", None, 3,
])
def test_normalize_name_rejects_unknown(raw):
    assert arkit.normalize_name(raw) is None


def test_every_style_normalizes_back():
    for style in ("ARKIT", "ARKIT_LR", "PASCAL"):
        names = arkit.style_names(style)
        assert len(names) == 52
        assert [arkit.normalize_name(n) for n in names] == list(arkit.ARKIT_52)
    assert arkit.style_names("ICT53") == arkit.ICT_53


def test_to_style():
    assert arkit.to_style("eyeBlinkLeft", "ARKIT") == ("eyeBlinkLeft",)
    assert arkit.to_style("eyeBlinkLeft", "ARKIT_LR") == ("eyeBlink_L",)
    assert arkit.to_style("eyeLookInRight", "ARKIT_LR") == ("eyeLookIn_R",)
    assert arkit.to_style("mouthLeft", "ARKIT_LR") == ("mouthLeft",)
    assert arkit.to_style("jawOpen", "PASCAL") == ("JawOpen",)
    assert arkit.to_style("browInnerUp", "ICT53") == ("browInnerUp_L", "browInnerUp_R")
    assert arkit.to_style("tongueOut", "ICT53") == ()
    assert arkit.to_style("noseSneerRight", "ICT53") == ("noseSneer_R",)
    with pytest.raises(ValueError):
        arkit.to_style("jawOpen", "MAYA")
    with pytest.raises(KeyError):
        arkit.to_style("eyeBlink_L", "ARKIT")  # input must be canonical


def test_normalize_ict_name():
    assert arkit.normalize_ict_name("BrowInnerUpLeft") == "browInnerUp_L"
    assert arkit.normalize_ict_name("browInnerUp_R") == "browInnerUp_R"
    assert arkit.normalize_ict_name("EyeBlinkLeft") == "eyeBlink_L"
    assert arkit.normalize_ict_name("jawOpen") == "jawOpen"
    assert arkit.normalize_ict_name("browInnerUp") is None
    assert arkit.normalize_ict_name("tongueOut") is None
    assert [arkit.normalize_ict_name(n) for n in arkit.ICT_53] == list(arkit.ICT_53)


def test_match_names_keeps_first_spelling():
    found = arkit.match_names(["Basis", "EyeBlink_L", "eyeBlinkLeft", "jawOpen", "Fcl_ALL"])
    assert found == {"eyeBlinkLeft": "EyeBlink_L", "jawOpen": "jawOpen"}


def test_no_name_is_ambiguous():
    """No spelling of one channel may be a spelling of another."""
    spellings = {}
    for name in arkit.ARKIT_52:
        for style in ("ARKIT", "ARKIT_LR", "PASCAL"):
            for spelled in arkit.to_style(name, style):
                assert spellings.setdefault(spelled.lower(), name) == name


# --------------------------------------------------------------------------------------------
# Mirroring and groups
# --------------------------------------------------------------------------------------------

def test_mirror():
    assert len(arkit.MIRROR_PAIRS) == 20
    assert ("eyeBlinkLeft", "eyeBlinkRight") in arkit.MIRROR_PAIRS
    assert ("jawLeft", "jawRight") in arkit.MIRROR_PAIRS
    assert ("mouthLeft", "mouthRight") in arkit.MIRROR_PAIRS
    assert arkit.mirror_name("eyeBlink_L") == "eyeBlinkRight"
    assert arkit.mirror_name("mouthRight") == "mouthLeft"
    assert arkit.mirror_name("jawOpen") == "jawOpen"
    assert arkit.mirror_name("eyeLookInLeft") == "eyeLookInRight"
    with pytest.raises(KeyError):
        arkit.mirror_name("Basis")
    for name in arkit.ARKIT_52:
        assert arkit.mirror_name(arkit.mirror_name(name)) == name
    index = arkit.MIRROR_INDEX
    assert sorted(index) == list(range(52))
    np.testing.assert_array_equal(index[index], np.arange(52))
    weights = np.zeros((1, 52))
    weights[0, arkit.ARKIT_INDEX["mouthSmileLeft"]] = 1
    assert weights[:, index][0, arkit.ARKIT_INDEX["mouthSmileRight"]] == 1


def test_slider_groups_partition_the_52():
    assert list(arkit.SLIDER_GROUPS) == ["Brows", "Eyes", "Cheeks & Nose", "Jaw", "Mouth",
                                         "Tongue"]
    everything = [n for names in arkit.SLIDER_GROUPS.values() for n in names]
    assert sorted(everything) == sorted(arkit.ARKIT_52)
    assert len(arkit.SLIDER_GROUPS["Eyes"]) == 14 and len(arkit.SLIDER_GROUPS["Mouth"]) == 23
