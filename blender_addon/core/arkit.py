# SPDX-License-Identifier: GPL-3.0-or-later
"""ARKit-52 and ICT-FaceKit-53 expression names: order, conversion, mirroring, name matching.

Everything that has to agree on "which channel is which" goes through this module: take
importers (Live Link Face CSV, Face Cap TXT), shape-key creation and matching on the artist's
mesh, and the network, whose expression code follows the ICT-FaceKit 53 order.

Side convention: ``Left``/``_L`` is the *character's* left, which is +X in Blender (the face
looks along -Y). This is ARKit's convention too (the subject's left, seen mirrored by the
camera), so no name is ever swapped on import.

Weights versus shapes
---------------------
The ICT rig splits two ARKit channels in halves (``browInnerUp_L/_R``, ``cheekPuff_L/_R``) and
has no ``tongueOut``. Two different conversions follow, and they are *not* the same matrix:

* **Weights** (what an animation curve holds) go through :func:`ict_to_arkit_matrix` or
  :func:`arkit_to_ict_matrix`: ``w_arkit = M @ w_ict``.
* **Shapes** (per-vertex deltas) transform the other way round. If ``w_ict = A @ w_arkit``
  (A = ``arkit_to_ict_matrix()``), then the displacement ``B_ict @ w_ict`` equals
  ``(B_ict @ A) @ w_arkit``, so the ARKit shape basis is ``B_ict @ A``. ARKit ``browInnerUp``
  is ICT ``browInnerUp_L + browInnerUp_R`` (a sum, weight 1 each), while the ARKit *weight*
  of a take whose ICT halves are 0.2 and 0.6 is their mean, 0.4. See :func:`ict_shapes_to_arkit`.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Iterable, Optional

import numpy as np

# Apple's canonical order (ARFaceAnchor.BlendShapeLocation grouping, Unreal's EARFaceBlendShape,
# the Live Link UDP packet). Index positions are part of the contract: (T, 52) arrays use it.
ARKIT_52: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft",
    "eyeSquintLeft", "eyeWideLeft",
    "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight",
    "jawForward", "jawLeft", "jawRight", "jawOpen",
    "mouthClose", "mouthFunnel", "mouthPucker", "mouthLeft", "mouthRight",
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthUpperUpLeft", "mouthUpperUpRight",
    "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
    "tongueOut",
)

# ICT-FaceKit order (FaceXModel/vertex_indices.json "expressions"); the network's z[:53].
ICT_53: tuple[str, ...] = (
    "browDown_L", "browDown_R", "browInnerUp_L", "browInnerUp_R", "browOuterUp_L", "browOuterUp_R",
    "cheekPuff_L", "cheekPuff_R", "cheekSquint_L", "cheekSquint_R", "eyeBlink_L", "eyeBlink_R",
    "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R", "eyeLookOut_L", "eyeLookOut_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeSquint_L", "eyeSquint_R", "eyeWide_L", "eyeWide_R",
    "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose", "mouthDimple_L", "mouthDimple_R",
    "mouthFrown_L", "mouthFrown_R", "mouthFunnel", "mouthLeft", "mouthLowerDown_L",
    "mouthLowerDown_R", "mouthPress_L", "mouthPress_R", "mouthPucker", "mouthRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmile_L",
    "mouthSmile_R", "mouthStretch_L", "mouthStretch_R", "mouthUpperUp_L", "mouthUpperUp_R",
    "noseSneer_L", "noseSneer_R",
)

ARKIT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ARKIT_52)}
ICT_INDEX: dict[str, int] = {name: i for i, name in enumerate(ICT_53)}

# Shapes whose Left/Right is a *direction of motion*, not a side of the face. They keep their
# Left/Right spelling in every style (ARKit rawValue is "jawLeft", never "jaw_L").
_DIRECTIONAL = frozenset({"jawLeft", "jawRight", "mouthLeft", "mouthRight"})

# ARKit channels the ICT rig splits into a left and a right half.
_ICT_SPLIT = ("browInnerUp", "cheekPuff")


def _sided(name: str) -> Optional[tuple[str, str]]:
    """(stem, 'L'|'R') for an ARKit name whose Left/Right is a side, else None."""
    if name in _DIRECTIONAL:
        return None
    for suffix, side in (("Left", "L"), ("Right", "R")):
        if name.endswith(suffix):
            return name[: -len(suffix)], side
    return None


# --------------------------------------------------------------------------------------------
# Mirroring and slider groups
# --------------------------------------------------------------------------------------------

def _mirror_pairs() -> tuple[tuple[str, str], ...]:
    pairs = []
    for name in ARKIT_52:
        if name.endswith("Left"):
            pairs.append((name, name[: -len("Left")] + "Right"))
    return tuple(pairs)


# (left, right) pairs swapped by an X mirror. Directional pairs (jawLeft/jawRight,
# mouthLeft/mouthRight) are included: mirroring the face mirrors the motion too.
MIRROR_PAIRS: tuple[tuple[str, str], ...] = _mirror_pairs()

_MIRROR: dict[str, str] = {}
for _left, _right in MIRROR_PAIRS:
    _MIRROR[_left], _MIRROR[_right] = _right, _left

# Column permutation: ``weights[..., MIRROR_INDEX]`` is the X-mirrored performance.
MIRROR_INDEX: np.ndarray = np.array(
    [ARKIT_INDEX[_MIRROR.get(name, name)] for name in ARKIT_52], dtype=np.intp)


def mirror_name(name: str) -> str:
    """The ARKit name an X mirror turns ``name`` into (unsided names map to themselves).

    Accepts any spelling :func:`normalize_name` understands; returns ARKit camelCase.
    """
    arkit = normalize_name(name)
    if arkit is None:
        raise KeyError(f"not an ARKit blend-shape name: {name!r}")
    return _MIRROR.get(arkit, arkit)


# UI grouping for sliders and region filters, in display order; together exactly ARKIT_52.
SLIDER_GROUPS: "OrderedDict[str, tuple[str, ...]]" = OrderedDict((
    ("Brows", ("browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
               "browOuterUpRight")),
    ("Eyes", tuple(n for n in ARKIT_52 if n.startswith("eye"))),
    ("Cheeks & Nose", ("cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
                       "noseSneerRight")),
    ("Jaw", ("jawForward", "jawLeft", "jawRight", "jawOpen")),
    ("Mouth", tuple(n for n in ARKIT_52 if n.startswith("mouth"))),
    ("Tongue", ("tongueOut",)),
))


# --------------------------------------------------------------------------------------------
# ICT-53 <-> ARKit-52
# --------------------------------------------------------------------------------------------

def _ict_names_of(arkit_name: str) -> tuple[str, ...]:
    """The ICT shapes one ARKit channel corresponds to (two for the split ones, none for tongue)."""
    if arkit_name in _ICT_SPLIT:
        return (arkit_name + "_L", arkit_name + "_R")
    if arkit_name == "tongueOut":
        return ()
    sided = _sided(arkit_name)
    return (f"{sided[0]}_{sided[1]}",) if sided else (arkit_name,)


def ict_indices_of(arkit_name: str) -> tuple[int, ...]:
    """Indices into ICT_53 of the shapes one ARKit channel sums (see :func:`ict_shapes_to_arkit`)."""
    return tuple(ICT_INDEX[ict] for ict in _ict_names_of(arkit_name))


def arkit_to_ict_matrix() -> np.ndarray:
    """(53, 52) matrix A with ``w_ict = A @ w_arkit``.

    A split channel drives both halves with the full weight (browInnerUp 0.7 -> browInnerUp_L
    0.7 and browInnerUp_R 0.7); tongueOut has no ICT counterpart and is dropped.
    """
    a = np.zeros((len(ICT_53), len(ARKIT_52)), dtype=np.float32)
    for j, name in enumerate(ARKIT_52):
        for ict in _ict_names_of(name):
            a[ICT_INDEX[ict], j] = 1.0
    return a


def ict_to_arkit_matrix() -> np.ndarray:
    """(52, 53) matrix M with ``w_arkit = M @ w_ict``.

    A split channel becomes the *mean* of its halves. The mean, not the max, because it is
    linear (so it is a matrix and commutes with interpolation and blending) and because it is
    the least-squares choice: with mirror-symmetric, non-overlapping halves, the single ARKit
    shape weight that best reproduces halves (a, b) is (a + b) / 2. tongueOut gets 0.
    ``M @ arkit_to_ict_matrix()`` is the identity except for tongueOut.
    """
    m = np.zeros((len(ARKIT_52), len(ICT_53)), dtype=np.float32)
    for j, name in enumerate(ARKIT_52):
        halves = _ict_names_of(name)
        for ict in halves:
            m[j, ICT_INDEX[ict]] = 1.0 / len(halves)
    return m


def ict_shapes_to_arkit(ict_deltas: np.ndarray) -> np.ndarray:
    """ICT shape deltas (53, ...) -> ARKit shape deltas (52, ...), exactly.

    ``browInnerUp = browInnerUp_L + browInnerUp_R`` (likewise cheekPuff); tongueOut is all
    zeros. This is the shape-side transpose of :func:`arkit_to_ict_matrix` (see module doc).
    """
    ict_deltas = np.asarray(ict_deltas)
    if ict_deltas.shape[0] != len(ICT_53):
        raise ValueError(f"expected {len(ICT_53)} ICT shapes, got {ict_deltas.shape[0]}")
    a = arkit_to_ict_matrix().astype(ict_deltas.dtype, copy=False)
    return np.tensordot(a.T, ict_deltas, axes=1)


def arkit_shapes_to_ict(arkit_deltas: np.ndarray, vertex_x: np.ndarray,
                        blend_width: float = 0.0) -> np.ndarray:
    """ARKit shape deltas (52, N, 3) -> ICT shape deltas (53, N, 3), splitting by side.

    A weight matrix cannot split a symmetric shape into halves; geometry can. The split
    shapes are cut by vertex X (+X = left) with a linear ramp ``blend_width`` wide around
    x = 0 (0 = hard cut), so that ``_L + _R`` gives back the ARKit shape exactly.
    """
    arkit_deltas = np.asarray(arkit_deltas)
    x = np.asarray(vertex_x, dtype=np.float64)
    if arkit_deltas.shape[0] != len(ARKIT_52) or arkit_deltas.shape[1] != x.shape[0]:
        raise ValueError("expected (52, N, 3) deltas and (N,) vertex X")
    if blend_width > 0:
        left = np.clip(0.5 + x / blend_width, 0.0, 1.0)
    else:
        left = (x > 0).astype(np.float64) + 0.5 * (x == 0)
    out = np.zeros((len(ICT_53),) + arkit_deltas.shape[1:], dtype=arkit_deltas.dtype)
    for j, name in enumerate(ARKIT_52):
        halves = _ict_names_of(name)
        if len(halves) == 1:
            out[ICT_INDEX[halves[0]]] = arkit_deltas[j]
        elif len(halves) == 2:
            mask = left.reshape((-1,) + (1,) * (arkit_deltas.ndim - 2)).astype(out.dtype)
            out[ICT_INDEX[halves[0]]] = arkit_deltas[j] * mask
            out[ICT_INDEX[halves[1]]] = arkit_deltas[j] * (1 - mask)
    return out


# --------------------------------------------------------------------------------------------
# Naming styles
# --------------------------------------------------------------------------------------------

STYLES = ("ARKIT", "ARKIT_LR", "PASCAL", "ICT53")


def to_style(arkit_name: str, style: str) -> tuple[str, ...]:
    """The name(s) an ARKit channel has in another naming style.

    Styles: ``ARKIT`` eyeBlinkLeft · ``ARKIT_LR`` eyeBlink_L (ARKit rawValue, Face Cap,
    iFacialMocap) · ``PASCAL`` EyeBlinkLeft (Live Link Face CSV) · ``ICT53`` eyeBlink_L with
    browInnerUp/cheekPuff split and no tongueOut. Returns a tuple because ICT53 maps one
    channel to two names (browInnerUp -> browInnerUp_L, browInnerUp_R) or none (tongueOut);
    every other style returns exactly one.
    """
    if arkit_name not in ARKIT_INDEX:
        raise KeyError(f"not an ARKit camelCase name: {arkit_name!r}")
    if style == "ARKIT":
        return (arkit_name,)
    if style == "PASCAL":
        return (arkit_name[0].upper() + arkit_name[1:],)
    if style == "ARKIT_LR":
        sided = _sided(arkit_name)
        return (f"{sided[0]}_{sided[1]}",) if sided else (arkit_name,)
    if style == "ICT53":
        return _ict_names_of(arkit_name)
    raise ValueError(f"unknown naming style {style!r}; expected one of {', '.join(STYLES)}")


def style_names(style: str) -> tuple[str, ...]:
    """All channel names of a style, in its own canonical order (ICT53: ICT order)."""
    if style == "ICT53":
        return ICT_53
    return tuple(to_style(name, style)[0] for name in ARKIT_52)


# --------------------------------------------------------------------------------------------
# Name normalising
# --------------------------------------------------------------------------------------------

# Prefixes that exporters glue on without a separator ("blendshape1eyeblinkleft"); with a
# separator or a case change they are already handled by the suffix search below.
_KNOWN_PREFIXES = re.compile(r"^(?:blendshapes?|arkit|facecap|bs|shapes?|morphs?|face)\d*")
_SEPARATORS = re.compile(r"[\s_\-.:|/]+")
# Suffixes exporters and duplicates add ("jawOpen.001", "JawOpen_BS", "eyeBlink_L_shape"):
# tried only when the name as it is matches nothing, so "…_corrective" stays unknown.
_KNOWN_SUFFIXES = re.compile(r"(?:[\s_\-.]+\d{1,3}|[\s_\-.]*(?:bs|blend ?shapes?|shapes?|morphs?|targets?))$",
                             re.IGNORECASE)
_TOKEN_BOUNDARY = re.compile(r"[\s_\-.:|/]+|(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def _key(text: str) -> str:
    """Comparison key: lower case, separators removed ("Eye_Blink-L" -> "eyeblinkl")."""
    return _SEPARATORS.sub("", text).lower()


def _build_arkit_keys() -> dict[str, str]:
    keys: dict[str, str] = {}
    for name in ARKIT_52:
        keys[_key(name)] = name
        sided = _sided(name)
        if sided:  # eyeBlink_L, eyeBlinkL, EyeBlink_l ...
            keys[_key(sided[0] + sided[1])] = name
    return keys


def _build_ict_keys() -> dict[str, str]:
    keys: dict[str, str] = {}
    for arkit_key, arkit in _build_arkit_keys().items():
        halves = _ict_names_of(arkit)
        if len(halves) == 1:
            keys[arkit_key] = halves[0]
    for stem in _ICT_SPLIT:
        for side, word in (("L", "Left"), ("R", "Right")):
            keys[_key(stem + side)] = keys[_key(stem + word)] = f"{stem}_{side}"
    return keys


_ARKIT_KEYS = _build_arkit_keys()
_ICT_KEYS = _build_ict_keys()


def _candidate_keys(name: str) -> Iterable[str]:
    """Keys to look up, most specific first: the whole name, then ever shorter tails.

    Tails start after a separator ("blendShape1.eyeBlink_L", "Face.jawOpen", "ARKit_x") or
    at a case change ("ARKitEyeBlinkLeft"), so prefixes of any kind fall away; the longest
    tail that is a known name wins. All-lower-case glued prefixes use a known list.
    """
    name = name.strip()
    yield _key(name)
    cuts = sorted({m.end() for m in _TOKEN_BOUNDARY.finditer(name)} - {0, len(name)})
    for cut in cuts:
        yield _key(name[cut:])
    bare = _KNOWN_PREFIXES.sub("", _key(name))
    if bare:
        yield bare


def _lookup(name: str, keys: dict[str, str]) -> Optional[str]:
    if not isinstance(name, str):
        return None
    for key in _candidate_keys(name):
        if key in keys:
            return keys[key]
    bare = _KNOWN_SUFFIXES.sub("", name.strip())
    if bare and bare != name.strip():
        return _lookup(bare, keys)
    return None


def normalize_name(name: str) -> Optional[str]:
    """Any spelling of an ARKit blend-shape name -> ARKit camelCase, or None if unknown.

    Accepted: ``eyeBlinkLeft``, ``EyeBlinkLeft`` (Live Link Face), ``eyeBlink_L`` /
    ``eyeBlink_l`` / ``EyeBlink_L`` / ``eyeBlinkL`` (rawValue, Face Cap), any case, with
    spaces, underscores or hyphens anywhere, and with prefixes (``blendShape1.eyeBlink_L``,
    ``ARKit_eyeBlinkLeft``, ``Face.jawOpen``, ``facecap_jawOpen``, Rocketbox ``AK_18_JawOpen``)
    and exporter suffixes (``jawOpen.001``, ``JawOpen_BS``, ``eyeBlink_L_shape``). Directional shapes keep
    their words (``mouthLeft``; ``mouth_L`` is not a name). ICT halves such as
    ``browInnerUp_L`` are *not* ARKit channels and give None; use
    :func:`normalize_ict_name` for them.
    """
    return _lookup(name, _ARKIT_KEYS)


def normalize_ict_name(name: str) -> Optional[str]:
    """Any spelling of an ICT-53 name -> the ICT name (``EyeBlinkLeft`` -> ``eyeBlink_L``).

    Same rules as :func:`normalize_name`; ``browInnerUpLeft``/``browInnerUp_L`` resolve to the
    ICT half, while unsplit ``browInnerUp``/``cheekPuff`` and ``tongueOut`` give None.
    """
    return _lookup(name, _ICT_KEYS)


def match_names(names: Iterable[str]) -> dict[str, str]:
    """Map ARKit camelCase -> the first of ``names`` that normalises to it.

    For matching a mesh's shape keys or a file's columns against the 52 channels; later
    duplicates (``eyeBlinkLeft`` and ``EyeBlink_L`` both present) are ignored.
    """
    found: dict[str, str] = {}
    for name in names:
        arkit = normalize_name(name)
        if arkit is not None and arkit not in found:
            found[arkit] = name
    return found
