"""``speechgap sweep``: every job of a spec, on worker processes or a Ray cluster, resumable.

The driver expands the spec into jobs (:func:`~speechgap.sweep.spec.expand`), starts each job once the jobs
it needs are done (a shard merge after its shards, an analysis after the evaluation whose answers it joins),
and records every job's settings, status, attempts (host, pid), duration, records and error in
``OUT/sweep.json``, rewritten atomically at every change. A job that fails for a deterministic reason is
reported once and the others go on; a job whose worker dies is run again and resumes from its folder.
Running the same sweep again skips the finished jobs (same settings, folder complete). At the end it
writes the table across all jobs, the zoo study per dataset where eval and analyze both ran, and
``OUT/report.html`` (:mod:`speechgap.sweep.summary`).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechgap.errors import ConfigError, DataError
from speechgap.io import RunLock, atomic_write_json, prepare_out_dir, read_json, remove_stale_temp_files
from speechgap.provenance import provenance
from speechgap.sweep.engines import Engine, Finished, check_engine, make_engine
from speechgap.sweep.job import count_records, is_finished, read_attempts
from speechgap.sweep.spec import Job, SweepSpec, expand, load_spec

SWEEP_FILE = "sweep.json"
STATUSES = ("pending", "running", "done", "failed", "skipped")
PROGRESS_EVERY_S = 10.0


@dataclass
class JobStatus:
    """One job's state in ``sweep.json``.

    Attributes:
        id, kind, verb, model, data, step, shard: what the job is (:class:`~speechgap.sweep.spec.Job`).
        out_dir: its folder.
        settings: the verb's settings; ``call`` the same run as one Python call, to repeat it by hand.
        status: ``pending``, ``running``, ``done``, ``failed`` or ``skipped`` (a job it needs failed).
        reused: done by an earlier run of the sweep (not run again).
        attempts: every start of the job: host, pid, time.
        host: where it last ran; ``duration_s`` its last attempt's run time.
        error: why it failed (the verb's own message), or why it was run again.
        records: records its folder holds (lines of its record files).
        report_error: why the job's own report page could not be built (None: it was, or it has none).
        key: hash of its definition (a changed spec does not reuse a folder's "done").
    """

    id: str
    kind: str
    verb: str
    model: str
    data: str
    step: str
    out_dir: str
    settings: dict[str, Any]
    call: str
    key: str
    shard: list[int] | None = None
    status: str = "pending"
    reused: bool = False
    attempts: list[dict[str, Any]] = field(default_factory=list)
    host: str | None = None
    started: float | None = None
    finished: float | None = None
    duration_s: float | None = None
    error: str | None = None
    traceback: str | None = None
    retried: list[str] = field(default_factory=list)
    records: int = 0
    report_error: str | None = None


@dataclass
class SweepResult:
    """What :func:`run_sweep` (``speechgap.sweep``) did.

    Attributes:
        out_dir: the sweep folder.
        jobs: one :class:`JobStatus` per job (shards included), in the order of the spec.
        record: the content of ``sweep.json``.
        studies: dataset name → :class:`~speechgap.study.StudyResult` (datasets where eval and analyze ran).
        report: ``OUT/report.html``.
    """

    out_dir: Path
    jobs: list[JobStatus]
    record: dict[str, Any]
    studies: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None

    def counts(self) -> dict[str, int]:
        """Jobs per status (shards counted as jobs)."""
        return {status: sum(1 for j in self.jobs if j.status == status) for status in STATUSES}

    @property
    def failed(self) -> list[JobStatus]:
        return [j for j in self.jobs if j.status in ("failed", "skipped")]

    def job(self, job_id: str) -> JobStatus:
        for status in self.jobs:
            if status.id == job_id:
                return status
        raise ConfigError(f"argument 'job_id': no job {job_id!r} in {self.out_dir}")

    def to_json(self) -> dict[str, Any]:
        return self.record

    def to_frame(self) -> Any:
        """One row per job (shards left out): its status and headline figures (``OUT/table.csv``)."""
        from speechgap.sweep.summary import jobs_frame

        return jobs_frame(self.jobs)

    @classmethod
    def load(cls, out_dir: str | Path) -> SweepResult:
        """Reopen a sweep folder (finished or not)."""
        from speechgap.study import StudyResult

        out_dir = Path(out_dir)
        record = _read_record(out_dir)
        if record is None:
            raise ConfigError(f"{out_dir}: no {SWEEP_FILE}; run `speechgap sweep` there first")
        jobs = [JobStatus(**job) for job in record["jobs"]]
        studies = {name: StudyResult.load(out_dir / "study" / name) for name in record.get("studies", [])}
        report = out_dir / "report.html"
        return cls(out_dir, jobs, record, studies, report if report.is_file() else None)

    def format(self) -> str:
        counts = self.counts()
        lines = [
            f"{len(self.jobs)} jobs: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} not run"
            f" (a job they need failed), {counts['pending'] + counts['running']} unfinished"
        ]
        for job in self.failed:
            lines.append(f"  {job.status} {job.id}: {job.error}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"SweepResult({str(self.out_dir)!r})\n{self.format()}"


def run_sweep(
    spec: SweepSpec | str | Path,
    out_dir: str | Path,
    *,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    progress: bool = True,
    poll_s: float = 0.25,
) -> SweepResult:
    """Run every job of ``spec`` into ``out_dir`` (see the module docstring and docs/scale.md).

    Args:
        spec: a :class:`~speechgap.sweep.spec.SweepSpec` or the path of a YAML/JSON spec.
        out_dir: the sweep folder; running the same sweep there again skips its finished jobs.
        engine: ``"local"`` (worker processes on this machine) or ``"ray"``.
        workers: local: CPU slots (default: the cores); ray: CPUs of the local instance it starts.
        address: ray: the cluster to join (``"auto"``, ``"host:6379"``, ``"ray://host:10001"``).
        progress: print jobs as they start and end, and a status line every 10 s (to stderr).
        poll_s: how often the driver looks at the running jobs.

    Returns:
        :class:`SweepResult`.
    """
    check_engine(engine, workers=workers, address=address)
    if not isinstance(spec, SweepSpec):
        spec = load_spec(spec)
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="sweep"):
        remove_stale_temp_files(out_dir)
        jobs = expand(spec, out_dir)
        statuses = _initial_statuses(jobs, out_dir)
        runner = make_engine(engine, out_dir, workers=workers, address=address, retries=spec.retries)
        driver = _Driver(spec, jobs, statuses, runner, out_dir, progress, poll_s)
        try:
            driver.run()
        finally:
            driver.release_running()
            runner.close()
            driver.write()
        from speechgap.sweep.summary import write_summary

        summary = write_summary(out_dir, spec, jobs, statuses, driver.record())
        record = driver.write(studies=sorted(summary.studies))
        return SweepResult(out_dir, [statuses[j.id] for j in jobs], record, summary.studies, summary.report)


def _read_record(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / SWEEP_FILE
    if not path.is_file():
        return None
    record = read_json(path, what="sweep record")
    if not isinstance(record.get("jobs"), list):
        raise DataError("not a sweep record (no list of jobs)", path=path, field="jobs")
    return record


def _python_call(job: Job) -> str:
    """The job as one call of the Python API (what a user types to repeat it by hand)."""
    names = {"eval": "evaluate", "analyze": "analyze", "intervene": "intervene", "compress": "compress"}
    if job.kind == "merge":
        module = (
            "evaluation.shards.merge_eval_shards"
            if job.verb == "eval"
            else "analysis.shards.merge_analysis_shards"
        )
        return f"speechgap.{module}({job.shard_dirs!r}, {job.out_dir!r}, ...)"
    settings = dict(job.redacted().settings)
    arguments = [repr(job.model["path"]), repr(job.data["spec"])]
    if job.verb == "intervene":
        arguments.append(repr(settings.pop("method")))
    arguments.append(repr(job.out_dir))
    loading = dict(job.model["settings"])
    extra = {**loading, **settings}
    if job.eval_dir:
        extra["eval_dir"] = job.eval_dir
    if job.shard is not None:
        extra["shard"] = tuple(job.shard)
    arguments += [f"{key}={value!r}" for key, value in extra.items()]
    return f"speechgap.{names[job.verb]}({', '.join(arguments)})"


def _keys(jobs: list[Job]) -> dict[str, str]:
    """Each job's key, folded with the keys of the jobs it needs: an analysis that joins an evaluation's
    answers is not reused when the evaluation's settings changed."""
    keys: dict[str, str] = {}
    for job in jobs:  # expand lists the jobs a job needs before it
        content = json.dumps([job.key, *(keys[needed] for needed in job.after)])
        keys[job.id] = hashlib.sha256(content.encode()).hexdigest()[:16]
    return keys


def _initial_statuses(jobs: list[Job], out_dir: Path) -> dict[str, JobStatus]:
    earlier = {job["id"]: job for job in (_read_record(out_dir) or {"jobs": []})["jobs"]}
    by_id = {job.id: job for job in jobs}
    keys = _keys(jobs)
    statuses: dict[str, JobStatus] = {}
    for job in jobs:
        key = keys[job.id]
        statuses[job.id] = JobStatus(
            id=job.id, kind=job.kind, verb=job.verb, model=job.model["name"], data=job.data["name"],
            step=job.step, out_dir=job.out_dir, settings=job.redacted().settings, call=_python_call(job), key=key,
            shard=job.shard,
        )  # fmt: skip
        before = earlier.get(job.id)
        if before and before.get("status") == "done" and before.get("key") == key and is_finished(job):
            status = statuses[job.id]
            status.status, status.reused = "done", True
            for name in ("host", "started", "finished", "duration_s", "records"):
                setattr(status, name, before.get(name))
            status.attempts = read_attempts(out_dir, job.id)
    # a merged run that is complete does not need its shards again
    for job in jobs:
        if job.kind == "merge" and statuses[job.id].status == "done":
            for shard_id in job.after:
                shard = statuses[shard_id]
                if by_id[shard_id].shard is not None and shard.status != "done":
                    shard.status, shard.reused = "done", True
    return statuses


class _Driver:
    """The scheduling loop: start what is ready, collect what ended, retry what was lost."""

    def __init__(
        self,
        spec: SweepSpec,
        jobs: list[Job],
        statuses: dict[str, JobStatus],
        engine: Engine,
        out_dir: Path,
        progress: bool,
        poll_s: float,
    ) -> None:
        self.spec, self.jobs, self.statuses, self.engine = spec, jobs, statuses, engine
        self.by_id = {job.id: job for job in jobs}
        self.out_dir, self.progress, self.poll_s = out_dir, progress, poll_s
        self.started = time.time()
        self.retries_used: dict[str, int] = {}
        self._last_line = time.monotonic()
        self._engine = engine.describe()  # asked once: a Ray engine cannot answer after it shut down
        self._provenance = provenance(
            model=[m.name for m in spec.models], data=[d.name for d in spec.data],
            settings={"spec": spec.to_json(), **self._engine},
        )  # fmt: skip

    # ----------------------------------------------------------------------------------------- loop
    def run(self) -> None:
        pending = [job for job in self.jobs if self.statuses[job.id].status != "done"]
        reused = len(self.jobs) - len(pending)
        if self.progress:
            self._say(f"{len(self.jobs)} jobs, {reused} already done, engine {self.engine.name}")
        self.write()
        while pending or self.engine.running:
            changed = False
            for job in list(pending):
                state = self._readiness(job)
                if state == "wait":
                    continue
                pending.remove(job)
                changed = True
                if state != "go":
                    self._end(job.id, "skipped", error=state)
                    continue
                reason = self.engine.check(job)
                if reason is not None:
                    self._end(job.id, "failed", error=f"cannot run on this engine: {reason}")
                    continue
                if not self.engine.fits(job):
                    pending.insert(0, job)
                    break
                self._start(job)
            for finished in self.engine.wait(self.poll_s):
                changed = True
                retry = self._collect(finished)
                if retry is not None:
                    pending.insert(0, retry)
            if changed:
                self.write()
            self._tick()

    def _readiness(self, job: Job) -> str:
        """``"go"``, ``"wait"``, or why the job cannot run (a job it needs failed)."""
        for needed in job.after:
            status = self.statuses[needed]
            if status.status in ("failed", "skipped"):
                return f"not run: it needs {needed}, which {'failed' if status.status == 'failed' else 'was not run'}"
            if status.status != "done":
                return "wait"
        return "go"

    def _start(self, job: Job) -> None:
        status = self.statuses[job.id]
        status.status, status.started, status.error = "running", time.time(), None
        self.engine.submit(job)
        if self.progress:
            self._say(f"start  {job.id}")

    def _collect(self, finished: Finished) -> Job | None:
        job = self.by_id[finished.job_id]
        status = self.statuses[job.id]
        status.attempts = read_attempts(self.out_dir, job.id)
        status.records = count_records(job.verb, job.out_dir)
        outcome = finished.outcome
        if outcome is not None:
            status.host = outcome.get("host")
            status.duration_s = outcome.get("duration_s")
        if outcome is not None and outcome["status"] == "done":
            self._end(job.id, "done")
            return None
        if outcome is not None and outcome["status"] == "failed":
            status.traceback = outcome.get("traceback")
            self._end(job.id, "failed", error=outcome.get("error"))
            return None
        reason = finished.lost if outcome is None else outcome.get("error")
        used = self.retries_used.get(job.id, 0)
        # Ray re-runs a lost task itself (max_retries); what reaches here lost has used them up
        if (outcome is None and self.engine.name == "ray") or used >= self.spec.retries:
            tries = len(status.attempts) or used + 1
            self._end(job.id, "failed", error=f"lost {tries} time(s), last: {reason}")
            return None
        self.retries_used[job.id] = used + 1
        status.retried.append(str(reason))
        status.status = "pending"
        if self.progress:
            self._say(
                f"retry  {job.id} ({used + 1}/{self.spec.retries}): {reason}; it resumes from its folder"
            )
        return job

    def _end(self, job_id: str, state: str, *, error: str | None = None) -> None:
        status = self.statuses[job_id]
        status.status, status.error, status.finished = state, error, time.time()
        if state == "done":
            status.records = count_records(status.verb, status.out_dir)
        if self.progress:
            took = f"  {status.duration_s:.1f} s" if state == "done" and status.duration_s is not None else ""
            where = f"  on {status.host}" if state == "done" and status.host else ""
            detail = f": {error}" if error else ""
            self._say(f"{state:<6} {job_id}{took}{where}{detail}")

    # ------------------------------------------------------------------------------------- progress
    def _tick(self) -> None:
        if time.monotonic() - self._last_line < PROGRESS_EVERY_S:
            return
        self._last_line = time.monotonic()
        for job_id in self.engine.running:
            self.statuses[job_id].records = count_records(
                self.statuses[job_id].verb, self.statuses[job_id].out_dir
            )
        self.write()
        if self.progress:
            self._say(self.status_line())

    def status_line(self) -> str:
        counts = {state: 0 for state in STATUSES}
        for status in self.statuses.values():
            counts[status.status] += 1
        running = ", ".join(
            f"{job_id} {self.statuses[job_id].records} records" for job_id in self.engine.running
        )
        return (
            f"{counts['done']}/{len(self.statuses)} done, {counts['running']} running"
            + (f" ({running})" if running else "")
            + f", {counts['failed']} failed, {counts['skipped']} not run, {counts['pending']} waiting"
        )

    def _say(self, line: str) -> None:
        elapsed = time.time() - self.started
        print(f"sweep [{elapsed:7.1f} s] {line}", file=sys.stderr, flush=True)

    # --------------------------------------------------------------------------------------- record
    def record(self, studies: list[str] | None = None) -> dict[str, Any]:
        jobs = [asdict(self.statuses[job.id]) for job in self.jobs]
        counts = {state: sum(1 for j in jobs if j["status"] == state) for state in STATUSES}
        record = {
            "spec": self.spec.to_json(),
            "engine": self._engine,
            "started": self.started,
            "updated": time.time(),
            "counts": counts,
            "jobs": jobs,
            "provenance": self._provenance,
        }
        if studies is not None:
            record["studies"] = studies
        return record

    def release_running(self) -> None:
        """Mark the jobs still running (an interrupted sweep) as pending: the next run starts them again."""
        for job_id in self.engine.running:
            self.statuses[job_id].status = "pending"

    def write(self, *, studies: list[str] | None = None) -> dict[str, Any]:
        record = self.record(studies)
        atomic_write_json(self.out_dir / SWEEP_FILE, record)
        return record
