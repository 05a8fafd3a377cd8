"""Voxtral specifics: fixed audio windows (padding positions, chunking), mistral-common prompts, no system prompt."""

from __future__ import annotations

import math

import numpy as np
import pytest

from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError, ModelError

FAMILY = "voxtral"


def _window(adapter) -> tuple[float, float]:
    """(window seconds, positions per second) from the model's tekken.json."""
    config = adapter.tokenizer.tokenizer.instruct_tokenizer.audio_encoder.audio_config
    return float(config.chunk_length_s), float(config.frame_rate)


def test_speech_span_is_whole_windows_and_chunks_long_audio(tiny_models, samples):
    adapter = tiny_models(FAMILY)
    window, rate = _window(adapter)
    long = PairedSample(id="long", text="x", audio=np.tile(samples[1].audio, 3)[: int(1.6 * window * 16000)])
    for sample in [samples[0], long]:
        cap = adapter.capture(sample, "speech", layers=[0])
        n_windows = math.ceil(sample.duration_s / window)
        assert cap.num_tokens == int((cap.input_ids == adapter.audio_token_id).sum())
        assert cap.num_tokens == round(n_windows * window * rate)
        # one real position per 1/rate seconds of the clip; the rest cover the window's zero padding
        covers = cap.frame_times[:, 1] > cap.frame_times[:, 0]
        assert int(covers.sum()) == math.ceil(sample.duration_s * rate - 1e-9)
        assert cap.frame_times[0, 1] == pytest.approx(1.0 / rate)
    # a batch mixing one- and two-window clips (different numbers of placeholders) equals one at a time
    batch = adapter.capture_batch([long, samples[0]], "speech", layers=[0, adapter.num_layers])
    for cap, sample in zip(batch, [long, samples[0]], strict=True):
        alone = adapter.capture(sample, "speech", layers=[0, adapter.num_layers])
        assert cap.span == alone.span
        np.testing.assert_allclose(cap.hidden, alone.hidden, atol=1e-5, rtol=0)


def test_instruction_tokens_are_the_same_in_both_runs(tiny_dirs, samples):
    from speechgap.models import load_model

    adapter = load_model(tiny_dirs(FAMILY), protocol="instructed")
    sample = samples[1]
    speech = adapter.capture(sample, "speech", layers=[0])
    text = adapter.capture(sample, "text", layers=[0])
    speech_tail = speech.input_ids[speech.span[1] :].tolist()
    text_tail = text.input_ids[text.span[1] :].tolist()
    # the same prefix before the span (<s>[INST] and, for speech, [BEGIN_AUDIO]) and the same instruction
    # and [/INST] after it; the text run alone has mistral-common's "\n\n" between transcript and instruction
    assert text_tail[-len(speech_tail) :] == speech_tail
    assert adapter.tokenizer.decode(text_tail[: -len(speech_tail)]) == "\n\n"
    assert adapter.tokenizer.decode(speech_tail[:-1]) == adapter.instruction
    assert speech.input_ids[: text.span[0]].tolist() == text.input_ids[: text.span[0]].tolist()


def test_transcript_span_with_multibyte_characters(tiny_models):
    adapter = tiny_models(FAMILY)
    sample = PairedSample(
        id="u", text="Où est le café «naïve»? Ünïcode — 東京!", audio=np.zeros(1600, np.float32)
    )
    cap = adapter.capture(sample, "text", layers=[0])
    span_ids = cap.input_ids[cap.span[0] : cap.span[1]].tolist()
    assert adapter.tokenizer.decode(span_ids).strip() == sample.text
    # nothing of the transcript is outside the span: the tokens just before and after are not part of it
    before = adapter.tokenizer.decode(cap.input_ids[: cap.span[0]].tolist())
    after = adapter.tokenizer.decode(cap.input_ids[cap.span[1] :].tolist())
    assert sample.text not in before and not after.startswith(sample.text[-1])


def test_system_prompt_and_missing_mistral_common_are_refused(tiny_dirs, tiny_models, samples, monkeypatch):
    from speechgap.models import load_model

    # refused when the model loads (its prompts are rendered then), not mid-run
    with pytest.raises(ConfigError, match="no system message"):
        load_model(tiny_dirs(FAMILY), system_prompt="Be terse.")
    adapter = tiny_models(FAMILY)
    limit = adapter.max_audio_seconds()
    too_long = PairedSample(id="too_long", text="x", audio=np.zeros(int((limit + 1) * 16000), np.float32))
    with pytest.raises(ModelError, match=rf"'too_long'.*at most {limit:.2f} s"):
        adapter.capture(too_long, "speech")
    import transformers.utils

    monkeypatch.setattr(transformers.utils, "is_mistral_common_available", lambda: False)
    with pytest.raises(ModelError, match="mistral-common"):
        load_model(tiny_dirs(FAMILY))
