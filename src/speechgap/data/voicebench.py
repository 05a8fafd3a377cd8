"""VoiceBench (Chen et al., 2024, arXiv 2410.17196) from the Hub dataset ``hlt-lab/voicebench``.

The Hub repository holds one folder per subset and one parquet file (or several shards) per split::

    voicebench/
      sd-qa/usa-00000-of-00001.parquet   sd-qa/gbr-00000-of-00001.parquet   ...  (11 regions)
      mmsu/biology-00000-of-00001.parquet  ...                                    (12 subjects)
      openbookqa/test-00000-of-00001.parquet
      wildvoice/test-00000-of-00010.parquet ... test-00009-of-00010.parquet

Each row holds ``audio`` (the ``datasets`` Audio struct ``{bytes, path}``, 16 kHz), ``prompt`` (the same
question as text), and depending on the subset ``reference``, ``id`` and ifeval's ``key``,
``instruction_id_list``, ``kwargs``.

Three ways in, all ending in the same lazy :class:`PairedDataset`:

- a folder from ``huggingface-cli download hlt-lab/voicebench --repo-type dataset --local-dir DIR``
  (parquet read with pyarrow; only the row group holding a sample is read when it is accessed);
- a ``datasets.save_to_disk`` folder (a ``Dataset`` or ``DatasetDict``), either ``DIR`` itself (then say
  which subset it holds) or ``DIR/<subset>``;
- the name ``hlt-lab/voicebench`` when the Hub is reachable (through ``datasets.load_dataset``).

Mapping: ``prompt`` -> ``text``; for the multiple-choice subsets (mmsu, openbookqa) the options are parsed
from the prompt into ``choices`` and ``answer`` is the reference letter; for the others ``answer`` is the
``reference`` text when there is one. Every other column (``reference``, ifeval's ``key``,
``instruction_id_list``, ``kwargs``, ...) is kept in ``meta``, with the split under ``meta["split"]``.
When several splits are loaded at once, ids are prefixed with the split (``"usa/12"``) to stay unique.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.audio import load_audio
from speechgap.data.mcq import answer_letter, parse_choices
from speechgap.data.text import check_text
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import DataError

HUB_NAME = "hlt-lab/voicebench"

SD_QA_REGIONS = ("aus", "gbr", "ind_n", "ind_s", "irl", "kenya", "nga", "nzl", "phl", "usa", "zaf")
MMSU_SUBJECTS = (
    "biology", "business", "chemistry", "economics", "engineering", "health",
    "history", "law", "other", "philosophy", "physics", "psychology",
)  # fmt: skip

SUBSETS: dict[str, tuple[str, ...]] = {
    "alpacaeval": ("test",),
    "alpacaeval_full": ("test",),
    "alpacaeval_speaker": (),  # splits are read from the files
    "commoneval": ("test",),
    "wildvoice": ("test",),
    "openbookqa": ("test",),
    "mmsu": MMSU_SUBJECTS,
    "sd-qa": SD_QA_REGIONS,
    "ifeval": ("test",),
    "bbh": ("test",),
    "advbench": ("test",),
    "mtbench": ("test",),
}
"""Subsets of ``hlt-lab/voicebench`` and their splits, as published on the Hub."""

MCQ_SUBSETS = frozenset({"mmsu", "openbookqa"})
"""Subsets whose prompt carries options A-D and whose reference is the answer letter."""

MCQ_OPTIONS = 4
"""Options of a multiple-choice question (A-D): the answer range when the options cannot be parsed."""

AUDIO_COLUMN = "audio"
TEXT_COLUMN = "prompt"

_NO_AUDIO = np.zeros(0, dtype=np.float32)  # rows are kept as templates; audio is decoded on access

_SHARD = re.compile(r"^(?P<split>.+)-\d{5}-of-\d{5}\.parquet$")


@dataclass
class _Part:
    """One split of one subset: its rows without audio, and a way to fetch one row's audio."""

    split: str
    rows: list[dict[str, Any]]
    audio_at: Callable[[int], Any]
    origin: str  # file or folder, for error messages


def load_voicebench(
    source: str | Path = HUB_NAME, *, subset: str | None = None, split: str | None = None
) -> PairedDataset:
    """Load one VoiceBench subset (one split, or all its splits) as a lazy :class:`PairedDataset`.

    Args:
        source: a local folder (``huggingface-cli download`` copy or ``save_to_disk`` folder) or the Hub
            name ``hlt-lab/voicebench``.
        subset: e.g. ``"sd-qa"``, ``"mmsu"``, ``"openbookqa"``, ``"ifeval"``. May be left out when the
            folder holds a single subset.
        split: e.g. ``"usa"`` for sd-qa, ``"biology"`` for mmsu, ``"test"`` elsewhere. None loads every
            split of the subset (all 11 sd-qa regions, all 12 mmsu subjects).

    Raises:
        DataError: unknown subset or split (the message lists the available ones), a missing column, an
            unreadable parquet file, a multiple-choice reference that is not an option letter.
    """
    if isinstance(source, str) and source.strip().lower() == HUB_NAME and not Path(source).exists():
        subset = _require_subset(subset, sorted(SUBSETS), HUB_NAME)
        parts = _hub_parts(subset, split)
        origin = HUB_NAME
    else:
        root = Path(source)
        if not root.exists():
            raise DataError(f"no such folder, and not the Hub name '{HUB_NAME}'", path=root)
        subset, parts = _local_parts(root, subset, split)
        origin = str(root.resolve())
    return _build(origin, subset, split, parts)


def _require_subset(subset: str | None, available: list[str], where: str) -> str:
    if subset is None:
        if len(available) == 1:
            return available[0]
        raise DataError(
            f"say which subset to load (subset=...); available: {', '.join(available)}", path=where
        )
    if subset not in available:
        raise DataError(f"unknown subset '{subset}'; available: {', '.join(available)}", path=where)
    return subset


def _select_splits(available: list[str], split: str | None, where: str) -> list[str]:
    if not available:
        raise DataError("no splits found", path=where)
    if split is None:
        return available
    if split not in available:
        raise DataError(f"unknown split '{split}'; available: {', '.join(available)}", path=where)
    return [split]


# ---- local folders ---------------------------------------------------------------------------------------


def _is_save_to_disk(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (
        (folder / "state.json").is_file() and (folder / "dataset_info.json").is_file()
    )


def _parquet_splits(folder: Path) -> dict[str, list[Path]]:
    """Split name -> its shard files, for ``<split>-00000-of-0000N.parquet`` files or ``<split>/*.parquet``."""
    splits: dict[str, list[Path]] = {}
    for file in sorted(folder.glob("*.parquet")):
        match = _SHARD.match(file.name)
        splits.setdefault(match.group("split") if match else file.stem, []).append(file)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        shards = sorted(sub.glob("*.parquet"))
        if shards:
            splits.setdefault(sub.name, []).extend(shards)
    return splits


def _local_parts(root: Path, subset: str | None, split: str | None) -> tuple[str, list[_Part]]:
    if _is_save_to_disk(root):
        if subset is None:
            raise DataError(
                "this save_to_disk folder does not say which VoiceBench subset it holds; pass subset=... "
                f"(one of {', '.join(SUBSETS)})",
                path=root,
            )
        return subset, _disk_parts(root, subset, split)
    if root.is_dir() and _parquet_splits(root) and not any(_subset_dirs(root)):
        # The folder of one subset, e.g. DIR/sd-qa.
        subset = subset or root.name
        if subset != root.name:
            raise DataError(f"this folder holds subset '{root.name}', not '{subset}'", path=root)
        return subset, _parquet_parts(root, subset, split)
    subset_dirs = dict(_subset_dirs(root))
    subset = _require_subset(subset, sorted(subset_dirs), str(root))
    folder = subset_dirs[subset]
    if _is_save_to_disk(folder):
        return subset, _disk_parts(folder, subset, split)
    return subset, _parquet_parts(folder, subset, split)


def _subset_dirs(root: Path):
    if not root.is_dir():
        return
    for folder in sorted(root.iterdir()):
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        if _is_save_to_disk(folder) or any(folder.glob("*.parquet")) or any(folder.glob("*/*.parquet")):
            yield folder.name, folder


def _parquet_parts(folder: Path, subset: str, split: str | None) -> list[_Part]:
    splits = _parquet_splits(folder)
    return [_parquet_part(name, splits[name]) for name in _select_splits(sorted(splits), split, str(folder))]


def _parquet_part(split: str, files: list[Path]) -> _Part:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    # (file, row group, first row of the group) for every row group, in row order.
    groups: list[tuple[pq.ParquetFile, int, int]] = []
    for file in files:
        try:
            handle = pq.ParquetFile(file)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataError(
                f"not a readable parquet file ({err}); if it is a small text file, it is a Git LFS pointer: "
                "fetch the real file (git lfs pull, or huggingface-cli download)",
                path=file,
            ) from None
        names = handle.schema_arrow.names
        for column in (AUDIO_COLUMN, TEXT_COLUMN):
            if column not in names:
                raise DataError(
                    f"missing column '{column}' (columns: {', '.join(names)})", path=file, field=column
                )
        others = [name for name in names if name != AUDIO_COLUMN]
        for group in range(handle.metadata.num_row_groups):
            groups.append((handle, group, len(rows)))
            rows.extend(handle.read_row_group(group, columns=others).to_pylist())
    starts = [start for _, _, start in groups]
    cache: dict[str, Any] = {"key": None, "values": None}

    def audio_at(index: int) -> Any:
        position = bisect.bisect_right(starts, index) - 1
        handle, group, start = groups[position]
        key = (id(handle), group)
        if cache["key"] != key:
            cache["values"] = handle.read_row_group(group, columns=[AUDIO_COLUMN]).column(0)
            cache["key"] = key
        return cache["values"][index - start].as_py()

    origin = str(files[0].parent / f"{split}-*.parquet") if len(files) > 1 else str(files[0])
    return _Part(split, rows, audio_at, origin)


def _disk_parts(folder: Path, subset: str, split: str | None) -> list[_Part]:
    import datasets

    loaded = datasets.load_from_disk(str(folder))
    if isinstance(loaded, datasets.DatasetDict):
        names = _select_splits(sorted(loaded.keys()), split, str(folder))
        return [_dataset_part(name, loaded[name], str(folder / name)) for name in names]
    name = split or _single_split_name(folder, loaded)
    return [_dataset_part(name, loaded, str(folder))]


def _single_split_name(folder: Path, dataset: Any) -> str:
    found = getattr(dataset, "split", None)
    return str(found) if found else "test"


def _dataset_part(split: str, dataset: Any, origin: str) -> _Part:
    """A ``datasets.Dataset`` as a part; audio is read undecoded (``{bytes, path}``) and decoded here."""
    import datasets

    names = list(dataset.column_names)
    for column in (AUDIO_COLUMN, TEXT_COLUMN):
        if column not in names:
            raise DataError(
                f"missing column '{column}' (columns: {', '.join(names)})", path=origin, field=column
            )
    # decode=False: no torchcodec needed, and audio is decoded by speechgap's own rules.
    audio = dataset.select_columns([AUDIO_COLUMN])
    if isinstance(audio.features[AUDIO_COLUMN], datasets.Audio):
        audio = audio.cast_column(AUDIO_COLUMN, datasets.Audio(decode=False))
    rows = dataset.remove_columns([AUDIO_COLUMN]).to_list()
    return _Part(split, rows, lambda index: audio[index][AUDIO_COLUMN], origin)


# ---- the Hub ----------------------------------------------------------------------------------------------


def _hub_parts(subset: str, split: str | None) -> list[_Part]:
    loaded = _load_hub_dataset(HUB_NAME, subset, split)
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        names = _select_splits(sorted(loaded.keys()), split, f"{HUB_NAME}/{subset}")
        return [_dataset_part(name, loaded[name], f"{HUB_NAME}/{subset}/{name}") for name in names]
    return [_dataset_part(split or "test", loaded, f"{HUB_NAME}/{subset}/{split}")]


def _load_hub_dataset(name: str, config: str, split: str | None) -> Any:
    """``datasets.load_dataset`` with its failures turned into a DataError that says what to do."""
    import datasets

    try:
        return datasets.load_dataset(name, config, split=split)
    except (ValueError, KeyError) as err:
        raise DataError(f"cannot load config '{config}' split '{split}': {err}", path=name) from None
    except Exception as err:  # network and Hub errors have many types
        raise DataError(
            f"cannot load from the Hub ({type(err).__name__}: {err}). Without Hub access, download a local "
            f"copy (huggingface-cli download {name} --repo-type dataset --local-dir DIR) and load DIR",
            path=name,
        ) from None


# ---- rows to samples --------------------------------------------------------------------------------------


def _build(origin: str, subset: str, split: str | None, parts: list[_Part]) -> PairedDataset:
    entries: list[tuple[_Part, int, PairedSample]] = []
    prefix = len(parts) > 1
    seen: dict[str, str] = {}
    for part in parts:
        for index, row in enumerate(part.rows):
            where = f"voicebench/{subset}/{part.split} row {index} ({part.origin})"
            sample = _row_to_sample(row, index, subset, part.split, where)
            if prefix:
                sample.id = f"{part.split}/{sample.id}"
            if sample.id in seen:
                raise DataError(
                    f"duplicate id '{sample.id}' (first at {seen[sample.id]})", path=where, field="id"
                )
            seen[sample.id] = where
            entries.append((part, index, sample))
    if not entries:
        raise DataError("no rows", path=f"{origin}/{subset}")

    def load(position: int) -> PairedSample:
        part, index, template = entries[position]
        where = f"voicebench/{subset}/{part.split} row {index}, column '{AUDIO_COLUMN}' ({part.origin})"
        raw = part.audio_at(index)
        if raw is None:
            raise DataError("audio is missing (null)", path=where)
        return template.with_audio(load_audio(raw, where=where))

    source = {
        "loader": "voicebench",
        "path": origin,
        "subset": subset,
        "split": split,
        "splits": [part.split for part in parts],
    }
    return PairedDataset(source, [sample.id for _, _, sample in entries], load)


def _row_to_sample(row: dict[str, Any], index: int, subset: str, split: str, where: str) -> PairedSample:
    text = row.get(TEXT_COLUMN)
    if not isinstance(text, str) or not text.strip():
        raise DataError(
            f"'{TEXT_COLUMN}' must be a non-empty string, got {text!r}", path=where, field=TEXT_COLUMN
        )
    check_text(text, path=where, field=TEXT_COLUMN, controls="nul")
    raw_id = row.get("id")
    sample_id = str(raw_id) if raw_id is not None and str(raw_id) != "" else str(index)
    check_text(sample_id, path=where, field="id", controls="nul")
    reference = row.get("reference")
    if isinstance(reference, str):
        check_text(reference, path=where, field="reference", controls="nul")
    meta = {"split": split}
    meta.update({k: _plain(v) for k, v in row.items() if k not in (TEXT_COLUMN, "id")})
    answer: str | None = None
    choices: list[str] | None = None
    if subset in MCQ_SUBSETS:
        parsed = parse_choices(text)
        choices = parsed[1] if parsed else None
        meta["choices_parsed"] = parsed is not None
        answer = answer_letter(reference, choices, n_choices=MCQ_OPTIONS)
        if answer is None:
            raise DataError(
                f"multiple-choice reference {reference!r} is not an option letter"
                + (f" of {len(choices)} options" if choices else " A-D (the options could not be parsed)"),
                path=where,
                field="reference",
            )
    elif isinstance(reference, str):
        answer = reference
    speaker = row.get("speaker")
    return PairedSample(
        id=sample_id,
        text=text,
        audio=_NO_AUDIO,
        answer=answer,
        choices=choices,
        subset=subset,
        speaker=str(speaker) if speaker is not None else None,
        meta=meta,
    )


def _plain(value: Any) -> Any:
    """Make a parquet value JSON-safe (ifeval's ``kwargs`` structs stay dicts; bytes become None)."""
    if isinstance(value, bytes):
        return None
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value
