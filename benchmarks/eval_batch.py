"""``speechgap eval``'s default batch size against one sample per forward pass, in the same run.

    .venv/bin/python benchmarks/eval_batch.py [--questions 128] [--repeats 3]

The embedded default on the first N held-out questions, both modalities, 8 new tokens: medians of interleaved
runs with ``batch_size=1`` and with the default (``speechgap.evaluation.run.DEFAULT_BATCH_SIZE``), the ratio,
and whether every answer is the same.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from speechgap.evaluation.run import DEFAULT_BATCH_SIZE, EvalSettings, evaluate
from speechgap.mini import default_model_path
from speechgap.mini.evalset import fixed_eval_set
from speechgap.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speechgap-batch-") as tmp:
        root = Path(tmp)
        data = fixed_eval_set(args.questions, seed=0, out_dir=root / "pairs")
        model = load_model(default_model_path(), protocol="instructed")
        evaluate(model, data, root / "warm", EvalSettings(max_new_tokens=8), progress=False)
        times: dict[int, list[float]] = {1: [], DEFAULT_BATCH_SIZE: []}
        answers: dict[int, dict] = {}
        for k in range(args.repeats):
            for size in times:
                start = time.perf_counter()
                run = evaluate(model, data, root / f"b{size}-{k}", EvalSettings(max_new_tokens=8, batch_size=size),
                               progress=False)  # fmt: skip
                times[size].append(time.perf_counter() - start)
                answers[size] = {
                    (r["id"], r["modality"]): r["response"] for r in run.to_frame().to_dict("records")
                }
        one, batched = statistics.median(times[1]), statistics.median(times[DEFAULT_BATCH_SIZE])
        n = 2 * len(data)
        print(f"{n} answers: batch 1 {one:.2f} s ({n / one:.0f}/s), default batch {DEFAULT_BATCH_SIZE} {batched:.2f} s "
              f"({n / batched:.0f}/s): {one / batched:.2f}x; same answers: {answers[1] == answers[DEFAULT_BATCH_SIZE]}")  # fmt: skip


if __name__ == "__main__":
    main()
