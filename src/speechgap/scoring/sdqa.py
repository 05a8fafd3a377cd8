"""Mode ``sdqa``: is the spoken-question answer correct? (VoiceBench sd-qa, every region.)

Matchers (``sdqa_matcher``):

``"containment"`` (default, deterministic, honest): both texts are normalised — Unicode NFKC, lower case,
dotted acronyms joined ("U.S.A." → "usa"), thousands separators dropped ("1,000" → "1000"), punctuation and
symbols to spaces, the articles a/an/the dropped, number words written as digits ("twelve" → "12",
"nineteen sixty-nine" → "1969", "two thousand and eight" → "2008"), whitespace collapsed — and the response
is correct when a reference appears in it as a whole run of words ("in 1969" contains "1969"; "19690" does
not). One more rule reads a short answer the way a person does: when the *whole* response is the last word
of a reference that looks like a person's name (two or three capitalised words, none of them a place or
organisation word such as "New", "City", "River", "University"), it is correct ("Obama." for "Barack
Obama"; not "Barack", not "Barack Smith", not "York" for "New York").

``"judge"``: the yes/no LLM judge (:meth:`speechgap.scoring.judge.Judge.judge_answer`, a judge with
``protocol="yesno"``): VoiceBench's sd-qa judge protocol — three samples at temperature 0.5, majority vote.
Under ``protocol="voicebench"`` the vote is VoiceBench's own (:func:`~speechgap.scoring.judge.voicebench_majority`).

PEDANT, the other matcher VoiceBench reports, is not available: the ``qa-metrics`` package downloads
pickled classifiers from GitHub when PEDANT is built and unpickles them; speechgap runs offline and never
unpickles, so ``sdqa_matcher="pedant"`` is a :class:`ConfigError` saying so.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from speechgap.errors import ConfigError, DataError
from speechgap.scoring.judge import voicebench_majority
from speechgap.scoring.registry import ItemScore, Scorer, ScoringItem, register_scorer

MATCHERS = ("containment", "judge")
PEDANT_UNAVAILABLE = (
    "argument 'sdqa_matcher' 'pedant' is not available: qa-metrics' PEDANT downloads pickled classifiers "
    "from GitHub at run time and unpickles them, and speechgap runs offline and never unpickles; use "
    "'containment' (deterministic) or 'judge' (the yes/no LLM judge, VoiceBench's other sd-qa score)"
)
_ARTICLES = frozenset({"a", "an", "the"})

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}

# Words that make a capitalised reference a place or an organisation rather than a person's name.
_NOT_NAME_WORDS = frozenset(
    """new san santa los las la le el saint st fort port mount mt cape lake river sea ocean bay gulf island
    islands city town county state states united kingdom republic empire union university college school
    church cathedral bridge tower park street road avenue north south east west upper lower great little
    old national international royal company corporation inc ltd club team war battle treaty act party""".split()
)


@dataclass(frozen=True)
class SdqaResult:
    """One sd-qa item scored by containment.

    Attributes:
        correct: whether the response matches a reference.
        matcher: ``"containment"``.
        matched_reference: the reference found, else None.
        rule: ``"containment"``, ``"surname"`` (the short-name rule), ``"empty"`` or ``"no_match"``.
    """

    correct: bool
    matcher: str
    matched_reference: str | None = None
    rule: str = "containment"


def _number_run_to_digits(words: list[str]) -> list[str]:
    """One run of number words as digit tokens: ``["nineteen", "sixty", "nine"]`` → ``["1969"]``.

    Tens and a following unit form one number ("sixty nine" = 69). With a scale word (hundred, thousand,
    ...) the run is one cardinal number ("two thousand and eight" = 2008). Without one, two numbers of two
    digits are a year said in pairs ("nineteen sixty nine" = 1969, "twenty twenty" = 2020), as is
    "nineteen oh five" (1905); any other run stays separate numbers ("one two three" = "1 2 3").
    """
    items: list[int | str] = []
    index = 0
    while index < len(words):
        word = words[index]
        following = words[index + 1] if index + 1 < len(words) else ""
        if word in _TENS and following in _UNITS and 0 < _UNITS[following] < 10:
            items.append(_TENS[word] + _UNITS[following])
            index += 2
            continue
        items.append(_TENS.get(word, _UNITS.get(word, word)))  # type: ignore[arg-type]
        index += 1
    if any(item in _SCALES for item in items):
        total, current = 0, 0
        for item in items:
            if isinstance(item, int):
                current += item
            elif item == "hundred":
                current = max(current, 1) * 100
            elif item in _SCALES:
                total += max(current, 1) * _SCALES[item]
                current = 0
        return [str(total + current)]
    numbers = [item for item in items if isinstance(item, int)]
    if len(items) == 2 and len(numbers) == 2 and 10 <= numbers[0] and 10 <= numbers[1]:
        return [f"{numbers[0]}{numbers[1]:02d}"]
    if len(items) == 3 and items[1] == "oh" and len(numbers) == 2 and 10 <= numbers[0] and numbers[1] < 10:
        return [f"{numbers[0]}0{numbers[1]}"]
    return [str(item) if isinstance(item, int) else "0" for item in items if item != "and"]


def _numbers_as_digits(words: list[str]) -> list[str]:
    """Every run of number words replaced by its digits; "and" joins a run only after a scale word."""
    out: list[str] = []
    run: list[str] = []
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        is_number = word in _UNITS or word in _TENS or word in _SCALES
        follows_number = following in _UNITS or following in _TENS
        joins = bool(run) and (
            (word == "and" and run[-1] in _SCALES and follows_number)
            or (word == "oh" and run[-1] not in _SCALES and following in _UNITS and _UNITS[following] < 10)
        )
        if is_number or joins:
            run.append(word)
            continue
        if run:
            out.extend(_number_run_to_digits(run))
            run = []
        out.append(word)
    if run:
        out.extend(_number_run_to_digits(run))
    return out


def normalise_answer(text: str) -> str:
    """Lower-cased words without punctuation or articles, numbers as digits, single-spaced.

    ``"The U.S.A.!"`` → ``"usa"``; ``"There are twelve."`` → ``"there are 12"``; ``"1,000"`` → ``"1000"``.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"\b(?:[^\W\d_]\.){2,}", lambda m: m.group(0).replace(".", ""), text)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = "".join(" " if unicodedata.category(ch)[0] in "PS" else ch for ch in text)
    words = [word for word in text.split() if word not in _ARTICLES]
    return " ".join(_numbers_as_digits(words))


def _references(reference: str | Sequence[str] | None) -> list[str]:
    if reference is None:
        raise DataError("sd-qa scoring needs a reference answer, and this item has none", field="reference")
    refs = [reference] if isinstance(reference, str) else list(reference)
    refs = [str(ref) for ref in refs if str(ref).strip()]
    if not refs:
        raise DataError("sd-qa reference answer is empty", field="reference")
    return refs


def contains_reference(response: str | None, reference: str | Sequence[str]) -> str | None:
    """The first reference whose normalised words appear in the normalised response, else None."""
    words = f" {normalise_answer(response or '')} "
    for ref in _references(reference):
        norm = normalise_answer(ref)
        if norm and f" {norm} " in words:
            return ref
    return None


def surname_match(response: str | None, reference: str | Sequence[str]) -> str | None:
    """The reference whose surname the whole response is ("Obama." for "Barack Obama"), else None.

    The reference must look like a person's name: two or three words, each capitalised and alphabetic
    (hyphens and apostrophes allowed), none in the place/organisation list; the surname (its last word)
    must have at least three letters.
    """
    answer = normalise_answer(response or "")
    if not answer or " " in answer:
        return None
    for ref in _references(reference):
        words = ref.split()
        if not 2 <= len(words) <= 3:
            continue
        if not all(re.fullmatch(r"[A-Z][a-zA-Z'\-]*\.?", word) for word in words):
            continue
        if any(word.strip(".").lower() in _NOT_NAME_WORDS for word in words):
            continue
        surname = normalise_answer(words[-1])
        if len(surname) >= 3 and answer == surname:
            return ref
    return None


def score_sdqa(response: str | None, reference: str | Sequence[str] | None) -> SdqaResult:
    """Score one sd-qa response against its reference answer(s) by containment (see the module doc)."""
    refs = _references(reference)
    if not (response or "").strip():
        return SdqaResult(False, "containment", None, "empty")
    found = contains_reference(response, refs)
    if found is not None:
        return SdqaResult(True, "containment", found, "containment")
    found = surname_match(response, refs)
    if found is not None:
        return SdqaResult(True, "containment", found, "surname")
    return SdqaResult(False, "containment", None, "no_match")


def check_matcher(matcher: str) -> str:
    """``matcher`` if it is one of :data:`MATCHERS`; a :class:`ConfigError` otherwise (PEDANT explained)."""
    if matcher == "pedant":
        raise ConfigError(PEDANT_UNAVAILABLE)
    if matcher not in MATCHERS:
        raise ConfigError(f"argument 'sdqa_matcher' must be one of {', '.join(MATCHERS)}, got {matcher!r}")
    return matcher


def score(response: str | None, item: ScoringItem) -> ItemScore:
    """Containment, or the yes/no judge with ``item.sdqa_matcher == "judge"``."""
    matcher = check_matcher(item.sdqa_matcher)
    refs = _references(item.answer)
    contained = score_sdqa(response, refs)
    if matcher == "containment":
        detail = {"matcher": "containment", "protocol": "speechgap"}
        return ItemScore(
            "sdqa",
            contained.correct,
            float(contained.correct),
            bool((response or "").strip()),
            contained.matched_reference,
            contained.rule,
            detail,
        )
    judge = item.judge
    if judge is None or judge.config.protocol != "yesno":
        raise ConfigError(
            "sd-qa judging needs argument 'judge': a Judge with protocol 'yesno' (sdqa_matcher 'judge')"
        )
    if item.prompt is None:
        raise DataError("sd-qa judging needs the question text, and this item has none", field="prompt")
    verdict = judge.judge_answer(item.prompt, " or ".join(refs), response or "")
    if item.protocol == "voicebench":
        correct, protocol, rule = voicebench_majority(verdict.samples), "voicebench", "voicebench_majority"
    else:
        correct, protocol, rule = verdict.correct, "speechgap", "judge_majority"
    if correct is None:
        rule = f"{rule}_tie"
    detail = {
        "matcher": "judge",
        "protocol": protocol,
        "votes": verdict.votes,
        "samples": verdict.samples,
        "judge": verdict.judge,
        "containment": contained.correct,
    }
    return ItemScore(
        "sdqa",
        bool(correct),
        float(bool(correct)),
        correct is not None,
        None if correct is None else ("yes" if correct else "no"),
        rule,
        detail,
        protocol=protocol,
    )


SCORER = register_scorer(
    Scorer(
        "sdqa",
        score,
        subsets=("sd-qa", "sdqa"),
        prefixes=("sd-qa", "sdqa"),
        needs_answer=True,
        judge_protocol="yesno",
        description="sd-qa: the reference contained in the response, or the yes/no judge's majority",
    )
)
