"""Scoring an evaluation's records and reporting the gap: ``speechgap score DIR``.

Re-scoring needs no model: each record of ``results.jsonl`` carries the response and the reference
fields. :func:`score_run` re-scores every record (rewriting ``results.jsonl`` atomically) and writes
``summary.json``: per subset and modality the accuracy and parse-failure rate, GAP = text − speech with a
paired bootstrap confidence interval, McNemar's test, the four cells, and with a base model the split of the
gap into fine-tuning erosion and alignment loss (paper 1). Judge verdicts are cached in ``judge.jsonl`` so a
re-score or a rerun after an unreachable judge never asks twice.

Every record is scored by the registered scorer of its ``reference.scoring_mode``
(:func:`speechgap.scoring.get_scorer`) under the run-level protocol (``speechgap``, ``speechmmlu`` or
``voicebench``), which applies to every mode; each record's ``scoring_detail.protocol`` and the summary's
``protocol`` block say which protocol's rules produced the numbers.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.errors import ConfigError, DataError
from speechgap.evaluation.result import EvalResult
from speechgap.evaluation.stats import gap_stats
from speechgap.io import (
    JsonlAppender,
    JsonObject,
    atomic_write_json,
    atomic_write_text,
    dumps_record,
    prepare_out_dir,
    read_json,
    read_jsonl,
)
from speechgap.provenance import provenance
from speechgap.scoring import (
    PROTOCOLS,
    Judge,
    JudgeError,
    ScoringItem,
    get_scorer,
    voicebench_mcq_accuracy,
)

RESULTS = "results.jsonl"
SUMMARY = "summary.json"
JUDGE_CACHE = "judge.jsonl"
LSLM, BASE = "lslm", "base"


def judge_applies(mode: str, judge: Judge | None) -> bool:
    """Whether ``judge`` scores records of ``mode`` (its protocol is the one the mode's scorer uses)."""
    return judge is not None and get_scorer(mode).judge_protocol == judge.config.protocol


def score_record(
    record: dict[str, Any], *, mcq_protocol: str = "speechgap", seed: int = 0, judge: Judge | None = None
) -> JsonObject:
    """The scoring fields of one record: ``extracted``, ``parsed``, ``correct``, ``score``, ``rule``,
    ``scoring_detail`` (with the ``protocol`` whose rules decided).

    Args:
        record: one line of ``results.jsonl``.
        mcq_protocol: the run-level protocol (``speechgap``, ``speechmmlu``, ``voicebench``); despite the
            name it applies to every mode.
        seed: seed of the compatibility protocol's random fallbacks.
        judge: an LLM judge; used for the modes whose scorer takes a judge of its protocol (``judge``
            with ``"score"``, ``sdqa`` with ``"yesno"``).

    Records of a mode that needs a judge, scored without one, stay unscored (``correct``/``score``/``parsed``
    None, ``rule`` ``"not_judged"``).
    """
    reference = record.get("reference") or {}
    mode = reference.get("scoring_mode")
    if mode is None:
        raise DataError("record has no scoring mode", field="reference.scoring_mode")
    scorer = get_scorer(mode)
    use_judge = judge_applies(mode, judge)
    if scorer.needs_judge and not use_judge:
        return {
            "extracted": None,
            "parsed": None,
            "correct": None,
            "score": None,
            "rule": "not_judged",
            "scoring_detail": None,
        }
    if record.get("answer_mode") == "loglik":
        letter = record["response"]
        answer = str(reference.get("answer") or "").strip().strip("()").upper()
        correct = letter == answer
        return {
            "extracted": letter,
            "parsed": True,
            "correct": correct,
            "score": float(correct),
            "rule": "loglik",
            "scoring_detail": {"protocol": "loglik"},
        }
    if mcq_protocol not in PROTOCOLS:
        raise ConfigError(
            f"argument 'mcq_protocol' must be one of {', '.join(PROTOCOLS)}, got {mcq_protocol!r}"
        )
    item = ScoringItem(
        answer=reference.get("answer"),
        choices=reference.get("choices"),
        sample_id=record["id"],
        prompt=reference.get("text"),
        instruction_ids=reference.get("instruction_id_list"),
        instruction_kwargs=reference.get("kwargs"),
        protocol=mcq_protocol,
        sdqa_matcher="judge" if use_judge and mode == "sdqa" else "containment",
        judge=judge if use_judge else None,
        seed=seed,
    )
    scored = scorer.score(record.get("response"), item)
    return {
        "extracted": scored.prediction,
        "parsed": scored.parsed,
        "correct": scored.correct,
        "score": scored.score,
        "rule": scored.rule,
        "scoring_detail": {**scored.detail, "protocol": scored.protocol},
    }


def _judge_key(record: dict[str, Any], judge: Judge, protocol: str) -> str:
    """The cache key of one judged record; the judge protocol and a compatibility protocol are part of it
    (a ``score`` judge under the honest protocol keeps the key of folders judged before they existed)."""
    digest = hashlib.sha256((record.get("response") or "").encode("utf-8")).hexdigest()[:16]
    key = (
        f"{record['id']}|{record['modality']}|{record.get('model_role', LSLM)}|{judge.config.model}|{digest}"
    )
    if judge.config.protocol != "score":
        key += f"|{judge.config.protocol}"
    if protocol == "voicebench":
        key += "|voicebench"
    return key


def score_run(
    out_dir: str | Path,
    *,
    mcq_protocol: str | None = None,
    seed: int | None = None,
    judge: Judge | None = None,
) -> EvalResult:
    """Re-score every record of ``out_dir/results.jsonl`` and write ``summary.json``.

    Args:
        out_dir: an evaluation folder.
        mcq_protocol: override the run's scoring protocol (``speechgap``, ``speechmmlu``, ``voicebench``),
            which applies to every mode; None keeps the run's.
        seed: override the seed of the VoiceBench fallback and of the bootstrap.
        judge: an LLM judge: protocol ``"score"`` for open-ended subsets, ``"yesno"`` for sd-qa; verdicts are
            cached in ``judge.jsonl``.

    Returns:
        :class:`~speechgap.evaluation.result.EvalResult` of the folder (its ``summary`` is what was written).
    """
    out_dir = Path(out_dir)
    results_path = out_dir / RESULTS
    if not results_path.exists():
        raise ConfigError(f"{out_dir}: no {RESULTS}; run `speechgap eval` first")
    run_record = _read_run_record(out_dir)
    settings = run_record.get("settings", {})
    protocol = mcq_protocol or settings.get("mcq_protocol", "speechgap")
    seed = settings.get("seed", 0) if seed is None else seed
    records = []
    for line, record in read_jsonl(results_path):
        _check_result_record(record, results_path, line)
        records.append(record)
    if not records:
        raise DataError(
            "holds no record to score; run `speechgap eval` into this folder first", path=results_path
        )
    prepare_out_dir(out_dir, argument="out_dir")  # scores and the summary are rewritten here

    cache: dict[str, dict[str, Any]] = {}
    if judge is not None and (out_dir / JUDGE_CACHE).exists():
        cache = {r["key"]: r for _, r in read_jsonl(out_dir / JUDGE_CACHE)}
    with JsonlAppender(out_dir / JUDGE_CACHE, key=lambda r: r["key"]) if judge else _null() as judge_sink:
        for record in records:
            mode = record.get("reference", {}).get("scoring_mode")
            if judge is not None and record.get("answer_mode") != "loglik" and judge_applies(mode, judge):
                key = _judge_key(record, judge, protocol)
                if key not in cache:
                    try:
                        fields = score_record(record, mcq_protocol=protocol, seed=seed, judge=judge)
                    except JudgeError as err:
                        # not cached: a rerun asks again for this sample only
                        raise JudgeError(
                            f"judging sample {record['id']!r} ({record['modality']}, "
                            f"{record.get('model_role', LSLM)}) failed: {err}. Verdicts so far are kept "
                            f"in {out_dir / JUDGE_CACHE}; rerun to continue"
                        ) from err
                    cache[key] = {"key": key, "fields": fields}
                    judge_sink.write(cache[key])
                record.update(cache[key]["fields"])
            else:
                record.update(score_record(record, mcq_protocol=protocol, seed=seed))
    if protocol == "voicebench":
        _rescore_voicebench_compat(records, seed)
        _rescore_ifeval_by_prompt(records, seed)
    atomic_write_text(results_path, "".join(dumps_record(r) + "\n" for r in records))
    summary = write_summary(out_dir, records=records, mcq_protocol=protocol, seed=seed, judge=judge)
    return EvalResult(out_dir, summary)


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _rescore_voicebench_compat(records: list[dict[str, Any]], seed: int) -> None:
    """VoiceBench's protocol: one seeded fallback generator per (model, modality, subset), in record order."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        reference = record.get("reference", {})
        if reference.get("scoring_mode") == "mcq" and record.get("answer_mode") != "loglik":
            groups[(record.get("model_role"), record["modality"], reference.get("subset"))].append(record)
    for group in groups.values():
        result = voicebench_mcq_accuracy(
            [r.get("response") or "" for r in group],
            [str(r["reference"].get("answer") or "").strip().upper() for r in group],
            seed=seed,
        )
        for record, parse in zip(group, result.parses, strict=True):
            answer = str(record["reference"].get("answer") or "").strip().upper()
            record.update(
                extracted=parse.letter,
                parsed=parse.parsed,
                correct=parse.letter == answer,
                score=float(parse.letter == answer),
                rule=f"voicebench_compat:{parse.rule}",
                scoring_detail={"protocol": "voicebench", "reference": answer, "fallback_seed": seed},
            )


def _rescore_ifeval_by_prompt(records: list[dict[str, Any]], seed: int) -> None:
    """VoiceBench's IFEval evaluator looks responses up by prompt text, so items that share a prompt are all
    checked against the last of their responses; reproduced per (model, modality, subset)."""
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        reference = record.get("reference", {})
        if reference.get("scoring_mode") == "ifeval":
            groups[(record.get("model_role"), record["modality"], reference.get("subset"))].append(record)
    for group in groups.values():
        last_response = {r["reference"].get("text"): r.get("response") for r in group}
        for record in group:
            response = last_response[record["reference"].get("text")]
            if response != record.get("response"):
                fields = score_record({**record, "response": response}, mcq_protocol="voicebench", seed=seed)
                fields["rule"] = "voicebench_compat:response_of_same_prompt"
                record.update(fields)


def _check_result_record(record: dict[str, Any], path: Path, line: int) -> None:
    """Refuse a results line that cannot be scored, naming the file, line and field."""
    for name in ("id", "modality", "reference"):
        if name not in record:
            raise DataError(
                f"record has no {name!r}: not a line written by `speechgap eval`",
                path=path,
                line=line,
                field=name,
            )
    reference = record["reference"]
    if not isinstance(reference, dict):
        raise DataError("'reference' must be an object", path=path, line=line, field="reference")
    if not isinstance(reference.get("scoring_mode"), str):
        raise DataError(
            "the reference has no scoring mode: not a line written by `speechgap eval`",
            path=path,
            line=line,
            field="reference.scoring_mode",
        )


def _read_run_record(out_dir: Path) -> dict[str, Any]:
    path = out_dir / "run.json"
    if not path.exists():
        return {}
    return read_json(path, what="run record")


def _subset_name(record: dict[str, Any]) -> str:
    return record.get("reference", {}).get("subset") or "all"


def write_summary(
    out_dir: str | Path,
    *,
    records: list[dict[str, Any]] | None = None,
    mcq_protocol: str = "speechgap",
    seed: int = 0,
    judge: Judge | None = None,
    n_resamples: int = 10_000,
) -> JsonObject:
    """Compute and write ``summary.json`` from the records (read from ``results.jsonl`` if not given)."""
    out_dir = Path(out_dir)
    if records is None:
        records = [record for _, record in read_jsonl(out_dir / RESULTS)]
    run_record = _read_run_record(out_dir)
    summary = summarize(records, seed=seed, n_resamples=n_resamples)
    summary["protocol"] = {
        "mcq_protocol": mcq_protocol,
        "protocol": mcq_protocol,
        "label": PROTOCOL_LABELS.get(mcq_protocol, mcq_protocol),
        "by_mode": _protocols_by_mode(records),
        "judge": judge.config.model if judge is not None else None,
        "judge_protocol": judge.config.protocol if judge is not None else None,
    }
    summary["provenance"] = provenance(
        model=run_record.get("model"),
        data=run_record.get("data"),
        settings={**run_record.get("settings", {}), "mcq_protocol": mcq_protocol, "seed": seed},
    )
    summary["provenance"]["base_model"] = run_record.get("base_model")
    atomic_write_json(out_dir / SUMMARY, summary)
    return summary


PROTOCOL_LABELS = {
    "speechgap": "honest (unparseable = wrong)",
    "speechmmlu": "SpeechMMLU's strict multiple-choice pattern (other modes honest; unparseable = wrong)",
    "voicebench": "VoiceBench-compatible (VoiceBench's evaluators where deterministic; seeded random fallback "
    "for unparseable mcq and bbh answers)",
}


def _record_protocol(record: dict[str, Any]) -> str | None:
    detail = record.get("scoring_detail")
    return detail.get("protocol") if isinstance(detail, dict) else None


def _protocols_by_mode(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per scoring mode, the protocols whose rules produced its records' scores (unscored records left out)."""
    found: dict[str, set[str]] = defaultdict(set)
    for record in records:
        protocol = _record_protocol(record)
        if protocol is not None:
            found[record["reference"]["scoring_mode"]].add(protocol)
    return {mode: sorted(protocols) for mode, protocols in sorted(found.items())}


def summarize(records: list[dict[str, Any]], *, seed: int = 0, n_resamples: int = 10_000) -> JsonObject:
    """The gap per subset and overall (``macro`` and ``pooled``) from scored records."""
    by_subset = _by_subset(records)

    subsets: dict[str, Any] = {}
    for subset, groups in sorted(by_subset.items()):
        subsets[subset] = _summarize_subset(subset, groups, seed=seed, n_resamples=n_resamples)
    overall: dict[str, Any] = {}
    for key in ("text_score", "speech_score", "base_text_score"):
        values = [s[key] for s in subsets.values() if s.get(key) is not None]
        overall[key] = float(np.mean(values)) if values else None
    if overall["text_score"] is not None and overall["speech_score"] is not None:
        overall["gap"] = overall["text_score"] - overall["speech_score"]
    overall["definition"] = MACRO_DEFINITION
    macro = {**overall, "n_subsets": len(subsets)}
    macro.update(_macro_interval(by_subset, seed=seed, n_resamples=n_resamples))
    return {
        "subsets": subsets,
        "overall": overall,
        "macro": macro,
        "pooled": _pooled(by_subset, seed=seed, n_resamples=n_resamples),
        "num_records": len(records),
    }


MACRO_DEFINITION = "plain mean over subsets of each subset's score (VoiceBench's Overall)"
POOLED_DEFINITION = (
    "share of all paired samples answered correctly, every subset's samples together (judge-scored subsets "
    "left out)"
)


def _by_subset(records: list[dict[str, Any]]) -> dict[str, dict[tuple[str, str], dict[str, dict[str, Any]]]]:
    """subset -> (model role, modality) -> sample id -> record."""
    by_subset: dict[str, dict[tuple[str, str], dict[str, dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for record in records:
        by_subset[_subset_name(record)][(record.get("model_role", LSLM), record["modality"])][
            record["id"]
        ] = record
    return by_subset


def pooled_figures(records: list[dict[str, Any]], *, seed: int = 0, n_resamples: int = 10_000) -> JsonObject:
    """The ``pooled`` block of ``summary.json`` from scored records (for folders scored before it existed)."""
    return _pooled(_by_subset(records), seed=seed, n_resamples=n_resamples)


def _paired_outcomes(
    groups: dict[tuple[str, str], dict[str, dict[str, Any]]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
    """Per paired sample of one subset: text and speech correctness, and the base LM's (None without one)."""
    text, speech = groups.get((LSLM, "text"), {}), groups.get((LSLM, "speech"), {})
    if not text or not speech:
        return None
    if next(iter(text.values()))["reference"]["scoring_mode"] == "judge":
        return None
    ids = sorted(set(text) & set(speech))
    if not ids:
        return None
    base = groups.get((BASE, "text"), {})
    base_ok = np.array([bool(base[i].get("correct")) for i in ids if i in base]) if base else None
    return (
        np.array([bool(text[i].get("correct")) for i in ids]),
        np.array([bool(speech[i].get("correct")) for i in ids]),
        base_ok,
    )


def _pooled(by_subset: dict, *, seed: int, n_resamples: int) -> dict[str, Any]:
    """Accuracy and GAP over all paired samples together, with the paired bootstrap and McNemar."""
    outcomes = [o for o in (_paired_outcomes(g) for _, g in sorted(by_subset.items())) if o is not None]
    empty = {"text_score": None, "speech_score": None, "base_text_score": None, "gap": None, "n": 0}
    if not outcomes:
        return {**empty, "definition": POOLED_DEFINITION}
    text = np.concatenate([o[0] for o in outcomes])
    speech = np.concatenate([o[1] for o in outcomes])
    bases = [o[2] for o in outcomes if o[2] is not None and o[2].size]
    stats = gap_stats(text, speech, subset="pooled", n_resamples=n_resamples, seed=seed)
    return {
        "text_score": stats.text_accuracy,
        "speech_score": stats.speech_accuracy,
        "base_text_score": float(np.concatenate(bases).mean()) if bases else None,
        "gap": stats.gap.gap,
        "gap_low": stats.gap.low,
        "gap_high": stats.gap.high,
        "mcnemar_p": stats.mcnemar.p_exact,
        "n": stats.n,
        "definition": POOLED_DEFINITION,
    }


def _macro_interval(by_subset: dict, *, seed: int, n_resamples: int) -> dict[str, Any]:
    """A stratified paired bootstrap of the macro GAP: each resample redraws every subset's samples within
    the subset and averages the subset GAPs. None when a subset is judge-scored (another scale)."""
    outcomes = [_paired_outcomes(g) for _, g in sorted(by_subset.items())]
    if not outcomes or any(o is None for o in outcomes):
        return {"gap_low": None, "gap_high": None}
    rng = np.random.default_rng(seed)
    total = np.zeros(n_resamples)
    for text, speech, _ in outcomes:  # type: ignore[misc]
        diff = text.astype(np.float64) - speech.astype(np.float64)
        index = rng.integers(0, len(diff), size=(n_resamples, len(diff)))
        total += diff[index].mean(axis=1)
    total /= len(outcomes)
    low, high = np.quantile(total, [0.025, 0.975])
    return {"gap_low": float(low), "gap_high": float(high)}


def _summarize_subset(
    subset: str, groups: dict[tuple[str, str], dict[str, dict[str, Any]]], *, seed: int, n_resamples: int
) -> dict[str, Any]:
    text = groups.get((LSLM, "text"), {})
    speech = groups.get((LSLM, "speech"), {})
    base = groups.get((BASE, "text"), {})
    any_record = next(iter((text or speech or base).values()))
    mode = any_record["reference"]["scoring_mode"]
    protocols = {_record_protocol(r) for g in (text, speech, base) for r in g.values()} - {None}
    out: dict[str, Any] = {"scoring_mode": mode, "scoring_protocols": sorted(protocols)}
    for name, group in (("text", text), ("speech", speech), ("base_text", base)):
        out[f"{name}_n"] = len(group)
        out[f"{name}_score"] = _group_score(group, mode)
        parsed = [r.get("parsed") for r in group.values() if r.get("parsed") is not None]
        out[f"{name}_parse_failure_rate"] = float(1 - np.mean(parsed)) if parsed else None
    if mode == "ifeval":
        for name, group in (("text", text), ("speech", speech)):
            out[f"{name}_ifeval"] = _ifeval_figures(group)
    paired_ids = sorted(set(text) & set(speech))
    if not paired_ids:
        return out
    out["paired_n"] = len(paired_ids)
    if mode == "judge":
        t = [text[i].get("score") for i in paired_ids]
        s = [speech[i].get("score") for i in paired_ids]
        keep = [k for k in range(len(paired_ids)) if t[k] is not None and s[k] is not None]
        if keep:
            diff = np.array([t[k] - s[k] for k in keep], dtype=np.float64)
            rng = np.random.default_rng(seed)
            boots = diff[rng.integers(0, len(diff), size=(n_resamples, len(diff)))].mean(axis=1)
            out["gap"] = {
                "gap": float(diff.mean()),
                "low": float(np.quantile(boots, 0.025)),
                "high": float(np.quantile(boots, 0.975)),
                "unit": "judge score (1-5)",
            }
        return out
    t_correct = [bool(text[i].get("correct")) for i in paired_ids]
    s_correct = [bool(speech[i].get("correct")) for i in paired_ids]
    base_acc = None
    if base:
        base_acc = float(np.mean([bool(base[i].get("correct")) for i in paired_ids if i in base]))
    stats = gap_stats(
        t_correct,
        s_correct,
        subset=subset,
        text_parsed=[bool(text[i].get("parsed")) for i in paired_ids],
        speech_parsed=[bool(speech[i].get("parsed")) for i in paired_ids],
        base_text_accuracy=base_acc,
        n_resamples=n_resamples,
        seed=seed,
    )
    out["paired"] = stats.to_dict()
    margins = {
        modality: [g[i]["logit_margin"] for i in paired_ids if "logit_margin" in g[i]]
        for modality, g in (("text", text), ("speech", speech))
    }
    for modality, values in margins.items():
        if values:
            out[f"{modality}_mean_logit_margin"] = float(np.mean(values))
    return out


def _group_score(group: dict[str, dict[str, Any]], mode: str) -> float | None:
    if not group:
        return None
    if mode == "judge":
        scores = [r.get("score") for r in group.values() if r.get("score") is not None]
        return float(np.mean(scores)) if scores else None
    if mode == "ifeval":
        figures = _ifeval_figures(group)
        return figures["mean"] if figures else None
    return float(np.mean([bool(r.get("correct")) for r in group.values()]))


def _ifeval_figures(group: dict[str, dict[str, Any]]) -> dict[str, float] | None:
    """IFEval's four figures and their mean (VoiceBench's ifeval score) from per-item checker results."""
    details = [r.get("scoring_detail") for r in group.values() if r.get("scoring_detail")]
    if not details:
        return None
    strict = [d["strict"] for d in details]
    loose = [d["loose"] for d in details]
    figures = {
        "prompt_strict": float(np.mean([all(x) for x in strict])),
        "prompt_loose": float(np.mean([all(x) for x in loose])),
        "instruction_strict": float(np.mean([v for x in strict for v in x])),
        "instruction_loose": float(np.mean([v for x in loose for v in x])),
    }
    figures["mean"] = float(np.mean(list(figures.values())))
    return figures


def format_table(summary: dict[str, Any]) -> str:
    """The printed table: one row per subset, scores in percent (judge scores on their 1–5 scale)."""
    header = (
        f"{'subset':<16}{'mode':<8}{'n':>6}{'text':>8}{'speech':>8}{'GAP':>8}  {'95% CI':<16}"
        f"{'McNemar p':>10}{'fail t/s %':>12}{'base':>8}"
    )
    lines = [header, "-" * len(header)]
    for subset, row in summary["subsets"].items():
        scale = 1.0 if row["scoring_mode"] == "judge" else 100.0
        gap = (row.get("paired") or {}).get("gap") or row.get("gap") or {}
        p = (row.get("paired") or {}).get("mcnemar", {}).get("p_exact")
        fail = [row.get("text_parse_failure_rate"), row.get("speech_parse_failure_rate")]
        lines.append(
            f"{subset:<16}{row['scoring_mode']:<8}{row.get('paired_n', max(row['text_n'], row['speech_n'])):>6}"
            f"{_fmt(row.get('text_score'), scale):>8}{_fmt(row.get('speech_score'), scale):>8}"
            f"{_fmt(gap.get('gap'), scale):>8}  "
            f"{('[' + _fmt(gap.get('low'), scale) + ', ' + _fmt(gap.get('high'), scale) + ']') if gap else '':<16}"
            f"{(f'{p:.3g}' if p is not None else '-'):>10}"
            f"{'/'.join(_fmt(f, 100.0) for f in fail):>12}{_fmt(row.get('base_text_score'), scale):>8}"
        )
    lines.append("-" * len(header))
    for name, row in overall_rows(summary):
        interval = (
            f"[{_fmt(row['gap_low'], 100)}, {_fmt(row['gap_high'], 100)}]"
            if row.get("gap_low") is not None
            else ""
        )
        p = row.get("mcnemar_p")
        lines.append(
            f"{name:<16}{'':<8}{row.get('n', row.get('n_subsets', '')):>6}{_fmt(row.get('text_score'), 100):>8}"
            f"{_fmt(row.get('speech_score'), 100):>8}{_fmt(row.get('gap'), 100):>8}  {interval:<16}"
            f"{(f'{p:.3g}' if p is not None else ''):>10}{'':>12}{_fmt(row.get('base_text_score'), 100):>8}"
        )
    lines.append(
        "macro: mean of the subset scores (VoiceBench's Overall; n = subsets); "
        "pooled: all paired samples together (n = samples)"
    )
    protocol = summary.get("protocol", {})
    lines.append(f"scoring: {protocol.get('label', '')}")
    return "\n".join(lines)


def overall_rows(summary: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The two named overall figures of a summary, ``macro`` and ``pooled``; a summary written before they
    existed has ``overall`` (= macro) only."""
    macro = summary.get("macro") or {**summary.get("overall", {}), "n_subsets": len(summary["subsets"])}
    rows = [("macro", macro)]
    if summary.get("pooled") is not None:
        rows.append(("pooled", summary["pooled"]))
    return rows


def _fmt(value: float | None, scale: float) -> str:
    return "-" if value is None else f"{value * scale:.1f}"
