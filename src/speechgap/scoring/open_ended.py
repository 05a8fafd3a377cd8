"""Mode ``judge``: open-ended answers (VoiceBench alpacaeval, commoneval, wildvoice, mtbench) on a 1–5 scale.

The :class:`~speechgap.scoring.judge.Judge` (protocol ``"score"``) rates the response to the prompt; the
item's score is the mean of the samples that could be read. Each reply is read by
:func:`~speechgap.scoring.judge.parse_judge_score` (the first standalone digit 1–5) or, under
``protocol="voicebench"``, by VoiceBench's rule (:func:`~speechgap.scoring.judge.parse_judge_score_voicebench`:
``float(reply)``, else ``[[n]]``). There is no boolean outcome: ``correct`` is None.
"""

from __future__ import annotations

from speechgap.errors import ConfigError, DataError
from speechgap.scoring.judge import parse_judge_score_voicebench
from speechgap.scoring.registry import ItemScore, Scorer, ScoringItem, register_scorer


def score(response: str | None, item: ScoringItem) -> ItemScore:
    """The judge's mean 1–5 score (None when no sample could be read)."""
    judge = item.judge
    if judge is None:
        raise ConfigError("judge scoring needs argument 'judge' (a Judge with a server url and model)")
    if item.prompt is None:
        raise DataError("judge scoring needs the prompt text, and this item has none", field="prompt")
    verdict = judge.score(item.prompt, response or "")
    protocol = "voicebench" if item.protocol == "voicebench" else "speechgap"
    sample_scores: list[float | None] = list(verdict.sample_scores)
    value = verdict.score
    if protocol == "voicebench":
        sample_scores = [parse_judge_score_voicebench(sample) for sample in verdict.samples]
        valid = [v for v in sample_scores if v is not None]
        value = sum(valid) / len(valid) if valid else None
    return ItemScore(
        "judge",
        None,
        value,
        value is not None,
        None if value is None else f"{value:g}",
        "judge" if value is not None else "judge_unparseable",
        {
            "samples": verdict.samples,
            "sample_scores": sample_scores,
            "judge": verdict.judge,
            "protocol": protocol,
        },
        protocol=protocol,
    )


SCORER = register_scorer(
    Scorer(
        "judge",
        score,
        subsets=("alpacaeval", "alpacaeval_full", "commoneval", "wildvoice", "mtbench"),
        judge_protocol="score",
        needs_judge=True,
        description="open-ended: LLM judge score 1-5 (no boolean outcome)",
    )
)
