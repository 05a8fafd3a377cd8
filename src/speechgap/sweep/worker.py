"""The local engine's worker process: ``python -m speechgap.sweep.worker --serve SWEEP_DIR``.

It reads one request per line on its standard input — ``{"job": JOB.json, "outcome": OUTCOME.json, "log":
LOG}`` — runs the job (:func:`speechgap.sweep.job.run_job`) with its output going to the job's log, writes the
outcome atomically, and waits for the next line; it ends at the end of its input. A worker that is killed
writes no outcome, and the engine reports its job lost."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def _output_to(log: str) -> Iterator[None]:
    """Send this process's stdout and stderr (Python's and the C libraries') to ``log`` for a while."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"--- start {time.strftime('%Y-%m-%d %H:%M:%S')} (pid {os.getpid()})\n")
        handle.flush()
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def main(argv: list[str] | None = None) -> int:
    from speechgap.io import atomic_write_json
    from speechgap.sweep.job import run_job

    arguments = argv if argv is not None else sys.argv[1:]
    if len(arguments) != 2 or arguments[0] != "--serve":
        print("usage: python -m speechgap.sweep.worker --serve SWEEP_DIR", file=sys.stderr)
        return 2
    sweep_dir = arguments[1]
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        record = json.loads(Path(request["job"]).read_text(encoding="utf-8"))
        with _output_to(request["log"]):
            outcome = run_job(record, sweep_dir)
        atomic_write_json(request["outcome"], outcome.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
