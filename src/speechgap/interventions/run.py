"""``speechgap intervene``: accuracy with and without an intervention on the same samples.

:func:`run_intervention` evaluates the baseline (no intervention) into ``OUT/baseline/`` and the treated
model into ``OUT/<method>/`` with the ordinary eval runner (both resumable: rerun the same command after a
crash), compares them with :func:`speechgap.evaluation.compare.compare_runs` and writes
``OUT/comparison.json`` with provenance. The redundancy test instead evaluates the text modality once per
repeat count into ``OUT/redundancy/r{r}/`` and compares every ``r`` with ``r = 1``.

Methods are looked up by name in :data:`METHODS` (name -> factory). Other packages add theirs with
:func:`register_method` (e.g. the compression package's ``oracle-*`` methods); a factory receives a
:class:`MethodContext` and returns an :class:`~speechgap.interventions.base.Intervention`.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError
from speechgap.evaluation.compare import RunComparison, compare_runs, format_comparison
from speechgap.evaluation.methods import MethodContext, get_method, method_names, register_method
from speechgap.evaluation.run import EvalSettings, evaluate
from speechgap.interventions.base import Intervention, InterventionModel
from speechgap.interventions.calibration import (
    CALIBRATION_POSITIONS,
    DEFAULT_EPS,
    CalibrationStats,
    StatisticalCalibration,
    check_disjoint,
    check_eps,
    check_fraction,
    check_layer_name,
    estimate_calibration_stats,
    resolve_layer,
    split_for_calibration,
)
from speechgap.interventions.redundancy import DEFAULT_REPEATS, parse_repeats, repeat_words_dataset
from speechgap.interventions.representation import AngleProjection, LengthNormalization
from speechgap.io import RunLock, atomic_write_json, prepare_out_dir, read_json, read_jsonl
from speechgap.models.base import SpeechLLM
from speechgap.provenance import provenance

COMPARISON = "comparison.json"
REDUNDANCY = "redundancy"
PLANS = "plans.jsonl"


@dataclass
class InterventionSettings:
    """Every setting of ``speechgap intervene`` besides the evaluation's own (:class:`EvalSettings`).

    Every setting is checked on construction, before any model is loaded (layers against the model's depth
    once it is known).

    Attributes:
        critical: angle/length: ``"bottom-k"`` or ``"all"`` path frames.
        k: angle/length: frames kept by bottom-k (paper 1: 3), >= 1.
        path: angle/length: ``"argmax"`` (paper 1) or ``"dtw"`` (paper 3).
        path_layer: angle/length: layer of the alignment path (default 0, the decoder input).
        apply_layer: angle/length: layer whose speech states are replaced (default 0).
        calibration_layer: calibration: ``"input"`` (0), ``"output"`` (L) or an index.
        calibration_positions: calibration: ``"span"`` (speech positions) or ``"all"``.
        calibration_fraction: calibration: share of the data drawn as the calibration split when no
            separate calibration data or statistics file is given, in (0, 1).
        split_seed: seed of that split.
        calibration_stats: calibration: a statistics file to reuse (its sample ids must not be evaluated).
        eps: calibration: added to the speech standard deviation, a finite number >= 0.
        repeats: redundancy: repeat counts, integers >= 1 (1 is always included: the baseline).
        baseline_text: also evaluate the text modality in the baseline (to report the gap closed).
    """

    critical: str = "bottom-k"
    k: int = 3
    path: str = "argmax"
    path_layer: int = 0
    apply_layer: int = 0
    calibration_layer: int | str = "input"
    calibration_positions: str = "span"
    calibration_fraction: float | None = None
    split_seed: int = 0
    calibration_stats: str | None = None
    eps: float = DEFAULT_EPS
    repeats: tuple[int, ...] = DEFAULT_REPEATS
    baseline_text: bool = True

    def __post_init__(self) -> None:
        # the interventions' own constructors hold the rules; building one checks the settings
        AngleProjection(**{name: getattr(self, name) for name in REPRESENTATION_SETTINGS})
        self.repeats = parse_repeats(self.repeats)
        if self.calibration_positions not in CALIBRATION_POSITIONS:
            raise ConfigError(
                f"argument 'calibration_positions' must be one of {', '.join(CALIBRATION_POSITIONS)}, "
                f"got {self.calibration_positions!r}"
            )
        check_layer_name(self.calibration_layer, argument="calibration_layer")
        if self.calibration_fraction is not None:
            check_fraction(self.calibration_fraction, argument="calibration_fraction")
        if isinstance(self.split_seed, bool) or not isinstance(self.split_seed, numbers.Integral):
            raise ConfigError(f"argument 'split_seed' must be an integer, got {self.split_seed!r}")
        check_eps(self.eps)
        if self.calibration_stats is not None and not Path(self.calibration_stats).is_file():
            raise ConfigError(
                f"argument 'calibration_stats': no such file {str(self.calibration_stats)!r} (a statistics "
                "file saved by an earlier calibration run, calibration/stats-layer*.safetensors)"
            )
        if not isinstance(self.baseline_text, bool):
            raise ConfigError(f"argument 'baseline_text' must be True or False, got {self.baseline_text!r}")


REPRESENTATION_SETTINGS = ("critical", "k", "path", "path_layer", "apply_layer")
CALIBRATION_SETTINGS = (
    "calibration_layer",
    "calibration_positions",
    "calibration_fraction",
    "split_seed",
    "calibration_stats",
    "eps",
)


def _setting(context: MethodContext, name: str) -> Any:
    default = InterventionSettings.__dataclass_fields__[name].default
    return context.options.get(name, default)


def _representation(name: str, cls: type[Intervention], context: MethodContext) -> InterventionModel:
    intervention = cls(**{key: _setting(context, key) for key in REPRESENTATION_SETTINGS})
    return InterventionModel(context.adapter, intervention, plan_log=context.out_dir / name / PLANS)


@register_method(
    "angle",
    kind="intervention",
    settings=REPRESENTATION_SETTINGS,
    description="angle projection: critical speech tokens take the aligned text token's direction (paper 1)",
)
def _angle(context: MethodContext) -> InterventionModel:
    return _representation("angle", AngleProjection, context)


@register_method(
    "length",
    kind="intervention",
    settings=REPRESENTATION_SETTINGS,
    description="length normalization: critical speech tokens take the aligned text token's norm (paper 1)",
)
def _length(context: MethodContext) -> InterventionModel:
    return _representation("length", LengthNormalization, context)


@register_method(
    "calibration",
    kind="intervention",
    settings=CALIBRATION_SETTINGS,
    description="statistical calibration: speech states take the text states' mean and std (paper 3)",
)
def _calibration(context: MethodContext) -> InterventionModel:
    stats_file = _setting(context, "calibration_stats")
    requested = _setting(context, "calibration_layer")
    layer = resolve_layer(requested, context.adapter.num_layers, argument="calibration_layer")
    if stats_file is not None:
        stats = CalibrationStats.load(stats_file)
        if stats.layer != layer:
            raise ConfigError(
                f"{stats_file} holds statistics of layer {stats.layer}, not of the requested "
                f"argument 'calibration_layer' {requested} (= {layer})"
            )
    else:
        if context.calibration is None:
            raise ConfigError(NEEDS_CALIBRATION)
        path = context.out_dir / "calibration" / f"stats-layer{layer}.safetensors"
        stats = _reuse_stats(path, layer, context)
        if stats is None:
            stats = estimate_calibration_stats(
                context.adapter, context.calibration, layer, progress=context.progress
            )
            stats.save(path)
    if context.evaluation is not None:
        check_disjoint(stats.sample_ids, context.evaluation.ids)
    intervention = StatisticalCalibration(
        stats, positions=_setting(context, "calibration_positions"), eps=_setting(context, "eps")
    )
    return InterventionModel(context.adapter, intervention, plan_log=context.out_dir / "calibration" / PLANS)


NEEDS_CALIBRATION = (
    "calibration needs a calibration split: argument 'calibration' (a dataset), argument "
    "'calibration_fraction' or argument 'calibration_stats'"
)


def _reuse_stats(path: Path, layer: int, context: MethodContext) -> CalibrationStats | None:
    """Statistics an earlier run of the same command saved (same layer, samples and model), else None."""
    if not path.exists():
        return None
    stats = CalibrationStats.load(path)
    same = (
        stats.layer == layer
        and stats.sample_ids == list(context.calibration.ids)
        and stats.model.get("name_or_path") == context.adapter.describe().get("name_or_path")
    )
    return stats if same else None


def available_methods() -> list[str]:
    """Every method ``speechgap intervene`` runs through :func:`run_intervention` (the intervention kind and
    the redundancy test); compression methods run through ``speechgap.intervene`` / ``speechgap.compress``."""
    return [*method_names("intervention"), REDUNDANCY]


@dataclass
class InterventionResult:
    """What :func:`run_intervention` (and ``speechgap.intervene``) compared and where it wrote it.

    Attributes:
        method: the method name.
        out_dir: the run folder.
        comparisons: ``(label, comparison)`` pairs: one for an edit or merge method, one per ``r > 1`` for
            the redundancy test.
        runs: ``(label, baseline folder, treated folder)`` of each comparison, for :meth:`to_frame`.
        record: the content of ``comparison.json`` (``compression.json`` for a compression method).
        compression: the :class:`~speechgap.compression.experiment.CompressionResult` when the method
            merges speech tokens (retention, FLOPs, timing); None otherwise.
    """

    method: str
    out_dir: Path
    comparisons: list[tuple[str, RunComparison]] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)
    runs: list[tuple[str, Path, Path]] = field(default_factory=list)
    compression: Any = None

    @property
    def comparison(self) -> RunComparison:
        """The first (for an edit or merge method, the only) comparison."""
        if not self.comparisons:
            raise ConfigError(f"{self.out_dir}: nothing was compared (only r = 1 was run)")
        return self.comparisons[0][1]

    @property
    def baseline_accuracy(self) -> float:
        return self.comparison.baseline_accuracy

    @property
    def treated_accuracy(self) -> float:
        return self.comparison.treated_accuracy

    @property
    def delta(self) -> float:
        """Treated − baseline accuracy (fraction)."""
        return self.comparison.delta

    @property
    def delta_ci(self) -> tuple[float, float]:
        """95 % paired bootstrap interval of :attr:`delta`."""
        return (self.comparison.delta_low, self.comparison.delta_high)

    @property
    def mcnemar_p(self) -> float:
        return self.comparison.mcnemar.p_exact

    @property
    def text_accuracy(self) -> float | None:
        """The unedited model's text accuracy on the same samples (when the baseline ran text)."""
        return self.record.get("text_accuracy")

    @property
    def gap_closed(self) -> float | None:
        """Share of the baseline gap the method closed (None without a positive gap)."""
        return self.record.get("gap_closed")

    def to_json(self) -> dict[str, Any]:
        """The content of ``comparison.json`` (``compression.json`` for a compression method)."""
        return self.record

    def to_frame(self) -> Any:
        """One row per compared sample and comparison: the answer and its correctness without and with."""
        import pandas as pd

        rows = []
        for label, baseline_dir, treated_dir in self.runs:
            comparison = dict(self.comparisons)[label]
            before = _records(baseline_dir, comparison.modality)
            after = _records(treated_dir, comparison.modality)
            for sample_id, record in before.items():
                if sample_id not in after:
                    continue
                rows.append(
                    {
                        "comparison": label,
                        "id": sample_id,
                        "modality": comparison.modality,
                        "baseline_extracted": record.get("extracted"),
                        "treated_extracted": after[sample_id].get("extracted"),
                        "baseline_correct": bool(record.get("correct")),
                        "treated_correct": bool(after[sample_id].get("correct")),
                        "baseline_response": record.get("response"),
                        "treated_response": after[sample_id].get("response"),
                    }
                )
        return pd.DataFrame(rows)

    @classmethod
    def load(cls, out_dir: str | Path) -> InterventionResult:
        """Reopen a finished ``speechgap intervene`` folder (no model needed)."""
        out_dir = Path(out_dir)
        path = out_dir / COMPARISON
        if not path.is_file():
            if (out_dir / "compression.json").is_file():
                from speechgap.compression.experiment import CompressionResult

                return CompressionResult.load(out_dir).as_intervention()
            raise ConfigError(f"{out_dir}: no {COMPARISON}; run `speechgap intervene` there first")
        record = read_json(path)
        if record.get("method") == REDUNDANCY:
            comparisons, runs = [], []
            for row in record.get("comparisons", []):
                label = f"r={row['repeats']}"
                comparisons.append((label, RunComparison.from_dict(row)))
                runs.append((label, out_dir / record["baseline_dir"], out_dir / row["dir"]))
            return cls(REDUNDANCY, out_dir, comparisons, record, runs)
        method = record["method"]
        return cls(
            method,
            out_dir,
            [(method, RunComparison.from_dict(record["comparison"]))],
            record,
            [(method, out_dir / record["baseline_dir"], out_dir / record["treated_dir"])],
        )

    def format(self) -> str:
        """The printed table (accuracy without/with, delta with CI, four cells, McNemar, changed answers)."""
        lines = []
        for label, comparison in self.comparisons:
            lines.append(f"[{label}]")
            lines.append(format_comparison(comparison, label=label))
        if self.compression is not None:
            lines.append(self.compression.format())
        for note in self.record.get("notes", []):
            lines.append(f"note: {note}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"InterventionResult({self.method!r}, {str(self.out_dir)!r})\n{self.format()}"

    def _repr_html_(self) -> str:
        from speechgap.report.html import result_table

        rows = [
            [label, c.n, f"{100 * c.baseline_accuracy:.1f}", f"{100 * c.treated_accuracy:.1f}",
             f"{100 * c.delta:+.1f}", f"[{100 * c.delta_low:+.1f}, {100 * c.delta_high:+.1f}]",
             f"{c.mcnemar.p_exact:.3g}", len(c.changed)]
            for label, c in self.comparisons
        ]  # fmt: skip
        return result_table(
            f"InterventionResult: {self.method} ({self.out_dir})",
            ["comparison", "n", "before %", "after %", "Δ points", "95% CI", "McNemar p", "changed"],
            rows,
        )


InterventionReport = InterventionResult
"""The former name of :class:`InterventionResult`."""


def _records(run_dir: Path, modality: str) -> dict[str, dict[str, Any]]:
    return {
        r["id"]: r
        for _, r in read_jsonl(Path(run_dir) / "results.jsonl")
        if r["modality"] == modality and r.get("model_role", "lslm") == "lslm"
    }


def run_intervention(
    adapter: SpeechLLM,
    data: PairedDataset,
    method: str,
    out_dir: str | Path,
    settings: InterventionSettings | None = None,
    eval_settings: EvalSettings | None = None,
    *,
    calibration: PairedDataset | None = None,
    progress: bool = True,
) -> InterventionResult:
    """Evaluate without and with ``method`` on the same samples, compare, write ``comparison.json``.

    Args:
        adapter: the speech LLM.
        data: the paired samples (the evaluation split; with ``settings.calibration_fraction``, the data a
            calibration split is drawn from first).
        method: a name in :func:`available_methods` (an intervention-kind method of the registry, or
            ``"redundancy"``).
        out_dir: output folder; rerun the same command to resume. Held for the whole run
            (:class:`speechgap.io.RunLock`: a second run into it is refused).
        settings: :class:`InterventionSettings`.
        eval_settings: how answers are produced and scored (modalities are set here); its ``limit`` caps
            the evaluation samples after any calibration split.
        calibration: a separate calibration split (calibration only); must share no id with ``data``.
        progress: progress bars.

    Raises:
        ConfigError: an unknown method, an ``out_dir`` that is a file, cannot be created or written, or is in
            use by another run; settings the model cannot take (a layer beyond its depth).
    """
    settings = settings or InterventionSettings()
    eval_settings = eval_settings or EvalSettings()
    if method != REDUNDANCY:
        get_method(method, kind="intervention")
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="intervene"):
        if method == REDUNDANCY:
            return _run_redundancy(adapter, data, out_dir, settings, eval_settings, progress)
        return _run_method(adapter, data, method, out_dir, settings, eval_settings, calibration, progress)


def _run_method(
    adapter: SpeechLLM,
    data: PairedDataset,
    method: str,
    out_dir: Path,
    settings: InterventionSettings,
    eval_settings: EvalSettings,
    calibration: PairedDataset | None,
    progress: bool,
) -> InterventionResult:
    """:func:`run_intervention` of a registered method, once ``out_dir`` is held."""
    registered = get_method(method, kind="intervention")

    evaluation, baseline_name = data, "baseline"
    if method == "calibration" and calibration is None and settings.calibration_stats is None:
        if settings.calibration_fraction is None:
            raise ConfigError(NEEDS_CALIBRATION)
        calibration, evaluation = split_for_calibration(
            data, settings.calibration_fraction, settings.split_seed
        )
        baseline_name = f"baseline-split{settings.calibration_fraction:g}-seed{settings.split_seed}"
    evaluation = evaluation.limit(eval_settings.limit)
    if calibration is not None:
        check_disjoint(calibration.ids, evaluation.ids)
    options = {name: getattr(settings, name) for name in registered.settings if hasattr(settings, name)}
    context = MethodContext(adapter, options, out_dir, evaluation, calibration, progress)
    treated = registered.build(context)
    if isinstance(treated, Intervention):  # a factory may return the bare intervention
        treated = InterventionModel(adapter, treated, plan_log=out_dir / method / PLANS)
    intervention = getattr(treated, "intervention", None)
    if intervention is not None:
        intervention.validate(adapter)
    modality = getattr(intervention, "modality", "speech")

    edited = (modality,)
    baseline_modalities = ("speech", "text") if settings.baseline_text else edited
    base_settings = dataclasses.replace(eval_settings, modalities=baseline_modalities, limit=None)
    treated_settings = dataclasses.replace(eval_settings, modalities=edited, limit=None)
    baseline_dir, treated_dir = out_dir / baseline_name, out_dir / method
    evaluate(adapter, evaluation, baseline_dir, base_settings, progress=progress)
    evaluate(treated, evaluation, treated_dir, treated_settings, progress=progress)

    comparison = compare_runs(baseline_dir, treated_dir, modality=modality, seed=eval_settings.seed)
    record: dict[str, Any] = {
        "method": method,
        "intervention": intervention.describe() if intervention is not None else treated.describe(),
        "baseline_dir": baseline_name,
        "treated_dir": method,
        "comparison": comparison.to_dict(),
        "notes": _notes(method, intervention, adapter),
    }
    if settings.baseline_text:
        record["text_accuracy"] = _accuracy(baseline_dir, "text", _ids(treated_dir, modality))
        record["gap_closed"] = _gap_closed(record["text_accuracy"], comparison)
    record["provenance"] = provenance(
        model=adapter.describe(),
        data=evaluation.describe(),
        settings={
            "method": method,
            "intervention": dataclasses.asdict(settings),
            "evaluation": dataclasses.asdict(eval_settings),
            "calibration_data": calibration.describe() if calibration is not None else None,
        },
    )
    atomic_write_json(out_dir / COMPARISON, record)
    return InterventionResult(
        method, out_dir, [(method, comparison)], record, [(method, baseline_dir, treated_dir)]
    )


def _notes(method: str, intervention: Intervention | None, adapter: SpeechLLM) -> list[str]:
    notes = []
    if isinstance(intervention, StatisticalCalibration):
        if intervention.stats.layer == adapter.num_layers and intervention.positions == "span":
            notes.append(
                "calibration at the output layer on the speech span cannot change any answer: those states "
                "feed only the LM head at the speech positions; use --calibration-positions all"
            )
    return notes


def _ids(run_dir: Path, modality: str) -> list[str]:
    return [r["id"] for _, r in read_jsonl(run_dir / "results.jsonl") if r["modality"] == modality]


def _accuracy(run_dir: Path, modality: str, ids: list[str]) -> float | None:
    wanted = set(ids)
    outcomes = [
        bool(r.get("correct"))
        for _, r in read_jsonl(run_dir / "results.jsonl")
        if r["modality"] == modality and r["id"] in wanted and r.get("model_role", "lslm") == "lslm"
    ]
    return float(np.mean(outcomes)) if outcomes else None


def _gap_closed(text_accuracy: float | None, comparison: RunComparison) -> float | None:
    """Share of the baseline gap (text − speech) the intervention closed; None without a positive gap."""
    if text_accuracy is None:
        return None
    gap = text_accuracy - comparison.baseline_accuracy
    if gap <= 0:
        return None
    return float((comparison.treated_accuracy - comparison.baseline_accuracy) / gap)


def _run_redundancy(
    adapter: SpeechLLM,
    data: PairedDataset,
    out_dir: Path,
    settings: InterventionSettings,
    eval_settings: EvalSettings,
    progress: bool,
) -> InterventionReport:
    """Paper 3's text redundancy test: the text modality with each word repeated r times, vs r = 1."""
    data = data.limit(eval_settings.limit)
    text_settings = dataclasses.replace(eval_settings, modalities=("text",), limit=None)
    dirs = {}
    for r in settings.repeats:
        dirs[r] = out_dir / REDUNDANCY / f"r{r}"
        evaluate(adapter, repeat_words_dataset(data, r), dirs[r], text_settings, progress=progress)
    comparisons = []
    runs = []
    rows = []
    for r in settings.repeats:
        if r == 1:
            continue
        comparison = compare_runs(dirs[1], dirs[r], modality="text", seed=eval_settings.seed)
        comparisons.append((f"r={r}", comparison))
        runs.append((f"r={r}", dirs[1], dirs[r]))
        rows.append({"repeats": r, "dir": f"{REDUNDANCY}/r{r}", **comparison.to_dict()})
    record = {
        "method": REDUNDANCY,
        "baseline_dir": f"{REDUNDANCY}/r1",
        "repeats": list(settings.repeats),
        "comparisons": rows,
        "notes": [] if rows else ["only r = 1 was run: nothing to compare"],
        "provenance": provenance(
            model=adapter.describe(),
            data=data.describe(),
            settings={
                "method": REDUNDANCY,
                "repeats": list(settings.repeats),
                "evaluation": dataclasses.asdict(eval_settings),
            },
        ),
    }
    atomic_write_json(out_dir / COMPARISON, record)
    return InterventionResult(REDUNDANCY, out_dir, comparisons, record, runs)
