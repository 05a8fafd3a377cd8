"""Similarity matrices and pooled measures against direct loops and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from speechgap.errors import ConfigError
from speechgap.metrics import (
    cosine_matrix,
    euclidean_matrix,
    pooled_similarity,
    standardized_l2,
    token_norms,
)


def test_cosine_matrix_matches_scipy_and_handles_zero_rows():
    rng = np.random.default_rng(30)
    a = rng.normal(size=(7, 5))
    b = rng.normal(size=(4, 5))
    np.testing.assert_allclose(cosine_matrix(a, b), 1 - cdist(a, b, "cosine"), atol=1e-12)
    a[2] = 0.0
    assert np.all(cosine_matrix(a, b)[2] == 0.0)
    assert cosine_matrix(torch.from_numpy(b), b).diagonal() == pytest.approx(np.ones(4))


def test_euclidean_matrix_matches_scipy_with_large_offsets():
    rng = np.random.default_rng(31)
    a = rng.normal(size=(6, 8)) + 1e4
    b = np.concatenate([rng.normal(size=(3, 8)) + 1e4, a[:1]])
    distances = euclidean_matrix(a, b)
    np.testing.assert_allclose(distances, cdist(a, b), rtol=1e-9)
    assert distances[0, 3] == 0.0
    with pytest.raises(ConfigError, match="argument 'a' and argument 'b'"):
        euclidean_matrix(a, b[:, :7])


def test_pooled_similarity_per_layer():
    rng = np.random.default_rng(32)
    speech = rng.normal(size=(3, 10, 4)) + 1.0
    text = rng.normal(size=(3, 6, 4)) + 1.0
    result = pooled_similarity(speech, text)
    for layer in range(3):
        s, t = speech[layer].mean(0), text[layer].mean(0)
        assert result.cosine[layer] == pytest.approx(s @ t / np.linalg.norm(s) / np.linalg.norm(t))
        assert result.euclidean[layer] == pytest.approx(np.linalg.norm(s - t))
    assert result.mean_cosine == pytest.approx(result.cosine.mean())
    with pytest.raises(ConfigError, match="different numbers of layers"):
        pooled_similarity(speech, text[:2])
    with pytest.raises(ConfigError, match="'speech'.*3 dimensions"):
        pooled_similarity(speech[0], text)


def test_token_norms():
    rng = np.random.default_rng(33)
    states = rng.normal(size=(2, 5, 3))
    expected = [
        [np.sqrt(sum(v * v for v in states[layer, token])) for token in range(5)] for layer in range(2)
    ]
    np.testing.assert_allclose(token_norms(states), expected)


def test_standardized_l2_ignores_per_dimension_scale_and_offset():
    rng = np.random.default_rng(34)
    speech = rng.normal(size=(2, 12, 5))
    text = speech + 0.5 * rng.normal(size=(2, 12, 5))
    scale = rng.uniform(0.1, 100, size=5)
    offset = rng.normal(size=5) * 1e3
    for paired in (True, False):
        base = standardized_l2(speech, text, paired=paired)
        moved = standardized_l2(speech * scale + offset, text * scale + offset, paired=paired)
        np.testing.assert_allclose(moved, base, rtol=1e-8)
    assert np.all(standardized_l2(speech, speech) == 0.0)
    # Paired, one layer, by hand: standardize with the pooled mean/std, then mean row distance / sqrt(d).
    pooled = np.concatenate([speech[0], text[0]])
    z_s = (speech[0] - pooled.mean(0)) / pooled.std(0)
    z_t = (text[0] - pooled.mean(0)) / pooled.std(0)
    expected = np.linalg.norm(z_s - z_t, axis=1).mean() / np.sqrt(5)
    assert standardized_l2(speech, text)[0] == pytest.approx(expected)
    with pytest.raises(ConfigError, match="same shape when argument 'paired' is True"):
        standardized_l2(speech, text[:, :10])
    assert standardized_l2(speech, text[:, :10], paired=False).shape == (2,)


def test_low_precision_torch_tensors_are_widened():
    rng = np.random.default_rng(35)
    speech = torch.from_numpy(rng.normal(size=(2, 6, 4))).to(torch.bfloat16)
    text = torch.from_numpy(rng.normal(size=(2, 3, 4))).to(torch.bfloat16)
    result = pooled_similarity(speech, text)
    expected = pooled_similarity(speech.float().numpy(), text.float().numpy())
    np.testing.assert_allclose(result.cosine, expected.cosine)
    assert result.cosine.dtype == np.float64
