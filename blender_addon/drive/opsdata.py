# SPDX-License-Identifier: GPL-3.0-or-later
"""Drive settings read as plain data: the retarget map as numpy, the preview's meshes.

Read-only, so the preview engine and the operators use them without importing the
property definitions (whose update callbacks call the preview).
"""

from ..core import arkit
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


def preview_objects(settings) -> list:
    return [t.object for t in settings.preview_targets if t.object is not None]
