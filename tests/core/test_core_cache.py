# SPDX-License-Identifier: GPL-3.0-or-later
"""The bounded cache behind the prediction and track caches."""

import pytest

from blender_addon.core.cache import BoundedCache


def test_least_recently_used_goes_first():
    cache = BoundedCache(max_size=2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1          # "a" is now the most recent
    cache.put("c", 3)
    assert "b" not in cache and cache.get("a") == 1 and cache.get("c") == 3
    assert len(cache) == 2


def test_get_or_compute_keeps_results_not_errors():
    cache, calls = BoundedCache(max_size=1), []
    assert cache.get_or_compute("k", lambda: calls.append(1) or "v") == "v"
    assert cache.get_or_compute("k", lambda: calls.append(1) or "w") == "v"
    assert calls == [1]
    with pytest.raises(KeyError):
        cache.get_or_compute("x", lambda: {}["missing"])
    assert "x" not in cache
    with pytest.raises(ValueError):
        BoundedCache(max_size=0)
