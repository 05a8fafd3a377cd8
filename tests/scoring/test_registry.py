"""The scorer registry: subset → mode from the scorers' claims, lookup by name, score_response, and a
benchmark added as one scorer (registered here, scored through score_response and score_record)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from speechgap.errors import ConfigError, DataError
from speechgap.evaluation.report import score_record
from speechgap.scoring import (
    MODES_NEEDING_ANSWERS,
    SCORING_MODES,
    ItemScore,
    Scorer,
    ScoringItem,
    get_scorer,
    register_scorer,
    score_response,
    scorer_names,
    scoring_mode,
    unregister_scorer,
)


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
        ("sd-qa/aus", "sdqa"),
        ("SD-QA-IND_N", "sdqa"),
        ("bbh_navigate", "bbh"),
        ("BBH", "bbh"),
        ("alpacaeval_full", "judge"),
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
    with pytest.raises(ConfigError, match="argument 'protocol'"):
        ScoringItem(protocol="lenient")


def test_builtin_scorers() -> None:
    assert SCORING_MODES == ("mcq", "bbh", "refusal", "sdqa", "ifeval", "judge")
    assert set(SCORING_MODES) <= set(scorer_names())
    assert MODES_NEEDING_ANSWERS == {"mcq", "bbh", "sdqa"}
    for name in SCORING_MODES:
        scorer = get_scorer(name)
        assert scorer.name == name and scorer.description
    assert get_scorer("judge").needs_judge and get_scorer("sdqa").judge_protocol == "yesno"
    with pytest.raises(
        ConfigError,
        match=r"argument 'mode' must be one of bbh, ifeval, judge, mcq, refusal, sdqa, got 'bleu'",
    ):
        get_scorer("bleu")


def test_every_mode_records_its_protocol() -> None:
    items = {
        "mcq": ("B", {"answer": "B"}),
        "bbh": ("yes", {"answer": "yes", "sample_id": "bbh_navigate_1"}),
        "refusal": ("Sure.", {}),
        "sdqa": ("Canberra", {"answer": "Canberra"}),
        "ifeval": ("no commas", {"instruction_ids": ["punctuation:no_comma"], "prompt": "p"}),
    }
    for mode, (response, fields) in items.items():
        for protocol in ("speechgap", "voicebench"):
            scored = score_response(response, mode, protocol=protocol, **fields)
            expected = (
                "speechgap" if mode == "sdqa" else protocol
            )  # sd-qa has no deterministic VoiceBench rule
            assert scored.protocol == expected, (mode, protocol)


def _exact(response: str | None, item: ScoringItem) -> ItemScore:
    """A toy benchmark: the response must equal the answer, ignoring case and surrounding space."""
    correct = (response or "").strip().lower() == str(item.answer).lower()
    return ItemScore(
        "exact", correct, float(correct), bool((response or "").strip()), response, "exact_match"
    )


@pytest.fixture
def exact_scorer() -> Iterator[Scorer]:
    scorer = register_scorer(
        Scorer(
            "exact", _exact, subsets=("toybench",), prefixes=("toy-",), needs_answer=True, description="toy"
        )
    )
    try:
        yield scorer
    finally:
        unregister_scorer("exact")


def test_a_new_benchmark_is_one_scorer(exact_scorer: Scorer) -> None:
    assert scoring_mode("ToyBench") == "exact" and scoring_mode("toy-hard") == "exact"
    assert "exact" in scorer_names()
    assert score_response(" Paris ", "exact", answer="paris").correct
    record = {
        "id": "t1",
        "modality": "speech",
        "response": "Lyon",
        "reference": {"scoring_mode": "exact", "answer": "Paris", "subset": "toybench"},
    }
    fields = score_record(record)
    assert fields["correct"] is False and fields["rule"] == "exact_match"
    assert fields["scoring_detail"] == {"protocol": "speechgap"}


def test_registry_refuses_clashes(exact_scorer: Scorer) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_scorer(Scorer("exact", _exact))
    with pytest.raises(ConfigError, match="already claimed by scorer 'mcq'"):
        register_scorer(Scorer("other", _exact, subsets=("MMSU",)))
    with pytest.raises(ConfigError, match="lower-case"):
        Scorer("Exact", _exact)
    with pytest.raises(ConfigError, match="names no registered scorer"):
        unregister_scorer("nothing")


def test_unregistered_mode_after_removal(exact_scorer: Scorer) -> None:
    unregister_scorer("exact")
    try:
        with pytest.raises(ConfigError, match="no scoring mode"):
            scoring_mode("toybench")
    finally:
        register_scorer(exact_scorer)
