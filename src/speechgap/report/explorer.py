"""The sample explorer: every analysed sample in a table, and one sample's question, answers, audio and
speech × text similarity matrices, inside the self-contained report page (no network, no server).

:func:`explorer_section` returns one HTML fragment for :func:`speechgap.report.html.build_page`'s
``sections``: the table rendered here (it reads without JavaScript), the samples as JSON in a
``<script type="application/json">``, and the plain JS and CSS of ``report/explorer/`` inlined. It formats
what it is given and computes no measure itself. Text from the data is escaped here with :func:`html.escape`
and written by the JS only through ``textContent`` (and canvas ``fillText``), never as markup.

Compact data: each sample's similarities are quantized to uint8 between the sample's own minimum ``lo`` and
maximum ``hi`` (a shown value is within ``(hi - lo) / 510`` of the computed one) and stored base64, as is the
audio (:func:`encode_audio`: Ogg Vorbis). When all matrices together exceed ``max_matrix_bytes``, every k-th
layer is kept (always the first and the last) and a note on the page says so.

Stable hooks (ids, classes, attributes) for tests and for anyone scripting the page; one explorer per page:

- ``#sgx``: the root ``<div>`` (``data-samples``: how many). ``#sgx-notes``: the notes (``li``).
- ``#sgx-controls`` (hidden until the JS runs): ``#sgx-subset`` and ``#sgx-cell`` (``<select>``, value
  ``""`` = all; cell values ``both_right``, ``only_text_right``, ``only_speech_right``, ``both_wrong``,
  ``not_scored``), ``#sgx-search`` (text over id and question), ``#sgx-count`` ("N of M samples").
- ``#sgx-table``: header cells ``th[data-key]`` (click sorts; ``aria-sort``; ``data-type="number"`` sorts
  numerically), rows ``tr.sgx-row`` with ``data-index`` (position in the data), ``data-id``,
  ``data-subset``, ``data-cell``; a filtered-out row has the ``hidden`` attribute; the open one
  ``.sgx-selected``. Each ``td`` carries ``data-sort`` (the raw value, empty for none).
- ``#sgx-view`` (``data-index``: the open sample): ``#sgx-title``, ``#sgx-question``, ``#sgx-gold``,
  ``#sgx-answer-text`` / ``#sgx-answer-speech`` (``.sgx-response``, ``.sgx-extracted``, ``.sgx-correct``,
  ``.sgx-parsed``), ``#sgx-fixes`` (``tr[data-fix]`` with ``.sgx-extracted``, ``.sgx-correct``),
  ``#sgx-audio`` (``<audio controls>``, a ``data:`` URI), ``#sgx-words`` (``span.sgx-word`` with
  ``data-start`` / ``data-end`` seconds; the word being spoken has ``.sgx-current``).
- ``#sgx-matrix``: the canvas, frames left to right, tokens top to bottom; ``data-layer`` (the model
  layer), ``data-layer-index`` (its position in the sample's layers), ``data-frames``, ``data-tokens``,
  ``data-overlays`` (``"argmax dtw"``, as shown), ``data-draws`` (a counter), and the plot's geometry in
  CSS pixels: ``data-plot-left``, ``data-plot-top``, ``data-cell-width``, ``data-cell-height``.
  ``#sgx-layer`` (``<input type=range>`` over the layer positions), ``#sgx-layer-label``,
  ``#sgx-show-argmax``, ``#sgx-show-dtw`` (checkboxes), ``#sgx-playhead`` (``data-frame``: the frame being
  spoken), ``#sgx-tooltip`` (``data-frame``, ``data-token``, ``data-sim``: the dequantized value;
  ``.sgx-tip-time``, ``.sgx-tip-word``, ``.sgx-tip-token``, ``.sgx-tip-sim``).
- ``window.speechgapExplorer.timings``: ``open_ms`` (script start to table ready), ``page_ms`` (navigation
  start to table ready), ``last_draw_ms`` (row click to matrix drawn), ``draw_ms`` (every draw so far),
  all from ``performance.now()``.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import soundfile
import soxr

from speechgap.errors import ConfigError

# The JS files in the order they are inlined; each is a plain script (no modules) inside one closure.
_SCRIPTS = ("base.js", "table.js", "matrix.js", "player.js", "view.js", "main.js")
_STYLESHEET = "explorer.css"

CELLS = {
    "both_right": "both right",
    "only_text_right": "right from text, wrong from speech",
    "only_speech_right": "wrong from text, right from speech",
    "both_wrong": "both wrong",
    "not_scored": "not scored",
}


@dataclass
class ExplorerAnswer:
    """One run's answer to one sample.

    Attributes:
        response: the raw generated text.
        extracted: the answer the scorer read from it (e.g. ``"B"``).
        correct: None when not scored (e.g. waiting for a judge).
        parsed: whether the scorer could read an answer at all; None when unknown.
    """

    response: str | None
    extracted: str | None
    correct: bool | None
    parsed: bool | None


@dataclass
class ExplorerSample:
    """One sample as the explorer shows it.

    Attributes:
        id, subset, speaker: as in the pairs' manifest.
        question: the question's text (the transcript; may hold newlines and ``"A. ..."`` options).
        gold: the reference answer.
        text, speech: the answers from the typed and the spoken question; None when that run is missing.
        aps: Alignment Path Score (cosine), mean over layers.
        pooled_cosine: cosine of the mean-pooled speech and text spans, mean over layers.
        duration_s: the clip's duration, seconds.
        audio: the clip as an encoded audio file (:func:`encode_audio`), or None.
        audio_mime: its MIME type.
        words: ``(word, start_s, end_s)`` of the spoken words.
        tokens: the transcript's ``T`` tokens as display strings.
        frame_times: ``(F, 2)`` start and end seconds of each speech frame.
        layers: the ``L`` model layers of ``sim``.
        sim: ``(L, F, T)`` cosine similarity, speech frame × text token.
        argmax: ``(L, T)`` for each token its argmax speech frame.
        dtw: per layer a ``(K, 2)`` int array of ``(frame, token)`` pairs.
        fixes: label (e.g. ``"angle"``, ``"dap"``) → the speech answer under that fix.
        merged: label → groups of speech-frame indices merged into one token.
    """

    id: str
    subset: str | None
    speaker: str | None
    question: str
    gold: str | None
    text: ExplorerAnswer | None
    speech: ExplorerAnswer | None
    aps: float | None
    pooled_cosine: float | None
    duration_s: float | None
    audio: bytes | None = None
    audio_mime: str = "audio/ogg"
    words: list[tuple[str, float, float]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    frame_times: np.ndarray | None = None
    layers: list[int] = field(default_factory=list)
    sim: np.ndarray | None = None
    argmax: np.ndarray | None = None
    dtw: list[np.ndarray] | None = None
    fixes: dict[str, ExplorerAnswer] = field(default_factory=dict)
    merged: dict[str, list[list[int]]] = field(default_factory=dict)


@dataclass
class ExplorerData:
    """What :func:`explorer_section` shows: a title, the samples, short notes shown above the table."""

    title: str
    samples: list[ExplorerSample]
    notes: list[str] = field(default_factory=list)


def encode_audio(samples: Any, sample_rate: int, *, max_sample_rate: int = 16_000) -> tuple[bytes, str]:
    """A mono clip as Ogg Vorbis bytes (Opus where this libsndfile has no Vorbis) and its MIME type.

    Encoded at the lowest Vorbis quality, about 28 kbit/s for 16 kHz speech: 258 clips of ~4 s take ~3.6 MB.
    A clip above ``max_sample_rate`` is resampled to it first (soxr); speech LLMs hear 16 kHz anyway.

    Args:
        samples: ``(n_samples,)`` waveform, values in [-1, 1] (clipped).
        sample_rate: Hz of ``samples``.
        max_sample_rate: Hz; a higher rate is resampled down to this.

    Returns:
        ``(file bytes, "audio/ogg")``.
    """
    audio = np.asarray(samples, dtype=np.float32)
    if audio.ndim == 2 and audio.shape[1] == 1:
        audio = audio[:, 0]
    if audio.ndim != 1 or audio.size == 0:
        raise ConfigError(
            f"argument 'samples': expected a non-empty mono (n_samples,) clip, got {audio.shape}"
        )
    if not np.all(np.isfinite(audio)):
        raise ConfigError("argument 'samples': contains NaN or infinite values")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ConfigError(
            f"argument 'sample_rate': expected a positive whole number of Hz, got {sample_rate}"
        )
    rate = int(sample_rate)
    subtype = "VORBIS" if "VORBIS" in soundfile.available_subtypes("OGG") else "OPUS"
    target = min(rate, int(max_sample_rate))
    if subtype == "OPUS" and target not in (8_000, 12_000, 16_000, 24_000, 48_000):
        target = 16_000  # the rates Opus can encode
    if target != rate:
        audio = soxr.resample(audio, rate, target).astype(np.float32)
    buffer = io.BytesIO()
    # compression_level 1.0 is libsndfile's lowest Vorbis quality (and Opus bitrate); speech stays clear
    compression = 1.0 if subtype == "VORBIS" else 0.9
    soundfile.write(
        buffer,
        np.clip(audio, -1.0, 1.0),
        target,
        format="OGG",
        subtype=subtype,
        compression_level=compression,
    )
    return buffer.getvalue(), "audio/ogg"


def explorer_section(data: ExplorerData, *, max_matrix_bytes: int = 12_000_000) -> str:
    """The explorer as one HTML fragment to put in :func:`~speechgap.report.html.build_page`'s sections.

    Args:
        data: the samples and notes.
        max_matrix_bytes: the most bytes the quantized similarity matrices of all samples may take together
            (one byte per value, before base64); above it every k-th layer is kept, always the first and the
            last, and a note says which.

    Returns:
        a ``<div id=sgx>`` holding its ``<style>``, the notes, the filters, the table, the (empty) sample
        view, the data as ``<script type="application/json">`` and the inlined JS.
    """
    if not isinstance(data, ExplorerData):
        raise ConfigError(f"argument 'data': expected an ExplorerData, got {type(data).__name__}")
    if int(max_matrix_bytes) <= 0:
        raise ConfigError(f"argument 'max_matrix_bytes': expected a positive number, got {max_matrix_bytes}")
    for k, sample in enumerate(data.samples):
        _check_sample(sample, f"data.samples[{k}]")
    step, kept_bytes, total_bytes = _layer_step(data.samples, int(max_matrix_bytes))
    records = [_sample_record(sample, step) for sample in data.samples]
    notes = [
        *data.notes,
        *_automatic_notes(data.samples, records, step, kept_bytes, total_bytes, max_matrix_bytes),
    ]
    payload = _script_json({"title": data.title, "samples": records})
    return (
        f"<div id=sgx data-samples={len(data.samples)}><style>{_asset(_STYLESHEET)}</style>"
        + _notes_html(notes)
        + _controls_html(data.samples)
        + _table_html(data.title, data.samples)
        + "<noscript><p>The sample view (answers, audio, similarity matrices) needs JavaScript.</p></noscript>"
        + _VIEW_HTML
        + f'<script type="application/json" id=sgx-data>{payload}</script>'
        + f"<script>{_javascript()}</script></div>"
    )


# ----------------------------------------------------------------------------------------------- checks


def _check_sample(sample: ExplorerSample, where: str) -> None:
    """Raise a ConfigError naming ``where`` when the sample's arrays do not fit together."""
    if not isinstance(sample, ExplorerSample):
        raise ConfigError(f"argument '{where}': expected an ExplorerSample, got {type(sample).__name__}")
    if not re.fullmatch(r"[\w.+-]+/[\w.+-]+", sample.audio_mime or ""):
        raise ConfigError(f"argument '{where}.audio_mime': not a MIME type: {sample.audio_mime!r}")
    for k, word in enumerate(sample.words):
        if len(word) != 3 or not all(math.isfinite(float(t)) for t in word[1:]):
            raise ConfigError(f"argument '{where}.words[{k}]': expected (word, start_s, end_s), got {word!r}")
    if sample.sim is None:
        return
    sim = np.asarray(sample.sim, dtype=np.float64)
    if sim.ndim != 3 or 0 in sim.shape:
        raise ConfigError(
            f"argument '{where}.sim': expected a non-empty (L, F, T) array, got shape {sim.shape}"
        )
    if not np.all(np.isfinite(sim)):
        raise ConfigError(f"argument '{where}.sim': contains NaN or infinite values")
    n_layers, n_frames, n_tokens = sim.shape
    if len(sample.layers) != n_layers:
        raise ConfigError(
            f"argument '{where}.layers': {len(sample.layers)} layers for sim of shape {sim.shape}"
        )
    if len(sample.tokens) != n_tokens:
        raise ConfigError(
            f"argument '{where}.tokens': {len(sample.tokens)} tokens for sim of shape {sim.shape}"
        )
    if sample.frame_times is not None and np.shape(sample.frame_times) != (n_frames, 2):
        raise ConfigError(
            f"argument '{where}.frame_times': expected shape ({n_frames}, 2), got {np.shape(sample.frame_times)}"
        )
    if sample.argmax is not None:
        argmax = np.asarray(sample.argmax)
        if argmax.shape != (n_layers, n_tokens) or argmax.min() < 0 or argmax.max() >= n_frames:
            raise ConfigError(
                f"argument '{where}.argmax': expected ({n_layers}, {n_tokens}) frame indices below {n_frames}, "
                f"got shape {argmax.shape}"
            )
    if sample.dtw is not None:
        if len(sample.dtw) != n_layers:
            raise ConfigError(f"argument '{where}.dtw': {len(sample.dtw)} paths for {n_layers} layers")
        for k, path in enumerate(sample.dtw):
            pairs = np.asarray(path)
            shaped = pairs.ndim == 2 and pairs.shape[1] == 2
            if not (shaped and np.all(pairs >= 0) and np.all(pairs < (n_frames, n_tokens))):
                raise ConfigError(
                    f"argument '{where}.dtw[{k}]': expected (K, 2) (frame, token) pairs inside "
                    f"({n_frames}, {n_tokens}), got shape {np.shape(path)}"
                )
    for label, groups in sample.merged.items():
        for group in groups:
            if not group or min(group) < 0 or max(group) >= n_frames:
                raise ConfigError(
                    f"argument '{where}.merged[{label!r}]': group {group!r} is not frame indices below {n_frames}"
                )


# ------------------------------------------------------------------------------------------------ data


def _kept_layers(n_layers: int, step: int) -> list[int]:
    """Positions kept when keeping every ``step``-th layer, always the first and the last."""
    return sorted(set(range(0, n_layers, step)) | {n_layers - 1})


def _layer_step(samples: Sequence[ExplorerSample], max_bytes: int) -> tuple[int, int, int]:
    """The smallest step whose kept matrices fit in ``max_bytes`` (the coarsest one if none does).

    Returns:
        ``(step, kept bytes, bytes of all layers)``; step 1 keeps every layer.
    """
    shapes = [np.shape(s.sim) for s in samples if s.sim is not None]
    total = sum(int(np.prod(shape)) for shape in shapes)
    most_layers = max((shape[0] for shape in shapes), default=1)
    kept = total
    for step in range(1, max(most_layers, 2)):
        kept = sum(len(_kept_layers(layers, step)) * f * t for layers, f, t in shapes)
        if kept <= max_bytes:
            return step, kept, total
    step = max(most_layers - 1, 1)
    return step, sum(len(_kept_layers(layers, step)) * f * t for layers, f, t in shapes), total


def quantize(sim: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``sim`` as uint8 steps between its own minimum and maximum.

    The value of step ``q`` is ``lo + (hi - lo) * q / 255``, within ``(hi - lo) / 510`` of the original.

    Returns:
        ``(q, lo, hi)``: ``q`` of ``sim``'s shape.
    """
    values = np.asarray(sim, dtype=np.float64)
    lo, hi = float(values.min()), float(values.max())
    if hi == lo:
        return np.zeros(values.shape, dtype=np.uint8), lo, hi
    steps = np.rint((values - lo) / (hi - lo) * 255.0)
    return np.clip(steps, 0, 255).astype(np.uint8), lo, hi


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _number(value: float | None, digits: int | None = None) -> float | None:
    if value is None or not math.isfinite(float(value)):
        return None
    return float(value) if digits is None else round(float(value), digits)


def _answer_record(answer: ExplorerAnswer | None) -> dict[str, Any] | None:
    if answer is None:
        return None
    return {
        "response": answer.response,
        "extracted": answer.extracted,
        "correct": answer.correct,
        "parsed": answer.parsed,
    }


def _sample_record(sample: ExplorerSample, step: int) -> dict[str, Any]:
    """One sample as the JSON the page reads (see the JS's ``base.js`` for the reading side)."""
    record: dict[str, Any] = {
        "id": str(sample.id),
        "subset": sample.subset,
        "speaker": sample.speaker,
        "question": sample.question,
        "gold": sample.gold,
        "text": _answer_record(sample.text),
        "speech": _answer_record(sample.speech),
        "cell": _cell(sample),
        "aps": _number(sample.aps),
        "pooled_cosine": _number(sample.pooled_cosine),
        "duration_s": _number(sample.duration_s),
        "audio": None if sample.audio is None else _b64(sample.audio),
        "audio_mime": sample.audio_mime,
        "words": [[str(w), round(float(s), 4), round(float(e), 4)] for w, s, e in sample.words],
        "tokens": [str(t) for t in sample.tokens],
        "fixes": {str(label): _answer_record(answer) for label, answer in sample.fixes.items()},
        "merged": {
            str(label): [[int(i) for i in g] for g in groups] for label, groups in sample.merged.items()
        },
        "frame_times": None,
        "layers": [],
        "shape": None,
    }
    if sample.frame_times is not None:
        record["frame_times"] = np.round(np.asarray(sample.frame_times, dtype=np.float64), 4).tolist()
    if sample.sim is None:
        return record
    sim = np.asarray(sample.sim, dtype=np.float64)
    keep = _kept_layers(sim.shape[0], step)
    q, lo, hi = quantize(sim[keep])
    record.update(
        layers=[int(sample.layers[k]) for k in keep],
        shape=list(q.shape),
        sim_lo=lo,
        sim_hi=hi,
        sim_q=_b64(q.tobytes(order="C")),
        argmax=None if sample.argmax is None else np.asarray(sample.argmax, dtype=np.int64)[keep].tolist(),
        dtw=None
        if sample.dtw is None
        else [np.asarray(sample.dtw[k], dtype=np.int64).reshape(-1).tolist() for k in keep],
    )
    return record


def _script_json(value: Any) -> str:
    """JSON safe inside ``<script>``: no ``<``, ``>`` or ``&`` survive, so ``</script>`` cannot end it."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name: str) -> str:
    return (resources.files("speechgap.report") / "explorer" / name).read_text(encoding="utf-8")


def _javascript() -> str:
    """The explorer's JS files in order, inside one closure so that nothing leaks into the page's globals."""
    parts = []
    for name in _SCRIPTS:
        source = _asset(name)
        if "</script" in source.lower():
            raise RuntimeError(
                f"report/explorer/{name} contains '</script', which would end the inline script"
            )
        parts.append(f"// ---- {name}\n{source}")
    return '(function () {\n"use strict";\n' + "\n".join(parts) + "\n})();"


# ----------------------------------------------------------------------------------------------- notes


def _automatic_notes(
    samples: Sequence[ExplorerSample],
    records: Sequence[dict[str, Any]],
    step: int,
    kept_bytes: int,
    total_bytes: int,
    max_bytes: int,
) -> list[str]:
    notes = []
    bounds = [(r["sim_hi"] - r["sim_lo"]) / 510 for r in records if r.get("shape")]
    if bounds:
        notes.append(
            "Similarities are stored as 8-bit steps between each sample's own lowest and highest value "
            "(lo, hi): a value shown is lo + (hi − lo)·q/255, within (hi − lo)/510 of the computed one "
            f"(at most {max(bounds):.4f} here). Colours scale to each layer's own range."
        )
    if step > 1:
        example = next((s for s in samples if s.sim is not None), None)
        shown = ""
        if example is not None:
            keep = _kept_layers(len(example.layers), step)
            shown = (
                f" (e.g. layers {', '.join(str(example.layers[k]) for k in keep)} of "
                f"{', '.join(str(layer) for layer in example.layers)})"
            )
        fits = (
            "" if kept_bytes <= max_bytes else f"; even so they exceed the {max_bytes / 1e6:.1f} MB asked for"
        )
        notes.append(
            f"The similarity matrices of all layers take {total_bytes / 1e6:.1f} MB, more than the "
            f"{max_bytes / 1e6:.1f} MB allowed for this page: every {_ordinal(step)} layer is kept, always "
            f"the first and the last{shown}, {kept_bytes / 1e6:.1f} MB in all{fits}."
        )
    return notes


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ------------------------------------------------------------------------------------------------ HTML


def _cell(sample: ExplorerSample) -> str:
    """The McNemar cell of a sample: ``both_right``, ``only_text_right``, ... or ``not_scored``."""
    text = None if sample.text is None else sample.text.correct
    speech = None if sample.speech is None else sample.speech.correct
    if text is None or speech is None:
        return "not_scored"
    if text and speech:
        return "both_right"
    if text:
        return "only_text_right"
    if speech:
        return "only_speech_right"
    return "both_wrong"


def _mark(value: bool | None) -> str:
    return "–" if value is None else ("✓" if value else "✗")


def _esc(value: Any) -> str:
    return "" if value is None else html.escape(str(value))


def _td(shown: str, sort: Any, css: str = "") -> str:
    sort_value = "" if sort is None else html.escape(str(sort))
    return f'<td{f" class={css}" if css else ""} data-sort="{sort_value}">{shown}</td>'


def _num_td(value: float | None) -> str:
    value = _number(value)
    return _td("–" if value is None else f"{value:.3f}", None if value is None else repr(value), "num")


def _answer_tds(answer: ExplorerAnswer | None) -> tuple[Any, Any]:
    correct = None if answer is None else answer.correct
    parsed = None if answer is None else answer.parsed
    return correct, parsed


_COLUMNS = (
    ("id", "id", "text"),
    ("subset", "subset", "text"),
    ("speaker", "speaker", "text"),
    ("text", "text", "text"),
    ("speech", "speech", "text"),
    ("cell", "cell", "text"),
    ("parsed", "parsed (text / speech)", "text"),
    ("aps", "APS", "number"),
    ("pooled_cosine", "pooled cosine", "number"),
)


def _table_html(title: str, samples: Sequence[ExplorerSample]) -> str:
    head = "".join(
        f'<th data-key={key} data-type={kind} scope=col tabindex=0 aria-sort=none title="sort by {html.escape(label)}">'
        f"{html.escape(label)}</th>"
        for key, label, kind in _COLUMNS
    )
    rows = []
    for index, sample in enumerate(samples):
        text_correct, text_parsed = _answer_tds(sample.text)
        speech_correct, speech_parsed = _answer_tds(sample.speech)
        cell = _cell(sample)
        parsed = f"{_mark(text_parsed)} / {_mark(speech_parsed)}"
        rows.append(
            f'<tr class=sgx-row tabindex=0 data-index={index} data-id="{_esc(sample.id)}" '
            f'data-subset="{_esc(sample.subset)}" data-cell={cell}>'
            + _td(_esc(sample.id), sample.id)
            + _td(_esc(sample.subset) or "–", sample.subset)
            + _td(_esc(sample.speaker) or "–", sample.speaker)
            + _td(_mark(text_correct), None if text_correct is None else int(text_correct), "mark")
            + _td(_mark(speech_correct), None if speech_correct is None else int(speech_correct), "mark")
            + _td(html.escape(CELLS[cell]), CELLS[cell], f"cell-{cell}")
            + _td(parsed, parsed, "mark")
            + _num_td(sample.aps)
            + _num_td(sample.pooled_cosine)
            + "</tr>"
        )
    return (
        f"<div class=sgx-table-wrap><table id=sgx-table><caption>{html.escape(title)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
    )


def _notes_html(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    return "<ul id=sgx-notes>" + "".join(f"<li>{html.escape(note)}</li>" for note in notes) + "</ul>"


def _controls_html(samples: Sequence[ExplorerSample]) -> str:
    subsets = sorted({s.subset for s in samples if s.subset is not None})
    subset_options = "".join(f'<option value="{_esc(s)}">{_esc(s)}</option>' for s in subsets)
    cell_options = "".join(
        f"<option value={key}>{html.escape(label)}</option>" for key, label in CELLS.items()
    )
    return (
        "<div id=sgx-controls hidden>"
        f"<label>subset <select id=sgx-subset><option value=''>all subsets</option>{subset_options}</select></label>"
        f"<label>cell <select id=sgx-cell><option value=''>all cells</option>{cell_options}</select></label>"
        "<label>search <input id=sgx-search type=search placeholder='id or question' autocomplete=off></label>"
        f"<span id=sgx-count aria-live=polite>{len(samples)} of {len(samples)} samples</span>"
        "<span class=sgx-hint>click a row to open the sample; click a header to sort</span></div>"
    )


_ANSWER_HTML = (
    "<dl><dt>response</dt><dd class=sgx-response></dd><dt>extracted</dt><dd class=sgx-extracted></dd>"
    "<dt>correct</dt><dd class=sgx-correct></dd><dt>parsed</dt><dd class=sgx-parsed></dd></dl>"
)

# The sample view's fixed structure; the JS fills it with textContent and shows it when a row is chosen.
_VIEW_HTML = (
    "<section id=sgx-view hidden>"
    "<h3 id=sgx-title></h3>"
    "<div class=sgx-qa><div><h4>question</h4><pre id=sgx-question></pre>"
    "<p><b>gold answer:</b> <span id=sgx-gold></span></p></div>"
    f"<div id=sgx-answer-text class=sgx-answer><h4>answer from text</h4>{_ANSWER_HTML}</div>"
    f"<div id=sgx-answer-speech class=sgx-answer><h4>answer from speech</h4>{_ANSWER_HTML}</div></div>"
    "<table id=sgx-fixes hidden><caption>speech answer under each fix</caption>"
    "<thead><tr><th>fix</th><th>extracted</th><th>correct</th><th>parsed</th></tr></thead><tbody></tbody></table>"
    "<div class=sgx-player><audio id=sgx-audio controls preload=auto></audio>"
    "<span id=sgx-no-audio hidden>no audio for this sample</span></div>"
    "<div id=sgx-words aria-label='spoken words; click one to play from there'></div>"
    "<div class=sgx-matrix-controls>"
    "<label>layer <input id=sgx-layer type=range min=0 max=0 step=1 value=0></label> <span id=sgx-layer-label></span>"
    "<label><input id=sgx-show-argmax type=checkbox checked> argmax path (best frame per token)</label>"
    "<label><input id=sgx-show-dtw type=checkbox checked> DTW path (monotonic)</label></div>"
    "<div class=sgx-matrix-wrap><canvas id=sgx-matrix></canvas><div id=sgx-playhead hidden></div>"
    "<div id=sgx-tooltip hidden><div class=sgx-tip-time></div><div>word: <b class=sgx-tip-word></b></div>"
    "<div>token: <b class=sgx-tip-token></b></div><div>similarity: <b class=sgx-tip-sim></b></div></div></div>"
    "<p id=sgx-no-matrix hidden>no similarity matrix for this sample</p>"
    "</section>"
)
