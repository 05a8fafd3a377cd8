"""KV token merging (paper 3, appendix C): merge adjacent speech tokens whose key vectors agree.

Paper 3 merges adjacent tokens whose key vectors have cosine > 0.90, with a maximum merge ratio of
0.10–0.25, best inside layers 7–21 (of Qwen2.5-Omni's 28), and reports +0.5 points on SpeechMMLU and BBH.
The exact rule beyond this is open; speechgap's reading, documented in ``docs/compression.md``:

* Keys: the block's own key projection of its normalized input, ``k_proj(input_layernorm(h))``, before the
  rotary embedding (the rotation depends on the position, which the merge rule sets separately).
* Pairs, not chains: at each merge layer, adjacent pairs ``(t, t+1)`` of the current speech span are ranked
  by the cosine of their keys; pairs above the threshold are taken best first, each token in at most one
  pair, until ``floor(max_ratio · n)`` merges are done. A merged pair becomes one token (the mean of the two
  states, as every reducer of the engine).
* Layers: every layer of ``round(7/28 · L) .. round(21/28 · L)`` (kept in ``1..L-1``), so the span shrinks
  by at most ``max_ratio`` per layer.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechgap.compression.affinity import Groups, check_tau
from speechgap.compression.plan import MergePlan, SpanContext
from speechgap.errors import ConfigError

PAPER_LAYERS = (7, 21, 28)
"""Paper 3's range: layers 7..21 of a 28-block Qwen2.5-Omni."""


def check_ratio(ratio: float, argument: str = "max_ratio") -> float:
    """A merge ratio in (0, 0.5]: pairs can at most halve a span."""
    if isinstance(ratio, bool) or not isinstance(ratio, numbers.Real) or not math.isfinite(ratio):
        raise ConfigError(f"argument {argument!r} must be a number in (0, 0.5], got {ratio!r}")
    if not 0.0 < float(ratio) <= 0.5:
        raise ConfigError(
            f"argument {argument!r} must be in (0, 0.5] (the share of tokens merged away per layer), got {ratio}"
        )
    return float(ratio)


def pair_merge_groups(keys: np.ndarray, threshold: float, max_ratio: float) -> Groups:
    """Groups of one span: the best adjacent key pairs above ``threshold``, at most ``floor(max_ratio · n)``.

    Args:
        keys: ``(tokens, dim)`` key vectors of the span, in order.
        threshold: cosine threshold (a pair merges when its cosine is strictly above it).
        max_ratio: the largest share of the span's tokens merged away.

    Returns:
        Ordered groups covering every index: merged pairs ``[t, t+1]`` and singletons.
    """
    n = keys.shape[0]
    budget = int(math.floor(max_ratio * n + 1e-9))
    if n < 2 or budget == 0:
        return [[i] for i in range(n)]
    scaled = keys / np.maximum(np.abs(keys).max(axis=1, keepdims=True), np.finfo(np.float64).tiny)
    norms = np.linalg.norm(scaled, axis=1)
    unit = scaled / np.where(norms > 0, norms, 1.0)[:, None]
    cosines = np.clip((unit[:-1] * unit[1:]).sum(axis=1), -1.0, 1.0)
    taken = np.zeros(n, dtype=bool)
    starts: list[int] = []
    # best first; ties broken by position so the result does not depend on the sort's stability
    for t in sorted(range(n - 1), key=lambda i: (-cosines[i], i)):
        if len(starts) == budget or cosines[t] <= threshold:
            break
        if not (taken[t] or taken[t + 1]):
            taken[t] = taken[t + 1] = True
            starts.append(t)
    pairs = set(starts)
    groups: Groups = []
    i = 0
    while i < n:
        if i in pairs:
            groups.append([i, i + 1])
            i += 2
        else:
            groups.append([i])
            i += 1
    return groups


@dataclass
class KeyMerging:
    """KV token merging at one layer (a span reducer; needs the engine to give it the block's keys).

    Attributes:
        threshold: key cosine above which an adjacent pair may merge (paper 3: 0.90).
        max_ratio: the largest share of the span merged away at this layer (paper 3: 0.10–0.25).
    """

    threshold: float = 0.90
    max_ratio: float = 0.25

    def __post_init__(self) -> None:
        check_tau(self.threshold, "kv_tau")
        check_ratio(self.max_ratio, "kv_ratio")

    def groups(self, states: np.ndarray, context: SpanContext) -> Groups:
        keys_of: Callable[[np.ndarray], np.ndarray] | None = getattr(context, "keys", None)
        if keys_of is None:
            raise ConfigError("KV token merging needs the block's key projection, and this engine gave none")
        return pair_merge_groups(
            np.asarray(keys_of(states), dtype=np.float64), self.threshold, self.max_ratio
        )

    def describe(self) -> dict[str, Any]:
        return {"method": "kv_merge", "kv_tau": self.threshold, "kv_ratio": self.max_ratio}


def kv_merge_layers(num_layers: int) -> list[int]:
    """Paper 3's layers 7..21 of 28 mapped to ``num_layers`` blocks, kept in ``1..L-1``."""
    if num_layers < 2:
        raise ConfigError(f"argument 'num_layers' must be >= 2 for KV merging, got {num_layers}")
    first, last, total = PAPER_LAYERS
    low = min(max(round(first / total * num_layers), 1), num_layers - 1)
    high = min(max(round(last / total * num_layers), low), num_layers - 1)
    return list(range(low, high + 1))


def kv_merge_plan(
    num_layers: int, threshold: float = 0.90, max_ratio: float = 0.25, position: str = "first"
) -> MergePlan:
    """A :class:`MergePlan` with :class:`KeyMerging` at every layer of :func:`kv_merge_layers`."""
    reducer = KeyMerging(threshold, max_ratio)
    return MergePlan({layer: reducer for layer in kv_merge_layers(num_layers)}, position=position)
