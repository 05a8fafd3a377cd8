"""Token Merging (ToMe; Bolya et al., ICLR 2023) as a baseline, restricted to where it is valid.

ToMe splits the tokens into two alternating sets A (even indices) and B (odd), matches every A token to
its most similar B token (cosine of the states), and merges the ``r`` best-matched pairs by averaging.
Its matching pairs tokens that are far apart and its output concatenates the sets, which reorders the
sequence: harmless in a bidirectional encoder, but inside a causal decoder it breaks the rotary
positions and the causal mask (a merged token would carry a later token's content to an earlier
position). speechgap therefore offers ToMe inside the language model only **order-preserving**: each A
token may match only its neighbouring B tokens (``i - 1``, ``i + 1``), so every merge joins adjacent
tokens; rounds repeat until the retention budget is met. The unrestricted form is refused there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from speechgap.compression.affinity import Groups
from speechgap.compression.plan import SpanContext
from speechgap.errors import ConfigError


def adjacent_bipartite_round(states: np.ndarray, r: int) -> Groups:
    """One ToMe round restricted to neighbours: merge the ``r`` best (A, neighbouring B) pairs.

    Args:
        states: ``(tokens, dim)``.
        r: merges wanted (at most ``ceil(tokens / 2)`` can happen in one round).

    Returns:
        Contiguous ordered groups covering ``0..tokens-1``; a B token may absorb both its A neighbours.
    """
    states = np.asarray(states, dtype=np.float64)
    n = states.shape[0]
    unit = states / np.maximum(np.linalg.norm(states, axis=-1, keepdims=True), 1e-12)
    # adjacent cosine: sim[i] = cos(x_i, x_{i+1})
    sim = np.einsum("td,td->t", unit[:-1], unit[1:]) if n > 1 else np.zeros(0)
    best_score, best_target = [], []
    a_tokens = list(range(0, n, 2))
    for a in a_tokens:
        left = sim[a - 1] if a - 1 >= 0 else -np.inf
        right = sim[a] if a + 1 < n else -np.inf
        best_score.append(max(left, right))
        best_target.append(a - 1 if left > right else a + 1)
    order = np.argsort(-np.asarray(best_score), kind="stable")
    target_of = {}
    for j in order[: max(0, r)]:
        if np.isfinite(best_score[j]):
            target_of[a_tokens[j]] = best_target[j]
    owner = list(range(n))  # each token's representative (a B token, or itself)
    for a, b in target_of.items():
        owner[a] = b
    groups: Groups = []
    for i in range(n):
        if groups and owner[groups[-1][0]] == owner[i]:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


@dataclass
class TokenMerging:
    """ToMe at one decoder layer, to a retention budget over the whole speech span.

    Attributes:
        retention: fraction of speech tokens left, in (0, 1]; the result has ``max(1, round(r * n))``
            tokens (or at most one more when a round cannot merge further).
        order_preserving: must be True inside a decoder (module docstring); False raises ConfigError.
    """

    retention: float
    order_preserving: bool = True

    def __post_init__(self) -> None:
        if not self.order_preserving:
            raise ConfigError(
                "argument 'order_preserving' must be True: ToMe's unrestricted bipartite matching reorders "
                "tokens, valid only in a bidirectional "
                "encoder, not inside the causal language model (it breaks rotary positions and the causal "
                "mask)"
            )
        if not 0.0 < self.retention <= 1.0:
            raise ConfigError(f"argument 'retention' must be in (0, 1], got {self.retention}")

    def groups(self, states: np.ndarray, context: SpanContext) -> Groups:
        states = np.asarray(states, dtype=np.float64)
        n = states.shape[0]
        target = min(n, max(1, int(round(self.retention * n))))
        groups: Groups = [[i] for i in range(n)]
        current = states
        while len(groups) > target:
            round_groups = adjacent_bipartite_round(current, len(groups) - target)
            if len(round_groups) == len(groups):
                break
            groups = [[m for j in g for m in groups[j]] for g in round_groups]
            current = np.stack([states[g].mean(0) for g in groups])
        return groups

    def describe(self) -> dict[str, Any]:
        return {"method": "tome_adjacent", "retention": self.retention}
