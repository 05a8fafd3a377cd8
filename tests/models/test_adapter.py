"""The adapter on tiny random-weight models of every family: captures, spans, batching, generation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechgap.models.tiny import BUILDERS

FAMILIES = sorted(BUILDERS)

MODALITIES = ("speech", "text")


def _reference_states(adapter, batch):
    """Independent computation: transformers' own ``output_hidden_states`` plus a hook on the last block."""
    last = {}
    handle = adapter.decoder_layers[-1].register_forward_hook(
        lambda _m, _a, out: last.setdefault("h", out[0] if isinstance(out, tuple) else out)
    )
    try:
        with torch.inference_mode():
            out = adapter.model(**adapter._model_inputs(batch), output_hidden_states=True, use_cache=False)
    finally:
        handle.remove()
    return out.hidden_states, last["h"], out.logits


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("modality", MODALITIES)
def test_capture_equals_output_hidden_states(tiny_models, samples, family, modality):
    adapter = tiny_models(family)
    sample = samples[0]
    cap = adapter.capture(sample, modality, post_norm=True)
    batch = adapter.build_inputs(sample, modality)
    hidden_states, last_block, _ = _reference_states(adapter, batch)
    num_layers = adapter.num_layers
    assert len(hidden_states) == num_layers + 1
    assert cap.layers == list(range(num_layers + 1))
    assert cap.hidden.shape == (num_layers + 1, cap.span[1] - cap.span[0], adapter.hidden_size)
    start, end = batch.spans[0]
    for layer in range(num_layers):
        expected = hidden_states[layer][0, start:end].float().numpy()
        np.testing.assert_allclose(cap.hidden[layer], expected, atol=1e-6, rtol=0)
    np.testing.assert_allclose(cap.hidden[num_layers], last_block[0, start:end].numpy(), atol=1e-6, rtol=0)
    # output_hidden_states[-1] is after the final norm; the capture's last layer is before it
    np.testing.assert_allclose(cap.final_norm, hidden_states[-1][0, start:end].numpy(), atol=1e-6, rtol=0)
    assert not np.allclose(cap.hidden[num_layers], cap.final_norm)


@pytest.mark.parametrize("family", FAMILIES)
def test_layer_subset_equals_full_capture(tiny_models, samples, family):
    adapter = tiny_models(family)
    full = adapter.capture(samples[1], "speech")
    chosen = [adapter.num_layers, 0]
    part = adapter.capture(samples[1], "speech", layers=chosen)
    assert part.layers == sorted(chosen)
    np.testing.assert_array_equal(part.hidden, full.hidden[sorted(chosen)])


@pytest.mark.parametrize("family", FAMILIES)
def test_speech_span_is_the_audio_placeholders(tiny_models, samples, family):
    adapter = tiny_models(family)
    for sample in samples:
        cap = adapter.capture(sample, "speech", layers=[0])
        ids = cap.input_ids
        n_placeholders = int((ids == adapter.audio_token_id).sum())
        assert cap.span[1] - cap.span[0] == n_placeholders == cap.num_tokens
        assert np.all(ids[cap.span[0] : cap.span[1]] == adapter.audio_token_id)
        times = cap.frame_times
        assert times.shape == (n_placeholders, 2)
        # positions covering the clip come first, in order and back to back from 0 s; positions covering
        # only the padding of a fixed audio window (Voxtral) follow, as zero-length [duration, duration]
        covers = times[:, 1] > times[:, 0]
        n_real = int(covers.sum())
        assert n_real > 0 and covers[:n_real].all()
        np.testing.assert_array_equal(times[n_real:], sample.duration_s)
        real = times[:n_real]
        assert real[0, 0] == 0.0 and np.all(np.diff(real[:, 0]) > 0)
        np.testing.assert_allclose(real[1:, 0], real[:-1, 1], atol=1e-12)
        # the positions cover the clip: the last one ends within one position of the clip's end
        assert real[-1, 1] <= sample.duration_s + 1e-9 and real[-1, 0] < sample.duration_s
        assert sample.duration_s - real[-1, 1] <= (real[-1, 1] - real[-1, 0]) + 1e-9


@pytest.mark.parametrize("family", FAMILIES)
def test_transcript_span_decodes_back(tiny_models, samples, family):
    adapter = tiny_models(family)
    for sample in samples:
        cap = adapter.capture(sample, "text", layers=[0])
        span_ids = cap.input_ids[cap.span[0] : cap.span[1]].tolist()
        assert adapter.tokenizer.decode(span_ids).strip() == sample.text
        assert cap.tokens == adapter.tokenizer.convert_ids_to_tokens(span_ids)
        # the default protocol (voicebench) sends the question alone: the prompt holds no instruction
        assert sample.text in cap.prompt and adapter.instruction is None
        assert cap.prompt == adapter.render_prompt("text", sample.text)
        assert cap.frame_times is None


@pytest.mark.parametrize("family", FAMILIES)
def test_speech_and_text_prompts_differ_only_in_the_question(tiny_models, samples, family):
    adapter = tiny_models(family)
    sample = samples[0]
    speech = adapter.build_inputs(sample, "speech").prompts[0]
    text = adapter.build_inputs(sample, "text").prompts[0]
    text_start = text.index(sample.text)
    # the same prefix (system prompt, turn header) and the same suffix (instruction, generation prompt)
    assert speech.startswith(text[:text_start].rsplit("\n", 1)[0])
    assert speech.endswith(text[text_start + len(sample.text) :].lstrip("\n")[-40:])


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("modality", MODALITIES)
def test_batched_equals_unbatched(tiny_models, samples, family, modality):
    adapter = tiny_models(family)
    batched = adapter.capture_batch(samples, modality, post_norm=True)
    for sample, cap in zip(samples, batched, strict=True):
        alone = adapter.capture(sample, modality, post_norm=True)
        assert cap.span == alone.span and cap.sample_id == sample.id
        np.testing.assert_array_equal(cap.input_ids, alone.input_ids)
        np.testing.assert_allclose(cap.hidden, alone.hidden, atol=1e-5, rtol=0)
        np.testing.assert_allclose(cap.final_norm, alone.final_norm, atol=1e-5, rtol=0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("modality", MODALITIES)
def test_generate_is_greedy_and_batch_independent(tiny_models, samples, family, modality):
    adapter = tiny_models(family)
    sample = samples[0]
    first = adapter.generate(sample, modality, max_new_tokens=6)
    assert adapter.generate(sample, modality, max_new_tokens=6) == first
    assert adapter.generate_batch(samples[:2], modality, max_new_tokens=6)[0] == first
    # independent greedy decoding: argmax of a full forward pass (no cache) at each step
    batch = adapter.build_inputs(sample, modality)
    inputs = adapter._model_inputs(batch)
    new_ids = []
    eos = adapter.tokenizer.eos_token_id
    with torch.inference_mode():
        for _ in range(6):
            logits = adapter.model(**inputs, use_cache=False).logits
            next_id = int(logits[0, -1].argmax())
            if next_id == eos:
                break
            new_ids.append(next_id)
            inputs["input_ids"] = torch.cat([inputs["input_ids"], torch.tensor([[next_id]])], dim=1)
            inputs["attention_mask"] = torch.cat(
                [inputs["attention_mask"], torch.ones(1, 1, dtype=torch.long)], 1
            )
    assert first == adapter.tokenizer.decode(new_ids, skip_special_tokens=True)
    settings = adapter.generation_settings(6)
    assert settings["do_sample"] is False and settings["max_new_tokens"] == 6


@pytest.mark.parametrize("family", FAMILIES)
def test_score_options_matches_logits(tiny_models, samples, family):
    adapter = tiny_models(family)
    sample = samples[1]
    scores = adapter.score_options(sample, "text", options=["A", "B", "C", "D"])
    batch = adapter.build_inputs(sample, "text")
    _, _, logits = _reference_states(adapter, batch)
    log_probs = torch.log_softmax(logits[0, -1].double(), dim=-1)
    expected = np.array([float(log_probs[i]) for i in scores.token_ids])
    np.testing.assert_allclose(scores.log_probs, expected, atol=1e-9)
    ordered = np.sort(expected)[::-1]
    assert scores.margin == pytest.approx(ordered[0] - ordered[1])
    assert scores.best == ["A", "B", "C", "D"][int(np.argmax(expected))]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("modality", MODALITIES)
def test_score_options_batch_equals_one_at_a_time(tiny_models, samples, family, modality):
    adapter = tiny_models(family)
    chosen = list(samples)[:3]  # different lengths: the padded rows must read their own last token
    options = [["A", "B"], ["A", "B", "C", "D"], ["A", "B", "C"]]
    batched = adapter.score_options_batch(chosen, modality, options)
    for sample, opts, scores in zip(chosen, options, batched, strict=True):
        alone = adapter.score_options(sample, modality, opts)
        assert scores.options == opts and scores.token_ids == alone.token_ids
        np.testing.assert_allclose(scores.log_probs, alone.log_probs, atol=1e-5, rtol=0)
        assert scores.best == alone.best
    from speechgap.errors import ConfigError

    with pytest.raises(ConfigError, match="argument 'options': 2 option lists for 3 samples"):
        adapter.score_options_batch(chosen, modality, options[:2])


def test_option_token_ids_refuse_what_cannot_be_scored(tiny_models, samples):
    from speechgap.errors import ConfigError

    adapter = tiny_models("qwen2_audio")
    ids = adapter.option_token_ids(["A", "B", "C", "D"])
    assert ids == [adapter.tokenizer.encode(o, add_special_tokens=False)[0] for o in "ABCD"]
    assert len(set(ids)) == 4
    with pytest.raises(ConfigError, match=r"argument 'options': \['A', 'A'\] share a first token"):
        adapter.option_token_ids(["A", "A"])
    # "A." starts with the token of "A": only the two colliding options are named
    with pytest.raises(ConfigError, match=r"argument 'options': \['A', 'A\.'\] share a first token"):
        adapter.option_token_ids(["A", "B", "A."])
    with pytest.raises(ConfigError, match="argument 'options': must not be empty"):
        adapter.option_token_ids([])
    with pytest.raises(ConfigError, match="argument 'options': '' encodes to no token"):
        adapter.option_token_ids(["A", ""])
    with pytest.raises(ConfigError, match="share a first token"):
        adapter.score_options(samples[0], "text", options=["A", "B", "A."])


def test_option_scores_from_logits_against_numpy():
    from speechgap.models.base import OptionScores

    logits = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.5])
    scores = OptionScores.from_logits(["x", "y", "z"], [4, 2, 1], logits)
    reference = logits.double().numpy() - np.log(np.exp(logits.double().numpy()).sum())
    np.testing.assert_allclose(scores.log_probs, reference[[4, 2, 1]], rtol=0, atol=1e-12)
    assert scores.best == "y"  # token 2 has the highest logit (2.0), then token 4 (1.5)
    assert scores.margin == pytest.approx(0.5)
    assert OptionScores.from_logits(["x"], [3], logits).margin == 0.0


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("modality", MODALITIES)
def test_layer0_inputs_equal_the_captured_layer_0(tiny_models, samples, family, modality):
    adapter = tiny_models(family)
    sample = samples[1]
    cap = adapter.capture(sample, modality, layers=[0])
    layer0 = adapter.layer0_inputs(sample, modality)
    length = len(cap.input_ids)
    assert tuple(layer0.hidden.shape) == (1, length, adapter.hidden_size)
    assert layer0.span == cap.span
    start, end = layer0.span
    np.testing.assert_array_equal(layer0.hidden[0, start:end].float().numpy(), cap.hidden[0])
    assert layer0.position_ids.dtype == torch.float32
    np.testing.assert_array_equal(layer0.position_ids.numpy(), np.arange(length, dtype=np.float32))


def test_layer0_inputs_run_through_the_adapter_and_refuse_multi_axis_positions(tiny_models, samples):
    from speechgap.errors import ConfigError

    adapter = tiny_models("qwen2_audio")
    sample = samples[0]
    # an edit at layer 0 applies: layer0_inputs is one of the adapter's own forward passes
    with adapter.edit({0: lambda states, positions: torch.zeros_like(states)}):
        edited = adapter.layer0_inputs(sample, "speech")
    start, end = edited.span
    assert torch.count_nonzero(edited.hidden[0, start:end]) == 0
    assert torch.count_nonzero(edited.hidden[0, :start]) > 0

    def three_axes(_m, args, kwargs):
        return args, {**kwargs, "position_ids": kwargs["position_ids"].expand(3, 1, -1)}

    handle = adapter.decoder_layers[0].register_forward_pre_hook(three_axes, with_kwargs=True)
    try:
        with pytest.raises(ConfigError, match=r"shape \(3, 1, \d+\) \(multi-axis rotary\)"):
            adapter.layer0_inputs(sample, "speech")
    finally:
        handle.remove()


@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_owner_owns_the_decoder_layers(tiny_models, family):
    adapter = tiny_models(family)
    owner = adapter.decoder_owner
    assert any(getattr(owner, attr, None) is adapter.decoder_layers for attr in ("layers", "h", "blocks"))
    assert any(module is owner for module in adapter.model.modules())
    assert adapter.final_norm is None or any(m is adapter.final_norm for m in owner.children())
    assert getattr(owner, "rotary_emb", None) is not None
