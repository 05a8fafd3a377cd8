"""IFEval through Google's instruction checkers (if-verifiable), offline."""

from __future__ import annotations

import pytest

from speechgap.errors import ConfigError, DataError
from speechgap.scoring.ifeval import check_ifeval, ifeval_scores, sentence_tokenizer_name

ITEMS = [
    # (response, instruction ids, kwargs, strict per instruction, loose per instruction)
    (
        "all lower case and no commas here",
        ["change_case:english_lowercase", "punctuation:no_comma"],
        [{}, {}],
        [True, True],
        [True, True],
    ),
    ("Hello, World", ["punctuation:no_comma"], [{}], [False], [False]),
    ("Sure!\n**hello world**", ["change_case:english_lowercase"], [{}], [False], [True]),
    (
        "One. Two. Three. Four.",
        ["length_constraints:number_sentences"],
        [{"num_sentences": 3, "relation": "at least"}],
        [True],
        [True],
    ),
    (
        "Just one sentence.",
        ["length_constraints:number_sentences"],
        [{"num_sentences": 3, "relation": "at least"}],
        [False],
        [False],
    ),
    (
        "THIS HAS MANY CAPITAL WORDS IN IT",
        ["change_case:capital_word_frequency"],
        [{"capital_frequency": 3, "capital_relation": "at least"}],
        [True],
        [True],
    ),
    ('{"answer": 4}', ["detectable_format:json_format"], [{}], [True], [True]),
    (
        "word " * 60,
        ["length_constraints:number_words"],
        [{"num_words": 50, "relation": "at least", "keywords": None}],
        [True],
        [True],
    ),
    ("", ["punctuation:no_comma"], [{}], [False], [False]),
]


def test_checkers_per_instruction() -> None:
    responses = [item[0] for item in ITEMS]
    results, tokenizer = check_ifeval(
        responses,
        [item[1] for item in ITEMS],
        [item[2] for item in ITEMS],
        [f"p{i}" for i in range(len(ITEMS))],
    )
    assert tokenizer == sentence_tokenizer_name()
    for result, item in zip(results, ITEMS, strict=True):
        assert result.strict == item[3], item[0]
        assert result.loose == item[4], item[0]


def test_four_figures_and_mean() -> None:
    results, tokenizer = check_ifeval(
        [item[0] for item in ITEMS],
        [item[1] for item in ITEMS],
        [item[2] for item in ITEMS],
        [""] * len(ITEMS),
    )
    scores = ifeval_scores(results, tokenizer)
    strict = [flag for item in ITEMS for flag in item[3]]
    loose = [flag for item in ITEMS for flag in item[4]]
    assert scores.num_prompts == len(ITEMS)
    assert scores.num_instructions == len(strict)
    assert scores.instruction_strict == pytest.approx(sum(strict) / len(strict))
    assert scores.instruction_loose == pytest.approx(sum(loose) / len(loose))
    assert scores.prompt_strict == pytest.approx(sum(all(item[3]) for item in ITEMS) / len(ITEMS))
    assert scores.prompt_loose == pytest.approx(sum(all(item[4]) for item in ITEMS) / len(ITEMS))
    four = [scores.prompt_strict, scores.prompt_loose, scores.instruction_strict, scores.instruction_loose]
    assert scores.mean == pytest.approx(sum(four) / 4)
    assert scores.backend.startswith("if-verifiable==")
    assert scores.prompt_loose >= scores.prompt_strict


def test_patch_is_restored() -> None:
    from if_verifiable.ifeval import instructions_util

    before = (instructions_util._get_sentence_tokenizer, instructions_util.nltk)
    check_ifeval(
        ["One. Two."],
        [["length_constraints:number_sentences"]],
        [[{"num_sentences": 1, "relation": "at least"}]],
        [""],
    )
    assert (instructions_util._get_sentence_tokenizer, instructions_util.nltk) == before


def test_bad_input() -> None:
    with pytest.raises(DataError, match="unknown IFEval instruction"):
        check_ifeval(["x"], [["no_such:checker"]], [[{}]], [""])
    with pytest.raises(DataError, match="kwargs"):
        check_ifeval(["x"], [["punctuation:no_comma"]], [[{}, {}]], [""])
    with pytest.raises(DataError, match="no instructions"):
        check_ifeval(["x"], [[]], [[]], [""])
    with pytest.raises(ConfigError, match="must match"):
        check_ifeval(["x", "y"], [["punctuation:no_comma"]], [[{}]], [""])
    with pytest.raises(ConfigError):
        ifeval_scores([], "punkt_tab")


def test_turn_markers_removed_as_voicebench_does() -> None:
    from speechgap.scoring.ifeval import strip_turn_markers

    assert strip_turn_markers("<1> all lower <|user|>") == "all lower"
    assert strip_turn_markers("text <|user|> more") == "text <|user|> more"
    results, _ = check_ifeval(
        ["<2>It rains. Any other questions?<|user|>"],
        [["startend:end_checker"]],
        [[{"end_phrase": "Any other questions?"}]],
        [""],
    )
    assert results[0].strict == [True]  # with the marker left in, the response would not end with the phrase


def test_scorer_detail_and_protocol() -> None:
    from speechgap.scoring import score_response

    for protocol in ("speechgap", "voicebench"):
        item = score_response(
            "Hello, World",
            "ifeval",
            instruction_ids=["punctuation:no_comma", "change_case:english_lowercase"],
            instruction_kwargs=[{}, {}],
            prompt="p",
            protocol=protocol,
        )
        assert item.correct is False and item.detail["strict"] == [False, False]
        assert item.protocol == protocol == item.detail["protocol"]
