"""Affinity Pooling: order-preserving merging of adjacent similar speech states (Xiang et al., Findings
of ACL 2026, arXiv 2604.06871, "Redundancy and Affinity Pooling").

The states of the speech span at one layer are scanned in order while an *active group* is kept. Token
``t`` joins the active group when its cosine similarity to the group's recent members (the last ``omega``
members, the look-back window) exceeds ``tau``; otherwise the group is closed and ``t`` opens a new one.
Only adjacent tokens ever share a group, so the order of the sequence is kept.

Two comparison rules (the paper leaves it open):

* ``"max"`` (default): join when ``max_j cos(x_t, x_j) > tau`` over the window members ``j``.
* ``"mean"``: join when ``cos(x_t, mean_j x_j) > tau``; with ``omega`` at least the group size this is
  the group mean.

Cosines are clipped to ``[-1, 1]``, so ``tau > 1`` never merges anything (the identity) and ``tau = -1``
merges every token whose neighbour is not exactly opposite (in practice: the whole span into one token).
A threshold below -1 or not a number is refused (:func:`check_tau`): no cosine can fall below it, so it
can only be a typo.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from speechgap.errors import ConfigError

RULES = ("max", "mean")

Groups = list[list[int]]
"""Ordered groups of indices into the span: each group is ascending, groups follow each other in order.
A group of several indices becomes one token (the mean of its members); an index in no group is dropped."""


def check_tau(tau: float, argument: str = "tau") -> float:
    """``tau`` as a float when it is a usable similarity threshold: a finite number >= -1.

    Values in [-1, 1] are cosine thresholds; values above 1 merge nothing (the unmodified model).

    Raises:
        ConfigError: naming ``argument``, for a non-number, NaN, infinity or a value below -1.
    """
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise ConfigError(f"argument {argument!r} must be a number (a cosine threshold), got {tau!r}")
    value = float(tau)
    if not math.isfinite(value):
        raise ConfigError(
            f"argument {argument!r} must be a finite cosine threshold in [-1, 1] (above 1: merge nothing), "
            f"got {value}"
        )
    if value < -1.0:
        raise ConfigError(
            f"argument {argument!r} must be a cosine threshold in [-1, 1] (above 1: merge nothing), got "
            f"{value:g}: no cosine is below -1, so every speech token would merge into one"
        )
    return value


def check_window(omega: int, argument: str = "omega") -> int:
    """``omega`` when it is a usable look-back window: an integer >= 1 (in group members).

    Raises:
        ConfigError: naming ``argument``.
    """
    if isinstance(omega, bool) or not isinstance(omega, numbers.Integral):
        raise ConfigError(f"argument {argument!r} must be an integer (the look-back window), got {omega!r}")
    if omega < 1:
        raise ConfigError(f"argument {argument!r} (the look-back window) must be >= 1, got {omega}")
    return int(omega)


def _check(states: np.ndarray, tau: float, omega: int, rule: str) -> np.ndarray:
    states = np.asarray(states, dtype=np.float64)
    if states.ndim != 2:
        raise ConfigError(f"argument 'states' must have shape (tokens, dim), got {states.shape}")
    check_window(omega)
    if rule not in RULES:
        raise ConfigError(f"argument 'rule' must be one of {RULES}, got {rule!r}")
    check_tau(tau)
    return states


def _unit(states: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(states, axis=-1, keepdims=True)
    return states / np.maximum(norms, 1e-12)


def affinity_groups(states: np.ndarray, tau: float, omega: int = 1, rule: str = "max") -> Groups:
    """The groups Affinity Pooling forms over ``states``.

    Args:
        states: ``(tokens, dim)`` hidden states of the speech span at one layer, in sequence order.
        tau: similarity threshold in [-1, 1]; a token joins when the similarity *exceeds* it
            (``tau > 1``: no merge).
        omega: look-back window, in group members (>= 1).
        rule: ``"max"`` or ``"mean"`` (module docstring).

    Returns:
        Contiguous groups covering ``0..tokens-1`` in order.
    """
    states = _check(states, tau, omega, rule)
    n = states.shape[0]
    if n == 0:
        return []
    unit = _unit(states)
    groups: Groups = [[0]]
    if rule == "max":
        # sims[d - 1, t] = cos(x_t, x_{t-d}): every similarity the scan can ask for, computed at once
        sims = np.full((omega, n), -np.inf)
        for d in range(1, min(omega, n - 1) + 1):
            sims[d - 1, d:] = np.clip(np.einsum("td,td->t", unit[d:], unit[:-d]), -1.0, 1.0)
        for t in range(1, n):
            active = groups[-1]
            reach = min(omega, len(active))  # the window holds only members of the active group
            if sims[:reach, t].max() > tau:
                active.append(t)
            else:
                groups.append([t])
        return groups
    window_sum = states[0].copy()
    for t in range(1, n):
        active = groups[-1]
        # window_sum holds the sum of the last min(omega, len(active)) members of the active group
        mean = window_sum / min(omega, len(active))
        norm = np.linalg.norm(mean)
        sim = float(np.clip(unit[t] @ mean / max(norm, 1e-12), -1.0, 1.0))
        if sim > tau:
            active.append(t)
            window_sum += states[t]
            if len(active) > omega:
                window_sum -= states[active[-omega - 1]]
        else:
            groups.append([t])
            window_sum = states[t].copy()
    return groups


def check_groups(groups: Groups, n: int, contiguous: bool = True) -> None:
    """Raise :class:`ConfigError` unless ``groups`` are ordered, disjoint indices into ``0..n-1``.

    With ``contiguous``, every group must also be a run of consecutive indices (adjacent merges only).
    """
    last = -1
    for group in groups:
        if not group:
            raise ConfigError("a merge group is empty")
        if group[0] <= last or any(b <= a for a, b in zip(group, group[1:], strict=False)):
            raise ConfigError(f"merge groups must be ascending and disjoint, got {group} after index {last}")
        if contiguous and group[-1] - group[0] != len(group) - 1:
            raise ConfigError(f"merge group {group} is not a run of adjacent tokens")
        last = group[-1]
    if last >= n:
        raise ConfigError(f"merge group index {last} is outside the span of {n} tokens")
