"""The embedded zoo's study as a sweep, with 1 and with 2 workers: the speed-up, and identical results.

    .venv/bin/python benchmarks/sweep_speed.py [--questions 64] [--engine local|ray] [--out runs/sweep_speed]

The 8 speech checkpoints of the shipped mini zoo × the first N held-out questions × (eval, analyze) — what
``speechgap study`` runs — as one ``speechgap sweep``, first with one worker, then with two (each job one CPU
and one torch thread in both runs, so the second run differs only in running two jobs at once). Prints both
wall times, the speed-up, and whether every job's records, summaries, CKA matrices and the study are equal
between the two runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from speechgap.mini.evalset import fixed_eval_set
from speechgap.sweep import run_sweep

ZOO = Path(__file__).resolve().parents[1] / "src" / "speechgap" / "mini" / "checkpoints" / "zoo"


def _spec(folder: Path, manifest: Path) -> Path:
    spec = {
        "models": [{"zoo": str(ZOO)}],
        "data": [{"name": "mini", "spec": str(manifest)}],
        "resources": {"cpus": 1},
        # the settings of `speechgap study`
        "steps": [
            {"verb": "eval", "settings": {"max_new_tokens": 8, "batch_size": 16}},
            {"verb": "analyze", "settings": {"figures": False}},
        ],
    }
    path = folder / "sweep.json"
    path.write_text(json.dumps(spec))
    return path


def _without_provenance(path: Path) -> dict:
    record = json.loads(path.read_text())
    record.pop("provenance", None)
    return record


def _same(a: Path, b: Path) -> list[str]:
    """The files that differ between two sweep folders (provenance and timing left out)."""
    different = []
    for job in sorted((a / "jobs").glob("*/*/*")):
        other = b / job.relative_to(a)
        for name in ("results.jsonl", "samples.jsonl"):
            if (job / name).is_file() and (job / name).read_text() != (other / name).read_text():
                different.append(str(job / name))
        if _without_provenance(job / "summary.json") != _without_provenance(other / "summary.json"):
            different.append(str(job / "summary.json"))
        if (job / "cka.npy").is_file() and not np.array_equal(
            np.load(job / "cka.npy"), np.load(other / "cka.npy")
        ):
            different.append(str(job / "cka.npy"))
    study_a, study_b = (_without_provenance(x / "study" / "mini" / "study.json") for x in (a, b))
    if study_a != study_b:
        different.append("study/mini/study.json")
    return different


def _study_in_one_process(out: Path, data) -> float:
    """The same evaluations and analyses as ``speechgap study`` runs them: one process, one after another."""
    import torch

    from speechgap.study import StudySettings, run_study

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        start = time.perf_counter()
        run_study(ZOO, data, out / "study", StudySettings(max_new_tokens=8, batch_size=16), progress=False)
        return time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=64)
    parser.add_argument("--engine", choices=("local", "ray"), default="local")
    parser.add_argument("--out", default="runs/sweep_speed")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    data = fixed_eval_set(args.questions, seed=0, out_dir=out / "pairs")
    spec = _spec(out, out / "pairs" / "manifest.jsonl")
    print(f"{len(data)} questions x 8 checkpoints x (eval, analyze) = 16 jobs, engine {args.engine}")
    times = {}
    for workers in (1, 2):
        start = time.perf_counter()
        result = run_sweep(
            spec, out / f"workers{workers}", engine=args.engine, workers=workers, progress=False
        )
        times[workers] = time.perf_counter() - start
        if result.failed:
            raise SystemExit(f"jobs failed: {result.format()}")
        jobs = sum(status.duration_s or 0 for status in result.jobs)
        print(f"{workers} worker(s): {times[workers]:7.1f} s wall ({jobs:.1f} s in the jobs)")
    different = _same(out / "workers1", out / "workers2")
    study_s = _study_in_one_process(out, data)
    print(f"for reference, `speechgap study` in this process (1 torch thread): {study_s:7.1f} s")
    print(
        f"speed-up with 2 workers: {times[1] / times[2]:.2f}x (vs the one-process study: {study_s / times[2]:.2f}x)"
    )
    print(
        "results identical: "
        + ("yes (records, summaries, CKA, study)" if not different else f"NO: {different}")
    )
    print(result.studies["mini"].format())


if __name__ == "__main__":
    main()
