"""`speechgap intervene` end to end on a tiny model: comparison.json against the two results files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechgap.cli import main
from speechgap.interventions import METHODS, Intervention, register_method
from speechgap.io import read_jsonl


def _records(run_dir: Path, modality: str) -> dict[str, dict]:
    return {r["id"]: r for _, r in read_jsonl(run_dir / "results.jsonl") if r["modality"] == modality}


def _check_comparison(comparison: dict, baseline: dict[str, dict], treated: dict[str, dict]) -> None:
    """Every number of a comparison recomputed from the two runs' records."""
    ids = sorted(baseline)
    assert sorted(treated) == ids and comparison["n"] == len(ids)
    b = np.array([bool(baseline[i]["correct"]) for i in ids])
    t = np.array([bool(treated[i]["correct"]) for i in ids])
    assert comparison["baseline_accuracy"] == pytest.approx(b.mean())
    assert comparison["treated_accuracy"] == pytest.approx(t.mean())
    assert comparison["delta"] == pytest.approx(t.mean() - b.mean())
    assert comparison["delta_low"] <= comparison["delta"] <= comparison["delta_high"]
    cells = comparison["cells"]
    assert cells["both_right"] == int(np.sum(b & t))
    assert cells["only_baseline_right"] == int(np.sum(b & ~t))
    assert cells["only_treated_right"] == int(np.sum(~b & t))
    assert cells["both_wrong"] == int(np.sum(~b & ~t))
    changed = {i for i in ids if baseline[i]["extracted"] != treated[i]["extracted"]}
    assert {c["id"] for c in comparison["changed"]} == changed
    if not (b != t).any():
        assert comparison["mcnemar"]["p_exact"] == 1.0


def test_intervene_angle_end_to_end_and_resume(tiny_dir, manifest, tmp_path, capsys):
    out = tmp_path / "angle"
    argv = [
        "intervene", "--model", str(tiny_dir), "--data", str(manifest), "--out", str(out),
        "--method", "angle", "--critical", "all", "--answer-mode", "loglik", "--protocol", "instructed", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    record = json.loads((out / "comparison.json").read_text())
    baseline, treated = _records(out / "baseline", "speech"), _records(out / "angle", "speech")
    _check_comparison(record["comparison"], baseline, treated)
    assert record["intervention"] == {
        "method": "angle", "critical": "all", "k": None, "path": "argmax", "similarity": "cosine",
        "path_layer": 0, "apply_layer": 0, "phase": "prefill",
    }  # fmt: skip
    assert record["provenance"]["model"]["name_or_path"] == str(tiny_dir)
    text = _records(out / "baseline", "text")
    assert record["text_accuracy"] == pytest.approx(np.mean([bool(r["correct"]) for r in text.values()]))
    assert not _records(out / "angle", "text")  # the treated run edits speech only
    # the edit reached the answers: option log-probabilities moved (the letters need not change)
    assert any(baseline[i]["option_log_probs"] != treated[i]["option_log_probs"] for i in baseline)
    treated_run = json.loads((out / "angle" / "run.json").read_text())
    assert treated_run["model"]["intervention"]["method"] == "angle"
    assert "intervention" not in json.loads((out / "baseline" / "run.json").read_text())["model"]
    plans = [r for _, r in read_jsonl(out / "angle" / "plans.jsonl")]
    assert sorted(p["id"] for p in plans) == sorted(baseline)
    assert f"{100 * record['comparison']['treated_accuracy']:.1f}%" in printed

    lines = (out / "angle" / "results.jsonl").read_text()
    assert main(argv) == 0  # resumed: nothing is run or written twice
    assert (out / "angle" / "results.jsonl").read_text() == lines
    other = [a if a != "all" else "bottom-k" for a in argv]  # another setting into the same folder
    assert main(other) == 2
    assert "different model" in capsys.readouterr().err


def test_intervene_calibration_with_a_drawn_split(tiny_dir, manifest, tmp_path):
    out = tmp_path / "calibration"
    argv = [
        "intervene", "--model", str(tiny_dir), "--data", str(manifest), "--out", str(out),
        "--method", "calibration", "--calibration-fraction", "0.25", "--split-seed", "1",
        "--answer-mode", "loglik", "--protocol", "instructed", "--no-baseline-text", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((out / "comparison.json").read_text())
    baseline_dir = out / record["baseline_dir"]
    baseline, treated = _records(baseline_dir, "speech"), _records(out / "calibration", "speech")
    _check_comparison(record["comparison"], baseline, treated)
    from speechgap.interventions import CalibrationStats

    stats = CalibrationStats.load(out / "calibration" / "stats-layer0.safetensors")
    assert len(stats.sample_ids) == 2 and set(stats.sample_ids).isdisjoint(baseline)
    assert len(baseline) == 6 and not _records(baseline_dir, "text")
    assert record["intervention"]["statistics"]["fingerprint"] == stats.fingerprint()


def test_intervene_calibration_refuses_overlapping_splits(tiny_dir, manifest, tmp_path, capsys):
    argv = [
        "intervene", "--model", str(tiny_dir), "--data", str(manifest), "--out", str(tmp_path / "o"),
        "--method", "calibration", "--calibration", f"{manifest}?limit=3", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "share 3 sample id(s)" in err and "'q0'" in err
    assert not (tmp_path / "o" / "comparison.json").exists()


def test_intervene_redundancy_sweep(tiny_dir, manifest, tmp_path):
    out = tmp_path / "redundancy"
    argv = [
        "intervene", "--model", str(tiny_dir), "--data", str(manifest), "--out", str(out),
        "--method", "redundancy", "--repeats", "2,4", "--limit", "4", "--answer-mode", "loglik", "--protocol", "instructed", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    record = json.loads((out / "comparison.json").read_text())
    assert record["repeats"] == [1, 2, 4]
    assert [row["repeats"] for row in record["comparisons"]] == [2, 4]
    base = _records(out / "redundancy" / "r1", "text")
    assert len(base) == 4
    for row in record["comparisons"]:
        treated = _records(out / row["dir"], "text")
        _check_comparison(row, base, treated)
        r = row["repeats"]
        sample_id = sorted(base)[0]
        assert (
            treated[sample_id]["reference"]["text"].split()[:r]
            == [base[sample_id]["reference"]["text"].split()[0]] * r
        )


def test_registered_methods_are_dispatched(tiny_dir, manifest, tmp_path):
    calls = []

    class Noop(Intervention):
        name = "noop"

        def settings(self):
            return {"what": "nothing"}

        def prepare(self, adapter, sample):
            from speechgap.interventions import EditPlan

            calls.append(sample.id)
            return EditPlan({1: lambda states, positions: None})

    register_method("noop-test", lambda context: Noop())
    try:
        out = tmp_path / "noop"
        argv = [
            "intervene", "--model", str(tiny_dir), "--data", str(manifest), "--out", str(out),
            "--method", "noop-test", "--limit", "3", "--answer-mode", "loglik", "--protocol", "instructed", "--no-baseline-text",
            "--no-progress",
        ]  # fmt: skip
        assert main(argv) == 0
        record = json.loads((out / "comparison.json").read_text())
        assert sorted(calls) == ["q0", "q1", "q2"]
        assert record["comparison"]["changed"] == [] and record["comparison"]["delta"] == 0.0
    finally:
        METHODS.pop("noop-test")


def test_bad_settings_are_refused_before_any_run(tiny_dir, manifest, tmp_path, capsys):
    out = tmp_path / "bad"
    argv = [
        "intervene", "--model", str(tiny_dir), "--data", str(manifest), "--out", str(out),
        "--method", "angle", "--apply-layer", "7", "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 2
    assert "--apply-layer must be in 0..3 for this model, got 7" in capsys.readouterr().err
    assert not (out / "baseline").exists()
    assert main([*argv[:-5], "--method", "nope"]) == 2
    error = capsys.readouterr().err
    assert (
        "--method must be one of angle, ap-deep, ap-input, calibration, dap, kv-merge, length, oracle-merge"
        in error
    )
    assert "argument" not in error
