"""What saving every sample's explorer view (per-layer matrices, argmax and DTW paths) adds to ``analyze``.

    .venv/bin/python benchmarks/sample_views_cost.py [--questions 64] [--repeats 3]

The embedded default on the first N held-out questions, figures off: medians of interleaved runs with
``sample_views=False`` (the analysis before the explorer) and ``True`` (the default), the ratio, the views'
size on disk, and whether every other output (samples, CKA) is the same.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from speechgap.analysis import AnalysisSettings, analyze
from speechgap.mini import default_model_path
from speechgap.mini.evalset import fixed_eval_set
from speechgap.models import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="speechgap-views-") as tmp:
        root = Path(tmp)
        data = fixed_eval_set(args.questions, seed=0, out_dir=root / "pairs")
        model = load_model(default_model_path(), protocol="instructed")
        analyze((model, data), root / "warm", AnalysisSettings(figures=False))
        times: dict[bool, list[float]] = {False: [], True: []}
        for k in range(args.repeats):
            for views in (False, True) if k % 2 else (True, False):
                start = time.perf_counter()
                analyze(
                    (model, data), root / f"{views}-{k}", AnalysisSettings(figures=False, sample_views=views)
                )
                times[views].append(time.perf_counter() - start)
        off, on = statistics.median(times[False]), statistics.median(times[True])
        size = sum(p.stat().st_size for p in (root / "True-0" / "views").glob("*.npz"))
        same = (root / "False-0" / "samples.jsonl").read_text() == (
            root / "True-0" / "samples.jsonl"
        ).read_text()
        same &= np.array_equal(np.load(root / "False-0" / "cka.npy"), np.load(root / "True-0" / "cka.npy"))
        print(f"analyze, {len(data)} questions: without views {off:.2f} s, with views {on:.2f} s "
              f"({on / off:.2f}x the time; views {size / 1e3:.0f} kB); other outputs identical: {same}")  # fmt: skip


if __name__ == "__main__":
    main()
