"""``analyze`` with the model captures ``batch_size`` samples per forward pass: the same measures as one at a time."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from speechgap.analysis import AnalysisSettings, analyze
from speechgap.analysis.run import load_sample_view, view_file
from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError


def _records(folder):
    return [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]


def _numbers(value, prefix=""):
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _numbers(item, f"{prefix}/{key}").items()}
    if isinstance(value, list):
        return {k: v for n, item in enumerate(value) for k, v in _numbers(item, f"{prefix}/{n}").items()}
    return {prefix: value}


def _assert_same_records(one, many):
    assert [r["id"] for r in one] == [r["id"] for r in many]
    for a, b in zip(one, many, strict=True):
        a_values, b_values = _numbers(a), _numbers(b)
        assert a_values.keys() == b_values.keys()
        for key, value in a_values.items():
            other = b_values[key]
            if isinstance(value, float) and not isinstance(other, str):
                # states of a right-padded batch differ from one sample's by float rounding only
                assert other == pytest.approx(value, rel=1e-6, abs=1e-6, nan_ok=True), (a["id"], key)
            else:
                assert other == value, (a["id"], key)  # ids, counts, paths' integers, the content hash


@pytest.fixture()
def counted(adapter, monkeypatch):
    """The adapter with its capture passes counted (``calls`` lists the batch size of each)."""
    calls: list[int] = []
    original = adapter.capture_batch

    def capture_batch(samples, modality, **kwargs):
        calls.append(len(samples))
        return original(samples, modality, **kwargs)

    monkeypatch.setattr(adapter, "capture_batch", capture_batch)
    return adapter, calls


def test_batched_captures_give_the_measures_of_one_at_a_time(counted, dataset, tmp_path):
    adapter, calls = counted
    settings = dict(figures=False, debiased=True, checkpoint_every=2)
    one = analyze((adapter, dataset), tmp_path / "one", AnalysisSettings(batch_size=1, **settings))
    assert calls == [1] * 2 * len(dataset)
    calls.clear()
    batched = analyze((adapter, dataset), tmp_path / "four", AnalysisSettings(batch_size=4, **settings))
    assert calls == [4, 4, 1, 1]  # speech and text of 4 samples, then of the last one
    _assert_same_records(_records(tmp_path / "one"), _records(tmp_path / "four"))
    np.testing.assert_allclose(batched.cka, one.cka, atol=1e-6)
    for sample in dataset:
        a = load_sample_view(view_file(tmp_path / "one", sample.id))
        b = load_sample_view(view_file(tmp_path / "four", sample.id))
        np.testing.assert_allclose(b.sim, a.sim, atol=2e-3)  # float16 on disk
        for layer in range(len(a.layers)):
            np.testing.assert_array_equal(b.argmax[layer], a.argmax[layer])
            np.testing.assert_array_equal(b.dtw[layer], a.dtw[layer])
    recorded = json.loads((tmp_path / "four" / "analysis.json").read_text())["settings"]
    assert recorded["batch_size"] == 4


def test_a_refused_sample_inside_a_batch_is_skipped_alone(adapter, dataset, sample_factory, tmp_path):
    samples = [
        dataset[0],
        dataset[1],
        sample_factory(9, "Too long for the window.", 4.0),
        dataset[2],
        dataset[3],
    ]
    data = PairedDataset.from_samples(samples)
    settings = dict(figures=False)
    one = analyze((adapter, data), tmp_path / "one", AnalysisSettings(batch_size=1, **settings))
    batched = analyze((adapter, data), tmp_path / "five", AnalysisSettings(batch_size=5, **settings))
    assert batched.skipped == one.skipped and list(batched.skipped) == ["s9"]
    _assert_same_records(_records(tmp_path / "one"), _records(tmp_path / "five"))
    np.testing.assert_allclose(batched.cka, one.cka, atol=1e-6)


def test_a_run_resumes_under_another_batch_size(adapter, dataset, tmp_path):
    fresh = analyze((adapter, dataset), tmp_path / "fresh", AnalysisSettings(figures=False, batch_size=3))
    analyze((adapter, dataset), tmp_path / "out", AnalysisSettings(figures=False, batch_size=1, limit=2))
    resumed = analyze((adapter, dataset), tmp_path / "out", AnalysisSettings(figures=False, batch_size=3))
    assert resumed.n_new == len(dataset) - 2
    _assert_same_records(_records(tmp_path / "fresh"), _records(tmp_path / "out"))
    np.testing.assert_allclose(resumed.cka, fresh.cka, atol=1e-6)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "8", True])
def test_a_bad_batch_size_is_refused_by_name(bad):
    with pytest.raises(ConfigError, match="argument 'batch_size'"):
        AnalysisSettings(batch_size=bad)


def test_the_automatic_batch_size_keeps_a_batch_within_the_budget(adapter, dataset, tmp_path):
    from speechgap.analysis.run import (
        ASSUMED_SPAN_TOKENS,
        CAPTURE_BUDGET_BYTES,
        MAX_AUTO_BATCH_SIZE,
        auto_batch_size,
    )

    for layers, width in [(33, 4096), (29, 3584), (41, 5120), (81, 8192), (5, 128), (1, 1)]:
        size = auto_batch_size(layers, width)
        per_sample = 2 * 4 * layers * ASSUMED_SPAN_TOKENS * width
        assert 1 <= size <= MAX_AUTO_BATCH_SIZE
        assert size == 1 or size * per_sample <= CAPTURE_BUDGET_BYTES
        assert size == MAX_AUTO_BATCH_SIZE or (size + 1) * per_sample > CAPTURE_BUDGET_BYTES or size == 1
    assert auto_batch_size(33, 4096) == 5 and auto_batch_size(81, 8192) == 1
    result = analyze((adapter, dataset), tmp_path, AnalysisSettings(figures=False, limit=2))
    recorded = json.loads((tmp_path / "analysis.json").read_text())["settings"]
    layers = sorted(set(recorded["layers"]) | {recorded["base_layer"]})
    assert recorded["batch_size"] == auto_batch_size(len(layers), adapter.hidden_size) == MAX_AUTO_BATCH_SIZE
    assert result.n_samples == 2


def test_batched_shards_merge_into_the_whole_run_within_rounding(adapter, dataset, tmp_path):
    from speechgap.analysis.shards import merge_analysis_shards

    settings = AnalysisSettings(figures=False, batch_size=3)
    shards = []
    for k in range(2):
        analyze((adapter, dataset), tmp_path / f"shard{k}", replace(settings, shard=(k, 2)))
        shards.append(tmp_path / f"shard{k}")
    merged = merge_analysis_shards(shards, tmp_path / "merged", figures=False)
    whole = analyze((adapter, dataset), tmp_path / "whole", settings)
    _assert_same_records(_records(tmp_path / "whole"), _records(tmp_path / "merged"))
    np.testing.assert_allclose(merged.cka, whole.cka, atol=1e-6)
