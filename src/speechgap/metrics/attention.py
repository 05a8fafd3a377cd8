"""Attention dispersion at the decision step (paper 3, Table 2): how thinly the attention is spread over the
question.

Paper 3 reads three statistics of the attention that the last prompt position (the decision step) pays to
the question tokens, per layer and head, averaged: the normalized entropy, the largest single-token weight
and Cov_0.90, the fewest tokens that hold 90 % of the mass (Qwen2.5-Omni: 8 text vs 101 speech tokens;
maximum 0.64 vs 0.11; normalized entropy 0.36 vs 0.66).

The paper does not say whether the weights are renormalized over the question before the statistics are
taken. speechgap's reading, used everywhere here: the weights on the question span are divided by their sum
(the attention *within* the question), and the share of the whole attention that lands on the question is
reported beside them as ``span_mass``. Normalized entropy is ``H / log(n)`` with ``n`` the number of
question tokens (0 for a single token, where ``log 1 = 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from speechgap.errors import ConfigError
from speechgap.metrics._validation import as_array

_TIE = 1e-12
"""Cumulative mass within this of the target counts as reaching it (floating-point sums of exact shares)."""


@dataclass(frozen=True)
class AttentionDispersion:
    """Dispersion statistics of attention rows over one span.

    Every field has the leading shape of the weights given (e.g. ``(layers, heads)``), or is a scalar for
    one row.

    Attributes:
        normalized_entropy: entropy of the renormalized span weights / log(span length), in [0, 1].
        max_attention: the largest renormalized weight, in [1/n, 1].
        coverage: Cov_p: the fewest span tokens whose renormalized weights reach ``mass`` (integer >= 1).
        span_mass: the share of the row's attention that falls on the span, in [0, 1].
        mass: the ``p`` of Cov_p (paper 3: 0.90).
        span_length: number of tokens in the span.
    """

    normalized_entropy: np.ndarray
    max_attention: np.ndarray
    coverage: np.ndarray
    span_mass: np.ndarray
    mass: float
    span_length: int


def _check_mass(mass: float) -> float:
    if isinstance(mass, bool) or not isinstance(mass, int | float) or not 0.0 < float(mass) <= 1.0:
        raise ConfigError(f"argument 'mass' must be in (0, 1], got {mass!r}")
    return float(mass)


def _span(span: Any, n_keys: int) -> slice:
    if span is None:
        return slice(0, n_keys)
    if isinstance(span, slice):
        start, stop, step = span.indices(n_keys)
        if step != 1:
            raise ConfigError(f"argument 'span' must be a contiguous slice, got step {step}")
    else:
        try:
            start, stop = (int(v) for v in span)
        except (TypeError, ValueError):
            raise ConfigError(f"argument 'span' must be (start, stop) or a slice, got {span!r}") from None
    if not 0 <= start < stop <= n_keys:
        raise ConfigError(f"argument 'span' ({start}, {stop}) must be a non-empty range inside 0..{n_keys}")
    return slice(start, stop)


def attention_dispersion(weights: Any, span: Any = None, *, mass: float = 0.90) -> AttentionDispersion:
    """Dispersion of attention rows over a span of keys.

    Args:
        weights: ``(..., keys)`` attention weights of one query position (e.g. ``(layers, heads, keys)`` at
            the decision step), non-negative; each row is a softmax output (it need not sum to 1 over
            ``keys`` if earlier keys were cut off).
        span: ``(start, stop)`` key indices of the question (a slice works too); None = every key.
        mass: the ``p`` of Cov_p (paper 3: 0.90).

    Returns:
        :class:`AttentionDispersion` with the leading shape of ``weights``.

    Raises:
        ConfigError: negative or non-finite weights, a span outside the keys, a row with no mass on the span.
    """
    mass = _check_mass(mass)
    array = as_array(weights, "weights")
    if array.ndim < 1 or array.shape[-1] == 0:
        raise ConfigError(f"argument 'weights': expected (..., keys) with keys >= 1, got shape {array.shape}")
    if np.any(array < 0):
        raise ConfigError("argument 'weights': attention weights must be >= 0")
    window = _span(span, array.shape[-1])
    total = array.sum(axis=-1)
    on_span = array[..., window]
    span_total = on_span.sum(axis=-1)
    if np.any(span_total <= 0):
        raise ConfigError(
            "argument 'weights': a row puts no attention on the span; its dispersion is undefined"
        )
    p = on_span / span_total[..., None]
    n = p.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)
    normalized = entropy / np.log(n) if n > 1 else np.zeros_like(entropy)
    ordered = -np.sort(-p, axis=-1)
    cumulative = np.cumsum(ordered, axis=-1)
    coverage = np.argmax(cumulative >= mass - _TIE, axis=-1) + 1
    return AttentionDispersion(
        normalized_entropy=np.clip(normalized, 0.0, 1.0),
        max_attention=ordered[..., 0],
        coverage=coverage.astype(np.int64),
        span_mass=np.where(total > 0, span_total / np.where(total > 0, total, 1.0), 0.0),
        mass=mass,
        span_length=n,
    )


def attention_from_qk(queries: Any, keys: Any, *, scale: float | None = None) -> np.ndarray:
    """Softmax attention of query rows over key rows: ``softmax(q k^T · scale)`` (causal masking is the
    caller's: pass only the keys the query may see).

    An independent route to the weights, for checking weights a model returned against the captured
    queries and keys.

    Args:
        queries: ``(..., q, d)``.
        keys: ``(..., k, d)`` with the same leading shape.
        scale: the logit scale; None = ``1 / sqrt(d)``.

    Returns:
        ``(..., q, k)`` float64 weights, each row summing to 1.
    """
    q = as_array(queries, "queries")
    k = as_array(keys, "keys")
    if q.ndim < 2 or k.ndim < 2 or q.shape[-1] != k.shape[-1] or q.shape[:-2] != k.shape[:-2]:
        raise ConfigError(
            f"argument 'queries' and argument 'keys': expected (..., q, d) and (..., k, d), got {q.shape} and "
            f"{k.shape}"
        )
    factor = 1.0 / np.sqrt(q.shape[-1]) if scale is None else float(scale)
    logits = np.einsum("...qd,...kd->...qk", q, k) * factor
    logits -= logits.max(axis=-1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=-1, keepdims=True)
