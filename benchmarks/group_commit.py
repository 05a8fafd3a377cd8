"""Group commit of record files against one fsync per record, in the same run.

    .venv/bin/python benchmarks/group_commit.py [--records 5000] [--questions 128] [--repeats 5]

1. The appender alone: ``--records`` evaluation-like records (~1.3 kB each) appended with one flush and fsync
   per record (``commit_interval_s=0``, speechgap before group commit) and with group commit (the default,
   at most 1 s between commits); medians of ``--repeats`` interleaved runs, the ratio, and that both files are
   byte-identical.
2. ``speechgap.evaluate`` on the embedded default, ``--questions`` held-out questions at batch size 16, with
   the results file committed per record and in groups; medians, the ratio, identical records.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import speechgap.evaluation.run as evaluation_run
from speechgap.io import JsonlAppender

RECORD = {
    "id": "test-colour-fox-0",
    "modality": "speech",
    "model_role": "lslm",
    "sample_hash": "5cddda66b6cc35d2",
    "prompt": "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nAudio 1: "
    + "<|AUDIO|>" * 60
    + "\nAnswer the question.<|im_end|>\n<|im_start|>assistant\n",
    "response": " black",
    "reference": {
        "subset": "colour",
        "scoring_mode": "mcq",
        "answer": "C",
        "choices": ["yellow", "brown", "blue", "red"],
        "text": "What colour is the fox?\nA. yellow\nB. brown\nC. blue\nD. red",
    },  # fmt: skip
    "answer_mode": "generate",
    "generation": {"do_sample": False, "num_beams": 1, "max_new_tokens": 8, "repetition_penalty": 1.0},
    "extracted": None,
    "parsed": False,
    "correct": False,
    "score": 0.0,
    "rule": "no_match",
}


def _append(path: Path, n: int, interval: float | None) -> float:
    options = {} if interval is None else {"commit_interval_s": interval}
    start = time.perf_counter()
    with JsonlAppender(path, key=lambda r: r["id"], **options) as sink:
        for i in range(n):
            sink.write({**RECORD, "id": f"s{i}"})
    return time.perf_counter() - start


class _PerRecord(JsonlAppender):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **{**kwargs, "commit_interval_s": 0})


def _evaluate(model, data, folder: Path, per_record: bool) -> float:
    evaluation_run.JsonlAppender = _PerRecord if per_record else JsonlAppender
    try:
        start = time.perf_counter()
        evaluation_run.evaluate(model, data, folder, evaluation_run.EvalSettings(max_new_tokens=8, batch_size=16),
                                progress=False)  # fmt: skip
        return time.perf_counter() - start
    finally:
        evaluation_run.JsonlAppender = JsonlAppender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speechgap-commit-") as tmp:
        root = Path(tmp)
        times: dict[str, list[float]] = {"per record": [], "group": []}
        for k in range(args.repeats):
            for name, interval in (("per record", 0.0), ("group", None)):
                times[name].append(_append(root / f"{name}-{k}.jsonl", args.records, interval))
        same = (root / "per record-0.jsonl").read_bytes() == (root / "group-0.jsonl").read_bytes()
        per, group = statistics.median(times["per record"]), statistics.median(times["group"])
        print(f"appender, {args.records} records: per-record fsync {per * 1e3:.0f} ms ({args.records / per:.0f}/s), "
              f"group commit {group * 1e3:.0f} ms ({args.records / group:.0f}/s): {per / group:.1f}x; "
              f"files identical: {same}")  # fmt: skip

        from speechgap.mini import default_model_path
        from speechgap.mini.evalset import fixed_eval_set
        from speechgap.models import load_model

        data = fixed_eval_set(args.questions, seed=0, out_dir=root / "pairs")
        model = load_model(default_model_path(), protocol="instructed")
        _evaluate(model, data, root / "warm", per_record=False)
        times = {"per record": [], "group": []}
        for k in range(args.repeats):
            for name in times:
                times[name].append(
                    _evaluate(model, data, root / f"eval-{name}-{k}", per_record=name == "per record")
                )
        records = [(root / f"eval-{name}-0" / "results.jsonl").read_text() for name in times]
        per, group = statistics.median(times["per record"]), statistics.median(times["group"])
        print(f"evaluate, {args.questions} questions x 2 modalities, batch 16: per-record fsync {per:.2f} s, "
              f"group commit {group:.2f} s: {per / group:.2f}x; records identical: {records[0] == records[1]}")  # fmt: skip


if __name__ == "__main__":
    main()
