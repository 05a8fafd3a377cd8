"""Batched prefill and decoding against the same engine one sample at a time: same answers, same lengths,
logits within 1e-5, under every kind of plan; and lengths.jsonl written once per sample, also after resume."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
import torch

from speechgap.compression import run as run_module
from speechgap.compression.kv import kv_merge_plan
from speechgap.compression.oracle import OracleCompression
from speechgap.compression.plan import AffinityPooling, MergePlan
from speechgap.compression.run import CompressedModel, LengthRecord
from speechgap.compression.shorten import ShorteningEngine
from speechgap.compression.tome import TokenMerging
from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError
from speechgap.io import JsonlAppender, read_jsonl

NEW_TOKENS = 4

PLANS = {
    "no-merge": MergePlan(),
    "ap-input": MergePlan({0: AffinityPooling(0.3, 1)}),
    "ap-two-layers-mean": MergePlan(
        {0: AffinityPooling(0.3, 1), 2: AffinityPooling(0.5, 3)}, position="mean"
    ),
    "ap-three-layers-compact": MergePlan(
        {0: AffinityPooling(0.3, 1), 1: AffinityPooling(0.6, 2, "mean"), 3: AffinityPooling(0.5, 3)},
        position="compact",
    ),
    "tome": MergePlan({1: TokenMerging(0.5)}),
    "oracle-random": MergePlan({2: OracleCompression("random", 0.5, seed=1)}),
    "oracle-merge-compact": MergePlan({0: OracleCompression("merge", 0.4)}, position="compact"),
    "kv-merge-mean": kv_merge_plan(4, threshold=0.0, position="mean"),
}


@pytest.mark.parametrize("name", list(PLANS))
def test_a_batch_answers_as_its_samples_do_one_at_a_time(tiny, batch_samples, name):
    plan = PLANS[name]
    engine = ShorteningEngine(tiny, plan)
    alone = [engine.generate(sample, "speech", NEW_TOKENS) for sample in batch_samples]
    batched = engine.generate_batch(batch_samples, "speech", NEW_TOKENS)
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]
    for sample, one, many in zip(batch_samples, alone, batched, strict=True):
        assert LengthRecord.from_prefill(sample.id, many.prefill) == LengthRecord.from_prefill(
            sample.id, one.prefill
        )
        assert many.prefill.next_positions == one.prefill.next_positions
        torch.testing.assert_close(many.prefill.logits, one.prefill.logits, rtol=0, atol=1e-5)
    # the batch really is padded per block, and the plan really merges
    for block in range(tiny.num_layers):
        assert len({g.prefill.seq_lengths[block] for g in batched}) > 1
    if plan.reductions:
        assert all(g.prefill.retention < 1.0 for g in batched)
    assert batched[0].prefill.cache is None  # rows of a batch share one padded cache


def test_each_row_stops_at_its_own_stop_token(tiny, batch_samples):
    engine = ShorteningEngine(tiny, PLANS["ap-two-layers-mean"])
    free = [engine.generate(sample, "speech", 6).token_ids for sample in batch_samples]
    # a stop token some rows produce on the way and others never do
    candidates = sorted({t for tokens in free for t in tokens[1:]})
    stop = next(t for t in candidates if 0 < sum(t in tokens for tokens in free) < len(free))
    engine.eos_ids = {stop}
    alone = [engine.generate(sample, "speech", 6).token_ids for sample in batch_samples]
    batched = [g.token_ids for g in engine.generate_batch(batch_samples, "speech", 6)]
    assert batched == alone
    lengths = {len(tokens) for tokens in batched}
    assert len(lengths) > 1 and 6 in lengths  # some rows stopped early, others ran to the budget
    assert all(tokens[-1] == stop for tokens in batched if len(tokens) < 6)


def test_batched_decode_steps_give_the_logits_of_one_at_a_time(tiny, batch_samples):
    engine = ShorteningEngine(tiny, PLANS["ap-three-layers-compact"])
    state = engine.prefill_batch(batch_samples, "speech")
    assert state.padded_lengths == [max(r.seq_lengths[b] for r in state.rows) for b in range(tiny.num_layers)]
    singles = [engine.prefill(sample, "speech") for sample in batch_samples]
    tokens = [int(torch.argmax(s.logits)) for s in singles]
    for step in range(4):
        if step == 2:  # drop rows mid-decode, as generate_batch does for rows that finished
            keep = [0, 2, 4]
            state.select(keep)
            singles, tokens = [singles[k] for k in keep], [tokens[k] for k in keep]
        batched = engine.step_batch(state, tokens)
        alone = torch.stack([engine.step(s, t) for s, t in zip(singles, tokens, strict=True)])
        torch.testing.assert_close(batched, alone, rtol=0, atol=1e-5)
        tokens = [int(t) for t in torch.argmax(alone, dim=-1)]
    # block l of the cache: the longest row's prefill plus the decode tokens, for the rows kept
    assert [layer.keys.shape[:3:2] for layer in state.cache.layers] == [
        (3, n + 4) for n in state.padded_lengths
    ]
    with pytest.raises(ConfigError, match="2 tokens for 3 rows"):
        engine.step_batch(state, tokens[:2])
    with pytest.raises(ConfigError, match="row of a batch"):
        state.rows[0].kv_cache_bytes()


def test_eager_attention_batches_with_explicit_masks(tiny_dir, batch_samples):
    from speechgap.models import load_model

    eager = load_model(tiny_dir)
    eager.model.set_attn_implementation("eager")
    engine = ShorteningEngine(eager, PLANS["ap-two-layers-mean"])
    assert engine.attn_implementation == "eager" and engine.batched
    alone = [engine.generate(sample, "speech", NEW_TOKENS) for sample in batch_samples]
    batched = engine.generate_batch(batch_samples, "speech", NEW_TOKENS)
    assert [g.token_ids for g in batched] == [g.token_ids for g in alone]
    for one, many in zip(alone, batched, strict=True):
        assert many.prefill.seq_lengths == one.prefill.seq_lengths
        torch.testing.assert_close(many.prefill.logits, one.prefill.logits, rtol=0, atol=1e-5)


def test_without_per_row_masks_the_engine_runs_one_sample_at_a_time(tiny, batch_samples, monkeypatch):
    engine = ShorteningEngine(tiny, PLANS["ap-input"])
    expected = [g.token_ids for g in engine.generate_batch(batch_samples[:3], "speech", 3)]
    engine.batched = False  # as under flash_attention_2, which reads 2-D padding masks only
    sizes: list[int] = []
    prefill_batch = engine.prefill_batch
    monkeypatch.setattr(
        engine, "prefill_batch", lambda s, m="speech": sizes.append(len(s)) or prefill_batch(s, m)
    )
    assert [g.token_ids for g in engine.generate_batch(batch_samples[:3], "speech", 3)] == expected
    assert sizes == [1, 1, 1]
    with pytest.raises(ConfigError, match="prefill one sample at a time"):
        prefill_batch(batch_samples[:2], "speech")


def test_compressed_model_batches_answers_and_option_scores(tiny, batch_samples):
    plan = PLANS["ap-two-layers-mean"]
    merged, alone = CompressedModel(tiny, plan), CompressedModel(tiny, plan)
    answers = merged.generate_batch(batch_samples, "speech", NEW_TOKENS)
    assert answers == [alone.generate_batch([s], "speech", NEW_TOKENS)[0] for s in batch_samples]
    assert merged.lengths == alone.lengths and len(merged.lengths) == len(batch_samples)
    options = [["A", "B", "C", "D"], ["A", "B"], ["A", "B", "C"], ["A", "B", "C", "D"], ["B", "A"]]
    scores = merged.score_options_batch(batch_samples, "speech", options)
    for sample, opts, batched in zip(batch_samples, options, scores, strict=True):
        single = alone.score_options(sample, "speech", opts)
        assert batched.options == opts
        assert batched.best == single.best and batched.token_ids == single.token_ids
        torch.testing.assert_close(
            torch.as_tensor(batched.log_probs), torch.as_tensor(single.log_probs), rtol=0, atol=1e-5
        )


class _CountingAppender(JsonlAppender):
    opened = 0

    def __init__(self, *args, **kwargs):
        type(self).opened += 1
        super().__init__(*args, **kwargs)


def test_lengths_file_is_opened_once_and_survives_a_torn_tail(tiny, batch_samples, tmp_path, monkeypatch):
    monkeypatch.setattr(run_module, "JsonlAppender", _CountingAppender)
    path = tmp_path / "lengths.jsonl"
    plan = PLANS["ap-input"]
    first = ShorteningEngine(tiny, plan).prefill(batch_samples[0], "speech")
    kept = asdict(LengthRecord.from_prefill(batch_samples[0].id, first))
    # an earlier run: one committed record, then a line torn by a crash
    path.write_text(json.dumps(kept) + "\n" + '{"id": "b1", "speech_tok')
    with CompressedModel(tiny, plan, lengths_path=path) as merged:
        for start in range(0, len(batch_samples), 2):  # three calls, as evaluate's batches
            merged.generate_batch(batch_samples[start : start + 2], "speech", 2)
            # each call ends committed: the file already holds what it answered
            assert {r["id"] for _, r in read_jsonl(path)} == {s.id for s in batch_samples[: start + 2]}
        merged.score_options(batch_samples[1], "speech")  # answered before: not written again
    assert _CountingAppender.opened == 1
    records = [r for _, r in read_jsonl(path, skip_torn_tail=False)]
    assert [r["id"] for r in records] == [s.id for s in batch_samples]
    assert records[0] == kept
    assert [LengthRecord(**r) for r in records[1:]] == [merged.lengths[s.id] for s in batch_samples[1:]]


def test_lengths_are_written_exactly_once_after_a_resume(tiny, batch_samples, tmp_path):
    from speechgap.evaluation.run import EvalSettings, evaluate

    data = PairedDataset({"name": "batched-test"}, [s.id for s in batch_samples], batch_samples.__getitem__)
    plan = PLANS["ap-input"]
    out, lengths = tmp_path / "eval", tmp_path / "eval" / "lengths.jsonl"
    settings = EvalSettings(modalities=("speech",), max_new_tokens=2, batch_size=2)
    with CompressedModel(tiny, plan, lengths_path=lengths) as merged:
        evaluate(merged, data, out, settings, progress=False)
    # a crash: the last two answers never reached results.jsonl, and the last length record was torn
    results = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(results[:-2]))
    records = lengths.read_text().splitlines(keepends=True)
    lengths.write_text("".join(records[:-1]) + records[-1][: len(records[-1]) // 2])
    with CompressedModel(tiny, plan, lengths_path=lengths) as merged:
        result = evaluate(merged, data, out, settings, progress=False)
    assert result.written == 2 and result.skipped == 3
    ids = [r["id"] for _, r in read_jsonl(lengths, skip_torn_tail=False)]
    assert sorted(ids) == sorted(s.id for s in batch_samples) and len(ids) == len(set(ids))
    assert len([r for _, r in read_jsonl(out / "results.jsonl")]) == len(batch_samples)
