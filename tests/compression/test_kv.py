"""KV token merging (paper 3, appendix C): the pair rule's properties and the keys the engine hands it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from speechgap.compression.kv import KeyMerging, kv_merge_layers, kv_merge_plan, pair_merge_groups
from speechgap.compression.plan import MergePlan
from speechgap.compression.shorten import ShorteningEngine
from speechgap.errors import ConfigError


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("seed", range(40))
def test_pair_rule_properties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 30))
    base = rng.normal(size=8)
    keys = base + rng.normal(scale=rng.uniform(0.1, 2.0), size=(n, 8))
    threshold = float(rng.uniform(-0.5, 0.99))
    ratio = float(rng.choice([0.1, 0.25, 0.5]))
    groups = pair_merge_groups(keys, threshold, ratio)
    assert [i for g in groups for i in g] == list(range(n))  # every token, in order
    pairs = [g for g in groups if len(g) == 2]
    assert all(len(g) in (1, 2) for g in groups)
    assert len(pairs) <= math.floor(ratio * n + 1e-9)
    cosines = {t: _cos(keys[t], keys[t + 1]) for t in range(n - 1)}
    assert all(cosines[g[0]] > threshold for g in pairs)
    taken = {i for g in pairs for i in g}
    free = [t for t in range(n - 1) if cosines[t] > threshold and t not in taken and t + 1 not in taken]
    if len(pairs) < math.floor(ratio * n + 1e-9):
        assert not free  # under budget: no eligible pair was left free
    # best first: no free eligible pair beats the weakest merged pair
    if pairs and free:
        assert max(cosines[t] for t in free) <= min(cosines[g[0]] for g in pairs) + 1e-12


def test_pair_rule_edges():
    keys = np.repeat(np.arange(1.0, 5.0)[None], 10, axis=0)  # ten identical keys
    assert len([g for g in pair_merge_groups(keys, 0.9, 0.25) if len(g) == 2]) == 2
    assert pair_merge_groups(keys, 1.0, 0.5) == [[i] for i in range(10)]  # cosine 1 is not above 1
    assert pair_merge_groups(keys[:3], 0.9, 0.25) == [[0], [1], [2]]  # floor(0.75) = 0 merges
    scaled = keys * np.arange(1, 11)[:, None] * 1e200  # per-row scale changes no cosine
    assert pair_merge_groups(scaled, 0.9, 0.5) == pair_merge_groups(keys, 0.9, 0.5)
    with pytest.raises(ConfigError, match="argument 'kv_ratio'"):
        KeyMerging(0.9, 0.0)
    with pytest.raises(ConfigError, match="argument 'kv_tau'"):
        KeyMerging(float("nan"), 0.25)


def test_layers_follow_paper_3_proportionally():
    assert kv_merge_layers(28) == list(range(7, 22))
    assert kv_merge_layers(4) == [1, 2, 3]
    assert kv_merge_layers(2) == [1]
    with pytest.raises(ConfigError, match="argument 'num_layers'"):
        kv_merge_layers(1)


class _Recorder:
    def __init__(self):
        self.seen = []

    def groups(self, states, context):
        self.seen.append((states.copy(), context.keys(states)))
        return [[i] for i in range(states.shape[0])]

    def describe(self):
        return {"method": "recorder"}


def test_the_engine_hands_the_blocks_own_pre_rotary_keys(tiny, speech_samples):
    sample = speech_samples[0]
    for layer in (0, 2):
        recorder = _Recorder()
        ShorteningEngine(tiny, MergePlan({layer: recorder})).prefill(sample, "speech")
        batch = tiny.prepare([sample], "speech")
        with torch.inference_mode():
            hidden = tiny.model(**batch.inputs, output_hidden_states=True, use_cache=False).hidden_states[
                layer
            ]
            start, end = batch.spans[0]
            block = tiny.decoder_layers[layer]
            expected = block.self_attn.k_proj(block.input_layernorm(hidden[0, start:end])).float().numpy()
        states, keys = recorder.seen[0]
        assert keys.shape == (end - start, block.self_attn.k_proj.out_features)
        np.testing.assert_allclose(keys, expected, rtol=1e-4, atol=1e-5)


def test_kv_merging_above_one_is_the_model_and_at_minus_one_spends_the_budget(tiny, speech_samples):
    sample = speech_samples[0]
    expected = tiny.forward(tiny.prepare([sample], "speech")).logits[0, -1].float()
    state = ShorteningEngine(tiny, kv_merge_plan(tiny.num_layers, threshold=1.01)).prefill(sample, "speech")
    torch.testing.assert_close(state.logits, expected, rtol=0, atol=1e-5)
    assert state.retention == 1.0
    state = ShorteningEngine(tiny, kv_merge_plan(tiny.num_layers, threshold=-1.0, max_ratio=0.25)).prefill(
        sample, "speech"
    )
    lengths = [state.speech_tokens]
    for _ in range(1, tiny.num_layers):  # tiny has 4 blocks: KV merging at layers 1..3
        lengths.append(lengths[-1] - math.floor(0.25 * lengths[-1] + 1e-9))
    assert state.speech_lengths == [state.speech_tokens, *lengths[1:]]
