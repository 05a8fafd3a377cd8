"""A short training smoke run of the whole zoo pipeline; checkpoints load through the adapter."""

from __future__ import annotations

import json

import pytest
from safetensors.numpy import load_file

from speechgap.mini.encoder import EncoderSettings
from speechgap.mini.train import TrainSettings, ZooResult, train_zoo


def _tiny_settings(seed: int = 0) -> TrainSettings:
    return TrainSettings(
        seed=seed,
        per_fact={"train": 1, "dev": 1, "test": 1},
        speech_train_per_fact=1,
        text_steps=3,
        text_mix={"mcq": 4, "content": 2, "match": 2},
        speech_steps=2,
        speech_batch=4,
        text_per_batch=2,
        checkpoints=2,
        eval_limit=6,
        encoder=EncoderSettings(steps=3, batch=4, eval_every=2),
    )


@pytest.fixture(scope="module")
def zoo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("zoo")
    train_zoo(out, _tiny_settings())
    return out


def test_zoo_layout_and_records(zoo_dir):
    zoo = json.loads((zoo_dir / "zoo.json").read_text())
    names = [entry["name"] for entry in zoo["checkpoints"]]
    assert names == ["base_lm", "full-step1", "full-step2", "lora-step1", "lora-step2"]
    typed = ZooResult.load(zoo_dir)
    assert typed.to_json() == zoo and typed.default in names[1:]
    assert [c.name for c in typed.checkpoints] == names == list(typed.to_frame()["name"])
    assert [c.speech_accuracy for c in typed.checkpoints[1:]] == [
        e["speech_accuracy"] for e in zoo["checkpoints"][1:]
    ]
    for name in names:
        info = json.loads((zoo_dir / name / "speechgap_mini.json").read_text())
        assert info["seed"] == 0 and info["entry"]["name"] == name
        assert info["provenance"]["settings"]["speech_steps"] == 2
        assert (zoo_dir / name / "model.safetensors").exists()
        assert 0.0 <= info["entry"]["text_accuracy"] <= 1.0
    log = [json.loads(line) for line in (zoo_dir / "train_log.jsonl").read_text().splitlines()]
    stages = {(r["stage"], r.get("variant")) for r in log}
    assert {("base", "text"), ("speech", "full"), ("speech", "lora")} <= stages
    assert all(r["loss"] > 0 for r in log if "loss" in r)


def test_speech_llms_start_from_the_pretrained_encoder(zoo_dir):
    zoo = json.loads((zoo_dir / "zoo.json").read_text())
    assert zoo["encoder"]["steps"] == 3
    assert set(zoo["encoder"]["word_error_rate"]) == {"dev", "test"}
    log = [json.loads(line) for line in (zoo_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["stage"] == "encoder-eval"] == [2, 3]
    encoder = load_file(str(zoo_dir / "encoder" / "encoder.safetensors"))
    assert any(key.startswith("ctc_head.") for key in encoder)
    for name in ("full-step1", "lora-step1"):
        speech = load_file(str(zoo_dir / name / "model.safetensors"))
        assert not any("ctc" in key for key in speech)  # the CTC head is never part of a speech LLM
    # both variants start from the pretrained encoder: its positional table is frozen (never trained) and
    # randomly initialised per seed, so equal tables mean the pretrained encoder was loaded
    key = "audio_tower.embed_positions.weight"
    full = load_file(str(zoo_dir / "full-step1" / "model.safetensors"))
    lora = load_file(str(zoo_dir / "lora-step1" / "model.safetensors"))
    assert (full[key] == encoder[key]).all() and (lora[key] == encoder[key]).all()
    # ... while the rest of the encoder goes on training in both variants
    conv = "audio_tower.conv1.weight"
    assert not (full[conv] == encoder[conv]).all() and not (lora[conv] == encoder[conv]).all()


def test_rerun_resumes_the_finished_encoder(zoo_dir, tmp_path):
    from speechgap.mini.architecture import build_processor
    from speechgap.mini.train import build_data, encoder_stage

    settings = _tiny_settings()
    processor = build_processor(settings.architecture)
    data = build_data(processor, settings, zoo_dir / "speech")
    before = (zoo_dir / "encoder" / "encoder.safetensors").stat().st_mtime_ns

    class NoLog:
        def write(self, **record):
            raise AssertionError("a finished encoder must not be trained again")

    encoder = encoder_stage(zoo_dir / "encoder", processor, data, settings, NoLog())
    assert (zoo_dir / "encoder" / "encoder.safetensors").stat().st_mtime_ns == before
    saved = load_file(str(zoo_dir / "encoder" / "encoder.safetensors"))
    assert all(
        (encoder.audio_tower[k].numpy() == saved["audio_tower." + k]).all() for k in encoder.audio_tower
    )


def test_training_is_deterministic_for_a_seed(zoo_dir, tmp_path):
    again = tmp_path / "again"
    train_zoo(again, _tiny_settings())
    encoder_first = load_file(str(zoo_dir / "encoder" / "encoder.safetensors"))
    encoder_second = load_file(str(again / "encoder" / "encoder.safetensors"))
    assert all((encoder_first[key] == encoder_second[key]).all() for key in encoder_first)
    for name in ("base_lm", "full-step2", "lora-step2"):
        first = load_file(str(zoo_dir / name / "model.safetensors"))
        second = load_file(str(again / name / "model.safetensors"))
        assert first.keys() == second.keys()
        assert all((first[key] == second[key]).all() for key in first)


def test_lora_checkpoint_is_merged_and_changes_the_lm(zoo_dir):
    lora = load_file(str(zoo_dir / "lora-step2" / "model.safetensors"))
    base = load_file(str(zoo_dir / "base_lm" / "model.safetensors"))
    assert not any("lora" in key for key in lora)
    name = "model.layers.0.self_attn.q_proj.weight"
    merged = lora["language_model.model.layers.0.self_attn.q_proj.weight"]  # saved in the original layout
    assert merged.shape == base[name].shape
    # the MLP is not a LoRA target and the LM is frozen: it must equal the base LM exactly
    mlp = "layers.0.mlp.up_proj.weight"
    assert (lora["language_model.model." + mlp] == base["model." + mlp]).all()


def test_checkpoint_loads_through_the_adapter(zoo_dir):
    from speechgap.mini.evalset import fixed_eval_set
    from speechgap.models import load_model

    model = load_model(zoo_dir / "full-step2")
    samples = fixed_eval_set(2)
    assert model.family == "qwen2_audio"
    speech = model.generate_batch(samples, "speech", max_new_tokens=3)
    assert len(speech) == 2 and all(isinstance(answer, str) for answer in speech)
    scores = model.score_options(samples[0], "text")
    assert scores.best in ("A", "B", "C", "D")
