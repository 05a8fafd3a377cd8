"""Affinity Pooling groups against a direct transcription of the definition, plus hand examples."""

from __future__ import annotations

import numpy as np
import pytest

from speechgap.compression.affinity import affinity_groups, check_groups
from speechgap.errors import ConfigError


def brute_force(states: np.ndarray, tau: float, omega: int, rule: str) -> list[list[int]]:
    """The scan as the paper words it, one cosine at a time, no precomputation."""

    def cos(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.clip(a @ b / (np.sqrt(a @ a) * np.sqrt(b @ b)), -1, 1))

    groups = [[0]]
    for t in range(1, len(states)):
        window = groups[-1][-omega:]
        if rule == "max":
            score = max(cos(states[t], states[j]) for j in window)
        else:
            score = cos(states[t], np.mean([states[j] for j in window], axis=0))
        if score > tau:
            groups[-1].append(t)
        else:
            groups.append([t])
    return groups


@pytest.mark.parametrize("rule", ["max", "mean"])
def test_matches_brute_force_on_random_inputs(rule):
    rng = np.random.default_rng(0)
    for trial in range(60):
        n, d = rng.integers(1, 25), rng.integers(2, 6)
        # a random walk makes neighbours similar, so groups of all sizes occur
        states = np.cumsum(rng.standard_normal((n, d)), axis=0) + 0.5
        tau = float(rng.uniform(-0.2, 0.99))
        omega = int(rng.integers(1, 5))
        got = affinity_groups(states, tau, omega, rule)
        assert got == brute_force(states, tau, omega, rule), (trial, tau, omega)
        check_groups(got, n)
        assert [i for g in got for i in g] == list(range(n))


def test_hand_examples():
    e0, e1 = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    diag = np.array([1.0, 1.0])  # cos 0.707 to e0 and e1
    states = np.stack([e0, e0 * 2, diag, e1, e1, e0])
    # omega 1: e0~2e0 (1.0); diag vs 2e0 0.707 > 0.7; e1 vs diag 0.707; e1~e1; e0 vs e1 = 0
    assert affinity_groups(states, 0.7, 1) == [[0, 1, 2, 3, 4], [5]]
    assert affinity_groups(states, 0.8, 1) == [[0, 1], [2], [3, 4], [5]]
    # rule mean, omega 3: diag vs mean(e0, 2e0) = 0.707; e1 vs mean(e0, 2e0, diag) = cos((4, 1), (0, 1)) = 0.24
    assert affinity_groups(states, 0.7, 3, "mean") == [[0, 1, 2], [3, 4], [5]]
    # tau above 1 never merges, even identical states; tau -1 merges everything not exactly opposite
    assert affinity_groups(np.ones((4, 3)), 1.0001, 2) == [[0], [1], [2], [3]]
    assert affinity_groups(states, -1.0, 1) == [list(range(6))]
    assert affinity_groups(np.stack([e0, -e0]), -1.0, 1) == [[0], [1]]


def test_bad_settings_are_refused():
    with pytest.raises(ConfigError, match="omega"):
        affinity_groups(np.ones((3, 2)), 0.5, 0)
    with pytest.raises(ConfigError, match="rule"):
        affinity_groups(np.ones((3, 2)), 0.5, 1, "median")
    # below -1 no cosine can fall: a typo, not a setting
    with pytest.raises(
        ConfigError, match=r"argument 'tau' must be a cosine threshold in \[-1, 1\].*got -1.5"
    ):
        affinity_groups(np.ones((3, 2)), -1.5, 1)
    for tau in (float("nan"), float("inf"), "0.5", True):
        with pytest.raises(ConfigError, match="argument 'tau'"):
            affinity_groups(np.ones((3, 2)), tau, 1)
    with pytest.raises(ConfigError, match="argument 'omega' must be an integer"):
        affinity_groups(np.ones((3, 2)), 0.5, 1.5)
    with pytest.raises(ConfigError, match="adjacent"):
        check_groups([[0, 2]], 3)
