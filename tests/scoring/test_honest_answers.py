"""The honest extractor against a hand-labelled corpus of realistic answers (issue #14, part 4).

Rates over the corpus: wrong reads at most 1 %, unread clear letters at most 5 %, and no letter ever read
from a hedge or a refusal. The same thresholds hold on ``HELD_OUT``, paraphrases written after the rules.
"""

from __future__ import annotations

import pytest
from honest_answers import (
    CATEGORIES,
    CORPUS,
    HELD_OUT,
    LEGS,
    NO_LETTER_CATEGORIES,
    PLANETS,
    HonestAnswer,
)

from speechgap.scoring.choice import parse_choice

MAX_WRONG = 0.01
MAX_UNREAD = 0.05


def _read(item: HonestAnswer) -> str | None:
    return parse_choice(item.response, n_choices=item.n_choices, choices=item.choices).letter


def _rates(corpus: list[HonestAnswer]) -> tuple[float, float, list[HonestAnswer], list[HonestAnswer]]:
    wrong = [item for item in corpus if (letter := _read(item)) is not None and letter != item.expected]
    clear = [item for item in corpus if item.carries_letter]
    unread = [item for item in clear if _read(item) is None]
    return len(wrong) / len(corpus), len(unread) / len(clear), wrong, unread


def test_corpus_shape() -> None:
    assert len(CORPUS) >= 200
    assert len(HELD_OUT) >= 40
    for corpus in (CORPUS, HELD_OUT):
        assert {item.category for item in corpus} <= set(CATEGORIES)
        for item in corpus:
            assert item.expected is None or item.expected in "ABCDEFGHIJ"[: item.n_choices]
            assert item.choices is None or len(item.choices) == item.n_choices
            assert item.category not in NO_LETTER_CATEGORIES or item.expected is None
    assert {item.category for item in CORPUS} == set(CATEGORIES)
    assert {2, 3, 4, 5, 10} <= {item.n_choices for item in CORPUS}
    with_choices = sum(item.choices is not None for item in CORPUS)
    assert 30 <= with_choices < len(CORPUS)
    assert len({item.response for item in CORPUS}) > 0.95 * len(CORPUS)


@pytest.mark.parametrize("name", ["CORPUS", "HELD_OUT"])
def test_rates(name: str) -> None:
    corpus = CORPUS if name == "CORPUS" else HELD_OUT
    wrong_rate, unread_rate, wrong, unread = _rates(corpus)
    assert wrong_rate <= MAX_WRONG, [(item.response, _read(item), item.expected) for item in wrong]
    assert unread_rate <= MAX_UNREAD, [item.response for item in unread]


@pytest.mark.parametrize(
    "item",
    [item for item in CORPUS + HELD_OUT if item.category in NO_LETTER_CATEGORIES],
    ids=lambda item: item.response[:40],
)
def test_no_letter_from_hedge_or_refusal(item: HonestAnswer) -> None:
    parse = parse_choice(item.response, n_choices=item.n_choices, choices=item.choices)
    assert parse.letter is None
    assert not parse.parsed
    assert parse.rule in {"ambiguous", "refusal", "no_match"}


# The examples issue #14 names, each checked on its own.
ISSUE_EXAMPLES: list[tuple[str, str | None]] = [
    ("It's D", "D"),
    ("My choice is C.", "C"),
    ("Definitely C.", "C"),
    ("It has to be D.", "D"),
    ("The correct response is B.", "B"),
    ("I believe it's C.", "C"),
    ("Copper does not rust, it tarnishes; the one that rusts is iron. C.", "C"),
    ("That leaves B.", "B"),
    ("The answer is not A. It is C.", "C"),
    ("$\\boxed{\\text{A}}$", "A"),
    ("\\( \\text{B} \\)", "B"),
    ("la respuesta es C", "C"),
    ("die Antwort ist B", "B"),
    ("a resposta é D", "D"),
    ("la risposta è A", "A"),
    ("ответ: B", "B"),
    ("正解はB", "B"),
    ("答案是C", "C"),
    ("答えはC です", "C"),
    ("Neither A nor B is correct; it's C.", "C"),
    ("A) Six B) Four C) Ten D) Eight -> D", "D"),
    ("it isn't B, it's C", "C"),
    (
        "Let's look at each option. A is too small, B is far too large, and D is not a metal. "
        "Therefore the answer is C.",
        "C",
    ),
    ("The answer is B or D.", None),
    ("C and D are both correct.", None),
    ("Either A or C.", None),
    ("I'm torn between B and C.", None),
    ("I can't answer that.", None),
    ("I'm not sure.", None),
    ("None of the options is correct.", None),
    ("not A", None),
    ("neither A nor B", None),
    ("A is wrong", None),
]


@pytest.mark.parametrize(("response", "expected"), ISSUE_EXAMPLES)
def test_issue_examples(response: str, expected: str | None) -> None:
    assert parse_choice(response).letter == expected


def test_issue_examples_with_option_texts() -> None:
    assert parse_choice("A) Six B) Four C) Ten D) Eight -> D", choices=LEGS).letter == "D"
    # Restating all options is not an answer; naming one of them afterwards is.
    assert parse_choice("A) Venus\nB) Mars\nC) Jupiter\nD) Saturn", choices=PLANETS).letter is None
    assert parse_choice("A) Venus B) Mars C) Jupiter D) Saturn. Mars.", choices=PLANETS).letter == "B"
    assert parse_choice("It is definitely not Venus, it is Mars.", choices=PLANETS).letter == "B"
    assert parse_choice("Venus or Mars.", choices=PLANETS).letter is None


@pytest.mark.parametrize(
    ("response", "rule"),
    [
        ("The answer is B or D.", "ambiguous"),
        ("I'm torn between B and C.", "ambiguous"),
        ("Venus or Mars.", "ambiguous"),
        ("I can't answer that.", "refusal"),
        ("None of the options is correct.", "refusal"),
        ("Not A.", "no_match"),
        ("The answer is E.", "out_of_range"),
        ("...iron. C.", "closing_letter"),
        ("A) Venus\nB) Mars\nC) Jupiter\nD) Saturn\n\nB) Mars", "listed_choice"),
        ("It's D", "answer_statement"),
    ],
)
def test_rule_names(response: str, rule: str) -> None:
    assert parse_choice(response, choices=PLANETS).rule == rule


def test_hedge_then_decision_reads_the_decision() -> None:
    # A hedge resolved later is an answer; an answer hedged later is not.
    assert parse_choice("I'm torn between B and C, but I'll go with C.").letter == "C"
    assert parse_choice("It's B. Although C could also be correct.").letter is None
