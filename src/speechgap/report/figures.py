"""Figures of the modality gap, shared by ``speechgap analyze`` and the demo's HTML report.

Every function builds and returns a matplotlib :class:`~matplotlib.figure.Figure` drawn by the Agg canvas
(no pyplot, no window, no global backend change);
the caller saves it, e.g. with :func:`save_png`. Nothing here computes a measure: inputs are the arrays and
the ``summary.json`` content that :mod:`speechgap.analysis` writes.

- :func:`layer_curves`: pooled cosine / Euclidean and APS per layer, mean ± std over samples (paper 1).
- :func:`cka_heatmap`: the speech-layer × text-layer CKA matrix with its band (paper 3).
- :func:`alignment_path_figure`: argmax and DTW paths over one sample's similarity matrix, with the tokens
  and the word timings.
- :func:`aps_histogram`: the per-sample APS distribution.
- :func:`scatter_with_fit`: one point per model (or sample), least-squares line, R² in the title.
- :func:`retention_curve`: speech accuracy against the speech tokens left after merging, one point per
  compression setting, with the unmerged accuracy as a reference line (paper 2).
- :func:`subset_bars`: text and speech accuracy side by side for each subset of an evaluation.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from speechgap.io import atomic_write_bytes

__all__ = [
    "alignment_path_figure",
    "aps_histogram",
    "cka_heatmap",
    "layer_curves",
    "retention_curve",
    "save_png",
    "scatter_with_fit",
    "subset_bars",
]


def save_png(figure: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Write ``figure`` as a PNG atomically (readers never see half a file) and return the path."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def _new_figure(figsize: tuple[float, float]) -> Figure:
    """A figure drawn by the Agg canvas: no pyplot, no global backend change, no window."""
    figure = Figure(figsize=figsize)
    FigureCanvasAgg(figure)
    return figure


def _layer0_note(summary: Mapping[str, Any]) -> str:
    included = summary.get("settings", {}).get("include_layer0")
    if included is None:
        return ""
    return "layer 0 (input embeddings) included" if included else "layer 0 excluded"


def _band(ax: Any, stats: Mapping[str, Any], label: str, color: str, style: str = "-") -> None:
    layers = np.asarray(stats["layers"], dtype=float)
    mean = np.asarray(stats["mean"], dtype=float)
    std = np.asarray(stats["std"], dtype=float)
    ax.plot(layers, mean, style, color=color, marker="o", markersize=3, label=label)
    ax.fill_between(layers, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)


def layer_curves(summary: Mapping[str, Any]) -> Figure:
    """Per-layer curves of paper 1's measures, mean over samples with a ±1 std band.

    Left: pooled cosine and APS (cosine) — higher = aligned in direction. Right: pooled Euclidean distance and
    APS (Euclidean, mean smallest distance) — higher = further apart. Layer 0 (the input embeddings) is marked
    by a dotted line when it is included; the title says whether it is.

    Args:
        summary: the content of ``summary.json``: ``summary["per_layer"][measure]`` with ``layers``, ``mean``,
            ``std``; ``summary["settings"]["include_layer0"]``; ``summary["n_samples"]``.
    """
    per_layer = summary["per_layer"]
    figure = _new_figure((11, 4.2))
    left, right = figure.subplots(1, 2)
    _band(left, per_layer["pooled_cosine"], "pooled cosine (mean-pooled spans)", "tab:blue")
    _band(left, per_layer["aps_cos"], "APS, cosine (best frame per token)", "tab:orange", "--")
    left.set_ylabel("cosine similarity (1 = same direction)")
    left.set_title("Direction: speech vs text")
    _band(right, per_layer["pooled_euclidean"], "pooled Euclidean distance", "tab:green")
    _band(right, per_layer["aps_euclid"], "APS, Euclidean (nearest frame per token)", "tab:red", "--")
    right.set_ylabel("Euclidean distance (hidden-state units)")
    right.set_title("Magnitude: speech vs text")
    layers = per_layer["pooled_cosine"]["layers"]
    for ax in (left, right):
        ax.set_xlabel("layer (0 = input to block 1; l = output of block l)")
        ax.grid(alpha=0.3)
        if 0 in layers:
            ax.axvline(0, color="grey", linestyle=":", linewidth=1)
            ax.annotate(
                "layer 0",
                (0, 1),
                xycoords=("data", "axes fraction"),
                fontsize=8,
                color="grey",
                xytext=(2, -10),
                textcoords="offset points",
            )
        ax.legend(fontsize=8, loc="best")
        if layers:
            ax.set_xticks(_ticks(layers))
    n = summary.get("n_samples")
    figure.suptitle(
        f"Speech-text similarity per layer (mean ± std over {n} samples; {_layer0_note(summary)})"
    )
    figure.tight_layout()
    return figure


def _ticks(layers: Sequence[int], most: int = 17) -> list[int]:
    layers = list(layers)
    step = max(1, int(np.ceil(len(layers) / most)))
    return layers[::step]


def cka_heatmap(
    matrix: Any,
    band: Mapping[str, Any] | Any | None = None,
    *,
    speech_layers: Sequence[int] | None = None,
    text_layers: Sequence[int] | None = None,
    title: str | None = None,
) -> Figure:
    """Paper 3's cross-layer CKA heat map: rows = speech layers (y), columns = text layers (x).

    The band (from :func:`speechgap.metrics.cka_band`, or its ``summary.json`` form) is drawn on top: a white
    dot at each speech layer's best text layer and a bar over the text layers within the tolerance.

    Args:
        matrix: ``(La, Lb)`` CKA values in [0, 1].
        band: a :class:`~speechgap.metrics.CKABand` or a mapping with ``best``, ``lower``, ``upper`` (column
            positions), or None.
        speech_layers: layer index of each row (default ``0..La-1``).
        text_layers: layer index of each column (default ``0..Lb-1``).
        title: figure title.
    """
    values = np.asarray(matrix, dtype=float)
    n_rows, n_cols = values.shape
    speech_layers = list(range(n_rows)) if speech_layers is None else list(speech_layers)
    text_layers = list(range(n_cols)) if text_layers is None else list(text_layers)
    figure = _new_figure((6.4, 5.4))
    ax = figure.subplots()
    image = ax.imshow(
        values, origin="lower", aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest"
    )
    colorbar = figure.colorbar(image, ax=ax)
    colorbar.set_label("linear CKA (1 = same geometry)")
    if n_rows * n_cols <= 144:
        for (row, col), value in np.ndenumerate(values):
            ax.text(
                col,
                row + 0.22,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value < 0.6 else "black",
            )
    if band is not None:
        get = band.get if isinstance(band, Mapping) else lambda key: getattr(band, key)
        rows = np.arange(n_rows)
        best = np.asarray(get("best"))
        ax.hlines(
            rows,
            np.asarray(get("lower")) - 0.4,
            np.asarray(get("upper")) + 0.4,
            colors="white",
            linewidth=1.2,
            alpha=0.8,
            label="band (within tolerance of best)",
        )
        ax.plot(
            best, rows, "o", color="white", markeredgecolor="black", markersize=4, label="best text layer"
        )
        ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, facecolor="silver")
    ax.set_xticks(range(n_cols)[:: max(1, n_cols // 16)])
    ax.set_xticklabels([str(text_layers[k]) for k in range(n_cols)[:: max(1, n_cols // 16)]])
    ax.set_yticks(range(n_rows)[:: max(1, n_rows // 16)])
    ax.set_yticklabels([str(speech_layers[k]) for k in range(n_rows)[:: max(1, n_rows // 16)]])
    ax.set_xlabel("text layer")
    ax.set_ylabel("speech layer")
    ax.set_title(title or "Cross-layer CKA, speech vs text", pad=22 if band is not None else 6)
    figure.tight_layout()
    return figure


def alignment_path_figure(
    sim_matrix: Any,
    path_argmax: Any,
    path_dtw: Any,
    frame_times: Any,
    tokens: Sequence[str],
    word_times: Sequence[tuple[str, float, float]] | None = None,
    *,
    title: str | None = None,
) -> Figure:
    """One sample's speech × text similarity matrix with paper 1's argmax path and paper 3's DTW path.

    x: text tokens (labelled, ``Ġ``/``▁`` shown as a leading space); y: speech time in seconds (each row one
    speech position, drawn over its ``frame_times`` span). Word timings, when given, are drawn as dashed
    horizontal lines at each word's start with the word written at the right edge.

    Args:
        sim_matrix: ``(T_s, T_t)`` cosine similarities.
        path_argmax: ``(T_t,)`` frame per token.
        path_dtw: ``(K, 2)`` ``(i, j)`` pairs.
        frame_times: ``(T_s, 2)`` seconds.
        tokens: ``T_t`` token strings.
        word_times: ``(word, start_s, end_s)`` or None.
        title: figure title.
    """
    sim = np.asarray(sim_matrix, dtype=float)
    times = np.asarray(frame_times, dtype=float)
    n_frames, n_tokens = sim.shape
    centres = times.mean(axis=1)
    figure = _new_figure((max(6.0, min(18.0, 0.35 * n_tokens + 3)), 6.0))
    ax = figure.subplots()
    image = ax.imshow(
        sim,
        origin="lower",
        aspect="auto",
        cmap="magma",
        interpolation="nearest",
        extent=(-0.5, n_tokens - 0.5, times[0, 0], times[-1, 1]),
    )
    colorbar = figure.colorbar(image, ax=ax, pad=0.1 if word_times else 0.03)
    colorbar.set_label("cosine similarity, speech position vs text token")
    dtw = np.asarray(path_dtw, dtype=int).reshape(-1, 2)
    ax.plot(dtw[:, 1], centres[dtw[:, 0]], "-", color="cyan", linewidth=1.5, label="DTW path (monotonic)")
    argmax = np.asarray(path_argmax, dtype=int)
    ax.plot(
        np.arange(n_tokens),
        centres[argmax],
        "o",
        color="lime",
        markeredgecolor="black",
        markersize=5,
        label="argmax path (best frame per token)",
    )
    if word_times:
        for word, start, _ in word_times:
            ax.axhline(float(start), color="white", linestyle="--", linewidth=0.7, alpha=0.7)
            ax.annotate(
                str(word),
                (1.0, float(start)),
                xycoords=("axes fraction", "data"),
                fontsize=7,
                xytext=(3, 0),
                textcoords="offset points",
                va="bottom",
                annotation_clip=False,
            )
        ax.plot([], [], "--", color="grey", linewidth=0.7, label="word starts (timings)")
    labels = [str(t).replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\\n") for t in tokens]
    ax.set_xticks(range(n_tokens))
    ax.set_xticklabels(labels, rotation=70, fontsize=8, ha="right")
    ax.set_xlabel("text token")
    ax.set_ylabel("speech time (s)")
    ax.legend(fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, frameon=False)
    ax.set_title(title or "Alignment paths over the speech × text similarity matrix", pad=22)
    figure.tight_layout()
    return figure


def aps_histogram(values: Any, *, metric: str = "cos", title: str | None = None) -> Figure:
    """Histogram of per-sample APS values with the mean and median marked.

    Args:
        values: ``(n,)`` per-sample APS (NaN ignored).
        metric: ``"cos"`` (cosine, higher = better aligned) or ``"euclid"`` (distance, lower = better).
        title: figure title.
    """
    data = np.asarray(values, dtype=float)
    data = data[np.isfinite(data)]
    figure = _new_figure((6.4, 4.2))
    ax = figure.subplots()
    ax.hist(
        data,
        bins=min(40, max(5, int(np.sqrt(max(data.size, 1))) * 2)),
        color="tab:blue",
        alpha=0.75,
        edgecolor="white",
    )
    if data.size:
        ax.axvline(data.mean(), color="black", linestyle="-", label=f"mean {data.mean():.3f}")
        ax.axvline(np.median(data), color="black", linestyle="--", label=f"median {np.median(data):.3f}")
        ax.legend(fontsize=8)
    unit = "cosine similarity (higher = closer)" if metric == "cos" else "Euclidean distance (lower = closer)"
    ax.set_xlabel(f"APS per sample, {unit}")
    ax.set_ylabel("samples")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title or f"Alignment Path Score distribution (n = {data.size})")
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def scatter_with_fit(
    x: Any,
    y: Any,
    labels: Sequence[str] | None = None,
    *,
    xlabel: str = "measure",
    ylabel: str = "modality gap (points)",
    title: str | None = None,
) -> Figure:
    """Scatter with the least-squares line, R² in the title (paper 1: measure vs gap, one point per model).

    Args:
        x: ``(n,)`` the measure.
        y: ``(n,)`` e.g. the gap, text minus speech score.
        labels: a label per point (e.g. model names), written next to it.
        xlabel, ylabel: axis labels, with units.
        title: prefix of the title; ``R² = …, n = …`` is appended.
    """
    from speechgap.metrics import regression_r2

    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    fit = regression_r2(xs, ys)
    figure = _new_figure((6.4, 4.8))
    ax = figure.subplots()
    ax.scatter(xs, ys, color="tab:blue", zorder=3)
    if labels is not None:
        for xi, yi, label in zip(xs, ys, labels, strict=True):
            ax.annotate(str(label), (xi, yi), fontsize=8, xytext=(4, 3), textcoords="offset points")
    grid = np.linspace(xs.min(), xs.max(), 50)
    ax.plot(
        grid,
        fit.intercept + fit.slope * grid,
        "-",
        color="tab:red",
        label=f"fit: y = {fit.slope:.3g}·x + {fit.intercept:.3g}",
    )
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    prefix = f"{title}: " if title else ""
    ax.set_title(f"{prefix}R² = {fit.r2:.3f}, n = {fit.n}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def retention_curve(points: Sequence[Mapping[str, Any]], baseline_accuracy: float) -> Figure:
    """Speech accuracy against the share of speech tokens left at the last block, one point per merging
    setting (paper 2's accuracy–retention trade-off), with the unmerged model's accuracy as a dashed line.

    Args:
        points: one mapping per setting with ``name``, ``retention`` (fraction of speech tokens left at the
            last block, in [0, 1]) and ``accuracy`` (speech accuracy, fraction). Drawn in order of retention;
            each point is labelled with the part of its name after the first ``_`` (e.g. ``dap_0.9`` → ``0.9``).
        baseline_accuracy: speech accuracy of the unmerged model, fraction.
    """
    ordered = sorted(points, key=lambda point: float(point["retention"]))
    retention = np.array([100 * float(point["retention"]) for point in ordered])
    accuracy = np.array([100 * float(point["accuracy"]) for point in ordered])
    figure = _new_figure((5, 3.5))
    ax = figure.subplots()
    ax.plot(retention, accuracy, "o-", label="merged")
    ax.axhline(100 * float(baseline_accuracy), color="grey", linestyle="--", label="unmerged")
    for point, x, y in zip(ordered, retention, accuracy, strict=True):
        name = str(point["name"])
        ax.annotate(name.split("_")[1] if "_" in name else name, (x, y), fontsize=6)
    ax.set_xlabel("speech tokens left at the last block (%)")
    ax.set_ylabel("speech accuracy (%)")
    ax.legend()
    figure.tight_layout()
    return figure


def subset_bars(rows: Sequence[Mapping[str, Any]], *, title: str | None = None) -> Figure:
    """Text and speech accuracy side by side for each subset of an evaluation (the gap at a glance).

    Args:
        rows: one mapping per subset with ``subset`` (name), ``text_accuracy`` and ``speech_accuracy``
            (fractions, or None when that modality was not run: drawn as no bar).
        title: figure title.
    """
    names = [str(row["subset"]) for row in rows]

    def percent(value: Any) -> float:
        return float("nan") if value is None else 100 * float(value)

    text = np.array([percent(row["text_accuracy"]) for row in rows], dtype=float)
    speech = np.array([percent(row["speech_accuracy"]) for row in rows], dtype=float)
    positions = np.arange(len(names), dtype=float)
    width = 0.38
    figure = _new_figure((max(4.8, 0.9 * len(names) + 2.5), 3.8))
    ax = figure.subplots()
    ax.bar(positions - width / 2, text, width, color="tab:blue", label="text")
    ax.bar(positions + width / 2, speech, width, color="tab:orange", label="speech")
    ax.set_xticks(positions)
    ax.set_xticklabels(
        names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center"
    )
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title or "Text vs speech accuracy per subset")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    return figure


def _probe_curve(ax: Any, probes: Sequence[Mapping[str, Any]], label: str, color: str, key: str = "accuracy"):
    layers = np.arange(len(probes))
    values = np.array([np.nan if p.get(key) is None else p[key] for p in probes], dtype=float)
    ax.plot(layers, values, marker="o", markersize=3, color=color, label=label)
    if key == "accuracy":
        low = np.array([p["ci"][0] for p in probes], dtype=float)
        high = np.array([p["ci"][1] for p in probes], dtype=float)
        ax.fill_between(layers, low, high, color=color, alpha=0.15)


def answer_target(diagnostics: Mapping[str, Any]) -> str:
    """``"answer"`` (the option letter) or ``"answer_word"`` (the option's text): the form the model itself
    answers in, read from which one is more often top-1 at the decision step of the text run's last layer."""

    def last(key: str) -> float:
        values = (diagnostics.get(key) or {}).get("text") or []
        return float(values[-1]) if values and values[-1] is not None else -1.0

    if diagnostics.get("answer_form") in ("answer", "answer_word"):
        return str(diagnostics["answer_form"])
    probes = diagnostics.get("probes") or {}
    if probes.get("answer_word") and last("answer_word_top1") > last("answer_top1"):
        return "answer_word"
    return "answer"


def diagnostic_figures(diagnostics: Mapping[str, Any]) -> dict[str, Figure]:
    """Paper 3's diagnostic figures from the ``diagnostics`` section of an analysis summary.

    Returns ``{file stem: figure}``: ``diagnostics_lens`` (logit-lens agreement on aligned speech frames and
    the answer's top-1 share at the decision step, per layer), ``diagnostics_probes`` (probe accuracy per
    layer with its bootstrap interval: answer from speech, from text, on wrongly answered speech samples,
    modality), ``diagnostics_attention`` (Cov_0.90, maximum weight and normalized entropy, speech vs text)
    and ``diagnostics_updates`` (update cosines per block).
    """
    figures: dict[str, Figure] = {}
    layers = np.arange(len(diagnostics["lens_top1"]))

    figure = _new_figure((7, 4))
    ax = figure.subplots()
    ax.plot(layers, np.array(diagnostics["lens_top1"], dtype=float), marker="o", markersize=3,
            label="transcript token is the lens's top-1 at its aligned speech frame")  # fmt: skip
    for key, what, style in (("answer_top1", "letter", "--"), ("answer_word_top1", "option text", ":")):
        for modality, color in (("speech", "tab:orange"), ("text", "tab:blue")):
            top1 = (diagnostics.get(key) or {}).get(modality)
            if top1:
                ax.plot(layers, np.array(top1, dtype=float), linestyle=style, color=color,
                        label=f"correct {what} is top-1 at the decision step ({modality} run)")  # fmt: skip
    ax.set_xlabel("layer (0 = input to block 1; l = output of block l)")
    ax.set_ylabel("share")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(f"Logit lens over {diagnostics['n_samples']} samples")
    figure.tight_layout()
    figures["diagnostics_lens"] = figure

    probes = diagnostics.get("probes") or {}
    answer = probes.get("answer") or probes.get("answer_word")
    modality_probe, word_probe = probes.get("modality"), probes.get("word")
    if answer or modality_probe or word_probe:
        figure = _new_figure((7, 4))
        ax = figure.subplots()
        target = answer_target(diagnostics)
        answer = probes.get(target)
        what = "letter" if target == "answer" else "answer word"
        if answer:
            _probe_curve(ax, answer["speech"]["linear"], f"{what} from speech (linear)", "tab:orange")
            _probe_curve(ax, answer["text"]["linear"], f"{what} from text (linear)", "tab:blue")
            wrong = answer["speech"]["linear"]
            if any(p.get("subset_accuracy") is not None for p in wrong):
                _probe_curve(ax, wrong, f"{what}, speech answered wrongly", "tab:red", key="subset_accuracy")
            ax.axhline(float(np.mean([p["chance"] for p in wrong])), color="grey", linestyle=":",
                       label="majority answer (chance)")  # fmt: skip
        if modality_probe:
            _probe_curve(ax, modality_probe["linear"], "modality from pooled spans (linear)", "tab:green")
        if word_probe:
            _probe_curve(ax, word_probe["linear"], f"word from its speech frame ({word_probe['n_words']} words)",
                         "tab:purple")  # fmt: skip
        ax.set_xlabel("layer")
        ax.set_ylabel("held-out accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title("Probes per layer (bootstrap 95% interval)")
        figure.tight_layout()
        figures["diagnostics_probes"] = figure

    overall = diagnostics["dispersion_overall"]
    figure = _new_figure((10, 3.6))
    axes = figure.subplots(1, 3)
    for ax, stat, label in zip(
        axes,
        ("coverage", "max_attention", "normalized_entropy"),
        ("Cov_0.90 (tokens)", "max single-token attention", "normalized entropy"),
        strict=True,
    ):
        values = [overall["text"][stat], overall["speech"][stat]]
        ax.bar(["text", "speech"], values, color=["tab:blue", "tab:orange"])
        for x, value in enumerate(values):
            ax.annotate(f"{value:.3g}", (x, value), ha="center", va="bottom", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    figure.suptitle("Attention over the question at the decision step (mean over layers and heads)")
    figure.tight_layout()
    figures["diagnostics_attention"] = figure

    figure = _new_figure((7, 3.6))
    ax = figure.subplots()
    updates = np.array(diagnostics["update_cosine"], dtype=float)
    ax.plot(np.arange(1, updates.size + 1), updates, marker="o", markersize=3)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xlabel("block l (update h_l - h_(l-1))")
    ax.set_ylabel("cosine, speech vs text update")
    ax.set_ylim(-1.02, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("Layer-update vectors at DTW-aligned positions")
    figure.tight_layout()
    figures["diagnostics_updates"] = figure
    return figures
