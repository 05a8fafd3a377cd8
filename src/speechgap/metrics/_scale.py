"""Exact rescaling that keeps products of hidden states inside the float64 range.

A dot product of two rows overflows float64 once their values approach 1e154 (the squares pass 1.8e308)
and vanishes once they fall below 1e-162; CKA's fourth powers fail at far smaller magnitudes (1e77). The
measures here either do not depend on scale (cosine, CKA, standardized distances) or scale linearly with it
(norms, distances), so they are computed on ``x · 2^-e``, with ``2^e`` the power of two just above
``max|x|``, and scaled back by ``2^e`` where they carry a unit.

Multiplying by a power of two is exact in binary floating point (short of the subnormal range), and every
sum, product, square root and quotient rounds the same way on scaled operands. So for inputs that never
came near the limits the results are bit-for-bit those of the unscaled computation; for inputs that did,
they are the correct values instead of zeros, infinities or NaN.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def peak_exponent(x: np.ndarray, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """The exponent ``e`` with ``max|x| = m · 2^e``, ``0.5 <= m < 1`` (0 where ``x`` is all zeros).

    Args:
        x: a non-empty float array.
        axis: reduce over these axes (kept with size 1, ready to broadcast against ``x``); None = all.

    Returns:
        int array: ``np.ldexp(x, -e)`` has ``max|.| < 1`` along the reduced axes.
    """
    peak = np.max(np.abs(x), axis=axis, keepdims=True)
    return np.frexp(peak)[1]


def rescaled(x: np.ndarray, axis: int | tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(x · 2^-e, e)`` with ``e = peak_exponent(x, axis)``: values below 1 in magnitude, exactly."""
    exponent = peak_exponent(x, axis)
    return np.ldexp(x, -exponent), exponent


def unit_rows(x: Any) -> np.ndarray:
    """Each row of ``x`` (last axis) divided by its Euclidean norm; a zero row stays zero.

    Rows are rescaled by their own peak first, so rows of any finite magnitude give their direction
    (no overflow to a zero row, no underflow to a zero norm).
    """
    scaled, _ = rescaled(np.asarray(x, dtype=np.float64), axis=-1)
    norms = np.linalg.norm(scaled, axis=-1, keepdims=True)
    # A zero row has no direction: dividing by 1 leaves it zero, so its cosine with anything is 0.
    return scaled / np.where(norms > 0, norms, 1.0)
