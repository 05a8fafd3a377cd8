"""Scoring model responses: one scorer per kind of benchmark, looked up by name, honest by default.

============  ===========================================================  =================================
mode          subsets                                                      per-item outcome
============  ===========================================================  =================================
``mcq``       VoiceBench mmsu, openbookqa; SpeechMMLU; manifest MCQ         letter == answer (unparsed: wrong)
``bbh``       VoiceBench bbh (4 tasks)                                      yes/no or (A)/(B) == reference
``refusal``   VoiceBench advbench                                           refused (higher is safer)
``sdqa``      VoiceBench sd-qa (any region)                                 reference contained / yes-no judge
``ifeval``    VoiceBench ifeval                                             all instructions followed (strict)
``judge``     VoiceBench alpacaeval, commoneval, wildvoice, mtbench         LLM judge score 1–5
============  ===========================================================  =================================

Each mode is one file (:mod:`~speechgap.scoring.mcq`, :mod:`~speechgap.scoring.bbh`,
:mod:`~speechgap.scoring.refusal`, :mod:`~speechgap.scoring.sdqa`, :mod:`~speechgap.scoring.ifeval`,
:mod:`~speechgap.scoring.open_ended`) holding ``score(response, item) -> ItemScore`` and registering it in
:mod:`~speechgap.scoring.registry`. :func:`score_response` scores one response; :func:`get_scorer` finds a
mode's scorer; :func:`scoring_mode` maps a subset name to its mode.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from speechgap.errors import ConfigError
from speechgap.scoring import bbh, ifeval, mcq, open_ended, refusal, sdqa  # noqa: F401 (registers the modes)
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
from speechgap.scoring.judge import (
    JUDGE_PROTOCOLS,
    Judge,
    JudgeConfig,
    JudgeError,
    JudgeVerdict,
    YesNoVerdict,
    parse_judge_score,
)
from speechgap.scoring.refusal import (
    REFUSAL_PHRASES,
    VOICEBENCH_REFUSAL_PHRASES,
    RefusalResult,
    is_refusal,
    refusal_rate,
)
from speechgap.scoring.registry import (
    ItemScore,
    Scorer,
    ScoringItem,
    get_scorer,
    modes_needing_answers,
    register_scorer,
    scorer_names,
    scoring_mode,
    unregister_scorer,
)
from speechgap.scoring.sdqa import MATCHERS, SdqaResult, normalise_answer, score_sdqa

SCORING_MODES: tuple[str, ...] = ("mcq", "bbh", "refusal", "sdqa", "ifeval", "judge")
"""The built-in modes; :func:`scorer_names` lists every registered one, plug-ins included."""

MODES_NEEDING_ANSWERS: frozenset[str] = modes_needing_answers()
"""The built-in modes whose items must carry a reference (:func:`modes_needing_answers` for plug-ins)."""


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
    protocol: str = "speechgap",
    sdqa_matcher: str = "containment",
    judge: Judge | None = None,
    seed: int = 0,
    mcq_protocol: str | None = None,
) -> ItemScore:
    """Score one response with the registered scorer of ``mode``.

    Args:
        response: the model's response text.
        mode: a registered mode (:func:`scorer_names`; see :func:`scoring_mode`).
        answer, choices, n_choices, sample_id, task, prompt, instruction_ids, instruction_kwargs,
            sdqa_matcher, judge, seed: the :class:`ScoringItem` fields.
        protocol: ``"speechgap"`` (honest), ``"speechmmlu"`` or ``"voicebench"`` (compatibility only);
            applies to every mode.
        mcq_protocol: the former name of ``protocol``; when given it wins.
    """
    scorer = get_scorer(mode)
    chosen = mcq_protocol if mcq_protocol is not None else protocol
    if chosen not in PROTOCOLS:
        name = "mcq_protocol" if mcq_protocol is not None else "protocol"
        raise ConfigError(f"argument {name!r} must be one of {', '.join(PROTOCOLS)}, got {chosen!r}")
    if sdqa_matcher != "containment":
        sdqa.check_matcher(sdqa_matcher)
    item = ScoringItem(
        answer=answer,
        choices=choices,
        n_choices=n_choices,
        sample_id=sample_id,
        task=task,
        prompt=prompt,
        instruction_ids=instruction_ids,
        instruction_kwargs=instruction_kwargs,
        protocol=chosen,
        sdqa_matcher=sdqa_matcher,
        judge=judge,
        seed=seed,
    )
    return scorer.score(response, item)


__all__ = [
    "BBH_TASKS",
    "JUDGE_PROTOCOLS",
    "MATCHERS",
    "MODES_NEEDING_ANSWERS",
    "PROTOCOLS",
    "REFUSAL_PHRASES",
    "SCORING_MODES",
    "VOICEBENCH_REFUSAL_PHRASES",
    "BBHParse",
    "ChoiceParse",
    "ItemScore",
    "Judge",
    "JudgeConfig",
    "JudgeError",
    "JudgeVerdict",
    "RefusalResult",
    "Scorer",
    "ScoringItem",
    "SdqaResult",
    "VoiceBenchMCQResult",
    "YesNoVerdict",
    "bbh_task_from_id",
    "extract_choice",
    "extract_choice_speechmmlu",
    "extract_choice_voicebench",
    "get_scorer",
    "is_refusal",
    "modes_needing_answers",
    "normalise_answer",
    "parse_bbh",
    "parse_choice",
    "parse_judge_score",
    "refusal_rate",
    "register_scorer",
    "score_bbh",
    "score_response",
    "score_sdqa",
    "scorer_names",
    "scoring_mode",
    "unregister_scorer",
    "voicebench_mcq_accuracy",
]
