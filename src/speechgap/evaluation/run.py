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
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from speechgap.data.types import PairedDataset, PairedSample, sample_hash
from speechgap.errors import ConfigError, DataError
from speechgap.evaluation.result import EvalResult
from speechgap.io import (
    JsonlAppender,
    JsonObject,
    ResumeWarning,
    RunLock,
    atomic_write_json,
    dumps_record,
    prepare_out_dir,
    read_json,
)
from speechgap.provenance import provenance
from speechgap.scoring import PROTOCOLS, scorer_names, scoring_mode

RESULTS = "results.jsonl"
RUN_RECORD = "run.json"
ANSWER_MODES = ("generate", "loglik")
MCQ_PROTOCOLS = PROTOCOLS
MAX_OPTIONS = 26
"""loglik scores the option letters A-Z."""
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


DEFAULT_BATCH_SIZE = 32
"""Samples per forward pass of an evaluation unless asked otherwise (``--batch-size``)."""

_RUN_FREE_SETTINGS = ("batch_size",)
"""Settings that do not change a record (a resumed run may use other values)."""


@dataclass
class EvalSettings:
    """Every setting of an evaluation run; all of it is recorded in ``run.json``.

    Attributes:
        modalities: which runs to do, of ``("speech", "text")``.
        answer_mode: ``"generate"`` or ``"loglik"`` (multiple choice only).
        max_new_tokens: generation budget per answer (``generate``).
        batch_size: samples per forward pass (left-padded; the answers equal one-at-a-time answers, so it is not
            part of a run's identity: a folder resumes under another batch size). Default 32.
        scoring_mode: force one scoring mode for every sample; None decides per sample from its subset
            (VoiceBench / SpeechMMLU names), falling back to ``mcq`` when it has choices.
        mcq_protocol: the scoring protocol of every mode (multiple choice, BBH, refusal, IFEval, the
            judge): ``"speechgap"`` (honest: unparseable = wrong), ``"speechmmlu"`` (its strict
            multiple-choice pattern) or ``"voicebench"`` (the leaderboard's evaluators, with the seeded random
            fallback of its multiple-choice scorer; labelled as such everywhere; docs/scoring.md).
        seed: seed of the VoiceBench random fallback and of the bootstrap.
        limit: evaluate the first N samples only.
        protocol: the prompt protocol (``voicebench``, ``official``, ``instructed``); it is the model's
            (:attr:`SpeechLLM.protocol`): None takes the model's, a name must equal it. Recorded either way.
    """

    modalities: tuple[str, ...] = ("speech", "text")
    answer_mode: str = "generate"
    max_new_tokens: int = 256
    batch_size: int = DEFAULT_BATCH_SIZE
    scoring_mode: str | None = None
    mcq_protocol: str = "speechgap"
    seed: int = 0
    limit: int | None = None
    protocol: str | None = None

    def __post_init__(self) -> None:
        """Check every setting, so that a bad one fails before a model is loaded or run."""
        if isinstance(self.modalities, str):
            self.modalities = tuple(part.strip() for part in self.modalities.split(",") if part.strip())
        self.modalities = tuple(self.modalities)
        bad = [m for m in self.modalities if m not in ("speech", "text")]
        if bad or not self.modalities:
            raise ConfigError(f"argument 'modalities' takes speech, text or both, got {bad or 'nothing'}")
        repeated = sorted({m for m in self.modalities if self.modalities.count(m) > 1})
        if repeated:
            raise ConfigError(f"argument 'modalities' names {repeated[0]!r} twice; give each run once")
        if self.answer_mode not in ANSWER_MODES:
            raise ConfigError(
                f"argument 'answer_mode' must be one of {ANSWER_MODES}, got {self.answer_mode!r}"
            )
        _check_int("max_new_tokens", self.max_new_tokens, minimum=1)
        _check_int("batch_size", self.batch_size, minimum=1)
        _check_int("seed", self.seed, minimum=0)
        if self.limit is not None:
            _check_int("limit", self.limit, minimum=1)
        if self.scoring_mode is not None and self.scoring_mode not in scorer_names():
            raise ConfigError(
                f"argument 'scoring_mode' must be one of {scorer_names()}, got {self.scoring_mode!r}"
            )
        if self.mcq_protocol not in MCQ_PROTOCOLS:
            raise ConfigError(
                f"argument 'mcq_protocol' must be one of {MCQ_PROTOCOLS}, got {self.mcq_protocol!r}"
            )
        if self.protocol is not None:
            from speechgap.models.base import check_protocol

            check_protocol(self.protocol)


def settings_for_model(settings: EvalSettings, model_description: dict[str, Any]) -> EvalSettings:
    """``settings`` with the model's prompt protocol, checked against what the run asks of the prompt.

    Raises:
        ConfigError: ``settings.protocol`` is not the model's; answer mode ``loglik`` under a prompt without
            an instruction (the option letter is read as the first token of the answer, so the prompt must
            ask for it; the audio or the question alone does not).
    """
    protocol = model_description.get("protocol")
    if settings.protocol is not None and protocol is not None and settings.protocol != protocol:
        raise ConfigError(
            f"argument 'protocol' is {settings.protocol!r}, but the model renders its prompts with protocol "
            f"{protocol!r}; load the model with protocol={settings.protocol!r}"
        )
    if settings.answer_mode == "loglik" and "instruction" in model_description:
        if model_description["instruction"] is None:
            raise ConfigError(
                f"argument 'answer_mode' loglik reads the option letter as the first token of the answer, "
                f"so the prompt must ask for it, but protocol {protocol!r} sends the audio or the question "
                "alone; use argument 'protocol' instructed, or give argument 'instruction' (such as 'Answer "
                "with the letter of the correct option.')"
            )
    if protocol is None:
        return settings
    return replace(settings, protocol=protocol)


def _check_int(name: str, value: Any, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"argument {name!r} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"argument {name!r} must be >= {minimum}, got {value}")


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
        f"give argument 'scoring_mode' ({', '.join(scorer_names())})"
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


def _start_fresh(out_dir: Path) -> str:
    return f"give a new argument 'out_dir', or delete {out_dir} to start this run afresh"


def _check_run_record(out_dir: Path, record: dict[str, Any]) -> None:
    """A resumed run must be the same run: same model, data and settings, or results would mix."""
    path = out_dir / RUN_RECORD
    if not path.exists():
        if (out_dir / RESULTS).exists():
            raise DataError(
                f"{RESULTS} is here but {RUN_RECORD} is missing, so nothing tells which run wrote it; "
                + _start_fresh(out_dir),
                path=path,
            )
        atomic_write_json(path, record)
        return
    earlier = _read_run_record(path)
    record = json.loads(dumps_record(record))  # tuples become lists, as on disk
    for key in ("model", "base_model", "data", "settings"):
        before, now = earlier.get(key), record.get(key)
        if key == "settings" and isinstance(before, dict) and isinstance(now, dict):
            before = {k: v for k, v in before.items() if k not in _RUN_FREE_SETTINGS}
            now = {k: v for k, v in now.items() if k not in _RUN_FREE_SETTINGS}
        if before != now:
            raise ConfigError(
                f"{out_dir} holds a run with a different {key} ({path}); resume only the same command, "
                f"or give a new argument 'out_dir'"
            )


def _read_run_record(path: Path) -> JsonObject:
    try:
        return read_json(path, what="run record")
    except DataError as err:
        raise DataError(
            f"{err} (the record of the run in this folder is damaged); " + _start_fresh(path.parent)
        ) from None


def _note_in_run_record(out_dir: Path, notes: list[str]) -> None:
    """Keep the warnings of a resumed run in ``run.json`` (``warnings``), next to what they are about."""
    path = out_dir / RUN_RECORD
    record = _read_run_record(path)
    record["warnings"] = [*record.get("warnings", []), *notes]
    atomic_write_json(path, record)


def _check_fingerprints(
    results: Path, data: PairedDataset, sink: JsonlAppender
) -> tuple[dict[str, str], int]:
    """The done records must come from this data: every id in it, every stored ``sample_hash`` equal to
    the sample's hash now (re-hashing the done samples: decodes their audio once).

    Returns:
        ``{id: hash}`` of the done samples that were checked, and the number of done samples whose
        records hold no hash (written before fingerprints existed; they cannot be checked).

    Raises:
        ConfigError: a done sample that the data no longer has, or whose content changed.
    """
    stored: dict[str, set[str]] = {}
    for key in sink.done_keys:
        hashes = stored.setdefault(key[0], set())
        if sink.remembered(key) is not None:
            hashes.add(sink.remembered(key))
    position = {sample_id: i for i, sample_id in enumerate(data.ids)}
    gone = sorted(sample_id for sample_id in stored if sample_id not in position)
    if gone:
        raise ConfigError(
            f"{results} holds {len(gone)} sample(s) that this data does not have (such as {gone[0]!r}): the "
            f"folder was made from other data; " + _start_fresh(results.parent)
        )
    checked: dict[str, str] = {}
    unchecked = 0
    for sample_id, hashes in sorted(stored.items(), key=lambda item: position[item[0]]):
        if not hashes:
            unchecked += 1
            continue
        now = sample_hash(data[position[sample_id]])
        if hashes != {now}:
            raise ConfigError(
                f"sample {sample_id!r} changed since {results} was written (content hash "
                f"{sorted(hashes)[0]}, now {now}): its text, answer, choices, audio or other fields differ, "
                f"so its records would mix two datasets; " + _start_fresh(results.parent)
            )
        checked[sample_id] = now
    return checked, unchecked


def _option_letters(sample: PairedSample) -> list[str]:
    n = len(sample.choices) if sample.choices else 4
    if n > MAX_OPTIONS:
        raise DataError(
            f"sample {sample.id!r} has {n} options; answer mode loglik scores the letters A-Z, so at most "
            f"{MAX_OPTIONS}",
            field="choices",
        )
    return [chr(ord("A") + k) for k in range(n)]


def _answer_loglik(model: AnswersQuestions, batch: list[PairedSample], modality: str) -> list[dict[str, Any]]:
    """Option log-probabilities of a batch: one forward pass when the model scores batches
    (``score_options_batch``, equal to one at a time), else one sample per call."""
    letters = [_option_letters(sample) for sample in batch]
    score_batch = getattr(model, "score_options_batch", None)
    if score_batch is not None and len(batch) > 1:
        scores = score_batch(batch, modality, letters)
    else:
        scores = [
            model.score_options(sample, modality, opts) for sample, opts in zip(batch, letters, strict=True)
        ]
    return [
        _loglik_answer(sample, opts, result)
        for sample, opts, result in zip(batch, letters, scores, strict=True)
    ]


def _loglik_answer(sample: PairedSample, letters: list[str], scores: Any) -> dict[str, Any]:
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
        out_dir: results folder; an existing one is resumed if it holds the same run (same model, data
            record and settings, and every finished sample unchanged: each record keeps the sample's
            content hash, ``sample_hash``); a different prompt protocol, system prompt or instruction is a
            different model record and settings, so it is refused. One run at a time: a second run into
            the folder is refused.
        settings: :class:`EvalSettings`.
        base_model: the base text LLM the speech LLM was built from, run on the text modality, for the
            split of the gap into fine-tuning erosion and alignment loss (paper 1).
        progress: show a progress bar with rate and time left.

    Returns:
        :class:`~speechgap.evaluation.result.EvalResult` of the folder, with the counts of this call.

    Raises:
        ConfigError: a bad setting (also answer mode ``loglik`` under a protocol without an instruction,
            see :func:`settings_for_model`); ``out_dir`` is a file, not writable, in use by another run, or holds
            another run or records of other data (the message names the sample that changed).
        DataError: a damaged ``run.json`` or ``results.jsonl``; a sample with more than 26 options in
            ``loglik`` mode.

    A resume that drops duplicate records (left by two runs at once, before runs took the folder's lock)
    or finds records without a sample hash warns (:class:`~speechgap.io.ResumeWarning`) and notes it in
    ``run.json`` under ``warnings``.
    """
    from tqdm.auto import tqdm

    from speechgap.evaluation.report import score_record, score_run

    settings = EvalSettings() if settings is None else settings
    if not isinstance(settings, EvalSettings):
        raise ConfigError(f"argument 'settings' must be an EvalSettings, got {type(settings).__name__}")
    model_description = model.describe()
    settings = settings_for_model(settings, model_description)
    data = data.limit(settings.limit)
    if len(data) == 0:
        raise ConfigError("argument 'data' holds no samples")
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="eval"):
        run_record = provenance(
            model=model_description,
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
        notes: list[str] = []
        results = out_dir / RESULTS
        with JsonlAppender(results, key=_record_key, remember=lambda r: r.get("sample_hash")) as sink:
            if sink.duplicates:
                notes.append(
                    f"{results}: dropped {sink.duplicates} duplicate record(s) (two runs wrote into this "
                    "folder at once); the first record of each sample and modality is kept"
                )
            hashes, unchecked = _check_fingerprints(results, data, sink)
            if unchecked:
                notes.append(
                    f"{results}: {unchecked} finished sample(s) were written before sample fingerprints "
                    "existed; they cannot be checked against this data"
                )
            for note in notes:
                warnings.warn(note, ResumeWarning, stacklevel=2)
            if notes:
                _note_in_run_record(out_dir, notes)
            pending = {
                (role, modality): [
                    i for i, sid in enumerate(data.ids) if not sink.done((sid, modality, role))
                ]
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
                            if sample.id not in hashes:
                                hashes[sample.id] = sample_hash(sample)
                        answers = _answer_batch(runner, batch, modality, modes, settings)
                        for sample, answer in zip(batch, answers, strict=True):
                            record = {
                                "id": sample.id,
                                "modality": modality,
                                "model_role": role,
                                "sample_hash": hashes[sample.id],
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
        return _answer_loglik(runner, batch, modality)
    responses = runner.generate_batch(batch, modality, max_new_tokens=settings.max_new_tokens)
    return [{"response": response} for response in responses]
