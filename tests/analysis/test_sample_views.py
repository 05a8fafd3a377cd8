"""Each analysed sample's explorer view: every layer's cosine matrix with its argmax and DTW paths."""

from __future__ import annotations

import numpy as np
import pytest

from speechgap.analysis import AnalysisSettings, analyze
from speechgap.analysis.run import load_sample_view, view_file
from speechgap.metrics import argmax_path, cosine_matrix, dtw_path


def test_every_sample_gets_the_matrices_and_paths_of_every_analysed_layer(store, store_run, dataset):
    layers = store_run.layers
    for sample in dataset:
        sample_id = sample.id
        view = load_sample_view(view_file(store_run.out_dir, sample_id))
        speech, text = store.get(sample_id, "speech"), store.get(sample_id, "text")
        assert view.layers == layers
        assert view.sim.shape == (len(layers), speech.hidden.shape[1], text.hidden.shape[1])
        for row, layer in enumerate(layers):
            # independent: the cosine matrix of the captured states themselves
            expected = cosine_matrix(
                speech.hidden[speech.layers.index(layer)], text.hidden[text.layers.index(layer)]
            )
            np.testing.assert_allclose(view.sim[row], expected, atol=2e-3)  # float16 on disk
            np.testing.assert_array_equal(view.argmax[row], argmax_path(expected))
            np.testing.assert_array_equal(view.dtw[row], np.asarray(dtw_path(expected)))
        np.testing.assert_array_equal(view.frame_times, speech.frame_times)
        assert view.tokens == list(text.tokens)
        assert view.word_times == sample.word_times


def test_views_can_be_left_out(store, dataset, tmp_path):
    result = analyze(
        store, tmp_path / "a", AnalysisSettings(sample_views=False, figures=False), pairs=dataset
    )
    assert not (result.out_dir / "views").exists()
    with pytest.raises(Exception, match="sample_views"):
        AnalysisSettings(sample_views="yes")


def test_merged_shards_carry_every_view(adapter, dataset, store_run, tmp_path):
    from speechgap.analysis.shards import merge_analysis_shards

    shards = []
    for k in range(2):
        folder = tmp_path / f"shard{k}"
        # one sample per pass: shards batch samples differently from the whole run (equal within rounding)
        analyze((adapter, dataset), folder, AnalysisSettings(shard=(k, 2), figures=False, batch_size=1))
        shards.append(folder)
    merged = merge_analysis_shards(shards, tmp_path / "merged", figures=False)
    whole = analyze((adapter, dataset), tmp_path / "whole", AnalysisSettings(figures=False, batch_size=1))
    for sample_id in dataset.ids:
        got = load_sample_view(view_file(merged.out_dir, sample_id))
        expected = load_sample_view(view_file(whole.out_dir, sample_id))
        np.testing.assert_array_equal(got.sim, expected.sim)
        assert [p.tolist() for p in got.dtw] == [p.tolist() for p in expected.dtw]


def test_a_damaged_view_is_refused_naming_its_file(store_run, tmp_path):
    from speechgap.errors import DataError

    source = next((store_run.out_dir / "views").glob("*.npz"))
    for name, content in (("cut.npz", source.read_bytes()[:100]), ("text.npz", b"not numpy")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError, match="not a readable sample view") as caught:
            load_sample_view(path)
        assert str(path) in str(caught.value)
