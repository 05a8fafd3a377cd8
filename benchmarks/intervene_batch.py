"""``speechgap intervene``'s default batch size against one sample per forward pass, in the same run.

    .venv/bin/python benchmarks/intervene_batch.py [--questions 128] [--repeats 3] [--methods angle,calibration]

The embedded default (instructed protocol) on the first N held-out questions, 8 new tokens: for each method,
the treated (intervened) run with ``batch_size=1`` and with the default
(``speechgap.evaluation.run.DEFAULT_BATCH_SIZE``), interleaved, medians of the repeats, the ratio, and
whether every answer and every logged plan is the same. The baseline run (and calibration's statistics) are
made once per method and copied into every timed folder, which ``run_intervention`` then resumes, so the
times are those of the intervention's own run (plans, edits, generation); ``benchmarks/eval_batch.py``
measures the baseline's batching. Calibration draws a 25 % calibration split (seed 0) and evaluates the rest.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from speechgap.evaluation.run import DEFAULT_BATCH_SIZE, EvalSettings
from speechgap.interventions import InterventionSettings, run_intervention
from speechgap.io import read_jsonl
from speechgap.mini import default_model_path
from speechgap.mini.evalset import fixed_eval_set
from speechgap.models import load_model


def _answers(folder: Path, method: str) -> dict[str, str]:
    return {r["id"]: r["response"] for _, r in read_jsonl(folder / method / "results.jsonl")}


def _plans(folder: Path, method: str) -> dict[str, dict]:
    return {r["id"]: r for _, r in read_jsonl(folder / method / "plans.jsonl")}


def _same_choices(one: dict[str, dict], other: dict[str, dict]) -> bool:
    """Every plan's choices equal (frames, tokens, positions ...); path scores may differ in the last logged
    decimal, since a batched capture equals one sample's up to float rounding."""
    drop = ("scores",)
    return one.keys() == other.keys() and all(
        {k: v for k, v in one[i].items() if k not in drop}
        == {k: v for k, v in other[i].items() if k not in drop}
        for i in one
    )


def _resumable_copy(warm: Path, out: Path, method: str) -> None:
    """``warm`` without its treated run and comparison: the baseline and statistics stay (resumed)."""
    shutil.copytree(warm, out, ignore=shutil.ignore_patterns("comparison.json"))
    for path in (out / method).iterdir():
        if not path.name.startswith("stats-"):  # calibration keeps its statistics there
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--methods", default="angle,calibration")
    args = parser.parse_args()
    settings = InterventionSettings(baseline_text=False, calibration_fraction=0.25, split_seed=0)
    with tempfile.TemporaryDirectory(prefix="speechgap-intervene-batch-") as tmp:
        root = Path(tmp)
        data = fixed_eval_set(args.questions, seed=0, out_dir=root / "pairs")
        model = load_model(default_model_path(), protocol="instructed")
        for method in args.methods.split(","):
            warm = root / f"{method}-warm"  # the baseline (and statistics) every timed run resumes
            run_intervention(
                model, data, method, warm, settings, EvalSettings(max_new_tokens=8), progress=False
            )
            times: dict[int, list[float]] = {1: [], DEFAULT_BATCH_SIZE: []}
            answers: dict[int, dict[str, str]] = {}
            plans: dict[int, dict[str, dict]] = {}
            for k in range(args.repeats):
                for size in times:
                    out = root / f"{method}-b{size}-{k}"
                    _resumable_copy(warm, out, method)
                    evaluation = EvalSettings(max_new_tokens=8, batch_size=size)
                    start = time.perf_counter()
                    run_intervention(model, data, method, out, settings, evaluation, progress=False)
                    times[size].append(time.perf_counter() - start)
                    answers[size], plans[size] = _answers(out, method), _plans(out, method)
            one, batched = statistics.median(times[1]), statistics.median(times[DEFAULT_BATCH_SIZE])
            n = len(answers[1])
            same_answers = answers[1] == answers[DEFAULT_BATCH_SIZE]
            identical_plans = plans[1] == plans[DEFAULT_BATCH_SIZE]
            same_choices = _same_choices(plans[1], plans[DEFAULT_BATCH_SIZE])
            print(f"{method}: {n} treated answers: batch 1 {one:.2f} s ({n / one:.0f}/s), default batch "
                  f"{DEFAULT_BATCH_SIZE} {batched:.2f} s ({n / batched:.0f}/s): {one / batched:.2f}x; "
                  f"same answers: {same_answers}; same plans: {same_choices} (logged lines identical: "
                  f"{identical_plans})")  # fmt: skip


if __name__ == "__main__":
    main()
