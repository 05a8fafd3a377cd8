"""What produced a result: every result file speechgap writes carries this record."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from speechgap.io import JsonObject
from speechgap.version import __version__

_PACKAGES = ("torch", "transformers", "datasets", "numpy", "scipy", "soundfile", "soxr", "espeakng-loader")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


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
        command: the command line, when run from the CLI.
    """
    return {
        "speechgap_version": __version__,
        "git_commit": _git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "data": data,
        "settings": settings or {},
        "command": command if command is not None else list(sys.argv),
        "python": platform.python_version(),
        "packages": package_versions(),
    }
