"""``speechgap eval``: run a model on both modalities of a paired dataset, one durable record at a time.

Inference and scoring are separate steps. :func:`evaluate` runs the model and appends one record per
(sample, modality) to ``DIR/results.jsonl`` as it goes (scored on the spot with the run's settings);
:func:`speechgap.evaluation.report.score_run` re-scores those records later without the model. Killing a
run at any moment and starting the same command again completes it with every record present exactly once.

Two ways to answer:

* ``generate``: greedy decoding, then the scorer reads the answer from the text (all benchmark kinds).
* ``loglik``: multiple choice only: the option letters' next-token log-probabilities after the prompt; the
  best letter is the answer (never a parse failure) and the record keeps the logit margin, correct option
  minus best other option (paper 3).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError
from speechgap.evaluation.result import EvalResult
from speechgap.io import JsonlAppender, JsonObject, atomic_write_json, dumps_record
from speechgap.provenance import provenance
from speechgap.scoring import SCORING_MODES, scoring_mode

RESULTS = "results.jsonl"
RUN_RECORD = "run.json"
ANSWER_MODES = ("generate", "loglik")
MCQ_PROTOCOLS = ("speechgap", "speechmmlu", "voicebench")
LSLM = "lslm"
BASE = "base"


class AnswersQuestions(Protocol):
    """What the runner needs from a model: the speech LLM adapter and the base text LM both provide it."""

    def generate_batch(
        self, samples: Sequence[PairedSample], modality: str, max_new_tokens: int
    ) -> list[str]: ...
    def score_options(self, sample: PairedSample, modality: str, options: Sequence[str]) -> Any: ...
    def render_prompt(self, modality: str, text: str = "") -> str: ...
    def generation_settings(self, max_new_tokens: int = 256) -> dict[str, Any]: ...
    def describe(self) -> dict[str, Any]: ...


@dataclass
class EvalSettings:
    """Every setting of an evaluation run; all of it is recorded in ``run.json``.

    Attributes:
        modalities: which runs to do, of ``("speech", "text")``.
        answer_mode: ``"generate"`` or ``"loglik"`` (multiple choice only).
        max_new_tokens: generation budget per answer (``generate``).
        batch_size: samples per forward pass.
        scoring_mode: force one scoring mode for every sample; None decides per sample from its subset
            (VoiceBench / SpeechMMLU names), falling back to ``mcq`` when it has choices.
        mcq_protocol: ``"speechgap"`` (honest: unparseable = wrong), ``"speechmmlu"`` (its strict
            pattern) or ``"voicebench"`` (the leaderboard's protocol with its seeded random fallback;
            labelled as such everywhere).
        seed: seed of the VoiceBench random fallback and of the bootstrap.
        limit: evaluate the first N samples only.
    """

    modalities: tuple[str, ...] = ("speech", "text")
    answer_mode: str = "generate"
    max_new_tokens: int = 256
    batch_size: int = 1
    scoring_mode: str | None = None
    mcq_protocol: str = "speechgap"
    seed: int = 0
    limit: int | None = None

    def __post_init__(self) -> None:
        self.modalities = tuple(self.modalities)
        bad = [m for m in self.modalities if m not in ("speech", "text")]
        if bad or not self.modalities:
            raise ConfigError(f"argument 'modalities' takes speech, text or both, got {bad or 'nothing'}")
        if self.answer_mode not in ANSWER_MODES:
            raise ConfigError(
                f"argument 'answer_mode' must be one of {ANSWER_MODES}, got {self.answer_mode!r}"
            )
        if self.max_new_tokens < 1:
            raise ConfigError(f"argument 'max_new_tokens' must be >= 1, got {self.max_new_tokens}")
        if self.batch_size < 1:
            raise ConfigError(f"argument 'batch_size' must be >= 1, got {self.batch_size}")
        if self.scoring_mode is not None and self.scoring_mode not in SCORING_MODES:
            raise ConfigError(
                f"argument 'scoring_mode' must be one of {SCORING_MODES}, got {self.scoring_mode!r}"
            )
        if self.mcq_protocol not in MCQ_PROTOCOLS:
            raise ConfigError(
                f"argument 'mcq_protocol' must be one of {MCQ_PROTOCOLS}, got {self.mcq_protocol!r}"
            )
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"argument 'limit' must be >= 1, got {self.limit}")


def sample_scoring_mode(sample: PairedSample, forced: str | None = None) -> str:
    """The scoring mode of one sample: forced, else from its subset, else ``mcq`` if it has choices."""
    if forced is not None:
        return forced
    if sample.subset:
        try:
            return scoring_mode(sample.subset)
        except ConfigError:
            pass
    if sample.choices:
        return "mcq"
    raise ConfigError(
        f"sample {sample.id!r} (subset {sample.subset!r}) has no known scoring mode and no choices; "
        f"give argument 'scoring_mode' ({', '.join(SCORING_MODES)})"
    )


def reference_fields(sample: PairedSample, mode: str) -> JsonObject:
    """What a record keeps so that it can be re-scored without the dataset."""
    meta = sample.meta or {}
    return {
        "subset": sample.subset,
        "scoring_mode": mode,
        "answer": sample.answer,
        "choices": sample.choices,
        "text": sample.text,
        "instruction_id_list": meta.get("instruction_id_list"),
        "kwargs": meta.get("kwargs"),
        "speaker": sample.speaker,
    }


def _record_key(record: dict[str, Any]) -> tuple[str, str, str]:
    return (record["id"], record["modality"], record.get("model_role", LSLM))


def _check_run_record(out_dir: Path, record: dict[str, Any]) -> None:
    """A resumed run must be the same run: same model, data and settings, or results would mix."""
    path = out_dir / RUN_RECORD
    if not path.exists():
        atomic_write_json(path, record)
        return
    earlier = json.loads(path.read_text(encoding="utf-8"))
    record = json.loads(dumps_record(record))  # tuples become lists, as on disk
    for key in ("model", "base_model", "data", "settings"):
        if earlier.get(key) != record.get(key):
            raise ConfigError(
                f"{out_dir} holds a run with a different {key} ({path}); resume only the same command, "
                f"or give a new argument 'out_dir'"
            )


def _option_letters(sample: PairedSample) -> list[str]:
    n = len(sample.choices) if sample.choices else 4
    return [chr(ord("A") + k) for k in range(n)]


def _answer_loglik(model: AnswersQuestions, sample: PairedSample, modality: str) -> dict[str, Any]:
    letters = _option_letters(sample)
    scores = model.score_options(sample, modality, letters)
    log_probs = np.asarray(scores.log_probs, dtype=np.float64)
    out: dict[str, Any] = {
        "response": scores.best,
        "option_log_probs": dict(zip(letters, log_probs.round(6).tolist(), strict=True)),
    }
    answer = (sample.answer or "").strip().strip("()").upper()
    if answer in letters:
        k = letters.index(answer)
        others = np.delete(log_probs, k)
        out["logit_margin"] = float(log_probs[k] - others.max()) if len(others) else 0.0
    return out


def evaluate(
    model: AnswersQuestions,
    data: PairedDataset,
    out_dir: str | Path,
    settings: EvalSettings | None = None,
    *,
    base_model: AnswersQuestions | None = None,
    progress: bool = True,
) -> EvalResult:
    """Run ``model`` on every sample and modality (and ``base_model`` on text), appending records.

    Args:
        model: the speech LLM adapter (:func:`speechgap.load_model`).
        data: the paired dataset (:func:`speechgap.load_pairs`).
        out_dir: results folder; an existing one is resumed if it holds the same run.
        settings: :class:`EvalSettings`.
        base_model: the base text LLM the speech LLM was built from, run on the text modality, for the
            split of the gap into fine-tuning erosion and alignment loss (paper 1).
        progress: show a progress bar with rate and time left.

    Returns:
        :class:`~speechgap.evaluation.result.EvalResult` of the folder, with the counts of this call.
    """
    from tqdm.auto import tqdm

    from speechgap.evaluation.report import score_record, score_run

    settings = settings or EvalSettings()
    data = data.limit(settings.limit)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    run_record = provenance(
        model=model.describe(),
        data=data.describe(),
        settings={**asdict(settings), "generation": model.generation_settings(settings.max_new_tokens)},
    )
    run_record["base_model"] = base_model.describe() if base_model is not None else None
    _check_run_record(out_dir, run_record)

    modes: dict[str, str] = {}  # decided per sample when it is loaded (audio decoding is lazy)
    jobs: list[tuple[str, AnswersQuestions, str]] = [(LSLM, model, m) for m in settings.modalities]
    if base_model is not None:
        jobs.append((BASE, base_model, "text"))

    written = skipped = 0
    with JsonlAppender(out_dir / RESULTS, key=_record_key) as sink:
        pending = {
            (role, modality): [i for i, sid in enumerate(data.ids) if not sink.done((sid, modality, role))]
            for role, _, modality in jobs
        }
        skipped = len(data) * len(jobs) - sum(len(v) for v in pending.values())
        total = sum(len(v) for v in pending.values())
        bar = tqdm(total=total, desc="eval", unit="answer", disable=not progress, file=sys.stderr)
        try:
            for role, runner, modality in jobs:
                samples = (data[i] for i in pending[(role, modality)])
                for batch in _batches_lazy(samples, settings.batch_size):
                    for sample in batch:
                        modes[sample.id] = sample_scoring_mode(sample, settings.scoring_mode)
                    answers = _answer_batch(runner, batch, modality, modes, settings)
                    for sample, answer in zip(batch, answers, strict=True):
                        record = {
                            "id": sample.id,
                            "modality": modality,
                            "model_role": role,
                            "prompt": runner.render_prompt(modality, sample.text),
                            **answer,
                            "reference": reference_fields(sample, modes[sample.id]),
                            "answer_mode": settings.answer_mode,
                            "generation": runner.generation_settings(settings.max_new_tokens),
                        }
                        record.update(
                            score_record(record, mcq_protocol=settings.mcq_protocol, seed=settings.seed)
                        )
                        sink.write(record)
                        written += 1
                        bar.update(1)
        finally:
            bar.close()
    # one scoring pass over all records, so that resumed runs and the compat protocol score consistently
    result = score_run(out_dir)
    result.written, result.skipped = written, skipped
    return result


def _batches_lazy(samples: Iterator[PairedSample], size: int) -> Iterator[list[PairedSample]]:
    batch: list[PairedSample] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _answer_batch(
    runner: AnswersQuestions,
    batch: list[PairedSample],
    modality: str,
    modes: dict[str, str],
    settings: EvalSettings,
) -> list[dict[str, Any]]:
    if settings.answer_mode == "loglik":
        for sample in batch:
            if modes[sample.id] != "mcq":
                raise ConfigError(
                    f"argument 'answer_mode' loglik is for multiple choice only; sample {sample.id!r} is scored as "
                    f"{modes[sample.id]!r}"
                )
        return [_answer_loglik(runner, sample, modality) for sample in batch]
    responses = runner.generate_batch(batch, modality, max_new_tokens=settings.max_new_tokens)
    return [{"response": response} for response in responses]
