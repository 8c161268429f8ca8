"""Small array helpers for the batched simulator's hot path (cheaper equivalents of numpy conveniences)."""

from __future__ import annotations

import numpy as np


def take_rows(matrix: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``out[r, j] = matrix[r, columns[r, j]]``: ``np.take_along_axis(matrix, columns, axis=1)`` for 2-D
    arrays, without its Python-level overhead."""
    rows, width = matrix.shape
    flat = columns + np.arange(0, rows * width, width)[:, None]
    return np.take(matrix.reshape(-1), flat)


def selector(rows: np.ndarray, batch_size: int) -> np.ndarray | slice:
    """``rows`` as an index into arrays of ``batch_size`` slots: ``slice(None)`` when they are all slots in
    order, so that reads are views and writes need no scatter; otherwise ``rows`` itself."""
    every = len(rows) == batch_size > 0 and rows[0] == 0 and rows[-1] == batch_size - 1
    if every and (batch_size <= 2 or np.array_equal(rows, np.arange(batch_size))):
        return slice(None)
    return rows
