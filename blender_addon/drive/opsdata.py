# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive settings read as plain data: the retarget map as numpy, the channel map (each
channel's target), the preview's meshes.

Read-only, so the preview engine and the operators use them without importing the
property definitions (whose update callbacks call the preview).
"""

from ..core import arkit
from ..core.mapping import ChannelMap, Target
from ..core.retarget import RetargetMap


def retarget_map(settings) -> RetargetMap:
    """The map as numpy (identity for channels without an entry)."""
    rmap = RetargetMap(clamp=settings.clamp)
    for entry in settings.channels:
        i = arkit.ARKIT_INDEX.get(entry.name)
        if i is not None:
            rmap.gain[i], rmap.offset[i] = entry.gain, entry.offset
            rmap.smoothing[i], rmap.enabled[i] = entry.smoothing, entry.enabled
    return rmap


def channel_map(settings) -> ChannelMap:
    """Every channel's target (core/mapping.py); a bad data path raises MappingError."""
    targets = [Target()] * len(arkit.ARKIT_52)
    for entry in settings.channels:
        i = arkit.ARKIT_INDEX.get(entry.name)
        if i is not None and entry.target != "AUTO":
            targets[i] = Target(entry.target, key=entry.target_key.strip(),
                                object=entry.target_object.strip(), path=entry.target_path.strip(),
                                index=entry.target_index)
    return ChannelMap(targets)


def preview_objects(settings) -> list:
    return [t.object for t in settings.preview_targets if t.object is not None]
