"""Crash-safe result files.

Long runs append one JSON record per line and flush it to disk before moving on, so that a crash loses at
most the record being written. :func:`open_jsonl_for_resume` repairs a torn last line and tells the caller
which keys are already done, so a rerun neither loses nor duplicates a record. Whole files (summaries,
manifests written in one go) are written to a temporary file and renamed into place.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from speechgap.errors import ConfigError, DataError, SpeechgapWarning

JsonObject = dict[str, Any]
"""A JSON object as it is written to (or read from) a result file: ``summary.json``, a ``results.jsonl``
record, provenance. Results that cross modules are dataclasses; these are their on-disk form."""

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes, *, durable: bool = True) -> None:
    """Write ``data`` to ``path`` so that readers see either the old file or the whole new one.

    ``durable=False`` skips the fsync: the rename is still atomic for a killed process, but a crash of the
    machine may lose the file (for files that can be made again or are only shown, such as the explorer's
    sample views)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are ordinary files
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
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


class ResumeWarning(SpeechgapWarning):
    """A resumed run found something it tolerates but the user should know: duplicate records in a
    results file, records written before sample fingerprints existed (their data cannot be checked)."""


COMMIT_INTERVAL_S = 1.0
"""How often :class:`JsonlAppender` makes its new lines durable (flush and fsync) by default."""


class JsonlAppender:
    """Append records to a JSONL file in durable groups, resuming an earlier run.

    Lines are committed — written, flushed and fsync'ed together — at most ``commit_interval_s`` after the
    first of them, on :meth:`commit` (a caller's batch boundary) and on close (also when the block raises).
    A run killed between two commits loses only its uncommitted lines: the file ends at a commit, or with a
    torn line that the next open cuts off, and the next run does those records again — every record ends up
    in the file exactly once. ``commit_interval_s=0`` commits every line at once (for an index whose lines
    point at files already written).

    On open, a torn last line (a crash mid-write) is cut off, and the keys of the records already present
    are collected with ``key``; :meth:`done` tells whether a key is finished, so the caller skips it.
    A key found on more than one line (two runs that wrote into one file at once) keeps its first record:
    the later ones are dropped from the file, so it holds every key exactly once again, and counted in
    :attr:`duplicates` for the caller to report.

    Example:
        >>> with JsonlAppender(out / "results.jsonl", key=lambda r: (r["id"], r["modality"])) as sink:
        ...     for sample in samples:
        ...         if not sink.done((sample.id, "speech")):
        ...             sink.write({...})

    Args:
        path: the file (created with its folder).
        key: the key of a record.
        remember: what to keep in memory of each record already in the file (and of each written), read
            back with :meth:`remembered`; None keeps the keys only.
        commit_interval_s: the longest a written line waits for its commit (seconds; 0: none).

    Attributes:
        path: the file.
        duplicates: records dropped on open because an earlier line had the same key.
    """

    def __init__(
        self,
        path: str | Path,
        key: Callable[[dict[str, Any]], Any],
        *,
        remember: Callable[[dict[str, Any]], Any] | None = None,
        commit_interval_s: float = COMMIT_INTERVAL_S,
    ) -> None:
        if not (isinstance(commit_interval_s, int | float) and commit_interval_s >= 0):
            raise ValueError(f"argument 'commit_interval_s' must be a number >= 0, got {commit_interval_s!r}")
        self.path = Path(path)
        self.key = key
        self.remember = remember
        self.commit_interval_s = float(commit_interval_s)
        self._pending: list[str] = []
        self._first_pending = 0.0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._records: dict[Any, Any] = {}
        self.duplicates = 0
        if self.path.exists():
            _truncate_torn_tail(self.path)
            self._load_existing()
        self._handle = open(self.path, "a", encoding="utf-8")

    def _load_existing(self) -> None:
        raw_lines = self.path.read_bytes().split(b"\n")
        kept: list[bytes] = []
        for line, record in read_jsonl(self.path, skip_torn_tail=False):
            try:
                key = self.key(record)
            except (KeyError, TypeError) as err:
                raise DataError(f"a record without its key ({err!r})", path=self.path, line=line) from None
            if key in self._records:
                self.duplicates += 1
                continue
            self._records[key] = self.remember(record) if self.remember else None
            kept.append(raw_lines[line - 1])
        if self.duplicates:
            atomic_write_bytes(self.path, b"".join(raw + b"\n" for raw in kept))

    def done(self, key: Any) -> bool:
        return key in self._records

    @property
    def done_keys(self) -> set[Any]:
        return set(self._records)

    def remembered(self, key: Any) -> Any:
        """What ``remember`` kept of the record under ``key`` (None when nothing was kept)."""
        return self._records.get(key)

    def write(self, record: dict[str, Any]) -> None:
        key = self.key(record)
        if key in self._records:
            raise ValueError(f"record {key!r} is already in {self.path}")
        if not self._pending:
            self._first_pending = time.monotonic()
        self._pending.append(dumps_record(record) + "\n")
        self._records[key] = self.remember(record) if self.remember else None
        if time.monotonic() - self._first_pending >= self.commit_interval_s:
            self.commit()

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        for record in records:
            self.write(record)

    def commit(self) -> None:
        """Make every line written so far durable: one write, one flush, one fsync."""
        if not self._pending:
            return
        self._handle.write("".join(self._pending))
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._pending.clear()

    def close(self) -> None:
        if not self._handle.closed:
            try:
                self.commit()
            finally:
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


# ------------------------------------------------------------------------------------------ output folders

LOCK_FILE = ".speechgap.lock"


def prepare_out_dir(path: str | Path, *, argument: str = "out_dir") -> Path:
    """Create the output folder ``path`` (and its parents) and check that it can be written.

    Raises:
        ConfigError: ``path`` is an existing file, cannot be created, or is not writable (named as
            ``argument``).
    """
    if path is None or (isinstance(path, str) and not path.strip()):
        raise ConfigError(f"argument {argument!r} is required: the folder results are written to")
    if not isinstance(path, str | os.PathLike):
        raise ConfigError(f"argument {argument!r} must be a folder path, got {type(path).__name__}")
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"argument {argument!r}: {path} is an existing file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            f"argument {argument!r}: cannot create the folder {path} ({err.strerror})"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"argument {argument!r}: the folder {path} is not writable")
    return path


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or _process_start(pid) in (None, started)


_HELD: dict[Path, int] = {}
_HELD_GUARD = threading.Lock()


class RunLock:
    """Hold an output folder for one run: ``DIR/.speechgap.lock`` records the owner's pid, host and start.

    A second run into the same folder, in this or another process, is refused with a :class:`ConfigError`
    that names the owner. A lock left by a run that died (its pid is gone on this host, or the pid now
    belongs to another process) is stale and taken over. Within one process the same folder may be
    entered again (nested verbs). The lock file is removed on exit.

        >>> with RunLock(out_dir):
        ...     ...  # append results
    """

    def __init__(self, folder: str | Path, *, command: str = "") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.command = command

    def _owner(self) -> dict[str, Any] | None:
        try:
            owner = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return owner if isinstance(owner, dict) else {}

    def _is_stale(self, owner: dict[str, Any]) -> bool:
        if not owner:
            # unreadable: a writer killed between creating and filling the file; stale after a minute
            try:
                return self.path.stat().st_mtime < datetime.datetime.now().timestamp() - 60
            except FileNotFoundError:
                return True
        if owner.get("host") != socket.gethostname():
            return False  # cannot see processes there: the user decides
        pid = owner.get("pid")
        return not isinstance(pid, int) or not _alive(pid, owner.get("pid_start"))

    def _remove_stale(self, owner: dict[str, Any]) -> None:
        """Delete the lock judged stale, unless another run replaced it meanwhile.

        Two runs that find the same stale lock must not both take over: the check and the removal happen
        under an exclusive ``flock`` of the folder, so the second one sees the first one's fresh lock.
        """
        try:
            import fcntl

            folder_fd: int | None = os.open(self.folder, os.O_RDONLY)
        except (ImportError, OSError):  # no flock here: the window is the time between two lines
            folder_fd = None
        try:
            if folder_fd is not None:
                fcntl.flock(folder_fd, fcntl.LOCK_EX)
            now = self._owner()
            if now is not None and now == owner and self._is_stale(now):
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            if folder_fd is not None:
                os.close(folder_fd)  # releases the flock

    def __enter__(self) -> RunLock:
        key = self.folder.resolve()
        with _HELD_GUARD:
            if key in _HELD:
                _HELD[key] += 1
                return self
            prepare_out_dir(self.folder)
            record = {
                "pid": os.getpid(),
                "pid_start": _process_start(os.getpid()),
                "host": socket.gethostname(),
                "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "command": self.command,
            }
            for _ in range(3):
                try:
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666 & ~_UMASK)
                except FileExistsError:
                    owner = self._owner()
                    if owner is None:
                        continue  # released meanwhile
                    if not self._is_stale(owner):
                        raise ConfigError(
                            f"{self.folder} is in use by another speechgap run (pid {owner.get('pid', '?')} on "
                            f"{owner.get('host', '?')}, since {owner.get('started', '?')}); wait for it to "
                            f"finish or give another output folder (argument 'out_dir'). If that run is gone, "
                            f"delete {self.path}"
                        ) from None
                    self._remove_stale(owner)
                    continue
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(json.dumps(record))
                _HELD[key] = 1
                return self
            raise ConfigError(f"{self.folder}: could not take the lock {self.path}; try again")

    def __exit__(self, *exc: object) -> None:
        key = self.folder.resolve()
        with _HELD_GUARD:
            count = _HELD.get(key, 0)
            if count > 1:
                _HELD[key] = count - 1
                return
            _HELD.pop(key, None)
            owner = self._owner()
            if owner and owner.get("pid") == os.getpid():
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the temporary files that :func:`atomic_write_bytes` left in ``folder`` when a run was killed.

    Only plain files named like speechgap's own (``.NAME.XXXXXXXX.tmp``, from ``tempfile.mkstemp``)
    directly inside ``folder`` are removed, never subfolders. Call it while holding the folder's
    :class:`RunLock`, so that no live run's file is removed. Returns the removed paths (a missing folder:
    none).
    """
    import re

    temp_name = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        if temp_name.match(entry.name) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed
