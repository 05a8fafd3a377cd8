"""DTW speed: speechgap's ``dtw_path`` against librosa's ``sequence.dtw``, a pure-Python program and numpy.

Usage:
    .venv/bin/python benchmarks/dtw_speed.py [--sizes 1500x300 500x100 3000x600] [--repeats 21]

All solve the same problem (steps (1,0), (0,1), (1,1), unweighted, cost = 1 − similarity) on one seeded
random ``(T_s, T_t)`` similarity matrix per size. Times are medians of ``--repeats`` runs, the methods
interleaved round-robin so that load from other processes hits them alike; the first (compiling) call of
each is not timed. speechgap is timed from the similarity matrix, everything included (checks, cost,
trace-back, the returned array); librosa gets its cost matrix ready-made, outside the timing.

librosa's default step order is ``[(1,1), (0,1), (1,0)]`` and it keeps the first of equally cheap steps, so
on a tie it advances its *second* axis before its first; speechgap advances speech (the first axis) before
text. Calling ``librosa.sequence.dtw(C=cost.T, backtrack=True)`` (the transposed cost, made C-contiguous;
default steps, weights and ``subseq=False``) and reading its path reversed with the columns swapped,
``wp[::-1, ::-1]``, gives the same tie order; paths can then still differ where librosa's ``min(a + c, b + c)``
rounds two different predecessors ``a < b`` to a tie that speechgap's ``min(a, b) + c`` does not see.
librosa is a benchmark-only extra (``pip install librosa``), not a speechgap dependency; when it is missing
the script says so and compares against the pure-Python program only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from speechgap.metrics import dtw_path


def python_dtw(cost: list[list[float]]) -> np.ndarray:
    """Cell-by-cell dynamic program in plain Python, same tie order as speechgap (diagonal, up, left)."""
    rows, cols = len(cost), len(cost[0])
    total = [[0.0] * cols for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            if i == 0 and j == 0:
                total[i][j] = cost[i][j]
            elif i == 0:
                total[i][j] = total[i][j - 1] + cost[i][j]
            elif j == 0:
                total[i][j] = total[i - 1][j] + cost[i][j]
            else:
                total[i][j] = min(total[i - 1][j - 1], total[i - 1][j], total[i][j - 1]) + cost[i][j]
    i, j = rows - 1, cols - 1
    path = [(i, j)]
    while i > 0 or j > 0:
        if i == 0:
            j -= 1
        elif j == 0:
            i -= 1
        else:
            diagonal, up, left = total[i - 1][j - 1], total[i - 1][j], total[i][j - 1]
            if diagonal <= up and diagonal <= left:
                i, j = i - 1, j - 1
            elif up <= left:
                i -= 1
            else:
                j -= 1
        path.append((i, j))
    return np.array(path[::-1], dtype=np.int64)


def parse_size(text: str) -> tuple[int, int]:
    frames, tokens = text.lower().split("x")
    return int(frames), int(tokens)


def median_times(methods: dict, repeats: int) -> dict[str, float]:
    """Median seconds per method over ``repeats`` interleaved rounds."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeats):
        for name, function in methods.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        type=parse_size,
        default=[(1500, 300), (500, 100), (3000, 600)],
        help="T_s x T_t matrix sizes (speech frames x text tokens)",
    )
    parser.add_argument("--repeats", type=int, default=21, help="timed rounds per size (median kept)")
    parser.add_argument("--no-python", action="store_true", help="skip the (slow) pure-Python program")
    args = parser.parse_args()

    try:
        import librosa
    except ImportError:
        librosa = None
        print("librosa: NOT INSTALLED - no librosa comparison (pip install librosa into .venv to add it)")

    rng = np.random.default_rng(0)
    warm = np.tanh(rng.normal(size=(50, 20)))
    dtw_path(warm)  # numba compiles (or loads its cache) on the first call: not timed
    if librosa is not None:
        librosa.sequence.dtw(C=1.0 - warm, backtrack=True)

    all_equal = True
    for frames, tokens in args.sizes:
        sim = np.tanh(rng.normal(size=(frames, tokens)))
        cost_transposed = np.ascontiguousarray((1.0 - sim).T)
        methods = {
            "speechgap": lambda sim=sim: dtw_path(sim),
            "speechgap-numpy": lambda sim=sim: dtw_path(sim, backend="numpy"),
        }
        if librosa is not None:
            methods["librosa"] = lambda cost=cost_transposed: librosa.sequence.dtw(C=cost, backtrack=True)
        median = median_times(methods, args.repeats)

        ours = dtw_path(sim)
        print(f"DTW on {frames} x {tokens} (median of {args.repeats} interleaved runs)")
        print(
            f"  speechgap.metrics.dtw_path         {median['speechgap'] * 1e3:9.3f} ms   path length {len(ours)}"
        )
        numpy_equal = np.array_equal(dtw_path(sim, backend="numpy"), ours)
        all_equal &= numpy_equal
        print(
            f"  same, backend='numpy'              {median['speechgap-numpy'] * 1e3:9.3f} ms   "
            f"same path: {'yes' if numpy_equal else 'NO'}"
        )
        if librosa is not None:
            _, warping_path = librosa.sequence.dtw(C=cost_transposed, backtrack=True)
            librosa_equal = np.array_equal(warping_path[::-1, ::-1], ours)
            all_equal &= librosa_equal
            _, default_path = librosa.sequence.dtw(C=1.0 - sim, backtrack=True)
            print(
                f"  librosa {librosa.__version__} sequence.dtw(C=cost.T) {median['librosa'] * 1e3:9.3f} ms   "
                f"same path: {'yes' if librosa_equal else 'NO'} "
                f"(default orientation C=cost: {'yes' if np.array_equal(default_path[::-1], ours) else 'no'})"
            )
            print(
                f"  -> speechgap is {median['librosa'] / median['speechgap']:.2f}x the speed of librosa (>1 = faster)"
            )
        if not args.no_python:
            start = time.perf_counter()
            python_path = python_dtw((1.0 - sim).tolist())
            python_seconds = time.perf_counter() - start
            python_equal = np.array_equal(python_path, ours)
            all_equal &= python_equal
            print(
                f"  pure-Python DP (1 run)             {python_seconds * 1e3:9.3f} ms   "
                f"same path: {'yes' if python_equal else 'NO'}"
            )
            print(
                f"  -> speechgap is {python_seconds / median['speechgap']:.0f}x faster than the pure-Python DP"
            )
    return 0 if all_equal else 1


if __name__ == "__main__":
    sys.exit(main())
