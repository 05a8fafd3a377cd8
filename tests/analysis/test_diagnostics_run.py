"""Diagnostics over a dataset: resumable lines, states before lines, probes, summary equal to its parts."""

from __future__ import annotations

import json

import numpy as np
import pytest

from speechgap.analysis.diagnostics import diagnose_sample
from speechgap.analysis.diagnostics_run import (
    DiagnosticsSettings,
    run_diagnostics,
    wrong_speech_ids,
)
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError, DataError

QUESTION = "Which planet is red?\nA. Venus\nB. Mars\nC. Earth\nD. Saturn"


@pytest.fixture(scope="module")
def mcq_dataset(dataset) -> PairedDataset:
    samples = []
    for index in range(10):
        base = dataset[index % len(dataset)]
        samples.append(
            PairedSample(
                id=f"q{index}",
                text=QUESTION if index % 2 else base.text,
                audio=base.audio,
                word_times=base.word_times,
                answer="ABCD"[index % 4],
                choices=["Venus", "Mars", "Earth", "Saturn"],
            )
        )
    return PairedDataset.from_samples(samples, source={"loader": "memory", "name": "mcq-fixture"})


def _lines(folder):
    return [json.loads(line) for line in (folder / "diagnostics" / "samples.jsonl").read_text().splitlines()]


def test_summary_is_the_mean_of_the_samples_and_resume_adds_each_once(adapter, mcq_dataset, tmp_path):
    settings = DiagnosticsSettings(base_layer=1, stability_layers=(0, 2), probe_kinds=("linear",))
    first = PairedDataset.from_samples(
        list(mcq_dataset)[:4], source={"loader": "memory", "name": "mcq-fixture"}
    )
    early = run_diagnostics(adapter, first, tmp_path, settings).summary
    assert (
        early["probes"]["answer"] is None
        and "skipped: 4 multiple-choice samples" in early["probes"]["answer_note"]
    )
    result = run_diagnostics(adapter, mcq_dataset, tmp_path, settings, wrong_speech=["q1", "q3", "q5"])
    summary = result.summary
    assert result.n_samples == 10 and result.dispersion == summary["dispersion_overall"]
    assert result.folder == tmp_path / "diagnostics" and result.to_json() is summary
    lines = _lines(tmp_path)
    assert [line["id"] for line in lines] == [f"q{i}" for i in range(10)]  # each once, in order
    expected = [diagnose_sample(adapter, s, base_layer=1, stability_layers=(0, 2)) for s in mcq_dataset]
    np.testing.assert_allclose(
        summary["lens_top1"], np.mean([e.lens_top1 for e in expected], axis=0), atol=1e-9
    )
    np.testing.assert_allclose(
        summary["dispersion"]["speech"]["coverage"],
        np.mean([e.dispersion["speech"]["coverage"] for e in expected], axis=0),
    )
    layers = adapter.num_layers + 1
    form = summary["answer_form"]
    other = "answer" if form == "answer_word" else "answer_word"
    word_last, letter_last = summary["answer_word_top1"]["text"][-1], summary["answer_top1"]["text"][-1]
    assert form == ("answer_word" if word_last > letter_last else "answer")
    answer = summary["probes"][form]
    assert summary["probes"][other] is None and "not probed" in summary["probes"][f"{other}_note"]
    assert len(answer["speech"]["linear"]) == layers and len(answer["text"]["linear"]) == layers
    assert all(0.0 <= p["accuracy"] <= 1.0 for p in answer["speech"]["linear"])
    assert all(p["subset_accuracy"] is None for p in answer["text"]["linear"])
    word = summary["probes"]["word"]
    assert len(word["linear"]) == layers and word["n_words"] >= 2
    assert word["linear"][0]["n_train"] + word["linear"][0]["n_test"] == word["n_frames"]
    modality = summary["probes"]["modality"]["linear"]
    assert len(modality) == layers and modality[0]["n_test"] + modality[0]["n_train"] == 20
    import pandas as pd

    table = pd.read_parquet(tmp_path / "diagnostics" / "per_layer.parquet")
    assert len(table) == 10 * layers and table["update_cosine"].isna().sum() == 10  # null at layer 0 only
    means = table.groupby("layer")["lens_top1"].mean().to_numpy()
    np.testing.assert_allclose(means, summary["lens_top1"], atol=1e-12)
    coverage = table.groupby("layer")["speech_coverage"].mean().to_numpy()
    assert np.isnan(coverage[0])  # block l's attention sits at layer l
    np.testing.assert_allclose(coverage[1:], summary["dispersion"]["speech"]["coverage"])
    written = json.loads((tmp_path / "diagnostics" / "summary.json").read_text())
    assert written["n_samples"] == 10 and written["provenance"]["settings"]["base_layer"] == 1


def test_a_changed_sample_or_other_settings_are_refused(adapter, mcq_dataset, tmp_path):
    settings = DiagnosticsSettings(base_layer=1, probe_kinds=("linear",))
    run_diagnostics(adapter, mcq_dataset, tmp_path, settings)
    with pytest.raises(ConfigError, match="other settings"):
        run_diagnostics(adapter, mcq_dataset, tmp_path, DiagnosticsSettings(base_layer=2))
    changed = list(mcq_dataset)
    changed[3] = PairedSample(
        id="q3", text="Another question?", audio=changed[3].audio, answer="A", choices=changed[3].choices
    )
    with pytest.raises(DataError, match="'q3' changed"):
        run_diagnostics(
            adapter, PairedDataset.from_samples(changed, source={"loader": "memory"}), tmp_path, settings
        )


def test_a_line_without_its_states_is_refused(adapter, mcq_dataset, tmp_path):
    settings = DiagnosticsSettings(base_layer=1, probe_kinds=("linear",))
    run_diagnostics(adapter, mcq_dataset, tmp_path, settings)
    next((tmp_path / "diagnostics" / "states").glob("*.safetensors")).unlink()
    with pytest.raises(DataError, match="states of a finished sample are missing"):
        run_diagnostics(adapter, mcq_dataset, tmp_path, settings)


def test_wrong_speech_ids_reads_the_eval_results(tmp_path):
    records = [
        {"id": "a", "modality": "speech", "correct": False},
        {"id": "a", "modality": "text", "correct": False},
        {"id": "b", "modality": "speech", "correct": True},
        {"id": "c", "modality": "speech", "correct": None},
    ]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert wrong_speech_ids(tmp_path) == ["a"]
    with pytest.raises(DataError, match="results.jsonl"):
        wrong_speech_ids(tmp_path / "nowhere")


def test_analyze_with_diagnostics_writes_them_into_the_summary_and_figures(adapter, mcq_dataset, tmp_path):
    from speechgap.analysis import AnalysisSettings, analyze

    result = analyze((adapter, mcq_dataset), tmp_path, AnalysisSettings(diagnostics=True, limit=8))
    diagnostics = json.loads((tmp_path / "summary.json").read_text())["diagnostics"]
    assert diagnostics["n_samples"] == 8 and diagnostics == result.diagnostics
    assert "diagnostics: attention at the decision step, text vs speech: Cov_0.90" in result.format()
    base = result.summary["settings"]["base_layer"]
    # 0, 1, min(5, L), L // 2, L of a 3-block model, and the base layer
    assert diagnostics["path_stability"]["layers"] == sorted({0, 1, 3, base})
    names = {path.name for path in result.figures}
    assert {"diagnostics_lens.png", "diagnostics_attention.png", "diagnostics_updates.png"} <= names
    assert "diagnostics_probes.png" in names
    assert all((tmp_path / "figures" / name).stat().st_size > 1000 for name in names)
    lines = _lines(tmp_path)
    assert [line["id"] for line in lines] == [f"q{i}" for i in range(8)]


def test_diagnostics_need_the_model(capture_dir, tmp_path):
    from speechgap.analysis import AnalysisSettings, analyze

    with pytest.raises(ConfigError, match="argument 'diagnostics' needs the model"):
        analyze(capture_dir, tmp_path, AnalysisSettings(diagnostics=True))
    with pytest.raises(ConfigError, match="argument 'diagnostics' must be True or False"):
        AnalysisSettings(diagnostics="yes")


def test_word_centre_frames_pick_the_frame_under_each_words_middle():
    from speechgap.analysis.diagnostics import word_centre_frames

    frames = np.stack([np.arange(10) * 0.1, np.arange(1, 11) * 0.1], axis=1)  # ten 100 ms frames
    words = [("a", 0.0, 0.25), ("b", 0.3, 0.5), ("c", 0.95, 1.4)]
    # midpoints 0.125, 0.4 (frame 4 starts at 0.4), 1.175 (past the last frame: the nearest, 9)
    assert word_centre_frames(frames, words) == [1, 4, 9]


def test_answer_target_follows_the_form_the_model_answers_in():
    from speechgap.report.figures import answer_target

    probes = {"answer": {"speech": {}}, "answer_word": {"speech": {}}}
    words = {"answer_top1": {"text": [0.0, 0.1]}, "answer_word_top1": {"text": [0.2, 0.9]}, "probes": probes}
    letters = {
        "answer_top1": {"text": [0.0, 0.8]},
        "answer_word_top1": {"text": [0.2, 0.3]},
        "probes": probes,
    }
    assert answer_target(words) == "answer_word"
    assert answer_target(letters) == "answer"
    assert answer_target({**words, "probes": {"answer": {}}}) == "answer"  # no word probe: the letter
