"""Probes (scikit-learn) and logit-lens read-outs against known properties and brute force."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from speechgap.errors import ConfigError
from speechgap.metrics.lens import token_log_probs, token_ranks
from speechgap.metrics.probes import fit_probe, split_indices


def _separable(n: int = 120, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.choice(list("ABCD"), size=n)
    centres = {letter: rng.normal(scale=6.0, size=d) for letter in "ABCD"}
    features = np.stack([centres[letter] for letter in labels]) + rng.normal(size=(n, d))
    return features, labels


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_a_probe_reads_separable_labels_and_not_shuffled_ones(kind):
    features, labels = _separable()
    good = fit_probe(features, labels, kind=kind, seed=0)
    assert good.accuracy >= 0.95 and good.ci[0] <= good.accuracy <= good.ci[1]
    assert good.n_train + good.n_test == 120 and good.n_test == 36
    shuffled = np.random.default_rng(1).permutation(labels)
    bad = fit_probe(features, shuffled, kind=kind, seed=0)
    assert bad.accuracy < 0.6  # four balanced labels: chance is about 0.25


def test_a_probe_is_reproducible_and_its_split_is_stratified():
    features, labels = _separable()
    assert fit_probe(features, labels, kind="mlp", seed=3) == fit_probe(features, labels, kind="mlp", seed=3)
    train, test = split_indices(labels, 0.3, seed=5)
    assert np.intersect1d(train, test).size == 0 and train.size + test.size == labels.size
    for letter in "ABCD":
        share_all = np.mean(labels == letter)
        assert abs(np.mean(labels[test] == letter) - share_all) < 0.1


def test_subset_accuracy_is_the_held_out_accuracy_on_the_marked_examples():
    features, labels = _separable(seed=2)
    # the subset: examples whose feature 0 is positive; the probe is perfect, so the subset accuracy is 1
    subset = features[:, 0] > 0
    result = fit_probe(features, labels, subset=subset, seed=0)
    _, test = split_indices(labels, 0.3, seed=0)
    assert result.subset_n == int(subset[test].sum())
    assert result.subset_accuracy == pytest.approx(1.0)
    nothing = fit_probe(features, labels, subset=np.zeros(labels.size, bool), seed=0)
    assert nothing.subset_accuracy is None and nothing.subset_n == 0


@pytest.mark.parametrize(
    ("features", "labels", "kwargs", "argument"),
    [
        (np.zeros((10, 3)), np.array(["A"] * 10), {}, "labels"),
        (np.zeros((10, 3)), np.array(["A", "B"] * 4), {}, "labels"),
        (np.zeros((3, 3)), np.array(["A", "B", "A"]), {}, "features"),
        (np.zeros((10, 3)), np.array(["A", "B"] * 5), {"kind": "svm"}, "kind"),
        (np.zeros((10, 3)), np.array(["A", "B"] * 5), {"test_fraction": 1.0}, "test_fraction"),
        (np.zeros((10, 3)), np.array(["A", "B"] * 5), {"subset": [True]}, "subset"),
    ],
)
def test_a_probe_refuses_bad_input(features, labels, kwargs, argument):
    with pytest.raises(ConfigError, match=f"argument '{argument}'"):
        fit_probe(features, labels, **kwargs)


def test_token_ranks_and_log_probs_against_brute_force():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 4, 50))
    targets = rng.integers(0, 50, size=(3, 4))
    ranks = token_ranks(logits, targets)
    log_probs = token_log_probs(logits, targets)
    for a in range(3):
        for b in range(4):
            order = list(np.argsort(-logits[a, b], kind="stable"))
            assert ranks[a, b] == order.index(targets[a, b])
            assert log_probs[a, b] == pytest.approx(np.log(softmax(logits[a, b])[targets[a, b]]))
    top = logits.argmax(-1)
    np.testing.assert_array_equal(token_ranks(logits, top), 0)
    # a tie with the top counts as top-1; shifting every logit changes nothing
    tied = np.array([[1.0, 3.0, 3.0]])
    np.testing.assert_array_equal(token_ranks(tied, [2]), [0])
    np.testing.assert_allclose(token_log_probs(logits + 1e3, targets), log_probs, rtol=1e-9)
    with pytest.raises(ConfigError, match="argument 'targets'"):
        token_ranks(logits, np.full((3, 4), 50))
    with pytest.raises(ConfigError, match="argument 'logits' and argument 'targets'"):
        token_ranks(logits, targets[:2])
