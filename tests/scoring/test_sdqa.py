"""sd-qa: the honest containment matcher (numbers, articles, acronyms, surnames) and PEDANT's absence.

The yes/no judge matcher is tested against a local server in test_judge.py.
"""

from __future__ import annotations

import pytest

from speechgap.errors import ConfigError, DataError
from speechgap.scoring import score_response
from speechgap.scoring.sdqa import normalise_answer, score_sdqa, surname_match


@pytest.mark.parametrize(
    ("response", "reference", "expected"),
    [
        ("The capital of Australia is Canberra.", "Canberra", True),
        ("It happened in 1969.", "1969", True),
        ("It happened in 19690.", "1969", False),
        ("The Beatles wrote it.", "Beatles", True),
        ("the beatles", "The Beatles", True),
        ("It was Neil Armstrong!", ["Armstrong", "Neil Armstrong"], True),
        ("It was Buzz Aldrin.", ["Armstrong", "Neil Armstrong"], False),
        ("U.S.A", "usa", True),  # a dotted acronym reads as the word
        ("The USA.", "USA", True),  # leading article and trailing punctuation
        ("The U.S.A.", "United States", False),
        ("New York City, of course.", "new york", True),
        ("", "Canberra", False),
        ("Sydney", "Canberra", False),
        # numbers in words and digits, either side
        ("There are twelve.", "12", True),
        ("There are 12.", "twelve", True),
        ("There are twelve hundred.", "12", False),
        ("In nineteen sixty-nine.", "1969", True),
        ("In nineteen sixty nine.", "1969", True),
        ("In 1969.", "nineteen sixty-nine", True),
        ("Sixty-nine.", "1969", False),
        ("In nineteen oh five.", "1905", True),
        ("Two thousand and eight.", "2008", True),
        ("About one hundred and five people.", "105", True),
        ("Twenty-one.", "21", True),
        ("Twenty.", "21", False),
        ("One, two, three.", "123", False),
        ("There were 1,000 soldiers.", "1000", True),
        ("There were one thousand soldiers.", "1,000", True),
        ("Twelve apostles.", "12 apostles", True),
        # a short answer that is the surname of a person's name
        ("Obama.", "Barack Obama", True),
        ("obama", "Barack Obama", True),
        ("The", "Barack Obama", False),
        ("Barack Smith.", "Barack Obama", False),
        ("Barack.", "Barack Obama", False),
        ("Michelle Obama.", "Barack Obama", False),
        ("York.", "New York", False),  # a place, not a person
        ("City.", "New York City", False),
        ("Everest.", "Mount Everest", False),
        ("Kennedy.", "John F. Kennedy", True),
        ("Lee.", "Bruce Lee", True),
        ("Li.", "Jet Li", False),  # a surname of fewer than three letters is too ambiguous
        ("I think it was Obama.", "Barack Obama", False),  # the rule covers only a bare surname
        ("Obama.", "barack obama", False),  # a reference not written as a name
    ],
)
def test_containment(response: str, reference, expected: bool) -> None:
    result = score_sdqa(response, reference)
    assert result.correct is expected, result
    assert result.matcher == "containment"


def test_rules_are_recorded() -> None:
    assert score_sdqa("Obama.", "Barack Obama").rule == "surname"
    assert score_sdqa("It was Barack Obama.", "Barack Obama").rule == "containment"
    assert score_sdqa("Bush.", "Barack Obama").rule == "no_match"
    assert score_sdqa("  ", "Barack Obama").rule == "empty"
    assert surname_match("Obama", ["Canberra", "Barack Obama"]) == "Barack Obama"
    item = score_response("Obama.", "sdqa", answer="Barack Obama")
    assert (
        item.correct
        and item.rule == "surname"
        and item.detail == {"matcher": "containment", "protocol": "speechgap"}
    )
    assert not score_response("", "sdqa", answer="x").parsed


def test_normalise_answer() -> None:
    assert normalise_answer("  The  Quick, brown FOX! ") == "quick brown fox"
    assert normalise_answer("An apple a day") == "apple day"
    assert normalise_answer("Nineteen sixty-nine") == "1969"
    assert normalise_answer("twenty twenty-one") == "2021"
    assert normalise_answer("one and two") == "1 and 2"
    assert normalise_answer("Oh no") == "oh no"
    assert normalise_answer("the U.S. and the U.K.") == "us and uk"


def test_sdqa_bad_input() -> None:
    with pytest.raises(DataError, match="reference"):
        score_sdqa("Canberra", None)
    with pytest.raises(DataError, match="empty"):
        score_sdqa("Canberra", ["", "  "])
    with pytest.raises(DataError, match="reference"):
        score_response("Canberra", "sdqa")
    with pytest.raises(ConfigError, match="argument 'sdqa_matcher' must be one of containment, judge"):
        score_response("Canberra", "sdqa", answer="Canberra", sdqa_matcher="fuzzy")
    with pytest.raises(ConfigError, match="argument 'judge'"):
        score_response("Canberra", "sdqa", answer="Canberra", sdqa_matcher="judge", prompt="q")


def test_pedant_is_a_clear_config_error() -> None:
    with pytest.raises(ConfigError, match=r"pedant.*pickled classifiers.*unpickl") as caught:
        score_response("Canberra", "sdqa", answer="Canberra", sdqa_matcher="pedant")
    assert "judge" in str(caught.value) and "containment" in str(caught.value)
