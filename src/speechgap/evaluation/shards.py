"""Merge the folders of a sharded evaluation into the folder the unsharded run would have written.

A long ``speechgap eval`` can run as ``K`` independent processes, each on one contiguous block of the data
(:meth:`~speechgap.data.types.PairedDataset.shard`), each into its own folder::

    for k in range(K):                                   # separate processes, any order
        evaluate(model, data.shard(k, K), f"runs/eval/shard-{k}", settings)
    merge_eval_shards([f"runs/eval/shard-{k}" for k in range(K)], "runs/eval", data)

:func:`merge_eval_shards` writes ``results.jsonl`` with every record exactly once, in the order of a fresh
unsharded run (model role and modality outer, dataset order inner), ``run.json`` with the unsharded run's
data record, and ``summary.json`` scored by :func:`~speechgap.evaluation.report.score_run` over all records
(so protocols that score in record order, such as VoiceBench's seeded fallback, see the unsharded order).
An unsharded :func:`~speechgap.evaluation.run.evaluate` of the same command into the merged folder resumes
with nothing left to do.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from speechgap.data.types import PairedDataset, shard_range
from speechgap.errors import ConfigError, DataError
from speechgap.evaluation.report import score_run
from speechgap.evaluation.result import EvalResult
from speechgap.evaluation.run import (
    BASE,
    LSLM,
    RESULTS,
    RUN_RECORD,
    _check_run_record,
    _read_run_record,
    _record_key,
)
from speechgap.io import (
    RunLock,
    atomic_write_json,
    atomic_write_text,
    dumps_record,
    prepare_out_dir,
    read_jsonl,
)

__all__ = ["merge_eval_shards"]

_SAME_RUN_KEYS = ("model", "base_model", "settings")

RecordKey = tuple[str, str, str]
"""(sample id, modality, model role) of one record of ``results.jsonl``."""


@dataclass
class _EvalShard:
    """One shard's folder read back: its run record, which block it is, and its records by key."""

    folder: Path
    record: dict[str, Any]
    index: int
    count: int
    records: dict[RecordKey, dict[str, Any]]


def merge_eval_shards(
    shard_dirs: Sequence[str | Path], out_dir: str | Path, data: PairedDataset
) -> EvalResult:
    """Merge shard folders of one evaluation into ``out_dir``, as the unsharded run would have written it.

    Args:
        shard_dirs: the shards' folders, each written by ``evaluate(model, data.shard(k, K), folder,
            settings)`` with the same model and settings; any order.
        out_dir: the merged folder (created; an earlier merge or unsharded run of the same command there
            is replaced by the complete result).
        data: the whole dataset the shards were cut from, after any limit (``data.limit(n)``): it decides
            the records' order and ``run.json``'s data record.

    Returns:
        :class:`~speechgap.evaluation.result.EvalResult` of ``out_dir`` (``written``: the records merged).

    Raises:
        ConfigError: no shard folder given, ``out_dir`` is one of them, shards of another model, settings or
            split (the number of shards), two folders holding the same shard (their records overlap), a
            shard missing (named, with a sample it should hold), ``out_dir`` holding another run.
        DataError: a shard folder without ``run.json`` or ``results.jsonl``; a shard run on other data than
            ``data``; a record whose sample ``data`` does not have, or that lies outside its shard's block
            of ``data`` (the shards overlap), or that one shard holds twice; a sample that no shard holds
            although its shard's folder was given (the shard is incomplete: rerun it, it resumes).
    """
    if not isinstance(data, PairedDataset):
        raise ConfigError(f"argument 'data' must be a PairedDataset, got {type(data).__name__}")
    if len(data) == 0:
        raise ConfigError("argument 'data' holds no samples")
    if isinstance(shard_dirs, (str, Path)) or not shard_dirs:
        raise ConfigError("argument 'shard_dirs' must be a list of shard folders, got none")
    shards = [_read_shard(Path(folder), data) for folder in shard_dirs]
    _check_same_run(shards)
    by_index = _by_index(shards)
    records = _merged_records(shards, by_index, data)

    out_dir = prepare_out_dir(out_dir)
    for shard in shards:
        if shard.folder.resolve() == out_dir.resolve():
            raise ConfigError(f"argument 'out_dir' is the folder of shard {shard.index + 1}/{shard.count}")
    run_record = _merged_run_record(by_index, data)
    with RunLock(out_dir, command="eval-merge"):
        _check_run_record(out_dir, run_record)  # refuses a folder that holds another run
        atomic_write_json(out_dir / RUN_RECORD, run_record)
        atomic_write_text(out_dir / RESULTS, "".join(dumps_record(record) + "\n" for record in records))
        result = score_run(out_dir)
    result.written, result.skipped = len(records), 0
    return result


def _read_shard(folder: Path, data: PairedDataset) -> _EvalShard:
    if not folder.is_dir():
        raise DataError("shard folder not found", path=folder)
    run_path = folder / RUN_RECORD
    if not run_path.is_file():
        raise DataError(
            f"no {RUN_RECORD}: not the folder of an evaluation shard (or it never started)", path=run_path
        )
    record = _read_run_record(run_path)
    results = folder / RESULTS
    if not results.is_file():
        raise DataError(f"no {RESULTS} next to {RUN_RECORD}: the shard has not run yet", path=results)
    data_record = record.get("data")
    label = data_record.get("shard") if isinstance(data_record, dict) else None
    index, count = _parse_label(label, run_path)
    expected = json.loads(dumps_record(data.shard(index, count).describe()))
    if record.get("data") != expected:
        raise DataError(
            f"shard {label} was run on other data than argument 'data' (recorded {record.get('data')}, "
            f"block {label} of argument 'data' is {expected}); give the whole dataset the shards were cut "
            "from, after any limit",
            path=run_path,
            field="data",
        )
    by_key: dict[RecordKey, dict[str, Any]] = {}
    for line, result in read_jsonl(results):
        try:
            key = _record_key(result)
        except (KeyError, TypeError) as err:
            raise DataError(f"a record without its key ({err!r})", path=results, line=line) from None
        if key in by_key:
            raise DataError(
                f"the record of sample {key[0]!r} ({key[1]}, {key[2]}) appears twice", path=results, line=line
            )
        by_key[key] = result
    return _EvalShard(folder, record, index, count, by_key)


def _parse_label(label: Any, run_path: Path) -> tuple[int, int]:
    """``"k/K"`` (1-based, as :meth:`PairedDataset.shard` records it) as ``(k - 1, K)``."""
    parts = label.split("/") if isinstance(label, str) else []
    if (
        len(parts) != 2
        or not all(part.isdigit() for part in parts)
        or not 1 <= int(parts[0]) <= int(parts[1])
    ):
        raise DataError(
            "not a shard folder: its data record has no shard 'k/K' (evaluate data.shard(k, K) into it)",
            path=run_path,
            field="data.shard",
        )
    return int(parts[0]) - 1, int(parts[1])


def _check_same_run(shards: list[_EvalShard]) -> None:
    first = shards[0]
    for shard in shards[1:]:
        for key in _SAME_RUN_KEYS:
            if shard.record.get(key) != first.record.get(key):
                raise ConfigError(
                    f"{shard.folder / RUN_RECORD}: the shard was run with another {key} than "
                    f"{first.folder / RUN_RECORD}; merge only the shards of one run"
                )
        if shard.count != first.count:
            raise ConfigError(
                f"{shard.folder / RUN_RECORD}: shard {shard.index + 1}/{shard.count} belongs to a split into "
                f"{shard.count} shards, {first.folder / RUN_RECORD} to a split into {first.count}; merge the "
                "shards of one split"
            )


def _by_index(shards: list[_EvalShard]) -> dict[int, _EvalShard]:
    by_index: dict[int, _EvalShard] = {}
    for shard in shards:
        earlier = by_index.get(shard.index)
        if earlier is not None:
            raise ConfigError(
                f"argument 'shard_dirs': {earlier.folder} and {shard.folder} both hold shard "
                f"{shard.index + 1}/{shard.count}, so their records overlap; give each shard once"
            )
        by_index[shard.index] = shard
    return by_index


def _merged_records(
    shards: list[_EvalShard], by_index: dict[int, _EvalShard], data: PairedDataset
) -> list[dict[str, Any]]:
    """Every record once, in the order of a fresh unsharded run: job (model role, modality), then data."""
    first = shards[0]
    jobs = [(LSLM, modality) for modality in first.record["settings"]["modalities"]]
    if first.record.get("base_model") is not None:
        jobs.append((BASE, "text"))
    position = {sample_id: k for k, sample_id in enumerate(data.ids)}
    owner: dict[RecordKey, _EvalShard] = {}
    for shard in shards:
        block = shard_range(len(data), shard.index, shard.count)
        for key in shard.records:
            sample_id, modality, role = key
            results = shard.folder / RESULTS
            if sample_id not in position:
                raise DataError(
                    f"a record of sample {sample_id!r}, which argument 'data' does not have", path=results
                )
            if position[sample_id] not in block:
                holder = _block_of(position[sample_id], len(data), shard.count)
                raise DataError(
                    f"shard {shard.index + 1}/{shard.count} holds sample {sample_id!r}, which is in block "
                    f"{holder + 1}/{shard.count} of argument 'data', not in its own: the shards overlap, or "
                    "this one was cut from other data (another limit?)",
                    path=results,
                )
            if (role, modality) not in jobs:
                raise DataError(
                    f"a record of sample {sample_id!r} for ({role}, {modality}), which the run's settings do "
                    f"not ask for (runs {jobs})",
                    path=results,
                )
            owner[key] = shard  # blocks are disjoint: no other shard can hold this key
    merged = []
    for role, modality in jobs:
        for position, sample_id in enumerate(data.ids):
            key = (sample_id, modality, role)
            shard = owner.get(key)
            if shard is None:
                _missing(key, position, len(data), first.count, by_index)
            merged.append(shard.records[key])
    return merged


def _missing(
    key: RecordKey, position: int, length: int, count: int, by_index: dict[int, _EvalShard]
) -> NoReturn:
    """Refuse a record no shard holds, naming the shard that should hold it."""
    index = _block_of(position, length, count)
    what = f"sample {key[0]!r} ({key[1]}, {key[2]}) is in no shard"
    shard = by_index.get(index)
    if shard is None:
        raise ConfigError(
            f"argument 'shard_dirs': {what}: shard {index + 1}/{count} should hold it, and no folder of "
            "that shard was given"
        )
    raise DataError(
        f"{what}: shard {index + 1}/{count} should hold it and is incomplete; run it again (it resumes) "
        "before merging",
        path=shard.folder / RESULTS,
    )


def _block_of(position: int, length: int, count: int) -> int:
    """The index of the block of ``count`` that holds ``position`` of ``length`` samples."""
    return next(k for k in range(count) if position in shard_range(length, k, count))


def _merged_run_record(by_index: dict[int, _EvalShard], data: PairedDataset) -> dict[str, Any]:
    """The first shard's record, with the whole data's record: what the unsharded run records."""
    ordered = [by_index[k] for k in sorted(by_index)]
    record = dict(ordered[0].record)
    record["data"] = data.describe()
    notes = [f"{shard.folder}: {note}" for shard in ordered for note in shard.record.get("warnings", [])]
    record.pop("warnings", None)
    if notes:
        record["warnings"] = notes
    record["merged_from"] = [str(shard.folder.resolve()) for shard in ordered]
    return json.loads(dumps_record(record))
