"""The mini recipe's encoder pretraining: CTC targets, decoding, the encoder run as Qwen2-Audio runs it."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from speechgap.mini.architecture import MiniArchitecture, build_processor, speech_config
from speechgap.mini.encoder import (
    BLANK,
    EncoderSettings,
    ctc_min_positions,
    ctc_targets,
    ctc_word_error_rate,
    encode_audio,
    greedy_ctc_decode,
    pretrain_encoder,
)
from speechgap.mini.questions import generate_questions, vocabulary


@pytest.fixture(scope="module")
def processor():
    return build_processor(MiniArchitecture())


def _features(processor, waveforms):
    encoded = processor.feature_extractor(
        waveforms, sampling_rate=16_000, return_attention_mask=True, padding="max_length", return_tensors="np"
    )
    return encoded["input_features"].astype(np.float32), encoded["attention_mask"].astype(np.int64)


def test_ctc_targets_spell_the_spoken_words():
    words = vocabulary()
    for question in generate_questions({"test": 1}, seed=3)["test"][::7]:
        labels = ctc_targets(question)
        assert BLANK not in labels
        assert [words[k - 1] for k in labels] == re.findall(r"[A-Za-z]+", question.spoken)


def test_greedy_decode_merges_repeats_and_drops_blanks():
    assert greedy_ctc_decode([0, 3, 3, 0, 3, 5, 5, 0, 0, 7]) == [3, 3, 5, 7]
    assert greedy_ctc_decode([0, 0, 0]) == []
    assert greedy_ctc_decode([2, 2, 2]) == [2]


def test_encode_audio_is_what_the_projector_reads(processor):
    """The states CTC trains are exactly the ones the language model receives at the speech positions."""
    from transformers import Qwen2AudioForConditionalGeneration

    torch.manual_seed(0)
    model = Qwen2AudioForConditionalGeneration(speech_config(MiniArchitecture(), processor.tokenizer)).eval()
    rng = np.random.default_rng(0)
    waveforms = [rng.normal(0, 0.1, n).astype(np.float32) for n in (32_000, 59_200)]  # 2.0 s, 3.7 s
    prompt = "<|audio_bos|><|AUDIO|><|audio_eos|>Answer the question."
    inputs = processor(
        text=[prompt] * 2, audio=waveforms, sampling_rate=16_000, padding=True, return_tensors="pt"
    )
    seen = []
    handle = model.model.multi_modal_projector.register_forward_hook(
        lambda m, args, out: seen.append(args[0])
    )
    with torch.no_grad():
        model(**inputs)
        states, lengths = encode_audio(
            model.model.audio_tower, inputs["input_features"], inputs["feature_attention_mask"]
        )
    handle.remove()
    placeholders = (inputs["input_ids"] == model.config.audio_token_id).sum(-1)
    assert lengths.tolist() == placeholders.tolist() and lengths[0] < lengths[1]
    for row in range(2):
        n = int(lengths[row])
        torch.testing.assert_close(states[row, :n], seen[0][row, :n])


def test_ctc_pretraining_learns_the_words_of_real_speech(processor, tmp_path):
    """A few spoken questions, overfit: greedy CTC recovers their words (untrained: nearly every word wrong)."""
    from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

    from speechgap.mini.speech import speak_questions

    questions = generate_questions({"test": 1}, seed=0)["test"][::16][:8]
    spoken = speak_questions(questions, "test", tmp_path, seed=1, workers=1, progress=False)
    features, masks = _features(processor, [clip.audio for clip in spoken])
    targets = [ctc_targets(q) for q in questions]
    clips = list(zip(features, masks, strict=True))
    torch.manual_seed(0)
    encoder = Qwen2AudioEncoder(speech_config(MiniArchitecture(), processor.tokenizer).audio_config)
    head = torch.nn.Linear(encoder.config.d_model, len(vocabulary()) + 1)
    assert ctc_word_error_rate(encoder, head, clips, targets) > 0.8
    train = [(f, m, t) for (f, m), t in zip(clips, targets, strict=True)]
    result = pretrain_encoder(
        encoder,
        train,
        {"train": (clips, targets)},
        EncoderSettings(steps=150, batch=8, lr=3e-3, eval_every=0),
        seed=0,
        progress=False,
    )
    assert result.word_error_rate["train"] < 0.2
    trained_head = torch.nn.Linear(encoder.config.d_model, len(vocabulary()) + 1)
    trained_head.load_state_dict(result.head)
    # the returned state is the trained encoder's: it reproduces the reported error rate
    assert ctc_word_error_rate(encoder, trained_head, clips, targets) == pytest.approx(
        result.word_error_rate["train"], abs=1e-4
    )


def test_ctc_min_positions_counts_a_blank_between_repeats():
    assert ctc_min_positions([3, 4, 5]) == 3
    assert ctc_min_positions([3, 3, 5, 5, 5]) == 8
    assert ctc_min_positions([]) == 0


def test_pretraining_refuses_what_ctc_cannot_train_on(processor):
    """Bad settings or a clip too short for its words: a clear error before any step, not a zero loss."""
    from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

    from speechgap.errors import ConfigError, DataError

    encoder = Qwen2AudioEncoder(speech_config(MiniArchitecture(), processor.tokenizer).audio_config)
    features, masks = _features(processor, [np.zeros(16_000, np.float32), np.zeros(8_000, np.float32)])
    ok = (features[0], masks[0], [1, 2, 3])
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    with pytest.raises(ConfigError, match="EncoderSettings argument 'batch' must be at least 1, got 0"):
        pretrain_encoder(encoder, [ok], {}, EncoderSettings(steps=1, batch=0), seed=0, progress=False)
    with pytest.raises(ConfigError, match="EncoderSettings argument 'steps' must be at least 0, got -1"):
        pretrain_encoder(encoder, [ok], {}, EncoderSettings(steps=-1), seed=0, progress=False)
    with pytest.raises(ConfigError, match="argument 'train' is empty"):
        pretrain_encoder(encoder, [], {}, EncoderSettings(steps=1), seed=0, progress=False)
    # 0.5 s of audio = 5 encoder positions: 12 words cannot be aligned
    too_long = (features[1], masks[1], list(range(1, 13)))
    with pytest.raises(DataError, match="training clip 1 has 12 target words but only 5 encoder positions"):
        pretrain_encoder(encoder, [ok, too_long], {}, EncoderSettings(steps=1), seed=0, progress=False)
    with pytest.raises(DataError, match="training clip 0 has no target words"):
        pretrain_encoder(
            encoder, [(features[0], masks[0], [])], {}, EncoderSettings(steps=1), seed=0, progress=False
        )
    assert all((encoder.state_dict()[k] == v).all() for k, v in before.items())  # nothing was trained
