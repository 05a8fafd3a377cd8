"""Loading, the family registry and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError, ModelError
from speechgap.models import known_families, load_model, register_family
from speechgap.models.qwen2_audio import Qwen2AudioLLM

FAMILY = "qwen2_audio"


def test_layers_and_size_found_by_probing(tiny_models):
    adapter = tiny_models(FAMILY)
    assert adapter.num_layers == len(adapter.decoder_layers) == 3
    assert adapter.hidden_size == 32
    block_params = {id(p) for p in adapter.decoder_layers.parameters()}
    tower_params = {id(p) for p in adapter.model.model.audio_tower.parameters()}
    assert block_params and not block_params & tower_params


def test_same_seed_same_weights(tmp_path, tiny_models, samples):
    from speechgap.models.tiny import build_tiny_model

    again = load_model(build_tiny_model(FAMILY, tmp_path / "again", seed=0))
    other = load_model(build_tiny_model(FAMILY, tmp_path / "other", seed=1))
    ref = tiny_models(FAMILY).capture(samples[0], "speech").hidden
    np.testing.assert_array_equal(again.capture(samples[0], "speech").hidden, ref)
    assert not np.allclose(other.capture(samples[0], "speech").hidden, ref)


def test_adapter_settings_and_dtype(tiny_dirs, samples):
    adapter = load_model(
        tiny_dirs(FAMILY), dtype="bfloat16", instruction="Reply briefly.", system_prompt="Be terse."
    )
    prompt = adapter.build_inputs(samples[0], "speech").prompts[0]
    assert "Reply briefly." in prompt and "Be terse." in prompt
    assert adapter.describe()["dtype"] == "bfloat16"
    assert adapter.capture(samples[0], "speech").hidden.dtype == np.float32
    with pytest.raises(ModelError, match="argument 'dtype' must be one of .*, got 'int3'"):
        load_model(tiny_dirs(FAMILY), dtype="int3")


def test_no_audio_and_too_long_audio(tiny_models):
    adapter = tiny_models(FAMILY)
    silent = PairedSample(id="empty", text="hello", audio=np.zeros(0, dtype=np.float32))
    with pytest.raises(ModelError, match="'empty'.*no audio"):
        adapter.capture(silent, "speech")
    limit = adapter.max_audio_seconds()
    long = PairedSample(id="long", text="hi", audio=np.zeros(int((limit + 1) * 16000), dtype=np.float32))
    with pytest.raises(ModelError, match=r"'long'.*4\.00 s.*at most 3\.00 s"):
        adapter.capture(long, "speech")
    with pytest.raises(ModelError, match="empty transcript"):
        adapter.capture(PairedSample(id="t", text="  ", audio=long.audio), "text")
    with pytest.raises(ConfigError, match="modality"):
        adapter.capture(silent, "video")
    with pytest.raises(ConfigError, match="layers"):
        adapter.capture(long, "text", layers=[adapter.num_layers + 1])


def test_model_without_audio_is_refused(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
    )
    Qwen2ForCausalLM(config).save_pretrained(tmp_path / "text_only")
    with pytest.raises(ModelError, match="takes no audio input.*Known families: .*qwen2_audio"):
        load_model(tmp_path / "text_only")


def test_unknown_family_and_remote_code(tmp_path):
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(json.dumps({"model_type": "whisperllama", "audio_config": {}}))
    with pytest.raises(ModelError, match="'whisperllama' is not a speech LLM family.*Known families"):
        load_model(unknown)
    remote = tmp_path / "remote"
    remote.mkdir()
    (remote / "config.json").write_text(
        json.dumps({"model_type": "my_omni", "auto_map": {"AutoConfig": "configuration_my.MyConfig"}})
    )
    with pytest.raises(ModelError, match="set argument 'trust_remote_code' to True"):
        load_model(remote)
    with pytest.raises(ModelError, match="no config.json"):
        load_model(tmp_path)
    with pytest.raises(ModelError, match="not a local folder"):
        load_model(str(tmp_path / "missing" / "model"))


def test_register_family_overrides(tiny_dirs, samples):
    class ShoutingQwen(Qwen2AudioLLM):
        family = "shouting_qwen"
        default_system_prompt = "YOU SHOUT."

    try:
        register_family(ShoutingQwen)
        adapter = load_model(tiny_dirs(FAMILY))
        assert isinstance(adapter, ShoutingQwen)
        assert "YOU SHOUT." in adapter.build_inputs(samples[0], "text").prompts[0]
        assert "shouting_qwen" in known_families()
    finally:
        register_family(Qwen2AudioLLM)
    assert type(load_model(tiny_dirs(FAMILY))) is Qwen2AudioLLM
    with pytest.raises(ConfigError, match="model_types"):
        register_family(type("Nameless", (Qwen2AudioLLM,), {"model_types": ()}))


def test_audioflamingo3_chunks_audio_longer_than_one_window(tiny_models, samples):
    adapter = tiny_models("audioflamingo3")
    window = adapter.processor.feature_extractor.chunk_length
    long = PairedSample(id="long", text="hello there", audio=np.tile(samples[1].audio, 3)[: int(4.5 * 16000)])
    assert window < long.duration_s <= adapter.max_audio_seconds()
    cap = adapter.capture(long, "speech", layers=[0, 1])
    n_placeholders = int((cap.input_ids == adapter.audio_token_id).sum())
    one_window = adapter.capture(
        PairedSample(id="w", text="x", audio=long.audio[: int(window * 16000)]), "speech"
    )
    assert cap.num_tokens == n_placeholders > one_window.num_tokens
    assert cap.frame_times[-1, 1] == pytest.approx(long.duration_s, abs=0.04)
    alone = adapter.capture_batch([long, samples[0]], "speech", layers=[0, 1])[0]
    np.testing.assert_allclose(alone.hidden, cap.hidden, atol=1e-5)
    too_long = PairedSample(id="too_long", text="x", audio=np.zeros(int(6.5 * 16000), dtype=np.float32))
    with pytest.raises(ModelError, match="'too_long'.*6.50 s.*at most 6.00 s"):
        adapter.capture(too_long, "speech")


def test_package_root_exports():
    import speechgap

    assert speechgap.load_model is load_model
    from speechgap.models.base import Capture

    assert speechgap.Capture is Capture
