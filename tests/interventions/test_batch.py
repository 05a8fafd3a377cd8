"""Interventions on whole batches: the same answers, plans and edited states as one sample at a time."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError, ModelError
from speechgap.evaluation.run import EvalSettings
from speechgap.interventions import (
    AngleProjection,
    EditPlan,
    Intervention,
    InterventionModel,
    InterventionSettings,
    LengthNormalization,
    StatisticalCalibration,
    estimate_calibration_stats,
    run_intervention,
)
from speechgap.io import read_jsonl

# every method; length and calibration in the settings where batching could go wrong: a deep layer and
# the DTW path, or every position including the decode steps
METHODS = {
    "angle": lambda stats: AngleProjection(),
    "length-dtw-deep": lambda stats: LengthNormalization(
        critical="all", path="dtw", path_layer=2, apply_layer=1
    ),
    "calibration-all": lambda stats: StatisticalCalibration(stats, positions="all"),
}


@pytest.fixture(scope="module")
def stats(adapter, samples):
    return estimate_calibration_stats(adapter, PairedDataset.from_samples(samples[:3]), "input")


def _plans(path) -> list[dict]:
    return [record for _, record in read_jsonl(path)]


def _assert_same_plans(batched: list[dict], alone: list[dict]) -> None:
    """Equal plan logs: every choice exactly; the path scores (cosines of captures that batching changes by
    float rounding, ~1e-7) to their last logged decimal."""
    assert [p["id"] for p in batched] == [p["id"] for p in alone]
    for one, other in zip(batched, alone, strict=True):
        assert {k: v for k, v in one.items() if k != "scores"} == {
            k: v for k, v in other.items() if k != "scores"
        }
        np.testing.assert_allclose(one.get("scores", []), other.get("scores", []), rtol=0, atol=2e-6)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_batch_gives_the_answers_and_plans_of_one_sample_at_a_time(
    adapter, ragged, stats, tmp_path, method
):
    intervention = METHODS[method](stats)
    samples = ragged[:6]
    one = InterventionModel(adapter, intervention, plan_log=tmp_path / "one.jsonl")
    alone = [answer for sample in samples for answer in one.generate_batch([sample], "speech", 4)]
    batched = InterventionModel(adapter, intervention, plan_log=tmp_path / "batch.jsonl")
    assert batched.generate_batch(samples, "speech", 4) == alone
    plans = _plans(tmp_path / "batch.jsonl")
    assert [p["id"] for p in plans] == [s.id for s in samples] and plans[0]["method"] == intervention.name
    _assert_same_plans(plans, _plans(tmp_path / "one.jsonl"))


def _states(adapter, samples, layer: int, plans_on) -> list[np.ndarray]:
    """Every real position's state at ``layer`` of each sample's left-padded speech run (as generation
    sees it), read under the edits that ``plans_on`` opens."""
    seen: list[np.ndarray] = []

    def reader(states, _positions):
        seen.append(states.detach().double().numpy())

    batch = adapter.prepare(samples, "speech", padding_side="left")
    with plans_on, adapter.edit({layer: reader}, positions="all"):  # the reader's hook runs after the edit's
        adapter.forward(batch)
    return seen


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_batch_edits_each_row_as_its_sample_alone(adapter, ragged, stats, method):
    intervention = METHODS[method](stats)
    samples = ragged[::4]
    with intervention.apply_batch(adapter, samples) as plans:
        together = adapter.capture_batch(samples, "speech")  # right-padded
    unedited = adapter.capture_batch(samples, "speech")
    for sample, plan, batched, before in zip(samples, plans, together, unedited, strict=True):
        with intervention.apply(adapter, sample) as own:
            alone = adapter.capture(sample, "speech")
        assert own.positions == plan.positions and own.details.get("frames") == plan.details.get("frames")
        np.testing.assert_allclose(batched.hidden, alone.hidden, rtol=0, atol=1e-5)
        assert np.abs(batched.hidden - before.hidden).max() > 1e-3  # the edit reached this row
    last = adapter.num_layers
    left = _states(adapter, samples, last, intervention.apply_batch(adapter, samples))
    for sample, batched in zip(samples, left, strict=True):
        (alone,) = _states(adapter, [sample], last, intervention.apply(adapter, sample))
        np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-5)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_batch_scores_options_as_one_sample_at_a_time(adapter, ragged, stats, tmp_path, method):
    intervention = METHODS[method](stats)
    samples, letters = ragged[:6], [["A", "B", "C", "D"]] * 6
    one = InterventionModel(adapter, intervention, plan_log=tmp_path / "one.jsonl")
    alone = [one.score_options(sample, "speech") for sample in samples]
    batched = InterventionModel(adapter, intervention, plan_log=tmp_path / "batch.jsonl")
    together = batched.score_options_batch(samples, "speech", letters)
    assert [s.best for s in together] == [s.best for s in alone]
    np.testing.assert_allclose(
        [s.log_probs for s in together], [s.log_probs for s in alone], rtol=0, atol=1e-5
    )
    _assert_same_plans(_plans(tmp_path / "batch.jsonl"), _plans(tmp_path / "one.jsonl"))
    unedited = adapter.score_options_batch(samples, "speech", letters)
    assert (
        max(np.abs(a.log_probs - b.log_probs).max() for a, b in zip(together, unedited, strict=True)) > 1e-4
    )
    text = batched.score_options_batch(samples, "text", letters)  # the text run is not edited
    np.testing.assert_array_equal(
        [s.log_probs for s in text],
        [s.log_probs for s in adapter.score_options_batch(samples, "text", letters)],
    )


@pytest.mark.parametrize("answer_mode", ["generate", "loglik"])
def test_intervene_batch_16_equals_batch_1(tiny_dir, manifest, tmp_path, answer_mode):
    from speechgap.data.load import load_pairs
    from speechgap.models import load_model

    adapter = load_model(tiny_dir, protocol="instructed")
    data = load_pairs(manifest)
    settings = InterventionSettings(critical="all", path_layer=1, baseline_text=False)
    records = {}
    for size in (1, 16):
        evaluation = EvalSettings(answer_mode=answer_mode, max_new_tokens=4, batch_size=size, limit=5)
        run_intervention(adapter, data, "angle", tmp_path / f"b{size}", settings, evaluation, progress=False)
        records[size] = {r["id"]: r for _, r in read_jsonl(tmp_path / f"b{size}/angle/results.jsonl")}
    assert list(records[16]) == list(records[1]) and len(records[1]) == 5
    for sample_id, one in records[1].items():
        batched = records[16][sample_id]
        assert batched["response"] == one["response"]
        if answer_mode == "loglik":
            letters = sorted(one["option_log_probs"])
            np.testing.assert_allclose(
                [batched["option_log_probs"][k] for k in letters],
                [one["option_log_probs"][k] for k in letters],
                rtol=0,
                atol=1e-5,
            )
    _assert_same_plans(_plans(tmp_path / "b16/angle/plans.jsonl"), _plans(tmp_path / "b1/angle/plans.jsonl"))
    assert [p["id"] for p in _plans(tmp_path / "b16/angle/plans.jsonl")] == list(records[1])


class _Exploding(Intervention):
    """Edits every sample at layer 1; the function raises on the second sample's row."""

    name = "exploding"

    def __init__(self, victim: str) -> None:
        self.victim = victim

    def settings(self):
        return {}

    def prepare(self, adapter, sample):
        def edit(states, positions):
            if sample.id == self.victim:
                raise RuntimeError(f"boom in {sample.id}")
            return states * 2

        return EditPlan({1: edit}, positions="span")


def _hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def test_an_exception_inside_a_batched_edit_leaves_the_model_bit_identical(
    adapter, tiny_dir, ragged, tmp_path
):
    from speechgap.models import load_model

    samples = ragged[:4]
    hooks_before = _hook_count(adapter.model)
    wrapped = InterventionModel(adapter, _Exploding(samples[1].id), plan_log=tmp_path / "plans.jsonl")
    with pytest.raises(RuntimeError, match="boom in s11"):
        wrapped.generate_batch(samples, "speech", max_new_tokens=3)
    assert not (tmp_path / "plans.jsonl").exists() or not _plans(
        tmp_path / "plans.jsonl"
    )  # no answers, no plans
    with pytest.raises(KeyError), AngleProjection(apply_layer=2).apply_batch(adapter, samples):
        assert _hook_count(adapter.model) == hooks_before + 1
        adapter.generate_batch(samples, "speech", max_new_tokens=2)
        raise KeyError("raised in the with block")
    assert _hook_count(adapter.model) == hooks_before and not adapter.editing

    fresh = load_model(tiny_dir)
    for modality in ("speech", "text"):
        ours = adapter.forward(adapter.prepare(samples, modality)).logits
        theirs = fresh.forward(fresh.prepare(samples, modality)).logits
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


class _WrongCount(Intervention):
    name = "wrong-count"

    def settings(self):
        return {}

    def prepare(self, adapter, sample):
        return EditPlan({1: lambda states, positions: None})

    def prepare_batch(self, adapter, samples):
        return [self.prepare(adapter, samples[0])]


def test_wrong_batches_get_clear_errors(adapter, ragged):
    hooks_before = _hook_count(adapter.model)
    angle = AngleProjection()
    with pytest.raises(ConfigError, match=r"holds sample id\(s\) \['s10'\] more than once"):
        InterventionModel(adapter, angle).generate_batch([ragged[0], ragged[1], ragged[0]], "speech", 2)
    with pytest.raises(ConfigError, match="argument 'samples' is empty"):
        with angle.apply_batch(adapter, []):
            pytest.fail("the block must not run")
    with pytest.raises(ConfigError, match=r"2 option lists for 3 samples; expected one each"):
        InterventionModel(adapter, angle).score_options_batch(ragged[:3], "speech", [["A", "B"]] * 2)
    with pytest.raises(
        ConfigError, match=r"_WrongCount.prepare_batch must return one EditPlan per sample, got 1"
    ):
        InterventionModel(adapter, _WrongCount()).generate_batch(ragged[:2], "speech", 2)
    with pytest.raises(ModelError, match=r"sample 's12' \(speech run\): no edit plan for this sample"):
        with angle.apply_batch(adapter, ragged[:2]):
            adapter.generate_batch(ragged[:3], "speech", max_new_tokens=2)
    with pytest.raises(
        ConfigError, match=r"argument 'apply_layer' must be in 0\.\.\d+ for this model, got 9"
    ):
        AngleProjection(apply_layer=9).prepare_batch(adapter, ragged[:2])
    assert _hook_count(adapter.model) == hooks_before


def test_batched_plan_log_is_written_once_per_sample_and_resumes(adapter, ragged, tmp_path):
    path = tmp_path / "plans.jsonl"
    wrapped = InterventionModel(adapter, AngleProjection(k=2), plan_log=path)
    wrapped.generate_batch(ragged[:3], "speech", 2)
    first = path.read_text()
    wrapped.generate_batch(ragged[:5], "speech", 2)  # a resumed batch: the first three are logged already
    wrapped.score_options(ragged[4], "speech")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert path.read_text().startswith(first)
    assert [line["id"] for line in lines] == [s.id for s in ragged[:5]]
    assert all(len(line["frames"]) == 2 for line in lines)
