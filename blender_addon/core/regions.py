# SPDX-License-Identifier: GPL-3.0-or-later
"""Facial regions: names, order, descriptions and left/right mirror pairs.

The single source of truth for "which region is which": the per-vertex labels on the
ICT-FaceKit skin (``model_export/data/ict_regions_labels.npy``, built by
``python -m model_export.data.regions``) store indices into :data:`REGION_NAMES`, the networks'
segmentation outputs follow the same order, and the add-on names its vertex groups with
:func:`group_name`. Changing the order or the names invalidates the stored labels and any
trained model, so append rather than reorder.

Side convention: ``_L`` is the character's left, +X in Blender (the face looks toward -Y), as
in ICT-FaceKit and ARKit. Pure Python, no bpy: the training code imports it too.
"""

from __future__ import annotations

GROUP_PREFIX = "FX_"

# (name, description), top of the head to the neck, left before right.
_REGIONS: tuple[tuple[str, str], ...] = (
    ("scalp", "top, back and sides of the head outside the facial mask, above the neck; static"),
    ("forehead", "frontalis skin from above the brow band up to the hairline (brow raise)"),
    ("glabella", "between the inner brow ends, nasal root up to brow level (corrugator, procerus)"),
    ("brow_L", "left eyebrow band: lid crease to just above the brow, temple beside the eye"),
    ("brow_R", "right eyebrow band"),
    ("upper_lid_L", "left upper eyelid: what blink/wide/look move above the eye-corner line"),
    ("upper_lid_R", "right upper eyelid"),
    ("lower_lid_L", "left lower eyelid, below the eye-corner line (look up/down, squint)"),
    ("lower_lid_R", "right lower eyelid"),
    ("nose", "nasal bridge, tip, alae and nostril sills (noseSneer wrinkles the sides)"),
    ("cheek_L", "left cheek: malar and buccal skin between lower lid, fold and jaw (cheekSquint)"),
    ("cheek_R", "right cheek"),
    ("nasolabial_L", "band along the left nasolabial fold, ala to beside the mouth corner (sneer)"),
    ("nasolabial_R", "band along the right nasolabial fold"),
    ("upper_lip", "upper lip and philtrum, inside the nasolabial folds up to the nose base"),
    ("lower_lip", "lower lip down to the mentolabial sulcus"),
    ("mouth_corner_L", "left mouth corner and modiolus (smile, frown, dimple, stretch, press)"),
    ("mouth_corner_R", "right mouth corner and modiolus"),
    ("chin", "chin (mentalis) between the lower lip and the jaw line"),
    ("jaw_L", "left lower face along the mandible, mouth corner back to the ear (jaw shapes)"),
    ("jaw_R", "right lower face along the mandible"),
    ("ear_L", "left auricle, front and back; static"),
    ("ear_R", "right auricle; static"),
    ("neck", "below the jaw line, under the chin included, and the nape"),
)

REGION_NAMES: tuple[str, ...] = tuple(name for name, _ in _REGIONS)
REGION_DESCRIPTIONS: dict[str, str] = dict(_REGIONS)
REGION_INDEX: dict[str, int] = {name: i for i, name in enumerate(REGION_NAMES)}


def mirror_name(region: str) -> str:
    """``brow_L`` <-> ``brow_R``; central regions are their own mirror."""
    if region.endswith("_L"):
        return region[:-2] + "_R"
    if region.endswith("_R"):
        return region[:-2] + "_L"
    return region


# Every region's mirror image (central regions map to themselves); an involution.
REGION_MIRROR: dict[str, str] = {name: mirror_name(name) for name in REGION_NAMES}
# The same as indices, for label arrays: ``labels_mirrored = REGION_MIRROR_INDEX[labels]``.
REGION_MIRROR_INDEX: tuple[int, ...] = tuple(REGION_INDEX[REGION_MIRROR[n]] for n in REGION_NAMES)


def group_name(region: str | int) -> str:
    """Vertex-group name of a region (name or index): ``FX_brow_L``."""
    name = REGION_NAMES[region] if isinstance(region, int) else region
    if name not in REGION_INDEX:
        raise KeyError(f"unknown region {region!r}")
    return GROUP_PREFIX + name


def region_of_group(group: str) -> str | None:
    """Inverse of :func:`group_name`; ``None`` for groups that are not region groups."""
    if group.startswith(GROUP_PREFIX) and group[len(GROUP_PREFIX):] in REGION_INDEX:
        return group[len(GROUP_PREFIX):]
    return None
