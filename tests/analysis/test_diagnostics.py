"""Paper 3's per-sample diagnostics on a tiny Qwen2-Audio, each against an independent computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from speechgap.analysis.diagnostics import diagnose_sample, eager_attention, lens_logits, run_pass
from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError
from speechgap.metrics import attention_dispersion, cosine_matrix, dtw_path, token_frames


@pytest.fixture(scope="module")
def mcq_sample(dataset) -> PairedSample:
    base = dataset[1]
    return PairedSample(
        id="mcq",
        text=base.text,
        audio=base.audio,
        word_times=base.word_times,
        answer="C",
        choices=["Venus", "Earth", "Mars", "Jupiter"],
    )


def test_states_match_capture_and_the_model_keeps_its_kernel(adapter, dataset):
    sample = dataset[0]
    kernel = adapter.model.config._attn_implementation
    for modality in ("speech", "text"):
        run = run_pass(adapter, sample, modality)
        captured = adapter.capture(sample, modality)
        start, end = run.span
        # eager and sdpa kernels agree to float rounding
        np.testing.assert_allclose(run.states[:, start:end], captured.hidden, rtol=1e-4, atol=1e-5)
        assert run.attention.shape[0] == adapter.num_layers
        np.testing.assert_allclose(run.attention.sum(-1), 1.0, rtol=1e-5)
    assert adapter.model.config._attn_implementation == kernel


def test_the_lens_at_the_last_layer_is_the_models_own_output(adapter, dataset):
    sample = dataset[2]
    run = run_pass(adapter, sample, "text")
    lens = lens_logits(adapter, run.states[-1, run.decision])
    with torch.inference_mode():
        expected = adapter.forward(adapter.prepare([sample], "text")).logits[0, -1].float().numpy()
    np.testing.assert_allclose(lens, expected, rtol=1e-4, atol=1e-4)


def test_block_one_attention_equals_a_recomputation_from_queries_and_keys(adapter, dataset):
    """The decision row of block 1 recomputed by hand: q/k projections of the normed input, the model's
    rotary embedding, grouped heads, softmax(q k / sqrt(d))."""
    from transformers.models.qwen2.modeling_qwen2 import apply_rotary_pos_emb

    sample = dataset[3]
    run = run_pass(adapter, sample, "speech")
    block = adapter.decoder_layers[0]
    attn = block.self_attn
    config = adapter.text_config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    with torch.inference_mode():
        hidden = torch.as_tensor(run.states[0])[None]
        normed = block.input_layernorm(hidden)
        length = hidden.shape[1]
        q = attn.q_proj(normed).view(1, length, heads, head_dim).transpose(1, 2)
        k = attn.k_proj(normed).view(1, length, kv_heads, head_dim).transpose(1, 2)
        positions = torch.arange(length)[None]
        cos, sin = adapter.decoder_owner.rotary_emb(hidden, positions)
        q, k = apply_rotary_pos_emb(q, k, cos, sin)
        k = k.repeat_interleave(heads // kv_heads, dim=1)
        scores = (q[:, :, -1:] @ k.transpose(-1, -2))[0, :, 0] / math.sqrt(head_dim)
        expected = torch.softmax(scores, dim=-1).numpy()
    np.testing.assert_allclose(run.attention[0], expected, rtol=1e-4, atol=1e-6)


def test_diagnose_sample_against_its_definitions(adapter, mcq_sample):
    layers = adapter.num_layers
    result = diagnose_sample(adapter, mcq_sample, base_layer=1, stability_layers=(0, 2))
    speech = run_pass(adapter, mcq_sample, "speech")
    text = run_pass(adapter, mcq_sample, "text")
    s0, s1 = speech.span
    t0, t1 = text.span
    path = dtw_path(cosine_matrix(speech.states[1, s0:s1], text.states[1, t0:t1]))
    frames = token_frames(path, t1 - t0)
    transcript = text.input_ids[t0:t1]
    for layer in range(layers + 1):
        logits = lens_logits(adapter, speech.states[layer, s0:s1][frames])
        top1 = logits.argmax(-1) == transcript
        assert result.lens_top1[layer] == pytest.approx(top1.mean())
    assert result.lens_top1.shape == (layers + 1,) and result.update_cosine.shape == (layers,)
    assert np.all(np.abs(result.update_cosine) <= 1.0 + 1e-9)
    stats = attention_dispersion(text.attention, text.span)
    np.testing.assert_allclose(result.dispersion["text"]["coverage"], stats.coverage.mean(-1))
    assert result.path_stability.layers == [0, 1, 2]
    np.testing.assert_allclose(np.diag(result.path_stability.agreement), 1.0)
    letter_id = adapter.option_token_ids(["A", "B", "C", "D"])[2]
    for modality, run in (("speech", speech), ("text", text)):
        decision = lens_logits(adapter, run.states[:, run.decision])
        expected_rank = (decision > decision[:, [letter_id]]).sum(-1)
        np.testing.assert_array_equal(result.answer_rank[modality], expected_rank)
        assert np.all(result.answer_logprob[modality] <= 0)
        word_id = adapter.tokenizer(" Mars", add_special_tokens=False)["input_ids"][0]
        expected_word_rank = (decision > decision[:, [word_id]]).sum(-1)
        np.testing.assert_array_equal(result.answer_word_rank[modality], expected_word_rank)
    line = result.to_json()
    assert line["id"] == "mcq" and len(line["lens_rank"]) == layers + 1


def test_bad_layers_are_refused(adapter, mcq_sample):
    with pytest.raises(ConfigError, match="0..3"):
        diagnose_sample(adapter, mcq_sample, base_layer=9)


def test_eager_attention_restores_the_kernel_after_an_error(adapter):
    kernel = adapter.model.config._attn_implementation
    with pytest.raises(RuntimeError), eager_attention(adapter):
        assert adapter.model.config._attn_implementation == "eager"
        raise RuntimeError("inside")
    assert adapter.model.config._attn_implementation == kernel


def test_lens_ranks_equal_the_metrics_on_the_lens_logits(adapter, dataset):
    from speechgap.analysis.diagnostics import lens_ranks
    from speechgap.metrics import token_log_probs, token_ranks

    run = run_pass(adapter, dataset[0], "text")
    states = run.states[:, :6]  # (L+1, 6, d)
    targets = np.broadcast_to(run.input_ids[:6], states.shape[:-1])
    ranks, log_probs = lens_ranks(adapter, states, targets)
    logits = lens_logits(adapter, states)
    np.testing.assert_array_equal(ranks, token_ranks(logits, targets))
    np.testing.assert_allclose(log_probs, token_log_probs(logits, targets), rtol=1e-5, atol=1e-5)
