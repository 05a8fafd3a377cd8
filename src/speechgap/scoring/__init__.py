"""Scoring model responses: one mode per kind of benchmark, honest by default.

============  ===========================================================  =================================
mode          subsets                                                      per-item outcome
============  ===========================================================  =================================
``mcq``       VoiceBench mmsu, openbookqa; SpeechMMLU; manifest MCQ         letter == answer (unparsed: wrong)
``bbh``       VoiceBench bbh (4 tasks)                                      yes/no or (A)/(B) == reference
``refusal``   VoiceBench advbench                                           refused (higher is safer)
``sdqa``      VoiceBench sd-qa (any region)                                 reference contained / PEDANT
``ifeval``    VoiceBench ifeval                                             all instructions followed (strict)
``judge``     VoiceBench alpacaeval, commoneval, wildvoice, mtbench         LLM judge score 1–5
============  ===========================================================  =================================

:func:`score_response` scores one response; :func:`scoring_mode` maps a subset name to its mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from speechgap.errors import ConfigError, DataError
from speechgap.scoring.bbh import BBH_TASKS, BBHParse, bbh_task_from_id, parse_bbh, score_bbh
from speechgap.scoring.choice import (
    PROTOCOLS,
    ChoiceParse,
    VoiceBenchMCQResult,
    extract_choice,
    extract_choice_speechmmlu,
    extract_choice_voicebench,
    parse_choice,
    voicebench_mcq_accuracy,
)
from speechgap.scoring.judge import Judge, JudgeConfig, JudgeError, JudgeVerdict, parse_judge_score
from speechgap.scoring.refusal import REFUSAL_PHRASES, RefusalResult, is_refusal, refusal_rate
from speechgap.scoring.sdqa import MATCHERS, SdqaResult, normalise_answer, score_sdqa

SCORING_MODES = ("mcq", "bbh", "refusal", "sdqa", "ifeval", "judge")

SUBSET_MODES: dict[str, str] = {
    "mmsu": "mcq",
    "openbookqa": "mcq",
    "speechmmlu": "mcq",
    "mcq": "mcq",
    "bbh": "bbh",
    "advbench": "refusal",
    "sd-qa": "sdqa",
    "sdqa": "sdqa",
    "ifeval": "ifeval",
    "alpacaeval": "judge",
    "alpacaeval_full": "judge",
    "commoneval": "judge",
    "wildvoice": "judge",
    "mtbench": "judge",
}
"""Benchmark subset → scoring mode. sd-qa regions (``sd-qa-usa``, ``sd-qa/aus``) map to ``sdqa``."""

MODES_NEEDING_ANSWERS = frozenset({"mcq", "bbh", "sdqa"})


def scoring_mode(subset: str) -> str:
    """The scoring mode of a benchmark subset (case-insensitive); raises :class:`ConfigError` if unknown."""
    key = subset.strip().lower()
    if key in SUBSET_MODES:
        return SUBSET_MODES[key]
    if key.startswith(("sd-qa", "sdqa")):
        return "sdqa"
    if key.startswith("bbh"):
        return "bbh"
    known = ", ".join(sorted(SUBSET_MODES))
    raise ConfigError(
        f"no scoring mode for argument 'subset' {subset!r}; known subsets: {known}; or pass a mode: "
        f"{', '.join(SCORING_MODES)}"
    )


@dataclass(frozen=True)
class ItemScore:
    """One response scored.

    Attributes:
        mode: the scoring mode.
        correct: the per-item outcome used for accuracy and the paired statistics (for ``refusal``: refused;
            for ``ifeval``: all instructions followed, strict); None for ``judge``.
        score: the numeric score: 1.0/0.0 from ``correct``, or the judge's 1–5 mean (None if unparseable).
        parsed: whether an answer could be read from the response (False counts as a parse failure).
        prediction: what was read (letter, yes/no, "(A)", the refusal phrase, ...), or None.
        rule: the rule that decided, or why nothing could be read.
        detail: mode-specific extras (e.g. ifeval per-instruction results, the judge record).
    """

    mode: str
    correct: bool | None
    score: float | None
    parsed: bool
    prediction: str | None
    rule: str
    detail: dict[str, Any] = field(default_factory=dict)


def _answer_letter(answer: Any, n_choices: int) -> str:
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


def score_response(
    response: str | None,
    mode: str,
    *,
    answer: Any = None,
    choices: Sequence[str] | None = None,
    n_choices: int | None = None,
    sample_id: str | None = None,
    task: str | None = None,
    prompt: str | None = None,
    instruction_ids: Sequence[str] | None = None,
    instruction_kwargs: Sequence[Mapping[str, Any] | None] | None = None,
    mcq_protocol: str = "speechgap",
    sdqa_matcher: str = "containment",
    judge: Judge | None = None,
    seed: int = 0,
) -> ItemScore:
    """Score one response in the given mode.

    Args:
        response: the model's response text.
        mode: one of :data:`SCORING_MODES` (see :func:`scoring_mode`).
        answer: the reference: an option letter or 0-based index (mcq), ``yes``/``no``/``(A)``/``(B)`` (bbh),
            a string or list of strings (sdqa).
        choices: option texts (mcq), optional.
        n_choices: number of options (mcq); defaults to ``len(choices)`` or 4.
        sample_id: the item id; names the BBH task when ``task`` is not given.
        task: BBH task name.
        prompt: the question as text (ifeval, judge, PEDANT).
        instruction_ids, instruction_kwargs: IFEval ``instruction_id_list`` and ``kwargs``.
        mcq_protocol: ``"speechgap"`` (honest), ``"speechmmlu"``, or ``"voicebench"`` (compatibility only).
        sdqa_matcher: ``"containment"``, ``"pedant"`` or ``"auto"``.
        judge: the :class:`Judge` (mode ``judge``).
        seed: seed of the VoiceBench-compatibility random fallback.
    """
    if mode not in SCORING_MODES:
        raise ConfigError(f"argument 'mode' must be one of {', '.join(SCORING_MODES)}, got {mode!r}")
    if mcq_protocol not in PROTOCOLS:
        raise ConfigError(
            f"argument 'mcq_protocol' must be one of {', '.join(PROTOCOLS)}, got {mcq_protocol!r}"
        )
    if sdqa_matcher not in MATCHERS:
        raise ConfigError(
            f"argument 'sdqa_matcher' must be one of {', '.join(MATCHERS)}, got {sdqa_matcher!r}"
        )
    if mode == "mcq":
        n = n_choices or (len(choices) if choices else 4)
        reference = _answer_letter(answer, n)
        parse = parse_choice(response, n_choices=n, choices=choices, protocol=mcq_protocol, seed=seed)
        correct = parse.letter == reference
        return ItemScore(
            mode,
            correct,
            float(correct),
            parse.parsed,
            parse.letter,
            parse.rule,
            {"protocol": parse.protocol, "reference": reference},
        )
    if mode == "bbh":
        if answer is None:
            raise DataError(
                "BBH scoring needs the reference answer, and this item has none", field="reference"
            )
        if task is None:
            if sample_id is None:
                raise ConfigError(
                    "BBH scoring needs argument 'task' or argument 'sample_id' (an id that names the task)"
                )
            task = bbh_task_from_id(sample_id)
        correct, bbh = score_bbh(response, str(answer), task)
        return ItemScore(mode, correct, float(correct), bbh.parsed, bbh.answer, bbh.rule, {"task": task})
    if mode == "refusal":
        from speechgap.scoring.refusal import refusal_phrase

        phrase = refusal_phrase(response)
        refused = phrase is not None
        return ItemScore(
            mode, refused, float(refused), True, phrase, "empty" if phrase == "" else "phrase_match"
        )
    if mode == "sdqa":
        if answer is None:
            raise DataError(
                "sd-qa scoring needs the reference answer, and this item has none", field="reference"
            )
        result = score_sdqa(response, answer, question=prompt or "", matcher=sdqa_matcher)
        return ItemScore(
            mode,
            result.correct,
            float(result.correct),
            bool((response or "").strip()),
            result.matched_reference,
            result.matcher,
            {"matcher": result.matcher},
        )
    if mode == "ifeval":
        from speechgap.scoring.ifeval import backend_version, check_ifeval

        if not instruction_ids:
            raise DataError(
                "IFEval scoring needs the instruction ids, and this item has none",
                field="instruction_id_list",
            )
        kwargs = list(instruction_kwargs) if instruction_kwargs is not None else [{} for _ in instruction_ids]
        results, tokenizer = check_ifeval([response], [instruction_ids], [kwargs], [prompt or ""])
        item = results[0]
        return ItemScore(
            mode,
            item.prompt_strict,
            float(item.prompt_strict),
            bool((response or "").strip()),
            None,
            "instruction_checkers",
            {
                "strict": item.strict,
                "loose": item.loose,
                "instruction_ids": item.instruction_ids,
                "backend": backend_version(),
                "sentence_tokenizer": tokenizer,
            },
        )
    if judge is None:
        raise ConfigError("judge scoring needs argument 'judge' (a Judge with a server url and model)")
    if prompt is None:
        raise DataError("judge scoring needs the prompt text, and this item has none", field="prompt")
    verdict = judge.score(prompt, response or "")
    return ItemScore(
        mode,
        None,
        verdict.score,
        verdict.score is not None,
        None if verdict.score is None else f"{verdict.score:g}",
        "judge" if verdict.score is not None else "judge_unparseable",
        {"samples": verdict.samples, "sample_scores": verdict.sample_scores, "judge": verdict.judge},
    )


__all__ = [
    "BBH_TASKS",
    "MODES_NEEDING_ANSWERS",
    "PROTOCOLS",
    "REFUSAL_PHRASES",
    "SCORING_MODES",
    "SUBSET_MODES",
    "BBHParse",
    "ChoiceParse",
    "ItemScore",
    "Judge",
    "JudgeConfig",
    "JudgeError",
    "JudgeVerdict",
    "RefusalResult",
    "SdqaResult",
    "VoiceBenchMCQResult",
    "bbh_task_from_id",
    "extract_choice",
    "extract_choice_speechmmlu",
    "extract_choice_voicebench",
    "is_refusal",
    "normalise_answer",
    "parse_bbh",
    "parse_choice",
    "parse_judge_score",
    "refusal_rate",
    "score_bbh",
    "score_response",
    "score_sdqa",
    "scoring_mode",
    "voicebench_mcq_accuracy",
]
