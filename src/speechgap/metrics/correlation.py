"""How a measure of the gap relates to the gap itself.

Paper 1 (Xiang et al., EMNLP 2025, arXiv 2510.12116) regresses the gap on a similarity measure with one
point per model checkpoint and reports R² (e.g. cosine vs GAP, LoRA models: 0.75; APS: 0.81). This module
gives that regression, Pearson and Spearman correlations with percentile-bootstrap confidence intervals,
and the per-sample relation between a measure and answer correctness (point-biserial correlation, AUROC,
group means).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from speechgap.errors import ConfigError
from speechgap.metrics._validation import as_array

__all__ = [
    "Correlation",
    "CorrectnessRelation",
    "Regression",
    "pearson",
    "regression_r2",
    "relation_to_correctness",
    "spearman",
]

# Bootstrap resamples are processed in chunks of at most this many values.
_BOOTSTRAP_CHUNK_VALUES = 2_000_000


def _paired(x: Any, y: Any, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    x = as_array(x, "x", ndim=1)
    y = as_array(y, "y", ndim=1)
    if x.shape != y.shape:
        raise ConfigError(f"argument 'x' and argument 'y': different lengths ({x.shape[0]} vs {y.shape[0]})")
    if x.shape[0] < minimum:
        raise ConfigError(f"argument 'x' and argument 'y': need at least {minimum} points, got {x.shape[0]}")
    for values, name in ((x, "x"), (y, "y")):
        if np.ptp(values) == 0:
            raise ConfigError(f"argument '{name}': all values are equal; the correlation is undefined")
    return x, y


@dataclass(frozen=True)
class Regression:
    """Least-squares line ``y = slope · x + intercept``.

    Attributes:
        slope: change in ``y`` per unit of ``x``.
        intercept: ``y`` at ``x = 0``.
        r2: coefficient of determination (squared Pearson r), in [0, 1].
        p_value: two-sided p-value of slope = 0 (t test, ``n − 2`` degrees of freedom).
        slope_stderr: standard error of the slope.
        n: number of points.
    """

    slope: float
    intercept: float
    r2: float
    p_value: float
    slope_stderr: float
    n: int


def regression_r2(x: Any, y: Any) -> Regression:
    """Linear regression of ``y`` on ``x`` with R², paper 1's analysis (one point per model checkpoint).

    Args:
        x: ``(n,)`` the measure per checkpoint (e.g. mean pooled cosine, APS).
        y: ``(n,)`` the gap per checkpoint (GAP = M_t − M_s, points).

    Returns:
        :class:`Regression`. ``n >= 3`` is required for the p-value.
    """
    x, y = _paired(x, y, minimum=3)
    n = x.shape[0]
    dx = x - x.mean()
    dy = y - y.mean()
    sxx, syy, sxy = dx @ dx, dy @ dy, dx @ dy
    slope = sxy / sxx
    r = float(np.clip(sxy / np.sqrt(sxx * syy), -1.0, 1.0))
    residual_share = max(1.0 - r * r, 0.0)
    if residual_share == 0.0:
        p_value, stderr = 0.0, 0.0
    else:
        t = r * np.sqrt((n - 2) / residual_share)
        p_value = float(2 * stats.t.sf(abs(t), n - 2))
        stderr = float(np.sqrt(residual_share * syy / sxx / (n - 2)))
    return Regression(
        slope=float(slope),
        intercept=float(y.mean() - slope * x.mean()),
        r2=r * r,
        p_value=p_value,
        slope_stderr=stderr,
        n=n,
    )


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient with its bootstrap confidence interval.

    Attributes:
        r: the coefficient on all points.
        p_value: two-sided p-value from scipy (t distribution).
        ci_low: lower end of the percentile-bootstrap interval.
        ci_high: upper end.
        confidence: the interval's level, e.g. 0.95.
        n: number of points.
        n_boot: bootstrap resamples drawn (resamples with a constant side are left out of the percentiles).
        method: ``"pearson"`` or ``"spearman"``.
    """

    r: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    n: int
    n_boot: int
    method: str


def _row_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    dx = x - x.mean(axis=1, keepdims=True)
    dy = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((dx * dx).sum(axis=1) * (dy * dy).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (dx * dy).sum(axis=1) / denominator, np.nan)


def _bootstrap(x: np.ndarray, y: np.ndarray, rank: bool, n_boot: int, confidence: float, seed: int):
    if n_boot < 1:
        raise ConfigError(f"argument 'n_boot': must be >= 1, got {n_boot}")
    if not 0 < confidence < 1:
        raise ConfigError(f"argument 'confidence': must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    n = x.shape[0]
    chunk = max(1, _BOOTSTRAP_CHUNK_VALUES // n)
    values = []
    for start in range(0, n_boot, chunk):
        index = rng.integers(0, n, size=(min(chunk, n_boot - start), n))
        xb, yb = x[index], y[index]
        if rank:
            xb = stats.rankdata(xb, axis=1)
            yb = stats.rankdata(yb, axis=1)
        values.append(_row_pearson(xb, yb))
    resampled = np.concatenate(values)
    resampled = resampled[np.isfinite(resampled)]
    if resampled.size == 0:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return float(low), float(high)


def _correlation(x: Any, y: Any, rank: bool, n_boot: int, confidence: float, seed: int) -> Correlation:
    x, y = _paired(x, y, minimum=3)
    result = stats.spearmanr(x, y) if rank else stats.pearsonr(x, y)
    low, high = _bootstrap(x, y, rank, n_boot, confidence, seed)
    return Correlation(
        r=float(result.statistic),
        p_value=float(result.pvalue),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        n=x.shape[0],
        n_boot=n_boot,
        method="spearman" if rank else "pearson",
    )


def pearson(x: Any, y: Any, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Correlation:
    """Pearson correlation with a seeded percentile-bootstrap confidence interval.

    Args:
        x: ``(n,)`` values, ``n >= 3``.
        y: ``(n,)`` values paired with ``x``.
        n_boot: bootstrap resamples (pairs drawn with replacement).
        confidence: interval level.
        seed: seed of the resampling (same seed, same interval).
    """
    return _correlation(x, y, False, n_boot, confidence, seed)


def spearman(x: Any, y: Any, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> Correlation:
    """Spearman rank correlation with a seeded percentile-bootstrap confidence interval (see :func:`pearson`)."""
    return _correlation(x, y, True, n_boot, confidence, seed)


@dataclass(frozen=True)
class CorrectnessRelation:
    """How a per-sample measure separates correct from incorrect answers.

    Attributes:
        point_biserial: Pearson correlation between the measure and correctness (1 = correct, 0 = wrong).
        p_value: its two-sided p-value.
        auroc: probability that a random correct sample has a higher measure than a random incorrect one
            (ties count half); 0.5 = no relation, below 0.5 = lower values go with correct answers.
        mean_correct: mean measure over correct samples.
        mean_incorrect: mean measure over incorrect samples.
        n_correct: number of correct samples.
        n_incorrect: number of incorrect samples.
    """

    point_biserial: float
    p_value: float
    auroc: float
    mean_correct: float
    mean_incorrect: float
    n_correct: int
    n_incorrect: int


def relation_to_correctness(measure: Any, correct: Any) -> CorrectnessRelation:
    """Per-sample relation between a measure (e.g. APS of a sample) and whether its speech answer was right.

    Args:
        measure: ``(n,)`` the measure per sample.
        correct: ``(n,)`` bool (or 0/1) correctness of each sample.

    Returns:
        :class:`CorrectnessRelation`. Both groups must be non-empty.
    """
    values = as_array(measure, "measure", ndim=1)
    flags = as_array(correct, "correct", ndim=1, dtype=None)
    if flags.shape != values.shape:
        raise ConfigError(
            f"argument 'measure' and argument 'correct': different lengths ({values.shape} vs {flags.shape})"
        )
    if not np.isin(flags, (0, 1)).all():
        raise ConfigError("argument 'correct': expected booleans or 0/1 values")
    flags = flags.astype(bool)
    n_correct = int(flags.sum())
    n_incorrect = int((~flags).sum())
    if n_correct == 0 or n_incorrect == 0:
        raise ConfigError(
            f"argument 'correct': needs both correct and incorrect samples, got {n_correct} and {n_incorrect}"
        )
    if np.ptp(values) == 0:
        raise ConfigError("argument 'measure': all values are equal; the relation is undefined")
    biserial = stats.pointbiserialr(flags.astype(np.float64), values)
    u_statistic = stats.mannwhitneyu(values[flags], values[~flags]).statistic
    return CorrectnessRelation(
        point_biserial=float(biserial.statistic),
        p_value=float(biserial.pvalue),
        auroc=float(u_statistic / (n_correct * n_incorrect)),
        mean_correct=float(values[flags].mean()),
        mean_incorrect=float(values[~flags].mean()),
        n_correct=n_correct,
        n_incorrect=n_incorrect,
    )
