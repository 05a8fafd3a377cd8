"""``speechgap compress``: the unmerged model and one or more merge settings on the same samples.

Layout of ``DIR``::

    baseline/            evaluation of the unmodified model (speech run)   -- speechgap eval layout
    <variant>/           evaluation of each merge setting, plus lengths.jsonl (tokens per block, per sample)
    compression.json     per variant: retention, prefill FLOPs, TTFT, peak memory, accuracy + paired stats
    curve.json, curve.png   accuracy against retention over the variants (when there are several)

Every stage resumes: the evaluations append records and skip those present, ``lengths.jsonl`` likewise,
and ``compression.json`` is rewritten atomically after each variant.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from speechgap.compression.affinity import RULES, check_tau, check_window
from speechgap.compression.flops import DecoderShape
from speechgap.compression.kv import check_ratio, kv_merge_plan
from speechgap.compression.oracle import OracleCompression
from speechgap.compression.plan import (
    POSITION_MODES,
    AffinityPooling,
    MergePlan,
    dual_affinity_plan,
    proportional_deep_layer,
)
from speechgap.compression.run import (
    CompressedModel,
    LengthRecord,
    LengthSummary,
    SpeedSummary,
    measure_speed,
    summarize_lengths,
)
from speechgap.compression.tome import TokenMerging
from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError, SpeechgapWarning
from speechgap.evaluation.compare import RunComparison, compare_runs
from speechgap.evaluation.methods import MethodContext, get_method, register_method
from speechgap.evaluation.run import EvalSettings, evaluate
from speechgap.io import RunLock, atomic_write_json, prepare_out_dir, read_json, read_jsonl
from speechgap.models.base import SpeechLLM
from speechgap.provenance import provenance

METHODS = (
    "ap-input",
    "ap-deep",
    "dap",
    "oracle-random",
    "oracle-uniform",
    "oracle-merge",
    "tome",
    "kv-merge",
)
LENGTHS = "lengths.jsonl"


@dataclass
class CompressionSpec:
    """One merge setting, as the CLI names it. Every setting is checked on construction, before any model
    is loaded (layers against the model's depth once it is known: :meth:`plan`).

    Attributes:
        method: one of :data:`METHODS`.
        tau, omega: input AP threshold and look-back (``ap-input``, ``dap``); paper 2: 0.8, 1. ``tau`` is a
            cosine threshold in [-1, 1] (above 1: merge nothing); ``omega`` an integer >= 1.
        deep_layer: the deep AP layer (>= 1); None maps paper 2's "29 of 32" proportionally.
        deep_tau, deep_omega: deep AP threshold and look-back (``ap-deep``, ``dap``); paper 2: 0.7, 3.
        rule: ``"max"`` or ``"mean"`` (comparison rule of AP).
        position: ``"first"``, ``"mean"`` or ``"compact"`` (position a merged token keeps).
        layer: the layer of the oracle / ToMe shortening (>= 0); None: the proportional deep layer.
        retention: oracle / ToMe budget in (0, 1].
        kv_tau, kv_ratio: KV token merging (``kv-merge``, paper 3 appendix C): key-cosine threshold (0.90) and
            the largest share of the span merged away per layer (0.25; paper 3: 0.10–0.25), at layers 7..21
            of 28 mapped proportionally.
        seed: oracle random-drop seed (an integer).
    """

    method: str = "dap"
    tau: float = 0.8
    omega: int = 1
    deep_layer: int | None = None
    deep_tau: float = 0.7
    deep_omega: int = 3
    rule: str = "max"
    position: str = "first"
    layer: int | None = None
    retention: float = 0.25
    kv_tau: float = 0.90
    kv_ratio: float = 0.25
    seed: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"argument 'method' must be one of {', '.join(METHODS)}, got {self.method!r}")
        # checked, not converted: the values are recorded as given (a resumed run compares them)
        check_tau(self.tau, "tau")
        check_tau(self.deep_tau, "deep_tau")
        check_window(self.omega, "omega")
        check_window(self.deep_omega, "deep_omega")
        if self.rule not in RULES:
            raise ConfigError(f"argument 'rule' must be one of {', '.join(RULES)}, got {self.rule!r}")
        if self.position not in POSITION_MODES:
            raise ConfigError(
                f"argument 'position' must be one of {', '.join(POSITION_MODES)}, got {self.position!r}"
            )
        check_tau(self.kv_tau, "kv_tau")
        check_ratio(self.kv_ratio, "kv_ratio")
        _check_layer(self.deep_layer, "deep_layer", lowest=1)
        _check_layer(self.layer, "layer", lowest=0)
        retention = self.retention
        if (
            isinstance(retention, bool)
            or not isinstance(retention, numbers.Real)
            or not math.isfinite(retention)
            or not 0.0 < retention <= 1.0
        ):
            raise ConfigError(
                f"argument 'retention' must be in (0, 1], got {retention!r} (the share of speech tokens kept)"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ConfigError(f"argument 'seed' must be an integer, got {self.seed!r}")

    @property
    def name(self) -> str:
        """A folder name that says what the setting is."""
        m = self.method
        if m == "ap-input":
            return f"ap-input_tau{self.tau:g}_w{self.omega}_{self.rule}_{self.position}"
        if m == "ap-deep":
            return f"ap-deep_l{self.deep_layer}_tau{self.deep_tau:g}_w{self.deep_omega}_{self.rule}_{self.position}"
        if m == "dap":
            return (
                f"dap_tau{self.tau:g}_w{self.omega}_l{self.deep_layer}_tau{self.deep_tau:g}_w{self.deep_omega}"
                f"_{self.rule}_{self.position}"
            )
        if m == "kv-merge":
            return f"kv-merge_tau{self.kv_tau:g}_r{self.kv_ratio:g}_{self.position}"
        return f"{m}_l{self.layer}_r{self.retention:g}_{self.position}"

    def resolved(self, num_layers: int) -> CompressionSpec:
        """The spec with default layers filled in for a model of ``num_layers`` blocks."""
        deep = self.deep_layer if self.deep_layer is not None else proportional_deep_layer(num_layers)
        layer = self.layer if self.layer is not None else proportional_deep_layer(num_layers)
        return replace(self, deep_layer=deep, layer=layer)

    def plan(self, num_layers: int) -> MergePlan:
        """The :class:`MergePlan` of this setting."""
        spec = self.resolved(num_layers)
        m = spec.method
        if m == "kv-merge":
            return kv_merge_plan(num_layers, spec.kv_tau, spec.kv_ratio, spec.position)
        used = {"ap-deep": "deep_layer", "dap": "deep_layer"}.get(m, None if m == "ap-input" else "layer")
        lowest = 1 if used == "deep_layer" else 0  # the deep merge comes after the input's
        if used is not None and not lowest <= int(getattr(spec, used)) <= num_layers - 1:
            raise ConfigError(
                f"argument {used!r} must be in {lowest}..{num_layers - 1} for this model of {num_layers} "
                f"blocks (layer l shortens the input of block l+1), got {getattr(spec, used)}"
            )
        if m == "ap-input":
            return MergePlan({0: AffinityPooling(spec.tau, spec.omega, spec.rule)}, position=spec.position)
        if m == "ap-deep":
            reducer = AffinityPooling(spec.deep_tau, spec.deep_omega, spec.rule)
            return MergePlan({int(spec.deep_layer): reducer}, position=spec.position)  # type: ignore[arg-type]
        if m == "dap":
            return dual_affinity_plan(
                num_layers, spec.tau, spec.omega, spec.deep_layer, spec.deep_tau, spec.deep_omega,
                spec.rule, spec.position,
            )  # fmt: skip
        if m == "tome":
            return MergePlan({int(spec.layer): TokenMerging(spec.retention)}, position=spec.position)  # type: ignore[arg-type]
        kind = m.split("-", 1)[1]
        return MergePlan(
            {int(spec.layer): OracleCompression(kind, spec.retention, spec.seed)},  # type: ignore[arg-type]
            position=spec.position,
        )


def _check_layer(layer: int | None, argument: str, *, lowest: int) -> None:
    """Refuse a layer that is neither None (the default layer) nor an integer >= ``lowest``; the model's
    depth bounds it later (:meth:`CompressionSpec.plan`)."""
    if layer is None:
        return
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral):
        raise ConfigError(f"argument {argument!r} must be an integer (a decoder layer), got {layer!r}")
    if layer < lowest:
        raise ConfigError(f"argument {argument!r} must be >= {lowest}, got {layer}")


def check_timing(timing_samples: int, repeats: int) -> None:
    """Refuse timing settings that cannot be honoured (called before any model is loaded).

    Raises:
        ConfigError: ``timing_samples`` not an integer >= 0 (0 skips timing), ``repeats`` not an integer >= 1.
    """
    for name, value, lowest, meaning in (
        ("timing_samples", timing_samples, 0, "samples timed; 0 skips timing"),
        ("repeats", repeats, 1, "timed prefills per sample and model"),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"argument {name!r} must be an integer ({meaning}), got {value!r}")
        if value < lowest:
            raise ConfigError(f"argument {name!r} must be >= {lowest}, got {value} ({meaning})")


def sweep(
    base: CompressionSpec,
    taus: Sequence[float] = (),
    retentions: Sequence[float] = (),
    layers: Sequence[int] = (),
) -> list[CompressionSpec]:
    """The variants of a sweep.

    ``taus``: for ``ap-input`` the input tau; for ``ap-deep`` the deep tau; for ``kv-merge`` the key
    threshold; for ``dap`` the input tau with
    the deep tau following at the same offset as given (paper 2: deep = input - 0.1). ``retentions`` and
    ``layers``: oracle / ToMe budgets and layers (every combination). Nothing given: ``[base]``.
    """
    specs = [base]
    if taus:
        if base.method not in ("ap-input", "ap-deep", "dap", "kv-merge"):
            raise ConfigError("argument 'sweep_tau' is for the methods ap-input, ap-deep, dap and kv-merge")
        offset = base.deep_tau - base.tau
        specs = []
        for t in taus:
            if base.method == "ap-deep":
                changes = {"deep_tau": t}
            elif base.method == "kv-merge":
                changes = {"kv_tau": t}
            elif base.method == "dap":
                changes = {"tau": t, "deep_tau": round(t + offset, 6)}
            else:
                changes = {"tau": t}
            specs.append(_swept(base, "sweep_tau", changes))
    if retentions or layers:
        if base.method.startswith(("ap", "dap", "kv")):
            raise ConfigError(
                "argument 'sweep_retention' and argument 'sweep_layers' are for the oracle methods and tome"
            )
        argument = "sweep_retention" if retentions else "sweep_layers"
        specs = [
            _swept(base, argument, {"retention": r, "layer": lay})
            for lay in (layers or [base.layer])
            for r in (retentions or [base.retention])
        ]
    return specs


def _swept(base: CompressionSpec, argument: str, changes: dict[str, Any]) -> CompressionSpec:
    """``base`` with ``changes``; a refused value names the sweep argument it came from."""
    try:
        return replace(base, **changes)
    except ConfigError as err:
        variant = ", ".join(f"{name} {value!r}" for name, value in changes.items())
        derived = ""
        if argument == "sweep_tau" and base.method == "dap":
            derived = f"; dap's deep tau follows the input tau at offset {base.deep_tau - base.tau:+g}"
        raise ConfigError(
            f"argument {argument!r} gives a refused variant ({variant}{derived}): {err}"
        ) from None


SPEC_SETTINGS = tuple(name for name in CompressionSpec.__dataclass_fields__ if name != "method")

_AP = ("rule", "position")
METHOD_SETTINGS: dict[str, tuple[str, ...]] = {
    "ap-input": ("tau", "omega", *_AP, "seed"),
    "ap-deep": ("deep_layer", "deep_tau", "deep_omega", *_AP, "seed"),
    "dap": ("tau", "omega", "deep_layer", "deep_tau", "deep_omega", *_AP, "seed"),
    "oracle-random": ("layer", "retention", "position", "seed"),
    "oracle-uniform": ("layer", "retention", "position", "seed"),
    "oracle-merge": ("layer", "retention", "position", "seed"),
    "tome": ("layer", "retention", "position", "seed"),
    "kv-merge": ("kv_tau", "kv_ratio", "position", "seed"),
}
"""The :class:`CompressionSpec` settings each merging method reads (``seed`` is also the bootstrap's): a
setting given to a method that does not read it is refused, naming the ones it does."""


def check_method_settings(method: str, given: Iterable[str]) -> None:
    """Refuse settings ``method`` does not read (``given``: the names the user set), naming the ones it does.

    Raises:
        ConfigError: naming the first such setting and the method's own settings.
    """
    reads = METHOD_SETTINGS.get(method, SPEC_SETTINGS)
    unknown = sorted(set(given) - set(reads))
    if unknown:
        names = ", ".join(f"argument {name!r}" for name in unknown)
        raise ConfigError(f"{names} is not a setting of method {method!r} (its settings: {', '.join(reads)})")


def _merged_model(context: MethodContext) -> CompressedModel:
    """The factory of every compression method: the adapter behind the method's merge plan."""
    spec = CompressionSpec(**context.options).resolved(context.adapter.num_layers)
    return CompressedModel(
        context.adapter,
        spec.plan(context.adapter.num_layers),
        lengths_path=context.out_dir / spec.name / LENGTHS,
    )


_DESCRIPTIONS = {
    "ap-input": "Affinity Pooling of the speech span at the decoder input (paper 2)",
    "ap-deep": "Affinity Pooling of the speech span at one deep layer (paper 2)",
    "dap": "dual Affinity Pooling: at the input and at a deep layer (paper 2)",
    "oracle-random": "oracle compression: random drop inside word windows at one layer (paper 2)",
    "oracle-uniform": "oracle compression: uniform drop inside word windows at one layer (paper 2)",
    "oracle-merge": "oracle compression: uniform merge inside word windows at one layer (paper 2)",
    "tome": "ToMe-style bipartite merging at one layer, order kept (baseline)",
    "kv-merge": "KV token merging: adjacent speech tokens with key cosine > kv_tau, layers 7..21 of 28 (paper 3)",
}
for _name in METHODS:
    register_method(
        _name,
        lambda context, name=_name: _merged_model(
            MethodContext(
                context.adapter,
                {**context.options, "method": name},
                context.out_dir,
                context.evaluation,
                context.calibration,
                context.progress,
            )
        ),
        kind="compression",
        settings=METHOD_SETTINGS[_name],
        description=_DESCRIPTIONS[_name],
    )


def _lengths(model: CompressedModel, data: PairedDataset, path: Path) -> list[LengthRecord]:
    """Every sample's record: from ``path`` (complete: the model commits at the end of each call), the
    missing ones (answered by a run that died before their record was committed) by a prefill now."""
    done = {record["id"]: record for _, record in read_jsonl(path)} if path.exists() else {}
    records = []
    for index, sample_id in enumerate(data.ids):
        if sample_id in done:
            records.append(LengthRecord(**done[sample_id]))
            continue
        sample = data[index]
        state = model.engine.prefill(sample, "speech")
        model._record(sample, state)
        records.append(model.lengths[sample_id])
    return records


@dataclass
class CompressionVariant:
    """One merge setting's figures against the unmerged model on the same samples.

    Attributes:
        name: the variant's folder name (says what the setting is).
        spec: the resolved :class:`CompressionSpec`.
        plan: the merge plan's description.
        lengths: retention and prefill FLOPs (:class:`~speechgap.compression.run.LengthSummary`).
        speed: time to first token, peak memory and KV cache (None when timing was skipped).
        comparison: speech accuracy without and with, paired (:class:`RunComparison`).
    """

    name: str
    spec: CompressionSpec
    plan: dict[str, Any]
    lengths: LengthSummary
    speed: SpeedSummary | None
    comparison: RunComparison

    @property
    def retention(self) -> float:
        """Speech tokens reaching the last block / speech tokens at the input (pooled over samples)."""
        return self.lengths.retention

    @property
    def flops_ratio(self) -> float:
        """Prefill FLOPs merged / unmerged."""
        return self.lengths.prefill_flops_ratio

    @property
    def baseline_accuracy(self) -> float:
        return self.comparison.baseline_accuracy

    @property
    def accuracy(self) -> float:
        """Speech accuracy with the merge."""
        return self.comparison.treated_accuracy

    @property
    def accuracy_delta(self) -> float:
        """Merged − unmerged speech accuracy (fraction)."""
        return self.comparison.delta

    @property
    def accuracy_delta_ci(self) -> tuple[float, float]:
        return (self.comparison.delta_low, self.comparison.delta_high)

    @property
    def ttft_ratio(self) -> float | None:
        return None if self.speed is None else self.speed.ttft_ratio

    def to_json(self) -> dict[str, Any]:
        """The variant's entry of ``compression.json``."""
        return {
            "name": self.name,
            "spec": asdict(self.spec),
            "plan": self.plan,
            "lengths": asdict(self.lengths),
            "speed": asdict(self.speed) if self.speed is not None else None,
            "accuracy": self.comparison.to_dict(),
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> CompressionVariant:
        return cls(
            name=entry["name"],
            spec=CompressionSpec(**entry["spec"]),
            plan=entry["plan"],
            lengths=LengthSummary(**entry["lengths"]),
            speed=SpeedSummary(**entry["speed"]) if entry.get("speed") else None,
            comparison=RunComparison.from_dict(entry["accuracy"]),
        )

    def format(self) -> str:
        """One printed line: retention, FLOPs, accuracy with its interval, timing."""
        c = self.comparison
        line = (
            f"{self.name}: retention {100 * self.retention:.1f}%  "
            f"prefill FLOPs {100 * self.flops_ratio:.1f}%  "
            f"speech acc {100 * c.baseline_accuracy:.1f}% -> {100 * c.treated_accuracy:.1f}% "
            f"(Δ {100 * c.delta:+.1f} [{100 * c.delta_low:+.1f}, {100 * c.delta_high:+.1f}], "
            f"McNemar p={c.mcnemar.p_exact:.3g})"
        )
        if self.speed is not None:
            memory = self.speed.peak_memory_ratio
            line += f"  TTFT x{self.speed.ttft_ratio:.2f}  KV cache x{self.speed.kv_cache_ratio:.2f}"
            line += f"  peak memory x{memory:.2f}" if memory is not None else ""
        return line


@dataclass
class CompressionResult:
    """What :func:`run_compression` (``speechgap.compress``) measured, typed.

    Attributes:
        out_dir: the run folder (``baseline/``, one folder per variant, ``compression.json``).
        variants: one :class:`CompressionVariant` per merge setting, in the order run.
        provenance: model, data, settings and versions (the rest of ``compression.json``).
    """

    out_dir: Path
    variants: list[CompressionVariant] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The content of ``compression.json`` (unchanged on disk)."""
        return {**self.provenance, "variants": [variant.to_json() for variant in self.variants]}

    def to_frame(self) -> Any:
        """One row per variant: setting, retention, FLOPs, accuracy with its interval, timing."""
        import pandas as pd

        return pd.DataFrame([_variant_row(variant) for variant in self.variants])

    def plot(self) -> Any:
        """Speech accuracy against the share of speech tokens left, one point per variant."""
        from speechgap.report.figures import retention_curve

        points = [_variant_row(v) for v in self.variants]
        return retention_curve(points, self.variants[0].baseline_accuracy)

    @classmethod
    def load(cls, out_dir: str | Path) -> CompressionResult:
        """Reopen a finished ``speechgap compress`` folder (no model needed)."""
        out_dir = Path(out_dir)
        path = out_dir / "compression.json"
        if not path.is_file():
            raise ConfigError(f"{out_dir}: no compression.json; run `speechgap compress` there first")
        record = read_json(path, what="compression result")
        variants = [CompressionVariant.from_json(entry) for entry in record.get("variants", [])]
        return cls(out_dir, variants, {k: v for k, v in record.items() if k != "variants"})

    def as_intervention(self) -> Any:
        """The same run seen as an intervention: one comparison per variant (``speechgap.intervene``)."""
        from speechgap.interventions.run import InterventionResult

        method = self.variants[0].spec.method if self.variants else ""
        return InterventionResult(
            method,
            self.out_dir,
            [(v.name, v.comparison) for v in self.variants],
            self.to_json(),
            [(v.name, self.out_dir / "baseline", self.out_dir / v.name) for v in self.variants],
            compression=self,
        )

    def format(self) -> str:
        return "\n".join(variant.format() for variant in self.variants)

    def __repr__(self) -> str:
        return f"CompressionResult({str(self.out_dir)!r})\n{self.format()}"

    def _repr_html_(self) -> str:
        from speechgap.report.html import result_table

        rows = [
            [v.name, f"{100 * v.retention:.1f}", f"{100 * v.flops_ratio:.1f}",
             f"{100 * v.baseline_accuracy:.1f}", f"{100 * v.accuracy:.1f}",
             f"{100 * v.accuracy_delta:+.1f} [{100 * v.comparison.delta_low:+.1f}, {100 * v.comparison.delta_high:+.1f}]",
             "–" if v.ttft_ratio is None else f"×{v.ttft_ratio:.2f}"]
            for v in self.variants
        ]  # fmt: skip
        return result_table(
            f"CompressionResult: {self.out_dir}",
            ["variant", "tokens left %", "prefill FLOPs %", "speech % before", "after", "Δ points (95% CI)",
             "TTFT"],
            rows,
        )  # fmt: skip


def _variant_row(variant: CompressionVariant) -> dict[str, Any]:
    return {
        "name": variant.name,
        "method": variant.spec.method,
        "tau": variant.spec.tau,
        "deep_tau": variant.spec.deep_tau,
        "retention_budget": variant.spec.retention,
        "layer": variant.spec.layer,
        "retention": variant.retention,
        "prefill_flops_ratio": variant.flops_ratio,
        "accuracy": variant.accuracy,
        "baseline_accuracy": variant.baseline_accuracy,
        "delta": variant.accuracy_delta,
        "delta_low": variant.comparison.delta_low,
        "delta_high": variant.comparison.delta_high,
        "ttft_ratio": variant.ttft_ratio,
        "kv_cache_ratio": None if variant.speed is None else variant.speed.kv_cache_ratio,
        "peak_memory_ratio": None if variant.speed is None else variant.speed.peak_memory_ratio,
        "n": variant.comparison.n,
    }


def run_compression(
    adapter: SpeechLLM,
    data: PairedDataset,
    out_dir: str | Path,
    specs: Sequence[CompressionSpec],
    settings: EvalSettings | None = None,
    *,
    timing_samples: int = 4,
    repeats: int = 3,
    progress: bool = True,
) -> CompressionResult:
    """Evaluate the unmerged model and every merge setting on the speech run; write ``compression.json``.

    Args:
        adapter: the speech LLM.
        data: paired data (the speech run is evaluated; text is untouched by merging).
        out_dir: results folder (resumed when rerun with the same command); held for the whole run
            (:class:`speechgap.io.RunLock`: a second run into it is refused).
        specs: the merge settings (:func:`sweep`).
        settings: :class:`speechgap.evaluation.run.EvalSettings` (its modalities are forced to speech).
        timing_samples: samples timed for TTFT / peak memory (the first ones); 0 skips timing.
        repeats: timed prefills per sample and model (median), >= 1.
        progress: progress bars.

    Returns:
        :class:`CompressionResult` (its :meth:`~CompressionResult.to_json` is ``compression.json``).

    Raises:
        ConfigError: bad timing settings or specs, a layer beyond the model's depth, an ``out_dir`` that is
            a file, cannot be created or written, or is in use by another run.
    """
    check_timing(timing_samples, repeats)
    if not specs:
        raise ConfigError("argument 'specs' is empty: no merge setting to run")
    settings = replace(settings or EvalSettings(), modalities=("speech",))
    data = data.limit(settings.limit)
    specs = [spec.resolved(adapter.num_layers) for spec in specs]
    for spec in specs:  # refuse a bad setting before any evaluation starts
        spec.plan(adapter.num_layers)
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="compress"):
        return _run_compression(adapter, data, out_dir, specs, settings, timing_samples, repeats, progress)


def _run_compression(
    adapter: SpeechLLM,
    data: PairedDataset,
    out_dir: Path,
    specs: list[CompressionSpec],
    settings: EvalSettings,
    timing_samples: int,
    repeats: int,
    progress: bool,
) -> CompressionResult:
    """:func:`run_compression` once its settings are checked and ``out_dir`` is held."""
    shape = DecoderShape.from_config(adapter.text_config)
    evaluate(adapter, data, out_dir / "baseline", settings, progress=progress)
    timed = [data[i] for i in range(min(timing_samples, len(data)))]
    result = CompressionResult(
        out_dir,
        provenance=provenance(
            model=adapter.describe(),
            data=data.describe(),
            settings={
                "eval": asdict(settings),
                "specs": [asdict(s) for s in specs],
                "timing_samples": len(timed),
                "repeats": repeats,
            },
        ),
    )
    for spec in specs:
        reads = METHOD_SETTINGS.get(spec.method, SPEC_SETTINGS)
        options = {k: v for k, v in asdict(spec).items() if k in reads}
        context = MethodContext(adapter, options, out_dir, data, progress=progress)
        merged = get_method(spec.method, kind="compression").build(context)
        variant_dir = out_dir / spec.name
        variant_dir.mkdir(parents=True, exist_ok=True)
        with merged:
            evaluate(merged, data, variant_dir, settings, progress=progress)
            lengths = summarize_lengths(_lengths(merged, data, variant_dir / LENGTHS), shape)
        _warn_if_collapsed(spec, lengths)
        comparison = compare_runs(out_dir / "baseline", variant_dir, modality="speech", seed=settings.seed)
        speed = measure_speed(adapter, merged.plan, timed, repeats=repeats) if timed else None
        result.variants.append(
            CompressionVariant(spec.name, spec, merged.plan.describe(), lengths, speed, comparison)
        )
        atomic_write_json(out_dir / "compression.json", result.to_json())
    if len(specs) > 1:
        write_curve(result)
    return result


COLLAPSED_RETENTION = 0.05
"""A variant keeping fewer speech tokens than this share is reported with a warning (e.g. ``--tau -1``)."""


def _warn_if_collapsed(spec: CompressionSpec, lengths: Any) -> None:
    """Warn when a setting merged the speech span nearly away: it runs, but is rarely what was meant."""
    retention = getattr(lengths, "retention", None)
    if retention is None and isinstance(lengths, dict):
        retention = lengths.get("retention")
    if retention is not None and retention < COLLAPSED_RETENTION:
        import warnings

        warnings.warn(
            SpeechgapWarning(
                f"variant {spec.name} keeps {retention:.1%} of the speech tokens (below "
                f"{COLLAPSED_RETENTION:.0%}): its thresholds merge nearly the whole span (a tau of -1 merges every "
                "token whose neighbour is not exactly opposite)"
            ),
            stacklevel=2,
        )


def write_curve(result: CompressionResult) -> None:
    """``curve.json`` (one point per variant) and ``curve.png`` (speech accuracy against retention)."""
    from speechgap.report.figures import save_png

    keys = ("name", "tau", "deep_tau", "retention_budget", "layer", "retention", "prefill_flops_ratio",
            "accuracy", "baseline_accuracy", "delta", "delta_low", "delta_high")  # fmt: skip
    points = [{key: row[key] for key in keys} for row in map(_variant_row, result.variants)]
    atomic_write_json(result.out_dir / "curve.json", {"provenance": result.provenance, "points": points})
    save_png(result.plot(), result.out_dir / "curve.png")


def load_result(out_dir: str | Path) -> CompressionResult:
    """Read ``DIR/compression.json`` (:meth:`CompressionResult.load`)."""
    return CompressionResult.load(out_dir)
