"""Oracle layer-wise compression inside word windows (Xiang et al., arXiv 2604.06871, "oracle" study).

Word timings (``PairedSample.word_times``, from TTS or forced alignment) split the speech positions into
*word windows*: each position belongs to the word it overlaps most (by its ``frame_times``); runs of
positions that overlap no word (pauses) form windows of their own. At one layer every window of ``n``
tokens is shortened to ``k = max(1, round(retention * n))`` tokens by

* ``random``: keep ``k`` positions drawn without replacement (seeded per sample), in order;
* ``uniform``: keep the strided positions ``floor(i * n / k)``, ``i = 0..k-1``;
* ``merge``: split the window into ``k`` equal consecutive bins (``numpy.array_split``) and mean-pool each.

Windows never mix: a kept or merged token holds positions of one window only.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechgap.compression.affinity import Groups
from speechgap.compression.plan import SpanContext
from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError, DataError

ORACLE_METHODS = ("random", "uniform", "merge")


def word_windows(frame_times: np.ndarray, word_times: list[tuple[str, float, float]]) -> list[list[int]]:
    """Consecutive windows of speech positions, one per spoken word plus one per pause run.

    Args:
        frame_times: float ``(tokens, 2)`` start/end seconds of each position.
        word_times: ``(word, start_s, end_s)`` in order.

    Returns:
        Windows of position indices covering ``0..tokens-1`` in order.
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    n = frame_times.shape[0]
    if n == 0:
        return []
    owner = np.full(n, -1)
    if word_times:
        starts = np.array([w[1] for w in word_times], dtype=np.float64)
        ends = np.array([w[2] for w in word_times], dtype=np.float64)
        # overlap[i, w]: seconds position i shares with word w
        overlap = np.minimum(frame_times[:, 1:2], ends[None]) - np.maximum(frame_times[:, 0:1], starts[None])
        best = overlap.argmax(axis=1)
        owner = np.where(overlap[np.arange(n), best] > 0, best, -1)
    windows: list[list[int]] = [[0]]
    for i in range(1, n):
        if owner[i] == owner[i - 1]:
            windows[-1].append(i)
        else:
            windows.append([i])
    return windows


def window_budget(n: int, retention: float) -> int:
    """Tokens a window of ``n`` keeps: ``max(1, round(retention * n))`` (never more than ``n``)."""
    return min(n, max(1, int(round(retention * n))))


def shorten_window(window: list[int], method: str, retention: float, rng: np.random.Generator) -> Groups:
    """The groups one window is shortened to (indices from ``window``)."""
    n = len(window)
    k = window_budget(n, retention)
    if method == "random":
        keep = np.sort(rng.choice(n, size=k, replace=False))
        return [[window[int(i)]] for i in keep]
    if method == "uniform":
        return [[window[(i * n) // k]] for i in range(k)]
    if method == "merge":
        return [[window[int(i)] for i in part] for part in np.array_split(np.arange(n), k)]
    raise ConfigError(f"argument 'method' must be one of {ORACLE_METHODS}, got {method!r}")


@dataclass
class OracleCompression:
    """Oracle shortening at one layer to a retention budget within word windows.

    Attributes:
        method: ``"random"``, ``"uniform"`` or ``"merge"``.
        retention: fraction of each window's tokens to keep, in (0, 1].
        seed: seed of the random drop (combined with the sample id, so each sample has its own draw).
    """

    method: str
    retention: float
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in ORACLE_METHODS:
            raise ConfigError(f"argument 'method' must be one of {ORACLE_METHODS}, got {self.method!r}")
        if not 0.0 < self.retention <= 1.0:
            raise ConfigError(f"argument 'retention' must be in (0, 1], got {self.retention}")

    def groups(self, states: np.ndarray, context: SpanContext) -> Groups:
        sample: PairedSample = context.sample
        if not sample.word_times:
            raise DataError(
                f"sample {sample.id!r}: oracle compression needs word timings (field 'word_times'); "
                "synthesize the data with speechgap or align it first"
            )
        rng = np.random.default_rng([self.seed, zlib.crc32(sample.id.encode("utf-8"))])
        groups: Groups = []
        for window in word_windows(context.frame_times, sample.word_times):
            groups.extend(shorten_window(window, self.method, self.retention, rng))
        return groups

    def describe(self) -> dict[str, Any]:
        return {"method": f"oracle_{self.method}", "retention": self.retention, "seed": self.seed}
