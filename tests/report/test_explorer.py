"""The sample explorer's HTML and data (:mod:`speechgap.report.explorer`), without a browser: the quantized
matrices read back within their bound, layers thinned with a note, hostile text escaped, one row per sample,
audio that decodes to its duration."""

from __future__ import annotations

import base64
import html
import io
import json
import re
from importlib import resources

import numpy as np
import pytest
import soundfile

from speechgap.errors import ConfigError
from speechgap.report import explorer
from speechgap.report.explorer import (
    ExplorerAnswer,
    ExplorerData,
    ExplorerSample,
    encode_audio,
    explorer_section,
)

HOSTILE = "</script><img src=x onerror=alert(1)><!-- & \u2028"


def _sample(
    index: int, rng: np.random.Generator, *, n_layers: int = 4, n_frames: int = 12, n_tokens: int = 7
) -> ExplorerSample:
    sim = rng.normal(0.2, 0.3, size=(n_layers, n_frames, n_tokens))
    return ExplorerSample(
        id=f"q{index}",
        subset="facts" if index % 2 else "arith",
        speaker="en-us",
        question=f"Question {index}?\nA. yes\nB. no",
        gold="A",
        text=ExplorerAnswer("A", "A", True, True),
        speech=ExplorerAnswer("B", "B", False, True),
        aps=0.3,
        pooled_cosine=0.5,
        duration_s=1.2,
        words=[("question", 0.0, 0.5), ("yes", 0.6, 1.1)],
        tokens=[f"t{j}" for j in range(n_tokens)],
        frame_times=np.stack([np.arange(n_frames) * 0.1, np.arange(1, n_frames + 1) * 0.1], axis=1),
        layers=[2 * k for k in range(n_layers)],
        sim=sim,
        argmax=sim.argmax(axis=1),
        dtw=[
            np.array([[0, 0], [n_frames // 2, n_tokens // 2], [n_frames - 1, n_tokens - 1]])
            for _ in range(n_layers)
        ],
        merged={"dap": [[0, 1], [2], [3, 4, 5]]},
    )


def _payload(fragment: str) -> dict:
    match = re.search(r'<script type="application/json" id=sgx-data>(.*?)</script>', fragment, re.S)
    assert match is not None
    return json.loads(match.group(1))


def _stored_sim(record: dict) -> np.ndarray:
    q = np.frombuffer(base64.b64decode(record["sim_q"]), dtype=np.uint8).reshape(record["shape"])
    return record["sim_lo"] + (record["sim_hi"] - record["sim_lo"]) * q.astype(np.float64) / 255


def test_matrices_read_back_within_the_quantization_bound():
    rng = np.random.default_rng(0)
    samples = [_sample(k, rng) for k in range(3)]
    samples[2].sim = np.full_like(samples[2].sim, 0.25)  # a constant matrix reads back exactly
    records = _payload(explorer_section(ExplorerData("t", samples)))["samples"]
    for sample, record in zip(samples, records, strict=True):
        lo, hi = sample.sim.min(), sample.sim.max()
        assert (record["sim_lo"], record["sim_hi"]) == (lo, hi)
        stored = _stored_sim(record)
        assert stored.shape == sample.sim.shape
        assert np.max(np.abs(stored - sample.sim)) <= (hi - lo) / 510 + 1e-12
        assert record["layers"] == sample.layers
        assert record["argmax"] == sample.argmax.tolist()
        assert record["dtw"][1] == sample.dtw[1].reshape(-1).tolist()
    # the bound is tight enough to be worth stating: 8-bit steps, not coarser
    errors = np.abs(_stored_sim(records[0]) - samples[0].sim)
    spread = samples[0].sim.max() - samples[0].sim.min()
    assert errors.max() > (spread / 510) / 4


def test_quantize_spends_all_256_steps_between_min_and_max():
    values = np.linspace(-0.3, 0.9, 1000).reshape(10, 10, 10)
    q, lo, hi = explorer.quantize(values)
    assert (q.min(), q.max(), lo, hi) == (0, 255, -0.3, 0.9)
    assert len(np.unique(q)) == 256


def test_layers_are_thinned_with_the_first_and_last_kept_and_a_note():
    rng = np.random.default_rng(1)
    samples = [_sample(k, rng, n_layers=9, n_frames=10, n_tokens=10) for k in range(3)]  # 2700 bytes in all
    fragment = explorer_section(ExplorerData("t", samples), max_matrix_bytes=1000)
    records = _payload(fragment)["samples"]
    kept = [0, 4, 8]  # every 2nd keeps 5 layers (1500 B), every 3rd 4 (1200 B), every 4th 3 (900 B)
    for sample, record in zip(samples, records, strict=True):
        assert record["layers"] == [sample.layers[k] for k in kept] == [0, 8, 16]
        assert record["shape"] == [3, 10, 10]
        assert (
            np.max(np.abs(_stored_sim(record) - sample.sim[kept]))
            <= (sample.sim[kept].max() - sample.sim[kept].min()) / 510 + 1e-12
        )
        assert record["argmax"] == sample.argmax[kept].tolist()
        assert record["dtw"] == [sample.dtw[k].reshape(-1).tolist() for k in kept]
    notes = re.search(r"<ul id=sgx-notes>(.*?)</ul>", fragment, re.S).group(1)
    assert "every 4th layer is kept, always the first and the last" in notes
    assert "layers 0, 8, 16 of 0, 2, 4, 6, 8, 10, 12, 14, 16" in notes
    assert "even so" not in notes

    # an odd step still ends on the last layer
    fragment = explorer_section(ExplorerData("t", samples[:1]), max_matrix_bytes=450)
    assert _payload(fragment)["samples"][0]["layers"] == [0, 6, 12, 16]

    # when even the first and last do not fit, both are kept and the note says the budget is exceeded
    fragment = explorer_section(ExplorerData("t", samples), max_matrix_bytes=100)
    assert all(r["layers"] == [0, 16] for r in _payload(fragment)["samples"])
    assert "even so they exceed" in fragment

    # under the budget nothing is dropped and nothing is said about layers
    fragment = explorer_section(ExplorerData("t", samples), max_matrix_bytes=2700)
    assert all(r["shape"] == [9, 10, 10] for r in _payload(fragment)["samples"])
    assert "layer is kept" not in fragment


def test_hostile_text_is_escaped_in_the_table_and_the_data():
    rng = np.random.default_rng(2)
    sample = _sample(0, rng)
    sample.id = sample.subset = sample.speaker = sample.gold = HOSTILE
    sample.question = "Which?\n" + HOSTILE
    sample.text = ExplorerAnswer(HOSTILE, HOSTILE, True, True)
    sample.tokens[3] = HOSTILE
    sample.words[0] = (HOSTILE, 0.0, 0.5)
    sample.fixes = {HOSTILE: ExplorerAnswer(HOSTILE, HOSTILE, False, True)}
    sample.merged = {HOSTILE: [[0, 1]]}
    fragment = explorer_section(ExplorerData(HOSTILE, [sample], notes=[HOSTILE]))

    # only the explorer's own two scripts end; no tag from the data exists
    assert fragment.lower().count("</script") == 2
    assert "<img" not in fragment and "<!--" not in fragment
    assert "\u2028" not in fragment.split("id=sgx-data>")[1]
    # ... and the text survives: shown escaped in the HTML, intact in the data
    assert fragment.count(html.escape(HOSTILE)) >= 5  # caption, note, id cell, data-id, subset ...
    record = _payload(fragment)["samples"][0]
    assert record["question"] == "Which?\n" + HOSTILE
    assert record["text"]["response"] == HOSTILE
    assert record["tokens"][3] == HOSTILE
    assert record["words"][0][0] == HOSTILE
    assert list(record["fixes"]) == [HOSTILE] and list(record["merged"]) == [HOSTILE]


def test_the_javascript_writes_data_as_text_never_as_markup():
    folder = resources.files("speechgap.report") / "explorer"
    scripts = sorted(p.name for p in folder.iterdir() if p.name.endswith(".js"))
    assert scripts == sorted(explorer._SCRIPTS)  # every file is inlined
    for name in scripts:
        source = (folder / name).read_text(encoding="utf-8")
        for sink in (
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ):
            assert sink not in source, f"{name} uses {sink}"
    fragment = explorer_section(ExplorerData("t", [_sample(0, np.random.default_rng(3))]))
    assert all(f"// ---- {name}" in fragment for name in explorer._SCRIPTS)


def test_one_table_row_per_sample_with_its_cell():
    rng = np.random.default_rng(4)
    samples = [_sample(k, rng) for k in range(6)]
    verdicts = [(True, True), (True, False), (False, True), (False, False), (None, True), (True, None)]
    for sample, (text, speech) in zip(samples, verdicts, strict=True):
        sample.text = ExplorerAnswer("x", "x", text, True)
        sample.speech = ExplorerAnswer("y", "y", speech, speech is not None)
    samples[5].speech = None  # a missing run is not scored either
    samples[3].aps = None
    fragment = explorer_section(ExplorerData("t", samples))
    rows = re.findall(
        r"<tr class=sgx-row [^>]*data-index=(\d+) data-id=\"([^\"]*)\"[^>]*data-cell=(\w+)>", fragment
    )
    assert [(int(i), sid) for i, sid, _ in rows] == [(k, s.id) for k, s in enumerate(samples)]
    assert [cell for _, _, cell in rows] == [
        "both_right",
        "only_text_right",
        "only_speech_right",
        "both_wrong",
        "not_scored",
        "not_scored",
    ]
    body = fragment.split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("<tr") == len(samples)
    assert "right from text, wrong from speech" in body and "wrong from text, right from speech" in body
    # numbers sort numerically from their raw value; a missing one is empty and shown as a dash
    assert '<td class=num data-sort="0.3">0.300</td>' in body
    assert '<td class=num data-sort="">–</td>' in body
    assert f"{len(samples)} of {len(samples)} samples" in fragment


def test_mismatched_arrays_are_refused_naming_the_field():
    rng = np.random.default_rng(5)
    sample = _sample(0, rng)
    sample.tokens = sample.tokens[:-1]
    with pytest.raises(ConfigError, match=r"data\.samples\[0\]\.tokens"):
        explorer_section(ExplorerData("t", [sample]))
    sample = _sample(0, rng)
    sample.dtw[2] = np.array([[0, 0], [99, 1]])
    with pytest.raises(ConfigError, match=r"data\.samples\[0\]\.dtw\[2\]"):
        explorer_section(ExplorerData("t", [sample]))
    sample = _sample(0, rng)
    sample.audio_mime = 'audio/ogg"><script>'
    with pytest.raises(ConfigError, match="audio_mime"):
        explorer_section(ExplorerData("t", [sample]))


def test_a_sample_without_matrices_or_audio_still_has_its_row():
    sample = ExplorerSample("only-text", None, None, "Q?", None, ExplorerAnswer("a", None, None, False), None,
                            None, None, None)  # fmt: skip
    fragment = explorer_section(ExplorerData("t", [sample]))
    record = _payload(fragment)["samples"][0]
    assert record["shape"] is None and record["audio"] is None and record["cell"] == "not_scored"
    assert 'data-id="only-text"' in fragment
    assert "8-bit steps" not in fragment  # no matrix, no quantization note


@pytest.mark.parametrize("rate", [16_000, 22_050])
def test_audio_decodes_back_to_its_duration(rate):
    duration = 2.5
    t = np.arange(int(duration * rate)) / rate
    rng = np.random.default_rng(6)
    clip = 0.3 * np.sin(2 * np.pi * 300 * t) + 0.01 * rng.standard_normal(t.size)
    encoded, mime = encode_audio(clip, rate)
    assert mime == "audio/ogg" and encoded[:4] == b"OggS"
    decoded, decoded_rate = soundfile.read(io.BytesIO(encoded))
    assert decoded_rate == min(rate, 16_000)
    assert abs(len(decoded) / decoded_rate - duration) < 0.01
    # the tone is still there
    spectrum = np.abs(np.fft.rfft(decoded))
    assert abs(np.argmax(spectrum) * decoded_rate / len(decoded) - 300) < 2
    # compact: ~4 s clips must stay a few MB for the demo's 258
    assert len(encoded) < 16_000


def test_audio_refuses_what_it_cannot_encode():
    with pytest.raises(ConfigError, match="'samples'"):
        encode_audio(np.zeros((100, 2)), 16_000)
    with pytest.raises(ConfigError, match="'samples'"):
        encode_audio(np.array([0.0, np.nan]), 16_000)
    with pytest.raises(ConfigError, match="'sample_rate'"):
        encode_audio(np.zeros(100), 0)
