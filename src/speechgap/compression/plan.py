"""What to shorten where: a merge plan maps a layer to a span reducer.

A *span reducer* looks at the speech span's states at one layer and returns ordered groups of span indices
(:data:`speechgap.compression.affinity.Groups`): a group of several indices becomes one token (the mean of
its members), an index in no group is dropped. Every reducer keeps the order of the sequence; the engine
(:mod:`speechgap.compression.shorten`) checks that each group is a run of adjacent tokens.

Layer convention (as :mod:`speechgap.models.base`): a reduction at layer ``l`` shortens the input of
decoder block ``l + 1``; ``l = 0`` is the input to the first block (after the audio embeddings are spliced
in), ``l = L - 1`` the input of the last block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from speechgap.compression.affinity import RULES, Groups, affinity_groups, check_tau, check_window
from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError

POSITION_MODES = ("first", "mean", "compact")
"""Which rotary position a merged token keeps: its first member's (default), the mean of its members',
or ``compact``: every position renumbered ``0..T'-1`` after the merge (no gaps)."""


@dataclass
class SpanContext:
    """What a reducer may know besides the states.

    Attributes:
        sample: the sample being run (``word_times`` for the oracle).
        frame_times: float64 ``(tokens, 2)``: start/end seconds each *current* span token covers (a merged
            token covers its members' range).
        members: for each current span token, the indices of the original speech positions it holds.
        keys: maps span states ``(tokens, dim)`` to the keys ``(tokens, kv_dim)`` of the block they enter
            (its ``k_proj`` of its normalized input, before the rotary embedding); None where the engine
            cannot compute them. Read by KV token merging (:mod:`speechgap.compression.kv`).
    """

    sample: PairedSample
    frame_times: np.ndarray
    members: list[list[int]]
    keys: Callable[[np.ndarray], np.ndarray] | None = None


class SpanReducer(Protocol):
    """Returns the groups that shorten one layer's speech span."""

    def groups(self, states: np.ndarray, context: SpanContext) -> Groups:
        """``states``: float ``(tokens, dim)`` of the current speech span, in order."""
        ...

    def describe(self) -> dict[str, Any]: ...


@dataclass
class AffinityPooling:
    """Affinity Pooling at one layer (:func:`speechgap.compression.affinity.affinity_groups`).

    Attributes:
        tau: cosine threshold in [-1, 1] (a token joins when its similarity exceeds it; > 1 merges nothing).
        omega: look-back window in group members.
        rule: ``"max"`` (max over the window) or ``"mean"`` (cosine to the window mean).
    """

    tau: float
    omega: int = 1
    rule: str = "max"

    def __post_init__(self) -> None:
        check_tau(self.tau)
        check_window(self.omega)
        if self.rule not in RULES:
            raise ConfigError(f"argument 'rule' must be one of {RULES}, got {self.rule!r}")

    def groups(self, states: np.ndarray, context: SpanContext) -> Groups:
        return affinity_groups(states, self.tau, self.omega, self.rule)

    def describe(self) -> dict[str, Any]:
        return {"method": "affinity_pooling", "tau": self.tau, "omega": self.omega, "rule": self.rule}


@dataclass
class MergePlan:
    """Reductions of the speech span per layer, and the position rule of merged tokens.

    Attributes:
        reductions: ``{layer: reducer}``; layer ``l`` shortens the input of block ``l + 1`` (0..L-1).
        position: one of :data:`POSITION_MODES`.
    """

    reductions: dict[int, SpanReducer] = field(default_factory=dict)
    position: str = "first"

    def __post_init__(self) -> None:
        if self.position not in POSITION_MODES:
            raise ConfigError(f"argument 'position' must be one of {POSITION_MODES}, got {self.position!r}")
        self.reductions = {int(layer): reducer for layer, reducer in sorted(self.reductions.items())}

    def describe(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "reductions": {str(layer): reducer.describe() for layer, reducer in self.reductions.items()},
        }


def dual_affinity_plan(
    num_layers: int,
    input_tau: float = 0.8,
    input_omega: int = 1,
    deep_layer: int | None = None,
    deep_tau: float = 0.7,
    deep_omega: int = 3,
    rule: str = "max",
    position: str = "first",
) -> MergePlan:
    """Dual Affinity Pooling: AP at the input (layer 0) and AP at a deep layer (paper 2).

    The paper's Qwen2-Audio setting is input (tau 0.8, omega 1) + layer 29 of 32 (tau 0.7, omega 3);
    ``deep_layer=None`` maps "29 of 32" proportionally: :func:`proportional_deep_layer`.
    """
    deep = proportional_deep_layer(num_layers) if deep_layer is None else int(deep_layer)
    if not 1 <= deep <= num_layers - 1:
        raise ConfigError(
            f"argument 'deep_layer' must be in 1..{num_layers - 1} for a {num_layers}-block model, got {deep}"
        )
    return MergePlan(
        {0: AffinityPooling(input_tau, input_omega, rule), deep: AffinityPooling(deep_tau, deep_omega, rule)},
        position=position,
    )


def proportional_deep_layer(num_layers: int) -> int:
    """Paper 2's deep layer, 29 of 32 blocks, mapped to ``num_layers``: ``round(29 / 32 * L)``, kept in
    ``1..L-1`` (so there is at least one block after it). 4 blocks -> 3; 32 -> 29."""
    if num_layers < 2:
        raise ConfigError(
            f"argument 'num_layers' must be >= 2 (a deep-layer merge needs a block after it), got {num_layers}"
        )
    return min(max(round(29 / 32 * num_layers), 1), num_layers - 1)
