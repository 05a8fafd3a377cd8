"""Interventions on a tiny Qwen2-Audio: the right layer and positions change, the model is left untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speechgap.errors import ConfigError
from speechgap.interventions import (
    AngleProjection,
    EditPlan,
    Intervention,
    InterventionModel,
    LengthNormalization,
    StatisticalCalibration,
    estimate_calibration_stats,
)


def _read_all(adapter, sample, layer: int, intervention: Intervention | None = None) -> np.ndarray:
    """Every prompt position's state at ``layer`` in the speech run, with or without the intervention."""
    seen: list[torch.Tensor] = []

    def reader(states, _positions):
        seen.append(states.detach().clone())

    batch = adapter.prepare([sample], "speech")
    if intervention is None:
        with adapter.edit({layer: reader}, positions="all"):
            adapter.forward(batch)
    else:
        # registered after the intervention's hook, so the reader sees the edited states
        with intervention.apply(adapter, sample), adapter.edit({layer: reader}, positions="all"):
            adapter.forward(batch)
    return seen[0].double().numpy()


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_angle_projection_changes_exactly_the_critical_positions_of_its_layer(adapter, samples):
    sample = samples[2]
    angle = AngleProjection(k=3, path_layer=2, apply_layer=1)
    speech = adapter.capture(sample, "speech")
    text = adapter.capture(sample, "text")
    plan = angle.prepare(adapter, sample)

    # the critical frames, recomputed from the captures: argmax path at layer 2, 3 lowest scores
    sim = _unit(speech.hidden[2].astype(np.float64)) @ _unit(text.hidden[2].astype(np.float64)).T
    frames, tokens = sim.argmax(0), np.arange(sim.shape[1])
    best = {}
    for i, j in zip(frames, tokens, strict=True):
        if i not in best or sim[i, j] > sim[i, best[i]]:
            best[i] = j
    lowest = sorted(sorted(best, key=lambda i: (sim[i, best[i]], i))[:3])
    assert plan.details["frames"] == lowest
    assert plan.positions == [speech.span[0] + i for i in lowest]

    before = _read_all(adapter, sample, 1)
    after = _read_all(adapter, sample, 1, angle)
    changed = np.flatnonzero(np.abs(after - before).max(axis=1) > 0)
    assert changed.tolist() == plan.positions
    for frame, position in zip(lowest, plan.positions, strict=True):
        target = text.hidden[1][best[frame]].astype(np.float64)
        expected = np.linalg.norm(before[position]) * _unit(target)
        np.testing.assert_allclose(after[position], expected, rtol=1e-5, atol=1e-6)
    # the layer before the edited one is untouched
    np.testing.assert_array_equal(_read_all(adapter, sample, 0, angle), _read_all(adapter, sample, 0))


def test_length_normalization_at_the_input_gives_critical_frames_the_text_norm(adapter, samples):
    sample = samples[1]
    length = LengthNormalization(critical="all", path="dtw")
    text = adapter.capture(sample, "text", layers=[0])
    plan = length.prepare(adapter, sample)
    before = _read_all(adapter, sample, 0)
    after = _read_all(adapter, sample, 0, length)
    changed = np.flatnonzero(np.abs(after - before).max(axis=1) > 0)
    assert changed.tolist() == plan.positions
    start = adapter.capture(sample, "speech", layers=[0]).span[0]
    assert all(start <= p for p in plan.positions)
    for token, position in zip(plan.details["tokens"], plan.positions, strict=True):
        np.testing.assert_allclose(
            np.linalg.norm(after[position]), np.linalg.norm(text.hidden[0][token]), rtol=1e-5
        )
        np.testing.assert_allclose(_unit(after[position]), _unit(before[position]), atol=1e-6)


def test_layers_out_of_range_are_refused(adapter, samples):
    with pytest.raises(
        ConfigError, match=r"argument 'apply_layer' must be in 0\.\.\d+ for this model, got 9"
    ):
        AngleProjection(apply_layer=9).prepare(adapter, samples[0])


class _Exploding(Intervention):
    """An edit whose function raises inside the forward pass."""

    name = "exploding"

    def settings(self):
        return {}

    def prepare(self, adapter, sample):
        def boom(states, positions):
            raise RuntimeError("boom inside the block")

        return EditPlan({1: boom}, positions="span")


def test_model_is_untouched_afterwards_also_after_exceptions(adapter, tiny_dir, samples):
    from speechgap.models import load_model

    sample = samples[3]
    hooks_before = _hook_count(adapter.model)
    with AngleProjection(apply_layer=2).apply(adapter, sample):
        assert _hook_count(adapter.model) == hooks_before + 1
        adapter.generate(sample, "speech", max_new_tokens=3)
    with pytest.raises(RuntimeError, match="boom inside the block"):
        InterventionModel(adapter, _Exploding()).generate_batch([sample], "speech", max_new_tokens=3)
    with pytest.raises(KeyError), LengthNormalization().apply(adapter, sample):
        raise KeyError("raised in the with block")
    assert _hook_count(adapter.model) == hooks_before

    fresh = load_model(tiny_dir)
    for modality in ("speech", "text"):
        ours = adapter.forward(adapter.prepare([sample], modality)).logits
        theirs = fresh.forward(fresh.prepare([sample], modality)).logits
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


def test_streaming_calibration_stats_equal_numpy_over_the_captures(adapter, dataset):
    stats = estimate_calibration_stats(adapter, dataset, "input", batch_size=4)
    speech = np.concatenate([adapter.capture(s, "speech", layers=[0]).hidden[0] for s in dataset]).astype(
        np.float64
    )
    text = np.concatenate([adapter.capture(s, "text", layers=[0]).hidden[0] for s in dataset]).astype(
        np.float64
    )
    assert stats.layer == 0 and stats.sample_ids == dataset.ids
    assert (stats.speech_count, stats.text_count) == (len(speech), len(text))
    np.testing.assert_allclose(stats.speech_mean, speech.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats.speech_std, speech.std(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats.text_mean, text.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(stats.text_std, text.std(0), rtol=1e-5, atol=1e-7)
    output = estimate_calibration_stats(adapter, dataset.select([0, 1]), "output")
    assert output.layer == adapter.num_layers


def test_calibration_at_the_input_edits_exactly_the_speech_span(adapter, dataset, samples):
    stats = estimate_calibration_stats(adapter, dataset.select([0, 1, 2]), "input")
    calibration = StatisticalCalibration(stats, eps=1e-6)
    sample = samples[4]
    start, end = adapter.capture(sample, "speech", layers=[0]).span
    before = _read_all(adapter, sample, 0)
    after = _read_all(adapter, sample, 0, calibration)
    changed = np.flatnonzero(np.abs(after - before).max(axis=1) > 0)
    assert changed.tolist() == list(range(start, end))
    want = (before[start:end] - stats.speech_mean) / (
        stats.speech_std + 1e-6
    ) * stats.text_std + stats.text_mean
    np.testing.assert_allclose(after[start:end], want, rtol=1e-5, atol=1e-6)


def test_calibration_at_the_output_layer_reaches_the_answer_only_with_all_positions(
    adapter, dataset, samples
):
    stats = estimate_calibration_stats(adapter, dataset.select([0, 1]), "output")
    sample = samples[5]
    baseline = adapter.score_options(sample, "speech").log_probs
    with StatisticalCalibration(stats, positions="span").apply(adapter, sample):
        span_only = adapter.score_options(sample, "speech").log_probs
    with StatisticalCalibration(stats, positions="all").apply(adapter, sample):
        everywhere = adapter.score_options(sample, "speech").log_probs
    np.testing.assert_array_equal(span_only, baseline)
    assert np.abs(everywhere - baseline).max() > 1e-6


def test_calibration_refuses_statistics_of_another_model(adapter, samples):
    from speechgap.interventions import CalibrationStats

    stats = CalibrationStats(0, np.zeros(5), np.ones(5), np.zeros(5), np.ones(5), 1, 1)
    with pytest.raises(ConfigError, match="5 dimensions"):
        StatisticalCalibration(stats).prepare(adapter, samples[0])


def test_intervention_model_edits_speech_only_and_logs_plans(adapter, samples, tmp_path):
    angle = AngleProjection(k=2)
    wrapped = InterventionModel(adapter, angle, plan_log=tmp_path / "plans.jsonl")
    sample = samples[0]
    assert wrapped.generate_batch([sample], "text", 4) == adapter.generate_batch([sample], "text", 4)
    with angle.apply(adapter, sample):
        direct = adapter.score_options(sample, "speech").log_probs
        generated = adapter.generate_batch([sample], "speech", 4)
    assert wrapped.generate_batch([sample], "speech", 4) == generated
    np.testing.assert_array_equal(wrapped.score_options(sample, "speech").log_probs, direct)
    wrapped.score_options(sample, "speech")  # a second call does not log the sample twice
    lines = [json.loads(line) for line in (tmp_path / "plans.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines] == [sample.id]
    assert len(lines[0]["frames"]) == 2
    described = wrapped.describe()
    assert described["intervention"]["method"] == "angle" and described["intervention"]["k"] == 2
    assert described["name_or_path"] == adapter.describe()["name_or_path"]
