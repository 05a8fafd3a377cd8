"""Sharded ``analyze``: K shards run one after another, merged, against the unsharded run of the same data."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest

from speechgap import api
from speechgap.analysis import AnalysisSettings, analyze
from speechgap.analysis.run import path_file_name
from speechgap.analysis.shards import merge_analysis_shards
from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError, DataError

# provenance of the moment and place a run happened, and the merge's list of its shards
_WHEN_AND_HOW = ("created", "command", "merged_from")


def _table(path):
    return pq.read_table(path).to_pylist()


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _run_shards(source, folder, settings, count, **kwargs):
    dirs = [folder / f"shard-{k}" for k in range(count)]
    for k, shard_dir in enumerate(dirs):
        analyze(source, shard_dir, replace(settings, shard=(k, count), figures=False), **kwargs)
    return dirs


def _record(run_record):
    return {key: value for key, value in run_record.items() if key not in _WHEN_AND_HOW}


def _summary_without_cka(summary):
    out = {key: value for key, value in summary.items() if key not in ("provenance", "cka")}
    out["cka"] = {key: value for key, value in summary["cka"].items() if key not in ("matrix", "band")}
    return out


def assert_same_analysis(merged, reference):
    """Every output of the merged folder equals the unsharded run's (CKA to 1e-9, the rest exactly)."""
    out, ref = merged.out_dir, reference.out_dir
    assert _lines(out / "samples.jsonl") == _lines(ref / "samples.jsonl")
    assert _table(out / "per_layer.parquet") == _table(ref / "per_layer.parquet")
    assert _table(out / "per_sample.parquet") == _table(ref / "per_sample.parquet")
    np.testing.assert_allclose(np.load(out / "cka.npy"), np.load(ref / "cka.npy"), rtol=0, atol=1e-9)
    np.testing.assert_allclose(merged.cka, reference.cka, rtol=0, atol=1e-9)
    summary = json.loads((out / "summary.json").read_text())
    expected = json.loads((ref / "summary.json").read_text())
    assert _summary_without_cka(summary) == _summary_without_cka(expected)
    np.testing.assert_allclose(summary["cka"]["matrix"], expected["cka"]["matrix"], rtol=0, atol=1e-9)
    assert summary["cka"]["band"]["best"] == expected["cka"]["band"]["best"]
    assert _record(summary["provenance"]) == _record(expected["provenance"])
    merged_record = json.loads((out / "analysis.json").read_text())
    assert _record(merged_record) == _record(json.loads((ref / "analysis.json").read_text()))
    assert merged_record["settings"]["shard"] is None and len(merged_record["merged_from"]) >= 1
    views = sorted(path.name for path in (ref / "paths").glob("*.npz"))
    assert views and sorted(path.name for path in (out / "paths").glob("*.npz")) == views
    for name in views:
        with np.load(out / "paths" / name) as got, np.load(ref / "paths" / name) as want:
            assert got.files == want.files
            for key in want.files:
                np.testing.assert_array_equal(got[key], want[key])
    assert [p.name for p in merged.figures] == [p.name for p in reference.figures]


def test_three_shards_merge_into_the_unsharded_run_and_it_resumes_with_nothing_to_do(
    store, dataset, store_run, tmp_path
):
    settings = AnalysisSettings(checkpoint_every=2)  # store_run's settings, figures on
    dirs = _run_shards(store, tmp_path, settings, 3, pairs=dataset)
    # each shard analysed its block only, and wrote the path views of the path samples it holds
    shard_ids = [[r["id"] for r in _lines(folder / "samples.jsonl")] for folder in dirs]
    assert shard_ids == [dataset.ids[0:2], dataset.ids[2:4], dataset.ids[4:5]]
    assert len(list((dirs[0] / "paths").glob("*.npz"))) == 2 and not (dirs[1] / "paths").exists()

    merged = merge_analysis_shards(list(reversed(dirs)), tmp_path / "merged")
    assert merged.n_samples == len(dataset) and merged.n_new == 0
    assert_same_analysis(merged, store_run)
    assert len(merged.figures) == len(store_run.figures) > 3

    # merging again gives the same folder
    names = ("samples.jsonl", "summary.json", "analysis.json", "cka.npy")
    before = {name: (tmp_path / "merged" / name).read_bytes() for name in names}
    again = merge_analysis_shards(dirs, tmp_path / "merged")
    assert {name: (tmp_path / "merged" / name).read_bytes() for name in names} == before
    np.testing.assert_array_equal(again.cka, merged.cka)

    resumed = analyze(store, tmp_path / "merged", settings, pairs=dataset)
    assert resumed.n_new == 0
    np.testing.assert_array_equal(resumed.cka, merged.cka)
    assert _table(resumed.per_sample_path) == _table(store_run.per_sample_path)


@pytest.mark.parametrize(
    "settings",
    [
        AnalysisSettings(checkpoint_every=1, cka_max_bytes=0, figures=False),  # CKA rows, not sums
        AnalysisSettings(debiased=True, include_layer0=True, path_samples=["s3", "s1"], figures=False),
    ],
    ids=["rows-eval", "debiased-eval"],
)
def test_two_uneven_shards_with_an_eval_run_equal_the_unsharded_run(store, dataset, settings, tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    lines = [
        {"id": sid, "modality": modality, "model_role": "lslm", "correct": (k + len(modality)) % 3 == 0}
        for k, sid in enumerate(dataset.ids)
        for modality in ("speech", "text")
    ]
    (eval_dir / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    reference = analyze(store, tmp_path / "ref", settings, eval_dir=eval_dir, pairs=dataset)
    dirs = _run_shards(store, tmp_path, settings, 2, pairs=dataset)
    assert [len(_lines(folder / "samples.jsonl")) for folder in dirs] == [3, 2]  # 5 = 3 + 2
    merged = merge_analysis_shards(dirs, tmp_path / "merged", eval_dir=eval_dir, figures=False)
    assert_same_analysis(merged, reference)
    assert merged.summary["correctness"] == reference.summary["correctness"]
    assert merged.summary["eval"]["matched"] == len(dataset)
    assert analyze(store, tmp_path / "merged", settings, eval_dir=eval_dir, pairs=dataset).n_new == 0


def test_shards_of_a_model_run_agree_on_the_cka_origin_when_the_first_sample_is_skipped(
    adapter, dataset, sample_factory, tmp_path
):
    # the first sample is too long for the tiny model: the CKA origin is the next sample's rows, in every
    # shard, and the first shard holds nothing but the skipped sample
    samples = [sample_factory(9, "Too long for the window.", 4.0), dataset[0], dataset[1]]
    data = PairedDataset.from_samples(samples, source={"loader": "memory", "name": "skip-first"})
    settings = AnalysisSettings(figures=False)
    reference = analyze((adapter, data), tmp_path / "ref", settings)
    assert list(reference.skipped) == ["s9"]
    dirs = _run_shards((adapter, data), tmp_path, settings, 3)
    first = json.loads((dirs[0] / "summary.json").read_text())
    assert first["n_samples"] == 0 and list(first["skipped"]) == ["s9"]
    merged = merge_analysis_shards(dirs, tmp_path / "merged", figures=False)
    assert list(merged.skipped) == ["s9"] and merged.n_samples == 2
    assert_same_analysis(merged, reference)
    assert analyze((adapter, data), tmp_path / "merged", settings).n_new == 0


def test_api_analyze_passes_the_shard_through(adapter, dataset, tmp_path):
    common = {"limit": 3, "figures": False, "layers": [1, 2], "batch_size": 1}  # exact: one sample per pass
    reference = api.analyze(adapter, dataset, tmp_path / "ref", **common)
    for k in range(2):
        api.analyze(adapter, dataset, tmp_path / f"shard-{k}", shard=(k, 2), **common)
    record = json.loads((tmp_path / "shard-1" / "analysis.json").read_text())
    assert record["settings"]["shard"] == [1, 2] and record["shard"]["ids"] == ["s2"]
    assert record["shard"]["planned_ids"] == dataset.ids[:3]
    merged = merge_analysis_shards(
        [tmp_path / "shard-0", tmp_path / "shard-1"], tmp_path / "m", figures=False
    )
    assert_same_analysis(merged, reference)


def test_shard_settings_are_checked():
    assert AnalysisSettings(shard=[1, 3]).shard == (1, 3)  # as read back from JSON
    assert AnalysisSettings(shard=(np.int64(0), np.int64(2))).shard == (0, 2)
    for bad in [(3, 3), (-1, 2), (0, 0), (1,), "0/3", (True, 2), (0.0, 2)]:
        with pytest.raises(ConfigError, match="argument 'shard'"):
            AnalysisSettings(shard=bad)
    with pytest.raises(ConfigError, match="argument 'shard' cannot be combined with argument 'diagnostics'"):
        AnalysisSettings(shard=(0, 2), diagnostics=True)


def test_merge_refuses_what_does_not_make_the_whole_run(store, dataset, store_run, tmp_path):
    settings = AnalysisSettings(checkpoint_every=2, figures=False)
    dirs = _run_shards(store, tmp_path, settings, 3, pairs=dataset)
    out = tmp_path / "merged"
    with pytest.raises(ConfigError, match=r"no folder holds shard 3/3 \(samples 's4'"):
        merge_analysis_shards(dirs[:2], out)
    with pytest.raises(ConfigError, match="both hold shard 2/3.*overlap"):
        merge_analysis_shards([dirs[0], dirs[1], dirs[1], dirs[2]], out)
    with pytest.raises(DataError, match="not a shard of a sharded analysis"):
        merge_analysis_shards([*dirs, store_run.out_dir], out)
    with pytest.raises(ConfigError, match="'out_dir' is the folder of shard 1/3"):
        merge_analysis_shards(dirs, dirs[0])
    with pytest.raises(ConfigError, match="argument 'shard': block 7 of 7 holds no sample.*at most 5"):
        analyze(store, tmp_path / "empty", replace(settings, shard=(6, 7)), pairs=dataset)
    with pytest.raises(ConfigError, match="other settings"):  # a shard folder is not resumed unsharded
        analyze(store, dirs[0], settings, pairs=dataset)

    # an incomplete shard: a sample's record lost
    incomplete = tmp_path / "incomplete"
    shutil.copytree(dirs[1], incomplete)
    lines = (incomplete / "samples.jsonl").read_text().splitlines(keepends=True)
    (incomplete / "samples.jsonl").write_text(lines[0])
    with pytest.raises(DataError, match="shard 2/3 is incomplete: sample 's3' has no record"):
        merge_analysis_shards([dirs[0], incomplete, dirs[2]], out)
    (incomplete / "analysis.json").unlink()
    with pytest.raises(DataError, match="no analysis.json"):
        merge_analysis_shards([dirs[0], incomplete, dirs[2]], out)

    # a shard of other settings
    other = tmp_path / "other"
    shutil.copytree(dirs[2], other)
    record = json.loads((other / "analysis.json").read_text())
    record["settings"]["cka_pairing"] = "uniform"
    (other / "analysis.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="shard 3/3 was run with another settings"):
        merge_analysis_shards([dirs[0], dirs[1], other], out)

    # CKA sums around another origin than the other shards'
    shifted = tmp_path / "shifted"
    shutil.copytree(dirs[2], shifted)
    with np.load(shifted / "cka_state.npz", allow_pickle=False) as saved:
        state = {key: saved[key] for key in saved.files}
    state["_shift_x"] = state["_shift_x"] + 0.5
    np.savez(shifted / "cka_state.npz", **state)
    with pytest.raises(ConfigError, match="shard 3/3 does not add up.*another origin"):
        merge_analysis_shards([dirs[0], dirs[1], shifted], out)
    assert not (out / "summary.json").exists()  # nothing was merged by the refused calls

    # the path view of a path sample lost
    no_view = tmp_path / "no_view"
    shutil.copytree(dirs[0], no_view)
    (no_view / "paths" / path_file_name("s1")).unlink()
    with pytest.raises(DataError, match="path view of sample 's1' is missing"):
        merge_analysis_shards([no_view, dirs[1], dirs[2]], out)
