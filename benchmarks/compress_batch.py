"""``speechgap compress``'s merged model at the default batch size against one sample per forward pass.

    .venv/bin/python benchmarks/compress_batch.py [--questions 128] [--repeats 3] [--tau 0.98] [--deep-tau 0.88]

The embedded default on the first N held-out questions, speech runs (the merged ones; text runs go to the
unmodified adapter), 8 new tokens, dual Affinity Pooling at the demo's setting: medians of interleaved
``evaluate`` runs of a :class:`~speechgap.compression.CompressedModel` with ``batch_size=1`` and with the default
(``speechgap.evaluation.run.DEFAULT_BATCH_SIZE``), the ratio, and whether every answer and every per-sample
length record (``lengths.jsonl``) is the same.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from speechgap.compression import CompressedModel, dual_affinity_plan
from speechgap.evaluation.run import DEFAULT_BATCH_SIZE, EvalSettings, evaluate
from speechgap.io import read_jsonl
from speechgap.mini import default_model_path
from speechgap.mini.evalset import fixed_eval_set
from speechgap.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tau", type=float, default=0.98, help="input AP threshold (the demo's setting)")
    parser.add_argument("--deep-tau", type=float, default=0.88, help="deep AP threshold (the demo's setting)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speechgap-compress-batch-") as tmp:
        root = Path(tmp)
        data = fixed_eval_set(args.questions, seed=0, out_dir=root / "pairs")
        model = load_model(default_model_path(), protocol="instructed")
        plan = dual_affinity_plan(model.num_layers, input_tau=args.tau, deep_tau=args.deep_tau)

        def run(folder: Path, batch_size: int) -> float:
            settings = EvalSettings(modalities=("speech",), max_new_tokens=8, batch_size=batch_size)
            start = time.perf_counter()
            with CompressedModel(model, plan, lengths_path=folder / "lengths.jsonl") as merged:
                evaluate(merged, data, folder, settings, progress=False)
            return time.perf_counter() - start

        run(root / "warm", DEFAULT_BATCH_SIZE)
        times: dict[int, list[float]] = {1: [], DEFAULT_BATCH_SIZE: []}
        answers: dict[int, dict] = {}
        lengths: dict[int, dict] = {}
        for k in range(args.repeats):
            for size in times:
                folder = root / f"b{size}-{k}"
                times[size].append(run(folder, size))
                answers[size] = {r["id"]: r["response"] for _, r in read_jsonl(folder / "results.jsonl")}
                lengths[size] = {r["id"]: r for _, r in read_jsonl(folder / "lengths.jsonl")}
        one, batched = statistics.median(times[1]), statistics.median(times[DEFAULT_BATCH_SIZE])
        n = len(data)
        retention = sum(r["speech_lengths"][-1] for r in lengths[1].values()) / sum(
            r["speech_tokens"] for r in lengths[1].values()
        )
        print(f"{n} merged speech answers (dual AP tau {args.tau} / {args.deep_tau}, retention {retention:.1%}): "
              f"batch 1 {one:.2f} s ({n / one:.0f}/s), default batch {DEFAULT_BATCH_SIZE} {batched:.2f} s "
              f"({n / batched:.0f}/s): {one / batched:.2f}x; same answers: {answers[1] == answers[DEFAULT_BATCH_SIZE]}; "
              f"same lengths: {lengths[1] == lengths[DEFAULT_BATCH_SIZE]}")  # fmt: skip


if __name__ == "__main__":
    main()
