"""``analyze`` writes its figures as non-empty PNGs (the figures themselves: tests/report)."""

from __future__ import annotations

from pathlib import Path

from speechgap.analysis.run import path_file_name

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_analyze_writes_every_figure_as_a_png(store_run):
    names = {path.name for path in store_run.figures}
    path_figures = {
        f"path_{Path(path_file_name(sid)).stem}.png" for sid in store_run.summary["settings"]["path_samples"]
    }
    assert names == {"layer_curves.png", "cka_heatmap.png", "aps_histogram.png"} | path_figures
    for path in store_run.figures:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000
