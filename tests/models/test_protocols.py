"""Prompt protocols: the exact prompts of each protocol (as docs/evaluation.md shows them), rendered without
the weights, recorded with the model, and the spans still found under each."""

from __future__ import annotations

import numpy as np
import pytest

from speechgap.errors import ConfigError
from speechgap.models import PROTOCOLS, load_model, load_prompts

QUESTION = "Which planet is red?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn"
HELPFUL = "You are a helpful assistant."
QWEN_OMNI = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory "
    "and visual inputs, as well as generating text and speech."
)
INSTRUCTION = "Answer the question."


def _qwen(system: str, user: str) -> str:
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )


QWEN2_AUDIO = "Audio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
OMNI_AUDIO = "<|audio_bos|><|AUDIO|><|audio_eos|>"

# family -> protocol -> (speech-run prompt, text-run prompt): the table of docs/evaluation.md
EXPECTED = {
    "qwen2_audio": {
        "voicebench": (_qwen(HELPFUL, QWEN2_AUDIO), _qwen(HELPFUL, QUESTION)),
        "official": (_qwen(HELPFUL, QWEN2_AUDIO), _qwen(HELPFUL, QUESTION)),
        "instructed": (
            _qwen(HELPFUL, QWEN2_AUDIO + INSTRUCTION),
            _qwen(HELPFUL, f"{QUESTION}\n{INSTRUCTION}"),
        ),
    },
    "qwen2_5_omni": {
        "voicebench": (_qwen(HELPFUL, OMNI_AUDIO), _qwen(HELPFUL, QUESTION)),
        "official": (_qwen(QWEN_OMNI, OMNI_AUDIO), _qwen(QWEN_OMNI, QUESTION)),
        "instructed": (
            _qwen(QWEN_OMNI, f"{OMNI_AUDIO}\n{INSTRUCTION}"),
            _qwen(QWEN_OMNI, f"{QUESTION}\n{INSTRUCTION}"),
        ),
    },
    "voxtral": {
        "voicebench": ("<s>[INST][BEGIN_AUDIO][AUDIO][/INST]", f"<s>[INST]{QUESTION}[/INST]"),
        "official": ("<s>[INST][BEGIN_AUDIO][AUDIO][/INST]", f"<s>[INST]{QUESTION}[/INST]"),
        "instructed": (
            f"<s>[INST][BEGIN_AUDIO][AUDIO]{INSTRUCTION}[/INST]",
            f"<s>[INST]{QUESTION}\n\n{INSTRUCTION}[/INST]",
        ),
    },
}


@pytest.mark.parametrize("family", sorted(EXPECTED))
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_each_protocol_renders_the_documented_prompts(tiny_dirs, family, protocol):
    adapter = load_prompts(tiny_dirs(family), protocol=protocol)
    speech, text = EXPECTED[family][protocol]
    assert adapter.render_prompt("speech", QUESTION) == speech
    assert adapter.render_prompt("text", QUESTION) == text
    if protocol != "instructed":
        # the question alone: no instruction text in either run, the audio placeholder in the speech run
        assert INSTRUCTION not in speech + text and QUESTION not in speech
        assert ("[AUDIO]" if family == "voxtral" else "<|AUDIO|>") in speech
    assert adapter.describe_prompts()["protocol"] == protocol


def test_qwen2_5_omni_instructed_separates_the_transcript_from_the_instruction(tiny_dirs):
    text = load_prompts(tiny_dirs("qwen2_5_omni"), protocol="instructed").render_prompt("text", QUESTION)
    assert "D. Saturn\nAnswer the question." in text and "SaturnAnswer" not in text


@pytest.mark.parametrize("family", ["phi4_multimodal", "audioflamingo3"])
def test_every_family_defines_every_protocol_with_a_separator(tiny_dirs, family):
    for protocol in PROTOCOLS:
        adapter = load_prompts(tiny_dirs(family), protocol=protocol)
        text = adapter.render_prompt("text", QUESTION)
        speech = adapter.render_prompt("speech", QUESTION)
        assert adapter.describe_prompts()["protocol_source"]
        if protocol == "instructed":
            assert f"{QUESTION}\n{INSTRUCTION}" in text and f"\n{INSTRUCTION}" in speech
        else:
            assert INSTRUCTION not in text + speech


def test_rendering_prompts_loads_no_weights(tiny_dirs, monkeypatch):
    from speechgap.models.qwen2_audio import Qwen2AudioLLM

    def refuse(*args, **kwargs):
        raise AssertionError("the weights were loaded")

    monkeypatch.setattr(Qwen2AudioLLM, "load_weights", classmethod(refuse))
    adapter = load_prompts(tiny_dirs("qwen2_audio"))
    assert adapter.model is None and adapter.protocol == "voicebench"
    assert adapter.render_prompt("text", QUESTION) == EXPECTED["qwen2_audio"]["voicebench"][1]


def test_an_unknown_protocol_is_refused_naming_the_argument_and_the_choices(tiny_dirs):
    for load in (load_prompts, load_model):
        with pytest.raises(
            ConfigError, match="argument 'protocol' must be one of voicebench, official, instructed"
        ):
            load(tiny_dirs("qwen2_audio"), protocol="chatty")


def test_overrides_replace_the_protocols_parts_and_are_recorded(tiny_dirs):
    adapter = load_prompts(
        tiny_dirs("qwen2_5_omni"),
        protocol="voicebench",
        instruction="Reply with a letter.",
        system_prompt="Be terse.",
    )
    assert adapter.render_prompt("text", QUESTION) == _qwen("Be terse.", f"{QUESTION}\nReply with a letter.")
    recorded = adapter.describe_prompts()
    assert recorded["protocol"] == "voicebench"
    assert recorded["prompt_overrides"] == ["system_prompt", "instruction"]
    assert recorded["instruction"] == "Reply with a letter." and recorded["system_prompt"] == "Be terse."
    # an empty instruction removes the protocol's
    bare = load_prompts(tiny_dirs("qwen2_audio"), protocol="instructed", instruction="")
    assert bare.instruction is None and bare.render_prompt("text", QUESTION) == _qwen(HELPFUL, QUESTION)


@pytest.mark.parametrize("family", sorted(EXPECTED))
def test_spans_are_found_under_the_question_alone(tiny_models, samples, family):
    adapter = tiny_models(family)
    assert adapter.protocol == "voicebench"  # the default
    sample = samples[0]
    speech = adapter.capture(sample, "speech", layers=[0])
    assert np.all(speech.input_ids[speech.span[0] : speech.span[1]] == adapter.audio_token_id)
    text = adapter.capture(sample, "text", layers=[0])
    assert (
        adapter.tokenizer.decode(text.input_ids[text.span[0] : text.span[1]].tolist()).strip() == sample.text
    )
    assert text.prompt == adapter.render_prompt("text", sample.text)
    assert adapter.describe()["protocol"] == "voicebench"
