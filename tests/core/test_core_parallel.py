# SPDX-License-Identifier: GPL-3.0-or-later
"""Chunked numpy work on several cores (blender_addon.core.parallel)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

from blender_addon.core import parallel


def test_map_chunks_keeps_order_and_reraises():
    assert parallel.map_chunks(lambda c: c * 2, range(37)) == [c * 2 for c in range(37)]

    def fails(c):
        if c == 5:
            raise ValueError("chunk 5")
        return c

    with pytest.raises(ValueError, match="chunk 5"):
        parallel.map_chunks(fails, range(10))


@pytest.mark.parametrize("n_rows", [1, 4095, 4096, 10_001])
def test_sparse_dot_in_both_layouts(n_rows):
    rng = np.random.default_rng(n_rows)
    matrix = scipy.sparse.random(n_rows, 300, density=0.01, format="csr", random_state=1, dtype=np.float32)
    dense = rng.normal(size=(300, 5, 3)).astype(np.float32)
    expected = (matrix.toarray() @ dense.reshape(300, -1)).reshape(n_rows, 5, 3)
    np.testing.assert_allclose(parallel.sparse_dot(matrix, dense), expected, atol=1e-4)
    shapes_first = parallel.sparse_dot(matrix, dense, shapes_first=True)
    assert shapes_first.shape == (5, n_rows, 3) and shapes_first[0].flags.c_contiguous
    np.testing.assert_allclose(shapes_first, expected.transpose(1, 0, 2), atol=1e-4)
