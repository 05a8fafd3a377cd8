"""How an item is written (for the text run) and how it is read aloud (for the speech run).

Rules, for an item with a question ``text`` and optional ``choices``:

- **Written form** (the manifest's ``text``): the question, then one line per option, ``"A. Venus"``.
  If the text already lists its options (its last lines are ``A. ...``, ``B. ...`` in order, with ``.``,
  ``)`` or ``:`` after the letter, at least two of them) it is used unchanged.
- **Spoken form** (what the engine says, stored as ``meta.spoken_text``): the question, then the options
  read the way a person reads them: ``"A, Venus. B, Mars."``. Options already in the text are read from
  the text. Line breaks become spaces, and a question without final punctuation gets a period so the
  engine pauses before the options.
- Without options both forms are the text itself (spoken form with line breaks as spaces).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

_OPTION_LINE = re.compile(r"^\s*\(?([A-Z])[.):]\s*(.*\S)\s*$")
_TERMINAL = ".?!:;"


@dataclass(frozen=True)
class Rendering:
    """Both forms of one item.

    Attributes:
        written: what a text-input run is given.
        spoken: what the TTS engine speaks.
    """

    written: str
    spoken: str


def option_letter(index: int) -> str:
    """0 -> "A", 1 -> "B", ... (up to 26 options)."""
    if not 0 <= index < 26:
        raise ValueError(f"argument 'index' must be in 0..25 (A..Z), got {index}")
    return string.ascii_uppercase[index]


def split_options(text: str) -> tuple[str, list[str]] | None:
    """Split a text whose last lines list options ``A. ...``, ``B. ...`` into (stem, options).

    Returns None when the text does not end with at least two options lettered A, B, ... in order.
    """
    lines = text.rstrip().splitlines()
    index = len(lines)
    while index > 0 and _OPTION_LINE.match(lines[index - 1]):
        index -= 1
    matches = [_OPTION_LINE.match(line) for line in lines[index:]]
    letters = [m.group(1) for m in matches if m is not None]
    if len(letters) < 2 or letters != [option_letter(i) for i in range(len(letters))]:
        return None
    return "\n".join(lines[:index]).strip(), [m.group(2) for m in matches if m is not None]


def _sentence(text: str) -> str:
    """One line of speech ending in punctuation, so that the engine pauses after it."""
    flat = " ".join(text.split())
    if flat and flat[-1] not in _TERMINAL:
        flat += "."
    return flat


def spoken_options(options: list[str]) -> str:
    """``["Venus", "Mars"]`` -> ``"A, Venus. B, Mars."``."""
    return " ".join(
        f"{option_letter(i)}, {_sentence(option.rstrip(_TERMINAL + ' '))}" for i, option in enumerate(options)
    )


def render_item(text: str, choices: list[str] | None = None) -> Rendering:
    """Written and spoken forms of an item (rules in the module docstring)."""
    listed = split_options(text)
    if choices:
        written = (
            text
            if listed is not None
            else text.rstrip()
            + "\n"
            + "\n".join(f"{option_letter(i)}. {choice}" for i, choice in enumerate(choices))
        )
        stem = listed[0] if listed is not None else text
        return Rendering(written, f"{_sentence(stem)} {spoken_options(choices)}".strip())
    if listed is not None:
        return Rendering(text, f"{_sentence(listed[0])} {spoken_options(listed[1])}".strip())
    return Rendering(text, " ".join(text.split()))
