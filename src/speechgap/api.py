"""One Python verb per job — what each ``speechgap`` command runs, for notebooks and scripts.

    >>> import speechgap
    >>> model = speechgap.load_model(speechgap.default_model())
    >>> result = speechgap.evaluate(model, "pairs/manifest.jsonl", out_dir="runs/eval", limit=32)
    >>> result.speech_accuracy, result.pooled.gap
    >>> speechgap.intervene(model, "pairs/manifest.jsonl", "oracle-merge", out_dir="runs/om", retention=0.5)

Every verb takes ``model`` as a loaded adapter (:func:`speechgap.load_model`) or a folder / Hub id, and
``data`` as a :class:`~speechgap.data.types.PairedDataset`, a manifest path or a ``--data`` spec string;
``out_dir`` is the command's ``--out``, and the other keyword arguments are named like the command's flags
(``max_new_tokens=`` for ``--max-new-tokens``). Each returns a typed result with ``to_json()`` (what the
command writes), ``to_frame()`` (a pandas DataFrame), ``load(dir)`` (reopen a finished run) and, where a
figure exists, ``plot()``. The command line parses its flags, calls the verb and prints the result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechgap.analysis import AnalysisResult, AnalysisSettings
from speechgap.compression.experiment import (
    CompressionResult,
    CompressionSpec,
    check_method_settings,
    run_compression,
    sweep,
)
from speechgap.data.load import load_pairs
from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError
from speechgap.evaluation.methods import get_method, method_names
from speechgap.evaluation.result import EvalResult
from speechgap.evaluation.run import DEFAULT_BATCH_SIZE as EVAL_BATCH_SIZE
from speechgap.evaluation.run import EvalSettings
from speechgap.interventions.run import REDUNDANCY, InterventionResult, InterventionSettings
from speechgap.io import prepare_out_dir
from speechgap.models.base import SpeechLLM, check_protocol
from speechgap.study import StudyResult, StudySettings

ModelLike = SpeechLLM | str | Path
COMPRESS_PROTOCOL = "instructed"
"""The prompt protocol :func:`compress` loads a model with: its default answer mode ``loglik`` reads the
option letter after the prompt, which needs an instruction (paper 2's setup)."""
DataLike = PairedDataset | str | Path


def _model(
    model: ModelLike,
    *,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    protocol: str | None = None,
    instruction: str | None = None,
    system_prompt: str | None = None,
) -> SpeechLLM:
    """An adapter as given, or loaded from a folder / Hub id with the prompt settings.

    ``protocol`` None loads with :func:`~speechgap.models.checkpoint_protocol` (``voicebench``; ``instructed``
    for speechgap's mini models); a loaded
    adapter keeps its own, and a ``protocol`` given with it must be that one.
    """
    if protocol is not None:
        check_protocol(protocol)
    prompts = {
        key: value
        for key, value in (("instruction", instruction), ("system_prompt", system_prompt))
        if value is not None
    }
    for key, value in prompts.items():
        if not isinstance(value, str):
            raise ConfigError(f"argument {key!r} must be a string, got {type(value).__name__}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ConfigError(
                f"argument {key!r} is not valid text: {err.reason} at character {err.start}"
            ) from None
    if isinstance(model, str | Path):
        from speechgap.models import load_model

        return load_model(
            model,
            device=device,
            dtype=dtype,
            trust_remote_code=trust_remote_code,
            protocol=protocol,
            **prompts,
        )
    if not isinstance(model, SpeechLLM):
        raise ConfigError(
            f"argument 'model' must be a loaded speech LLM (speechgap.load_model) or a model folder / Hub id, "
            f"got {type(model).__name__}"
        )
    if protocol is not None and protocol != model.protocol:
        raise ConfigError(
            f"argument 'protocol' is {protocol!r}, but the model was loaded with protocol {model.protocol!r}; "
            f"pass protocol={protocol!r} to speechgap.load_model, or give the model's folder instead"
        )
    loading = {"device": device, "dtype": dtype, **prompts}
    given = [name for name, value in loading.items() if value is not None] + (
        ["trust_remote_code"] if trust_remote_code else []
    )
    if given:
        names = ", ".join(f"argument {name!r}" for name in given)
        raise ConfigError(
            f"{names} applies when the model is loaded; pass it to speechgap.load_model, or give the "
            "model's folder instead of the loaded model"
        )
    return model


def _check_loaded(model: ModelLike, **loading: Any) -> None:
    """For a model given loaded, refuse loading settings before anything is written (a no-op for a path)."""
    if not isinstance(model, str | Path):
        _model(model, **loading)


def _data(data: DataLike, name: str = "data") -> PairedDataset:
    if isinstance(data, PairedDataset):
        return data
    if not isinstance(data, str | Path):
        raise ConfigError(
            f"argument {name!r} must be a PairedDataset, a manifest path or a data spec string, "
            f"got {type(data).__name__}"
        )
    if not str(data).strip():
        raise ConfigError(
            f"argument {name!r} is empty: give a manifest .jsonl, a VoiceBench or SpeechMMLU folder, or a "
            "data spec (docs/data.md)"
        )
    return load_pairs(data)


def _modalities(modality: str | Sequence[str]) -> tuple[str, ...]:
    """``modality`` as EvalSettings takes it, refused here in the argument's own name."""
    if isinstance(modality, str):
        chosen = tuple(part.strip() for part in modality.split(",") if part.strip())
    elif isinstance(modality, Sequence) and all(isinstance(m, str) for m in modality):
        chosen = tuple(modality)
    else:
        raise ConfigError(f"argument 'modality' must be 'speech', 'text' or both, got {modality!r}")
    bad = [m for m in chosen if m not in ("speech", "text")]
    if bad or not chosen:
        raise ConfigError(f"argument 'modality' takes speech, text or both, got {bad or 'nothing'}")
    repeated = sorted({m for m in chosen if chosen.count(m) > 1})
    if repeated:
        raise ConfigError(f"argument 'modality' names {repeated[0]!r} twice; give each run once")
    return chosen


# ---------------------------------------------------------------------------------------------- evaluate


def evaluate(
    model: ModelLike,
    data: DataLike,
    out_dir: str | Path,
    *,
    modality: str | Sequence[str] = ("speech", "text"),
    limit: int | None = None,
    max_new_tokens: int = 256,
    batch_size: int = EVAL_BATCH_SIZE,
    answer_mode: str = "generate",
    scoring_mode: str | None = None,
    mcq_protocol: str = "speechgap",
    voicebench_compat: bool = False,
    seed: int = 0,
    base_model: ModelLike | None = None,
    judge: Any = None,
    protocol: str | None = None,
    instruction: str | None = None,
    system_prompt: str | None = None,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    progress: bool = False,
    shard: tuple[int, int] | None = None,
) -> EvalResult:
    """Speech vs text accuracy of ``model`` on paired ``data`` (``speechgap eval``); resumable.

    Args:
        model, data, out_dir: see the module docstring.
        modality: ``"speech"``, ``"text"`` or both (default).
        limit: the first N samples only.
        max_new_tokens, batch_size, answer_mode (``generate`` | ``loglik``), scoring_mode, mcq_protocol
            (``speechgap`` | ``speechmmlu`` | ``voicebench``), voicebench_compat (= ``mcq_protocol=
            "voicebench"``), seed: as the flags of ``speechgap eval``.
        base_model: the base text LM (a loaded adapter or a folder), for the split of the gap (paper 1).
        judge: a :class:`speechgap.scoring.Judge` for judge-scored subsets.
        protocol: the prompt protocol, ``voicebench`` (default when the model is loaded here: the audio
            alone / the question alone, as the VoiceBench leaderboard), ``official`` or ``instructed``
            (docs/evaluation.md); a loaded ``model`` keeps its own, and ``protocol`` must then be that one.
            Answer mode ``loglik`` needs an instruction: ``instructed``, or ``instruction=``.
        instruction, system_prompt: replace the protocol's instruction and system prompt (recorded as
            ``prompt_overrides``); with device, dtype, trust_remote_code: used when ``model`` is loaded here.
        progress: show a progress bar.
        shard: ``(k, K)``: evaluate only block ``k`` (0-based) of ``K`` contiguous, near-equal blocks of the
            data after ``limit`` (:meth:`~speechgap.data.types.PairedDataset.shard`), into a folder of its
            own; :func:`speechgap.evaluation.shards.merge_eval_shards` merges the shards' folders into the
            unsharded run's.

    Returns:
        :class:`~speechgap.evaluation.result.EvalResult`.
    """
    from speechgap.data.types import check_shard
    from speechgap.evaluation.report import score_run
    from speechgap.evaluation.run import evaluate as run_evaluation

    shard = check_shard(shard, "shard")

    settings = EvalSettings(
        modalities=_modalities(modality),
        answer_mode=answer_mode,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        scoring_mode=scoring_mode,
        mcq_protocol="voicebench" if voicebench_compat else mcq_protocol,
        seed=seed,
        limit=limit,
        protocol=protocol,
    )
    loading = {"device": device, "dtype": dtype, "trust_remote_code": trust_remote_code}
    prompts = {"protocol": protocol, "instruction": instruction, "system_prompt": system_prompt}
    _check_loaded(model, **loading, **prompts)
    prepare_out_dir(out_dir)
    pairs = _data(data)
    if shard is not None:
        pairs = pairs.limit(limit).shard(*shard)
    adapter = _model(model, **loading, **prompts)
    base = None
    if base_model is not None:
        if isinstance(base_model, str | Path):
            from speechgap.models.text_lm import load_text_model, text_prompts_of

            # the base LM answers the speech LLM's text-run prompt: same protocol, system prompt, instruction
            base = load_text_model(base_model, device=device, dtype=dtype, **text_prompts_of(adapter))
        else:
            base = base_model
    result = run_evaluation(adapter, pairs, out_dir, settings, base_model=base, progress=progress)
    if judge is not None:
        rescored = score_run(out_dir, judge=judge)
        rescored.written, rescored.skipped = result.written, result.skipped
        result = rescored
    return result


@dataclass
class PromptPreview:
    """The two prompts of one sample under a protocol, rendered without running the model.

    Attributes:
        sample_id: the sample shown.
        speech: the speech run's prompt (audio placeholders unexpanded), as records keep it in ``prompt``.
        text: the text run's prompt, the transcript in place.
        prompts: the model's prompt settings (:meth:`SpeechLLM.describe_prompts`: ``protocol``,
            ``protocol_source``, ``system_prompt``, ``instruction``, ``prompt_overrides``).
    """

    sample_id: str
    speech: str
    text: str
    prompts: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"sample_id": self.sample_id, **self.prompts, "speech": self.speech, "text": self.text}

    def format(self) -> str:
        """The preview as ``speechgap eval --show-prompt`` prints it."""
        overrides = ", ".join(self.prompts.get("prompt_overrides") or []) or "none"
        lines = [
            f"sample {self.sample_id!r}, protocol {self.prompts.get('protocol')!r} "
            f"({self.prompts.get('protocol_source')}; overridden: {overrides})",
            "--- speech run prompt ---",
            self.speech,
            "--- text run prompt ---",
            self.text,
        ]
        return "\n".join(lines)


def show_prompts(
    model: ModelLike,
    data: DataLike,
    *,
    sample_id: str | None = None,
    protocol: str | None = None,
    instruction: str | None = None,
    system_prompt: str | None = None,
    trust_remote_code: bool = False,
) -> PromptPreview:
    """The speech-run and text-run prompts of one sample (``speechgap eval --show-prompt``), without the
    weights: a model folder loads its processor and config only; a loaded adapter renders its own.

    Args:
        model, data: see the module docstring.
        sample_id: the sample to show; None: the first.
        protocol, instruction, system_prompt, trust_remote_code: as :func:`evaluate`.

    Raises:
        ConfigError: a ``sample_id`` the data does not have, a bad ``protocol``.
    """
    if protocol is not None:
        check_protocol(protocol)
    pairs = _data(data)
    if len(pairs) == 0:
        raise ConfigError("argument 'data' holds no samples")
    ids = list(pairs.ids)
    if sample_id is None:
        index = 0
    elif sample_id in ids:
        index = ids.index(sample_id)
    else:
        raise ConfigError(
            f"argument 'sample_id' {sample_id!r} is not in the data (its first ids: {', '.join(ids[:3])})"
        )
    sample = pairs[index]
    prompts = {"protocol": protocol, "instruction": instruction, "system_prompt": system_prompt}
    if isinstance(model, str | Path):
        from speechgap.models import load_prompts

        adapter = load_prompts(
            model,
            trust_remote_code=trust_remote_code,
            **prompts,
        )
    else:
        adapter = _model(model, trust_remote_code=trust_remote_code, **prompts)
    return PromptPreview(
        sample.id,
        adapter.render_prompt("speech", sample.text),
        adapter.render_prompt("text", sample.text),
        adapter.describe_prompts(),
    )


def score(
    out_dir: str | Path,
    *,
    mcq_protocol: str | None = None,
    voicebench_compat: bool = False,
    seed: int | None = None,
    judge: Any = None,
) -> EvalResult:
    """Re-score an evaluation folder without the model (``speechgap score``)."""
    from speechgap.evaluation.report import score_run

    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise ConfigError(f"argument 'seed' must be a whole number >= 0, got {seed!r}")
    protocol = "voicebench" if voicebench_compat else mcq_protocol
    return score_run(out_dir, mcq_protocol=protocol, seed=seed, judge=judge)


# ---------------------------------------------------------------------------------------------- analyze


def analyze(
    model: ModelLike | None = None,
    data: DataLike | None = None,
    out_dir: str | Path | None = None,
    *,
    captures: str | Path | None = None,
    eval_dir: str | Path | None = None,
    layers: Sequence[int] | None = None,
    include_layer0: bool = False,
    cka_pairing: str = "dtw",
    base_layer: int | None = None,
    path_samples: Sequence[str] | None = None,
    limit: int | None = None,
    debiased: bool = False,
    band_tolerance: float = 0.05,
    figures: bool = True,
    diagnostics: bool = False,
    protocol: str | None = None,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    progress: bool = False,
    command: list[str] | None = None,
    shard: tuple[int, int] | None = None,
    batch_size: int | None = None,
) -> AnalysisResult:
    """Every gap measure per sample and layer, cross-layer CKA, APS and figures (``speechgap analyze``).

    Give ``model`` with ``data`` (captured on the fly), or ``captures`` (a ``speechgap capture`` folder;
    ``data`` then only supplies word timings). ``eval_dir``: an evaluation folder (``--eval``) whose
    correctness joins the per-sample table. ``protocol``: the prompts of a model loaded here (as
    :func:`evaluate`; default ``voicebench``). ``diagnostics``: also paper 3's diagnostics (logit lens,
    probes, attention dispersion, update vectors, path stability; needs ``model``; docs/analysis.md).
    ``shard``: ``(k, K)``: plan the whole run, analyse only block ``k`` (0-based) of ``K`` of its samples
    (:attr:`AnalysisSettings.shard`); :func:`speechgap.analysis.shards.merge_analysis_shards` merges them.
    ``batch_size``: samples per capture pass with ``model`` (default: chosen from the model's size,
    :func:`speechgap.analysis.run.auto_batch_size`; equal to one at a time within float rounding, and free to
    change on resume).
    """
    from speechgap.analysis import analyze as run_analysis

    if out_dir is None:
        raise ConfigError("argument 'out_dir' is required")
    if (captures is None) == (model is None):
        raise ConfigError("give exactly one source: argument 'captures', or argument 'model' with 'data'")
    if model is not None and data is None:
        raise ConfigError("argument 'model' needs argument 'data' (the samples to run)")
    settings = AnalysisSettings(
        layers=None if layers is None else list(layers),
        include_layer0=include_layer0,
        cka_pairing=cka_pairing,
        base_layer=base_layer,
        path_samples=None if path_samples is None else list(path_samples),
        limit=limit,
        debiased=debiased,
        band_tolerance=band_tolerance,
        figures=figures,
        diagnostics=diagnostics,
        shard=shard,
        batch_size=batch_size,
    )
    if model is not None:
        _check_loaded(
            model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, protocol=protocol
        )
    prepare_out_dir(out_dir)
    if captures is not None:
        source: Any = captures
        pairs = _data(data) if data is not None else None
    else:
        adapter = _model(
            model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, protocol=protocol
        )  # type: ignore[arg-type]
        source, pairs = (adapter, _data(data).limit(limit)), None  # type: ignore[arg-type]
    return run_analysis(
        source, out_dir, settings, eval_dir=eval_dir, pairs=pairs, progress=progress, command=command
    )


# ---------------------------------------------------------------------------------------------- intervene


def intervene(
    model: ModelLike,
    data: DataLike,
    method: str,
    out_dir: str | Path,
    *,
    limit: int | None = None,
    answer_mode: str = "generate",
    max_new_tokens: int = 256,
    scoring_mode: str | None = None,
    seed: int = 0,
    baseline_text: bool = True,
    calibration: DataLike | None = None,
    sweep_layers: Sequence[int] = (),
    protocol: str | None = None,
    instruction: str | None = None,
    system_prompt: str | None = None,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    progress: bool = False,
    **method_settings: Any,
) -> InterventionResult:
    """Accuracy without and with a method on the same samples (``speechgap intervene``).

    ``method`` is any registered method (:func:`speechgap.evaluation.methods.method_names`): an
    intervention (``angle``, ``length``, ``calibration``; ``redundancy``, the text redundancy test) or a
    speech-token merging method (``oracle-merge``, ``oracle-uniform``, ``oracle-random``, ``dap``, ...), which
    runs as :func:`compress` does and returns the same comparison plus its compute figures.
    ``method_settings`` are the method's own settings (``k=``, ``critical=``, ``apply_layer=``,
    ``calibration_layer=``, ``repeats=``; ``retention=``, ``layer=``, ``tau=`` ...); a setting the method
    does not read is refused, naming the ones it does. ``protocol``, ``instruction``, ``system_prompt``: the
    prompts, as :func:`evaluate` (``loglik`` needs an instruction: ``protocol="instructed"``).

    Returns:
        :class:`~speechgap.interventions.run.InterventionResult`.
    """
    from speechgap.interventions.run import run_intervention

    known = sorted([*method_names(), REDUNDANCY])
    if method not in known:
        raise ConfigError(f"argument 'method' must be one of {', '.join(known)}, got {method!r}")
    if method != REDUNDANCY and get_method(method).kind == "compression":
        return _intervene_by_merging(
            model, data, method, out_dir, limit=limit, answer_mode=answer_mode,
            max_new_tokens=max_new_tokens, seed=seed, sweep_layers=sweep_layers, device=device, dtype=dtype,
            trust_remote_code=trust_remote_code, progress=progress, method_settings=method_settings,
            prompts={"protocol": protocol, "instruction": instruction, "system_prompt": system_prompt},
        )  # fmt: skip
    if sweep_layers:
        raise ConfigError(f"argument 'sweep_layers' is for the merging methods, not for {method!r}")
    if method == REDUNDANCY:
        unknown = sorted(set(method_settings) - {"repeats"})
        if unknown:
            raise ConfigError(
                f"argument {unknown[0]!r} is not a setting of method 'redundancy' (its settings: repeats)"
            )
    else:
        get_method(method).check_options(method_settings)
    if calibration is not None and (
        method_settings.get("calibration_fraction") is not None
        or method_settings.get("calibration_stats") is not None
    ):
        raise ConfigError(
            "give only one of argument 'calibration', argument 'calibration_fraction' and argument "
            "'calibration_stats'"
        )
    if (
        method_settings.get("calibration_fraction") is not None
        and method_settings.get("calibration_stats") is not None
    ):
        raise ConfigError("give only one of argument 'calibration_fraction' and argument 'calibration_stats'")
    settings = InterventionSettings(**method_settings, baseline_text=baseline_text)
    eval_settings = EvalSettings(
        answer_mode=answer_mode,
        max_new_tokens=max_new_tokens,
        scoring_mode=scoring_mode,
        seed=seed,
        limit=limit,
        protocol=protocol,
    )
    loading = {"device": device, "dtype": dtype, "trust_remote_code": trust_remote_code}
    prompts = {"protocol": protocol, "instruction": instruction, "system_prompt": system_prompt}
    _check_loaded(model, **loading, **prompts)
    prepare_out_dir(out_dir)
    pairs = _data(data)
    calibration_pairs = _data(calibration, "calibration") if calibration is not None else None
    adapter = _model(model, **loading, **prompts)
    return run_intervention(
        adapter,
        pairs,
        method,
        out_dir,
        settings,
        eval_settings,
        calibration=calibration_pairs,
        progress=progress,
    )


def _intervene_by_merging(
    model: ModelLike,
    data: DataLike,
    method: str,
    out_dir: str | Path,
    *,
    limit: int | None,
    answer_mode: str,
    max_new_tokens: int,
    seed: int,
    sweep_layers: Sequence[int],
    device: str | None,
    dtype: Any,
    trust_remote_code: bool,
    progress: bool,
    method_settings: dict[str, Any],
    prompts: dict[str, Any],
) -> InterventionResult:
    """A merging method through the intervention door: the compression run, seen as a comparison."""
    get_method(method).check_options(method_settings)
    # the merge settings are refused before the model loads (minutes), as `speechgap compress` does
    CompressionSpec(method=method, **{"seed": seed, **method_settings})
    if isinstance(model, str | Path):
        _check_loaded(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
        model = _model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, **prompts)
        device, dtype, trust_remote_code = None, None, False
    else:
        _model(model, **prompts)
    result = compress(
        model,
        data,
        out_dir,
        method=method,
        **{"seed": seed, **method_settings},
        sweep_layers=sweep_layers,
        answer_mode=answer_mode,
        max_new_tokens=max_new_tokens,
        limit=limit,
        device=device,
        dtype=dtype,
        trust_remote_code=trust_remote_code,
        progress=progress,
    )
    return result.as_intervention()


# ---------------------------------------------------------------------------------------------- compress


def compress(
    model: ModelLike,
    data: DataLike,
    out_dir: str | Path,
    *,
    method: str = "dap",
    tau: float | None = None,
    omega: int | None = None,
    deep_layer: int | None = None,
    deep_tau: float | None = None,
    deep_omega: int | None = None,
    rule: str | None = None,
    position: str | None = None,
    layer: int | None = None,
    retention: float | None = None,
    kv_tau: float | None = None,
    kv_ratio: float | None = None,
    sweep_tau: Sequence[float] = (),
    sweep_retention: Sequence[float] = (),
    sweep_layers: Sequence[int] = (),
    answer_mode: str = "loglik",
    max_new_tokens: int = 32,
    limit: int | None = None,
    timing_samples: int = 4,
    repeats: int = 3,
    seed: int = 0,
    protocol: str | None = None,
    device: str | None = None,
    dtype: Any = None,
    trust_remote_code: bool = False,
    progress: bool = False,
) -> CompressionResult:
    """Speech-token merging against the unmerged model on the same samples (``speechgap compress``).

    ``method``: ``ap-input``, ``ap-deep``, ``dap`` (Affinity Pooling, paper 2), ``oracle-random`` /
    ``oracle-uniform`` / ``oracle-merge`` (paper 2's oracle compression at ``layer`` to ``retention``),
    ``tome``, ``kv-merge`` (paper 3's KV token merging: ``kv_tau`` 0.90, ``kv_ratio`` 0.25, layers 7..21
    of 28 mapped proportionally). A merge setting left None takes paper 2's Qwen2-Audio value (:class:`CompressionSpec`:
    tau 0.8, omega 1, deep_tau 0.7, deep_omega 3, rule max, position first, retention 0.25, the deep layer
    29 of 32 mapped proportionally); a setting the method does not read (``retention`` for ``dap``, ``tau``
    for ``oracle-merge``) is refused, naming the ones it does. ``sweep_*``: one variant per value.
    ``protocol``: the prompts of a model loaded here; default ``instructed`` (paper 2's setup: the default
    answer mode ``loglik`` needs an instruction); a loaded ``model`` keeps its own.

    Returns:
        :class:`~speechgap.compression.experiment.CompressionResult` (one variant per setting).
    """
    get_method(method, kind="compression")
    named = {
        "tau": tau, "omega": omega, "deep_layer": deep_layer, "deep_tau": deep_tau, "deep_omega": deep_omega,
        "rule": rule, "position": position, "layer": layer, "retention": retention, "kv_tau": kv_tau,
        "kv_ratio": kv_ratio,
    }  # fmt: skip
    given = {name: value for name, value in named.items() if value is not None}
    check_method_settings(method, given)
    base = CompressionSpec(method=method, seed=seed, **given)
    specs = sweep(
        base, taus=list(sweep_tau), retentions=list(sweep_retention), layers=[int(x) for x in sweep_layers]
    )
    settings = EvalSettings(
        modalities=("speech",),
        answer_mode=answer_mode,
        max_new_tokens=max_new_tokens,
        seed=seed,
        limit=limit,
        protocol=protocol,
    )
    _check_loaded(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, protocol=protocol)
    if isinstance(model, str | Path) and protocol is None:
        protocol = COMPRESS_PROTOCOL
    prepare_out_dir(out_dir)
    pairs = _data(data)
    adapter = _model(
        model, device=device, dtype=dtype, trust_remote_code=trust_remote_code, protocol=protocol
    )
    return run_compression(
        adapter,
        pairs,
        out_dir,
        specs,
        settings,
        timing_samples=timing_samples,
        repeats=repeats,
        progress=progress,
    )


# ---------------------------------------------------------------------------------------------- study


def study(
    zoo: str | Path,
    data: DataLike,
    out_dir: str | Path,
    *,
    answer_mode: str = "generate",
    max_new_tokens: int = 8,
    eval_limit: int | None = None,
    analysis_limit: int | None = None,
    include_layer0: bool = False,
    instruction: str | None = None,
    batch_size: int = EVAL_BATCH_SIZE,
    progress: bool = False,
) -> StudyResult:
    """One point per checkpoint of a zoo: regress the gap on the measures (``speechgap study``, paper 1)."""
    from speechgap.study import run_study

    settings = StudySettings(
        answer_mode=answer_mode,
        max_new_tokens=max_new_tokens,
        eval_limit=eval_limit,
        analysis_limit=analysis_limit,
        include_layer0=include_layer0,
        instruction=instruction,
        batch_size=batch_size,
    )
    prepare_out_dir(out_dir)
    return run_study(zoo, _data(data), out_dir, settings, progress=progress)


# ---------------------------------------------------------------------------------------------- synthesize


@dataclass
class SynthesisResult:
    """What :func:`synthesize` wrote.

    Attributes:
        out_dir: the folder (``manifest.jsonl``, ``audio/``, ``synthesis.json``).
        manifest: the path of ``manifest.jsonl``.
        record: the content of ``synthesis.json`` (engine, speakers, settings, counts, provenance).
    """

    out_dir: Path
    manifest: Path
    record: dict[str, Any]

    @property
    def num_samples(self) -> int:
        """Samples in the manifest (items a quality filter dropped are not counted)."""
        from speechgap.io import read_jsonl

        return sum(1 for _ in read_jsonl(self.manifest))

    @property
    def speakers(self) -> list[str]:
        return list((self.record.get("settings") or {}).get("speakers") or [])

    def pairs(self) -> PairedDataset:
        """The paired samples, loaded lazily."""
        return load_pairs(self.manifest)

    def to_json(self) -> dict[str, Any]:
        """The content of ``synthesis.json``."""
        return self.record

    def to_frame(self) -> Any:
        """One row per sample of the manifest."""
        import pandas as pd

        from speechgap.io import read_jsonl

        return pd.DataFrame([record for _, record in read_jsonl(self.manifest)])

    @classmethod
    def load(cls, out_dir: str | Path) -> SynthesisResult:
        from speechgap.io import read_json

        out_dir = Path(out_dir)
        manifest = out_dir / "manifest.jsonl"
        if not manifest.is_file():
            raise ConfigError(f"{out_dir}: no manifest.jsonl; run `speechgap synthesize` there first")
        return cls(out_dir, manifest, read_json(out_dir / "synthesis.json", what="synthesis record"))

    def __repr__(self) -> str:
        return f"SynthesisResult({str(self.out_dir)!r}: {self.num_samples} samples, {len(self.speakers)} speakers)"


def synthesize(
    items: Any,
    out_dir: str | Path,
    *,
    voices: int | None = None,
    seed: int = 0,
    speaker_split: str | None = None,
    split_fractions: dict[str, float] | str | None = None,
    split_seed: int = 0,
    split_by: str = "voice",
    workers: int | None = None,
    quality_filter: Any = None,
    engine: Any = None,
    progress: bool = False,
) -> SynthesisResult:
    """Text items → paired samples spoken by a multi-speaker TTS (``speechgap synthesize``); resumable.

    Args:
        items: a JSONL file of items or the items as dicts (``id``, ``text``, optional ``choices``,
            ``answer``, ``subset``).
        out_dir: the output folder.
        voices: number of speakers (default: every speaker of the bank or of the split's part).
        seed: chooses the speakers and who speaks which item.
        speaker_split, split_fractions, split_seed, split_by: use one part of a disjoint speaker split.
        workers: processes (default: one per core, max 8, for 64+ items).
        quality_filter: ``filter(audio, sample_rate, text) -> (keep, info)``, e.g.
            :func:`speechgap.synthesis.quality.asr_wer_filter`.
        engine: a :class:`~speechgap.synthesis.engine.TTSEngine`; default espeak-ng.
    """
    from speechgap.synthesis import EspeakEngine, VoiceBank, choose_speakers
    from speechgap.synthesis import synthesize as run_synthesis
    from speechgap.synthesis.voices import parse_fractions

    engine = engine if engine is not None else EspeakEngine()
    fractions = parse_fractions(split_fractions) if isinstance(split_fractions, str) else split_fractions
    bank = choose_speakers(
        VoiceBank.from_engine(engine),
        part=speaker_split,
        fractions=fractions,
        split_seed=split_seed,
        group_by=split_by,  # type: ignore[arg-type]
        n=voices,
        seed=seed,
    )
    manifest = run_synthesis(
        items,
        out_dir,
        voices=bank,
        seed=seed,
        engine=engine,
        workers=workers,
        quality_filter=quality_filter,
        progress=progress,
    )
    return SynthesisResult.load(Path(manifest).parent)
