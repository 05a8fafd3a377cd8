"""Merge the folders of a sharded ``analyze`` into the folder the unsharded run would have written.

A long analysis can run as ``K`` independent processes, each on one contiguous block of the planned samples
(:attr:`~speechgap.analysis.run.AnalysisSettings.shard`), each into its own folder::

    for k in range(K):                                   # separate processes, any order
        analyze(source, f"runs/analysis/shard-{k}", replace(settings, shard=(k, K)))
    merge_analysis_shards([f"runs/analysis/shard-{k}" for k in range(K)], "runs/analysis")

Every shard plans the whole run (limit, layers, base layer, path samples) and records the planned ids, so the
merge rebuilds the plan without the model. Per-sample measures are per sample, so they are copied; the
cross-layer CKA is merged through its accumulator's sums (:meth:`~speechgap.metrics.CrossLayerCKA.merge`),
which every shard summed around the same origin (the rows of the run's first sample that has any), so the
merged CKA equals the unsharded one up to float rounding. The tables, ``summary.json`` and figures are then
made by the same code as an unsharded run's, and an unsharded :func:`~speechgap.analysis.run.analyze` of
the same source and settings into the merged folder resumes with nothing to compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from speechgap.analysis.run import (
    CKA_STATE_FILE,
    RUN_FILE,
    SAMPLES_FILE,
    AnalysisResult,
    AnalysisSettings,
    _check_resume,
    _finish,
    _load_cka_state,
    _path_file,
    _Plan,
    _read_eval,
    _read_samples,
    _save_cka_state,
    view_file,
)
from speechgap.data.types import shard_range
from speechgap.errors import ConfigError, DataError
from speechgap.io import (
    RunLock,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    dumps_record,
    prepare_out_dir,
    read_json,
    remove_stale_temp_files,
)
from speechgap.metrics import CrossLayerCKA

__all__ = ["merge_analysis_shards"]

# the settings a shard may differ in: which block it is, and whether it drew its own figures
_PER_SHARD_SETTINGS = ("shard", "figures")
_SAME_RUN_KEYS = ("model", "data", "source", "capture_skipped")


@dataclass
class _AnalysisShard:
    """One shard's folder read back: its run record and which block of the planned samples it holds."""

    folder: Path
    record: dict[str, Any]
    index: int
    count: int
    planned_ids: list[str]

    @property
    def label(self) -> str:
        return f"{self.index + 1}/{self.count}"

    @property
    def ids(self) -> list[str]:
        """The planned samples of this shard's block."""
        block = shard_range(len(self.planned_ids), self.index, self.count)
        return self.planned_ids[block.start : block.stop]


def merge_analysis_shards(
    shard_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    eval_dir: str | Path | None = None,
    figures: bool = True,
) -> AnalysisResult:
    """Merge shard folders of one analysis into ``out_dir``, as the unsharded :func:`analyze` writes it.

    Writes ``samples.jsonl`` (plan order), ``cka_state.npz`` (the shards' accumulators merged, with every
    id), the path samples' ``paths/*.npz``, ``per_layer.parquet``, ``per_sample.parquet``, ``cka.npy``,
    ``summary.json``, ``figures/`` and ``analysis.json`` (the unsharded run's record: settings without the
    shard, plus ``merged_from``, the shards' folders).

    Args:
        shard_dirs: the shards' folders, each written by :func:`analyze` with ``AnalysisSettings(shard=(k,
            K))`` and otherwise the same source and settings; any order. A shard whose block is empty (more
            shards than samples) may be left out.
        out_dir: the merged folder (created; an earlier merge there is replaced).
        eval_dir: a ``speechgap eval`` folder whose correctness joins the per-sample table, as
            ``analyze(..., eval_dir=...)``.
        figures: draw ``figures/*.png`` (recorded as the run's ``figures`` setting).

    Returns:
        :class:`~speechgap.analysis.run.AnalysisResult` of ``out_dir`` (``n_new`` 0: nothing is measured).

    Raises:
        ConfigError: no shard folder given, ``out_dir`` is one of them or holds another analysis, shards of
            different settings, source, data or split, two folders holding the same shard (their samples
            overlap), a missing shard (named, with its samples), CKA sums that do not add up.
        DataError: a shard folder without ``analysis.json``, ``samples.jsonl`` or ``cka_state.npz``, or not
            a shard's; an incomplete shard (named, with a sample it lacks: rerun it, it resumes).
    """
    if isinstance(shard_dirs, (str, Path)) or not shard_dirs:
        raise ConfigError("argument 'shard_dirs' must be a list of shard folders, got none")
    shards = [_read_shard(Path(folder)) for folder in shard_dirs]
    _check_same_run(shards)
    by_index = _by_index(shards)
    first = by_index[min(by_index)]
    settings_record = {**first.record["settings"], "shard": None, "figures": bool(figures)}
    settings = AnalysisSettings(
        **{f.name: settings_record[f.name] for f in fields(AnalysisSettings) if f.name in settings_record}
    )
    layers = [int(layer) for layer in settings_record["layers"]]
    base_layer = int(settings_record["base_layer"])
    plan = _Plan(
        ids=list(first.planned_ids),
        layers=layers,
        base_layer=base_layer,
        load_layers=sorted(set(layers) | {base_layer}),
        path_samples=list(settings_record["path_samples"]),
    )
    records, duplicates = _merged_records(plan, by_index)
    accumulator = _merged_accumulator(by_index, records, settings)
    eval_records = _read_eval(eval_dir, plan.ids) if eval_dir is not None else None

    run_record = {key: value for key, value in first.record.items() if key not in ("shard", "fingerprint")}
    run_record["settings"] = settings_record
    run_record["merged_from"] = [str(by_index[k].folder.resolve()) for k in sorted(by_index)]
    run_record["eval_dir"] = str(Path(eval_dir).resolve()) if eval_dir is not None else None

    out_dir = prepare_out_dir(out_dir)
    for shard in shards:
        if shard.folder.resolve() == out_dir.resolve():
            raise ConfigError(f"argument 'out_dir' is the folder of shard {shard.label}")
    with RunLock(out_dir, command="analyze-merge"):
        for folder in (out_dir, out_dir / "paths", out_dir / "views", out_dir / "figures"):
            remove_stale_temp_files(folder)
        _check_resume(out_dir / RUN_FILE, run_record)
        atomic_write_json(out_dir / RUN_FILE, run_record)
        atomic_write_text(
            out_dir / SAMPLES_FILE, "".join(dumps_record(records[sid]) + "\n" for sid in plan.ids)
        )
        _save_cka_state(out_dir / CKA_STATE_FILE, accumulator, list(plan.ids))
        _copy_path_views(plan, by_index, records, out_dir)
        if settings.sample_views:
            _copy_sample_views(plan, by_index, records, out_dir)
        return _finish(
            out_dir, plan, settings, settings_record, run_record, accumulator, eval_records, 0, duplicates
        )


def _read_shard(folder: Path) -> _AnalysisShard:
    if not folder.is_dir():
        raise DataError("shard folder not found", path=folder)
    path = folder / RUN_FILE
    if not path.is_file():
        raise DataError(
            f"no {RUN_FILE}: not the folder of an analysis shard (or it never started)", path=path
        )
    record = read_json(path, what="analysis record")
    shard = record.get("shard")
    if not isinstance(shard, dict) or not all(key in shard for key in ("index", "count", "planned_ids")):
        raise DataError(
            "not a shard of a sharded analysis: it records no 'shard' (analyze with "
            "AnalysisSettings(shard=(k, K)) into it)",
            path=path,
            field="shard",
        )
    if not isinstance(record.get("settings"), dict):
        raise DataError("an analysis record without its settings", path=path, field="settings")
    return _AnalysisShard(
        folder, record, int(shard["index"]), int(shard["count"]), [str(sid) for sid in shard["planned_ids"]]
    )


def _run_identity(shard: _AnalysisShard) -> dict[str, Any]:
    settings = {k: v for k, v in shard.record["settings"].items() if k not in _PER_SHARD_SETTINGS}
    identity = {key: shard.record.get(key) for key in _SAME_RUN_KEYS}
    identity.update(settings=settings, count=shard.count, planned_ids=shard.planned_ids)
    return identity


def _check_same_run(shards: list[_AnalysisShard]) -> None:
    reference = _run_identity(shards[0])
    for shard in shards[1:]:
        identity = _run_identity(shard)
        for key, value in identity.items():
            if value != reference[key]:
                what = {"count": "split (number of shards)", "planned_ids": "list of planned samples"}.get(
                    key, key
                )
                raise ConfigError(
                    f"{shard.folder / RUN_FILE}: shard {shard.label} was run with another {what} than "
                    f"{shards[0].folder / RUN_FILE}; merge only the shards of one run"
                )


def _by_index(shards: list[_AnalysisShard]) -> dict[int, _AnalysisShard]:
    """The shards by block index; every block that holds samples must be there exactly once."""
    by_index: dict[int, _AnalysisShard] = {}
    for shard in shards:
        earlier = by_index.get(shard.index)
        if earlier is not None:
            shown = ", ".join(repr(sid) for sid in shard.ids[:3])
            raise ConfigError(
                f"argument 'shard_dirs': {earlier.folder} and {shard.folder} both hold shard {shard.label} "
                f"(samples {shown}, ...), so their samples overlap; give each shard once"
            )
        by_index[shard.index] = shard
    first = shards[0]
    for index in range(first.count):
        block = shard_range(len(first.planned_ids), index, first.count)
        if block and index not in by_index:
            shown = ", ".join(repr(sid) for sid in first.planned_ids[block.start : block.stop][:3])
            raise ConfigError(
                f"argument 'shard_dirs': no folder holds shard {index + 1}/{first.count} (samples {shown}, "
                "...); run it, or give its folder"
            )
    return by_index


def _merged_records(
    plan: _Plan, by_index: dict[int, _AnalysisShard]
) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """``samples.jsonl`` records of every planned sample, each from the shard whose block holds it, and the
    ids that a shard's file repeated."""
    records: dict[str, dict[str, Any]] = {}
    duplicates: dict[str, int] = {}
    for shard in by_index.values():
        path = shard.folder / SAMPLES_FILE
        if not path.is_file():
            raise DataError(f"no {SAMPLES_FILE}: shard {shard.label} has not run yet", path=path)
        sample_file = _read_samples(path)
        for sample_id in shard.ids:
            record = sample_file.records.get(sample_id)
            if record is None:
                raise DataError(
                    f"shard {shard.label} is incomplete: sample {sample_id!r} has no record; run the shard "
                    "again (it resumes) before merging",
                    path=path,
                )
            records[sample_id] = record
            if sample_id in sample_file.duplicates:
                duplicates[sample_id] = sample_file.duplicates[sample_id]
    return records, {sid: duplicates[sid] for sid in plan.ids if sid in duplicates}


def _merged_accumulator(
    by_index: dict[int, _AnalysisShard], records: dict[str, dict[str, Any]], settings: AnalysisSettings
) -> CrossLayerCKA:
    """The shards' CKA accumulators added up in shard order, each checked to hold exactly its block's rows."""
    merged = CrossLayerCKA(debiased=settings.debiased, max_bytes=settings.cka_max_bytes)
    for index in sorted(by_index):
        shard = by_index[index]
        analysed = [sid for sid in shard.ids if "skipped" not in records[sid]]
        path = shard.folder / CKA_STATE_FILE
        if not path.is_file():
            if analysed:
                raise DataError(
                    f"shard {shard.label} is incomplete: no {CKA_STATE_FILE} for its analysed samples; run "
                    "the shard again (it resumes) before merging",
                    path=path,
                )
            continue
        accumulator, state_ids = _load_cka_state(path, settings)
        in_state = set(state_ids)
        lacking = [sid for sid in analysed if sid not in in_state]
        if lacking:
            raise DataError(
                f"shard {shard.label} is incomplete: the CKA rows of sample {lacking[0]!r} are not in its "
                "state; run the shard again (it resumes) before merging",
                path=path,
            )
        foreign = sorted(in_state - set(shard.ids))
        if foreign:
            raise DataError(
                f"shard {shard.label} holds the CKA rows of sample {foreign[0]!r}, which is not in its block",
                path=path,
            )
        expected_rows = sum(int(records[sid].get("cka_rows") or 0) for sid in analysed)
        if accumulator.n_rows != expected_rows:
            raise DataError(
                f"shard {shard.label}: the CKA state holds {accumulator.n_rows} rows, its samples "
                f"{expected_rows}",
                path=path,
            )
        try:
            merged.merge(accumulator)
        except ConfigError as err:
            raise ConfigError(
                f"{path}: the CKA state of shard {shard.label} does not add up: {err}"
            ) from None
    return merged


def _copy_path_views(
    plan: _Plan, by_index: dict[int, _AnalysisShard], records: dict[str, dict[str, Any]], out_dir: Path
) -> None:
    """Copy each path sample's ``paths/*.npz`` from the shard that holds the sample."""
    holder = {sid: shard for shard in by_index.values() for sid in shard.ids}
    for sample_id in plan.path_samples:
        if "skipped" in records[sample_id]:
            continue
        shard = holder[sample_id]
        source = _path_file(shard.folder, sample_id)
        if not source.is_file():
            raise DataError(
                f"shard {shard.label} is incomplete: the path view of sample {sample_id!r} is missing; run the "
                "shard again (it remakes it) before merging",
                path=source,
            )
        atomic_write_bytes(_path_file(out_dir, sample_id), source.read_bytes())


def _copy_sample_views(
    plan: _Plan, by_index: dict[int, _AnalysisShard], records: dict[str, dict[str, Any]], out_dir: Path
) -> None:
    """Copy every analysed sample's ``views/*.npz`` (the explorer's matrices) from the shard that holds it."""
    holder = {sid: shard for shard in by_index.values() for sid in shard.ids}
    for sample_id in plan.ids:
        if "skipped" in records[sample_id]:
            continue
        source = view_file(holder[sample_id].folder, sample_id)
        if not source.is_file():
            raise DataError(
                f"shard {holder[sample_id].label} is incomplete: the view of sample {sample_id!r} is missing; "
                "analyse that shard into a new folder before merging",
                path=source,
            )
        atomic_write_bytes(view_file(out_dir, sample_id), source.read_bytes())
