"""``speechgap analyze`` today against the code before batching, and at batch size 1, in the same run.

    .venv/bin/python benchmarks/analyze_batch.py [--questions 256] [--repeats 3] [--baseline d4c8adf]

The embedded default on the first N held-out questions (``fixed_eval_set``, the demo's questions): the
``analyze`` call of a notebook — model and data loaded, every output written (records, tables, CKA, figures,
sample views) — timed in a fresh process per run, interleaved, medians of ``--repeats``:

* ``baseline``: the speechgap source of ``--baseline`` (the last commit before captures were batched and
  path ranks computed without scipy), extracted with ``git archive`` and put first on ``PYTHONPATH``;
* ``batch 1``: this tree, one sample per capture pass;
* ``default``: this tree, ``AnalysisSettings()`` (the batch size ``auto_batch_size`` picks: 16 here).

It prints the ratios and the largest difference between the baseline's outputs and the default's over every
number of ``samples.jsonl`` (relative to ``max(1, |value|)``: distances are ~10-100) and ``cka.npy``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

RUNNER = """
import json, sys, time
from pathlib import Path
from speechgap.analysis import AnalysisSettings, analyze
from speechgap.mini.evalset import fixed_eval_set
from speechgap.models import load_model
model_dir, pairs, n, out, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
data = fixed_eval_set(n, seed=0, out_dir=pairs)
model = load_model(model_dir, protocol="instructed")
settings = AnalysisSettings() if batch == "default" else AnalysisSettings(batch_size=int(batch))
start = time.perf_counter()
analyze((model, data), out, settings, progress=False)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def _numbers(record: object, prefix: str = "") -> dict[str, float]:
    """Every number of a JSON record, by its path (lists and nested objects flattened)."""
    if isinstance(record, bool) or record is None or isinstance(record, str):
        return {}
    if isinstance(record, (int, float)):
        return {prefix: float(record)}
    items = record.items() if isinstance(record, dict) else enumerate(record)
    out: dict[str, float] = {}
    for key, value in items:
        out.update(_numbers(value, f"{prefix}/{key}"))
    return out


def _largest_difference(a: Path, b: Path) -> tuple[float, bool]:
    """Largest relative difference over every number of ``samples.jsonl`` and ``cka.npy``; same keys?"""
    rows_a = [_numbers(json.loads(line)) for line in (a / "samples.jsonl").read_text().splitlines()]
    rows_b = [_numbers(json.loads(line)) for line in (b / "samples.jsonl").read_text().splitlines()]
    same_keys = len(rows_a) == len(rows_b) and all(
        x.keys() == y.keys() for x, y in zip(rows_a, rows_b, strict=False)
    )
    worst = 0.0
    for x, y in zip(rows_a, rows_b, strict=False):
        for key in x.keys() & y.keys():
            if np.isfinite(x[key]) or np.isfinite(y[key]):
                worst = max(worst, abs(x[key] - y[key]) / max(1.0, abs(x[key])))
    worst = max(worst, float(np.nanmax(np.abs(np.load(a / "cka.npy") - np.load(b / "cka.npy")))))
    return worst, same_keys


def _extract(revision: str, into: Path) -> Path:
    """The speechgap package of ``revision`` (without its checkpoints) under ``into/src``."""
    archive = subprocess.run(
        ["git", "archive", revision, "src/speechgap", ":(exclude)src/speechgap/mini/checkpoints"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def _run(source: Path, model_dir: Path, pairs: Path, n: int, out: Path, batch: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(source), "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, str(model_dir), str(pairs), str(n), str(out), batch],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--baseline", default="d4c8adf", help="git revision of the code before (default d4c8adf)"
    )
    args = parser.parse_args()
    from speechgap.mini import default_model_path
    from speechgap.mini.evalset import fixed_eval_set

    with tempfile.TemporaryDirectory(prefix="speechgap-analyze-") as tmp:
        root = Path(tmp)
        fixed_eval_set(args.questions, seed=0, out_dir=root / "pairs")  # synthesized once, outside the timing
        sources = {"baseline": _extract(args.baseline, root / "baseline"), "current": ROOT / "src"}
        runs = {
            "baseline": ("baseline", "default"),
            "batch 1": ("current", "1"),
            "default": ("current", "default"),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for k in range(args.repeats):
            for name, (tree, batch) in runs.items():
                out = root / f"{name.replace(' ', '')}-{k}"
                times[name].append(
                    _run(sources[tree], default_model_path(), root / "pairs", args.questions, out, batch)
                )
        median = {name: statistics.median(values) for name, values in times.items()}
        worst, same_keys = _largest_difference(root / "baseline-0", root / "default-0")
        print(
            f"analyze, {args.questions} questions, medians of {args.repeats}: baseline ({args.baseline}) "
            f"{median['baseline']:.2f} s, batch 1 {median['batch 1']:.2f} s, default {median['default']:.2f} s"
        )
        print(f"default vs baseline {median['baseline'] / median['default']:.2f}x, "
              f"default vs batch 1 {median['batch 1'] / median['default']:.2f}x; same records: {same_keys}, "
              f"largest relative difference to the baseline {worst:.1e}")  # fmt: skip


if __name__ == "__main__":
    main()
