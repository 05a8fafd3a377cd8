"""Attention dispersion, layer-update cosines and path stability against brute force and known properties."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from speechgap.errors import ConfigError
from speechgap.metrics.attention import attention_dispersion, attention_from_qk
from speechgap.metrics.updates import path_stability, update_cosines


def _brute_coverage(p: np.ndarray, mass: float) -> int:
    """The fewest entries whose sum reaches ``mass``, by trying every subset from the smallest size up."""
    for size in range(1, p.size + 1):
        if any(sum(p[list(c)]) >= mass - 1e-12 for c in itertools.combinations(range(p.size), size)):
            return size
    raise AssertionError("unreachable: all entries sum to 1")


def test_dispersion_matches_brute_force_on_small_rows():
    rng = np.random.default_rng(0)
    for _ in range(200):
        n_keys = int(rng.integers(2, 9))
        row = rng.dirichlet(np.full(n_keys, rng.uniform(0.1, 3.0)))
        start = int(rng.integers(0, n_keys - 1))
        stop = int(rng.integers(start + 1, n_keys + 1))
        mass = float(rng.choice([0.5, 0.8, 0.9, 1.0]))
        got = attention_dispersion(row, (start, stop), mass=mass)
        p = row[start:stop] / row[start:stop].sum()
        n = stop - start
        entropy = -sum(x * math.log(x) for x in p if x > 0)
        assert got.coverage == _brute_coverage(p, mass)
        assert got.max_attention == pytest.approx(max(p))
        assert got.normalized_entropy == pytest.approx(entropy / math.log(n) if n > 1 else 0.0)
        assert got.span_mass == pytest.approx(row[start:stop].sum() / row.sum())
        assert got.span_length == n


def test_dispersion_extremes():
    uniform = attention_dispersion(np.full(100, 0.01))
    assert uniform.normalized_entropy == pytest.approx(1.0)
    assert uniform.max_attention == pytest.approx(0.01)
    assert uniform.coverage == 90  # exactly 90 equal shares reach 0.90
    peaked = attention_dispersion(np.array([0.0, 1.0, 0.0, 0.0]))
    assert peaked.normalized_entropy == 0.0 and peaked.max_attention == 1.0 and peaked.coverage == 1


def test_dispersion_keeps_leading_shape_and_is_invariant_to_scaling_the_row():
    rng = np.random.default_rng(1)
    weights = rng.dirichlet(np.ones(12), size=(3, 4))  # (layers, heads, keys)
    got = attention_dispersion(weights, (2, 10))
    assert got.coverage.shape == (3, 4) and got.normalized_entropy.shape == (3, 4)
    scaled = attention_dispersion(weights * 0.25, (2, 10))
    np.testing.assert_allclose(scaled.normalized_entropy, got.normalized_entropy, rtol=1e-12)
    np.testing.assert_array_equal(scaled.coverage, got.coverage)
    for layer, head in itertools.product(range(3), range(4)):
        one = attention_dispersion(weights[layer, head], (2, 10))
        assert one.coverage == got.coverage[layer, head]


@pytest.mark.parametrize(
    ("weights", "span", "mass", "argument"),
    [
        ([0.5, -0.1, 0.6], None, 0.9, "weights"),
        ([0.5, 0.5], (1, 3), 0.9, "span"),
        ([0.5, 0.5], (1, 1), 0.9, "span"),
        ([1.0, 0.0, 0.0], (1, 3), 0.9, "weights"),
        ([0.5, 0.5], None, 0.0, "mass"),
        ([0.5, 0.5], None, 1.5, "mass"),
        ([0.5, float("nan")], None, 0.9, "weights"),
    ],
)
def test_dispersion_refuses_bad_input(weights, span, mass, argument):
    with pytest.raises(ConfigError, match=f"argument '{argument}'"):
        attention_dispersion(weights, span, mass=mass)


def test_attention_from_qk_matches_torch_sdpa():
    import torch

    rng = np.random.default_rng(2)
    q = rng.normal(size=(2, 3, 5, 8))
    k = rng.normal(size=(2, 3, 7, 8))
    weights = attention_from_qk(q, k)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)
    reference = torch.softmax(torch.tensor(q) @ torch.tensor(k).transpose(-1, -2) / math.sqrt(8), dim=-1)
    np.testing.assert_allclose(weights, reference.numpy(), rtol=1e-10, atol=1e-12)


def test_update_cosines_against_a_loop():
    rng = np.random.default_rng(3)
    speech = rng.normal(size=(5, 9, 6))
    text = rng.normal(size=(5, 4, 6))
    path = [(0, 0), (1, 0), (3, 1), (5, 2), (8, 3)]
    got = update_cosines(speech, text, path)
    assert got.shape == (4,)
    for layer in range(1, 5):
        values = []
        for i, j in path:
            a = speech[layer, i] - speech[layer - 1, i]
            b = text[layer, j] - text[layer - 1, j]
            values.append(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        assert got[layer - 1] == pytest.approx(np.mean(values), rel=1e-12)


def test_update_cosines_properties():
    rng = np.random.default_rng(4)
    text = rng.normal(size=(4, 3, 5))
    # the same updates, scaled and on a shifted residual stream: cosine 1 at every layer
    speech = 7.0 * text + rng.normal(size=(1, 3, 5))
    path = [(0, 0), (1, 1), (2, 2)]
    np.testing.assert_allclose(update_cosines(speech, text, path), 1.0, rtol=1e-12)
    np.testing.assert_allclose(update_cosines(-speech, text, path), -1.0, rtol=1e-12)
    with pytest.raises(ConfigError, match="argument 'path'"):
        update_cosines(speech, text, [(0, 3)])
    with pytest.raises(ConfigError, match="same number"):
        update_cosines(speech[:3], text, path)


def test_path_stability_agreement_and_shift():
    got = path_stability({5: [0, 2, 4, 6], 1: [0, 1, 4, 9], 8: [0, 2, 4, 6]})
    assert got.layers == [1, 5, 8]
    np.testing.assert_allclose(np.diag(got.agreement), 1.0)
    assert got.agreement[1, 2] == 1.0 and got.mean_shift[1, 2] == 0.0
    assert got.agreement[0, 1] == 0.5 and got.mean_shift[0, 1] == pytest.approx((0 + 1 + 0 + 3) / 4)
    np.testing.assert_array_equal(got.agreement, got.agreement.T)
    assert got.to_json()["layers"] == [1, 5, 8]
    with pytest.raises(ConfigError, match="same non-zero number"):
        path_stability({1: [0, 1], 2: [0, 1, 2]})
