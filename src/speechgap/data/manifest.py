"""THE manifest format: paired speech/text samples as JSON lines, one sample per line.

Each line is a JSON object:

========== ======================= =========================================================================
field      type                    meaning
========== ======================= =========================================================================
id         string (required)       unique in the file (an integer is accepted and read as a string)
text       string (required)       the question as text, exactly what a text-input run is given
audio      string (required)       path of the audio file, relative to the manifest's folder (or absolute)
answer     string or null          reference answer: option letter for multiple choice, else the text
choices    list of strings or null 2 to 26 non-empty option texts in letter order
subset     string or null          subset / subject / category
speaker    string or null          speaker or voice id
word_times list or null            ``[[word, start_s, end_s], ...]`` with 0 <= start_s <= end_s (seconds)
meta       object                  anything else; unknown top-level fields are folded into ``meta``
========== ======================= =========================================================================

:func:`read_manifest` checks every line up front (JSON, fields and types, duplicate ids, audio files exist)
and decodes audio only when a sample is accessed. Text fields (id, text, audio, answer, choices, subset,
speaker, the words of word_times) may not hold lone surrogates or control characters other than tab, line
feed and carriage return (:mod:`speechgap.data.text`); ``meta`` may hold anything but lone surrogates. With
``choices``, ``answer`` must name one of them: a letter (``"B"``, ``"(b)"``) or a 0-based index
(``"1"``), as multiple-choice scoring reads it. :func:`write_manifest_record` and :func:`write_manifest`
write the same schema, so other parts of speechgap (TTS synthesis) produce manifests this module reads.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechgap.data.audio import load_audio
from speechgap.data.text import check_nested_text, check_text
from speechgap.data.types import PairedDataset, PairedSample, WordTime
from speechgap.errors import DataError
from speechgap.io import JsonlAppender, atomic_write_text, dumps_record, read_jsonl

REQUIRED_FIELDS = ("id", "text", "audio")
OPTIONAL_FIELDS = ("answer", "choices", "subset", "speaker", "word_times", "meta")
MAX_CHOICES = 26
"""Options are lettered A-Z."""


@dataclass
class ManifestRecord:
    """One manifest line. ``audio`` is the path as written in the file (relative to the manifest folder)."""

    id: str
    text: str
    audio: str
    answer: str | None = None
    choices: list[str] | None = None
    subset: str | None = None
    speaker: str | None = None
    word_times: list[WordTime] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object for this record (optional fields left out when empty)."""
        record: dict[str, Any] = {"id": self.id, "text": self.text, "audio": self.audio}
        for name in ("answer", "choices", "subset", "speaker"):
            value = getattr(self, name)
            if value is not None:
                record[name] = value
        if self.word_times is not None:
            record["word_times"] = [[w, float(s), float(e)] for w, s, e in self.word_times]
        if self.meta:
            record["meta"] = self.meta
        return record

    @classmethod
    def from_json(cls, obj: dict[str, Any], *, path: str | Path | None = None, line: int | None = None):
        """Validate one parsed JSON object; errors name ``path``, ``line`` and the field."""
        return _validate(obj, path=path, line=line)


def _validate(obj: Any, *, path: str | Path | None, line: int | None) -> ManifestRecord:
    if not isinstance(obj, dict):
        raise DataError("expected a JSON object", path=path, line=line)
    for name in REQUIRED_FIELDS:
        if name not in obj or obj[name] is None:
            raise DataError(f"missing required field '{name}'", path=path, line=line, field=name)
    record_id = obj["id"]
    if isinstance(record_id, int) and not isinstance(record_id, bool):
        record_id = str(record_id)
    for name, value in (("id", record_id), ("text", obj["text"]), ("audio", obj["audio"])):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"must be a non-empty string, got {value!r}", path=path, line=line, field=name)
        check_text(value, path=path, line=line, field=name)
    for name in ("answer", "subset", "speaker"):
        value = obj.get(name)
        if value is not None and not isinstance(value, str):
            raise DataError(
                f"must be a string or null, got {type(value).__name__}", path=path, line=line, field=name
            )
        if value is not None:
            check_text(value, path=path, line=line, field=name)
    choices = obj.get("choices")
    if choices is not None and (
        not isinstance(choices, list)
        or not 2 <= len(choices) <= MAX_CHOICES
        or not all(isinstance(c, str) and c.strip() for c in choices)
    ):
        raise DataError(
            f"must be a list of 2 to {MAX_CHOICES} non-empty strings or null, got {choices!r}",
            path=path,
            line=line,
            field="choices",
        )
    for index, choice in enumerate(choices or []):
        check_text(choice, path=path, line=line, field=f"choices[{index}]")
    if choices is not None and obj.get("answer") is not None:
        problem = _answer_problem(obj["answer"], len(choices))
        if problem is not None:
            raise DataError(problem, path=path, line=line, field="answer")
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise DataError("must be a JSON object", path=path, line=line, field="meta")
    extra = {k: v for k, v in obj.items() if k not in REQUIRED_FIELDS + OPTIONAL_FIELDS}
    check_nested_text(meta, path=path, line=line, field="meta")
    for key, value in extra.items():
        check_nested_text(key, path=path, line=line, field=key)
        check_nested_text(value, path=path, line=line, field=key)
    return ManifestRecord(
        id=record_id,
        text=obj["text"],
        audio=obj["audio"],
        answer=obj.get("answer"),
        choices=choices,
        subset=obj.get("subset"),
        speaker=obj.get("speaker"),
        word_times=_validate_word_times(obj.get("word_times"), path=path, line=line),
        meta={**meta, **extra},
    )


def _answer_problem(answer: str, n_choices: int) -> str | None:
    """Why ``answer`` names none of ``n_choices`` options, read as multiple-choice scoring reads it (a letter,
    optionally in parentheses, any case; or a 0-based index), or None when it names one."""
    stripped = answer.strip()
    if stripped.isdigit():
        if int(stripped) < n_choices:
            return None
        return f"answer index {stripped} is outside 0..{n_choices - 1} (the item has {n_choices} choices)"
    letter = stripped.strip("()").upper()
    last = chr(ord("A") + n_choices - 1)
    if len(letter) == 1 and "A" <= letter <= last:
        return None
    return (
        f"answer {answer!r} is not one of the option letters A-{last} (the item has {n_choices} choices); "
        "give the letter of the correct option"
    )


def _validate_word_times(value: Any, *, path: str | Path | None, line: int | None) -> list[WordTime] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise DataError("must be a list of [word, start_s, end_s]", path=path, line=line, field="word_times")
    result: list[WordTime] = []
    for index, item in enumerate(value):
        where = f"word_times[{index}]"
        if not isinstance(item, (list, tuple)) or len(item) != 3:
            raise DataError(
                f"expected [word, start_s, end_s], got {item!r}", path=path, line=line, field=where
            )
        word, start, end = item
        numbers_ok = all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in (start, end)
        )
        if not isinstance(word, str) or not numbers_ok:
            raise DataError(
                f"expected [word, start_s, end_s] with a string and two finite numbers, got {item!r}",
                path=path,
                line=line,
                field=where,
            )
        check_text(word, path=path, line=line, field=where)
        if start < 0 or start > end:
            raise DataError(
                f"needs 0 <= start_s <= end_s, got start {start} and end {end}",
                path=path,
                line=line,
                field=where,
            )
        result.append((word, float(start), float(end)))
    return result


def read_manifest(path: str | Path, *, subset: str | None = None, check_audio: bool = True) -> PairedDataset:
    """Read a manifest into a lazy :class:`PairedDataset`.

    Args:
        path: the ``.jsonl`` file.
        subset: keep only records whose ``subset`` equals this; an unknown subset is an error that lists
            the subsets present.
        check_audio: check up front that every audio file exists (decoding still waits for access).

    Raises:
        DataError: a line that is not JSON, a missing/ill-typed field, a duplicate id (naming both lines),
            a missing audio file, an unknown subset, or an empty manifest.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("manifest file not found", path=path)
    folder = path.resolve().parent
    records: list[ManifestRecord] = []
    lines: list[int] = []
    first_line: dict[str, int] = {}
    for line, obj in read_jsonl(path, skip_torn_tail=False):
        record = _validate(obj, path=path, line=line)
        if record.id in first_line:
            raise DataError(
                f"duplicate id '{record.id}' (first on line {first_line[record.id]})",
                path=path,
                line=line,
                field="id",
            )
        first_line[record.id] = line
        records.append(record)
        lines.append(line)
    if not records:
        raise DataError("manifest holds no records", path=path)
    if subset is not None:
        available = sorted({r.subset for r in records if r.subset is not None})
        keep = [i for i, r in enumerate(records) if r.subset == subset]
        if not keep:
            raise DataError(f"unknown subset '{subset}'; the manifest has: {', '.join(available) or 'none'}")
        records = [records[i] for i in keep]
        lines = [lines[i] for i in keep]
    audio_paths = [_resolve(folder, r.audio) for r in records]
    if check_audio:
        for line, audio_path in zip(lines, audio_paths, strict=True):
            if not audio_path.is_file():
                raise DataError(f"audio file not found: {audio_path}", path=path, line=line, field="audio")

    def load(index: int) -> PairedSample:
        record = records[index]
        where = f"{audio_paths[index]} (from {path}:{lines[index]}, field 'audio')"
        return PairedSample(
            id=record.id,
            text=record.text,
            audio=load_audio(audio_paths[index], where=where),
            answer=record.answer,
            choices=record.choices,
            subset=record.subset,
            speaker=record.speaker,
            word_times=record.word_times,
            meta=dict(record.meta),
        )

    source = {"loader": "manifest", "path": str(path.resolve()), "subset": subset, "split": None}
    return PairedDataset(source, [r.id for r in records], load)


def _resolve(folder: Path, audio: str) -> Path:
    candidate = Path(audio)
    return candidate if candidate.is_absolute() else folder / candidate


def relative_audio_path(manifest_path: str | Path, audio_path: str | Path) -> str:
    """``audio_path`` as a manifest line should hold it: relative to the manifest's folder, '/'-separated.

    Falls back to the absolute path when the two are on different drives.
    """
    folder = Path(manifest_path).resolve().parent
    target = Path(audio_path).resolve()
    try:
        return Path(os.path.relpath(target, folder)).as_posix()
    except ValueError:
        return target.as_posix()


def write_manifest_record(sink: JsonlAppender, record: ManifestRecord) -> None:
    """Validate ``record`` and append it durably to a manifest opened as a :class:`JsonlAppender`.

    An absolute ``record.audio`` is rewritten relative to the manifest's folder. Open the appender with
    ``key=lambda r: r["id"]`` so a rerun skips ids already written.
    """
    obj = record.to_json()
    if Path(record.audio).is_absolute():
        obj["audio"] = relative_audio_path(sink.path, record.audio)
    _validate(obj, path=sink.path, line=None)
    sink.write(obj)


def write_manifest(path: str | Path, records: list[ManifestRecord]) -> Path:
    """Write a whole manifest atomically; ids must be unique. Returns the path."""
    path = Path(path)
    seen: set[str] = set()
    lines = []
    for record in records:
        obj = record.to_json()
        if Path(record.audio).is_absolute():
            obj["audio"] = relative_audio_path(path, record.audio)
        _validate(obj, path=path, line=None)
        if record.id in seen:
            raise DataError(f"duplicate id '{record.id}'", path=path, field="id")
        seen.add(record.id)
        lines.append(dumps_record(obj))
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path
