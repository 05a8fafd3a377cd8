"""The edit hooks: read and replace states at chosen layers and positions, prefill vs decode, cleanup."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from speechgap.errors import ConfigError, ModelError

FAMILY = "qwen2_audio"


def _hook_count(adapter) -> dict:
    """Every forward (pre-)hook id on the model (transformers installs its own on first output_hidden_states)."""
    return {
        name: (tuple(m._forward_hooks), tuple(m._forward_pre_hooks))
        for name, m in adapter.model.named_modules()
        if m._forward_hooks or m._forward_pre_hooks
    }


@pytest.mark.parametrize("layer", [0, 2])
def test_zeroing_the_span_changes_later_states_only(tiny_models, samples, layer):
    adapter = tiny_models(FAMILY)
    sample = samples[0]
    before = adapter.capture(sample, "speech")
    seen = {}

    def zero(states, positions):
        seen["positions"] = positions.clone()
        return torch.zeros_like(states)

    with adapter.edit({layer: zero}, positions="span"):
        after = adapter.capture(sample, "speech")
    start, end = before.span
    assert seen["positions"].tolist() == list(range(start, end))
    np.testing.assert_array_equal(after.hidden[layer], 0.0)
    np.testing.assert_array_equal(after.hidden[:layer], before.hidden[:layer])
    assert not np.allclose(after.hidden[layer + 1 :], before.hidden[layer + 1 :])
    np.testing.assert_array_equal(adapter.capture(sample, "speech").hidden, before.hidden)


def test_read_only_edit_sees_the_captured_states(tiny_models, samples):
    adapter = tiny_models(FAMILY)
    sample = samples[1]
    cap = adapter.capture(sample, "text")
    read = {}

    def keep(states, positions):
        read["h"] = states.clone()

    with adapter.edit({1: keep}):
        again = adapter.capture(sample, "text")
    np.testing.assert_allclose(read["h"].numpy(), cap.hidden[1], atol=1e-6)
    np.testing.assert_array_equal(again.hidden, cap.hidden)


def test_explicit_positions_are_prompt_positions(tiny_models, samples):
    adapter = tiny_models(FAMILY)
    sample = samples[2]
    got = {}
    with adapter.edit(
        {1: lambda states, pos: got.setdefault("pos", pos.tolist()) and None}, positions=[0, 3]
    ):
        adapter.capture_batch([samples[0], sample], "text", layers=[1])
    # the second row is right-padded; positions are counted in the unpadded prompt either way
    assert got["pos"] == [0, 3]


def test_prefill_only_by_default_and_decode_on_request(tiny_models, samples):
    adapter = tiny_models(FAMILY)
    sample = samples[0]
    calls: list[int] = []

    def count(states, positions):
        calls.append(states.shape[0])
        return None

    with adapter.edit({1: count}):
        adapter.generate(sample, "text", max_new_tokens=4)
    assert len(calls) == 1
    calls.clear()
    with adapter.edit({1: count}, decode=True):
        text = adapter.generate(sample, "text", max_new_tokens=4)
    n_new = len(adapter.tokenizer.encode(text, add_special_tokens=False))
    assert calls[0] > 1 and calls[1:] == [1] * (len(calls) - 1) and len(calls) >= 1 + min(n_new, 3) - 1


def test_hooks_removed_after_exception(tiny_models, samples, tiny_dirs):
    from speechgap.models import load_model

    adapter = tiny_models(FAMILY)
    sample = samples[0]
    hooks_before = _hook_count(adapter)
    with pytest.raises(RuntimeError, match="boom"):
        with adapter.edit({0: lambda s, p: torch.full_like(s, 7.0), 2: lambda s, p: s * 3}):
            adapter.capture(sample, "speech")
            raise RuntimeError("boom")
    fresh = load_model(tiny_dirs(FAMILY))
    assert _hook_count(adapter) == hooks_before
    np.testing.assert_array_equal(
        adapter.capture(sample, "speech").hidden, fresh.capture(sample, "speech").hidden
    )
    assert adapter.generate(sample, "speech", max_new_tokens=5) == fresh.generate(
        sample, "speech", max_new_tokens=5
    )


def test_bad_edit_arguments(tiny_models, samples):
    adapter = tiny_models(FAMILY)
    hooks_before = _hook_count(adapter)
    with pytest.raises(ConfigError, match="not in 0"):
        with adapter.edit({adapter.num_layers + 1: lambda s, p: s}):
            pass
    with pytest.raises(ConfigError, match="shape"):
        with adapter.edit({1: lambda s, p: s[:1]}):
            adapter.capture(samples[0], "text")
    assert _hook_count(adapter) == hooks_before


@pytest.mark.parametrize("layer", [0, 2])
def test_forward_pass_outside_the_adapter_fails_loudly(tiny_models, samples, tiny_dirs, layer):
    from speechgap.models import load_model

    adapter = tiny_models(FAMILY)
    sample = samples[0]
    hooks_before = _hook_count(adapter)
    before = adapter.capture(sample, "speech")
    inputs = adapter._model_inputs(adapter.prepare([sample], "speech"))
    calls: list[int] = []

    def zero(states, positions):
        calls.append(1)
        return torch.zeros_like(states)

    entry_points = "capture, capture_batch, forward, generate, generate_batch, score_options, layer0_inputs"
    with adapter.edit({layer: zero}):
        assert adapter.editing
        with pytest.raises(ModelError, match=f"not started through the adapter.*{entry_points}"):
            with torch.inference_mode():
                adapter.model(**inputs, use_cache=False)
        assert calls == []  # the edit never ran on the unbound pass
        edited = adapter.capture(sample, "speech")  # the adapter's own passes still apply it
    assert calls == [1]
    start, end = before.span
    np.testing.assert_array_equal(edited.hidden[layer], 0.0)
    assert not adapter.editing
    assert _hook_count(adapter) == hooks_before
    np.testing.assert_array_equal(adapter.capture(sample, "speech").hidden, before.hidden)
    fresh = load_model(tiny_dirs(FAMILY))
    with torch.inference_mode():
        torch.testing.assert_close(
            adapter.model(**inputs, use_cache=False).logits,
            fresh.model(**inputs, use_cache=False).logits,
            rtol=0,
            atol=0,
        )


# ------------------------------------------------------------------ one edit per sample in one batch
def _per_sample_plans(samples):
    """Three different edits: zero the span at the input, scale two positions at layer 2, only read."""
    from speechgap.models.base import SampleEdit

    return {
        samples[0].id: SampleEdit({0: lambda s, p: torch.zeros_like(s)}),
        samples[1].id: SampleEdit({2: lambda s, p: s * 3}, positions=[0, 3]),
        samples[2].id: SampleEdit({1: lambda s, p: None}, positions="all"),
    }


@pytest.mark.parametrize("modality", ["speech", "text"])
def test_per_sample_edits_in_one_batch_equal_each_sample_edited_alone(tiny_models, samples, modality):
    adapter = tiny_models(FAMILY)
    plans = _per_sample_plans(samples)
    alone = []
    for sample in samples:
        plan = plans[sample.id]
        with adapter.edit(plan.layers, positions=plan.positions, decode=plan.decode):
            alone.append(adapter.capture(sample, modality))
    with adapter.edit_per_sample(plans):
        together = adapter.capture_batch(samples, modality)
    assert len({cap.hidden.shape[1] for cap in together}) == len(samples)  # the rows are padded
    for one, batched in zip(alone, together, strict=True):
        np.testing.assert_allclose(batched.hidden, one.hidden, rtol=0, atol=1e-5)
    unedited = [adapter.capture(sample, modality) for sample in samples]
    np.testing.assert_array_equal(together[0].hidden[0], 0.0)
    # positions 0 and 3 precede the span: the span sees them through attention after layer 2
    assert not np.allclose(together[1].hidden[3], unedited[1].hidden[3])
    np.testing.assert_allclose(together[1].hidden[:2], unedited[1].hidden[:2], rtol=0, atol=1e-5)
    np.testing.assert_allclose(together[2].hidden, unedited[2].hidden, rtol=0, atol=1e-5)


def test_per_sample_edits_in_one_generate_batch_equal_each_sample_alone(tiny_models, samples):
    from speechgap.models.base import SampleEdit

    adapter = tiny_models(FAMILY)
    plans = _per_sample_plans(samples)
    plans[samples[2].id] = SampleEdit({1: lambda s, p: -s}, positions="span")
    alone = []
    for sample in samples:
        plan = plans[sample.id]
        with adapter.edit(plan.layers, positions=plan.positions, decode=plan.decode):
            alone.append(adapter.generate(sample, "speech", max_new_tokens=6))
    with adapter.edit_per_sample(plans):
        together = adapter.generate_batch(samples, "speech", max_new_tokens=6)
    assert together == alone
    assert together != adapter.generate_batch(samples, "speech", max_new_tokens=6)


def test_per_sample_decode_steps_only_where_asked(tiny_models, samples):
    from speechgap.models.base import SampleEdit

    adapter = tiny_models(FAMILY)
    calls: dict[str, list[int]] = {"q1": [], "q3": []}

    def counter(sample_id):
        return lambda states, positions: calls[sample_id].append(states.shape[0])

    plans = {
        "q1": SampleEdit({1: counter("q1")}, positions="all", decode=True),
        "q3": SampleEdit({1: counter("q3")}, positions="all"),
    }
    with adapter.edit_per_sample(plans):
        adapter.generate_batch([samples[0], samples[2]], "text", max_new_tokens=4)
    lengths = [len(adapter.build_inputs(s, "text").input_ids[0]) for s in (samples[0], samples[2])]
    assert calls["q1"] == [lengths[0], 1, 1, 1]  # prefill over the real tokens, then 3 decode steps
    assert calls["q3"] == [lengths[1]]


def test_per_sample_edit_exception_leaves_the_model_bit_identical(tiny_models, samples, tiny_dirs):
    from speechgap.models import load_model
    from speechgap.models.base import SampleEdit

    adapter = tiny_models(FAMILY)
    hooks_before = _hook_count(adapter)

    def boom(states, positions):
        raise RuntimeError("boom in row 2")

    plans = _per_sample_plans(samples)
    plans[samples[1].id] = SampleEdit({2: boom})
    with pytest.raises(RuntimeError, match="boom in row 2"):
        with adapter.edit_per_sample(plans):
            adapter.generate_batch(samples, "speech", max_new_tokens=3)
    with pytest.raises(KeyError, match="raised in the block"):
        with adapter.edit_per_sample(_per_sample_plans(samples)):
            adapter.capture_batch(samples, "speech")
            raise KeyError("raised in the block")
    assert _hook_count(adapter) == hooks_before and not adapter.editing
    fresh = load_model(tiny_dirs(FAMILY))
    batch = adapter.prepare(samples, "speech")
    torch.testing.assert_close(adapter.forward(batch).logits, fresh.forward(batch).logits, rtol=0, atol=0)
    assert adapter.generate_batch(samples, "speech", max_new_tokens=5) == fresh.generate_batch(
        samples, "speech", max_new_tokens=5
    )


def test_per_sample_edit_bad_arguments_are_named(tiny_models, samples):
    from speechgap.models.base import SampleEdit

    adapter = tiny_models(FAMILY)
    hooks_before = _hook_count(adapter)
    keep = SampleEdit({1: lambda s, p: None})
    for plans, error in [
        ({}, "non-empty dict"),
        ([keep], "non-empty dict"),
        ({"q1": {1: lambda s, p: None}}, "plan of sample 'q1' must be a SampleEdit, got dict"),
        ({"q1": SampleEdit({adapter.num_layers + 1: lambda s, p: s})}, "sample 'q1': edit layer 4 not in 0"),
        ({"q2": SampleEdit({1: "nope"})}, "sample 'q2': edit for layer 1 is not callable"),
        ({"q3": SampleEdit({1: lambda s, p: s}, positions="middle")}, "sample 'q3': positions must be"),
        ({"q3": SampleEdit({1: lambda s, p: s}, positions=[0.5])}, "sample 'q3': positions must be"),
    ]:
        with pytest.raises(ConfigError, match=error):
            with adapter.edit_per_sample(plans):
                pytest.fail("the block must not run")
    with pytest.raises(ModelError, match=r"sample 'q2' \(speech run\): no edit plan for this sample"):
        with adapter.edit_per_sample({"q1": keep}):
            adapter.capture_batch(samples[:2], "speech")
    with pytest.raises(ConfigError, match=r"shape \(1, 32\), expected \(3, 32\) \(sample 'q2', layer 1\)"):
        with adapter.edit_per_sample({"q1": keep, "q2": SampleEdit({1: lambda s, p: s[:1]}, [0, 1, 2])}):
            adapter.capture_batch(samples[:2], "text")
    with pytest.raises(
        ConfigError, match=r"edit positions must be in 0\.\.\d+ for this prompt \(sample 'q1'\)"
    ):
        with adapter.edit_per_sample({"q1": SampleEdit({1: lambda s, p: s}, [10_000])}):
            adapter.capture(samples[0], "text")
    assert _hook_count(adapter) == hooks_before
