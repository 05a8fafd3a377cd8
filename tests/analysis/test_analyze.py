"""``analyze`` over a tiny model's captures: values against independent computations, resume, settings."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from speechgap.analysis import AnalysisSettings, analyze, token_word_indices, word_pairs
from speechgap.errors import ConfigError, DataError
from speechgap.metrics import cosine_matrix, cross_layer_cka, dtw_path, relation_to_correctness
from speechgap.models.capture import CaptureStore


def _table(path):
    return pq.read_table(path).to_pylist()


def test_pooled_cosine_equals_an_independent_computation(adapter, dataset, tmp_path):
    settings = AnalysisSettings(include_layer0=True, limit=2, figures=False)
    analyze((adapter, dataset), tmp_path, settings)
    rows = _table(tmp_path / "per_layer.parquet")
    for sample in list(dataset)[:2]:
        speech = adapter.capture(sample, "speech").hidden.astype(np.float64)
        text = adapter.capture(sample, "text").hidden.astype(np.float64)
        mine = {r["layer"]: r for r in rows if r["sample_id"] == sample.id}
        assert sorted(mine) == list(range(adapter.num_layers + 1))
        for layer in range(adapter.num_layers + 1):
            a, b = speech[layer].mean(axis=0), text[layer].mean(axis=0)
            expected = a @ b / np.sqrt((a @ a) * (b @ b))
            assert mine[layer]["pooled_cosine"] == pytest.approx(expected, abs=1e-6)
            assert mine[layer]["pooled_euclidean"] == pytest.approx(np.linalg.norm(a - b), rel=1e-6)


def test_cka_equals_cross_layer_cka_on_explicit_dtw_rows(store, store_run):
    layers = store_run.summary["settings"]["layers"]
    base = store_run.summary["settings"]["base_layer"]
    speech_rows, text_rows = [], []
    for sample_id in store.ids:
        speech, text = store.get(sample_id, "speech"), store.get(sample_id, "text")
        path = np.asarray(
            dtw_path(
                cosine_matrix(speech.hidden[speech.layers.index(base)], text.hidden[text.layers.index(base)])
            )
        )
        rows_s = [speech.layers.index(layer) for layer in layers]
        rows_t = [text.layers.index(layer) for layer in layers]
        speech_rows.append(speech.hidden[rows_s][:, path[:, 0]])
        text_rows.append(text.hidden[rows_t][:, path[:, 1]])
    expected = cross_layer_cka(np.concatenate(speech_rows, axis=1), np.concatenate(text_rows, axis=1))
    np.testing.assert_allclose(store_run.cka, expected, atol=1e-9)
    np.testing.assert_array_equal(np.load(store_run.out_dir / "cka.npy"), store_run.cka)
    assert store_run.summary["cka"]["n_rows"] == sum(len(r[0]) for r in speech_rows)
    np.testing.assert_allclose(store_run.summary["cka"]["matrix"], expected, atol=1e-9)


def test_words_pairing_rows_come_from_the_word_timings(store, dataset, tmp_path):
    result = analyze(store, tmp_path, AnalysisSettings(cka_pairing="words", figures=False), pairs=dataset)
    per_sample = {r["sample_id"]: r for r in _table(tmp_path / "per_sample.parquet")}
    for sample in dataset:
        speech, text = store.get(sample.id, "speech"), store.get(sample.id, "text")
        index = token_word_indices(text.tokens, sample.text, [w for w, _, _ in sample.word_times])
        expected = len(word_pairs(index, speech.frame_times, sample.word_times))
        assert per_sample[sample.id]["cka_rows"] == expected
    assert result.summary["cka"]["n_rows"] == sum(r["cka_rows"] for r in per_sample.values())
    assert result.summary["cka"]["pairing"] == "words"


def test_layer0_setting_changes_the_aggregated_layers_and_is_recorded(store, store_run, dataset, tmp_path):
    included = analyze(store, tmp_path, AnalysisSettings(include_layer0=True, figures=False), pairs=dataset)
    for result, has_layer0 in ((store_run, False), (included, True)):
        layers = {r["layer"] for r in _table(result.per_layer_path)}
        assert (0 in layers) is has_layer0
        assert result.summary["include_layer0"] is has_layer0
        assert result.summary["settings"]["include_layer0"] is has_layer0
        assert (0 in result.summary["per_layer"]["aps_cos"]["layers"]) is has_layer0
        assert result.cka.shape == (len(layers), len(layers))
        for path in (result.per_layer_path, result.per_sample_path):
            meta = json.loads(pq.read_schema(path).metadata[b"speechgap"])
            assert meta["include_layer0"] is has_layer0
        # the per-sample APS is the mean of its per-layer values over exactly the analysed layers
        per_layer = _table(result.per_layer_path)
        for row in _table(result.per_sample_path):
            values = [r["aps_cos"] for r in per_layer if r["sample_id"] == row["sample_id"]]
            assert len(values) == len(layers)
            assert row["aps_cos"] == pytest.approx(np.mean(values), rel=1e-12)
    assert (
        included.summary["per_sample"]["aps_cos"]["mean"]
        != store_run.summary["per_sample"]["aps_cos"]["mean"]
    )


class _CrashingStore(CaptureStore):
    """A capture store whose reads fail at one sample, as a crash mid-run would."""

    crash_at: str | None = None

    def get(self, sample_id, modality):
        if sample_id == self.crash_at:
            raise RuntimeError("simulated crash")
        return super().get(sample_id, modality)


@pytest.mark.parametrize("cka_max_bytes", [2 * 2**30, 0], ids=["feature-sums", "rows"])
def test_resume_after_a_crash_gives_identical_outputs(
    capture_dir, dataset, store_run, tmp_path, cka_max_bytes
):
    settings = AnalysisSettings(checkpoint_every=2, cka_max_bytes=cka_max_bytes, figures=False)
    reference = (
        store_run if cka_max_bytes else analyze(capture_dir, tmp_path / "ref", settings, pairs=dataset)
    )
    crashing = _CrashingStore(capture_dir)
    crashing.crash_at = crashing.ids[3]  # samples 0-2 done; the CKA state was saved after 2 of them
    with pytest.raises(RuntimeError, match="simulated crash"):
        analyze(crashing, tmp_path / "run", settings, pairs=dataset)
    assert not (tmp_path / "run" / "summary.json").exists()

    resumed = analyze(capture_dir, tmp_path / "run", settings, pairs=dataset)
    assert resumed.n_new == len(dataset) - 3
    ids = [json.loads(line)["id"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(dataset.ids)  # each sample exactly once
    assert _table(resumed.per_layer_path) == _table(reference.per_layer_path)
    assert _table(resumed.per_sample_path) == _table(reference.per_sample_path)
    np.testing.assert_array_equal(resumed.cka, reference.cka)

    again = analyze(capture_dir, tmp_path / "run", settings, pairs=dataset)
    assert again.n_new == 0
    np.testing.assert_array_equal(again.cka, reference.cka)


def test_eval_correctness_is_joined_and_related(store, dataset, tmp_path):
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    correct = {sid: k % 2 == 0 for k, sid in enumerate(dataset.ids)}
    lines = []
    for k, sid in enumerate(dataset.ids):
        lines.append(
            {
                "id": sid,
                "modality": "speech",
                "model_role": "lslm",
                "correct": correct[sid],
                "parsed": True,
                "logit_margin": 0.5 * k,
            }
        )
        lines.append({"id": sid, "modality": "text", "model_role": "lslm", "correct": True, "parsed": True})
        lines.append({"id": sid, "modality": "text", "model_role": "base", "correct": False, "parsed": False})
    (eval_dir / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))

    settings = AnalysisSettings(figures=False)
    result = analyze(store, tmp_path / "out", settings, eval_dir=eval_dir, pairs=dataset)
    rows = _table(result.per_sample_path)
    assert [r["speech_correct"] for r in rows] == [correct[r["sample_id"]] for r in rows]
    assert all(r["text_correct"] is True for r in rows)  # the base model's records are not mixed in
    assert [r["speech_logit_margin"] for r in rows] == [0.5 * dataset.ids.index(r["sample_id"]) for r in rows]
    expected = relation_to_correctness([r["aps_cos"] for r in rows], [r["speech_correct"] for r in rows])
    assert result.summary["correctness"]["aps_cos"]["auroc"] == pytest.approx(expected.auroc)
    assert result.summary["correctness"]["aps_cos"]["point_biserial"] == pytest.approx(
        expected.point_biserial
    )


def test_bad_input_gives_clear_errors_and_keeps_earlier_outputs(store, store_run, dataset, tmp_path):
    with pytest.raises(DataError, match="captures folder not found"):
        analyze(tmp_path / "no_such_captures", tmp_path / "out")

    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "results.jsonl").write_text(
        json.dumps({"id": "other", "modality": "speech", "correct": 1}) + "\n"
    )
    before = (store_run.out_dir / "summary.json").read_bytes()
    with pytest.raises(DataError, match="no analysed sample id is in the eval run"):
        analyze(
            store, store_run.out_dir, AnalysisSettings(checkpoint_every=2), eval_dir=eval_dir, pairs=dataset
        )
    assert (store_run.out_dir / "summary.json").read_bytes() == before

    with pytest.raises(ConfigError, match="argument 'base_layer': layer 40 is not available"):
        analyze(store, tmp_path / "out", AnalysisSettings(base_layer=40))
    with pytest.raises(ConfigError, match="argument 'layers'"):
        analyze(store, tmp_path / "out", AnalysisSettings(layers=[1, 99]))
    with pytest.raises(ConfigError, match="other settings"):
        analyze(store, store_run.out_dir, AnalysisSettings(cka_pairing="uniform"), pairs=dataset)
    assert (store_run.out_dir / "summary.json").read_bytes() == before


def test_a_sample_the_model_refuses_is_recorded_as_skipped_once(adapter, dataset, sample_factory, tmp_path):
    from speechgap.data.types import PairedDataset

    samples = [dataset[0], sample_factory(9, "Too long for the window.", 4.0), dataset[1]]
    data = PairedDataset.from_samples(samples)
    settings = AnalysisSettings(figures=False, debiased=True)
    first = analyze((adapter, data), tmp_path, settings)
    assert list(first.skipped) == ["s9"] and "3.00 s" in first.skipped["s9"]
    assert first.n_samples == 2 and first.summary["n_skipped"] == 1
    assert [r["sample_id"] for r in _table(first.per_sample_path)] == ["s0", "s1"]
    again = analyze((adapter, data), tmp_path, settings)
    assert again.n_new == 0 and list(again.skipped) == ["s9"]
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 3
    np.testing.assert_array_equal(again.cka, first.cka)
