"""Multiple-choice extraction on realistic responses: every phrasing the issue lists, and the traps."""

from __future__ import annotations

import random

import pytest

from speechgap.errors import ConfigError
from speechgap.scoring.choice import (
    extract_choice,
    extract_choice_speechmmlu,
    extract_choice_voicebench,
    parse_choice,
    voicebench_mcq_accuracy,
)

PLANETS = ["Venus", "Mars", "Jupiter", "Saturn"]
SCIENCE = ["photosynthesis", "respiration", "a chemical reaction", "evaporation"]
N = None  # no option texts known

# (response, n_choices, choices, expected letter or None)
CASES: list[tuple[str, int, list[str] | None, str | None]] = [
    # --- explicit answer statements
    ("The answer is B", 4, N, "B"),
    ("The answer is B.", 4, N, "B"),
    ("The answer is (B).", 4, N, "B"),
    ("The answer is: B", 4, N, "B"),
    ("the answer is b", 4, N, "B"),
    ("The correct answer is C.", 4, N, "C"),
    ("The correct answer is c because water boils at 100 degrees.", 4, N, "C"),
    ("The right answer would be D.", 4, N, "D"),
    ("The final answer is A.", 4, N, "A"),
    ("Final answer: D", 4, N, "D"),
    ("Answer: (C)", 4, N, "C"),
    ("Answer: C", 4, N, "C"),
    ("Answer - b", 4, N, "B"),
    ("answer: [d]", 4, N, "D"),
    ("My answer is B, Mars.", 4, PLANETS, "B"),
    ("The answer to the question is D.", 4, N, "D"),
    ("The answer to this question is (A).", 4, N, "A"),
    ("So the answer is option C.", 4, N, "C"),
    ("The answer is choice B.", 4, N, "B"),
    ("Therefore, the answer is B) Mars.", 4, PLANETS, "B"),
    ("The correct option is B.", 4, N, "B"),
    ("The best choice would be (D).", 4, N, "D"),
    ("The correct one is C.", 4, N, "C"),
    ("I choose B.", 4, N, "B"),
    ("I would choose option C.", 4, N, "C"),
    ("I'd go with D.", 4, N, "D"),
    ("I will pick (a).", 4, N, "A"),
    ("I select b.", 4, N, "B"),
    ("\\boxed{C}", 4, N, "C"),
    ("The answer is \\boxed{B}.", 4, N, "B"),
    ("Option (D) is correct.", 4, N, "D"),
    ("Option B is the correct answer.", 4, N, "B"),
    ("(C) is right.", 4, N, "C"),
    ("B is correct.", 4, N, "B"),
    ("C is the best answer here.", 4, N, "C"),
    ("Choice A is correct.", 4, N, "A"),
    # --- the last statement wins; negations are not answers
    ("A is wrong, B is wrong, the answer is C.", 4, N, "C"),
    ("Option A is wrong and option B is wrong, so the answer is D.", 4, N, "D"),
    ("The answer is not A. The answer is C.", 4, N, "C"),
    ("It's not A. The correct answer is B.", 4, N, "B"),
    ("B is correct, not A.", 4, N, "B"),
    ("Option A is incorrect; option C is right.", 4, N, "C"),
    ("At first I thought the answer is A, but actually the answer is D.", 4, N, "D"),
    ("Not A, not B, not C.", 4, N, None),
    ("not A", 4, N, None),
    ("The answer is not D.", 4, N, None),
    # --- opening letters
    ("B) Mars", 4, PLANETS, "B"),
    ("B) Mars", 4, N, "B"),
    ("(B) Mars", 4, N, "B"),
    ("B. Mars", 4, N, "B"),
    ("b. Mars is the red planet.", 4, N, "B"),
    ("C: Jupiter is the largest planet.", 4, N, "C"),
    ("D - Saturn", 4, N, "D"),
    ("A) Venus, because it is the hottest.", 4, N, "A"),
    ("A. Venus", 4, N, "A"),
    ("(a) Venus", 4, N, "A"),
    ("[C] Jupiter", 4, N, "C"),
    ("B, Mars.", 4, N, "B"),
    ("C because it is the largest.", 4, N, "C"),
    ("Answer: B) Mars", 4, PLANETS, "B"),
    ("Sure!\nB) Mars", 4, N, "B"),
    # --- bare letters and markdown
    ("B", 4, N, "B"),
    ("b", 4, N, "B"),
    ("b.", 4, N, "B"),
    ("B.", 4, N, "B"),
    ("(B)", 4, N, "B"),
    ("(b)", 4, N, "B"),
    ("[D]", 4, N, "D"),
    ("  C  ", 4, N, "C"),
    ("**B**", 4, N, "B"),
    ("**B) Mars**", 4, N, "B"),
    ("The answer is **C**.", 4, N, "C"),
    ("**Answer:** D", 4, N, "D"),
    ("**Final answer: (A)**", 4, N, "A"),
    ("`B`", 4, N, "B"),
    ("## Answer\nC", 4, N, "C"),
    ("A", 4, N, "A"),
    ("a", 4, N, "A"),
    ("A.", 4, N, "A"),
    ("<think>Option A looks wrong.</think>The answer is B.", 4, N, "B"),
    ("<1> B", 4, N, "B"),
    # --- option/choice mentions anywhere
    ("option b", 4, N, "B"),
    ("Option B", 4, N, "B"),
    ("I think option c.", 4, N, "C"),
    ("I'd say it's option d, Saturn.", 4, N, "D"),
    ("It must be choice (B).", 4, N, "B"),
    ("Mars (B) is the red planet.", 4, N, "B"),
    ("Going with letter C.", 4, N, "C"),
    ("Option A can be ruled out, so option C.", 4, N, "C"),
    ("Options A and D are both possible.", 4, N, None),
    ("Either option A or option B.", 4, N, None),
    # --- restated option text (choices known)
    ("I think it's Mars.", 4, PLANETS, "B"),
    ("Mars", 4, PLANETS, "B"),
    ("mars", 4, PLANETS, "B"),
    ("The answer is Mars.", 4, PLANETS, "B"),
    ("It's Jupiter, the largest planet in the solar system.", 4, PLANETS, "C"),
    ("Saturn is the planet with the most famous rings.", 4, PLANETS, "D"),
    ("It is definitely not Venus, it is Mars.", 4, PLANETS, "B"),
    ("Venus is too hot, so I think it's Mars.", 4, PLANETS, "B"),
    ("The process is called photosynthesis.", 4, SCIENCE, "A"),
    ("That is evaporation.", 4, SCIENCE, "D"),
    ("This is a chemical reaction.", 4, SCIENCE, "C"),
    ("A good choice is Mars.", 4, PLANETS, "B"),
    ("I think it's Mars.", 4, N, None),
    ("Venus or Mars, I am not sure.", 4, PLANETS, None),
    ("A) Venus\nB) Mars\nC) Jupiter\nD) Saturn", 4, PLANETS, None),
    ("A) Venus\nB) Mars\nC) Jupiter\nD) Saturn", 4, N, None),
    ("A) Venus\nB) Mars\nThe answer is B.", 4, N, "B"),
    ("Pluto.", 4, PLANETS, None),
    # --- "A"/"I" as words are not options
    ("A planet is a large body orbiting a star.", 4, N, None),
    ("A good choice is the fourth planet.", 4, N, None),
    ("A lot of people think so.", 4, N, None),
    ("A. planet", 4, N, "A"),
    ("The answer is a planet.", 4, N, None),
    ("The answer is a red one.", 4, N, None),
    ("It is a gas giant.", 4, N, None),
    ("I think so.", 10, N, None),
    ("I believe the question is unclear.", 10, N, None),
    ("I don't know.", 10, N, None),
    ("I. Mercury", 10, N, "I"),
    ("The answer is I.", 10, N, "I"),
    ("I think the answer is J.", 10, N, "J"),
    ("I", 10, N, "I"),
    ("I think the answer is C.", 4, N, "C"),
    # --- empty, refusals, out of range
    ("", 4, N, None),
    ("   ", 4, N, None),
    ("\n\t", 4, N, None),
    ("I'm sorry, but I can't help with that.", 4, N, None),
    ("I cannot answer this question.", 4, N, None),
    ("As an AI, I do not have opinions.", 4, N, None),
    ("Sorry, could you repeat the question?", 4, N, None),
    ("The answer is E.", 4, N, None),
    ("E) None of the above", 4, N, None),
    ("E", 4, N, None),
    ("The answer is E.", 5, N, "E"),
    ("Answer: (C)", 2, N, None),
    ("The answer is F.", 6, N, "F"),
    # --- Chinese
    ("答案是B", 4, N, "B"),
    ("答案是 C。", 4, N, "C"),
    ("答案：D", 4, N, "D"),
    ("答案应该是A", 4, N, "A"),
    ("我选B。", 4, N, "B"),
    ("选择C", 4, N, "C"),
    # --- full-width punctuation and odd spacing
    ("（B）", 4, N, "B"),
    ("The answer is ( B ).", 4, N, "B"),
    ("Answer ：C", 4, N, "C"),
]


def test_table_is_large() -> None:
    assert len(CASES) >= 120


@pytest.mark.parametrize(("response", "n_choices", "choices", "expected"), CASES)
def test_extract_choice(
    response: str, n_choices: int, choices: list[str] | None, expected: str | None
) -> None:
    assert extract_choice(response, n_choices=n_choices, choices=choices) == expected


@pytest.mark.parametrize(("response", "n_choices", "choices", "expected"), CASES)
def test_parse_agrees_with_extract(response, n_choices, choices, expected) -> None:
    parse = parse_choice(response, n_choices=n_choices, choices=choices)
    assert parse.parsed == (expected is not None)
    assert parse.letter == expected
    assert parse.protocol == "speechgap"
    assert parse.rule


def test_rules_named() -> None:
    assert parse_choice("").rule == "empty"
    assert parse_choice("The answer is E.").rule == "out_of_range"
    assert parse_choice("Either option A or option B.").rule == "ambiguous"
    assert parse_choice("A planet is a body.").rule == "no_match"
    assert parse_choice("B").rule == "bare_letter"
    assert parse_choice("The answer is B").rule == "answer_statement"
    assert parse_choice("B) Mars").rule == "leading_letter"
    assert parse_choice("option b").rule == "marked_letter"
    assert parse_choice("Mars", choices=PLANETS).rule == "option_text"


def test_never_random() -> None:
    # The honest extractor is a pure function: the same unreadable text gives None every time.
    random.seed(1)
    assert {extract_choice("Hmm, hard to say.") for _ in range(20)} == {None}


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="argument 'n_choices' must be between 2 and 26, got 1"):
        extract_choice("B", n_choices=1)
    with pytest.raises(ConfigError, match="argument 'choices' has 3 entries but argument 'n_choices' is 4"):
        extract_choice("B", n_choices=4, choices=["x", "y", "z"])
    with pytest.raises(ConfigError, match="argument 'protocol' must be one of .*, got 'lenient'"):
        parse_choice("B", protocol="lenient")


# --- SpeechMMLU strict protocol


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("Option B", "B"),
        ("option c is right", "C"),
        ("The answer is optionD.", "D"),
        ("OPTION A", "A"),
        ("The answer is B.", None),
        ("B", None),
        ("", None),
        ("option e", None),
        ("Option A is wrong, option C is right.", "A"),  # first match: the strict rule is literal
    ],
)
def test_speechmmlu_protocol(response: str, expected: str | None) -> None:
    parse = extract_choice_speechmmlu(response)
    assert parse.letter == expected
    assert parse.parsed == (expected is not None)
    assert parse_choice(response, protocol="speechmmlu").letter == expected


# --- VoiceBench compatibility protocol


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("The answer is B", "B"),
        ("the correct answer is c", "C"),
        ("答案是D", "D"),
        ("b", "B"),
        ("c) photosynthesis", "C"),
        ("d.", "D"),
        ("The answer is \\( \\boxed{C} \\)", "C"),
        # the reference's substring templates read "is a," in prose as option A
        ("The sun is a, well, star", "A"),
        # and " a." anywhere: the article before a full stop
        ("It is just a. Nothing more.", "A"),
    ],
)
def test_voicebench_templates(response: str, expected: str) -> None:
    parse = extract_choice_voicebench(response, seed=0)
    assert parse.letter == expected
    assert parse.parsed
    assert parse.protocol == "voicebench"


def test_voicebench_fallback_is_seeded_and_flagged() -> None:
    text = "I have no idea whatsoever"
    first = extract_choice_voicebench(text, seed=5)
    again = extract_choice_voicebench(text, seed=5)
    assert first == again
    assert not first.parsed and first.rule == "random_fallback"
    assert first.letter == random.Random(5).choice("ABCD")
    # The honest extractor gives nothing for the same text.
    assert extract_choice(text) is None


def test_voicebench_accuracy_reproduces_reference_arithmetic() -> None:
    responses = ["The answer is A", "no idea", "b", "???", "the correct answer is d", "hmm"]
    references = ["A", "B", "B", "C", "C", "D"]
    result = voicebench_mcq_accuracy(responses, references, seed=11)
    # Independent re-computation: one generator, drawn once per failure in order.
    rng = random.Random(11)
    preds = ["A", rng.choice("ABCD"), "B", rng.choice("ABCD"), "D", rng.choice("ABCD")]
    expected_acc = 100.0 * sum(p == r for p, r in zip(preds, references, strict=True)) / len(references)
    assert result.acc == pytest.approx(expected_acc)
    assert result.fail == pytest.approx(100.0 * 3 / 6)
    assert [p.letter for p in result.parses] == preds
    with pytest.raises(ConfigError):
        voicebench_mcq_accuracy(["a"], ["A", "B"])
    with pytest.raises(ConfigError):
        voicebench_mcq_accuracy([], [])
