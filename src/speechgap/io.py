"""Crash-safe result files.

Long runs append one JSON record per line and flush it to disk before moving on, so that a crash loses at
most the record being written. :func:`open_jsonl_for_resume` repairs a torn last line and tells the caller
which keys are already done, so a rerun neither loses nor duplicates a record. Whole files (summaries,
manifests written in one go) are written to a temporary file and renamed into place.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from speechgap.errors import DataError

JsonObject = dict[str, Any]
"""A JSON object as it is written to (or read from) a result file: ``summary.json``, a ``results.jsonl``
record, provenance. Results that cross modules are dataclasses; these are their on-disk form."""

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def read_json(path: str | Path, *, what: str = "JSON object") -> JsonObject:
    """A JSON object from ``path``; a missing, unreadable or non-object file is a :class:`DataError` naming it."""
    path = Path(path)
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"no such file (expected a {what})", path=path) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read a {what}: {err}", path=path) from None
    if not isinstance(value, dict):
        raise DataError(f"expected a {what}, found a JSON {type(value).__name__}", path=path)
    return value


def dumps_record(record: dict[str, Any]) -> str:
    """One record as a single JSON line (no trailing newline)."""
    return json.dumps(record, ensure_ascii=False, default=_json_default)


def read_jsonl(path: str | Path, *, skip_torn_tail: bool = True) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, record)`` for each non-empty line of a JSONL file.

    A last line without a newline that does not parse is a record torn by a crash; it is skipped when
    ``skip_torn_tail`` is true. Any other line that is not a JSON object raises :class:`DataError` naming
    the file and line.
    """
    path = Path(path)
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    for index, raw in enumerate(lines):
        if not raw.strip():
            continue
        is_tail = index == len(lines) - 1  # no newline after it
        try:
            record = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            if is_tail and skip_torn_tail:
                return
            raise DataError(f"not valid JSON ({err})", path=path, line=index + 1) from None
        if not isinstance(record, dict):
            raise DataError("expected a JSON object", path=path, line=index + 1)
        yield index + 1, record


class JsonlAppender:
    """Append records to a JSONL file, one durable line at a time, resuming an earlier run.

    On open, a torn last line (a crash mid-write) is cut off, and the keys of the records already present
    are collected with ``key``; :meth:`done` tells whether a key is finished, so the caller skips it.

    Example:
        >>> with JsonlAppender(out / "results.jsonl", key=lambda r: (r["id"], r["modality"])) as sink:
        ...     for sample in samples:
        ...         if not sink.done((sample.id, "speech")):
        ...             sink.write({...})
    """

    def __init__(self, path: str | Path, key: Callable[[dict[str, Any]], Any]) -> None:
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._done: set[Any] = set()
        if self.path.exists():
            _truncate_torn_tail(self.path)
            for _, record in read_jsonl(self.path, skip_torn_tail=False):
                self._done.add(key(record))
        self._handle = open(self.path, "a", encoding="utf-8")

    def done(self, key: Any) -> bool:
        return key in self._done

    @property
    def done_keys(self) -> set[Any]:
        return set(self._done)

    def write(self, record: dict[str, Any]) -> None:
        key = self.key(record)
        if key in self._done:
            raise ValueError(f"record {key!r} is already in {self.path}")
        self._handle.write(dumps_record(record) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._done.add(key)

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.write(record)

    def close(self) -> None:
        if not self._handle.closed:
            self._handle.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _truncate_torn_tail(path: Path) -> None:
    """Cut a file back to its last complete line (one that ends with a newline)."""
    with open(path, "rb+") as handle:
        data = handle.read()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        handle.truncate(cut)
