"""The Python API as a notebook uses it: the session in docs/python.md, run as written, prints the numbers
that the commands write to their summary files for the same settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import speechgap
from speechgap.cli import main

DOC = Path(__file__).resolve().parents[1] / "docs" / "python.md"


def _session_code() -> str:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## A notebook session", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """Run the documented session in a fresh interpreter; its printed ``key value`` lines, and its folder."""
    folder = tmp_path_factory.mktemp("notebook")
    done = subprocess.run(
        [sys.executable, "-c", _session_code()], cwd=folder, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.strip())
    return folder, {key: float(value) for key, value in printed.items()}


@pytest.fixture(scope="module")
def cli_runs(session):
    """The same runs through the commands, into another folder."""
    folder, _ = session
    model = str(speechgap.default_model_path())
    data = str(folder / "runs/nb/pairs/manifest.jsonl")
    out = folder / "runs/cli"
    common = ["--model", model, "--data", data, "--no-progress"]
    # the notebook loads the mini model with the protocol it was trained on; so do the commands
    prompts = ["--protocol", "instructed"]
    assert (
        main(
            [
                "eval",
                *common,
                *prompts,
                "--out",
                str(out / "eval"),
                "--max-new-tokens",
                "8",
                "--batch-size",
                "16",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "analyze",
                *common,
                *prompts,
                "--out",
                str(out / "analysis"),
                "--eval",
                str(out / "eval"),
                "--no-figures",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "intervene",
                *common,
                *prompts,
                "--out",
                str(out / "angle"),
                "--method",
                "angle",
                "--max-new-tokens",
                "8",
            ]
        )
        == 0
    )
    assert main([
        "intervene", *common, *prompts, "--out", str(out / "oracle"), "--method", "oracle-merge", "--retention", "0.5",
        "--layer", "2", "--max-new-tokens", "8",
    ]) == 0  # fmt: skip
    assert (
        main(
            [
                "compress",
                *common,
                "--out",
                str(out / "dap"),
                "--method",
                "dap",
                "--tau",
                "0.98",
                "--deep-tau",
                "0.88",
            ]
        )
        == 0
    )
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_every_number_the_session_prints_equals_the_commands_files(session, cli_runs):
    _, printed = session
    evaluation = _json(cli_runs / "eval" / "summary.json")
    expected = {
        "eval.macro.text": evaluation["macro"]["text_score"],
        "eval.macro.speech": evaluation["macro"]["speech_score"],
        "eval.macro.gap": evaluation["macro"]["gap"],
        "eval.pooled.speech": evaluation["pooled"]["speech_score"],
        "eval.pooled.gap_low": evaluation["pooled"]["gap_low"],
        "eval.rows": sum(1 for _ in (cli_runs / "eval" / "results.jsonl").open()),
        "analyze.aps_cos": _json(cli_runs / "analysis" / "summary.json")["aps"]["cos"]["mean"],
        "analyze.cosine_last_layer": _json(cli_runs / "analysis" / "summary.json")["per_layer"][
            "pooled_cosine"
        ]["mean"][-1],
        "angle.baseline": _json(cli_runs / "angle" / "comparison.json")["comparison"]["baseline_accuracy"],
        "angle.treated": _json(cli_runs / "angle" / "comparison.json")["comparison"]["treated_accuracy"],
        "oracle.treated": _json(cli_runs / "oracle" / "compression.json")["variants"][0]["accuracy"][
            "treated_accuracy"
        ],
        "oracle.retention": _json(cli_runs / "oracle" / "compression.json")["variants"][0]["lengths"][
            "retention"
        ],
        "dap.flops_ratio": _json(cli_runs / "dap" / "compression.json")["variants"][0]["lengths"][
            "prefill_flops_ratio"
        ],
        "dap.accuracy_delta": _json(cli_runs / "dap" / "compression.json")["variants"][0]["accuracy"][
            "delta"
        ],
        "dap.rows": len(_json(cli_runs / "dap" / "compression.json")["variants"]),
        "load.macro.speech": evaluation["macro"]["speech_score"],
    }
    for subset, row in evaluation["subsets"].items():
        expected[f"eval.subset.{subset}.speech"] = row["speech_score"]
    assert set(printed) == set(expected)
    for key, value in expected.items():
        assert printed[key] == pytest.approx(round(value, 6), abs=1e-9), key


def test_results_reopen_without_the_model_and_frames_have_the_promised_rows(session):
    folder, _ = session
    runs = folder / "runs/nb"
    ev = speechgap.EvalResult.load(runs / "eval")
    frame = ev.to_frame()
    records = [json.loads(line) for line in (runs / "eval" / "results.jsonl").open()]
    assert len(frame) == len(records) == 2 * 32
    assert set(frame.columns) == set().union(*records)
    assert set(zip(frame["id"], frame["modality"], strict=True)) == {
        (r["id"], r["modality"]) for r in records
    }
    assert ev.to_json() == _json(runs / "eval" / "summary.json")
    assert "pooled" in repr(ev) and "<table" in ev._repr_html_()

    dap = speechgap.CompressionResult.load(runs / "dap")
    assert dap.to_json() == _json(runs / "dap" / "compression.json")  # the typed result round-trips exactly
    assert list(dap.to_frame()["name"]) == [v.name for v in dap.variants]

    angle = speechgap.InterventionResult.load(runs / "angle")
    assert angle.to_json() == _json(runs / "angle" / "comparison.json")
    rows = angle.to_frame()
    assert isinstance(rows, pd.DataFrame) and len(rows) == angle.comparison.n
    assert rows["treated_correct"].mean() == pytest.approx(angle.treated_accuracy)
    assert rows["baseline_correct"].mean() == pytest.approx(angle.baseline_accuracy)

    oracle = speechgap.InterventionResult.load(runs / "oracle")  # a merging method's folder
    assert oracle.compression is not None and oracle.method == "oracle-merge"

    analysis = speechgap.AnalysisResult.load(runs / "analysis")
    assert len(analysis.to_frame()) == analysis.n_samples == 32
    assert analysis.to_frame()["speech_correct"].notna().all()  # joined with the evaluation


def test_a_setting_the_method_does_not_read_is_refused_naming_it(session):
    folder, _ = session
    model = speechgap.load_model(speechgap.default_model_path())
    data = folder / "runs/nb/pairs/manifest.jsonl"
    with pytest.raises(
        speechgap.ConfigError, match=r"argument 'retention' is not a setting of method 'angle'"
    ):
        speechgap.intervene(model, data, "angle", out_dir=folder / "x", retention=0.5)
    with pytest.raises(
        speechgap.ConfigError, match=r"argument 'k' is not a setting of method 'oracle-merge'"
    ):
        speechgap.intervene(model, data, "oracle-merge", out_dir=folder / "x", k=3)
    with pytest.raises(speechgap.ConfigError, match=r"argument 'method' must be one of .*redundancy"):
        speechgap.intervene(model, data, "nope", out_dir=folder / "x")
    with pytest.raises(speechgap.ConfigError, match=r"argument 'device' applies when the model is loaded"):
        speechgap.evaluate(model, data, out_dir=folder / "x", device="cpu")
    assert not (folder / "x").exists()


def test_results_draw_their_figures_from_their_numbers(session):
    folder, _ = session
    runs = folder / "runs/nb"
    ev = speechgap.EvalResult.load(runs / "eval")
    bars = [p for p in ev.plot().axes[0].patches]
    heights = sorted(round(p.get_height(), 6) for p in bars)
    expected = [100 * s.text_accuracy for s in ev.per_subset.values()]
    expected += [100 * s.speech_accuracy for s in ev.per_subset.values()]
    assert heights == sorted(round(v, 6) for v in expected)
    dap = speechgap.CompressionResult.load(runs / "dap")
    line = dap.plot().axes[0].lines[0]
    assert list(line.get_xdata()) == pytest.approx([100 * v.retention for v in dap.variants])
    analysis = speechgap.AnalysisResult.load(runs / "analysis")
    curves = analysis.plot().axes[0].lines
    assert any(list(c.get_ydata()) == pytest.approx(list(analysis.pooled_cosine)) for c in curves), (
        "the pooled-cosine curve is drawn from the summary"
    )


def test_a_bad_protocol_is_refused_naming_the_argument_and_its_choices(tmp_path):
    from speechgap.api import evaluate, intervene, show_prompts

    for verb in (evaluate, intervene, show_prompts):
        args = (tmp_path / "no-model", tmp_path / "no-data")
        with pytest.raises(
            speechgap.ConfigError, match="argument 'protocol' must be one of voicebench, official"
        ):
            if verb is evaluate:
                verb(*args, tmp_path / "out", protocol="chatty")
            elif verb is intervene:
                verb(*args, "angle", tmp_path / "out", protocol="chatty")
            else:
                verb(*args, protocol="chatty")
    assert not (tmp_path / "out").exists()
