"""One self-contained HTML page of a gap study: numbers, figures embedded as PNG data, a plain reading.

Built from the outputs of ``speechgap eval`` (``summary.json``) and ``speechgap analyze`` (``summary.json``
and ``figures/``); it reads files and formats them, and computes no measure itself. Every text value that
reaches the page passes through :func:`html.escape`.

- :func:`gap_table`: per subset, both accuracies, the gap with its interval, McNemar p, the four cells.
- :func:`fixes_table`: the demo's interventions and speech-token merging against the unmodified model.
- :func:`result_table`: a small table of already formatted cells, for a result object's ``_repr_html_``.
- :func:`figure_block`, :func:`build_page`: a PNG embedded with its caption; the whole page.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; max-width: 980px; margin: 2em auto;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.8em 0; } td, th { border: 1px solid #ccc; padding: 4px 10px; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.92em; } .reading { background: #f7f9fc; border-left: 4px solid #4a7bd0;
  padding: 0.6em 1em; } .meta { color: #666; font-size: 0.88em; } code { background: #f2f2f2; padding: 1px 4px; }
"""


def png_data_uri(path: str | Path) -> str:
    """A PNG file as a ``data:`` URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def gap_table(eval_summary: dict[str, Any]) -> str:
    """The gap table: per subset, accuracies, GAP with its interval, McNemar p, the four cells."""
    rows = []
    for subset, row in eval_summary["subsets"].items():
        paired = row.get("paired") or {}
        gap = paired.get("gap") or {}
        cells = paired.get("cells") or {}
        p = (paired.get("mcnemar") or {}).get("p_exact")
        rows.append(
            "<tr>"
            f"<td>{html.escape(subset)}</td><td class=num>{row.get('paired_n', '–')}</td>"
            f"<td class=num>{_pct(row.get('text_score'))}</td><td class=num>{_pct(row.get('speech_score'))}</td>"
            f"<td class=num><b>{_pct(gap.get('gap'))}</b></td>"
            f"<td class=num>[{_pct(gap.get('low'))}, {_pct(gap.get('high'))}]</td>"
            f"<td class=num>{'–' if p is None else f'{p:.2g}'}</td>"
            f"<td class=num>{cells.get('both_right', '–')} / {cells.get('only_text_right', '–')} / "
            f"{cells.get('only_speech_right', '–')} / {cells.get('both_wrong', '–')}</td>"
            f"<td class=num>{_pct(row.get('text_parse_failure_rate'))} / {_pct(row.get('speech_parse_failure_rate'))}</td>"
            f"<td class=num>{_pct(row.get('base_text_score'))}</td>"
            "</tr>"
        )
    # the two overall conventions, each named (a summary written before them has only ``overall`` = macro)
    macro = eval_summary.get("macro") or eval_summary.get("overall")
    named = [("macro: mean of the subsets", macro, len(eval_summary["subsets"]))]
    if eval_summary.get("pooled"):
        named.append(("pooled: all samples", eval_summary["pooled"], eval_summary["pooled"].get("n")))
    for label, row, n in named:
        if not row:
            continue
        p = row.get("mcnemar_p")
        interval = (
            f"[{_pct(row['gap_low'])}, {_pct(row['gap_high'])}]" if row.get("gap_low") is not None else "–"
        )
        rows.append(
            f"<tr class=overall><td><b>{html.escape(label)}</b></td><td class=num>{n if n is not None else '–'}</td>"
            f"<td class=num>{_pct(row.get('text_score'))}</td><td class=num>{_pct(row.get('speech_score'))}</td>"
            f"<td class=num><b>{_pct(row.get('gap'))}</b></td><td class=num>{interval}</td>"
            f"<td class=num>{'–' if p is None else f'{p:.2g}'}</td><td></td><td></td>"
            f"<td class=num>{_pct(row.get('base_text_score'))}</td></tr>"
        )
    return (
        "<table><tr><th>subset</th><th>n</th><th>text %</th><th>speech %</th><th>GAP (points)</th>"
        "<th>95% CI</th><th>McNemar p</th><th>both right / only text / only speech / both wrong</th>"
        "<th>parse failures text / speech %</th><th>base LM text %</th></tr>" + "".join(rows) + "</table>"
    )


_FIX_LABELS = {"angle": "angle projection (paper 1)", "length": "length normalization (paper 1)"}


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"×{value:.2f}"


def _delta_with_ci(delta: float, ci: Sequence[float]) -> str:
    return f"{100 * delta:+.1f} [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]"


def fixes_table(fixes: Mapping[str, Any]) -> str:
    """The demo's fixes section: each intervention and the merging setting against the unmodified model.

    Args:
        fixes: ``{"n": samples, "interventions": {method: {baseline_accuracy, treated_accuracy, delta,
            delta_ci: [low, high], mcnemar_p, changed, ...}}, "compression": {spec: {tau, deep_layer,
            deep_tau}, baseline_accuracy, treated_accuracy, delta, delta_ci, retention, prefill_flops_ratio,
            ttft_ratio, peak_memory_ratio, kv_cache_ratio}}``; accuracies, deltas, retention and FLOPs as
            fractions (printed in percent / points, one decimal), the other ratios as factors. A ratio that
            was not measured (None, e.g. peak memory on CPU) is printed as ``n/a``.
    """
    rows = []
    for method, row in fixes["interventions"].items():
        label = _FIX_LABELS.get(method, str(method))
        p = row.get("mcnemar_p")
        rows.append(
            f"<tr><td>{html.escape(label)}, Bottom-3 critical tokens at the input layer</td>"
            f"<td class=num>{100 * row['baseline_accuracy']:.1f}</td><td class=num>{100 * row['treated_accuracy']:.1f}</td>"
            f"<td class=num>{_delta_with_ci(row['delta'], row['delta_ci'])}</td>"
            f"<td class=num>{'–' if p is None else f'{p:.2g}'}</td>"
            f"<td>{html.escape(str(row['changed']))} answers changed</td></tr>"
        )
    c = fixes["compression"]
    spec = c["spec"]
    rows.append(
        f"<tr><td>dual Affinity Pooling (paper 2): input τ {html.escape(str(spec['tau']))}, "
        f"layer {html.escape(str(spec['deep_layer']))} τ {html.escape(str(spec['deep_tau']))}</td>"
        f"<td class=num>{100 * c['baseline_accuracy']:.1f}</td><td class=num>{100 * c['treated_accuracy']:.1f}</td>"
        f"<td class=num>{_delta_with_ci(c['delta'], c['delta_ci'])}</td>"
        f"<td class=num>–</td><td>speech tokens left {100 * c['retention']:.1f}%, prefill FLOPs "
        f"{100 * c['prefill_flops_ratio']:.1f}%, time to first token {_ratio(c.get('ttft_ratio'))}, "
        f"peak memory {_ratio(c.get('peak_memory_ratio'))}, KV cache {_ratio(c.get('kv_cache_ratio'))}</td></tr>"
    )
    return (
        f"<p>On {html.escape(str(fixes['n']))} held-out questions spread evenly over the set, speech input; "
        "each row against the unmodified model on the same samples.</p>"
        "<table><tr><th>fix</th><th>speech % before</th><th>after</th><th>Δ points (95% CI)</th>"
        "<th>McNemar p</th><th>cost / notes</th></tr>" + "".join(rows) + "</table>"
    )


def result_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A small HTML table with a caption, every cell escaped: a result object's ``_repr_html_`` in a notebook.

    Args:
        title: the caption.
        headers: column names.
        rows: one sequence of cells per row, as many as ``headers``; numbers are formatted by the caller
            (a cell is written as ``str(cell)``; None as ``–``).
    """
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in headers)
    body = []
    for k, row in enumerate(rows):
        if len(row) != len(headers):
            raise ValueError(f"argument 'rows': row {k} has {len(row)} cells for {len(headers)} headers")
        cells = "".join(f"<td>{'–' if cell is None else html.escape(str(cell))}</td>" for cell in row)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><caption>{html.escape(title)}</caption><tr>{head}</tr>" + "".join(body) + "</table>"


FIGURE_CAPTIONS = {
    "layer_curves": "Mean-pooled cosine similarity and Euclidean distance between the speech span and the "
    "transcript span, and the Alignment Path Score, per layer (mean ± std over samples).",
    "cka_heatmap": "Linear CKA between every speech layer and every text layer over DTW-paired (speech frame, "
    "text token) states; the band marks text layers within the tolerance of each speech layer's best match.",
    "aps_histogram": "Per-sample Alignment Path Score.",
    "diagnostics_attention": "Attention of the decision step over the question: Cov_0.90, the largest weight "
    "and the normalized entropy, text run vs speech run (mean over layers and heads).",
    "diagnostics_lens": "Logit lens per layer: the transcript token at its aligned speech frame, and the "
    "correct letter at the decision step.",
    "diagnostics_probes": "Probes per layer: the correct letter from the decision-step state (speech, text, "
    "speech samples answered wrongly) and the modality from pooled spans.",
    "diagnostics_updates": "Cosine of the speech and text layer updates at DTW-aligned positions.",
}
"""The caption of each figure ``speechgap analyze`` writes, by file stem (one place for every page)."""

PATH_CAPTION = (
    "argmax and DTW alignment paths over the speech × text cosine matrix, with the transcript tokens and the "
    "spoken words' timings."
)


def figure_caption(stem: str) -> str:
    """The caption of an analysis figure by its file stem (``path_*``: a sample's alignment paths)."""
    if stem.startswith("path_"):
        return f"Sample {stem.removeprefix('path_')}: {PATH_CAPTION}"
    return FIGURE_CAPTIONS.get(stem, stem.replace("_", " "))


def figure_block(path: str | Path, caption: str) -> str:
    return (
        f'<figure><img src="{png_data_uri(path)}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def build_page(
    *,
    title: str,
    subtitle: str,
    reading: list[str],
    sections: list[tuple[str, str]],
    meta: dict[str, Any],
) -> str:
    """The whole page: a title, the plain-language reading, sections of (heading, HTML), provenance."""
    reading_html = "".join(f"<p>{html.escape(line)}</p>" for line in reading)
    body = "".join(f"<h2>{html.escape(heading)}</h2>{content}" for heading, content in sections)
    meta_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in meta.items()
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=meta>{html.escape(subtitle)}</p>"
        f"<div class=reading><b>Reading.</b>{reading_html}</div>{body}"
        f"<h2>What produced this page</h2><table class=meta>{meta_rows}</table></body></html>"
    )
