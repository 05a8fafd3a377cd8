"""Linear and MLP probes (paper 3): is the information decodable from a layer's states?

Paper 3 trains probes per layer and finds them accurate in middle and late layers even on samples the model
answers wrongly from speech: the information is there, the read-out fails. The probes are scikit-learn's
(logistic regression on standardized features; a one-hidden-layer MLP), trained on a seeded, stratified
split and scored on the held-out part, with a bootstrap interval over the held-out examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from speechgap.errors import ConfigError
from speechgap.metrics._validation import as_float_rows

PROBE_KINDS = ("linear", "mlp")


@dataclass(frozen=True)
class ProbeResult:
    """One probe trained and scored.

    Attributes:
        kind: ``"linear"`` or ``"mlp"``.
        accuracy: held-out accuracy.
        ci: bootstrap interval of ``accuracy`` over the held-out examples.
        chance: the held-out share of the training split's most frequent label (what a constant guess gets).
        n_train, n_test: examples in each split.
        subset_accuracy: held-out accuracy on the examples marked by ``subset`` (e.g. speech samples the model
            answered wrongly); None when none of them is held out or no subset was given.
        subset_n: held-out examples in the subset.
    """

    kind: str
    accuracy: float
    ci: tuple[float, float]
    chance: float
    n_train: int
    n_test: int
    subset_accuracy: float | None
    subset_n: int

    def to_json(self) -> dict[str, Any]:
        """The record ``summary.json`` and the per-layer tables hold."""
        return {
            "kind": self.kind,
            "accuracy": self.accuracy,
            "ci": list(self.ci),
            "chance": self.chance,
            "n_train": self.n_train,
            "n_test": self.n_test,
            "subset_accuracy": self.subset_accuracy,
            "subset_n": self.subset_n,
        }


def _estimator(kind: str, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    # tolerances of 1e-3 on standardized features: a probe's accuracy settles long before the optimiser's
    # default tolerance, and the probes run per layer (benchmarks/diagnostics_cost.py)
    if kind == "linear":
        model = LogisticRegression(max_iter=300, tol=1e-3)
    else:
        model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=150, tol=1e-3, random_state=seed)
    return make_pipeline(StandardScaler(), model)


def split_indices(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/test indices, stratified by label when every label has at least two examples."""
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 else None
    index = np.arange(labels.shape[0])
    try:
        train, test = train_test_split(index, test_size=test_fraction, random_state=seed, stratify=stratify)
    except ValueError:  # too few examples per class for a stratified test split of this size
        train, test = train_test_split(index, test_size=test_fraction, random_state=seed)
    return np.sort(train), np.sort(test)


def fit_probe(
    features: Any,
    labels: Any,
    *,
    kind: str = "linear",
    test_fraction: float = 0.3,
    seed: int = 0,
    subset: Any = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
) -> ProbeResult:
    """Train a probe on a seeded split and score it on the held-out part.

    Args:
        features: ``(n, d)`` states (one row per example, e.g. the decision-step state of each sample).
        labels: ``(n,)`` labels (letters, word ids, modality names: anything hashable).
        kind: ``"linear"`` (logistic regression) or ``"mlp"`` (one hidden layer of 64).
        test_fraction: held-out share, in (0, 1).
        seed: seeds the split, the MLP's initialization and the bootstrap.
        subset: ``(n,)`` booleans: also report the held-out accuracy on these examples.
        n_boot: bootstrap resamples of the held-out examples.
        confidence: level of the interval.

    Returns:
        :class:`ProbeResult`.

    Raises:
        ConfigError: fewer than 2 labels, fewer than 4 examples, mismatched lengths, a bad setting.
    """
    if kind not in PROBE_KINDS:
        raise ConfigError(f"argument 'kind' must be one of {', '.join(PROBE_KINDS)}, got {kind!r}")
    if (
        isinstance(test_fraction, bool)
        or not isinstance(test_fraction, int | float)
        or not 0 < test_fraction < 1
    ):
        raise ConfigError(f"argument 'test_fraction' must be in (0, 1), got {test_fraction!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ConfigError(f"argument 'seed' must be an integer, got {seed!r}")
    x = as_float_rows(features, "features")
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ConfigError(f"argument 'labels': expected ({x.shape[0]},) labels, got shape {y.shape}")
    if x.shape[0] < 4:
        raise ConfigError(f"argument 'features': a probe needs at least 4 examples, got {x.shape[0]}")
    if np.unique(y).size < 2:
        raise ConfigError("argument 'labels': a probe needs at least two distinct labels")
    mask = None
    if subset is not None:
        mask = np.asarray(subset, dtype=bool)
        if mask.shape != y.shape:
            raise ConfigError(f"argument 'subset': expected ({y.shape[0]},) booleans, got shape {mask.shape}")
    train, test = split_indices(y, float(test_fraction), int(seed))
    if np.unique(y[train]).size < 2:
        raise ConfigError("argument 'labels': the training split holds a single label; give more examples")
    model = _estimator(kind, int(seed))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # convergence chatter on tiny splits; the accuracy says what it learnt
        model.fit(x[train], y[train])
    hits = (model.predict(x[test]) == y[test]).astype(np.float64)
    values, counts = np.unique(y[train], return_counts=True)
    majority = values[np.argmax(counts)]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, hits.size, size=(n_boot, hits.size))
    boot = hits[draws].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    subset_accuracy, subset_n = None, 0
    if mask is not None:
        chosen = mask[test]
        subset_n = int(chosen.sum())
        if subset_n:
            subset_accuracy = float(hits[chosen].mean())
    return ProbeResult(
        kind=kind,
        accuracy=float(hits.mean()),
        ci=(float(np.quantile(boot, alpha)), float(np.quantile(boot, 1.0 - alpha))),
        chance=float((y[test] == majority).mean()),
        n_train=int(train.size),
        n_test=int(test.size),
        subset_accuracy=subset_accuracy,
        subset_n=subset_n,
    )
