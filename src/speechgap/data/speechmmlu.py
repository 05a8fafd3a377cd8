"""SpeechMMLU (MiMo-Audio, Xiaomi 2025) from the Hub dataset ``XiaomiMiMo/SpeechMMLU``.

8,549 MMLU questions in 34 subjects, spoken by TTS with 250 voices. The repository has one config per
subject (split ``train``) whose rows hold ``id, subject, question_text, question_audio, voice_id, answer``:
``question_text`` is the question with its four options as spoken, ``question_audio`` the path of the audio
file relative to the dataset folder and ``answer`` the index 0-3 of the correct option. The audio comes as
``audio.tar.gz``, to be unpacked into ``DIR/audio`` (as the MiMo-Audio-Eval toolkit does)::

    huggingface-cli download XiaomiMiMo/SpeechMMLU --repo-type dataset --local-dir DIR
    mkdir -p DIR/audio && tar -xzf DIR/audio.tar.gz -C DIR/audio

Data files are found through the ``configs`` of the dataset card (``README.md``); without a card, every
parquet/jsonl/json/csv file outside ``audio/`` is read and rows are grouped by their ``subject`` column.
Metadata is small and read up front; audio is decoded on access.

Mapping: ``question_text`` -> ``text`` (the text run sees the options too), options parsed into ``choices``,
``answer`` index -> letter (``2`` -> ``"C"``), ``subject`` -> ``subset``, ``voice_id`` -> ``speaker``.
"""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.audio import load_audio
from speechgap.data.mcq import LETTERS, parse_choices
from speechgap.data.text import check_text
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import DataError

HUB_NAME = "XiaomiMiMo/SpeechMMLU"
FIELDS = ("id", "subject", "question_text", "question_audio", "voice_id", "answer")
DATA_SUFFIXES = (".parquet", ".jsonl", ".json", ".csv")
_NOT_DATA = {"few_shot_prompts.json"}


def load_speechmmlu(
    source: str | Path = HUB_NAME, *, subject: str | list[str] | None = None, check_audio: bool = True
) -> PairedDataset:
    """Load SpeechMMLU (all subjects, or the ones named) as a lazy :class:`PairedDataset`.

    Args:
        source: the local copy's folder, or the Hub name (downloaded to the ``huggingface_hub`` cache and
            unpacked there when the Hub is reachable).
        subject: one subject (``"astronomy"``), a list of them, or None for all.
        check_audio: check up front that every audio file exists.

    Raises:
        DataError: unknown subject (listing the available ones), a missing field, an answer outside 0-3,
            duplicate ids, missing audio files (with the command that unpacks them).
    """
    if isinstance(source, str) and source.strip().lower() == HUB_NAME.lower() and not Path(source).exists():
        root = _download(HUB_NAME)
        origin = HUB_NAME
    else:
        root = Path(source)
        if not root.is_dir():
            raise DataError(f"no such folder, and not the Hub name '{HUB_NAME}'", path=root)
        origin = str(root.resolve())
    by_subject = _read_rows(root, subject)
    wanted = _select_subjects(sorted(by_subject), subject, origin)
    rows = [(name, row) for name in wanted for row in by_subject[name]]
    return _build(root, origin, subject, wanted, rows, check_audio)


def _select_subjects(available: list[str], subject: str | list[str] | None, origin: str) -> list[str]:
    if not available:
        raise DataError("no SpeechMMLU data files found", path=origin)
    if subject is None:
        return available
    names = [subject] if isinstance(subject, str) else list(subject)
    unknown = [name for name in names if name not in available]
    if unknown:
        raise DataError(
            f"unknown subject {', '.join(repr(u) for u in unknown)}; available: {', '.join(available)}",
            path=origin,
        )
    return names


def _read_rows(root: Path, subject: str | list[str] | None) -> dict[str, list[tuple[str, int, dict]]]:
    """Subject -> ``(file, row index, row)`` triples."""
    configs = _card_configs(root)
    wanted = None if subject is None else ({subject} if isinstance(subject, str) else set(subject))
    by_subject: dict[str, list[tuple[str, int, dict]]] = {}
    if configs:
        for name, files in configs.items():
            by_subject.setdefault(name, [])
            if wanted is not None and name not in wanted:
                continue  # listed as available, not read
            for file in files:
                by_subject[name].extend((str(file), i, row) for i, row in enumerate(_read_table(file)))
        return by_subject
    for file in _data_files(root):
        for index, row in enumerate(_read_table(file)):
            name = row.get("subject")
            if not isinstance(name, str):
                raise DataError(f"'subject' must be a string, got {name!r}", path=f"{file} row {index}")
            by_subject.setdefault(name, []).append((str(file), index, row))
    return by_subject


def _card_configs(root: Path) -> dict[str, list[Path]]:
    """``config_name -> data files`` from the YAML header of ``README.md`` (empty when there is none)."""
    card = root / "README.md"
    if not card.is_file():
        return {}
    import yaml

    text = card.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    try:
        header = yaml.safe_load(text.split("---", 2)[1]) or {}
    except yaml.YAMLError as err:
        raise DataError(f"cannot read the YAML header of the dataset card: {err}", path=card) from None
    result: dict[str, list[Path]] = {}
    for config in header.get("configs") or []:
        name = config.get("config_name")
        data_files = config.get("data_files")
        if not name or data_files is None:
            continue
        patterns: list[str] = []
        for entry in data_files if isinstance(data_files, list) else [data_files]:
            paths = entry.get("path") if isinstance(entry, dict) else entry
            patterns.extend(paths if isinstance(paths, list) else [paths])
        files = sorted({f for pattern in patterns for f in root.glob(pattern) if f.is_file()})
        if not files:
            raise DataError(
                f"the dataset card lists config '{name}' but none of its files ({', '.join(patterns)}) exist",
                path=card,
            )
        result[name] = files
    return result


def _data_files(root: Path) -> list[Path]:
    files = []
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root)
        if (
            file.is_file()
            and file.suffix in DATA_SUFFIXES
            and file.name not in _NOT_DATA
            and relative.parts[0] not in ("audio", ".cache")
        ):
            files.append(file)
    return files


def _read_table(file: Path) -> list[dict[str, Any]]:
    try:
        if file.suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(file).to_pylist()
        if file.suffix == ".csv":
            import pyarrow.csv as pcsv

            return pcsv.read_csv(file).to_pylist()
        if file.suffix in (".jsonl", ".json"):
            return _read_json_rows(file)
    except DataError:
        raise
    except Exception as err:  # pyarrow raises several error types for a broken file
        raise DataError(f"cannot read data file: {err}", path=file) from None
    raise DataError(f"unsupported data file type '{file.suffix}'", path=file)


def _read_json_rows(file: Path) -> list[dict[str, Any]]:
    text = file.read_text(encoding="utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = json.loads(stripped)
        if not all(isinstance(row, dict) for row in rows):
            raise DataError("expected a JSON list of objects", path=file)
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not valid JSON ({err})", path=file, line=number) from None
        if not isinstance(row, dict):
            raise DataError("expected a JSON object", path=file, line=number)
        rows.append(row)
    return rows


def _build(
    root: Path,
    origin: str,
    subject: str | list[str] | None,
    subjects: list[str],
    rows: list[tuple[str, tuple[str, int, dict]]],
    check_audio: bool,
) -> PairedDataset:
    samples: list[PairedSample] = []
    audio_paths: list[Path] = []
    labels: list[str] = []
    first_seen: dict[str, str] = {}
    for _, (file, index, row) in rows:
        where = f"{file} row {index}"
        missing = [name for name in FIELDS if row.get(name) is None]
        if missing:
            raise DataError(f"missing field(s) {', '.join(missing)}", path=where, field=missing[0])
        sample = _row_to_sample(row, where)
        if sample.id in first_seen:
            raise DataError(
                f"duplicate id '{sample.id}' (first at {first_seen[sample.id]})", path=where, field="id"
            )
        first_seen[sample.id] = where
        audio_path = _audio_path(root, row["question_audio"])
        if check_audio and not audio_path.is_file():
            raise DataError(
                f"audio file not found: {audio_path}. Unpack the audio first: "
                f"mkdir -p {root}/audio && tar -xzf {root}/audio.tar.gz -C {root}/audio",
                path=where,
                field="question_audio",
            )
        samples.append(sample)
        audio_paths.append(audio_path)
        labels.append(f"{audio_path} ({where}, field 'question_audio')")
    if not samples:
        raise DataError("no rows for the chosen subjects", path=origin)

    def load(index: int) -> PairedSample:
        template = samples[index]
        return template.with_audio(load_audio(audio_paths[index], where=labels[index]))

    source = {
        "loader": "speechmmlu",
        "path": origin,
        "subset": subject if subject is None or isinstance(subject, str) else ",".join(subject),
        "split": "train",
        "subjects": subjects,
    }
    return PairedDataset(source, [s.id for s in samples], load)


def _row_to_sample(row: dict[str, Any], where: str) -> PairedSample:
    text = row["question_text"]
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"must be a non-empty string, got {text!r}", path=where, field="question_text")
    check_text(text, path=where, field="question_text", controls="nul")
    for name in ("id", "subject", "voice_id"):
        check_text(str(row[name]), path=where, field=name, controls="nul")
    answer = row["answer"]
    if isinstance(answer, str) and answer.strip().isdigit():
        answer = int(answer.strip())
    if not isinstance(answer, (int, np.integer)) or isinstance(answer, bool) or not 0 <= answer <= 3:
        raise DataError(f"must be an option index 0-3, got {answer!r}", path=where, field="answer")
    parsed = parse_choices(text)
    if parsed is not None and answer >= len(parsed[1]):
        raise DataError(
            f"option index {answer} is outside the {len(parsed[1])} options found in 'question_text'",
            path=where,
            field="answer",
        )
    meta = {
        "subject": row["subject"],
        "answer_index": int(answer),
        "question_audio": row["question_audio"],
        "choices_parsed": parsed is not None,
    }
    return PairedSample(
        id=str(row["id"]),
        text=text,
        audio=np.zeros(0, dtype=np.float32),  # decoded on access
        answer=LETTERS[int(answer)],
        choices=parsed[1] if parsed else None,
        subset=str(row["subject"]),
        speaker=str(row["voice_id"]),
        meta=meta,
    )


def _audio_path(root: Path, value: Any) -> Path:
    if isinstance(value, dict):  # an Audio feature's {"bytes", "path"} holding a path only
        value = value.get("path")
    candidate = Path(str(value))
    if candidate.is_absolute():
        return candidate
    direct = root / candidate
    if direct.is_file():
        return direct
    nested = root / "audio" / candidate
    return nested if nested.is_file() else direct


def _download(name: str) -> Path:
    """Fetch the dataset into the Hub cache and unpack its audio once (needs Hub access)."""
    try:
        from huggingface_hub import snapshot_download

        root = Path(snapshot_download(repo_id=name, repo_type="dataset"))
    except Exception as err:  # network and Hub errors have many types
        raise DataError(
            f"cannot download from the Hub ({type(err).__name__}: {err}). Without Hub access, download a local "
            f"copy (huggingface-cli download {name} --repo-type dataset --local-dir DIR), unpack DIR/audio.tar.gz "
            "into DIR/audio, and load DIR",
            path=name,
        ) from None
    archive = root / "audio.tar.gz"
    target = root / "audio"
    if archive.is_file() and not target.is_dir():
        partial = root / "audio.partial"
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(partial, filter="data")
        partial.rename(target)
    return root
