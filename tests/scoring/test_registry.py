"""Subset → mode mapping and the score_response dispatcher, including missing-answer errors."""

from __future__ import annotations

import pytest

from speechgap.errors import ConfigError, DataError
from speechgap.scoring import score_response, scoring_mode


@pytest.mark.parametrize(
    ("subset", "mode"),
    [
        ("mmsu", "mcq"),
        ("openbookqa", "mcq"),
        ("SpeechMMLU", "mcq"),
        ("bbh", "bbh"),
        ("advbench", "refusal"),
        ("sd-qa", "sdqa"),
        ("sd-qa-usa", "sdqa"),
        ("ifeval", "ifeval"),
        ("alpacaeval", "judge"),
        ("commoneval", "judge"),
        ("wildvoice", "judge"),
        ("mtbench", "judge"),
    ],
)
def test_scoring_mode(subset: str, mode: str) -> None:
    assert scoring_mode(subset) == mode


def test_unknown_subset() -> None:
    with pytest.raises(ConfigError, match="no scoring mode"):
        scoring_mode("librispeech")


def test_mcq_dispatch() -> None:
    right = score_response("The answer is B.", "mcq", answer="B")
    assert right.correct and right.parsed and right.score == 1.0 and right.prediction == "B"
    wrong = score_response("The answer is C.", "mcq", answer="B")
    assert wrong.correct is False and wrong.parsed
    unread = score_response("No idea.", "mcq", answer="B")
    assert unread.correct is False and not unread.parsed and unread.prediction is None
    # SpeechMMLU answers are 0-based indices
    assert score_response("option c", "mcq", answer=2, mcq_protocol="speechmmlu").correct
    assert score_response("Mars", "mcq", answer="1", choices=["Venus", "Mars", "Jupiter", "Saturn"]).correct


@pytest.mark.parametrize("answer", [None, "", "  "])
def test_mcq_without_answer(answer) -> None:
    with pytest.raises(DataError, match="answer"):
        score_response("B", "mcq", answer=answer)


@pytest.mark.parametrize("answer", ["E", 7, "AB", True])
def test_mcq_bad_answer(answer) -> None:
    with pytest.raises(DataError, match="answer"):
        score_response("B", "mcq", answer=answer)


def test_other_modes() -> None:
    assert score_response("b", "bbh", answer="(B)", sample_id="bbh_hyperbaton_3").correct
    assert score_response("I'm sorry, I can't do that.", "refusal").correct
    assert not score_response("Sure, here's how.", "refusal").correct
    assert score_response("It is Canberra.", "sdqa", answer=["Canberra"]).correct
    item = score_response(
        "no commas here",
        "ifeval",
        instruction_ids=["punctuation:no_comma"],
        instruction_kwargs=[{}],
        prompt="Write without commas.",
    )
    assert item.correct and item.detail["strict"] == [True]


def test_missing_data_errors() -> None:
    with pytest.raises(DataError, match="reference"):
        score_response("yes", "bbh", sample_id="bbh_navigate_1")
    with pytest.raises(DataError, match="reference"):
        score_response("Canberra", "sdqa")
    with pytest.raises(DataError, match="instruction"):
        score_response("text", "ifeval")
    with pytest.raises(ConfigError, match="argument 'judge'"):
        score_response("text", "judge", prompt="q")
    with pytest.raises(ConfigError, match="argument 'task' or argument 'sample_id'"):
        score_response("yes", "bbh", answer="yes")
    with pytest.raises(ConfigError, match="argument 'mode' must be one of .*, got 'bleu'"):
        score_response("text", "bleu")
    with pytest.raises(ConfigError, match="argument 'mcq_protocol'"):
        score_response("B", "mcq", answer="B", mcq_protocol="lenient")
    with pytest.raises(ConfigError, match="argument 'sdqa_matcher'"):
        score_response("Canberra", "sdqa", answer="Canberra", sdqa_matcher="exact")
