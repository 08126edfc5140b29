# SPDX-License-Identifier: GPL-3.0-or-later
"""Independent chunks of numpy work, run on several cores.

numpy releases the GIL inside its loops (ufuncs, fancy indexing, sorting, einsum), so
plain threads scale work that splits into independent chunks: no processes, no
pickling, nothing to install. Used where a dense head's cost grows with its vertex
count (the closest points that carry the proxy back to every vertex of a dense head).

Workers take every core (up to ``MAX_WORKERS``): these are bursts of a fraction of a
second inside an operator the artist is waiting on, unlike ONNX Runtime's sessions,
which keep one core for Blender's UI (``inference._threads``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

import numpy as np

MAX_WORKERS = 8

T = TypeVar("T")
R = TypeVar("R")


def workers() -> int:
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def map_chunks(fn: Callable[[T], R], chunks: Iterable[T]) -> list[R]:
    """``[fn(c) for c in chunks]``, on a thread per core. ``fn`` must only write to
    memory no other chunk touches; the first exception raised is re-raised here."""
    chunks = list(chunks)
    n = min(workers(), len(chunks))
    if n <= 1:
        return [fn(c) for c in chunks]
    with ThreadPoolExecutor(n, thread_name_prefix="facsimile-core") as pool:
        return list(pool.map(fn, chunks))


def sparse_dot(matrix, dense: np.ndarray, *, shapes_first: bool = False,
               block: int = 4096) -> np.ndarray:
    """``matrix @ dense`` for a CSR matrix (N,M) and ``dense`` (M, ...), by blocks of
    rows on all cores (scipy's sparse product releases the GIL): (N, ...).

    With ``shapes_first``, ``dense`` is (M, S, ...) and the result comes with its first
    two axes swapped, (S, N, ...): each of S shapes contiguous, as a shape key is
    written. Each block is swapped while it is still in cache; swapping the whole
    result afterwards costs three times the product."""
    n, tail = matrix.shape[0], dense.shape[1:]
    flat = dense.reshape(dense.shape[0], -1)
    dtype = np.result_type(matrix.dtype, dense.dtype)
    out = np.empty((tail[0], n) + tail[1:] if shapes_first else (n,) + tail, dtype)

    def rows(start):
        part = (matrix[start:start + block] @ flat).reshape((-1,) + tail)
        if shapes_first:
            out[:, start:start + block] = np.swapaxes(part, 0, 1)
        else:
            out[start:start + block] = part

    map_chunks(rows, range(0, n, block))
    return out
