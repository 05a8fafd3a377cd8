"""The shortening engine against the unmodified model and against references built from transformers'
own forward pass on the shortened sequence, recomputed from scratch (no cache) at every decode step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from speechgap.compression.affinity import affinity_groups
from speechgap.compression.plan import AffinityPooling, MergePlan, dual_affinity_plan
from speechgap.compression.shorten import ShorteningEngine
from speechgap.errors import ConfigError

STEPS = 6


def _layer0(tiny, sample):
    batch = tiny.prepare([sample], "speech")
    with torch.inference_mode():
        out = tiny.model(**batch.inputs, output_hidden_states=True, use_cache=False)
    return out.hidden_states[0], batch.spans[0]


def _engine_trace(engine, sample, steps=STEPS):
    """Greedy tokens and the logits before each, from the engine (prefill then cached steps)."""
    state = engine.prefill(sample, "speech")
    logits, tokens = [state.logits], []
    for _ in range(steps):
        tokens.append(int(torch.argmax(logits[-1])))
        logits.append(engine.step(state, tokens[-1]))
    return tokens, torch.stack(logits[:-1]), state


def _merge(span_states, groups):
    return torch.stack([span_states[g].mean(0) for g in groups])


def _threshold(span_states, omega=1):
    """A tau at which about half of the adjacent pairs merge (random weights: no fixed value works)."""
    unit = torch.nn.functional.normalize(span_states.double(), dim=-1)
    return float(torch.quantile((unit[1:] * unit[:-1]).sum(-1), 0.5))


def test_tau_above_one_equals_the_unmodified_model(tiny, speech_samples):
    engine = ShorteningEngine(tiny, dual_affinity_plan(tiny.num_layers, input_tau=1.01, deep_tau=1.01))
    for sample in speech_samples:
        expected = tiny.forward(tiny.prepare([sample], "speech")).logits[0, -1]
        state = engine.prefill(sample, "speech")
        torch.testing.assert_close(state.logits, expected.float(), rtol=0, atol=1e-5)
        assert state.retention == 1.0
        generation = engine.generate(sample, "speech", max_new_tokens=12)
        text = tiny.tokenizer.decode(generation.token_ids, skip_special_tokens=True)
        assert text == tiny.generate(sample, "speech", max_new_tokens=12)


@pytest.mark.parametrize("position", ["first", "compact"])
def test_input_merge_equals_the_model_run_on_the_merged_sequence(tiny, speech_samples, position):
    sample = speech_samples[0]
    h0, (start, end) = _layer0(tiny, sample)
    tau = _threshold(h0[0, start:end])
    groups = affinity_groups(h0[0, start:end].numpy(), tau, 1, "max")
    assert 1 < len(groups) < end - start  # the test exercises real merging
    merged = _merge(h0[0, start:end], groups)
    embeds = torch.cat([h0[0, :start], merged, h0[0, end:]])[None]
    total = h0.shape[1]
    if position == "first":
        pos = torch.cat(
            [torch.arange(start), start + torch.tensor([g[0] for g in groups]), torch.arange(end, total)]
        )
    else:
        pos = torch.arange(embeds.shape[1])
    engine = ShorteningEngine(tiny, MergePlan({0: AffinityPooling(tau, 1)}, position=position))
    tokens, logits, state = _engine_trace(engine, sample)
    assert state.speech_lengths == [len(groups)] * tiny.num_layers
    language_model, embed = tiny.model.model.language_model, tiny.model.get_input_embeddings()
    with torch.inference_mode():
        for step in range(STEPS):  # no cache: the whole merged sequence every step
            # an explicit all-ones mask: without one, transformers reads gaps in position ids as packed
            # sequences and blocks attention across them
            ones = torch.ones(1, embeds.shape[1], dtype=torch.long)
            hidden = language_model(
                inputs_embeds=embeds, position_ids=pos[None], attention_mask=ones, use_cache=False
            )
            ref_logits = tiny.model.lm_head(hidden.last_hidden_state[:, -1])[0]
            torch.testing.assert_close(logits[step], ref_logits, rtol=0, atol=1e-5)
            assert tokens[step] == int(torch.argmax(ref_logits))
            embeds = torch.cat([embeds, embed(torch.tensor([[tokens[step]]]))], dim=1)
            pos = torch.cat([pos, pos[-1:] + 1])


def _tail_model(language_model, first_block):
    """The language model from block ``first_block + 1`` on: a shallow copy with fewer blocks."""
    tail = copy.copy(language_model)
    tail._modules = dict(language_model._modules)
    tail.layers = torch.nn.ModuleList(list(language_model.layers)[first_block:])
    tail.config = copy.deepcopy(language_model.config)
    tail.config.num_hidden_layers = len(tail.layers)
    tail.config.layer_types = list(language_model.config.layer_types)[first_block:]
    return tail


def test_deep_merge_with_cache_equals_recomputation_without_cache(tiny, speech_samples):
    sample, layer, omega = speech_samples[1], 2, 3
    h0, (start, end) = _layer0(tiny, sample)
    language_model, embed = tiny.model.model.language_model, tiny.model.get_input_embeddings()
    tail = _tail_model(language_model, layer)
    with torch.inference_mode():
        deep = language_model(inputs_embeds=h0, output_hidden_states=True).hidden_states[layer]
    tau = _threshold(deep[0, start:end])
    engine = ShorteningEngine(tiny, MergePlan({layer: AffinityPooling(tau, omega)}))
    tokens, logits, state = _engine_trace(engine, sample)
    total = h0.shape[1]
    embeds = h0
    with torch.inference_mode():
        for step in range(STEPS):
            full_pos = torch.arange(embeds.shape[1])
            states = language_model(
                inputs_embeds=embeds, position_ids=full_pos[None], output_hidden_states=True
            )
            at_layer = states.hidden_states[layer][0]
            groups = affinity_groups(at_layer[start:end].numpy(), tau, omega, "max")
            merged = torch.cat([at_layer[:start], _merge(at_layer[start:end], groups), at_layer[end:]])[None]
            pos = torch.cat([full_pos[:start], start + torch.tensor([g[0] for g in groups]), full_pos[end:]])
            ref_logits = tiny.model.lm_head(
                tail(
                    inputs_embeds=merged,
                    position_ids=pos[None],
                    attention_mask=torch.ones(1, merged.shape[1], dtype=torch.long),
                    use_cache=False,
                ).last_hidden_state[:, -1]
            )[0]
            torch.testing.assert_close(logits[step], ref_logits, rtol=0, atol=1e-5)
            assert tokens[step] == int(torch.argmax(ref_logits))
            embeds = torch.cat([embeds, embed(torch.tensor([[tokens[step]]]))], dim=1)
    assert 1 < len(groups) < end - start
    expected = [total] * layer + [total - (end - start) + len(groups)] * (tiny.num_layers - layer)
    assert state.seq_lengths == expected
    assert state.retention == pytest.approx(len(groups) / (end - start))
    # the cache of each block holds its own length: prompt + the decoded tokens
    assert [lay.keys.shape[2] for lay in state.cache.layers] == [n + STEPS for n in expected]


def test_generation_after_merging_runs_to_the_end(tiny, speech_samples):
    engine = ShorteningEngine(tiny, dual_affinity_plan(tiny.num_layers, input_tau=-1.0, deep_tau=-1.0))
    generation = engine.generate(speech_samples[0], "speech", max_new_tokens=9)
    assert generation.prefill.speech_lengths[-1] == 1  # everything merged into one token
    assert len(generation.token_ids) == 9 or generation.token_ids[-1] in engine.eos_ids


def test_bad_plans_are_refused(tiny):
    with pytest.raises(ConfigError, match="merge layers"):
        ShorteningEngine(tiny, MergePlan({tiny.num_layers: AffinityPooling(0.5)}))
    with pytest.raises(ConfigError, match="position"):
        MergePlan({}, position="last")
    assert np.isclose(dual_affinity_plan(32).reductions[29].tau, 0.7)


def test_the_prefill_says_which_frames_each_remaining_token_came_from(tiny, speech_samples):
    from speechgap.compression.run import LengthRecord

    sample = speech_samples[0]
    hidden, (start, end) = _layer0(tiny, sample)
    span = hidden[0, start:end]
    tau = _threshold(span)
    engine = ShorteningEngine(tiny, MergePlan(reductions={0: AffinityPooling(tau=tau, omega=1)}))
    state = engine.prefill(sample, "speech")
    # independent: the input merge groups computed directly on the layer-0 span
    expected = affinity_groups(span.float().numpy(), tau, 1, "max")
    assert state.members == expected
    assert len(state.members) == state.speech_lengths[-1] < end - start
    record = LengthRecord.from_prefill(sample.id, state)
    assert record.groups == [[g[0], g[-1]] for g in expected]
    # without a merge every frame is its own token
    plain = ShorteningEngine(tiny, MergePlan(reductions={})).prefill(sample, "speech")
    assert plain.members == [[i] for i in range(end - start)]
    assert ShorteningEngine(tiny, MergePlan(reductions={})).prefill(sample, "text").members == []
