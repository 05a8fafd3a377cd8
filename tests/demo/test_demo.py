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


def _word_at(words, start, end):
    """The spoken word under a frame: the one whose span holds the frame's middle ('' between words)."""
    middle = (start + end) / 2
    return next((w for w, s, e in words if s <= middle <= e), "")


def test_the_demo_report_explorer_in_a_real_browser(demo_dir):
    import statistics

    import soundfile as sf
    from playwright.sync_api import sync_playwright

    from speechgap.analysis.run import load_sample_view, view_file
    from speechgap.explore import display_token

    records = {
        (r["id"], r["modality"]): r
        for _, r in read_jsonl(demo_dir / "eval" / "results.jsonl")
        if r["model_role"] == "lslm"
    }
    manifest = {r["id"]: r for _, r in read_jsonl(demo_dir / "pairs" / "manifest.jsonl")}
    page_path = demo_dir / "report.html"
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"]  # fmt: skip
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(demo_dir / "browser-profile"), executable_path="/usr/bin/chromium", headless=True, args=args,
            viewport={"width": 1200, "height": 900},
        )  # fmt: skip
        try:
            page = context.new_page()
            page.set_default_timeout(10_000)
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri(), wait_until="load")
            page.wait_for_function(
                "window.speechgapExplorer && window.speechgapExplorer.timings.open_ms !== null"
            )
            rows = page.eval_on_selector_all("#sgx-table tr.sgx-row", "rows => rows.map(r => r.dataset.id)")
            assert len(rows) == 16 == len(set(rows))
            # a filter narrows the table: the samples right from text and wrong from speech
            page.select_option("#sgx-cell", "only_text_right")
            shown = page.eval_on_selector_all(
                "#sgx-table tr.sgx-row", "rows => rows.filter(r => !r.hidden).map(r => r.dataset.id)"
            )
            expected = [
                sid
                for sid in rows
                if records[(sid, "text")]["correct"] and not records[(sid, "speech")]["correct"]
            ]
            assert shown == expected and 0 < len(shown) < 16
            page.select_option("#sgx-cell", "")
            draws = []
            for index, sample_id in enumerate(rows[:3]):
                page.locator(f"#sgx-table tr.sgx-row[data-index='{index}']").click()
                page.wait_for_function(f"document.getElementById('sgx-view').dataset.index === '{index}'")
                draws.append(page.evaluate("window.speechgapExplorer.timings.last_draw_ms"))
                speech = records[(sample_id, "speech")]
                assert page.text_content("#sgx-question") == speech["reference"]["text"]
                assert page.text_content("#sgx-answer-speech .sgx-response") == speech["response"]
                assert (
                    page.text_content("#sgx-answer-text .sgx-response")
                    == records[(sample_id, "text")]["response"]
                )
                # the audio element plays the clip: its duration is the WAV's
                info = sf.info(demo_dir / "pairs" / manifest[sample_id]["audio"])
                page.wait_for_function("document.getElementById('sgx-audio').readyState >= 1")
                assert (
                    abs(page.evaluate("document.getElementById('sgx-audio').duration") - info.duration) < 0.05
                )
                # the matrix of the chosen layer has the view's shape; hovering a cell names its word and token
                view = load_sample_view(view_file(demo_dir / "analysis", sample_id))
                canvas = page.locator("#sgx-matrix")
                assert int(canvas.get_attribute("data-frames")) == view.sim.shape[1]
                assert int(canvas.get_attribute("data-tokens")) == view.sim.shape[2]
                layer_index = int(canvas.get_attribute("data-layer-index"))
                assert int(canvas.get_attribute("data-layer")) == view.layers[layer_index]
                canvas.scroll_into_view_if_needed()
                geometry = {
                    k: float(canvas.get_attribute(f"data-{k}"))
                    for k in ("plot-left", "plot-top", "cell-width", "cell-height")
                }
                frame, token = view.sim.shape[1] // 2, view.sim.shape[2] // 3
                box = canvas.bounding_box()
                page.mouse.move(box["x"] + geometry["plot-left"] + (frame + 0.5) * geometry["cell-width"],
                                box["y"] + geometry["plot-top"] + (token + 0.5) * geometry["cell-height"])  # fmt: skip
                page.wait_for_function(
                    f"() => {{ const t = document.getElementById('sgx-tooltip'); return !t.hidden && "
                    f"t.dataset.frame === '{frame}' && t.dataset.token === '{token}'; }}"
                )
                start, end = view.frame_times[frame]
                assert page.text_content("#sgx-tooltip .sgx-tip-word") == _word_at(
                    view.word_times, start, end
                )
                assert page.text_content("#sgx-tooltip .sgx-tip-token") == display_token(view.tokens[token])
                shown_sim = float(page.get_attribute("#sgx-tooltip", "data-sim"))
                bound = (view.sim.max() - view.sim.min()) / 510 + 2e-3  # 8-bit steps, float16 on disk
                assert abs(shown_sim - view.sim[layer_index, frame, token]) <= bound
                page.mouse.move(0, 0)
            timings = page.evaluate("window.speechgapExplorer.timings")
        finally:
            context.close()
    assert all(url == page_path.as_uri() or url.startswith("data:") for url in requests)
    size = page_path.stat().st_size / 1e6
    print(
        f"demo explorer (16 samples): open {timings['open_ms']:.0f} ms, draw median {statistics.median(draws):.1f} ms, {size:.2f} MB"
    )


def test_speechgap_report_builds_the_explorer_for_an_analyze_or_eval_folder(demo_dir, tmp_path, capsys):
    assert main(["report", str(demo_dir / "analysis"), "--out", str(tmp_path / "a.html")]) == 0
    page = (tmp_path / "a.html").read_text()
    assert page.count("<tr class=sgx-row ") == 16
    # the analysis names its eval folder: the answers are there
    record = next(r for _, r in read_jsonl(demo_dir / "eval" / "results.jsonl") if r["modality"] == "speech")
    assert "only_text_right" in page or "both_right" in page
    assert json.loads((demo_dir / "analysis" / "analysis.json").read_text())["eval_dir"] == str(
        (demo_dir / "eval").resolve()
    )
    assert main(["report", str(demo_dir / "eval"), "--out", str(tmp_path / "e.html"), "--no-audio"]) == 0
    page = (tmp_path / "e.html").read_text()
    assert page.count("<tr class=sgx-row ") == 16 and record["id"] in page
    assert main(["report", str(tmp_path)]) == 2
    assert "holds no run to report" in capsys.readouterr().err


def test_the_explorer_data_of_the_demo_run_and_its_audio_budget(demo_dir):
    import soundfile as sf

    from speechgap.explore import display_token, explorer_data, find_sources

    sources = find_sources(demo_dir)
    assert sources.eval_dir == demo_dir / "eval" and sources.analysis_dir == demo_dir / "analysis"
    assert set(sources.fixes) >= {"angle", "length"} and len(sources.merges) == 1
    data = explorer_data(sources)
    assert len(data.samples) == 16 and all(s.audio is not None and s.sim is not None for s in data.samples)
    first = data.samples[0]
    assert abs(first.duration_s - sf.info(demo_dir / "pairs" / "audio" / f"{first.id}.wav").duration) < 1e-6
    # the merging fix's groups cover each fix sample's speech frames in order, without overlap
    (label,) = sources.merges
    merged = [s for s in data.samples if label in s.merged]
    assert merged
    for sample in merged:
        groups = sample.merged[label]
        assert all(a <= b for a, b in groups) and all(
            b < c for (_, b), (c, _) in zip(groups[:-1], groups[1:], strict=True)
        )
        assert groups[-1][1] < sample.sim.shape[1]
    # a small audio budget: the first clips are kept, the rest left out, and the page says so
    budget = sum(len(s.audio) for s in data.samples[:3])
    thin = explorer_data(sources, max_audio_bytes=budget)
    assert [s.audio is not None for s in thin.samples] == [True] * 3 + [False] * 13
    assert any("left out" in note for note in thin.notes)
    assert (
        display_token("Ġcolour") == " colour"
        and display_token("Ċ") == "⏎"
        and display_token("▁the") == " the"
    )
