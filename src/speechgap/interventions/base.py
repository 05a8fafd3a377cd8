"""What an intervention is, and a model wrapper that applies one per sample inside the eval runner.

An :class:`Intervention` edits the hidden states of the speech run of one sample through the adapter's hook
context manager (:meth:`speechgap.models.SpeechLLM.edit`): :meth:`Intervention.prepare` does the per-sample
oracle work (e.g. capturing the transcript's hidden states) and returns an :class:`EditPlan` (which layers,
which positions, which replacement functions); :meth:`Intervention.apply` wraps the plan in ``edit`` as a
``with`` block. Leaving the block removes every hook, also after an exception: the model is untouched.

Batches: :meth:`Intervention.prepare_batch` makes the plans of several samples at once (the representation
interventions capture the whole batch in one pass per modality), and :meth:`Intervention.apply_batch` keeps
each sample's own plan on its row of the batched forward passes
(:meth:`speechgap.models.SpeechLLM.edit_per_sample`), so a batch gives the answers of its samples run one at
a time.

:class:`InterventionModel` gives the evaluation runner (:func:`speechgap.evaluation.run.evaluate`) a model
whose speech answers are produced under the intervention, a whole batch per ``generate`` or option-scoring
call, and whose :meth:`~InterventionModel.describe` names the intervention and its settings, so a treated run's provenance
differs from the baseline's.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError
from speechgap.io import JsonlAppender
from speechgap.models.base import OptionScores, SampleEdit, SpeechLLM


@dataclass
class EditPlan(SampleEdit):
    """The edits of one sample's speech run (a :class:`~speechgap.models.base.SampleEdit` with its details).

    Attributes:
        layers: ``{layer: fn}`` for :meth:`SpeechLLM.edit` (layer 0 = input of block 1, ``l >= 1`` = output
            of block ``l``); ``fn(states (n, d), positions (n,)) -> (n, d) | None``.
        positions: ``"span"``, ``"all"``, or positions in the unpadded prompt (ascending); ``fn`` receives
            the states in this order.
        decode: also call ``fn`` at each decode step of ``generate`` (default: prefill only).
        details: what the plan chose, JSON-ready (critical frames, text tokens, path scores ...), logged
            per sample next to the treated run.
    """

    details: dict[str, Any] = field(default_factory=dict)


class Intervention(abc.ABC):
    """A training-free edit of the speech run's hidden states (oracle interventions may read the text run).

    Subclasses set :attr:`name`, implement :meth:`settings` (every setting that changes the result) and
    :meth:`prepare` (per-sample work; returns the :class:`EditPlan`). A subclass whose per-sample work is
    a forward pass may override :meth:`prepare_batch` to do it for a whole batch at once; its plans must
    equal :meth:`prepare`'s (up to the batching's float rounding).
    """

    name: ClassVar[str] = ""
    modality: ClassVar[str] = "speech"
    """The run the intervention edits; the other modality's runs are left alone."""

    @abc.abstractmethod
    def settings(self) -> dict[str, Any]:
        """Every setting of the intervention, JSON-ready (recorded in the treated run's provenance)."""

    @abc.abstractmethod
    def prepare(self, adapter: SpeechLLM, sample: PairedSample) -> EditPlan:
        """Per-sample work done before the edited run (e.g. the transcript capture); returns the plan."""

    def prepare_batch(self, adapter: SpeechLLM, samples: Sequence[PairedSample]) -> list[EditPlan]:
        """The plans of ``samples``, in order: one per sample, equal to :meth:`prepare`'s.

        The default calls :meth:`prepare` for each sample.
        """
        return [self.prepare(adapter, sample) for sample in samples]

    def validate(self, adapter: SpeechLLM) -> None:
        """Raise :class:`~speechgap.errors.ConfigError` when the settings do not fit ``adapter`` (checked
        before any run starts). The default accepts every model."""
        return None

    def describe(self) -> dict[str, Any]:
        """``{"method": name, **settings}``."""
        return {"method": self.name, **self.settings()}

    @contextlib.contextmanager
    def apply(self, adapter: SpeechLLM, sample: PairedSample) -> Iterator[EditPlan]:
        """Prepare the plan of ``sample`` and keep its hooks on the model inside the ``with`` block.

        Example:
            >>> with AngleProjection().apply(model, sample):
            ...     answer = model.generate(sample, "speech", max_new_tokens=32)
        """
        plan = self.prepare(adapter, sample)
        with adapter.edit(plan.layers, positions=plan.positions, decode=plan.decode):
            yield plan

    @contextlib.contextmanager
    def apply_batch(self, adapter: SpeechLLM, samples: Sequence[PairedSample]) -> Iterator[list[EditPlan]]:
        """Prepare the plans of ``samples`` and keep each on its own sample's rows inside the ``with`` block.

        The adapter's batched calls inside (``generate_batch``, ``score_options_batch``, ``capture_batch``)
        edit every row with its sample's plan (:meth:`~speechgap.models.SpeechLLM.edit_per_sample`, keyed by
        sample id), so they give what :meth:`apply` gives each sample alone. The hooks are removed on exit,
        also after an exception.

        Example:
            >>> with AngleProjection().apply_batch(model, samples) as plans:
            ...     answers = model.generate_batch(samples, "speech", max_new_tokens=32)

        Raises:
            ConfigError: ``samples`` is empty or repeats an id (plans are keyed by id), or
                :meth:`prepare_batch` did not return one :class:`EditPlan` per sample.
        """
        samples = list(samples)
        if not samples:
            raise ConfigError("argument 'samples' is empty: no sample to prepare a plan for")
        ids = [sample.id for sample in samples]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ConfigError(
                f"argument 'samples' holds sample id(s) {repeated} more than once; each sample's plan is "
                "keyed by its id, so the ids of one batch must differ"
            )
        plans = list(self.prepare_batch(adapter, samples))
        if len(plans) != len(samples) or not all(isinstance(plan, EditPlan) for plan in plans):
            raise ConfigError(
                f"{type(self).__name__}.prepare_batch must return one EditPlan per sample, got "
                f"{len(plans)} value(s) for {len(samples)} sample(s)"
            )
        with adapter.edit_per_sample(dict(zip(ids, plans, strict=True))):
            yield plans


class InterventionModel:
    """The adapter with an intervention applied to every speech run: what :func:`evaluate` needs.

    Runs of the other modality (text) pass through unchanged. Generation and option scoring run the whole
    batch in one call, each row under its own sample's plan (:meth:`Intervention.apply_batch`): the answers
    equal those of one sample at a time.

    Args:
        adapter: the speech LLM.
        intervention: the intervention to apply.
        plan_log: optional JSONL file; one line per sample with the plan's ``details`` (resumable: a sample
            already logged is not logged again).
    """

    def __init__(
        self, adapter: SpeechLLM, intervention: Intervention, plan_log: str | Path | None = None
    ) -> None:
        self.adapter = adapter
        self.intervention = intervention
        self.plan_log = None if plan_log is None else Path(plan_log)

    def _log(self, samples: Sequence[PairedSample], plans: Sequence[EditPlan]) -> None:
        """Append each sample's plan to the plan log, once per sample id (a resumed run skips logged ids)."""
        if self.plan_log is None:
            return
        with JsonlAppender(self.plan_log, key=lambda record: record["id"]) as sink:
            for sample, plan in zip(samples, plans, strict=True):
                if not sink.done(sample.id):
                    sink.write({"id": sample.id, "method": self.intervention.name, **plan.details})

    def generate_batch(
        self, samples: Sequence[PairedSample], modality: str, max_new_tokens: int = 256
    ) -> list[str]:
        """Greedy answers; speech runs under the intervention, the whole batch in one call (each row with
        its own sample's plan; the answers equal one sample at a time). The plans are logged once the
        answers exist."""
        if modality != self.intervention.modality or not samples:
            return self.adapter.generate_batch(samples, modality, max_new_tokens=max_new_tokens)
        with self.intervention.apply_batch(self.adapter, samples) as plans:
            answers = self.adapter.generate_batch(samples, modality, max_new_tokens=max_new_tokens)
        self._log(samples, plans)
        return answers

    def score_options(
        self, sample: PairedSample, modality: str, options: Sequence[str] = ("A", "B", "C", "D")
    ) -> OptionScores:
        """Option log-probabilities of one sample; speech runs under the intervention."""
        return self.score_options_batch([sample], modality, [options])[0]

    def score_options_batch(
        self, samples: Sequence[PairedSample], modality: str, options: Sequence[Sequence[str]]
    ) -> list[OptionScores]:
        """Option log-probabilities of several samples (``options``: one list per sample); speech runs under
        the intervention, each row with its own sample's plan, in the adapter's batched option scoring (one
        forward pass; the scores equal one sample at a time within float rounding). The plans are logged
        once the scores exist."""
        samples = list(samples)
        if len(options) != len(samples):
            raise ConfigError(
                f"argument 'options': {len(options)} option lists for {len(samples)} samples; expected one each"
            )
        if modality != self.intervention.modality or not samples:
            return self.adapter.score_options_batch(samples, modality, options)
        with self.intervention.apply_batch(self.adapter, samples) as plans:
            scores = self.adapter.score_options_batch(samples, modality, options)
        self._log(samples, plans)
        return scores

    def render_prompt(self, modality: str, text: str = "") -> str:
        return self.adapter.render_prompt(modality, text)

    def generation_settings(self, max_new_tokens: int = 256) -> dict[str, Any]:
        return self.adapter.generation_settings(max_new_tokens)

    def describe(self) -> dict[str, Any]:
        """The adapter's description plus ``intervention``: the method and its settings."""
        return {**self.adapter.describe(), "intervention": self.intervention.describe()}
