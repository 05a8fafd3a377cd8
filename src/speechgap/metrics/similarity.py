"""Similarity and distance between speech and text hidden states.

Coarse (sequence-level) measures of the modality gap: cosine and Euclidean matrices between token states,
the mean-pooled similarity of paper 1 (Xiang et al., EMNLP 2025, arXiv 2510.12116, §"sequence-level
similarity"), per-token norms and the standardized L2 distance of paper 3 (Hsu et al., arXiv 2603.01502).
All functions take numpy arrays or torch tensors and compute in float64, on inputs rescaled by an exact
power of two (:mod:`speechgap.metrics._scale`) so that states of any finite magnitude neither overflow nor
underflow; NaN or infinite inputs are refused with an error naming the argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from speechgap.errors import ConfigError
from speechgap.metrics._scale import peak_exponent, unit_rows
from speechgap.metrics._validation import as_float_rows, as_layered, check_same_dim

__all__ = [
    "PooledSimilarity",
    "cosine_matrix",
    "euclidean_matrix",
    "pooled_similarity",
    "standardized_l2",
    "token_norms",
]


def cosine_matrix(a: Any, b: Any) -> np.ndarray:
    """Cosine similarity of every row of ``a`` with every row of ``b``.

    Args:
        a: ``(n, d)`` states, e.g. the speech frames of one layer.
        b: ``(m, d)`` states, e.g. the transcript tokens of the same layer.

    Returns:
        ``(n, m)`` float64 array, ``out[i, j] = a_i · b_j / (|a_i| |b_j|)``, in [-1, 1]. A zero row gives 0.
    """
    a = as_float_rows(a, "a")
    b = as_float_rows(b, "b")
    check_same_dim(a, b, "a", "b")
    return np.clip(unit_rows(a) @ unit_rows(b).T, -1.0, 1.0)


def euclidean_matrix(a: Any, b: Any) -> np.ndarray:
    """Euclidean distance of every row of ``a`` to every row of ``b``.

    Computed as ``sqrt(|a_i|² + |b_j|² − 2 a_i·b_j)`` after subtracting the joint mean of all rows (distances
    do not change under a shared translation, and the subtraction keeps the expansion accurate for the large
    common offsets LLM hidden states have); entries where the expansion cancels (distance below 1e-3 of the
    norms) are recomputed as ``|a_i − b_j|`` directly, so identical rows give exactly 0.

    Args:
        a: ``(n, d)`` states.
        b: ``(m, d)`` states.

    Returns:
        ``(n, m)`` float64 array of distances, same unit as the states.
    """
    a = as_float_rows(a, "a")
    b = as_float_rows(b, "b")
    check_same_dim(a, b, "a", "b")
    # one exact power-of-two scale for both, so that sums and squares stay in range; undone at the end
    exponent = np.maximum(peak_exponent(a), peak_exponent(b))
    a = np.ldexp(a, -exponent)
    b = np.ldexp(b, -exponent)
    center = (a.sum(axis=0) + b.sum(axis=0)) / (a.shape[0] + b.shape[0])
    a = a - center
    b = b - center
    norms = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :]
    squared = norms - 2.0 * (a @ b.T)
    # Where the distance is tiny against the norms the expansion has cancelled; recompute those directly.
    rows, cols = np.nonzero(squared <= 1e-6 * norms)
    squared[rows, cols] = np.square(a[rows] - b[cols]).sum(axis=1)
    return np.ldexp(np.sqrt(np.maximum(squared, 0.0)), exponent)


@dataclass(frozen=True)
class PooledSimilarity:
    """Per-layer similarity of the mean-pooled speech span and the mean-pooled transcript span.

    Attributes:
        cosine: ``(layers,)`` cosine(mean_i h^s_{l,i}, mean_j h^t_{l,j}); higher = more aligned in direction.
        euclidean: ``(layers,)`` ``||mean_i h^s_{l,i} − mean_j h^t_{l,j}||``; lower = closer.
    """

    cosine: np.ndarray
    euclidean: np.ndarray

    @property
    def mean_cosine(self) -> float:
        """The one-number-per-sample summary of paper 1: mean over layers."""
        return float(self.cosine.mean())

    @property
    def mean_euclidean(self) -> float:
        """Mean over layers of the pooled Euclidean distance."""
        return float(self.euclidean.mean())


def pooled_similarity(speech: Any, text: Any) -> PooledSimilarity:
    """Sequence-level similarity of paper 1: mean-pool each span per layer, then cosine and Euclidean.

    Only the speech positions and the transcript positions should be passed (system prompt and instruction
    positions dropped), as in the paper.

    Args:
        speech: ``(layers, T_s, d)`` hidden states of the speech span.
        text: ``(layers, T_t, d)`` hidden states of the transcript span, same layers and ``d``.

    Returns:
        :class:`PooledSimilarity` with ``(layers,)`` arrays.
    """
    speech = as_layered(speech, "speech")
    text = as_layered(text, "text")
    check_same_dim(speech, text, "speech", "text")
    if speech.shape[0] != text.shape[0]:
        raise ConfigError(
            f"argument 'speech' and argument 'text': different numbers of layers "
            f"({speech.shape[0]} vs {text.shape[0]})"
        )
    # one exact power-of-two scale per layer for both spans (means and norms stay in range), undone after
    exponent = np.maximum(peak_exponent(speech, axis=(1, 2)), peak_exponent(text, axis=(1, 2)))
    speech_mean = np.ldexp(speech, -exponent).mean(axis=1)
    text_mean = np.ldexp(text, -exponent).mean(axis=1)
    cosine = (unit_rows(speech_mean) * unit_rows(text_mean)).sum(axis=1)
    euclidean = np.ldexp(np.linalg.norm(speech_mean - text_mean, axis=1), exponent[:, 0, 0])
    return PooledSimilarity(cosine=np.clip(cosine, -1.0, 1.0), euclidean=euclidean)


def token_norms(states: Any) -> np.ndarray:
    """L2 norm of every token state (paper 3's "mean token norm per layer" is ``token_norms(h).mean(1)``).

    Args:
        states: ``(layers, T, d)`` hidden states.

    Returns:
        ``(layers, T)`` float64 norms.
    """
    states = as_layered(states, "states")
    exponent = peak_exponent(states, axis=-1)
    return np.ldexp(np.linalg.norm(np.ldexp(states, -exponent), axis=-1), exponent[..., 0])


def standardized_l2(speech: Any, text: Any, *, paired: bool = True) -> np.ndarray:
    """Standardized L2 distance between speech and text states per layer (paper 3).

    Per layer, every feature dimension is standardized with the mean and standard deviation of the speech
    and text rows pooled together, ``z = (h − μ) / σ`` (a dimension with σ = 0 is left unscaled), so that a
    few huge dimensions do not dominate. The distance is divided by ``sqrt(d)`` so that models of different
    width are comparable (the RMS difference per dimension).

    The paper does not spell out the pairing (open choice):

    - ``paired=True`` (default): rows are paired (e.g. DTW-paired speech frame / text token, pooled over
      samples); the result is ``mean_i |z^s_i − z^t_i| / sqrt(d)``. ``speech`` and ``text`` must have the same
      shape.
    - ``paired=False``: the distance between the means of the standardized states, ``|mean z^s − mean z^t| /
      sqrt(d)``; the two may have different numbers of rows.

    Args:
        speech: ``(layers, n_s, d)`` speech states.
        text: ``(layers, n_t, d)`` text states.
        paired: see above.

    Returns:
        ``(layers,)`` float64, in units of pooled standard deviations.
    """
    speech = as_layered(speech, "speech")
    text = as_layered(text, "text")
    check_same_dim(speech, text, "speech", "text")
    if speech.shape[0] != text.shape[0]:
        raise ConfigError(
            f"argument 'speech' and argument 'text': different numbers of layers "
            f"({speech.shape[0]} vs {text.shape[0]})"
        )
    if paired and speech.shape != text.shape:
        raise ConfigError(
            f"argument 'speech' and argument 'text' need the same shape when argument 'paired' is True, "
            f"got {speech.shape} and {text.shape}"
        )
    # standardizing does not depend on scale: one exact power of two per layer keeps the variances in range
    exponent = np.maximum(peak_exponent(speech, axis=(1, 2)), peak_exponent(text, axis=(1, 2)))
    speech = np.ldexp(speech, -exponent)
    text = np.ldexp(text, -exponent)
    pooled = np.concatenate([speech, text], axis=1)
    mean = pooled.mean(axis=1, keepdims=True)
    std = pooled.std(axis=1, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    z_speech = (speech - mean) / std
    z_text = (text - mean) / std
    scale = np.sqrt(speech.shape[-1])
    if paired:
        return np.linalg.norm(z_speech - z_text, axis=-1).mean(axis=1) / scale
    return np.linalg.norm(z_speech.mean(axis=1) - z_text.mean(axis=1), axis=-1) / scale
