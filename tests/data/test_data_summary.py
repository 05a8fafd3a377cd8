"""``PairedDataset.summarize``: counts and durations of what a dataset holds, the first bad sample named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechgap.data.load import load_pairs
from speechgap.data.types import DatasetSummary, PairedDataset, PairedSample, SampleLoadError
from speechgap.errors import DataError


def _sample(index: int, seconds: float, subset: str | None, choices: list[str] | None = None) -> PairedSample:
    audio = np.zeros(int(round(16000 * seconds)), dtype=np.float32)
    return PairedSample(id=f"s{index}", text=f"q{index}", audio=audio, subset=subset, choices=choices)


def test_summary_counts_and_duration_statistics():
    seconds = [0.5, 1.25, 0.75, 2.0, 0.3]
    subsets = ["b", None, "a", "b", None]
    samples = [
        _sample(k, s, subset, ["x", "y"] if k % 2 else None)
        for k, (s, subset) in enumerate(zip(seconds, subsets, strict=True))
    ]
    summary = PairedDataset.from_samples(samples, {"loader": "memory", "name": "unit"}).summarize()
    assert isinstance(summary, DatasetSummary)
    assert summary.source == {"loader": "memory", "name": "unit", "num_samples": 5}
    assert summary.num_samples == 5
    assert list(summary.subsets.items()) == [("(none)", 2), ("a", 1), ("b", 2)]
    assert summary.multiple_choice == 2
    assert summary.duration_s == {
        "total": round(sum(seconds), 3),
        "min": 0.3,
        "mean": round(float(np.mean(seconds)), 3),
        "median": 0.75,
        "max": 2.0,
    }
    record = summary.to_json()
    assert json.loads(json.dumps(record)) == record
    assert list(record) == ["source", "num_samples", "subsets", "multiple_choice", "duration_s"]


def test_summary_of_an_empty_dataset_has_no_statistics():
    summary = PairedDataset.from_samples([]).summarize()
    assert summary.num_samples == 0 and summary.subsets == {} and summary.multiple_choice == 0
    assert summary.duration_s == {"total": 0.0, "min": None, "mean": None, "median": None, "max": None}
    assert "duration:" not in summary.format()
    assert summary.format().splitlines()[-1] == "subsets:  "


def test_summary_format_names_the_source_and_the_numbers():
    samples = [_sample(0, 0.25, "math"), _sample(1, 0.5, "science", ["a", "b"]), _sample(2, 1.0, None)]
    source = {"loader": "voicebench", "path": "/data/vb", "subset": "sd-qa", "split": "usa", "limit": None}
    text = PairedDataset.from_samples(samples, source).summarize().format()
    assert text.splitlines() == [
        "source:   voicebench /data/vb",
        "subset:   sd-qa",
        "split:    usa",
        "samples:  3 (all decode; 1 multiple choice)",
        "subsets:  (none) 1, math 1, science 1",
        "duration: total 1.8 s; per sample min 0.25, mean 0.58, median 0.50, max 1.00 s",
    ]


def test_the_first_sample_that_does_not_load_is_named(manifest_dir):
    (manifest_dir / "audio" / "c.ogg").write_bytes(b"not audio at all")
    dataset = load_pairs(str(manifest_dir / "manifest.jsonl"))
    with pytest.raises(SampleLoadError) as caught:
        dataset.summarize()
    error = caught.value
    assert isinstance(error, DataError)
    assert (error.position, error.sample_id) == (2, "c")
    assert isinstance(error.__cause__, DataError)
    assert str(error) == f"sample 2 (id 'c') does not load: {error.__cause__}"
    assert "c.ogg" in str(error)


def test_errors_that_are_not_about_the_data_are_not_wrapped():
    def load(index: int) -> PairedSample:
        raise RuntimeError("a bug, not bad data")

    with pytest.raises(RuntimeError, match="a bug"):
        PairedDataset({"loader": "memory"}, ["a"], load).summarize()
