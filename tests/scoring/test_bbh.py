"""BBH scoring without the reference scorer's "a"/"b" confusion, and that scorer reproduced under
``protocol="voicebench"``."""

from __future__ import annotations

import random
import re

import pytest

from speechgap.errors import DataError
from speechgap.scoring import bbh_voicebench as vb
from speechgap.scoring import score_response
from speechgap.scoring.bbh import bbh_task_from_id, normalise_bbh_reference, parse_bbh, score_bbh

CASES = [
    # hyperbaton: (A)/(B)
    ("hyperbaton", "b", "(B)"),  # the reference scorer maps a bare "b" to option A
    ("hyperbaton", "B", "(B)"),
    ("hyperbaton", "a", "(A)"),
    ("hyperbaton", "(A)", "(A)"),
    ("hyperbaton", "The answer is (B).", "(B)"),
    ("hyperbaton", "The correct adjective order is option a.", "(A)"),
    ("hyperbaton", "Sentence B has the correct adjective order.", "(B)"),
    ("hyperbaton", "The second option is correct.", "(B)"),
    ("hyperbaton", "a big old red car is the natural order, so the first option.", "(A)"),
    ("hyperbaton", "A) is correct.", "(A)"),
    ("hyperbaton", "a lovely old Brazilian sweater sounds right to me.", None),  # "a" is the article
    ("hyperbaton", "Both sound odd to me.", None),
    ("hyperbaton", "Option A is wrong, option B is right.", "(B)"),
    # sports_understanding: plausible → yes
    ("sports_understanding", "Yes, the sentence is plausible.", "yes"),
    ("sports_understanding", "No.", "no"),
    ("sports_understanding", "The sentence is not plausible because he plays hockey.", "no"),
    ("sports_understanding", "Considering these points, the sentence is plausible.", "yes"),
    ("sports_understanding", "That is implausible.", "no"),
    ("sports_understanding", "It seems plausible to me.", "yes"),
    ("sports_understanding", "The answer is no.", "no"),
    ("sports_understanding", "Joao Moutinho is a soccer player, so scoring a touchdown is unlikely.", "no"),
    ("sports_understanding", "Hmm, hard to say.", None),
    # navigate
    ("navigate", "You return to the starting point, so yes.", "yes"),
    ("navigate", "You do not return to the starting point.", "no"),
    ("navigate", "After these steps we end up back at the starting point.", "yes"),
    ("navigate", "The answer is yes.", "yes"),
    ("navigate", "No, you end up two steps to the left.", "no"),
    ("navigate", "You will not end up back where you started.", "no"),
    # web_of_lies
    ("web_of_lies", "So Delfina tells the truth.", "yes"),
    ("web_of_lies", "Therefore, Osvaldo lies.", "no"),
    ("web_of_lies", "Alejandro does not tell the truth.", "no"),
    ("web_of_lies", "The answer is no, Fidel is lying.", "no"),
    ("web_of_lies", "Yes, he tells the truth.", "yes"),
    ("web_of_lies", "final answer: yes", "yes"),
    ("web_of_lies", "", None),
]


@pytest.mark.parametrize(("task", "response", "expected"), CASES)
def test_parse_bbh(task: str, response: str, expected: str | None) -> None:
    parse = parse_bbh(response, task)
    assert parse.answer == expected
    assert parse.parsed == (expected is not None)


def test_score_and_references() -> None:
    assert score_bbh("b", "(B)", "hyperbaton")[0]
    assert not score_bbh("b", "(A)", "hyperbaton")[0]
    assert score_bbh("Yes, it is plausible.", "Yes", "sports_understanding")[0]
    assert not score_bbh("I can't tell.", "no", "navigate")[0]  # unparseable is wrong, never a coin flip
    assert normalise_bbh_reference("(a)", "hyperbaton") == "(A)"
    assert normalise_bbh_reference("No", "web_of_lies") == "no"
    with pytest.raises(DataError, match="reference"):
        normalise_bbh_reference("maybe", "navigate")


def test_task_from_id() -> None:
    assert bbh_task_from_id("bbh_web_of_lies_17") == "web_of_lies"
    assert bbh_task_from_id("sports_understanding-3") == "sports_understanding"
    with pytest.raises(DataError, match="id"):
        bbh_task_from_id("bbh_date_understanding_1")
    with pytest.raises(DataError, match="task"):
        parse_bbh("yes", "date_understanding")


# ------------------------------------------------------------------ VoiceBench protocol (compatibility only)

_VALUE = {"yes": 1, "no": 0, "(A)": 0, "(B)": 1}


def _rederived_normalise(response: str) -> str:
    """VoiceBench's BBH normalisation, re-derived: lower; drop a final <|user|>, then an opening <1>-<3>,
    then every <|turn_end|>; the marks : ** " - , . ： become spaces; whitespace collapsed."""
    text = response.lower()
    text = text[: -len("<|user|>")].strip() if text.endswith("<|user|>") else text
    text = text[3:].strip() if re.match(r"<[123]>", text) else text
    text = re.sub(r"\*\*|[:\"\-,.：]", " ", text.replace("<|turn_end|>", ""))
    return " ".join(text.split())


def _rederived_read(response: str, task: str) -> int | None:
    """VoiceBench's reading: the first check that holds (shared statements first, except hyperbaton);
    None where it would draw at random."""
    text = _rederived_normalise(response)
    checks = {
        "hyperbaton": vb._HYPERBATON,
        "sports_understanding": vb.STATEMENTS + vb._SPORTS,
        "navigate": vb.STATEMENTS + vb._NAVIGATE,
        "web_of_lies": vb.STATEMENTS + vb._WEB_OF_LIES,
    }[task]
    tests = {
        "in": lambda p: p in text,
        "re": lambda p: re.search(p, text) is not None,
        "eq": lambda p: text == p,
        "starts": text.startswith,
        "ends": text.endswith,
    }
    return next((_VALUE[answer] for kind, pattern, answer in checks if tests[kind](pattern)), None)


_FILLER = ["well", "so", "i think", "after careful thought", "sentence", "option", "(a)", "(b)", "a", "b",
           "yes", "no", "the", "not", "plausible", "tells the truth", "lies", "starting point"]  # fmt: skip
_TASK_TABLES = {
    "hyperbaton": vb._HYPERBATON,
    "sports_understanding": vb.STATEMENTS + vb._SPORTS,
    "navigate": vb.STATEMENTS + vb._NAVIGATE,
    "web_of_lies": vb.STATEMENTS + vb._WEB_OF_LIES,
}


def _dress(text: str, rng: random.Random) -> str:
    """Random case, punctuation between words, markdown and turn markers around a phrase."""
    words = text.split(" ")
    marks = ["", "", "", ",", ".", ":", "-", "**", '"', "：", "!", "?"]
    text = " ".join(word + rng.choice(marks) for word in words)
    text = rng.choice([str, str.upper, str.title, str.capitalize])(text)
    return (
        rng.choice(["", "", "<1>", "<2> ", " "])
        + text
        + rng.choice(["", "", "<|user|>", "<|turn_end|>", "."])
    )


def _generated(task: str, count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    phrases = [re.sub(r"\(\.\+\?\)", "the man", p) if k == "re" else p for k, p, _ in _TASK_TABLES[task]]
    out = []
    for _ in range(count):
        pieces = rng.sample(_FILLER, rng.randint(0, 3)) + rng.sample(phrases, rng.randint(0, 2))
        rng.shuffle(pieces)
        out.append(_dress(" ".join(pieces), rng))
    return out


@pytest.mark.parametrize("task", ["hyperbaton", "sports_understanding", "navigate", "web_of_lies"])
def test_voicebench_bbh_parity_on_generated_responses(task: str) -> None:
    responses = _generated(task, 400, seed=len(task))
    read = 0
    for response in responses:
        expected = _rederived_read(response, task)
        answer, rule, parsed = vb.read_bbh_voicebench(response, task)
        assert parsed == (expected is not None), response
        if expected is not None:
            read += 1
            assert _VALUE[answer] == expected, (response, rule)
        else:
            assert rule == "random_fallback"
    assert 0.3 < read / len(responses) < 1.0  # both outcomes exercised


def test_voicebench_bbh_quirks() -> None:
    def read(response: str, task: str) -> str | None:
        answer, _, parsed = vb.read_bbh_voicebench(response, task)
        return answer if parsed else None

    assert read("b", "hyperbaton") == "(A)"  # a bare "b" is option A there
    assert read("B.", "hyperbaton") == "(A)"
    assert read("a lovely old sweater", "hyperbaton") == "(A)"  # the article read as option A
    assert read("Both sound odd to me.", "hyperbaton") is None
    assert (
        read("The sentence Joao Moutinho caught the screen pass is not plausible.", "sports_understanding")
        == "yes"
    )
    assert read("The sentence is not plausible.", "sports_understanding") == "no"
    assert read("So Fidel must be lying", "web_of_lies") == "yes"
    assert read("I would say that it is not a plausible sentence.", "sports_understanding") is None  # has "."
    assert read("The answer: No", "navigate") == "no"  # ":" became a space: "answer no"
    assert read("<1>Yes<|user|>", "navigate") == "yes"


def test_voicebench_bbh_scorer_records_protocol_and_is_reproducible() -> None:
    right = score_response(
        "The answer is (B).", "bbh", answer="(B)", sample_id="bbh_hyperbaton_1", protocol="voicebench"
    )
    assert right.correct and right.protocol == "voicebench" and right.rule == "in:the answer is (b)"
    honest = score_response("b", "bbh", answer="(B)", sample_id="bbh_hyperbaton_1")
    compat = score_response("b", "bbh", answer="(B)", sample_id="bbh_hyperbaton_1", protocol="voicebench")
    assert honest.correct and honest.protocol == "speechgap" and not compat.correct
    draws = {
        score_response(
            "Hmm.", "bbh", answer="yes", sample_id=f"bbh_navigate_{i}", protocol="voicebench", seed=3
        ).prediction
        for i in range(40)
    }
    assert draws == {"yes", "no"}  # a fallback draw, different across items
    again = score_response(
        "Hmm.", "bbh", answer="yes", sample_id="bbh_navigate_7", protocol="voicebench", seed=3
    )
    first = score_response(
        "Hmm.", "bbh", answer="yes", sample_id="bbh_navigate_7", protocol="voicebench", seed=3
    )
    assert again == first and not first.parsed and first.rule == "random_fallback"
