"""Figures of :mod:`speechgap.report.figures`: non-empty PNGs, drawing exactly the data they are given."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from speechgap.metrics import cka_band
from speechgap.report.figures import (
    alignment_path_figure,
    aps_histogram,
    cka_heatmap,
    layer_curves,
    retention_curve,
    save_png,
    scatter_with_fit,
    subset_bars,
)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _line(ax, label):
    return next(line for line in ax.lines if line.get_label() == label)


def test_heatmap_draws_the_matrix_and_its_band():
    rng = np.random.default_rng(0)
    matrix = rng.uniform(0, 1, size=(5, 7))
    band = cka_band(matrix, tolerance=0.1)
    figure = cka_heatmap(matrix, band, speech_layers=[1, 2, 3, 4, 5], text_layers=list(range(1, 8)))
    ax = figure.axes[0]
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), matrix)
    best_marker = _line(ax, "best text layer")
    np.testing.assert_array_equal(best_marker.get_xdata(), band.best)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2", "3", "4", "5"]


@pytest.mark.parametrize("include_layer0", [False, True])
def test_layer_curves_plot_the_summary_means(include_layer0):
    rng = np.random.default_rng(2)
    layers = list(range(0 if include_layer0 else 1, 7))
    per_layer = {
        name: {"layers": layers, "mean": rng.normal(size=len(layers)).tolist(), "std": [0.1] * len(layers)}
        for name in ("pooled_cosine", "aps_cos", "pooled_euclidean", "aps_euclid")
    }
    summary = {"per_layer": per_layer, "settings": {"include_layer0": include_layer0}, "n_samples": 5}
    figure = layer_curves(summary)
    left, right = figure.axes[:2]
    cosine = next(line for line in left.lines if line.get_label().startswith("pooled cosine"))
    np.testing.assert_allclose(cosine.get_ydata(), per_layer["pooled_cosine"]["mean"])
    np.testing.assert_array_equal(cosine.get_xdata(), layers)
    euclid = next(line for line in right.lines if line.get_label().startswith("APS, Euclidean"))
    np.testing.assert_allclose(euclid.get_ydata(), per_layer["aps_euclid"]["mean"])
    note = "layer 0 (input embeddings) included" if include_layer0 else "layer 0 excluded"
    assert note in figure._suptitle.get_text()
    assert "over 5 samples" in figure._suptitle.get_text()


def test_path_figure_histogram_and_scatter(tmp_path):
    rng = np.random.default_rng(1)
    sim = rng.uniform(-1, 1, size=(20, 6))
    argmax = sim.argmax(axis=0)
    dtw = np.array([(i, min(5, i // 3)) for i in range(20)])
    times = np.stack([np.arange(20) * 0.04, np.arange(1, 21) * 0.04], axis=1)
    figure = alignment_path_figure(
        sim, argmax, dtw, times, ["a", "Ġb", "c", "d", "e", "f"], [("ab", 0.0, 0.3), ("cdef", 0.3, 0.8)]
    )
    ax = figure.axes[0]
    argmax_line = next(line for line in ax.lines if line.get_label().startswith("argmax"))
    np.testing.assert_allclose(argmax_line.get_ydata(), times.mean(axis=1)[argmax])
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["a", " b"]
    assert save_png(figure, tmp_path / "p.png").read_bytes().startswith(PNG_SIGNATURE)

    values = rng.normal(0.5, 0.1, size=50)
    hist = aps_histogram(values)
    counts = [patch.get_height() for patch in hist.axes[0].patches]
    assert sum(counts) == 50

    x = np.arange(6.0)
    y = 2.0 * x + rng.normal(0, 0.5, 6)
    scatter = scatter_with_fit(x, y, labels=[f"m{k}" for k in range(6)], xlabel="APS", ylabel="gap (points)")
    r2 = np.corrcoef(x, y)[0, 1] ** 2
    assert f"R² = {r2:.3f}" in scatter.axes[0].get_title()
    assert pytest.approx(2.0, abs=0.5) == np.polyfit(x, y, 1)[0]


POINTS = [
    {"name": "dap_0.9", "retention": 0.62, "accuracy": 0.55},
    {"name": "dap_0.98", "retention": 0.91, "accuracy": 0.60},
    {"name": "oracle", "retention": 0.40, "accuracy": 0.41},
]


def test_retention_curve_draws_the_sorted_points_and_the_baseline(tmp_path):
    figure = retention_curve(POINTS, baseline_accuracy=0.625)
    assert isinstance(figure.canvas, FigureCanvasAgg)
    ax = figure.axes[0]
    merged = _line(ax, "merged")
    np.testing.assert_allclose(merged.get_xdata(), [40.0, 62.0, 91.0])
    np.testing.assert_allclose(merged.get_ydata(), [41.0, 55.0, 60.0])
    unmerged = _line(ax, "unmerged")
    np.testing.assert_allclose(unmerged.get_ydata(), [62.5, 62.5])
    assert unmerged.get_linestyle() == "--"
    annotations = {text.get_text(): tuple(text.xy) for text in ax.texts}
    assert annotations == {
        "oracle": pytest.approx((40.0, 41.0)),
        "0.9": pytest.approx((62.0, 55.0)),
        "0.98": pytest.approx((91.0, 60.0)),
    }
    assert all(text.get_fontsize() == 6 for text in ax.texts)
    assert ax.get_xlabel() == "speech tokens left at the last block (%)"
    assert ax.get_ylabel() == "speech accuracy (%)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["merged", "unmerged"]
    assert save_png(figure, tmp_path / "curve.png").read_bytes().startswith(PNG_SIGNATURE)


def test_subset_bars_draw_one_bar_per_subset_and_modality(tmp_path):
    rows = [
        {"subset": "colour", "text_accuracy": 0.9, "speech_accuracy": 0.7},
        {"subset": "city", "text_accuracy": 0.8, "speech_accuracy": None},
        {"subset": "sum", "text_accuracy": 0.5, "speech_accuracy": 0.25},
    ]
    figure = subset_bars(rows)
    ax = figure.axes[0]
    assert len(ax.patches) == 2 * len(rows)
    text_heights = [bar.get_height() for bar in ax.containers[0].patches]
    speech_heights = [bar.get_height() for bar in ax.containers[1].patches]
    np.testing.assert_allclose(text_heights, [90.0, 80.0, 50.0])
    assert speech_heights[0] == pytest.approx(70.0) and speech_heights[2] == pytest.approx(25.0)
    assert math.isnan(speech_heights[1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["colour", "city", "sum"]
    centres = [bar.get_x() + bar.get_width() / 2 for bar in ax.containers[0].patches]
    assert all(c < t.get_position()[0] for c, t in zip(centres, ax.get_xticklabels(), strict=True))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["text", "speech"]
    assert save_png(figure, tmp_path / "bars.png").read_bytes().startswith(PNG_SIGNATURE)
