"""The demo end to end on a reduced held-out set, on the shipped default mini speech LLM."""

from __future__ import annotations

import json

import pytest

from speechgap.cli import main
from speechgap.io import read_jsonl


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--out", str(out), "--questions", "16", "--no-progress"])
    assert code == 0
    return out


def test_demo_writes_summary_report_and_figures(demo_dir):
    summary = json.loads((demo_dir / "summary.json").read_text())
    records = [r for _, r in read_jsonl(demo_dir / "eval" / "results.jsonl") if r["model_role"] == "lslm"]
    text = [r["correct"] for r in records if r["modality"] == "text"]
    speech = [r["correct"] for r in records if r["modality"] == "speech"]
    assert len(text) == len(speech) == 16 == summary["n"]
    # the headline numbers are the records' numbers, not something else
    assert summary["text_accuracy"] == pytest.approx(sum(text) / 16)
    assert summary["speech_accuracy"] == pytest.approx(sum(speech) / 16)
    assert summary["gap"] == pytest.approx(summary["text_accuracy"] - summary["speech_accuracy"])
    layers = summary["layers"]
    assert (
        len(summary["pooled_cosine_per_layer"]) == len(layers) == len(summary["pooled_euclidean_per_layer"])
    )
    assert summary["cka"]["matrix"] and len(summary["cka"]["band"]["best_layer"]) == len(
        summary["cka"]["matrix"]
    )
    assert summary["provenance"]["model"]["family"] == "qwen2_audio"
    page = (demo_dir / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 4  # self-contained: figures embedded
    assert f"{100 * summary['gap']:.1f} points" in page
    for name in ("layer_curves.png", "cka_heatmap.png", "aps_histogram.png", "diagnostics_attention.png"):
        assert (demo_dir / "figures" / name).stat().st_size > 1000


def test_demo_reports_paper_3s_diagnostics(demo_dir):
    summary = json.loads((demo_dir / "summary.json").read_text())
    diagnostics = summary["diagnostics"]
    analysis = json.loads((demo_dir / "analysis" / "diagnostics" / "summary.json").read_text())
    assert diagnostics["n_samples"] == 16 == analysis["n_samples"]
    overall = diagnostics["dispersion_overall"]
    page = (demo_dir / "report.html").read_text()
    assert "paper 3&#x27;s diagnostics" in page or "paper 3's diagnostics" in page
    # the reading quotes the summary's own numbers
    assert f"covers {overall['speech']['coverage']:.1f} speech tokens" in page
    assert f"against {overall['text']['coverage']:.1f} transcript tokens" in page
    # 16 questions with four answers: enough for the answer probes, one curve per layer
    form = diagnostics["answer_form"]  # the mini models answer with the option's text
    assert form == "answer_word" and diagnostics["probes"]["answer"] is None
    assert len(diagnostics["probes"][form]["speech"]["linear"]) == len(diagnostics["lens_top1"])
    assert "A linear probe reads the correct answer (the option&#x27;s text" in page or (
        "A linear probe reads the correct answer (the option's text" in page
    )


def test_demo_rerun_resumes_without_duplicates(demo_dir):
    assert main(["demo", "--out", str(demo_dir), "--questions", "16", "--no-progress"]) == 0
    keys = [
        (r["id"], r["modality"], r["model_role"]) for _, r in read_jsonl(demo_dir / "eval" / "results.jsonl")
    ]
    assert len(keys) == len(set(keys))
