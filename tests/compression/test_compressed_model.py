"""The merged model behind the evaluation runner's interface: option scoring through the adapter's one
implementation, and the engine refusing to run under an edit it cannot apply."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DynamicCache

from speechgap.compression.plan import MergePlan
from speechgap.compression.run import CompressedModel
from speechgap.compression.shorten import ShorteningEngine
from speechgap.errors import ConfigError, ModelError


def _span_length(adapter, sample) -> int:
    start, end = adapter.prepare([sample], "speech").spans[0]
    return end - start


def test_score_options_equal_the_adapter_with_an_empty_plan(tiny, speech_samples):
    """Same tokens, same arithmetic; the logits differ only by float32 rounding (engine vs model forward)."""
    compressed = CompressedModel(tiny, MergePlan())
    for sample in speech_samples:
        direct = tiny.score_options(sample, "speech")
        merged = compressed.score_options(sample, "speech")
        assert merged.options == direct.options == ["A", "B", "C", "D"]
        assert merged.token_ids == direct.token_ids == tiny.option_token_ids("ABCD")
        np.testing.assert_allclose(merged.log_probs, direct.log_probs, rtol=0, atol=1e-6)
        assert merged.margin == pytest.approx(direct.margin, abs=1e-6)
        assert merged.best == direct.best
        assert compressed.lengths[sample.id].speech_lengths == [_span_length(tiny, sample)] * tiny.num_layers


def test_score_options_refuse_shared_first_tokens_before_running(tiny, speech_samples):
    compressed = CompressedModel(tiny, MergePlan())
    with pytest.raises(ConfigError, match=r"argument 'options': \['A', 'A'\] share a first token"):
        compressed.score_options(speech_samples[0], "speech", options=["A", "A"])
    assert compressed.lengths == {}


def test_engine_refuses_to_run_inside_an_edit(tiny, speech_samples):
    sample = speech_samples[0]
    engine = ShorteningEngine(tiny, MergePlan())
    before = engine.prefill(sample, "speech")
    token = int(torch.argmax(before.logits))
    calls: list[int] = []

    def zero(states, positions):
        calls.append(1)
        return torch.zeros_like(states)

    with tiny.edit({1: zero}):
        with pytest.raises(ModelError, match="shortening engine cannot run inside"):
            engine.prefill(sample, "speech")
        with pytest.raises(ModelError, match="shortening engine cannot run inside"):
            engine.step(before, token)
        with pytest.raises(ModelError, match="shortening engine cannot run inside"):
            CompressedModel(tiny, MergePlan()).generate_batch([sample], "speech", max_new_tokens=2)
    assert calls == []
    after = engine.prefill(sample, "speech")
    torch.testing.assert_close(after.logits, before.logits, rtol=0, atol=0)


def test_decoder_blocks_called_directly_under_an_edit_fail_loudly(tiny, speech_samples):
    """The hooks themselves refuse a pass the adapter did not start, as a second line of defence."""
    layer0 = tiny.layer0_inputs(speech_samples[0], "speech")
    engine = ShorteningEngine(tiny, MergePlan())
    with tiny.edit({1: lambda states, positions: None}):
        with pytest.raises(ModelError, match="not started through the adapter"), torch.inference_mode():
            cache = DynamicCache(config=tiny.text_config)
            engine._block(0, layer0.hidden, layer0.position_ids, cache, None)
