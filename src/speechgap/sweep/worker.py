"""The local engine's worker process: ``python -m speechgap.sweep.worker JOB.json OUTCOME.json SWEEP_DIR``.

Runs one job (:func:`speechgap.sweep.job.run_job`) and writes its outcome atomically; a worker that is
killed writes nothing, and the engine reports the job lost."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from speechgap.io import atomic_write_json
    from speechgap.sweep.job import run_job

    job_file, outcome_file, sweep_dir = argv if argv is not None else sys.argv[1:]
    record = json.loads(Path(job_file).read_text(encoding="utf-8"))
    atomic_write_json(outcome_file, run_job(record, sweep_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
