"""The errors speechgap raises on bad input.

Every error names what was wrong and where: the file (and line), the field or the argument. The CLI prints
the message of a :class:`SpeechgapError` without a traceback and exits with status 2.
"""

from __future__ import annotations

from pathlib import Path


class SpeechgapError(Exception):
    """Base class: a problem with the user's input or setup, explained in the message."""


class SpeechgapWarning(UserWarning):
    """Something that runs but that the user should know about (the CLI prints it as ``warning:``)."""


class DataError(SpeechgapError, ValueError):
    """Bad data: a manifest line, an audio file, a dataset field.

    Args:
        message: what is wrong, in words a user can act on.
        path: the file the problem is in, if any.
        line: 1-based line number inside ``path``, if any.
        field: the record field or dataset column at fault, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        where = []
        if self.path is not None:
            where.append(self.path + (f":{line}" if line is not None else ""))
        if field is not None:
            where.append(f"field '{field}'")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ModelError(SpeechgapError, ValueError):
    """A model that cannot be used: unknown family, no audio input, missing files, too-long audio."""


class ConfigError(SpeechgapError, ValueError):
    """A bad argument or setting, named in the message."""
