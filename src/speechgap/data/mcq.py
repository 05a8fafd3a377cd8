"""Multiple-choice questions whose options are written inside the question text.

VoiceBench (``mmsu``, ``openbookqa``) and SpeechMMLU give one string holding the question and its options, as
it is spoken. :func:`parse_choices` finds the options; :func:`answer_letter` turns a reference (a letter, an
index or an option text) into the option letter.

Recognised option markers, for consecutive letters starting at ``A``, on separate lines or inline:
``A.``, ``A)``, ``(A)``, ``A:``, ``Option A``, ``Option A:`` / ``option A,`` (case-insensitive for
"option", the letter itself upper case).
"""

from __future__ import annotations

import re

LETTERS = "ABCDEFGHIJ"

# A marker starts the text or follows whitespace; "Option A" may be followed by ":", ".", "," or ")".
_MARKER = re.compile(
    r"(?:(?<=\s)|^)(?:(?P<opt>[Oo]ption\s+(?P<l1>[A-J])\b[:.,)]?)|\((?P<l2>[A-J])\)|(?P<l3>[A-J])[.):])(?=\s)"
)


def parse_choices(text: str, *, min_choices: int = 2) -> tuple[str, list[str]] | None:
    """Split a question text into its stem and option texts.

    Args:
        text: the question with its options, e.g. ``"Which gas? A. oxygen B. helium C. neon D. argon"``.
        min_choices: fewest options to accept.

    Returns:
        ``(stem, choices)`` with the option texts in letter order (``choices[0]`` is option A), or None when
        no run of consecutive markers ``A, B, ...`` of at least ``min_choices`` is found.

    Among several candidate runs the longest wins, and among equally long runs the last one (options follow
    the question). The last option ends at the first line break after it, so a trailing instruction on its
    own line is not taken as part of it.
    """
    markers = []
    for match in _MARKER.finditer(text):
        letter = match.group("l1") or match.group("l2") or match.group("l3")
        markers.append((match.start(), match.end(), letter))
    best: list[tuple[int, int, str]] = []
    for index, (_, _, letter) in enumerate(markers):
        if letter != "A":
            continue
        run = [markers[index]]
        for candidate in markers[index + 1 :]:
            if candidate[2] == LETTERS[len(run)]:
                run.append(candidate)
        if len(run) >= len(best):
            best = run
    if len(best) < min_choices:
        return None
    choices = []
    for position, (_, end, _) in enumerate(best):
        stop = best[position + 1][0] if position + 1 < len(best) else len(text)
        option = text[end:stop]
        if position + 1 == len(best):
            option = option.strip().split("\n", 1)[0]
        choices.append(_clean(option))
    if any(not option for option in choices):
        return None
    return text[: best[0][0]].strip(), choices


def answer_letter(
    reference: object, choices: list[str] | None = None, *, n_choices: int | None = None
) -> str | None:
    """The option letter a reference stands for, or None when it cannot be read or is out of range.

    Args:
        reference: a letter (``"B"``, ``"b"``, ``"(B)"``, ``"B."``, ``"Option B"``), a 0-based index
            (``1`` -> ``"B"``) or, when ``choices`` is given, the text of one option.
        choices: the option texts, to check the letter is in range and to match option texts.
        n_choices: the number of options when ``choices`` is not known (e.g. they could not be parsed);
            default: ``len(choices)``, else all of :data:`LETTERS`.
    """
    count = len(choices) if choices else (n_choices or len(LETTERS))
    if isinstance(reference, bool):
        return None
    if isinstance(reference, int):
        return LETTERS[reference] if 0 <= reference < count else None
    if not isinstance(reference, str):
        return None
    stripped = reference.strip()
    match = re.fullmatch(r"(?:[Oo]ption\s*)?\(?([A-Ja-j])\)?[.:)]?", stripped)
    if match:
        letter = match.group(1).upper()
        return letter if LETTERS.index(letter) < count else None
    if choices:
        wanted = _clean(stripped).casefold()
        hits = [i for i, option in enumerate(choices) if option.casefold() == wanted]
        if len(hits) == 1:
            return LETTERS[hits[0]]
    return None


def _clean(option: str) -> str:
    return " ".join(option.split()).strip(" ,;").rstrip(".").strip()
