"""Logit-lens read-outs (paper 3): where, layer by layer, a token becomes the model's top prediction.

The lens itself (the model's final norm and LM head applied to an intermediate layer's states) belongs to
the model adapter; these functions read the resulting logits: the rank and log-probability of target tokens.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import logsumexp

from speechgap.errors import ConfigError
from speechgap.metrics._validation import as_array


def _logits_and_targets(logits: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    values = as_array(logits, "logits")
    ids = as_array(targets, "targets", dtype=np.int64)
    if values.ndim < 1 or values.shape[:-1] != ids.shape:
        raise ConfigError(
            f"argument 'logits' and argument 'targets': expected (..., vocab) and (...), got {values.shape} and "
            f"{ids.shape}"
        )
    if ids.size and (ids.min() < 0 or ids.max() >= values.shape[-1]):
        raise ConfigError(f"argument 'targets': token ids must be in 0..{values.shape[-1] - 1}")
    return values, ids


def token_ranks(logits: Any, targets: Any) -> np.ndarray:
    """Rank of each target token among the vocabulary: 0 = the top prediction.

    The rank counts the tokens with a strictly larger logit, so a tie with the top counts as top-1.

    Args:
        logits: ``(..., vocab)`` lens logits.
        targets: ``(...)`` token ids.

    Returns:
        ``(...)`` int64 ranks.
    """
    values, ids = _logits_and_targets(logits, targets)
    chosen = np.take_along_axis(values, ids[..., None], axis=-1)
    return (values > chosen).sum(axis=-1).astype(np.int64)


def token_log_probs(logits: Any, targets: Any) -> np.ndarray:
    """Log-probability of each target token under the softmax of its logits.

    Returns:
        ``(...)`` float64 log-probabilities (<= 0).
    """
    values, ids = _logits_and_targets(logits, targets)
    chosen = np.take_along_axis(values, ids[..., None], axis=-1)[..., 0]
    return chosen - logsumexp(values, axis=-1)
