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


# --- VoiceBench's template rule, re-derived independently from its published behaviour
#
# VoiceBench (src/evaluator/mcq.py) lower-cases the response, drops a leading "<1>"/"<2>"/"<3>", then for
# each template in order and each letter a–d in order returns the first letter whose filled-in template
# ("[CHOICE]" replaced by the letter) is a substring; then a bare letter, or a letter followed by . , : )
# at the start; then three literal phrases meaning A. The list below is written in the reference's own
# "[CHOICE]" notation, independently of choice.py's "{}" notation.
_REFERENCE_TEMPLATES = (
    "答案是[CHOICE]",
    "答案是 [CHOICE]",
    "答案是选项[CHOICE]",
    "答案应该是[CHOICE]",
    "答案应该是 [CHOICE]",
    "答案就是选项[CHOICE]",
    "答案是‘[CHOICE]",
    "是[CHOICE]：",
    "答案选[CHOICE]",
    "[CHOICE]是正确",
    "选项[CHOICE]是最合适的",
    "answer is: **[CHOICE]",
    "answer is **[CHOICE]",
    "the answer to the question is: **[CHOICE]",
    "the answer to the multiple-choice question is **[CHOICE]",
    "the answer is '[CHOICE]'",
    "[CHOICE] is the best answer",
    "the answer is [CHOICE]",
    "the correct answer is [CHOICE]",
    "would select [CHOICE]",
    "would choose [CHOICE]",
    "would select option [CHOICE]",
    "would choose option [CHOICE]",
    'is "[CHOICE]"',
    'is "[CHOICE].',
    "is: **[CHOICE])",
    "is **[CHOICE],",
    "is **[CHOICE]:",
    "is **[CHOICE])",
    "is: **[CHOICE].",
    "is: **[CHOICE]:",
    "is **[CHOICE].",
    "be **[CHOICE],",
    "is: **[CHOICE]**",
    "is therefore option **[CHOICE]:",
    "is: \n\n**[CHOICE])",
    "as **[CHOICE]:",
    "be **[CHOICE])",
    "be **[CHOICE]:",
    "is: \n\n**[CHOICE]**",
    "suggests **[CHOICE])",
    "be option **[CHOICE]:",
    "with **[CHOICE])",
    'is typically "[CHOICE])',
    "be to **[CHOICE])",
    "is: \n\n[CHOICE])",
    "is likely to be: **[CHOICE].",
    "is **[CHOICE] (",
    "is option **[CHOICE]**",
    "is likely **[CHOICE]**",
    "is:\n**[CHOICE].",
    "is:\n\n**[CHOICE].",
    "would be [CHOICE]",
    "would be option [CHOICE]",
    "would be ([CHOICE])",
    "would be option ([CHOICE])",
    "is [CHOICE],",
    "is typically [CHOICE],",
    "is typically [CHOICE].",
    "i'd say [CHOICE].",
    "option [CHOICE].",
    "option [CHOICE]:",
    "option [CHOICE],",
    "the answer is:\n**[CHOICE]",
    "is [CHOICE]:",
    "is [CHOICE].",
    "is [CHOICE],",
    "is: [CHOICE].",
    "is ([CHOICE])",
    "is:\n**[CHOICE])",
    "is likely **[CHOICE]:",
    "is the **[CHOICE])",
    ":\n[CHOICE].",
    ":\n[CHOICE])",
    ":\n[CHOICE],",
    ": \n[CHOICE].",
    ":  \n[CHOICE].",
    ":\n\n[CHOICE].",
    ":\n\n[CHOICE])",
    "is most likely **[CHOICE]:",
    ":\n\n[CHOICE],",
    ": \n\n[CHOICE].",
    "is option [CHOICE],",
    "([CHOICE]) would be",
    "is ([CHOICE]).",
    "is [CHOICE])",
    "is: [CHOICE])",
    "is:\n\n[CHOICE]:",
    "is: **[CHOICE],",
    "(option [CHOICE])",
    "answer is ([CHOICE])",
    'select option "[CHOICE]"',
    "is: [CHOICE]",
    "is typically **[CHOICE],",
    "is **[CHOICE]**",
    "is likely '[CHOICE]'",
    "is option '[CHOICE]'",
    "is:\n**[CHOICE]:",
    "is \\( \\boxed{[CHOICE] ",
    "would be '[CHOICE]'",
    "is the **[CHOICE]** ",
    "question is [CHOICE] (",
    "is:\n\n**[CHOICE])",
    "closest to option **[CHOICE]**",
    "is most likely **[CHOICE])",
    "the answer to the question is '[CHOICE]'",
    "question is **[CHOICE]**",
    "known as '[CHOICE]'",
    "is '[CHOICE])",
    "is typically **[CHOICE]:",
    "is \\( \\boxed{\\text{[CHOICE]}} \\)",
    "is \\( \\text{[CHOICE]) }",
    "is \\( \\text{[CHOICE]} \\)",
    "is \\( \\text{[CHOICE]:",
    "is \\( \\text{[CHOICE])",
    "is \\(\\text{[CHOICE].",
    "is:\n\n**[CHOICE]",
    "is \\( \\text{[CHOICE].}",
    "is \\( \\text{[CHOICE].",
    "is \\( \\boxed{[CHOICE]}",
    "is:\n\\[ \\boxed{\\text{[CHOICE]}}",
    "is:\n\\[ \\text{[CHOICE])",
    "is:\n\n\\[ \\text{[CHOICE])",
    "is \\( \\textbf{[CHOICE])",
    "is \\( \\text{[CHOICE]}",
    "is: \\( \\text{[CHOICE].",
    "corresponds to:\n- **[CHOICE]:",
    "would be: **[CHOICE]**.",
    "is \\( [CHOICE] \\)",
    "is:\n**[CHOICE] ",
    "corresponds to option **[CHOICE]**",
    "be **[CHOICE]**",
    "be: \n\n[CHOICE])",
    "is:\n\\[ \\boxed{[CHOICE]}",
    "is:  \n**[CHOICE]:",
    "is: \\( \\text{[CHOICE])",
    "is likely: **[CHOICE],",
    "is } \\mathbf{[CHOICE].",
    "is \\( \\boxed{[CHOICE])",
    "is \\( \\textbf{[CHOICE]}",
    "is \\([CHOICE]\\)",
    "is:\n  \n**[CHOICE]:",
    "is option **[CHOICE] ",
    "is:\n\\( \\textbf{[CHOICE].",
    "is \\( \\mathbf{[CHOICE]}",
    "was option **[CHOICE]**",
    'is likely "[CHOICE])',
    "option **[CHOICE]:",
    'is "[CHOICE])',
    "is most likely **[CHOICE],",
    "is often **[CHOICE]:",
    "is:  \n[CHOICE])",
    " [CHOICE].",
    " [CHOICE],",
    " [CHOICE]:",
    " [CHOICE])",
    "**[CHOICE].",
    "**[CHOICE])",
    '"[CHOICE].',
    '"[CHOICE],',
    '"[CHOICE]:',
    "([CHOICE])",
    '"[CHOICE]"',
)


def _reference_read(response: str) -> str | None:
    response = response.lower()
    if response[:3] in ("<1>", "<2>", "<3>"):
        response = response[3:].strip()
    for template in _REFERENCE_TEMPLATES:
        for letter in "abcd":
            if template.replace("[CHOICE]", letter) in response:
                return letter.upper()
    for letter in "abcd":
        if response == letter or response.startswith(tuple(letter + mark for mark in ".,:)")):
            return letter.upper()
    for phrase in (
        "would be a.",
        'would be "a.',
        "the best option from the given choices would be a scorpion (a)",
    ):
        if phrase in response:
            return "A"
    return None


def test_reference_template_count() -> None:
    assert len(_REFERENCE_TEMPLATES) == 163
    assert len(set(_REFERENCE_TEMPLATES)) < 163  # the reference itself lists "is [CHOICE]," twice


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("答案是‘C’。", "C"),  # U+2018, as VoiceBench writes it
        ("答案是‘d’", "D"),
        ("我认为答案是‘A’", "A"),
    ],
)
def test_voicebench_curly_quote_template(response: str, expected: str) -> None:
    parse = extract_choice_voicebench(response, seed=0)
    assert (parse.letter, parse.parsed, parse.rule) == (expected, True, "voicebench_template")


def test_voicebench_ascii_apostrophe_is_not_a_chinese_template() -> None:
    # With an ASCII apostrophe no Chinese template applies; "c'" is read by no other template either.
    assert _reference_read("答案是'c'") is None
    parse = extract_choice_voicebench("答案是'c'", seed=3)
    assert not parse.parsed and parse.rule == "random_fallback"


def _random_responses(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    fragments = [
        "答案是‘",
        "答案是'",
        "答案是",
        "答案是 ",
        "选项",
        "是",
        "：",
        "。",
        "’",
        "'",
        '"',
        "**",
        "(",
        ")",
        ".",
        ",",
        ":",
        " ",
        "\n",
        "\n\n",
        "is ",
        "the answer is ",
        "would be ",
        "option ",
        "\\( \\boxed{",
        "\\text{",
        "}",
        " \\)",
        "<1>",
        "<2>",
        "i'd say ",
        "hmm ",
        "planet",
        "The ",
        "Answer",
        "IS ",
    ]
    letters = list("abcdeABCDE")
    responses = []
    for index in range(count):
        if index % 3 == 0:
            # A reference template filled with a letter, wrapped in noise.
            template = rng.choice(_REFERENCE_TEMPLATES).replace("[CHOICE]", rng.choice(letters))
            pieces = [rng.choice(fragments) for _ in range(rng.randint(0, 3))]
            pieces.insert(rng.randint(0, len(pieces)), template)
        else:
            # Random strings built around the Chinese prefixes, the curly quote included.
            pieces = [rng.choice(fragments + letters) for _ in range(rng.randint(1, 8))]
            if index % 3 == 1:
                pieces.insert(rng.randint(0, len(pieces)), rng.choice(["答案是‘", "答案是'"]))
        responses.append("".join(pieces))
    return responses


def test_voicebench_agrees_with_independent_rederivation() -> None:
    responses = _random_responses(900, seed=2024)
    disagreements = []
    read = 0
    for response in responses:
        parse = extract_choice_voicebench(response, seed=0)
        ours = parse.letter if parse.parsed else None
        reference = _reference_read(response)
        read += reference is not None
        if ours != reference:
            disagreements.append((response, ours, reference))
    assert disagreements == []
    # The generator exercises both outcomes, and the curly-quote template in particular.
    assert 200 < read < len(responses)
    assert any("答案是‘" in response and _reference_read(response) for response in responses)


def test_voicebench_every_template_reads_every_letter() -> None:
    for template in _REFERENCE_TEMPLATES:
        for letter in "abcd":
            response = "xx " + template.replace("[CHOICE]", letter.upper()) + " yy"
            assert extract_choice_voicebench(response).letter == _reference_read(response)
