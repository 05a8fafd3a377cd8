"""Scoring VoiceBench's four BBH tasks (sports_understanding, hyperbaton, navigate, web_of_lies).

References in VoiceBench's ``bbh`` subset are ``"yes"``/``"no"`` (sports_understanding, navigate,
web_of_lies) and ``"(A)"``/``"(B)"`` (hyperbaton); the task is named inside each row's ``id``.

The reference scorer (VoiceBench ``src/evaluator/bbh.py``) maps a bare ``"b"`` to option A, reads an
opening ``"a "`` (the article) as option A, maps "the sentence … is not plausible" to *plausible*, and
draws a random answer when no phrase matches. This scorer does none of that: hyperbaton goes through the
honest two-option letter extractor (:func:`speechgap.scoring.choice.parse_choice`), yes/no tasks through
explicit answer statements, task phrases with negation, then an opening or closing yes/no; anything else
is a parse failure, scored wrong and counted. With ``protocol="voicebench"`` the reference reader is
reproduced instead (:mod:`speechgap.scoring.bbh_voicebench`), for comparison with the leaderboard only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from speechgap.errors import ConfigError, DataError
from speechgap.scoring.bbh_voicebench import read_bbh_voicebench
from speechgap.scoring.choice import parse_choice
from speechgap.scoring.registry import ItemScore, Scorer, ScoringItem, register_scorer

BBH_TASKS = ("sports_understanding", "hyperbaton", "navigate", "web_of_lies")


@dataclass(frozen=True)
class BBHParse:
    """One BBH response read.

    Attributes:
        answer: ``"yes"``/``"no"`` or ``"(A)"``/``"(B)"``; None when the response could not be read.
        rule: the rule that decided (``"answer_statement"``, ``"task_phrase"``, ``"leading_word"``,
            ``"trailing_word"``, a letter rule from :class:`~speechgap.scoring.choice.ChoiceParse`), or the
            failure (``"empty"``, ``"ambiguous"``, ``"no_match"``, ...).
        parsed: whether an answer was read.
        task: the BBH task.
    """

    answer: str | None
    rule: str
    parsed: bool
    task: str


def bbh_task_from_id(sample_id: str) -> str:
    """The BBH task named in a VoiceBench row id (e.g. ``"bbh_web_of_lies_12"``)."""
    for task in BBH_TASKS:
        if task in sample_id:
            return task
    raise DataError(f"id {sample_id!r} names none of the BBH tasks {', '.join(BBH_TASKS)}", field="id")


def normalise_bbh_reference(reference: str, task: str) -> str:
    """``"Yes"`` → ``"yes"``, ``"(a)"``/``"A"`` → ``"(A)"``; raises :class:`DataError` for anything else."""
    value = str(reference).strip().lower()
    if task == "hyperbaton":
        letter = value.strip("()")
        if letter in ("a", "b"):
            return f"({letter.upper()})"
    elif value in ("yes", "no"):
        return value
    expected = "'(A)' or '(B)'" if task == "hyperbaton" else "'yes' or 'no'"
    raise DataError(f"BBH {task} reference must be {expected}, got {reference!r}", field="reference")


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'").replace("*", " ")
    text = re.sub(r"<\|[a-z_]+\|>|^<[123]>", " ", text)
    return " ".join(text.split())


_YN = r"(?P<yn>yes|no|true|false)\b"
_STATEMENT_RES = [
    re.compile(
        r"\b(?:final\s+|short\s+|correct\s+|direct\s+)?answer(?:\s+to\s+(?:the|this|your)\s+question)?"
        r"\s*(?:is|would\s+be|will\s+be|should\s+be|:|-)\s*[:\"'(\[]*\s*" + _YN
    ),
    re.compile(r"\bi\s+would\s+(?:answer|say)\s*[:\"']*\s*" + _YN),
    re.compile(r"\\boxed\{\s*(?:\\text\{\s*)?" + _YN),
]
_YN_VALUE = {"yes": "yes", "true": "yes", "no": "no", "false": "no"}

_NEG = r"(?:not|n't|never|cannot|can't|isn't|doesn't|don't|won't|didn't|haven't|hasn't)"

# (pattern, answer) pairs per task; the match that ends last wins.
_TASK_PHRASES: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "sports_understanding": [
        (re.compile(rf"\b{_NEG}\s+(?:\w+\s+){{0,3}}(?:plausible|possible|realistic|likely)\b"), "no"),
        (re.compile(r"\b(?:implausible|unrealistic|impossible|unlikely)\b"), "no"),
        (re.compile(r"\b(?:is|seems|sounds|appears)\s+(?:\w+\s+){0,2}(?:plausible|realistic)\b"), "yes"),
        (re.compile(r"\bmakes?\s+(?:it\s+)?plausible\b"), "yes"),
    ],
    "navigate": [
        (
            re.compile(
                rf"\b{_NEG}\s+(?:\w+\s+){{0,4}}(?:return|end\s+up|come|get|be|go|lead)\w*\s+(?:\w+\s+){{0,3}}"
                r"(?:starting\s+(?:point|position)|where\s+(?:you|we|i)\s+started)"
            ),
            "no",
        ),
        (
            re.compile(
                r"\b(?:return|back|end\s+up|arrive)\w*\s+(?:\w+\s+){0,4}"
                r"(?:starting\s+(?:point|position)|where\s+(?:you|we|i)\s+started|original\s+position)"
            ),
            "yes",
        ),
    ],
    "web_of_lies": [
        (re.compile(rf"\b{_NEG}\s+(?:\w+\s+){{0,2}}(?:tell|telling)\s+the\s+truth\b"), "no"),
        (re.compile(r"\b(?:lies|is\s+lying|tells\s+a\s+lie|is\s+a\s+liar|must\s+be\s+lying)\b"), "no"),
        (re.compile(r"\b(?:tells|is\s+telling|does\s+tell|must\s+be\s+telling)\s+the\s+truth\b"), "yes"),
    ],
}


def _parse_yes_no(text: str, task: str) -> BBHParse:
    statements = [
        (m.end(), _YN_VALUE[m.group("yn")]) for regex in _STATEMENT_RES for m in regex.finditer(text)
    ]
    negated_statements = re.search(r"\banswer\s+is\s+not\s+(?:yes|no)\b", text)
    if statements and not negated_statements:
        return BBHParse(max(statements)[1], "answer_statement", True, task)
    phrases: list[tuple[int, int, str]] = []
    for priority, (regex, answer) in enumerate(_TASK_PHRASES[task]):
        for match in regex.finditer(text):
            # A negated phrase and its positive core end at the same place: the negated one (listed first) wins.
            phrases.append((match.end(), -priority, answer))
    if phrases:
        return BBHParse(max(phrases)[2], "task_phrase", True, task)
    leading = re.match(r"^\W*(yes|no|true|false)\b", text)
    if leading:
        return BBHParse(_YN_VALUE[leading.group(1)], "leading_word", True, task)
    trailing = re.search(r"\b(yes|no|true|false)\W*$", text)
    if trailing:
        return BBHParse(_YN_VALUE[trailing.group(1)], "trailing_word", True, task)
    return BBHParse(None, "no_match", False, task)


def _parse_hyperbaton(text: str) -> BBHParse:
    # "sentence a", "the first option" name the options too.
    text = re.sub(r"\b(?:sentence|adjective\s+order)\s+\(?([ab])\)?(?![a-z])", r"option \1", text)
    text = re.sub(r"\bthe\s+first\s+(?:option|sentence|one)\b", "option a", text)
    text = re.sub(r"\bthe\s+second\s+(?:option|sentence|one)\b", "option b", text)
    parse = parse_choice(text, n_choices=2)
    answer = None if parse.letter is None else f"({parse.letter})"
    return BBHParse(answer, parse.rule, parse.parsed, "hyperbaton")


def parse_bbh(response: str | None, task: str) -> BBHParse:
    """Read a BBH answer: ``"yes"``/``"no"``, or ``"(A)"``/``"(B)"`` for hyperbaton; None when unreadable.

    Args:
        response: the model's response.
        task: one of :data:`BBH_TASKS` (see :func:`bbh_task_from_id`).
    """
    if task not in BBH_TASKS:
        raise DataError(f"unknown BBH task {task!r}; expected one of {', '.join(BBH_TASKS)}", field="task")
    if response is None or not response.strip():
        return BBHParse(None, "empty", False, task)
    text = _normalise(response)
    if task == "hyperbaton":
        return _parse_hyperbaton(text)
    return _parse_yes_no(text, task)


def score_bbh(response: str | None, reference: str, task: str) -> tuple[bool, BBHParse]:
    """``(correct, parse)`` for one BBH item; an unreadable response is wrong."""
    parse = parse_bbh(response, task)
    return parse.answer is not None and parse.answer == normalise_bbh_reference(reference, task), parse


def score(response: str | None, item: ScoringItem) -> ItemScore:
    """Correct when the answer read equals the reference; the task comes from ``item.task`` or the id.

    Honest reading under ``"speechgap"`` and ``"speechmmlu"``; VoiceBench's reader under ``"voicebench"``.
    """
    if item.answer is None:
        raise DataError("BBH scoring needs the reference answer, and this item has none", field="reference")
    task = item.task
    if task is None:
        if item.sample_id is None:
            raise ConfigError(
                "BBH scoring needs argument 'task' or argument 'sample_id' (an id that names the task)"
            )
        task = bbh_task_from_id(item.sample_id)
    if task not in BBH_TASKS:
        raise DataError(f"unknown BBH task {task!r}; expected one of {', '.join(BBH_TASKS)}", field="task")
    reference = normalise_bbh_reference(str(item.answer), task)
    if item.protocol == "voicebench":
        answer, rule, parsed = read_bbh_voicebench(response, task, seed=item.seed, key=item.sample_id or "")
        correct = answer == reference
        detail = {"task": task, "protocol": "voicebench", "reference": reference}
        return ItemScore("bbh", correct, float(correct), parsed, answer, rule, detail, protocol="voicebench")
    parse = parse_bbh(response, task)
    correct = parse.answer is not None and parse.answer == reference
    detail = {"task": task, "protocol": "speechgap", "reference": reference}
    return ItemScore("bbh", correct, float(correct), parse.parsed, parse.answer, parse.rule, detail)


SCORER = register_scorer(
    Scorer(
        "bbh",
        score,
        subsets=("bbh",),
        prefixes=("bbh",),
        needs_answer=True,
        description="BBH (4 tasks): yes/no or (A)/(B) read == reference (unparsed: wrong)",
    )
)
