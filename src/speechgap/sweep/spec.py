"""The sweep spec: which models, which data, which steps, and what each step's tasks need.

A spec is a YAML or JSON file (docs/scale.md)::

    models:
      - Qwen/Qwen2-Audio-7B-Instruct            # a Hub id or a folder; named by its last component
      - {name: omni, path: Qwen/Qwen2.5-Omni-7B, dtype: bfloat16}
      - {zoo: runs/mini_zoo, checkpoints: [full-step750, lora-step750]}   # speech checkpoints of a zoo
    data:
      - runs/demo/pairs/manifest.jsonl           # any --data spec (docs/data.md)
      - {name: mmsu, spec: "voicebench:/data/voicebench?subset=mmsu"}
    resources: {cpus: 1, gpus: 0}                 # default of every step
    retries: 3                                    # attempts after a crash (worker killed, node lost, OOM)
    steps:
      - {verb: eval, settings: {max_new_tokens: 8}, shards: 3}
      - {verb: analyze, settings: {diagnostics: true}, resources: {gpus: 1, memory: 40GB}}
      - {verb: compress, settings: {method: dap}}
      - {verb: intervene, name: angle, settings: {method: angle, k: 1}}

It expands to jobs (:func:`expand`): one per model × data × step, each one verb of :mod:`speechgap.api` with
its own folder ``OUT/jobs/<model>/<data>/<step>/`` holding what the command writes alone.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from speechgap.errors import ConfigError, DataError

VERBS = ("eval", "analyze", "intervene", "compress")
SHARDABLE = ("eval", "analyze")
"""Verbs whose run splits into shards that merge exactly (the others run whole)."""

MODEL_SETTINGS = ("device", "dtype", "protocol", "instruction", "system_prompt", "trust_remote_code")
"""Loading settings a model entry may carry; each verb receives the ones it takes."""

_MANAGED = {"model", "data", "out_dir", "progress", "command", "shard", "eval_dir", "captures"}
"""Arguments of the verbs that the sweep sets itself."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_MEMORY_UNITS = {"": 1, "B": 1, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}


@dataclass(frozen=True)
class Resources:
    """What one task of a step needs (Ray's task resources; the local engine counts cpus and gpus).

    Attributes:
        cpus: CPU cores (also the task's torch threads).
        gpus: GPUs (fractions share a GPU; 1 keeps a 7B model alone on its GPU).
        memory: bytes of memory Ray reserves for the task (None: no reservation).
    """

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One model of the sweep: ``path`` (folder or Hub id), its name and loading settings."""

    name: str
    path: str
    variant: str = "model"
    step: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DataEntry:
    """One dataset of the sweep: a ``--data`` spec and its name."""

    name: str
    spec: str


@dataclass(frozen=True)
class Step:
    """One verb with its settings, applied to every model × data."""

    name: str
    verb: str
    settings: dict[str, Any]
    resources: Resources
    shards: int = 1
    with_eval: str | bool | None = None
    """For ``analyze``: the eval step whose answers join the analysis (``--eval``): its name, None for the
    eval step that covers the same data (when exactly one does), False for none."""
    data: list[str] | None = None
    """The datasets the step runs on (None: all)."""

    def covers(self, data_name: str) -> bool:
        return self.data is None or data_name in self.data


@dataclass(frozen=True)
class SweepSpec:
    """A parsed, checked sweep spec (:func:`load_spec`)."""

    models: list[ModelEntry]
    data: list[DataEntry]
    steps: list[Step]
    retries: int = 3
    source: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "models": [asdict(m) for m in self.models],
            "data": [asdict(d) for d in self.data],
            "steps": [asdict(replace(s, settings=_redacted(s.settings))) for s in self.steps],
            "retries": self.retries,
            "source": self.source,
        }


def _redacted(settings: dict[str, Any]) -> dict[str, Any]:
    """A step's settings as files record them: a judge URL's credentials redacted (as every result file does)."""
    from speechgap.provenance import redact_url

    judge = settings.get("judge")
    if isinstance(judge, dict) and isinstance(judge.get("url"), str):
        return {**settings, "judge": {**judge, "url": redact_url(judge["url"])}}
    return settings


def load_spec(path: str | Path) -> SweepSpec:
    """Read and check a sweep spec file (``.yaml``, ``.yml`` or ``.json``).

    Relative model, zoo and data paths are taken relative to the spec file's folder and made absolute (the
    tasks of a cluster run elsewhere).

    Raises:
        ConfigError: no such file.
        DataError: a file that is not YAML/JSON, or a field that is missing, unknown or of the wrong kind,
            named as ``steps[1].settings.tau``.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"argument 'spec': no such file: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            raw = json.loads(text)
        else:
            import yaml

            raw = yaml.safe_load(text)
    except (ValueError, Exception) as err:  # yaml.YAMLError and json.JSONDecodeError
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"not a valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'} file: {reason}",
                        path=path) from None  # fmt: skip
    return parse_spec(raw, base=path.parent, source=str(path))


def parse_spec(raw: Any, *, base: str | Path = ".", source: str | None = None) -> SweepSpec:
    """A :class:`SweepSpec` from the spec's content (a dict as YAML/JSON gives it)."""
    where = source or "spec"
    if not isinstance(raw, dict):
        raise DataError(
            f"expected a mapping with models, data and steps, got {type(raw).__name__}", path=where
        )
    _check_keys(raw, {"models", "data", "steps", "resources", "retries"}, where, "")
    for key in ("models", "data", "steps"):
        if key not in raw:
            raise DataError("missing (a sweep needs models, data and steps)", path=where, field=key)
        if not isinstance(raw[key], list) or not raw[key]:
            raise DataError("expected a non-empty list", path=where, field=key)
    base = Path(base)
    defaults = _resources(raw.get("resources", {}), where, "resources", Resources())
    retries = raw.get("retries", 3)
    if not _is_int(retries) or retries < 0:
        raise DataError(f"expected a whole number >= 0, got {retries!r}", path=where, field="retries")
    models = _models(raw["models"], base, where)
    data = _data(raw["data"], base, where)
    steps = _steps(raw["steps"], data, defaults, where)
    return SweepSpec(models, data, steps, retries=int(retries), source=source, raw=raw)


# ------------------------------------------------------------------------------------------------ models


def _models(entries: list[Any], base: Path, where: str) -> list[ModelEntry]:
    models: list[ModelEntry] = []
    for k, entry in enumerate(entries):
        field_name = f"models[{k}]"
        entry = _as_mapping(entry, "path", "a path, a Hub id", where, field_name)
        if "zoo" in entry:
            models.extend(_zoo_models(entry, base, where, field_name))
            continue
        _check_keys(entry, {"name", "path", "variant", "step", *MODEL_SETTINGS}, where, field_name)
        model_path = _text(entry.get("path"), where, f"{field_name}.path")
        resolved = _local_or_hub(model_path, base)
        name = entry.get("name", Path(model_path.rstrip("/")).name)
        settings = {key: entry[key] for key in MODEL_SETTINGS if key in entry}
        models.append(
            ModelEntry(
                name=_name(name, where, f"{field_name}.name"),
                path=resolved,
                variant=_text(entry.get("variant", "model"), where, f"{field_name}.variant"),
                step=entry.get("step"),
                settings=settings,
            )
        )
    _unique([m.name for m in models], where, "models", "model")
    return models


def _zoo_models(entry: dict[str, Any], base: Path, where: str, field_name: str) -> list[ModelEntry]:
    from speechgap.study import read_zoo

    _check_keys(entry, {"zoo", "checkpoints", *MODEL_SETTINGS}, where, field_name)
    folder = base / _text(entry["zoo"], where, f"{field_name}.zoo")
    try:
        checkpoints = read_zoo(folder, minimum=1)
    except (ConfigError, DataError) as err:
        raise DataError(str(err), path=where, field=f"{field_name}.zoo") from None
    chosen = entry.get("checkpoints")
    if chosen is not None:
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            raise DataError(
                "expected a list of checkpoint names", path=where, field=f"{field_name}.checkpoints"
            )
        known = [c["name"] for c in checkpoints]
        unknown = [c for c in chosen if c not in known]
        if unknown:
            raise DataError(f"{unknown[0]!r} is not a speech checkpoint of {folder} (it has {', '.join(known)})",
                            path=where, field=f"{field_name}.checkpoints")  # fmt: skip
        checkpoints = [c for c in checkpoints if c["name"] in chosen]
    settings = {key: entry[key] for key in MODEL_SETTINGS if key in entry}
    return [
        ModelEntry(
            name=c["name"],
            path=str(Path(c["path"]).resolve()),
            variant=c["variant"],
            step=c.get("step"),
            settings=settings,
        )
        for c in checkpoints
    ]


def _local_or_hub(value: str, base: Path) -> str:
    """A local folder made absolute; anything else (a Hub id such as ``Qwen/Qwen2-Audio-7B-Instruct``) as is."""
    candidate = Path(value).expanduser()
    candidate = candidate if candidate.is_absolute() else base / candidate
    return str(candidate.resolve()) if candidate.exists() else value


# -------------------------------------------------------------------------------------------------- data


def _data(entries: list[Any], base: Path, where: str) -> list[DataEntry]:
    from speechgap.data.load import parse_data_spec

    data: list[DataEntry] = []
    for k, entry in enumerate(entries):
        field_name = f"data[{k}]"
        entry = _as_mapping(entry, "spec", "a data spec", where, field_name)
        _check_keys(entry, {"name", "spec"}, where, field_name)
        text = _text(entry.get("spec"), where, f"{field_name}.spec")
        try:
            parsed = parse_data_spec(text)
        except ConfigError as err:
            raise DataError(str(err), path=where, field=f"{field_name}.spec") from None
        loader = f"{parsed.loader}:" if parsed.loader else ""
        source = _local_or_hub(parsed.source, base)
        query = text.partition("?")[2]
        spec = f"{loader}{source}" + (f"?{query}" if query else "")
        name = entry.get("name") or _data_name(parsed)
        data.append(DataEntry(name=_name(name, where, f"{field_name}.name"), spec=spec))
    _unique([d.name for d in data], where, "data", "dataset")
    return data


def _data_name(parsed: Any) -> str:
    if parsed.subset:
        name = parsed.subset + (f"-{parsed.split}" if parsed.split else "")
    else:
        source = Path(parsed.source.rstrip("/"))
        name = source.parent.name if source.suffix == ".jsonl" and source.parent.name else source.stem
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-") or "data"


# ------------------------------------------------------------------------------------------------- steps


def verb_arguments(verb: str) -> set[str]:
    """The settings a step of ``verb`` may give: the keyword arguments of its :mod:`speechgap.api` verb,
    less those the sweep sets itself."""
    import speechgap.api as api

    function = {"eval": api.evaluate, "analyze": api.analyze, "intervene": api.intervene,
                "compress": api.compress}[verb]  # fmt: skip
    names = set()
    for name, parameter in inspect.signature(function).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            continue
        names.add(name)
    if verb == "intervene":
        names.add("method")
    return names - _MANAGED


def _steps(entries: list[Any], data: list[DataEntry], defaults: Resources, where: str) -> list[Step]:
    steps: list[Step] = []
    for k, entry in enumerate(entries):
        field_name = f"steps[{k}]"
        if not isinstance(entry, dict):
            raise DataError(f"expected a mapping with a verb, got {type(entry).__name__}",
                            path=where, field=field_name)  # fmt: skip
        _check_keys(
            entry, {"verb", "name", "settings", "resources", "shards", "eval", "data"}, where, field_name
        )
        verb = entry.get("verb")
        if verb not in VERBS:
            raise DataError(f"expected one of {', '.join(VERBS)}, got {verb!r}", path=where,
                            field=f"{field_name}.verb")  # fmt: skip
        settings = entry.get("settings") or {}
        if not isinstance(settings, dict):
            raise DataError(
                "expected a mapping of the verb's settings", path=where, field=f"{field_name}.settings"
            )
        settings = dict(settings)
        allowed = verb_arguments(verb)
        for key in settings:
            if key not in allowed:
                raise DataError(
                    f"{key!r} is not a setting of {verb} (its settings: {', '.join(sorted(allowed))})",
                    path=where,
                    field=f"{field_name}.settings.{key}",
                )
        if verb == "intervene" and "method" not in settings:
            raise DataError("intervene needs a method (angle, length, calibration, dap, ...)", path=where,
                            field=f"{field_name}.settings.method")  # fmt: skip
        if verb == "eval" and "judge" in settings:
            settings["judge"] = _judge(settings["judge"], where, f"{field_name}.settings.judge")
        shards = entry.get("shards", 1)
        if not _is_int(shards) or shards < 1:
            raise DataError(
                f"expected a whole number >= 1, got {shards!r}", path=where, field=f"{field_name}.shards"
            )
        if shards > 1 and verb not in SHARDABLE:
            raise DataError(
                f"{verb} runs whole (its comparison needs every sample in one run); shards apply to "
                f"{' and '.join(SHARDABLE)}",
                path=where,
                field=f"{field_name}.shards",
            )
        if shards > 1 and verb == "analyze" and settings.get("diagnostics"):
            raise DataError("analyze with diagnostics runs whole (its probes are fitted on every sample at "
                            "once); drop shards or the diagnostics", path=where, field=f"{field_name}.shards")  # fmt: skip
        default_name = verb if verb in ("eval", "analyze") else f"{verb}-{settings.get('method', 'dap')}"
        name = _name(entry.get("name", default_name), where, f"{field_name}.name")
        resources = _resources(entry.get("resources", {}), where, f"{field_name}.resources", defaults)
        chosen = entry.get("data")
        if chosen is not None:
            known = [d.name for d in data]
            if not isinstance(chosen, list) or not chosen or not all(isinstance(c, str) for c in chosen):
                raise DataError(
                    "expected a non-empty list of dataset names", path=where, field=f"{field_name}.data"
                )
            unknown = [c for c in chosen if c not in known]
            if unknown:
                raise DataError(f"{unknown[0]!r} is not a dataset of the sweep ({', '.join(known)})",
                                path=where, field=f"{field_name}.data")  # fmt: skip
        steps.append(
            Step(name, verb, settings, resources, int(shards), with_eval=entry.get("eval"), data=chosen)
        )
    _unique([s.name for s in steps], where, "steps", "step (give each a 'name')")
    _check_eval_links(steps, data, where)
    return steps


def _check_eval_links(steps: list[Step], data: list[DataEntry], where: str) -> None:
    """``eval:`` of an analyze step names an eval step covering the analyze step's data, or is false."""
    evals = {s.name: s for s in steps if s.verb == "eval"}
    for k, step in enumerate(steps):
        choice = step.with_eval
        if choice is None or choice is False:
            continue
        if step.verb != "analyze":
            raise DataError("only an analyze step joins an eval step", path=where, field=f"steps[{k}].eval")
        if choice not in evals:
            raise DataError(f"expected the name of an eval step ({', '.join(evals) or 'there is none'}) or false, "
                            f"got {choice!r}", path=where, field=f"steps[{k}].eval")  # fmt: skip
        missing = [d.name for d in data if step.covers(d.name) and not evals[choice].covers(d.name)]
        if missing:
            raise DataError(f"eval step {choice!r} does not run on {missing[0]!r}, which this step analyses",
                            path=where, field=f"steps[{k}].eval")  # fmt: skip


def eval_step_for(steps: list[Step], step: Step, data_name: str) -> Step | None:
    """The eval step whose answers an analyze step joins on one dataset (None: no join)."""
    if step.verb != "analyze" or step.with_eval is False:
        return None
    if isinstance(step.with_eval, str):
        return next(s for s in steps if s.name == step.with_eval)
    covering = [s for s in steps if s.verb == "eval" and s.covers(data_name)]
    return covering[0] if len(covering) == 1 else None


def _judge(value: Any, where: str, field_name: str) -> dict[str, Any]:
    from speechgap.scoring import JudgeConfig

    if not isinstance(value, dict):
        raise DataError("expected a mapping: url, model, api_key_env, protocol, timeout_s, retries",
                        path=where, field=field_name)  # fmt: skip
    try:
        JudgeConfig(**value)
    except TypeError as err:
        raise DataError(f"not a judge setting: {err}", path=where, field=field_name) from None
    except ConfigError as err:
        raise DataError(str(err), path=where, field=field_name) from None
    return dict(value)


def _resources(value: Any, where: str, field_name: str, defaults: Resources) -> Resources:
    if not isinstance(value, dict):
        raise DataError("expected a mapping: cpus, gpus, memory", path=where, field=field_name)
    _check_keys(value, {"cpus", "gpus", "memory"}, where, field_name)
    out = asdict(defaults)
    for key in ("cpus", "gpus"):
        if key in value:
            number = value[key]
            if not isinstance(number, int | float) or isinstance(number, bool) or not math.isfinite(number) \
                    or number < 0:  # fmt: skip
                raise DataError(
                    f"expected a number >= 0, got {number!r}", path=where, field=f"{field_name}.{key}"
                )
            out[key] = float(number)
    if out["cpus"] == 0 and out["gpus"] == 0:
        raise DataError("a task needs at least some CPU or GPU", path=where, field=f"{field_name}.cpus")
    if "memory" in value:
        out["memory"] = parse_memory(value["memory"], where, f"{field_name}.memory")
    return Resources(**out)


def parse_memory(value: Any, where: str = "spec", field_name: str = "memory") -> int | None:
    """Bytes from ``17179869184``, ``"16GB"``, ``"16 GiB"``, ``"500MB"`` (None stays None)."""
    if value is None:
        return None
    if _is_int(value) and value > 0:
        return int(value)
    match = _MEMORY.match(str(value)) if isinstance(value, str) else None
    if match is None or float(match.group(1)) <= 0:
        raise DataError(f"expected bytes or a size such as 16GB or 512MiB, got {value!r}", path=where,
                        field=field_name)  # fmt: skip
    unit = (match.group(2) or "").upper()
    binary = "I" in unit
    letter = unit[:1] if unit not in ("", "B") else unit
    scale = _MEMORY_UNITS[letter]
    if binary:
        scale = 1024 ** {"K": 1, "M": 2, "G": 3, "T": 4}[letter]
    return int(float(match.group(1)) * scale)


# -------------------------------------------------------------------------------------------------- jobs


@dataclass
class Job:
    """One task of the sweep: a verb on one model and one dataset (or one shard of it), or the merge of a
    sharded run's shards.

    Attributes:
        id: ``model/data/step`` (a shard adds ``#k-of-K``; its merge is the job ``model/data/step`` itself).
        kind: ``"run"`` (a verb) or ``"merge"`` (the shards into the step's folder).
        verb: ``eval``, ``analyze``, ``intervene`` or ``compress``.
        model: the :class:`ModelEntry` as a dict.
        data: the :class:`DataEntry` as a dict.
        step: the step's name.
        settings: the verb's keyword arguments.
        out_dir: the job's folder (absolute).
        resources: the :class:`Resources` of its task.
        shard: ``(k, K)`` for a shard (0-based k).
        shard_dirs: for a merge, the shards' folders in order.
        eval_dir: for analyze, the eval job's folder whose answers join the analysis.
        after: ids of the jobs that must be done first.
    """

    id: str
    kind: str
    verb: str
    model: dict[str, Any]
    data: dict[str, Any]
    step: str
    settings: dict[str, Any]
    out_dir: str
    resources: dict[str, Any]
    shard: list[int] | None = None
    shard_dirs: list[str] = field(default_factory=list)
    eval_dir: str | None = None
    after: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        """A hash of everything that decides the job's results (a changed spec re-runs, never reuses)."""
        content = {k: v for k, v in asdict(self).items() if k not in ("resources", "after")}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def redacted(self) -> Job:
        """The job as ``sweep.json`` records it: a judge URL's credentials redacted (the task keeps them)."""
        return replace(self, settings=_redacted(self.settings))

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Job:
        return cls(**record)


def expand(spec: SweepSpec, out_dir: str | Path) -> list[Job]:
    """Every job of the sweep, dependencies first (a merge after its shards, an analyze after its eval)."""
    out_dir = Path(out_dir).resolve()
    jobs: list[Job] = []
    for model in spec.models:
        for data in spec.data:
            for step in spec.steps:
                if not step.covers(data.name):
                    continue
                job_id = f"{model.name}/{data.name}/{step.name}"
                folder = out_dir / "jobs" / model.name / data.name / step.name
                linked = eval_step_for(spec.steps, step, data.name)
                after = [f"{model.name}/{data.name}/{linked.name}"] if linked else []
                common = {
                    "verb": step.verb,
                    "model": asdict(model),
                    "data": asdict(data),
                    "step": step.name,
                    "settings": step.settings,
                    "resources": asdict(step.resources),
                }
                eval_dir = str(out_dir / "jobs" / model.name / data.name / linked.name) if linked else None
                if step.shards == 1:
                    jobs.append(
                        Job(job_id, "run", out_dir=str(folder), eval_dir=eval_dir, after=after, **common)
                    )
                    continue
                shard_dirs = []
                for k in range(step.shards):
                    shard_dir = (
                        out_dir / "shards" / model.name / data.name / step.name / f"{k + 1}-of-{step.shards}"
                    )
                    shard_dirs.append(str(shard_dir))
                    jobs.append(Job(f"{job_id}#{k + 1}-of-{step.shards}", "run", out_dir=str(shard_dir),
                                    shard=[k, step.shards], **common))  # fmt: skip
                merge = {**common, "resources": asdict(Resources(cpus=1.0))}
                shard_ids = [f"{job_id}#{k + 1}-of-{step.shards}" for k in range(step.shards)]
                jobs.append(Job(job_id, "merge", out_dir=str(folder), shard_dirs=shard_dirs, eval_dir=eval_dir,
                                after=shard_ids + after, **merge))  # fmt: skip
    return jobs


# ----------------------------------------------------------------------------------------------- helpers


def _as_mapping(entry: Any, key: str, what: str, where: str, field_name: str) -> dict[str, Any]:
    """A list entry given as a plain string (``key: entry``) or as a mapping."""
    if isinstance(entry, str):
        return {key: entry}
    if not isinstance(entry, dict):
        raise DataError(
            f"expected {what} or a mapping, got {type(entry).__name__}", path=where, field=field_name
        )
    return entry


def _check_keys(mapping: dict[str, Any], allowed: set[str], where: str, prefix: str) -> None:
    for key in mapping:
        if key not in allowed:
            name = f"{prefix}.{key}" if prefix else str(key)
            raise DataError(f"unknown key (allowed: {', '.join(sorted(allowed))})", path=where, field=name)


def _text(value: Any, where: str, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"expected a non-empty string, got {value!r}", path=where, field=field_name)
    return value.strip()


def _name(value: Any, where: str, field_name: str) -> str:
    value = _text(value, where, field_name)
    if not _NAME.match(value):
        raise DataError(f"{value!r} is not a plain name (letters, digits, '.', '_', '-'; it names a folder)",
                        path=where, field=field_name)  # fmt: skip
    return value


def _unique(names: list[str], where: str, field_name: str, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise DataError(
                f"two {what}s are named {name!r}; give one a 'name'", path=where, field=field_name
            )
        seen.add(name)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
