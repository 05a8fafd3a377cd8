"""The DTW recurrence and trace-back compiled with numba: one pass over the cells, no Python loop.

Same recurrence and the same tie order as the numpy implementation in :mod:`speechgap.metrics.alignment`
(diagonal, then ``(1, 0)``, then ``(0, 1)`` while tracing back); it is used when numba is importable.

The kernel reads the similarities themselves (``cost = 1 − sim`` is formed per cell, the same float64
subtraction as ``np.subtract(1.0, sim)``), keeps one row of accumulated cost and records, per cell, which
predecessor the minimum came from (one byte a cell instead of an 8-byte accumulated cost). The trace-back
follows those bytes: the forward choice "diagonal unless a neighbour is strictly cheaper, then ``(1, 0)``
unless ``(0, 1)`` is strictly cheaper" is exactly the documented back-tracing preference.
"""

from __future__ import annotations

import numpy as np
from numba import njit

DIAGONAL, ADVANCE_SPEECH, ADVANCE_TEXT = 0, 1, 2


@njit(cache=True, nogil=True)
def dtw_path_compiled(
    sim: np.ndarray, maximize: bool, steps: np.ndarray, row: np.ndarray, path: np.ndarray
) -> int:  # pragma: no cover - compiled
    """Fill ``path`` with the DTW path through ``sim``; return the index of its first row, or −1.

    Args:
        sim: ``(rows, cols)`` float64 similarities (``maximize``) or distances, C-contiguous.
        maximize: ``cost = 1 − sim`` when True, ``cost = sim`` when False.
        steps: ``(≥ rows·cols,)`` uint8 scratch: the step into each cell.
        row: ``(≥ cols,)`` float64 scratch: one row of accumulated cost.
        path: ``(rows + cols − 1, 2)`` int64 output; the path, forward order, occupies ``path[start:]``.

    Returns:
        ``start``, or −1 when ``sim`` holds a NaN or an infinity (nothing else is then meaningful).
    """
    rows, cols = sim.shape
    value = sim[0, 0]
    if not np.isfinite(value):
        return -1
    left = 1.0 - value if maximize else value
    row[0] = left
    for j in range(1, cols):
        value = sim[0, j]
        if not np.isfinite(value):
            return -1
        left = left + (1.0 - value if maximize else value)
        row[j] = left
    for i in range(1, rows):
        value = sim[i, 0]
        if not np.isfinite(value):
            return -1
        diagonal = row[0]
        left = diagonal + (1.0 - value if maximize else value)
        row[0] = left
        offset = i * cols
        for j in range(1, cols):
            value = sim[i, j]
            if not np.isfinite(value):
                return -1
            up = row[j]
            best = diagonal
            step = DIAGONAL
            if up < best:
                best = up
                step = ADVANCE_SPEECH
            if left < best:
                best = left
                step = ADVANCE_TEXT
            left = best + (1.0 - value if maximize else value)
            row[j] = left
            steps[offset + j] = step
            diagonal = up
    i, j = rows - 1, cols - 1
    k = rows + cols - 2
    path[k, 0] = i
    path[k, 1] = j
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            step = steps[i * cols + j]
            if step == DIAGONAL:
                i -= 1
                j -= 1
            elif step == ADVANCE_SPEECH:
                i -= 1
            else:
                j -= 1
        k -= 1
        path[k, 0] = i
        path[k, 1] = j
    return k
