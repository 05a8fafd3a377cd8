"""`speechgap eval --protocol` / `--show-prompt`: the two prompts of one sample, shown without running the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from speechgap.cli import main
from speechgap.models.tiny import build_tiny_model


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("show_prompt")
    model = build_tiny_model("qwen2_audio", root / "model", seed=0)
    (root / "audio").mkdir()
    with open(root / "manifest.jsonl", "w") as handle:
        for i in range(2):
            sf.write(root / "audio" / f"q{i}.wav", 0.1 * np.ones(8000, np.float32), 16000)
            item = {"id": f"q{i}", "text": f"Question {i}?", "audio": f"audio/q{i}.wav"}
            handle.write(json.dumps(item) + "\n")
    return model, root / "manifest.jsonl"


def _eval(setup, *flags):
    model, manifest = setup
    return main(["eval", "--model", str(model), "--data", str(manifest), *flags])


def test_show_prompt_prints_both_runs_of_the_first_sample(setup, capsys, tmp_path):
    assert _eval(setup, "--show-prompt") == 0
    out = capsys.readouterr().out
    speech, text = out.split("--- speech run prompt ---\n")[1].split("--- text run prompt ---\n")
    assert "protocol 'voicebench'" in out and "sample 'q0'" in out
    assert "<|AUDIO|>" in speech and "Answer the question." not in speech
    assert "user\nQuestion 0?<|im_end|>" in text
    assert not list(tmp_path.iterdir())  # nothing written, no --out needed


def test_show_prompt_of_a_named_sample_under_another_protocol(setup, capsys):
    assert _eval(setup, "--show-prompt", "q1", "--protocol", "instructed") == 0
    out = capsys.readouterr().out
    assert "sample 'q1'" in out and "user\nQuestion 1?\nAnswer the question.<|im_end|>" in out
    assert _eval(setup, "--show-prompt", "--instruction", "Be brief.") == 0
    out = capsys.readouterr().out
    assert "Question 0?\nBe brief.<|im_end|>" in out and "overridden: instruction" in out


def test_bad_protocol_sample_or_missing_out_speak_in_flags(setup, capsys):
    assert _eval(setup, "--show-prompt", "--protocol", "chatty") == 2
    assert "--protocol must be one of voicebench, official, instructed" in capsys.readouterr().err
    assert _eval(setup, "--show-prompt", "q9") == 2
    assert "--show-prompt 'q9' is not in the data" in capsys.readouterr().err
    assert _eval(setup) == 2
    assert "--out is required" in capsys.readouterr().err
