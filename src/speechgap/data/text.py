"""Checks on the text fields of a sample (question, options, answer, ids), shared by the loaders.

Two kinds of character pass a JSON parser and then break speechgap further on:

- a **lone surrogate** (``"\\ud800"`` in a JSON file): not a Unicode character at all; it cannot be
  encoded as UTF-8, so a tokenizer, a results file or a TTS engine fails on it, after the model has run;
- a **control character** such as NUL, which C libraries (espeak-ng, some tokenizers) read as the end of
  the string, silently truncating the question.

Manifests (written by users and tools) are held to the strict rule: tab, line feed and carriage return
are the only control characters (Unicode category Cc: U+0000-U+001F, U+007F-U+009F) allowed.
Published datasets (VoiceBench, SpeechMMLU) are read as published, except for lone surrogates and NUL,
which can never work (``controls="nul"``). Free-form fields (``meta``) may hold any character but a lone
surrogate (``controls="any"``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from speechgap.errors import DataError

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROLS = {
    "strict": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]"),
    "nul": re.compile("\x00"),
    "any": None,
}


def text_problem(value: str, *, controls: str = "strict") -> str | None:
    """Why ``value`` cannot be used as text, or None when it can.

    Args:
        value: the text.
        controls: which control characters to refuse besides lone surrogates (always refused):
            ``"strict"`` every one but tab, line feed and carriage return; ``"nul"`` only NUL; ``"any"`` none.
    """
    match = _SURROGATE.search(value)
    if match:
        return (
            f"holds a lone surrogate U+{ord(match.group()):04X} at character {match.start()}: not a Unicode "
            "character (an unpaired \\ud800-\\udfff escape in the JSON?); it cannot be encoded as UTF-8"
        )
    pattern = _CONTROLS[controls]
    match = pattern.search(value) if pattern is not None else None
    if match:
        code = ord(match.group())
        if code == 0:
            return (
                f"holds the control character U+0000 (NUL) at character {match.start()}; C libraries "
                "(tokenizers, TTS engines) read it as the end of the text and would silently cut it there"
            )
        return (
            f"holds the control character U+{code:04X} at character {match.start()}; only tab, line feed "
            "and carriage return are allowed in text"
        )
    return None


def check_text(
    value: str,
    *,
    path: str | Path | None,
    line: int | None = None,
    field: str,
    controls: str = "strict",
) -> None:
    """Raise a :class:`DataError` naming ``path``, ``line`` and ``field`` when :func:`text_problem` finds one."""
    problem = text_problem(value, controls=controls)
    if problem is not None:
        raise DataError(problem, path=path, line=line, field=field)


def check_nested_text(value: Any, *, path: str | Path | None, line: int | None = None, field: str) -> None:
    """Refuse lone surrogates anywhere in a JSON value (keys included): free-form fields such as ``meta``
    may hold any character, but every string must still be writable as UTF-8."""
    if isinstance(value, str):
        check_text(value, path=path, line=line, field=field, controls="any")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_nested_text(key, path=path, line=line, field=field)
            check_nested_text(item, path=path, line=line, field=f"{field}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_nested_text(item, path=path, line=line, field=f"{field}[{index}]")
