"""The shipped checkpoints load through speechgap's adapters, and their accuracies hold on held-out data.

Measured here on a fixed held-out set (test-split questions spoken by the held-out speakers, re-synthesized
on the fly), by greedy generation through the same adapter a real Qwen2-Audio uses and speechgap's own
answer extraction (the mini models answer with the option's word; the scorer maps it to its letter).
"""

from __future__ import annotations

import json

import pytest
from safetensors import safe_open

from speechgap.mini import CHECKPOINTS_DIR, default_model_path
from speechgap.mini.evalset import fixed_eval_set
from speechgap.scoring.choice import extract_choice

TEXT_BAR = 0.9
SPEECH_BAR = 0.6  # the bar for the default speech LLM (chance is 0.25)


@pytest.fixture(scope="module")
def samples():
    # all 258 held-out questions (held-out instances, read by the held-out speakers)
    return list(fixed_eval_set(258))


def _accuracy(model, samples, modality: str) -> float:
    answers = model.generate_batch(samples, modality, max_new_tokens=3)
    hits = [
        extract_choice(a, 4, choices=s.choices) == s.answer for a, s in zip(answers, samples, strict=True)
    ]
    return sum(hits) / len(samples)


def test_eval_set_is_held_out(samples):
    from speechgap.mini.questions import generate_questions
    from speechgap.mini.speech import speaker_banks

    train = generate_questions(seed=0)["train"]
    assert not {s.text for s in samples} & {q.text for q in train}
    banks = speaker_banks()
    assert {s.speaker for s in samples} <= set(banks["test"].ids)
    assert not {v.name for v in banks["test"]} & {v.name for v in banks["train"]}


def test_default_checkpoint_loads_and_meets_the_bars(samples):
    """Through the same adapter as a real Qwen2-Audio, with speechgap's honest answer extraction."""
    from speechgap.models import load_model

    path = default_model_path()
    size_mb = sum(p.stat().st_size for p in path.iterdir()) / 1e6
    assert size_mb <= 15.0
    info = json.loads((path / "speechgap_mini.json").read_text())
    assert {"seed", "entry", "data", "provenance"} <= set(info)
    model = load_model(path)
    assert model.family == "qwen2_audio"
    text = _accuracy(model, samples, "text")
    speech = _accuracy(model, samples, "speech")
    assert text >= TEXT_BAR, f"text accuracy {text}"
    assert speech >= SPEECH_BAR, f"speech accuracy {speech}"
    assert text - speech > 0  # a real modality gap, in the direction the papers report


def test_base_lm_meets_the_text_bar(samples):
    from speechgap.models.text_lm import load_text_model

    path = CHECKPOINTS_DIR / "zoo" / "base_lm"
    with safe_open(str(path / "model.safetensors"), "np") as f:
        assert not any("audio" in key for key in f.keys())  # a plain text LM
    model = load_text_model(path)
    assert _accuracy(model, samples, "text") >= TEXT_BAR


def test_shipped_zoo_is_complete_and_the_default_is_its_choice():
    from speechgap.mini.ship import MAX_ZOO_MB, folder_mb

    zoo_dir = CHECKPOINTS_DIR / "zoo"
    zoo = json.loads((zoo_dir / "zoo.json").read_text())
    speech = [e for e in zoo["checkpoints"] if e["kind"] == "speech"]
    assert len(speech) >= 8
    assert {e["variant"] for e in speech} == {"full", "lora"}
    assert all(len({e["step"] for e in speech if e["variant"] == v}) >= 4 for v in ("full", "lora"))
    assert any(e["name"] == "base_lm" for e in zoo["checkpoints"])
    assert folder_mb(zoo_dir) <= MAX_ZOO_MB
    for entry in zoo["checkpoints"]:
        config = json.loads((zoo_dir / entry["name"] / "config.json").read_text())
        assert config["model_type"] == ("qwen2" if entry["kind"] == "text" else "qwen2_audio")
    # the default is a final checkpoint chosen on dev, and the shipped default folder holds its weights
    finals = [e for e in speech if e["step"] == max(x["step"] for x in speech)]
    assert zoo["default"] == max(finals, key=lambda e: e["speech_dev_accuracy"])["name"]
    with safe_open(str(default_model_path() / "model.safetensors"), "np") as a:
        with safe_open(str(zoo_dir / zoo["default"] / "model.safetensors"), "np") as b:
            assert set(a.keys()) == set(b.keys())
            assert all((a.get_tensor(k) == b.get_tensor(k)).all() for k in a.keys())
