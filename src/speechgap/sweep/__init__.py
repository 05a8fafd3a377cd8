"""Sweeps: many models × datasets × steps as one run, on worker processes or a Ray cluster (docs/scale.md).

    >>> import speechgap
    >>> result = speechgap.run_sweep("sweep.yaml", "runs/sweep", engine="ray", address="auto")
    >>> result.to_frame()          # one row per job: status, time, host, headline figures

:func:`~speechgap.sweep.spec.load_spec` reads and checks a spec, :func:`~speechgap.sweep.spec.expand` lists
its jobs, :func:`~speechgap.sweep.run.run_sweep` runs them.
"""

from speechgap.sweep.run import JobStatus, SweepResult, run_sweep
from speechgap.sweep.spec import Job, Resources, SweepSpec, expand, load_spec, parse_spec

__all__ = [
    "Job",
    "JobStatus",
    "Resources",
    "SweepResult",
    "SweepSpec",
    "expand",
    "load_spec",
    "parse_spec",
    "run_sweep",
]
