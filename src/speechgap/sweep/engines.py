"""Where a sweep's jobs run: worker processes on this machine, or tasks on a Ray cluster.

Both engines take a :class:`~speechgap.sweep.spec.Job` with :meth:`Engine.submit` and report what ended with
:meth:`Engine.wait`: a :class:`Finished` with the job's :class:`~speechgap.sweep.job.JobOutcome` (as a
dict), or with ``outcome=None`` and the reason when the worker was lost (killed, out of memory, node gone).

- :class:`LocalEngine` runs jobs in worker processes (``python -m speechgap.sweep.worker``), at most as
  many at once as the CPU and GPU slots allow: CPU jobs in long-lived workers that take one job after
  another; a GPU job in a fresh worker that sees only its GPUs (``CUDA_VISIBLE_DEVICES``) and exits after
  it, so two jobs never share a GPU and the GPU memory goes back when the job ends.
- :class:`RayEngine` runs each job as a Ray task with the step's ``num_cpus``, ``num_gpus`` and ``memory``;
  Ray queues what does not fit and re-runs a task whose worker died (``max_retries``). GPU tasks run in a
  fresh worker each time (Ray's default for them), so a model's GPU memory is freed with its task.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechgap.errors import ConfigError
from speechgap.sweep.job import STATE_DIR, safe_name
from speechgap.sweep.spec import Job

ENGINES = ("local", "ray")


@dataclass
class Finished:
    """A job whose task ended: its outcome (a :class:`~speechgap.sweep.job.JobOutcome` dict), or None
    with ``lost`` saying why the worker returned nothing."""

    job_id: str
    outcome: dict[str, Any] | None
    lost: str | None = None


class Engine:
    """What the sweep driver needs of an engine."""

    name = "engine"

    def fits(self, job: Job) -> bool:
        """Whether the job can start now (free slots; Ray queues by itself)."""
        return True

    def check(self, job: Job) -> str | None:
        """Why the job can never run here (None: it can)."""
        return None

    def submit(self, job: Job) -> None:
        raise NotImplementedError

    def wait(self, timeout: float) -> list[Finished]:
        raise NotImplementedError

    @property
    def running(self) -> list[str]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name}

    def close(self) -> None:
        """Stop what is still running (on an interrupted sweep) and let go of the engine."""


# ------------------------------------------------------------------------------------------------- local


def visible_gpus() -> list[str]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set, else every CUDA device torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [part.strip() for part in listed.split(",") if part.strip() and part.strip() != "-1"]
    try:
        import torch

        return [str(k) for k in range(torch.cuda.device_count())]
    except ImportError:  # pragma: no cover - torch is a dependency
        return []


@dataclass
class _Worker:
    """A worker process and the job it runs (None: idle, waiting on its stdin for the next one)."""

    process: subprocess.Popen
    gpus: list[str]
    one_shot: bool
    job: Job | None = None
    cpus: int = 0
    outcome_file: Path | None = None


class LocalEngine(Engine):
    """Worker processes on this machine.

    A job without GPUs runs in a long-lived worker (``python -m speechgap.sweep.worker --serve``), which takes
    the next job once it is done, so torch and transformers are imported once per worker, not per job; a job
    with GPUs runs in a fresh worker that sees only its GPUs (``CUDA_VISIBLE_DEVICES``) and exits after it,
    giving the GPU memory back. A worker that dies loses only its own job.

    Args:
        sweep_dir: the sweep's folder (job files, outcomes and logs go under it).
        workers: CPU slots (default: this machine's cores); a job takes ``ceil(cpus)`` of them, at most all.
        gpus: the GPUs jobs may take (default :func:`visible_gpus`, looked up when a job asks for one).
    """

    name = "local"

    def __init__(self, sweep_dir: str | Path, *, workers: int | None = None, gpus: list[str] | None = None):
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"argument 'workers' must be a whole number >= 1, got {workers!r}")
        self.sweep_dir = Path(sweep_dir)
        self.workers = workers or os.cpu_count() or 1
        self._gpus = gpus
        self._free_gpus: list[str] | None = None
        self._busy_cpus = 0
        self._pool: list[_Worker] = []

    def _gpu_pool(self) -> list[str]:
        if self._free_gpus is None:
            self._free_gpus = list(self._gpus if self._gpus is not None else visible_gpus())
            self._all_gpus = list(self._free_gpus)
        return self._free_gpus

    def _needs(self, job: Job) -> tuple[int, int]:
        cpus = min(self.workers, max(1, math.ceil(job.resources.get("cpus") or 0)))
        gpus = math.ceil(job.resources.get("gpus") or 0)
        return cpus, gpus

    def check(self, job: Job) -> str | None:
        _, gpus = self._needs(job)
        if gpus:
            self._gpu_pool()
            if gpus > len(self._all_gpus):
                return (
                    f"its step asks for {gpus} GPU(s) and this machine has {len(self._all_gpus)}; lower the "
                    "step's resources.gpus, or run on a Ray cluster with GPUs (--engine ray --address ...)"
                )
        return None

    def fits(self, job: Job) -> bool:
        cpus, gpus = self._needs(job)
        if self._busy_cpus + cpus > self.workers:
            return False
        return not gpus or len(self._gpu_pool()) >= gpus

    def _spawn(self, cpus: int, gpus: list[str], one_shot: bool) -> _Worker:
        env = dict(os.environ)
        threads = str(cpus)
        env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, OPENBLAS_NUM_THREADS=threads,
                   NUMBA_NUM_THREADS=threads, TOKENIZERS_PARALLELISM="false")  # fmt: skip
        env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        command = [sys.executable, "-m", "speechgap.sweep.worker", "--serve", str(self.sweep_dir)]
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        worker = _Worker(process, gpus, one_shot)
        self._pool.append(worker)
        return worker

    def submit(self, job: Job) -> None:
        cpus, gpus = self._needs(job)
        if gpus:
            worker = self._spawn(cpus, [self._gpu_pool().pop(0) for _ in range(gpus)], one_shot=True)
        else:
            idle = [w for w in self._pool if w.job is None and not w.one_shot and w.process.poll() is None]
            worker = idle[0] if idle else self._spawn(cpus, [], one_shot=False)
        tasks = self.sweep_dir / STATE_DIR / "tasks"
        tasks.mkdir(parents=True, exist_ok=True)
        name = safe_name(job.id)
        job_file = tasks / f"{name}.job.json"
        outcome_file = tasks / f"{name}.outcome.json"
        outcome_file.unlink(missing_ok=True)
        job_file.write_text(json.dumps(job.to_json()), encoding="utf-8")
        logs = self.sweep_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        request = {"job": str(job_file), "outcome": str(outcome_file), "log": str(logs / f"{name}.log")}
        worker.job, worker.cpus, worker.outcome_file = job, cpus, outcome_file
        self._busy_cpus += cpus
        try:
            worker.process.stdin.write(json.dumps(request) + "\n")
            worker.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the worker is gone: wait() reports the job lost

    def wait(self, timeout: float) -> list[Finished]:
        deadline = time.monotonic() + timeout
        while True:
            finished = self._collect()
            busy = any(w.job is not None for w in self._pool)
            if finished or time.monotonic() >= deadline or not busy:
                return finished
            time.sleep(min(0.02, max(0.0, deadline - time.monotonic())))

    def _collect(self) -> list[Finished]:
        finished = []
        for worker in list(self._pool):
            job = worker.job
            if job is None:
                if worker.process.poll() is not None:
                    self._pool.remove(worker)
                continue
            assert worker.outcome_file is not None
            outcome = None
            if worker.outcome_file.is_file():
                outcome = json.loads(worker.outcome_file.read_text(encoding="utf-8"))
                worker.outcome_file.unlink()
            elif worker.process.poll() is None:
                continue
            self._busy_cpus -= worker.cpus
            worker.job = None
            if outcome is not None:
                finished.append(Finished(job.id, outcome))
                if worker.one_shot:
                    self._retire(worker)
                continue
            code = worker.process.returncode
            reason = f"killed by signal {-code}" if code < 0 else f"exited with status {code}"
            finished.append(Finished(job.id, None, lost=f"worker process {worker.process.pid} {reason}"))
            self._retire(worker)
        return finished

    def _retire(self, worker: _Worker) -> None:
        """End a worker (after its one job, or dead) and give its GPUs back."""
        if worker.process.poll() is None:
            worker.process.stdin.close()
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        if worker.gpus:
            self._gpu_pool().extend(worker.gpus)
        self._pool.remove(worker)

    @property
    def running(self) -> list[str]:
        return [w.job.id for w in self._pool if w.job is not None]

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "workers": self.workers}

    def close(self) -> None:
        """Idle workers end at the end of their input; busy ones (an interrupted sweep) are stopped."""
        for worker in self._pool:
            if worker.job is not None:
                worker.process.terminate()
            with contextlib.suppress(OSError):
                worker.process.stdin.close()
        for worker in self._pool:
            try:
                worker.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        self._pool.clear()


# --------------------------------------------------------------------------------------------------- ray


def _ray_task(record: dict[str, Any], sweep_dir: str) -> dict[str, Any]:
    from speechgap.sweep.job import run_job

    return run_job(record, sweep_dir).to_json()


class RayEngine(Engine):
    """Jobs as Ray tasks.

    Args:
        sweep_dir: the sweep's folder; on a cluster it must be on a file system every node sees (the
            model and data paths too).
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None starts a
            local Ray instance for this sweep (with ``workers`` CPUs), unless this process is already
            connected to one (``ray.init`` was called), which is then used as it is.
        workers: CPUs of the local instance this engine starts (default: this machine's cores).
        retries: times Ray re-runs a task whose worker died (killed, out of memory, node lost).
    """

    name = "ray"

    def __init__(
        self,
        sweep_dir: str | Path,
        *,
        address: str | None = None,
        workers: int | None = None,
        retries: int = 3,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("argument 'engine' ray needs Ray: pip install 'ray>=2.9'") from None
        self._ray = ray
        self.sweep_dir = str(Path(sweep_dir))
        self.retries = retries
        self._owns = False
        if ray.is_initialized():
            if address is not None:
                raise ConfigError(
                    "argument 'address': this process is already connected to a Ray cluster; leave the "
                    "address out to use that one"
                )
        else:
            options: dict[str, Any] = {
                "include_dashboard": False,
                "logging_level": "WARNING",
                "log_to_driver": False,
            }
            if address is None:
                options["num_cpus"] = workers or os.cpu_count() or 1
            try:
                ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as err:
                reason = str(err).splitlines()[0] if str(err) else type(err).__name__
                raise ConfigError(
                    f"argument 'address': cannot join the Ray cluster at {address!r}: {reason}"
                ) from None
            self._owns = True
        self._remote = ray.remote(_ray_task)
        self._refs: dict[Any, str] = {}

    def check(self, job: Job) -> str | None:
        total = self._ray.cluster_resources()
        cpus = float(job.resources.get("cpus") or 0)
        gpus = float(job.resources.get("gpus") or 0)
        if gpus > total.get("GPU", 0):
            return (
                f"its step asks for {gpus:g} GPU(s) and the Ray cluster has {total.get('GPU', 0):g}; lower the "
                "step's resources.gpus or add GPU nodes"
            )
        if cpus > total.get("CPU", 0):
            return f"its step asks for {cpus:g} CPUs and the Ray cluster has {total.get('CPU', 0):g}"
        return None

    def submit(self, job: Job) -> None:
        resources = job.resources
        options: dict[str, Any] = {
            "num_cpus": float(resources.get("cpus") or 0),
            "num_gpus": float(resources.get("gpus") or 0),
            "max_retries": self.retries,
            "retry_exceptions": False,
            "name": job.id,
        }
        if resources.get("memory"):
            options["memory"] = int(resources["memory"])
        ref = self._remote.options(**options).remote(job.to_json(), self.sweep_dir)
        self._refs[ref] = job.id

    def wait(self, timeout: float) -> list[Finished]:
        if not self._refs:
            time.sleep(min(timeout, 0.05))
            return []
        ready, _ = self._ray.wait(
            list(self._refs), num_returns=len(self._refs), timeout=timeout, fetch_local=True
        )
        if not ready:
            ready, _ = self._ray.wait(list(self._refs), num_returns=1, timeout=0)
        finished = []
        for ref in ready:
            job_id = self._refs.pop(ref)
            try:
                finished.append(Finished(job_id, self._ray.get(ref)))
            except self._ray.exceptions.RayError as err:
                reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                finished.append(
                    Finished(
                        job_id, None, lost=f"{type(err).__name__} after {self.retries} retries: {reason}"
                    )
                )
        return finished

    @property
    def running(self) -> list[str]:
        return list(self._refs.values())

    def describe(self) -> dict[str, Any]:
        resources = self._ray.cluster_resources()
        return {
            "engine": self.name,
            "cluster": {key: resources[key] for key in ("CPU", "GPU", "memory") if key in resources},
            "nodes": len([node for node in self._ray.nodes() if node.get("Alive")]),
        }

    def close(self) -> None:
        for ref in list(self._refs):
            self._ray.cancel(ref, force=True)
        self._refs.clear()
        if self._owns:
            self._ray.shutdown()


def check_engine(name: str, *, workers: int | None = None, address: str | None = None) -> None:
    """Refuse engine settings that cannot work, before anything is written."""
    if name not in ENGINES:
        raise ConfigError(f"argument 'engine' must be one of {', '.join(ENGINES)}, got {name!r}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ConfigError(f"argument 'workers' must be a whole number >= 1, got {workers!r}")
    if name == "local" and address is not None:
        raise ConfigError("argument 'address' is for the ray engine (argument 'engine' ray)")
    if name == "ray" and workers is not None and address is not None:
        raise ConfigError(
            "argument 'workers' sizes a local Ray instance; a cluster (argument 'address') has its own"
        )


def make_engine(
    name: str,
    sweep_dir: str | Path,
    *,
    workers: int | None = None,
    address: str | None = None,
    retries: int = 3,
) -> Engine:
    """The engine called ``name`` (``local`` or ``ray``)."""
    check_engine(name, workers=workers, address=address)
    if name == "local":
        return LocalEngine(sweep_dir, workers=workers)
    return RayEngine(sweep_dir, address=address, workers=workers, retries=retries)
