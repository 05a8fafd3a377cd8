"""Mode ``mcq``: multiple choice (VoiceBench mmsu and openbookqa, SpeechMMLU, manifest MCQ).

The option letter is read by :func:`speechgap.scoring.choice.parse_choice` under the item's protocol:
``"speechgap"`` (honest: unreadable = wrong), ``"speechmmlu"`` (its strict ``option x`` pattern) or
``"voicebench"`` (VoiceBench's mcq evaluator with its seeded random fallback). The reference is an option
letter or a 0-based index.
"""

from __future__ import annotations

from typing import Any

from speechgap.errors import DataError
from speechgap.scoring.choice import parse_choice
from speechgap.scoring.registry import ItemScore, Scorer, ScoringItem, register_scorer


def answer_letter(answer: Any, n_choices: int) -> str:
    """The reference as an option letter: ``"B"``, ``"(b)"``, ``1`` and ``"1"`` all give ``"B"``.

    Raises :class:`DataError` (field ``answer``) when it is missing or not one of the ``n_choices`` options.
    """
    if answer is None or (isinstance(answer, str) and not answer.strip()):
        raise DataError("multiple-choice scoring needs the answer, and this item has none", field="answer")
    if isinstance(answer, bool):
        raise DataError(
            f"multiple-choice answer must be a letter or an index, got {answer!r}", field="answer"
        )
    if isinstance(answer, int) or (isinstance(answer, str) and answer.strip().isdigit()):
        index = int(answer)
        if not 0 <= index < n_choices:
            raise DataError(f"answer index {index} is outside 0..{n_choices - 1}", field="answer")
        return chr(ord("A") + index)
    letter = str(answer).strip().strip("()").upper()
    if len(letter) != 1 or not "A" <= letter < chr(ord("A") + n_choices):
        raise DataError(f"answer {answer!r} is not one of the {n_choices} option letters", field="answer")
    return letter


def score(response: str | None, item: ScoringItem) -> ItemScore:
    """Correct when the letter read from ``response`` is the reference letter."""
    n = item.n_choices or (len(item.choices) if item.choices else 4)
    reference = answer_letter(item.answer, n)
    parse = parse_choice(response, n_choices=n, choices=item.choices, protocol=item.protocol, seed=item.seed)
    correct = parse.letter == reference
    return ItemScore(
        "mcq",
        correct,
        float(correct),
        parse.parsed,
        parse.letter,
        parse.rule,
        {"protocol": parse.protocol, "reference": reference},
        protocol=parse.protocol,
    )


SCORER = register_scorer(
    Scorer(
        "mcq",
        score,
        subsets=("mmsu", "openbookqa", "speechmmlu", "mcq"),
        needs_answer=True,
        description="multiple choice: the option letter read == the answer (unparsed: wrong)",
    )
)
