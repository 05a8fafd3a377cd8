"""Cost of paper 3's diagnostics against today's ``speechgap analyze``, on the embedded default.

Runs ``analyze`` on the first N held-out questions of the mini task with the shipped default model, once
without and once with ``diagnostics=True`` (each into a fresh folder, figures on), and prints both wall times
and their ratio. Target: the run with diagnostics takes at most 2x the run without (issue 15).

    python benchmarks/diagnostics_cost.py [--questions 64] [--repeats 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from speechgap.analysis import AnalysisSettings, analyze
from speechgap.mini import default_model_path
from speechgap.mini.evalset import fixed_eval_set
from speechgap.models import load_model


def _timed(model, data, folder: Path, diagnostics: bool) -> float:
    started = time.perf_counter()
    analyze((model, data), folder, AnalysisSettings(diagnostics=diagnostics))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    model = load_model(default_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = fixed_eval_set(args.questions, seed=0, out_dir=root / "pairs")
        _timed(model, data.select(range(2)), root / "warm", diagnostics=True)  # first-call costs
        plain, full = [], []
        for repeat in range(args.repeats):
            plain.append(_timed(model, data, root / f"plain{repeat}", diagnostics=False))
            full.append(_timed(model, data, root / f"full{repeat}", diagnostics=True))
    base, with_diagnostics = min(plain), min(full)
    print(f"embedded default ({model.num_layers} blocks), {len(data)} questions, best of {args.repeats}")
    print(f"analyze                    {base:8.2f} s")
    print(f"analyze --diagnostics all  {with_diagnostics:8.2f} s")
    print(f"ratio                      {with_diagnostics / base:8.2f}x   (target <= 2.00x)")


if __name__ == "__main__":
    main()
