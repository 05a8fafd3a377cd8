"""Running one job of a sweep, wherever it runs: a local worker process or a Ray task.

:func:`run_job` calls the job's verb of :mod:`speechgap.api` (or merges a sharded run) and returns a
:class:`JobOutcome`. It never raises: a bad setting or bad data (a :class:`~speechgap.errors.SpeechgapError`,
or any other exception) is ``failed`` — deterministic, reported once and not retried — and running out of
memory is ``crashed``, which the sweep retries. A worker killed outright returns nothing; the engine sees
the lost task and runs it again, and the verb resumes from what the job's folder already holds.
"""

from __future__ import annotations

import json
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from speechgap.errors import SpeechgapError
from speechgap.sweep.spec import Job

STATE_DIR = ".sweep"
"""The sweep's bookkeeping inside its folder: ``attempts/<job>.jsonl`` (one line per start of a job)."""

RECORD_FILES = {
    "eval": ("results.jsonl",),
    "analyze": ("samples.jsonl",),
    "intervene": ("*/results.jsonl", "redundancy/*/results.jsonl"),
    "compress": ("*/results.jsonl",),
}
"""Where each verb appends one line per finished record (counted for the progress view)."""

DONE_FILES = {
    "eval": "summary.json",
    "analyze": "summary.json",
    "intervene": "comparison.json",
    "compress": "compression.json",
}
"""The file a verb writes last: its presence marks a finished job folder."""


@dataclass
class JobOutcome:
    """How one attempt of a job ended.

    Attributes:
        id: the job's id.
        status: ``"done"``, ``"failed"`` (deterministic: not retried) or ``"crashed"`` (retried).
        error: the error message (failed, crashed).
        traceback: the traceback of an unexpected exception (not of a SpeechgapError, whose message says it).
        host, pid: where it ran.
        started, finished: Unix times.
    """

    id: str
    status: str
    error: str | None = None
    traceback: str | None = None
    host: str = ""
    pid: int = 0
    started: float = 0.0
    finished: float = 0.0

    @property
    def duration_s(self) -> float:
        return self.finished - self.started

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "duration_s": round(self.duration_s, 3)}


def safe_name(job_id: str) -> str:
    """A job id as one file name (``model/data/step#1-of-3`` → ``model__data__step#1-of-3``)."""
    return job_id.replace("/", "__")


def attempts_file(sweep_dir: str | Path, job_id: str) -> Path:
    return Path(sweep_dir) / STATE_DIR / "attempts" / f"{safe_name(job_id)}.jsonl"


def read_attempts(sweep_dir: str | Path, job_id: str) -> list[dict[str, Any]]:
    """The starts of a job so far (host, pid, time), oldest first."""
    path = attempts_file(sweep_dir, job_id)
    if not path.is_file():
        return []
    starts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            starts.append(json.loads(line))
        except ValueError:  # a line torn by a kill between write and newline
            continue
    return starts


def count_records(verb: str, out_dir: str | Path) -> int:
    """Records the job's folder holds so far (lines of its append-only record files)."""
    folder = Path(out_dir)
    total = 0
    for pattern in RECORD_FILES[verb]:
        for path in folder.glob(pattern):
            try:
                with open(path, "rb") as handle:
                    total += sum(chunk.count(b"\n") for chunk in iter(lambda h=handle: h.read(1 << 20), b""))
            except OSError:
                continue
    return total


def is_finished(job: Job) -> bool:
    return (Path(job.out_dir) / DONE_FILES[job.verb]).is_file()


def run_job(record: dict[str, Any], sweep_dir: str) -> JobOutcome:
    """Run one job (its :meth:`Job.to_json`) and return its :class:`JobOutcome`.

    The start is appended to ``sweep_dir/.sweep/attempts/<job>.jsonl`` (host, pid) first, so that the
    sweep knows where a running job is, and how often it was started."""
    job = Job.from_json(record)
    outcome = JobOutcome(job.id, "done", host=socket.gethostname(), pid=os.getpid(), started=time.time())
    earlier = read_attempts(sweep_dir, job.id)
    _note_start(sweep_dir, job, outcome)
    try:
        _release_lost_lock(job, earlier)
        _set_threads(job)
        _run(job)
    except SpeechgapError as err:
        outcome.status, outcome.error = "failed", str(err)
    except MemoryError as err:
        outcome.status, outcome.error = "crashed", f"out of memory: {err}"
    except Exception as err:  # anything else is this job's own failure, reported with its traceback
        if type(err).__name__ == "OutOfMemoryError":  # torch.OutOfMemoryError (GPU), without importing torch
            outcome.status, outcome.error = "crashed", f"out of memory: {str(err).splitlines()[0]}"
        else:
            outcome.status, outcome.error = "failed", f"{type(err).__name__}: {err}"
            outcome.traceback = traceback.format_exc()
    outcome.finished = time.time()
    return outcome


def _note_start(sweep_dir: str, job: Job, outcome: JobOutcome) -> None:
    path = attempts_file(sweep_dir, job.id)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"host": outcome.host, "pid": outcome.pid, "started": outcome.started})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def _release_lost_lock(job: Job, earlier: list[dict[str, Any]]) -> None:
    """Take back the job folder's lock from an earlier attempt of this job on another host.

    A lock whose owner ran on this host is judged by :class:`~speechgap.io.RunLock` itself (is the pid
    alive?). One left on another node cannot be checked from here; when it names an earlier attempt of this
    very job, the engine has already reported that attempt lost (its worker or node died) and is running the
    job again, so the lock is stale."""
    from speechgap.io import LOCK_FILE

    path = Path(job.out_dir) / LOCK_FILE
    try:
        owner = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(owner, dict) or owner.get("host") == socket.gethostname():
        return
    if any(a.get("host") == owner.get("host") and a.get("pid") == owner.get("pid") for a in earlier):
        path.unlink(missing_ok=True)


def _set_threads(job: Job) -> None:
    import torch

    torch.set_num_threads(max(1, int(job.resources.get("cpus") or 1)))


def _run(job: Job) -> None:
    import speechgap.api as api

    if job.kind == "merge":
        _merge(job)
        return
    settings = dict(job.settings)
    if job.verb == "eval" and isinstance(settings.get("judge"), dict):
        from speechgap.scoring import Judge, JudgeConfig

        settings["judge"] = Judge(JudgeConfig(**settings["judge"]))
    from speechgap.sweep.spec import verb_arguments

    accepted = verb_arguments(job.verb)
    loading = {key: value for key, value in job.model["settings"].items() if key in accepted}
    if job.resources.get("gpus") and "device" in accepted and "device" not in {**loading, **settings}:
        loading["device"] = "cuda"  # the engine gave this task its GPU(s): CUDA_VISIBLE_DEVICES names them
    arguments = {**loading, **settings}
    if job.shard is not None:
        arguments["shard"] = tuple(job.shard)
    model, data, out_dir = job.model["path"], job.data["spec"], job.out_dir
    if job.verb == "eval":
        api.evaluate(model, data, out_dir, **arguments)
    elif job.verb == "analyze":
        api.analyze(model, data, out_dir, eval_dir=job.eval_dir, **arguments)
    elif job.verb == "intervene":
        method = arguments.pop("method")
        api.intervene(model, data, method, out_dir, **arguments)
    else:
        api.compress(model, data, out_dir, **arguments)


def _merge(job: Job) -> None:
    if job.verb == "eval":
        from speechgap.data.load import load_pairs
        from speechgap.evaluation.shards import merge_eval_shards

        data = load_pairs(job.data["spec"]).limit(job.settings.get("limit"))
        merge_eval_shards(job.shard_dirs, job.out_dir, data)
        if isinstance(job.settings.get("judge"), dict):
            _merge_judged(job)
    else:
        from speechgap.analysis.shards import merge_analysis_shards

        merge_analysis_shards(
            job.shard_dirs,
            job.out_dir,
            eval_dir=job.eval_dir,
            figures=bool(job.settings.get("figures", True)),
        )


def _merge_judged(job: Job) -> None:
    """Judge-scored shards: their verdict caches into the merged folder, then one scoring pass with the
    judge, as ``speechgap.evaluate(..., judge=...)`` ends; every verdict is found in the caches, so the judge
    is not asked again and the records equal the unsharded run's."""
    from speechgap.evaluation.report import JUDGE_CACHE, score_run
    from speechgap.io import atomic_write_text, dumps_record, read_jsonl
    from speechgap.scoring import Judge, JudgeConfig

    verdicts: dict[str, dict[str, Any]] = {}
    for folder in job.shard_dirs:
        path = Path(folder) / JUDGE_CACHE
        if path.is_file():
            for _, verdict in read_jsonl(path):
                verdicts.setdefault(verdict["key"], verdict)
    target = Path(job.out_dir) / JUDGE_CACHE
    atomic_write_text(target, "".join(dumps_record(v) + "\n" for v in verdicts.values()))
    score_run(job.out_dir, judge=Judge(JudgeConfig(**job.settings["judge"])))
