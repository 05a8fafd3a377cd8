"""Linear CKA between representations, within and across layers, and mutual-kNN alignment.

Centered kernel alignment (Kornblith et al., ICML 2019) with a linear kernel compares two representations
``X (n, d1)`` and ``Y (n, d2)`` of the same ``n`` rows:

``CKA(X, Y) = HSIC(X, Y) / sqrt(HSIC(X, X) · HSIC(Y, Y))``, with the biased estimator
``HSIC(X, Y) ∝ ||Xc^T Yc||_F² = <Kc, Lc>_F`` (``Xc``, ``Yc`` column-centered, ``Kc = Xc Xc^T``) or the unbiased
estimator of Song et al. (JMLR 2012) as used for debiased CKA by Nguyen et al. (ICLR 2021).

Paper 3 (Hsu et al., arXiv 2603.01502) builds a speech-layer × text-layer CKA heat map from DTW-paired
(speech frame, text token) states pooled over samples; :func:`cross_layer_cka` computes that whole matrix
from per-layer statistics, :class:`CrossLayerCKA` accumulates it over minibatches of rows, and
:func:`cka_band` reads off the band of text layers each speech layer matches. :func:`mutual_knn` is the
mutual nearest-neighbour alignment of the platonic-representation work (Huh et al., ICML 2024).

CKA does not change when either representation is scaled, so every layer is centered and rescaled by an
exact power of two (:mod:`speechgap.metrics._scale`) before its fourth-order statistics are formed: states of
any finite magnitude give the same CKA as states of order one, bit for bit where neither overflows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from speechgap.errors import ConfigError
from speechgap.metrics._scale import peak_exponent, rescaled, unit_rows
from speechgap.metrics._validation import as_array, as_float_rows

__all__ = [
    "CKABand",
    "CrossLayerCKA",
    "cka_band",
    "cross_layer_cka",
    "linear_cka",
    "mutual_knn",
]

Form = Literal["auto", "feature", "gram"]

# Memory for one block of Gram rows of every layer in cross_layer_cka's Gram form.
_GRAM_BLOCK_BYTES = 256 * 2**20


def _min_rows(debiased: bool) -> int:
    return 4 if debiased else 2


def _check_rows(n: int, debiased: bool, name: str) -> None:
    needed = _min_rows(debiased)
    if n < needed:
        kind = "debiased (unbiased HSIC) CKA" if debiased else "CKA"
        raise ConfigError(f"argument '{name}': {kind} needs at least {needed} rows (samples), got {n}")


def _hsic(
    cross: np.ndarray, norms_ab: np.ndarray, sum_a: np.ndarray, sum_b: np.ndarray, n: int, debiased: bool
):
    """HSIC up to a factor that cancels in CKA, from centered-data statistics.

    ``cross = ||Xc^T Yc||_F²``, ``norms_ab = Σ_i |xc_i|² |yc_i|²``, ``sum_a = Σ_i |xc_i|²``. With centered data
    ``Kc 1 = 0``, so the unbiased estimator (zero-diagonal Grams ``K~``, ``L~``)
    ``n(n−3)·HSIC_u = tr(K~L~) + 1ᵀK~1·1ᵀL~1/((n−1)(n−2)) − 2/(n−2)·1ᵀK~L~1`` reduces to the terms below.
    """
    if not debiased:
        return cross
    trace = cross - norms_ab
    return trace + sum_a * sum_b / ((n - 1) * (n - 2)) - 2.0 * norms_ab / (n - 2)


def _ratio(hsic_xy: np.ndarray, hsic_xx: np.ndarray, hsic_yy: np.ndarray, debiased: bool) -> np.ndarray:
    for self_hsic, name in ((hsic_xx, "x"), (hsic_yy, "y")):
        bad = np.flatnonzero(np.atleast_1d(self_hsic) <= 0)
        if bad.size:
            where = f" (layers {bad.tolist()})" if np.ndim(self_hsic) else ""
            reason = (
                "the unbiased self-HSIC is not positive: too few rows or nearly constant features"
                if debiased
                else "the representation is constant across rows"
            )
            raise ConfigError(f"argument '{name}s' / argument '{name}'{where}: {reason}; CKA is undefined")
    return hsic_xy / np.sqrt(np.multiply.outer(hsic_xx, hsic_yy))


def _use_feature_form(n: int, layers_x: int, d1: int, layers_y: int, d2: int) -> bool:
    feature_cost = n * (layers_x * layers_y * d1 * d2 + (layers_x * d1 * d1 + layers_y * d2 * d2) / 2)
    gram_cost = n * n * ((layers_x * d1 + layers_y * d2) / 2 + layers_x * layers_y / 2)
    return feature_cost <= gram_cost


def linear_cka(x: Any, y: Any, debiased: bool = False) -> float:
    """Linear CKA between two representations of the same ``n`` rows.

    Uses the feature-space form (``O(n·d²)``) when ``n`` is larger than the widths and the Gram form
    (``O(n²·d)``) otherwise; both give the same value.

    Args:
        x: ``(n, d1)`` representation, e.g. speech states of one layer at the DTW-paired positions.
        y: ``(n, d2)`` representation of the same rows.
        debiased: use the unbiased HSIC estimator (Song et al. 2012; Nguyen et al. 2021). Biased CKA of
            independent data is far from 0 for small ``n`` (~0.2 at n = 32); debiased CKA is near 0.

    Returns:
        CKA in [0, 1] (biased); the debiased value can be slightly negative.

    Raises:
        ConfigError: rows differ, ``n < 2`` (``n < 4`` when debiased), or a constant representation.
    """
    x = as_float_rows(x, "x")
    y = as_float_rows(y, "y")
    if x.shape[0] != y.shape[0]:
        raise ConfigError(
            f"argument 'x' and argument 'y': different numbers of rows ({x.shape[0]} vs {y.shape[0]})"
        )
    n = x.shape[0]
    _check_rows(n, debiased, "x")
    x = _center_rescaled(x)
    y = _center_rescaled(y)
    if _use_feature_form(n, 1, x.shape[1], 1, y.shape[1]):
        cross = np.square(x.T @ y).sum()
        self_x = np.square(x.T @ x).sum()
        self_y = np.square(y.T @ y).sum()
    else:
        gram_x = x @ x.T
        gram_y = y @ y.T
        cross = (gram_x * gram_y).sum()
        self_x = np.square(gram_x).sum()
        self_y = np.square(gram_y).sum()
    a = np.einsum("ij,ij->i", x, x)
    b = np.einsum("ij,ij->i", y, y)
    hsic_xy = _hsic(cross, a @ b, a.sum(), b.sum(), n, debiased)
    hsic_xx = _hsic(self_x, a @ a, a.sum(), a.sum(), n, debiased)
    hsic_yy = _hsic(self_y, b @ b, b.sum(), b.sum(), n, debiased)
    return float(_ratio(hsic_xy, hsic_xx, hsic_yy, debiased))


def _center_rescaled(x: np.ndarray) -> np.ndarray:
    """Column-centered float64 ``x`` scaled by an exact power of two to a peak below 1 (CKA is unchanged);
    scaled before the mean too, so that the column sums of huge values cannot overflow."""
    x, _ = rescaled(x)
    x = x - x.mean(axis=0)
    return rescaled(x)[0]


def _peak(values: np.ndarray) -> float:
    """``max|values|`` without a temporary copy of ``values``."""
    return max(float(values.max()), -float(values.min()))


# float64 column sums of rows up to this magnitude (times the row count) cannot overflow
_SAFE_SUM = 1e300


def _as_layers(value: Any, name: str) -> np.ndarray:
    """``(layers, n, d)`` array in its own float dtype (float32 stays float32 until a layer is used)."""
    if isinstance(value, (list, tuple)):
        layers = [
            as_array(layer, f"{name}[{index}]", ndim=2, dtype=None) for index, layer in enumerate(value)
        ]
        if not layers:
            raise ConfigError(f"argument '{name}': no layers given")
        if len({layer.shape for layer in layers}) != 1:
            raise ConfigError(
                f"argument '{name}': layers have different shapes {sorted({layer.shape for layer in layers})}"
            )
        value = np.stack(layers)
    array = as_array(value, name, ndim=3, dtype=None)
    if 0 in array.shape:
        raise ConfigError(f"argument '{name}': expected non-empty (layers, n, d), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number):
        raise ConfigError(f"argument '{name}': expected numbers, got dtype {array.dtype}")
    return array


def _centered(layers: np.ndarray, dtype=np.float64) -> list[np.ndarray]:
    """Column-centered copy of every layer in ``dtype``, each scaled by an exact power of two to a peak below
    1 (CKA does not change); the means are always computed in float64."""
    centered = np.empty(layers.shape, dtype=dtype)
    for index, layer in enumerate(layers):
        if _peak(layer) * layer.shape[0] > _SAFE_SUM:  # only huge float64 data: scale a copy first
            layer = rescaled(np.asarray(layer, dtype=np.float64))[0]
        out = centered[index]
        np.subtract(layer, layer.mean(axis=0, dtype=np.float64), out=out, casting="same_kind")
        peak = _peak(out)
        if peak > 0:
            np.ldexp(out, -np.frexp(peak)[1], out=out)
    return list(centered)


def _cross_statistics_feature(xs: list[np.ndarray], ys: list[np.ndarray]):
    cross = np.array([[np.square(x.T @ y).sum() for y in ys] for x in xs])
    self_x = np.array([np.square(x.T @ x).sum() for x in xs])
    self_y = np.array([np.square(y.T @ y).sum() for y in ys])
    return cross, self_x, self_y


def _cross_statistics_gram(xs: list[np.ndarray], ys: list[np.ndarray], gram_dtype=np.float64):
    """``<Kc_a, Lc_b>_F`` for all layer pairs from blocks of Gram rows.

    Grams are symmetric, so only the blocks on or right of the diagonal are formed (about half the work of
    full Grams; at least 8 row blocks): for each row block, its diagonal square and the part right of it,
    each in its own contiguous buffer, so that the off-diagonal part is weighted twice in the sums without a
    pass over it. ``gram_dtype`` is the precision of the Gram products themselves (the dominant cost);
    every sum over Gram entries is accumulated in float64.
    """
    n = xs[0].shape[0]
    n_x, n_y = len(xs), len(ys)
    narrow = gram_dtype != np.float64
    itemsize = np.dtype(gram_dtype).itemsize + (8 if narrow else 0)
    block = max(1, min(-(-n // 8), _GRAM_BLOCK_BYTES // (itemsize * n * max(n_x, n_y))))
    if narrow:
        xs = [np.asarray(x, dtype=gram_dtype) for x in xs]
        ys = [np.asarray(y, dtype=gram_dtype) for y in ys]
    buffers = {
        name: (np.empty(count * block * n, dtype=gram_dtype), np.empty(count * block * n) if narrow else None)
        for name, count in (("x", n_x), ("y", n_y))
    }
    cross = np.zeros((n_x, n_y))
    self_x = np.zeros(n_x)
    self_y = np.zeros(n_y)

    def grams(layers, name, rows, start, stop, right):
        """``(layers, rows, right)`` products of the row block with the columns ``stop - right ..``, float64."""
        raw, wide = buffers[name]
        out = raw[: len(layers) * rows * right].reshape(len(layers), rows, right)
        for layer, values in enumerate(layers):
            np.matmul(values[start:stop], values[n - right :].T, out=out[layer])
        if wide is None:
            return out
        widened = wide[: out.size].reshape(out.shape)
        np.copyto(widened, out)
        return widened

    for start in range(0, n, block):
        stop = min(n, start + block)
        rows = stop - start
        for right, weight in ((rows, 1.0), (n - stop, 2.0)):
            if right == 0:
                continue
            if weight == 1.0:
                gx = _diag_grams(xs, buffers["x"], start, stop, narrow)
                gy = _diag_grams(ys, buffers["y"], start, stop, narrow)
            else:
                gx = grams(xs, "x", rows, start, stop, right)
                gy = grams(ys, "y", rows, start, stop, right)
            flat_x = gx.reshape(n_x, -1)
            flat_y = gy.reshape(n_y, -1)
            self_x += weight * np.einsum("ij,ij->i", flat_x, flat_x)
            self_y += weight * np.einsum("ij,ij->i", flat_y, flat_y)
            cross += weight * (flat_x @ flat_y.T)
    return cross, self_x, self_y


def _diag_grams(layers: list[np.ndarray], buffer, start: int, stop: int, narrow: bool) -> np.ndarray:
    """``(layers, rows, rows)`` diagonal Gram squares of the row block, float64."""
    raw, wide = buffer
    rows = stop - start
    out = raw[: len(layers) * rows * rows].reshape(len(layers), rows, rows)
    for layer, values in enumerate(layers):
        np.matmul(values[start:stop], values[start:stop].T, out=out[layer])
    if not narrow:
        return out
    widened = wide[: out.size].reshape(out.shape)
    np.copyto(widened, out)
    return widened


def cross_layer_cka(
    xs: Any, ys: Any, debiased: bool = False, form: Form = "auto", gram_precision: str = "auto"
) -> np.ndarray:
    """Linear CKA between every layer of ``xs`` and every layer of ``ys`` (paper 3's heat map).

    Each layer is centered once and its statistics are shared by all pairs: in the Gram form every layer's
    centered Gram ``Kc_a`` is formed once (blockwise, never all at once) and ``<Kc_a, Lc_b>`` for all pairs
    comes from one stacked product; in the feature form each layer's ``Xc_a^T Xc_a`` is formed once and each
    pair costs one ``Xc_a^T Yc_b``. ``form="auto"`` picks the cheaper form by shape (Gram when ``n`` is small
    against ``d``·layers). Equal to calling :func:`linear_cka` on every pair, at a fraction of the cost.

    Memory: a float64 centered copy of every layer, ``8·n·(La·d1 + Lb·d2)`` bytes, plus 256 MiB of Gram blocks.

    Args:
        xs: ``(La, n, d1)`` array/tensor, or a sequence of ``(n, d1)`` per layer (e.g. speech layers).
        ys: ``(Lb, n, d2)`` array/tensor or sequence (e.g. text layers), the same ``n`` rows.
        debiased: unbiased HSIC estimator (see :func:`linear_cka`).
        form: ``"auto"``, ``"feature"`` or ``"gram"``.
        gram_precision: precision of the Gram products in the Gram form: ``"float64"``, ``"float32"``, or
            ``"auto"`` (float32 when both inputs are float32 or narrower — the products then carry no less
            precision than the data —, else float64). Centering and every sum over Gram entries are float64
            either way; the two agree to ~1e-7 on float32 data (tested).

    Returns:
        ``(La, Lb)`` float64 CKA matrix, rows = layers of ``xs``.
    """
    if form not in ("auto", "feature", "gram"):
        raise ConfigError(f"argument 'form': expected 'auto', 'feature' or 'gram', got {form!r}")
    xs_array = _as_layers(xs, "xs")
    ys_array = _as_layers(ys, "ys")
    n = xs_array.shape[1]
    if ys_array.shape[1] != n:
        raise ConfigError(
            f"argument 'xs' and argument 'ys': different numbers of rows ({n} vs {ys_array.shape[1]})"
        )
    _check_rows(n, debiased, "xs")
    if form == "auto":
        feature = _use_feature_form(
            n, xs_array.shape[0], xs_array.shape[2], ys_array.shape[0], ys_array.shape[2]
        )
        form = "feature" if feature else "gram"
    if gram_precision not in ("auto", "float32", "float64"):
        raise ConfigError(
            f"argument 'gram_precision': expected 'auto', 'float32' or 'float64', got {gram_precision!r}"
        )
    narrow = all(np.dtype(a.dtype).itemsize <= 4 for a in (xs_array, ys_array))
    use32 = form == "gram" and (gram_precision == "float32" or (gram_precision == "auto" and narrow))
    # float32 Gram products need only float32 centered data (means in float64): half the memory traffic
    centered_x = _centered(xs_array, np.float32 if use32 else np.float64)
    centered_y = _centered(ys_array, np.float32 if use32 else np.float64)
    if form == "feature":
        cross, self_x, self_y = _cross_statistics_feature(centered_x, centered_y)
    else:
        cross, self_x, self_y = _cross_statistics_gram(
            centered_x, centered_y, np.float32 if use32 else np.float64
        )
    a = np.stack([np.einsum("ij,ij->i", x, x, dtype=np.float64) for x in centered_x], axis=1)
    b = np.stack([np.einsum("ij,ij->i", y, y, dtype=np.float64) for y in centered_y], axis=1)
    return _finish(
        cross, self_x, self_y, a.T @ b, (a * a).sum(0), (b * b).sum(0), a.sum(0), b.sum(0), n, debiased
    )


def _finish(cross, self_x, self_y, norms_xy, norms_xx, norms_yy, sum_a, sum_b, n, debiased) -> np.ndarray:
    hsic_xy = _hsic(cross, norms_xy, sum_a[:, None], sum_b[None, :], n, debiased)
    hsic_xx = _hsic(self_x, norms_xx, sum_a, sum_a, n, debiased)
    hsic_yy = _hsic(self_y, norms_yy, sum_b, sum_b, n, debiased)
    return _ratio(hsic_xy, hsic_xx, hsic_yy, debiased)


class CrossLayerCKA:
    """:func:`cross_layer_cka` accumulated over minibatches of rows, with the same result as one call.

    Feed row batches with :meth:`update` (e.g. the DTW-paired states of one sample at a time), then call
    :meth:`compute`. Two ways to accumulate, chosen at the first batch:

    - ``"feature"``: running float64 sums of the feature-space statistics, ``Σ x``, ``Σ xᵀy`` for every layer
      pair, ``Σ xᵀx``, and for the debiased estimator the row-norm terms; memory independent of ``n``
      (``≈ 8·La·Lb·d1·d2`` bytes). Rows are shifted by the first batch's mean before summing (an exact
      change of origin: CKA and the unbiased HSIC do not depend on it) so that large common offsets in
      hidden states do not cost precision, and scaled per layer by the exact power of two of the first
      batch's peak (CKA does not depend on scale) so that the sums stay in the float64 range; centering
      happens in :meth:`compute`. Equal to the full computation up to float rounding.
    - ``"rows"``: keep the rows (in their own dtype) and run :func:`cross_layer_cka` at the end; memory
      ``∝ n``, exact.

    Accumulators of disjoint row sets (shards of one run, in separate processes) add up with :meth:`merge`.
    Feature sums are only addable in one frame: give every shard's accumulator the same origin with
    :meth:`set_origin` (the rows of one agreed batch, e.g. the run's first sample) before its first
    :meth:`update`; the merged accumulator then equals one accumulator fed every row, up to float rounding.

    ``"auto"`` takes ``"feature"`` when its statistics fit in ``max_bytes``, else ``"rows"``. This is not
    Google's minibatch CKA (the mean of per-batch unbiased HSIC values), which estimates a different quantity
    and depends on the batch size.
    """

    # the frame of the feature sums (per layer: power-of-two scale and shift), and the sums themselves
    _ORIGIN = ("_exponent_x", "_exponent_y", "_shift_x", "_shift_y")
    _SUMS = (
        "_sum_x",
        "_sum_y",
        "_xy",
        "_xx",
        "_yy",
        "_norms_xy",
        "_norms_xx",
        "_norms_yy",
        "_sum_a",
        "_sum_b",
        "_x_weighted_b",
        "_y_weighted_a",
        "_x_weighted_a",
        "_y_weighted_b",
    )

    def __init__(
        self,
        debiased: bool = False,
        accumulate: Literal["auto", "feature", "rows"] = "auto",
        max_bytes: int = 2 * 2**30,
    ) -> None:
        if accumulate not in ("auto", "feature", "rows"):
            raise ConfigError(
                f"argument 'accumulate': expected 'auto', 'feature' or 'rows', got {accumulate!r}"
            )
        self.debiased = debiased
        self.accumulate = accumulate
        self.max_bytes = max_bytes
        self.n_rows = 0
        self._shape: tuple[int, int, int, int] | None = None
        self._rows_x: list[np.ndarray] = []
        self._rows_y: list[np.ndarray] = []

    @property
    def shape(self) -> tuple[int, int, int, int] | None:
        """``(La, d1, Lb, d2)`` once the first batch (or :meth:`set_origin`) fixed it; None before."""
        return self._shape

    def _start(self, xs: np.ndarray, ys: np.ndarray) -> None:
        """Fix the shape, the way of accumulating and (feature sums) the origin from the rows ``xs``, ``ys``:
        per layer the power of two of their peak and the mean of the scaled rows."""
        n_x, _, d1 = xs.shape
        n_y, _, d2 = ys.shape
        self._shape = (n_x, d1, n_y, d2)
        if self.accumulate == "auto":
            feature_bytes = 8 * (
                n_x * n_y * d1 * d2 + n_x * d1 * d1 + n_y * d2 * d2 + 2 * n_x * n_y * (d1 + d2)
            )
            self.accumulate = "feature" if feature_bytes <= self.max_bytes else "rows"
        if self.accumulate == "feature":
            self._exponent_x = peak_exponent(xs.astype(np.float64), axis=(1, 2))[:, 0, 0]
            self._exponent_y = peak_exponent(ys.astype(np.float64), axis=(1, 2))[:, 0, 0]
            self._shift_x = self._scaled(xs, self._exponent_x).mean(axis=1)
            self._shift_y = self._scaled(ys, self._exponent_y).mean(axis=1)
            self._sum_x = np.zeros((n_x, d1))
            self._sum_y = np.zeros((n_y, d2))
            self._xy = np.zeros((n_x, n_y, d1, d2))
            self._xx = np.zeros((n_x, d1, d1))
            self._yy = np.zeros((n_y, d2, d2))
            self._norms_xy = np.zeros((n_x, n_y))
            self._norms_xx = np.zeros(n_x)
            self._norms_yy = np.zeros(n_y)
            self._sum_a = np.zeros(n_x)
            self._sum_b = np.zeros(n_y)
            self._x_weighted_b = np.zeros((n_x, n_y, d1))  # Σ_i |y_bi|² x_ai
            self._y_weighted_a = np.zeros((n_y, n_x, d2))  # Σ_i |x_ai|² y_bi
            self._x_weighted_a = np.zeros((n_x, d1))  # Σ_i |x_ai|² x_ai
            self._y_weighted_b = np.zeros((n_y, d2))

    def set_origin(self, xs: Any, ys: Any) -> None:
        """Take the origin of the feature sums from these rows, without adding them.

        An accumulator otherwise takes its origin (per layer: the power of two of the peak, and the mean
        of the scaled rows) from its first batch. Accumulators that are to be merged (:meth:`merge`) must
        share it: give each the same rows, e.g. the first sample of the whole run, before any
        :meth:`update`. Also fixes the shape and, for ``"auto"``, the way of accumulating; with ``"rows"``
        nothing else changes (rows need no origin).

        Args:
            xs: ``(La, m, d1)`` rows at every ``xs`` layer.
            ys: ``(Lb, m, d2)`` the same rows at every ``ys`` layer.

        Raises:
            ConfigError: the origin is already set (by an earlier :meth:`update` or :meth:`set_origin`);
                the rows of ``xs`` and ``ys`` differ in number.
        """
        if self._shape is not None:
            raise ConfigError(
                "CrossLayerCKA.set_origin: the origin is already set (by an earlier update or set_origin); "
                "call set_origin before the first update"
            )
        xs_array, ys_array = self._batch(xs, ys, "xs", "ys")
        self._start(xs_array, ys_array)

    @staticmethod
    def _batch(xs: Any, ys: Any, name_x: str, name_y: str) -> tuple[np.ndarray, np.ndarray]:
        xs_array = _as_layers(xs, name_x)
        ys_array = _as_layers(ys, name_y)
        if xs_array.shape[1] != ys_array.shape[1]:
            raise ConfigError(
                f"argument {name_x!r} and argument {name_y!r}: different numbers of rows "
                f"({xs_array.shape[1]} vs {ys_array.shape[1]})"
            )
        return xs_array, ys_array

    def update(self, xs_batch: Any, ys_batch: Any) -> None:
        """Add a batch of rows.

        Args:
            xs_batch: ``(La, m, d1)`` states of the batch's ``m`` rows at every ``xs`` layer.
            ys_batch: ``(Lb, m, d2)`` states of the same rows at every ``ys`` layer.
        """
        xs, ys = self._batch(xs_batch, ys_batch, "xs_batch", "ys_batch")
        if self._shape is None:
            self._start(xs, ys)
        expected = self._shape
        got = (xs.shape[0], xs.shape[2], ys.shape[0], ys.shape[2])
        if got != expected:
            raise ConfigError(
                f"argument 'xs_batch' / argument 'ys_batch': (layers, dim) of xs and ys are {got}, "
                f"earlier batches had {expected}"
            )
        self.n_rows += xs.shape[1]
        if self.accumulate == "rows":
            self._rows_x.append(np.array(xs))
            self._rows_y.append(np.array(ys))
            return
        x = self._scaled(xs, self._exponent_x) - self._shift_x[:, None, :]
        y = self._scaled(ys, self._exponent_y) - self._shift_y[:, None, :]
        a = np.einsum("lij,lij->li", x, x)
        b = np.einsum("lij,lij->li", y, y)
        self._sum_x += x.sum(axis=1)
        self._sum_y += y.sum(axis=1)
        for layer_x in range(x.shape[0]):
            self._xx[layer_x] += x[layer_x].T @ x[layer_x]
            for layer_y in range(y.shape[0]):
                self._xy[layer_x, layer_y] += x[layer_x].T @ y[layer_y]
        for layer_y in range(y.shape[0]):
            self._yy[layer_y] += y[layer_y].T @ y[layer_y]
        self._norms_xy += a @ b.T
        self._norms_xx += (a * a).sum(axis=1)
        self._norms_yy += (b * b).sum(axis=1)
        self._sum_a += a.sum(axis=1)
        self._sum_b += b.sum(axis=1)
        self._x_weighted_b += np.einsum("lid,mi->lmd", x, b)
        self._y_weighted_a += np.einsum("mid,li->mld", y, a)
        self._x_weighted_a += np.einsum("lid,li->ld", x, a)
        self._y_weighted_b += np.einsum("mid,mi->md", y, b)

    def merge(self, other: CrossLayerCKA) -> None:
        """Add the rows ``other`` accumulated (a disjoint set: another shard of the same run) to this one.

        Feature sums are added; they must be in the same frame, so both accumulators need the same
        estimator, shape and origin (:meth:`set_origin`). Rows are appended after this accumulator's rows.
        An accumulator that saw nothing yet takes over ``other`` as it is.

        Raises:
            ConfigError: ``other`` is not a :class:`CrossLayerCKA`, or differs in ``debiased``, shape, way of
                accumulating (``"feature"`` / ``"rows"``) or origin.
        """
        if not isinstance(other, CrossLayerCKA):
            raise ConfigError(f"argument 'other' must be a CrossLayerCKA, got {type(other).__name__}")
        if other.debiased != self.debiased:
            raise ConfigError(
                f"argument 'other': debiased={other.debiased}, this accumulator has debiased={self.debiased}; "
                "only accumulators of the same estimator merge"
            )
        if other._shape is None:
            return
        if self._shape is None:
            if self.accumulate not in ("auto", other.accumulate):
                raise ConfigError(
                    f"argument 'other' accumulates {other.accumulate!r}, this accumulator {self.accumulate!r}"
                )
            self._take_over(other)
            return
        if other._shape != self._shape:
            raise ConfigError(
                f"argument 'other': (layers, dim) of xs and ys are {other._shape}, this accumulator has "
                f"{self._shape}"
            )
        if other.accumulate != self.accumulate:
            raise ConfigError(
                f"argument 'other' accumulates {other.accumulate!r}, this accumulator {self.accumulate!r}; "
                "give both the same max_bytes (or accumulate)"
            )
        if self.accumulate == "rows":
            self._rows_x.extend(np.array(rows) for rows in other._rows_x)
            self._rows_y.extend(np.array(rows) for rows in other._rows_y)
        else:
            if not all(np.array_equal(getattr(self, name), getattr(other, name)) for name in self._ORIGIN):
                raise ConfigError(
                    "argument 'other' sums its rows around another origin (shift and scale of the first "
                    "batch); give every accumulator to be merged the same rows with set_origin before its "
                    "first update"
                )
            for name in self._SUMS:
                np.add(getattr(self, name), getattr(other, name), out=getattr(self, name))
        self.n_rows += other.n_rows

    def _take_over(self, other: CrossLayerCKA) -> None:
        """Become a copy of ``other`` (its arrays copied, so that later updates of either stay apart)."""
        self.accumulate = other.accumulate
        self._shape = other._shape
        self.n_rows = other.n_rows
        if other.accumulate == "rows":
            self._rows_x = [np.array(rows) for rows in other._rows_x]
            self._rows_y = [np.array(rows) for rows in other._rows_y]
            return
        for name in (*self._ORIGIN, *self._SUMS):
            setattr(self, name, np.array(getattr(other, name)))

    @staticmethod
    def _scaled(layers: np.ndarray, exponent: np.ndarray) -> np.ndarray:
        """``(L, m, d)`` float64 rows times ``2^-exponent[l]`` per layer (exact)."""
        return np.ldexp(layers.astype(np.float64), -exponent[:, None, None])

    def state_dict(self) -> dict[str, np.ndarray]:
        """Everything accumulated so far as plain arrays (for ``np.savez``; no pickle needed to reload).

        ``"meta"`` holds the settings and row count as a JSON string; the sums (``"feature"``) or the rows
        (``"rows"``: ``"rows_x"`` ``(La, n, d1)``, ``"rows_y"`` ``(Lb, n, d2)``) follow. Reload with
        :meth:`from_state`.
        """
        meta = {
            "n_rows": self.n_rows,
            "accumulate": self.accumulate,
            "debiased": self.debiased,
            "shape": self._shape,
        }
        state: dict[str, np.ndarray] = {"meta": np.array(json.dumps(meta))}
        if self._shape is None:
            return state
        if self.accumulate == "rows":
            n_x, d1, n_y, d2 = self._shape
            # an accumulator given only its origin holds no rows yet
            state["rows_x"] = np.concatenate(self._rows_x or [np.empty((n_x, 0, d1))], axis=1)
            state["rows_y"] = np.concatenate(self._rows_y or [np.empty((n_y, 0, d2))], axis=1)
        else:
            state.update({name: value for name, value in vars(self).items() if isinstance(value, np.ndarray)})
        return state

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray], max_bytes: int = 2 * 2**30) -> CrossLayerCKA:
        """The accumulator that :meth:`state_dict` described; further :meth:`update` calls continue it."""
        if "meta" not in state:
            raise ConfigError("argument 'state' has no 'meta' entry (not a CrossLayerCKA.state_dict)")
        meta = json.loads(str(state["meta"]))
        accumulator = cls(debiased=bool(meta["debiased"]), accumulate=meta["accumulate"], max_bytes=max_bytes)
        accumulator.n_rows = int(meta["n_rows"])
        if meta["shape"] is None:
            return accumulator
        accumulator._shape = tuple(meta["shape"])
        if accumulator.accumulate == "rows":
            # no empty placeholder: its dtype would widen the rows added later
            accumulator._rows_x = [rows for rows in [np.asarray(state["rows_x"])] if rows.shape[1]]
            accumulator._rows_y = [rows for rows in [np.asarray(state["rows_y"])] if rows.shape[1]]
        else:
            # states saved before the per-layer scaling existed were summed unscaled (exponent 0)
            n_x, _, n_y, _ = accumulator._shape
            accumulator._exponent_x = np.zeros(n_x, dtype=np.int32)
            accumulator._exponent_y = np.zeros(n_y, dtype=np.int32)
            for name, value in state.items():
                if name.startswith("_"):
                    setattr(accumulator, name, np.asarray(value))
        return accumulator

    def compute(self) -> np.ndarray:
        """The ``(La, Lb)`` CKA matrix of all rows seen so far (equal to :func:`cross_layer_cka` on them)."""
        if self._shape is None:
            raise ConfigError("CrossLayerCKA.compute: no batch was added (call update first)")
        _check_rows(self.n_rows, self.debiased, "xs_batch")
        if self.accumulate == "rows":
            return cross_layer_cka(
                np.concatenate(self._rows_x, axis=1),
                np.concatenate(self._rows_y, axis=1),
                debiased=self.debiased,
            )
        n = self.n_rows
        mean_x = self._sum_x / n
        mean_y = self._sum_y / n
        if not self.debiased:
            # Centering at the end: Xcᵀ Yc = Xᵀ Y − n μx μyᵀ.
            cross_cov = self._xy - n * np.einsum("li,mj->lmij", mean_x, mean_y)
            cov_x = self._xx - n * np.einsum("li,lj->lij", mean_x, mean_x)
            cov_y = self._yy - n * np.einsum("mi,mj->mij", mean_y, mean_y)
            cross = np.square(cross_cov).sum(axis=(2, 3))
            self_x = np.square(cov_x).sum(axis=(1, 2))
            self_y = np.square(cov_y).sum(axis=(1, 2))
            return _ratio(cross, self_x, self_y, debiased=False)
        # The unbiased HSIC does not change under a shift of origin, so it is evaluated on the (uncentered)
        # shifted rows: K~ = K − diag(a), K~1 = X s − a with s = Σ x.
        hsic_xy = self._unbiased(
            np.square(self._xy).sum(axis=(2, 3)),
            self._norms_xy,
            self._sum_x[:, None, :],
            self._sum_y[None, :, :],
            self._sum_a[:, None],
            self._sum_b[None, :],
            np.einsum("li,lmij,mj->lm", self._sum_x, self._xy, self._sum_y),
            np.einsum("li,lmi->lm", self._sum_x, self._x_weighted_b),
            np.einsum("mj,mlj->lm", self._sum_y, self._y_weighted_a),
        )
        hsic_xx = self._unbiased(
            np.square(self._xx).sum(axis=(1, 2)),
            self._norms_xx,
            self._sum_x,
            self._sum_x,
            self._sum_a,
            self._sum_a,
            np.einsum("li,lij,lj->l", self._sum_x, self._xx, self._sum_x),
            np.einsum("li,li->l", self._sum_x, self._x_weighted_a),
            np.einsum("li,li->l", self._sum_x, self._x_weighted_a),
        )
        hsic_yy = self._unbiased(
            np.square(self._yy).sum(axis=(1, 2)),
            self._norms_yy,
            self._sum_y,
            self._sum_y,
            self._sum_b,
            self._sum_b,
            np.einsum("mi,mij,mj->m", self._sum_y, self._yy, self._sum_y),
            np.einsum("mi,mi->m", self._sum_y, self._y_weighted_b),
            np.einsum("mi,mi->m", self._sum_y, self._y_weighted_b),
        )
        return _ratio(hsic_xy, hsic_xx, hsic_yy, debiased=True)

    def _unbiased(self, cross, norms_ab, sum_x, sum_y, sum_a, sum_b, s_xy_s, s_x_b, s_y_a) -> np.ndarray:
        """``n(n−3)·HSIC_u`` from uncentered sums (Song et al. 2012, eq. 5, in feature form)."""
        n = self.n_rows
        trace = cross - norms_ab
        ones_k = np.square(sum_x).sum(axis=-1) - sum_a
        ones_l = np.square(sum_y).sum(axis=-1) - sum_b
        ones_kl = s_xy_s - s_x_b - s_y_a + norms_ab
        return trace + ones_k * ones_l / ((n - 1) * (n - 2)) - 2.0 * ones_kl / (n - 2)


@dataclass(frozen=True)
class CKABand:
    """Which text layers each speech layer matches in a CKA heat map (paper 3: "~6 text layers each").

    Attributes:
        best: ``(La,)`` index of the best-matching column (text layer) for each row (speech layer).
        best_value: ``(La,)`` the CKA at ``best``.
        lower: ``(La,)`` first column of the band: the contiguous run of columns around ``best`` whose CKA is
            at least ``best_value − tolerance``.
        upper: ``(La,)`` last column of the band (inclusive).
        width: ``(La,)`` ``upper − lower + 1``, the number of text layers in the band.
        tolerance: the tolerance used.
    """

    best: np.ndarray
    best_value: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    width: np.ndarray
    tolerance: float


def cka_band(matrix: Any, tolerance: float = 0.05) -> CKABand:
    """Best-matching text layer and band width per speech layer of a ``(La, Lb)`` CKA matrix.

    The paper gives no tolerance (open choice); the default 0.05 is absolute CKA. The band is the contiguous
    run of text layers around the best one within the tolerance, so a second, separate peak does not widen
    it. Ties for the best go to the lowest text layer.

    Args:
        matrix: ``(La, Lb)`` CKA values, rows = speech layers, columns = text layers.
        tolerance: absolute CKA below the row's best that still counts as matching, >= 0.

    Returns:
        :class:`CKABand`.
    """
    values = as_array(matrix, "matrix", ndim=2)
    if 0 in values.shape:
        raise ConfigError(
            f"argument 'matrix': expected a non-empty (La, Lb) matrix, got shape {values.shape}"
        )
    if tolerance < 0:
        raise ConfigError(f"argument 'tolerance': must be >= 0, got {tolerance}")
    best = values.argmax(axis=1)
    best_value = values[np.arange(values.shape[0]), best]
    inside = values >= (best_value - tolerance)[:, None]
    lower = np.empty_like(best)
    upper = np.empty_like(best)
    for row, column in enumerate(best):
        low = column
        while low > 0 and inside[row, low - 1]:
            low -= 1
        high = column
        while high < values.shape[1] - 1 and inside[row, high + 1]:
            high += 1
        lower[row], upper[row] = low, high
    return CKABand(
        best=best,
        best_value=best_value,
        lower=lower,
        upper=upper,
        width=upper - lower + 1,
        tolerance=tolerance,
    )


def mutual_knn(x: Any, y: Any, k: int = 10) -> float:
    """Mutual k-nearest-neighbour alignment of two representations of the same rows (Huh et al. 2024).

    Each row's ``k`` nearest other rows are found by cosine similarity in ``x`` and, separately, in ``y``;
    the score is the share of neighbours the two sets have in common, averaged over rows. 1 = the same
    neighbourhoods, ``≈ k/(n−1)`` for unrelated representations. Ties among equally similar neighbours are
    broken arbitrarily.

    Args:
        x: ``(n, d1)`` representation.
        y: ``(n, d2)`` representation of the same rows.
        k: neighbours per row, ``1 <= k <= n − 1``.

    Returns:
        The alignment in [0, 1].
    """
    x = as_float_rows(x, "x")
    y = as_float_rows(y, "y")
    n = x.shape[0]
    if y.shape[0] != n:
        raise ConfigError(f"argument 'x' and argument 'y': different numbers of rows ({n} vs {y.shape[0]})")
    if not 1 <= k <= n - 1:
        raise ConfigError(f"argument 'k': must be in [1, n − 1] = [1, {n - 1}], got {k}")

    def neighbours(features: np.ndarray) -> np.ndarray:
        unit = unit_rows(features)
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        return np.argpartition(-similarity, k - 1, axis=1)[:, :k]

    in_x = np.zeros((n, n), dtype=bool)
    np.put_along_axis(in_x, neighbours(x), True, axis=1)
    shared = np.take_along_axis(in_x, neighbours(y), axis=1).sum(axis=1)
    return float(shared.mean() / k)
