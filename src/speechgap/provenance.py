"""What produced a result: every result file speechgap writes carries this record."""

from __future__ import annotations

import datetime as _dt
import functools
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from speechgap.io import JsonObject
from speechgap.version import __version__

_PACKAGES = ("torch", "transformers", "datasets", "numpy", "scipy", "soundfile", "soxr", "espeakng-loader")


def package_versions() -> dict[str, str | None]:
    """The installed version of each package results depend on (None when absent)."""
    return dict(_installed_versions())


@functools.cache
def _installed_versions() -> tuple[tuple[str, str | None], ...]:
    # read once per process: every result file records them, and reading package metadata costs ~30 ms
    versions = []
    for name in _PACKAGES:
        try:
            versions.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            versions.append((name, None))
    return tuple(versions)


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


REDACTED = "REDACTED"
# Query parameters whose values are settings, not credentials, and stay readable in records.
PUBLIC_QUERY_NAMES = frozenset({"api-version", "api_version"})
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>]+")


def redact_url(url: str) -> str:
    """``url`` as it may be recorded: credentials replaced by ``REDACTED``.

    The ``user:password@`` part, every query value (``?api-key=…``, ``?sig=…``; only ``api-version`` is
    kept) and the fragment are redacted; scheme, host, port and path stay. A URL that cannot be parsed
    is replaced whole. The real URL is still the one requests go to.

    Example:
        >>> redact_url("https://user:pw@example.org/v1?api-key=abc&api-version=2024-06-01")
        'https://REDACTED@example.org/v1?api-key=REDACTED&api-version=2024-06-01'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    query = "&".join(_redact_query_item(item) for item in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, REDACTED if parts.fragment else ""))


def _redact_query_item(item: str) -> str:
    name, equals, value = item.partition("=")
    if not equals:
        return REDACTED if item else item  # a bare ``?TOKEN`` is a value without a name
    if unquote(name).lower() in PUBLIC_QUERY_NAMES:
        return item
    return f"{name}={REDACTED}"


def redact_command(command: Sequence[str]) -> list[str]:
    """A command line as it may be recorded: every URL in it through :func:`redact_url`
    (``--judge-url URL`` and ``--judge-url=URL`` alike)."""
    return [_URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), token) for token in command]


def provenance(
    *,
    model: Any = None,
    data: Any = None,
    settings: dict[str, Any] | None = None,
    command: list[str] | None = None,
) -> JsonObject:
    """The record stored next to every result: model, data, settings, versions, time.

    Args:
        model: a description of the model (its name/path and family), or None.
        data: a description of the data (source, subset, split, count), or None.
        settings: every setting that changes the result.
        command: the command line, when run from the CLI (default ``sys.argv``); recorded with every URL
            in it passed through :func:`redact_url`, so a key in a judge URL never reaches a result file.
    """
    return {
        "speechgap_version": __version__,
        "git_commit": _git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "data": data,
        "settings": settings or {},
        "command": redact_command(command if command is not None else list(sys.argv)),
        "python": platform.python_version(),
        "packages": package_versions(),
    }
