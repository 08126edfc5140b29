# SPDX-License-Identifier: GPL-3.0-or-later
"""The live feed: where the live feature hands weights to the drive preview.

Live capture must drive the Drive targets through the same retarget map, target plans,
folded preview key and restore-on-stop as a take does, so it does not write shape keys
itself: it publishes the newest (calibrated) ARKit weights of a scene here, and the drive
preview (``drive/preview.py``), which registers itself as the consumer, writes them with
the code that writes a take's rows. Features never import each other; both import this.

State is in Python only, per scene name, never in the .blend: a file saved while live
opens without it. ``generation`` changes when a scene goes live or stops, so the preview
knows its tables (built with or without a live feed) are out of date.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np


@dataclass
class _Feed:
    weights: Optional[np.ndarray] = None   # (52,) float32, ARKit order, newest frame
    arrival: float = 0.0                    # time.monotonic() of its datagram
    rotation_object: str = ""               # the Empty carrying the live head rotation


_feeds: dict = {}            # scene name -> _Feed, only while the scene is live
_consumers: list = []        # fn(scene): apply the scene's feed now (main thread)
_generation = 0


def go_live(scene, rotation_object: str = "") -> None:
    global _generation
    _feeds[scene.name_full] = _Feed(rotation_object=rotation_object)
    _generation += 1


def end(scene) -> None:
    """The scene is no longer live; consumers put back what the scene shows without it."""
    global _generation
    if _feeds.pop(scene.name_full, None) is not None:
        _generation += 1
        _notify(scene)


def is_live(scene) -> bool:
    return scene.name_full in _feeds


def generation() -> int:
    return _generation


def publish(scene, weights: np.ndarray, arrival: float) -> None:
    """New weights for a live scene: consumers apply them before this returns."""
    feed = _feeds.get(scene.name_full)
    if feed is None:
        return
    feed.weights, feed.arrival = np.asarray(weights, np.float32), arrival
    _notify(scene)


def weights(scene) -> Optional[np.ndarray]:
    """The newest live weights of ``scene``, or None (not live, or nothing arrived yet)."""
    feed = _feeds.get(scene.name_full)
    return feed.weights if feed is not None else None


def rotation_object(scene):
    """The Empty that carries the live head rotation while ``scene`` is live, else None."""
    import bpy

    feed = _feeds.get(scene.name_full)
    return bpy.data.objects.get(feed.rotation_object) if feed and feed.rotation_object else None


def add_consumer(fn: Callable) -> None:
    if fn not in _consumers:
        _consumers.append(fn)


def remove_consumer(fn: Callable) -> None:
    if fn in _consumers:
        _consumers.remove(fn)


def _notify(scene) -> None:
    for fn in list(_consumers):
        fn(scene)


def clear() -> None:
    global _generation
    _feeds.clear()
    _generation += 1
