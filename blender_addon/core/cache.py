# SPDX-License-Identifier: GPL-3.0-or-later
"""A small least-recently-used cache for derived data that is costly to recompute.

The network predictions on a target mesh and the tracks of a video are large (tens to
hundreds of MB) and keyed on their inputs; a session keeps the few last ones, so redoing an
operator or re-running a preview does not redo the work, and memory stays bounded.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable, Hashable


class BoundedCache:
    """At most ``max_size`` entries; adding one more drops the least recently used."""

    def __init__(self, max_size: int):
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self.max_size = max_size
        self._entries: OrderedDict = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def get(self, key: Hashable, default=None):
        if key not in self._entries:
            return default
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: Hashable, value) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def get_or_compute(self, key: Hashable, compute: Callable[[], object]):
        """The cached value of ``key``, computed (and kept) on a miss; errors are not kept."""
        if key in self._entries:
            return self.get(key)
        value = compute()
        self.put(key, value)
        return value

    def clear(self) -> None:
        self._entries.clear()
