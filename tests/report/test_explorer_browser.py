"""The sample explorer in a real browser (Debian's Chromium through Playwright), on ~258 synthetic samples
shaped like the demo's: the table, its filters and sorting, a sample's view, audio, matrix, tooltip, paths,
playhead, and that the page asks the network for nothing.

Speed is printed, not asserted: ``explorer: open .. ms, draw median .. ms, .. MB``.
"""

from __future__ import annotations

import statistics

import numpy as np
import pytest
from playwright.sync_api import sync_playwright

from speechgap.report.explorer import (
    ExplorerAnswer,
    ExplorerData,
    ExplorerSample,
    encode_audio,
    explorer_section,
)
from speechgap.report.html import build_page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
N_SAMPLES = 258
LAYERS = [0, 2, 4, 6, 8]
RATE = 16_000
VOCABULARY = "which planet is closest to the sun mercury venus mars seven plus five equals twelve".split()
HOSTILE = "</script><img src=x onerror=\"document.title='owned'\"> & <b>bold</b>"
TIMEOUT_MS = 10_000


def _diagonal_path(n_frames: int, n_tokens: int) -> np.ndarray:
    """A monotonic (K, 2) path of (frame, token) pairs from (0, 0) to (F - 1, T - 1)."""
    k = np.linspace(0.0, 1.0, max(n_frames, n_tokens))
    return np.stack([np.rint(k * (n_frames - 1)), np.rint(k * (n_tokens - 1))], axis=1).astype(np.int64)


def _answer(rng: np.random.Generator, gold: str) -> ExplorerAnswer:
    parsed = bool(rng.random() > 0.1)
    extracted = str(rng.choice(["A", "B", "C"])) if parsed else None
    correct = None if rng.random() < 0.05 else (parsed and extracted == gold)
    return ExplorerAnswer(
        response=f"The answer is {extracted}.", extracted=extracted, correct=correct, parsed=parsed
    )


def synthetic_data() -> ExplorerData:
    """258 samples: ~40 frames × ~22 tokens × 5 layers, ~4 s Vorbis tones, two subsets, a merging fix."""
    rng = np.random.default_rng(17)
    samples = []
    for index in range(N_SAMPLES):
        n_frames, n_tokens = int(rng.integers(36, 45)), int(rng.integers(18, 27))
        duration = round(float(rng.uniform(3.5, 4.5)), 3)
        edges = np.linspace(0.0, duration, n_frames + 1)
        n_words = int(rng.integers(7, 12))
        bounds = np.linspace(0.1, duration - 0.1, n_words + 1)
        words = [
            (str(rng.choice(VOCABULARY)), round(float(a), 3), round(float(b) - 0.05, 3))
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]
        t = np.arange(int(round(duration * RATE))) / RATE
        audio, mime = encode_audio(0.3 * np.sin(2 * np.pi * (200 + index) * t), RATE)
        sim = rng.uniform(-0.2, 0.8, size=(len(LAYERS), n_frames, n_tokens))
        gold = str(rng.choice(["A", "B", "C"]))
        samples.append(
            ExplorerSample(
                id=f"s{index:03d}",
                subset="arith" if index % 3 == 0 else "facts",
                speaker=f"en-us+f{index % 4}",
                question=f"Question {index}: which planet is closest?\nA. Mars\nB. Mercury\nC. Venus",
                gold=gold,
                text=_answer(rng, gold),
                speech=_answer(rng, gold),
                aps=None if index % 50 == 7 else float(rng.uniform(0.1, 0.6)),
                pooled_cosine=float(rng.uniform(0.0, 0.9)),
                duration_s=duration,
                audio=audio,
                audio_mime=mime,
                words=words,
                tokens=[f"tok{index}_{j}" for j in range(n_tokens)],
                frame_times=np.stack([edges[:-1], edges[1:]], axis=1),
                layers=list(LAYERS),
                sim=sim,
                argmax=sim.argmax(axis=1),
                dtw=[_diagonal_path(n_frames, n_tokens) for _ in LAYERS],
                fixes={"dap": _answer(rng, gold)},
                merged={"dap": [list(range(f, min(f + 3, n_frames))) for f in range(0, n_frames, 3)]},
            )
        )
    samples[0].question = HOSTILE
    samples[0].text.response = HOSTILE
    samples[0].tokens[0] = HOSTILE
    # one sample without audio or matrices: the view says so instead of failing
    samples[1] = ExplorerSample(
        id="s001", subset="facts", speaker=None, question="What is 2 + 2?", gold="4",
        text=ExplorerAnswer("4", "4", True, True), speech=None, aps=None, pooled_cosine=None, duration_s=None,
    )  # fmt: skip
    return ExplorerData(title="Synthetic samples", samples=samples, notes=["Answers scored by letter."])


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    """The page open in a headless Chromium: (page, data, requests, page size in bytes)."""
    data = synthetic_data()
    folder = tmp_path_factory.mktemp("explorer")
    page_html = build_page(
        title="speechgap report",
        subtitle="explorer test",
        reading=["A synthetic page."],
        sections=[("Gap", "<p>numbers</p>"), ("Samples", explorer_section(data))],
        meta={"test": "explorer"},
    )
    path = folder / "report.html"
    path.write_text(page_html, encoding="utf-8")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(folder / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1200, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(path.as_uri(), wait_until="load", timeout=TIMEOUT_MS)
            page.wait_for_function(
                "window.speechgapExplorer && window.speechgapExplorer.timings.open_ms !== null"
            )
            yield page, data, requests, errors, path
        finally:
            context.close()


def _visible_indices(page) -> list[int]:
    return page.eval_on_selector_all(
        "#sgx-table tbody tr.sgx-row", "rows => rows.filter(r => !r.hidden).map(r => Number(r.dataset.index))"
    )


def _open(page, index: int) -> None:
    page.locator(f"#sgx-table tr.sgx-row[data-index='{index}']").click()
    page.wait_for_function(f"document.getElementById('sgx-view').dataset.index === '{index}'")


def test_table_has_one_row_per_sample_and_filters_narrow_it(explorer):
    page, data, _, errors, _ = explorer
    assert len(_visible_indices(page)) == N_SAMPLES
    assert page.text_content("#sgx-count") == f"{N_SAMPLES} of {N_SAMPLES} samples"

    page.select_option("#sgx-subset", "arith")
    arith = [k for k, s in enumerate(data.samples) if s.subset == "arith"]
    assert _visible_indices(page) == arith
    assert page.text_content("#sgx-count") == f"{len(arith)} of {N_SAMPLES} samples"

    page.select_option("#sgx-cell", "both_wrong")
    both_wrong = [
        k for k in arith if data.samples[k].text.correct is False and data.samples[k].speech.correct is False
    ]
    assert 0 < len(both_wrong) < len(arith)
    assert _visible_indices(page) == both_wrong
    assert page.text_content("#sgx-count") == f"{len(both_wrong)} of {N_SAMPLES} samples"

    page.select_option("#sgx-subset", "")
    page.select_option("#sgx-cell", "")
    page.fill("#sgx-search", "question 123:")  # the question's text, not the id
    assert _visible_indices(page) == [123]
    page.fill("#sgx-search", "S04")  # ids, case-insensitively
    assert _visible_indices(page) == list(range(40, 50))
    assert page.text_content("#sgx-count") == f"10 of {N_SAMPLES} samples"
    page.fill("#sgx-search", "")
    assert len(_visible_indices(page)) == N_SAMPLES
    assert errors == []


def test_headers_sort_numbers_numerically_with_missing_values_last(explorer):
    page, data, _, _, _ = explorer
    page.click("#sgx-table th[data-key=aps]")
    with_aps = sorted((s.aps, k) for k, s in enumerate(data.samples) if s.aps is not None)
    without = [k for k, s in enumerate(data.samples) if s.aps is None]
    assert _visible_indices(page) == [k for _, k in with_aps] + without
    page.click("#sgx-table th[data-key=aps]")
    assert page.get_attribute("#sgx-table th[data-key=aps]", "aria-sort") == "descending"
    assert _visible_indices(page) == [k for _, k in reversed(with_aps)] + without
    page.click("#sgx-table th[data-key=id]")
    assert _visible_indices(page) == list(range(N_SAMPLES))


def test_a_row_opens_its_sample_with_question_answers_fixes_and_audio(explorer):
    page, data, _, _, _ = explorer
    index = 42
    sample = data.samples[index]
    _open(page, index)
    assert page.text_content("#sgx-question") == sample.question
    assert page.text_content("#sgx-answer-text .sgx-response") == sample.text.response
    assert page.text_content("#sgx-answer-speech .sgx-response") == sample.speech.response
    assert page.text_content("#sgx-answer-speech .sgx-extracted") == (sample.speech.extracted or "–")
    assert page.text_content("#sgx-fixes tr[data-fix=dap] .sgx-extracted") == (
        sample.fixes["dap"].extracted or "–"
    )
    assert page.text_content("#sgx-gold") == sample.gold
    assert page.get_attribute(f"#sgx-table tr[data-index='{index}']", "class") == "sgx-row sgx-selected"

    page.wait_for_function(
        "() => { const a = document.getElementById('sgx-audio'); return a.readyState >= 1 && isFinite(a.duration); }"
    )
    duration = page.eval_on_selector("#sgx-audio", "a => a.duration")
    assert abs(duration - sample.duration_s) < 0.05
    assert page.eval_on_selector("#sgx-audio", "a => a.src.startsWith('data:audio/ogg;base64,')")


def test_matrix_reports_its_layer_and_shape_and_the_slider_changes_layer(explorer):
    page, data, _, _, _ = explorer
    index = 42
    sample = data.samples[index]
    _open(page, index)
    page.eval_on_selector("#sgx-layer", "s => { s.value = '0'; s.dispatchEvent(new Event('input')); }")
    canvas = page.locator("#sgx-matrix")
    assert canvas.get_attribute("data-layer") == str(LAYERS[0])
    assert canvas.get_attribute("data-frames") == str(sample.sim.shape[1])
    assert canvas.get_attribute("data-tokens") == str(sample.sim.shape[2])
    page.focus("#sgx-layer")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert canvas.get_attribute("data-layer") == str(LAYERS[2])
    assert canvas.get_attribute("data-layer-index") == "2"
    assert page.text_content("#sgx-layer-label") == f"layer {LAYERS[2]} (3 of {len(LAYERS)})"
    # the next sample opens on the layer chosen here
    _open(page, index + 1)
    assert canvas.get_attribute("data-layer") == str(LAYERS[2])
    assert canvas.get_attribute("data-frames") == str(data.samples[index + 1].sim.shape[1])


def _expected_word(sample: ExplorerSample, frame: int) -> str:
    start, end = sample.frame_times[frame]
    overlaps = [min(end, e) - max(start, s) for _, s, e in sample.words]
    best = int(np.argmax(overlaps))
    return sample.words[best][0] if overlaps[best] > 0 else "(none)"


def test_hover_shows_the_frame_word_token_and_similarity(explorer):
    page, data, _, _, _ = explorer
    index = 42
    sample = data.samples[index]
    _open(page, index)
    page.eval_on_selector("#sgx-layer", "s => { s.value = '3'; s.dispatchEvent(new Event('input')); }")
    canvas = page.locator("#sgx-matrix")
    canvas.scroll_into_view_if_needed()
    geometry = {
        key: float(canvas.get_attribute(f"data-{key}"))
        for key in ("plot-left", "plot-top", "cell-width", "cell-height")
    }
    lo, hi = float(sample.sim.min()), float(sample.sim.max())
    for frame, token in [(5, 3), (20, 11), (sample.sim.shape[1] - 1, sample.sim.shape[2] - 1)]:
        box = canvas.bounding_box()
        page.mouse.move(
            box["x"] + geometry["plot-left"] + (frame + 0.5) * geometry["cell-width"],
            box["y"] + geometry["plot-top"] + (token + 0.5) * geometry["cell-height"],
        )
        page.wait_for_function(
            f"() => {{ const t = document.getElementById('sgx-tooltip'); return !t.hidden && t.dataset.frame === '{frame}'"
            f" && t.dataset.token === '{token}'; }}"
        )
        shown = float(page.get_attribute("#sgx-tooltip", "data-sim"))
        assert abs(shown - sample.sim[3, frame, token]) <= (hi - lo) / 510 + 1e-12
        assert page.text_content("#sgx-tooltip .sgx-tip-sim") == f"{shown:.3f}"
        assert page.text_content("#sgx-tooltip .sgx-tip-token") == sample.tokens[token]
        assert page.text_content("#sgx-tooltip .sgx-tip-word") == _expected_word(sample, frame)
        start, end = sample.frame_times[frame]
        assert page.text_content("#sgx-tooltip .sgx-tip-time") == f"frame {frame}: {start:.2f}–{end:.2f} s"
    page.mouse.move(0, 0)
    assert page.is_hidden("#sgx-tooltip")


def test_toggling_paths_redraws_the_matrix(explorer):
    page, _, _, _, _ = explorer
    _open(page, 42)
    canvas = page.locator("#sgx-matrix")
    image = lambda: page.eval_on_selector("#sgx-matrix", "c => c.toDataURL()")  # noqa: E731
    both, draws = image(), int(canvas.get_attribute("data-draws"))
    assert canvas.get_attribute("data-overlays") == "dtw argmax"
    page.uncheck("#sgx-show-argmax")
    assert canvas.get_attribute("data-overlays") == "dtw"
    assert int(canvas.get_attribute("data-draws")) == draws + 1
    only_dtw = image()
    assert only_dtw != both
    page.uncheck("#sgx-show-dtw")
    assert canvas.get_attribute("data-overlays") == ""
    assert image() not in (both, only_dtw)
    page.check("#sgx-show-argmax")
    page.check("#sgx-show-dtw")
    assert image() == both


def test_playhead_and_word_strip_follow_the_audio(explorer):
    page, data, _, _, _ = explorer
    index = 42
    sample = data.samples[index]
    _open(page, index)
    page.wait_for_function("document.getElementById('sgx-audio').readyState >= 1")
    assert page.eval_on_selector_all("#sgx-words .sgx-word", "s => s.map(w => w.textContent)") == [
        w for w, _, _ in sample.words
    ]
    word, start, end = sample.words[2]
    middle = (start + end) / 2
    page.eval_on_selector("#sgx-audio", f"a => {{ a.currentTime = {middle}; }}")
    page.wait_for_function("document.querySelectorAll('#sgx-words .sgx-current').length === 1")
    current = page.eval_on_selector(
        "#sgx-words .sgx-current", "w => [w.textContent, Number(w.dataset.start)]"
    )
    assert current == [word, start]
    frame = int(np.searchsorted(sample.frame_times[:, 0], middle, side="right") - 1)
    page.wait_for_function(f"document.getElementById('sgx-playhead').dataset.frame === '{frame}'")
    assert page.is_visible("#sgx-playhead")


def test_data_is_text_never_markup_and_missing_parts_are_said(explorer):
    page, data, _, _, _ = explorer
    _open(page, 0)
    assert page.text_content("#sgx-question") == HOSTILE
    assert page.text_content("#sgx-answer-text .sgx-response") == HOSTILE
    assert page.eval_on_selector_all("img", "images => images.length") == 0
    assert page.title() == "speechgap report"
    assert page.text_content("#sgx-table tr[data-index='0'] td") == data.samples[0].id
    _open(page, 1)
    assert page.is_visible("#sgx-no-matrix") and page.is_hidden("#sgx-matrix")
    assert page.is_visible("#sgx-no-audio") and page.is_hidden("#sgx-audio")
    assert page.text_content("#sgx-answer-speech .sgx-response") == "no run"


def test_no_request_leaves_the_page_and_speed_is_reported(explorer):
    page, _, requests, errors, path = explorer
    draws = []
    for index in (10, 60, 110, 160, 210, 250):
        _open(page, index)
        draws.append(page.evaluate("window.speechgapExplorer.timings.last_draw_ms"))
    timings = page.evaluate("window.speechgapExplorer.timings")
    assert all(value > 0 for value in draws) and timings["open_ms"] > 0
    assert requests and requests[0] == path.as_uri()
    assert all(url == path.as_uri() or url.startswith("data:") for url in requests), requests
    assert errors == []
    print(
        f"\nexplorer: open {timings['open_ms']:.0f} ms (page ready {timings['page_ms']:.0f} ms after navigation), "
        f"draw median {statistics.median(draws):.1f} ms (max {max(draws):.1f}), "
        f"{path.stat().st_size / 1e6:.2f} MB"
    )
