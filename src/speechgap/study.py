"""``speechgap study``: across a zoo of checkpoints, regress the gap on the representation measures.

Paper 1's central analysis: one point per model checkpoint, the gap (text − speech accuracy) against the
mean pooled cosine similarity, the mean pooled Euclidean distance and the Alignment Path Score, with a
linear regression and its R², separately for full fine-tuning and LoRA. Each checkpoint is evaluated
(``speechgap eval``) and analysed (``speechgap analyze``) into its own folder, so a study resumes where it
stopped and any checkpoint can be inspected on its own.

A zoo is a folder with a ``zoo.json``: ``{"checkpoints": [{"name": ..., "variant": ..., "path": ...}]}``
(``path`` relative to the folder; default: the folder ``name``). ``speechgap mini train`` writes one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError, DataError
from speechgap.evaluation.run import DEFAULT_BATCH_SIZE
from speechgap.io import RunLock, atomic_write_json, prepare_out_dir, read_json, remove_stale_temp_files

MEASURES = {
    "mean_cosine": ("pooled_cosine", "mean pooled cosine similarity"),
    "mean_euclidean": ("pooled_euclidean", "mean pooled Euclidean distance"),
    "aps_cos": ("aps_cos", "Alignment Path Score (cosine)"),
    "aps_euclid": ("aps_euclid", "Alignment Path Score (Euclidean)"),
}
"""study measure → (per-sample measure in the analysis summary, label)."""


@dataclass
class StudySettings:
    """Settings of a zoo study (recorded in ``study.json``).

    Attributes:
        answer_mode: ``"generate"`` (default: greedy answers, scored by speechgap's scorer) or
            ``"loglik"`` (option letters' log-probabilities: fast and parse-free, for models that answer
            with the letter); passed to the evaluation of every checkpoint.
        max_new_tokens: generation budget when ``answer_mode="generate"``.
        eval_limit: evaluate the first N samples (None: all).
        analysis_limit: analyse the first N samples (None: all).
        include_layer0: whether layer 0 enters the layer means and APS (paper 1 leaves it open).
        instruction: the instruction of both runs (None: the model's default).
        batch_size: samples per generation call.
    """

    answer_mode: str = "generate"
    max_new_tokens: int = 8
    eval_limit: int | None = None
    analysis_limit: int | None = None
    include_layer0: bool = False
    instruction: str | None = None
    batch_size: int = DEFAULT_BATCH_SIZE

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, before any checkpoint is loaded."""
        if self.answer_mode not in ANSWER_MODES:
            raise ConfigError(
                f"argument 'answer_mode' must be one of {', '.join(ANSWER_MODES)}, got {self.answer_mode!r}"
            )
        for name in ("max_new_tokens", "batch_size"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ConfigError(f"argument '{name}' must be a whole number >= 1, got {value!r}")
        for name in ("eval_limit", "analysis_limit"):
            value = getattr(self, name)
            if value is not None and (not _is_int(value) or value < 1):
                raise ConfigError(
                    f"argument '{name}' must be a whole number >= 1 (or None: all), got {value!r}"
                )
        if self.instruction is not None and not isinstance(self.instruction, str):
            raise ConfigError(f"argument 'instruction' must be a string, got {self.instruction!r}")


ANSWER_MODES = ("generate", "loglik")


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass
class CheckpointPoint:
    """One checkpoint's point in the study."""

    name: str
    variant: str
    path: str
    step: int | None
    text_accuracy: float
    speech_accuracy: float
    gap: float
    measures: dict[str, float] = field(default_factory=dict)


def read_zoo(zoo_dir: str | Path, *, minimum: int = 3) -> list[dict[str, Any]]:
    """The speech checkpoints listed in ``zoo_dir/zoo.json`` with resolved paths.

    Args:
        minimum: the fewest speech checkpoints accepted (3 for a study's regression; a sweep takes any).

    Raises:
        ConfigError: no ``zoo.json``; a checkpoint without a model; fewer than ``minimum`` speech checkpoints.
        DataError: a ``zoo.json`` that is not JSON or not shaped as documented, or that lists one name or
            one model folder twice (each checkpoint must be one point of the study).
    """
    zoo_dir = Path(zoo_dir)
    path = zoo_dir / "zoo.json"
    if not path.is_file():
        raise ConfigError(
            f"{zoo_dir}: no zoo.json (a zoo folder lists its checkpoints there; see docs/study.md)"
        )
    zoo = read_json(path, what="zoo record")
    listed = zoo.get("checkpoints")
    if not isinstance(listed, list):
        raise DataError("expected a list of checkpoint objects", path=path, field="checkpoints")
    entries = []
    names: dict[str, int] = {}
    folders: dict[Path, int] = {}
    for k, entry in enumerate(listed):
        where = f"checkpoints[{k}]"
        if not isinstance(entry, dict):
            raise DataError(f"expected an object, got {type(entry).__name__}", path=path, field=where)
        if entry.get("kind", "speech") != "speech":
            continue
        if "name" not in entry or "variant" not in entry:
            raise ConfigError(f"{path}: checkpoint {k} needs 'name' and 'variant'")
        name, variant = entry["name"], entry["variant"]
        for field_name, value in (("name", name), ("variant", variant)):
            if not isinstance(value, str) or not value.strip():
                raise DataError(
                    f"must be a non-empty string, got {value!r}", path=path, field=f"{where}.{field_name}"
                )
        if name in (".", "..") or "/" in name or "\\" in name:
            raise DataError(
                f"{name!r} is not a plain name (it names the checkpoint's folder in the study's output)",
                path=path,
                field=f"{where}.name",
            )
        relative = entry.get("path", name)
        if not isinstance(relative, str) or not relative.strip():
            raise DataError(f"must be a non-empty string, got {relative!r}", path=path, field=f"{where}.path")
        folder = zoo_dir / relative
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{path}: checkpoint {name!r} has no model at {folder}")
        if name in names:
            raise DataError(
                f"checkpoint name {name!r} is listed twice (checkpoints[{names[name]}] and {where}); each "
                "checkpoint is one point of the study",
                path=path,
                field=f"{where}.name",
            )
        resolved = folder.resolve()
        if resolved in folders:
            raise DataError(
                f"checkpoint {name!r} is the model of checkpoints[{folders[resolved]}] again ({folder}); the "
                "same model twice would count as two points of the regression",
                path=path,
                field=f"{where}.path",
            )
        names[name] = k
        folders[resolved] = k
        entries.append({**entry, "path": str(folder)})
    if len(entries) < minimum:
        raise ConfigError(
            f"{path}: a study needs at least {minimum} speech checkpoint{'s' * (minimum != 1)}, "
            f"found {len(entries)}"
        )
    return entries


@dataclass(frozen=True)
class Regression:
    """The linear regression of the gap on one measure over one group of checkpoints (paper 1).

    Attributes:
        n: checkpoints in the group.
        r2, slope, intercept, p_value: the fit (None when there are too few points or no spread).
        note: why there is no fit.
    """

    n: int
    r2: float | None = None
    slope: float | None = None
    intercept: float | None = None
    p_value: float | None = None
    note: str | None = None


@dataclass
class StudyResult:
    """What :func:`run_study` (``speechgap.study``) found: one point per checkpoint and the regressions.

    Attributes:
        out_dir: the study folder (``study.json``, ``checkpoints/<name>/{eval,analysis}``, ``figures/``).
        points: one :class:`CheckpointPoint` per checkpoint.
        regressions: group (a variant, or ``"all"``) -> measure -> :class:`Regression`.
        record: the content of ``study.json``.
    """

    out_dir: Path
    points: list[CheckpointPoint]
    regressions: dict[str, dict[str, Regression]]
    record: dict[str, Any] = field(default_factory=dict)

    def r2(self, group: str, measure: str) -> float | None:
        """R² of the gap on ``measure`` within ``group``."""
        return self.regressions[group][measure].r2

    def to_json(self) -> dict[str, Any]:
        """The content of ``study.json``."""
        return self.record

    def to_frame(self) -> Any:
        """One row per checkpoint: accuracies, gap and every measure."""
        import pandas as pd

        rows = []
        for point in self.points:
            row = {k: v for k, v in asdict(point).items() if k != "measures"}
            rows.append({**row, **point.measures})
        return pd.DataFrame(rows)

    def plot(self, measure: str = "aps_euclid") -> Any:
        """The gap against ``measure``, one point per checkpoint, with the least-squares line."""
        from speechgap.report.figures import scatter_with_fit

        if measure not in MEASURES:
            raise ConfigError(f"argument 'measure' must be one of {', '.join(MEASURES)}, got {measure!r}")
        return scatter_with_fit(
            [p.measures[measure] for p in self.points],
            [100 * p.gap for p in self.points],
            [p.name for p in self.points],
            xlabel=MEASURES[measure][1],
            ylabel="gap: text − speech accuracy (points)",
            title=f"gap vs {MEASURES[measure][1]}",
        )

    @classmethod
    def from_record(cls, out_dir: str | Path, record: dict[str, Any]) -> StudyResult:
        points = [CheckpointPoint(**point) for point in record["points"]]
        regressions = {
            group: {name: Regression(**fit) for name, fit in fits.items()}
            for group, fits in record["regressions"].items()
        }
        return cls(Path(out_dir), points, regressions, record)

    @classmethod
    def load(cls, out_dir: str | Path) -> StudyResult:
        """Reopen a finished ``speechgap study`` folder."""
        from speechgap.io import read_json

        path = Path(out_dir) / "study.json"
        if not path.is_file():
            raise ConfigError(f"{out_dir}: no study.json; run `speechgap study` there first")
        return cls.from_record(out_dir, read_json(path, what="study record"))

    def format(self) -> str:
        return format_study(self.record)

    def __repr__(self) -> str:
        return f"StudyResult({str(self.out_dir)!r}, {len(self.points)} checkpoints)\n{self.format()}"


def run_study(
    zoo_dir: str | Path,
    data: PairedDataset,
    out_dir: str | Path,
    settings: StudySettings | None = None,
    *,
    progress: bool = True,
) -> StudyResult:
    """Evaluate and analyse every checkpoint of a zoo, then regress the gap on each measure.

    Returns:
        :class:`StudyResult`; its :meth:`~StudyResult.to_json` is ``out_dir/study.json``: the points, and per
        variant (and all together) the regression of the gap on each measure (slope, intercept, R²,
        p-value, n).
    """
    settings = settings or StudySettings()
    if not isinstance(settings, StudySettings):
        raise ConfigError(f"argument 'settings' must be a StudySettings, got {type(settings).__name__}")
    entries = read_zoo(zoo_dir)
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="study"):
        for folder in (out_dir, out_dir / "figures"):
            remove_stale_temp_files(folder)
        return _run_study_locked(entries, zoo_dir, data, out_dir, settings, progress)


def _run_study_locked(
    entries: list[dict[str, Any]],
    zoo_dir: str | Path,
    data: PairedDataset,
    out_dir: Path,
    settings: StudySettings,
    progress: bool,
) -> StudyResult:
    from speechgap.analysis import AnalysisSettings, analyze
    from speechgap.evaluation.run import EvalSettings, evaluate
    from speechgap.models import load_model
    from speechgap.provenance import provenance

    points: list[CheckpointPoint] = []
    for entry in entries:
        folder = out_dir / "checkpoints" / entry["name"]
        kwargs = {"instruction": settings.instruction} if settings.instruction else {}
        model = load_model(entry["path"], **kwargs)
        run = evaluate(
            model,
            data,
            folder / "eval",
            EvalSettings(
                answer_mode=settings.answer_mode,
                max_new_tokens=settings.max_new_tokens,
                limit=settings.eval_limit,
                batch_size=settings.batch_size,
            ),
            progress=progress,
        )
        analysis = analyze(
            (model, data),
            folder / "analysis",
            AnalysisSettings(
                include_layer0=settings.include_layer0, limit=settings.analysis_limit, figures=False
            ),
            progress=progress,
        )
        points.append(point_from_runs(entry, run, analysis))
        print(
            f"{entry['name']:<18} text {100 * run.macro.text_accuracy:5.1f}  speech "
            f"{100 * run.macro.speech_accuracy:5.1f}  gap {100 * run.macro.gap:5.1f}  "
            f"cos {points[-1].measures['mean_cosine']:.3f}  APS {points[-1].measures['aps_cos']:.3f}"
        )
    record_provenance = provenance(
        model={"zoo": str(zoo_dir)}, data=data.describe(), settings=asdict(settings)
    )
    return write_study(out_dir, points, record_provenance)


def point_from_runs(entry: dict[str, Any], run: Any, analysis: Any) -> CheckpointPoint:
    """A checkpoint's point from its evaluation (:class:`~speechgap.evaluation.result.EvalResult`) and its
    analysis (:class:`~speechgap.analysis.AnalysisResult`): macro accuracies and the measures' means.

    Args:
        entry: ``name``, ``variant``, ``path`` and optionally ``step`` of the checkpoint.
    """
    per_sample = analysis.summary["per_sample"]
    overall = run.macro
    return CheckpointPoint(
        name=entry["name"],
        variant=entry["variant"],
        path=entry["path"],
        step=entry.get("step"),
        text_accuracy=overall.text_accuracy,
        speech_accuracy=overall.speech_accuracy,
        gap=overall.gap,
        measures={name: per_sample[key]["mean"] for name, (key, _) in MEASURES.items()},
    )


def write_study(
    out_dir: str | Path, points: list[CheckpointPoint], provenance_record: dict[str, Any]
) -> StudyResult:
    """Regress the gap on every measure over ``points`` and write ``study.json`` and ``figures/`` there.

    Args:
        provenance_record: what produced the points (:func:`speechgap.provenance.provenance`).
    """
    out_dir = Path(out_dir)
    regressions = regress_points(points)
    figures = _figures(points, regressions, out_dir / "figures")
    record = {
        "points": [asdict(p) for p in points],
        "regressions": regressions,
        "figures": [str(p.relative_to(out_dir)) for p in figures],
        "measures": {name: label for name, (_, label) in MEASURES.items()},
        "accuracy": "macro: the mean of the subset scores (VoiceBench's Overall, paper 1's Overall)",
        "provenance": provenance_record,
    }
    atomic_write_json(out_dir / "study.json", record)
    return StudyResult.from_record(out_dir, record)


def regress_points(points: list[CheckpointPoint]) -> dict[str, dict[str, Any]]:
    """Per variant and for all points: the linear regression of the gap on each measure (paper 1)."""
    from speechgap.metrics import regression_r2

    groups: dict[str, list[CheckpointPoint]] = {"all": points}
    for point in points:
        groups.setdefault(point.variant, []).append(point)
    out: dict[str, dict[str, Any]] = {}
    for group, members in groups.items():
        out[group] = {}
        gaps = np.array([p.gap for p in members])
        for name in MEASURES:
            values = np.array([np.nan if p.measures[name] is None else p.measures[name] for p in members])
            if not np.isfinite(values).all():
                out[group][name] = {"n": len(members), "r2": None, "note": "a checkpoint has no value"}
                continue
            if len(members) < 3 or np.ptp(values) == 0 or np.ptp(gaps) == 0:
                out[group][name] = {"n": len(members), "r2": None, "note": "too few points or no spread"}
                continue
            if len(set(zip(values.tolist(), gaps.tolist(), strict=True))) < 3:
                # a line through two distinct points always fits: R² = 1 would be an artefact
                out[group][name] = {"n": len(members), "r2": None, "note": "fewer than 3 distinct points"}
                continue
            fit = regression_r2(values, gaps)
            out[group][name] = {
                "n": fit.n,
                "r2": fit.r2,
                "slope": fit.slope,
                "intercept": fit.intercept,
                "p_value": fit.p_value,
            }
    return out


def _figures(points: list[CheckpointPoint], regressions: dict, folder: Path) -> list[Path]:
    from speechgap.report.figures import save_png, scatter_with_fit

    written = []
    for variant in sorted({p.variant for p in points}):
        members = [p for p in points if p.variant == variant]
        if len(members) < 3:
            continue
        for name, (_, label) in MEASURES.items():
            figure = scatter_with_fit(
                [p.measures[name] for p in members],
                [100 * p.gap for p in members],
                [p.name for p in members],
                xlabel=label,
                ylabel="gap: text − speech accuracy (points)",
                title=f"{variant}: gap vs {label}",
            )
            path = folder / f"{variant}_{name}.png"
            save_png(figure, path)
            written.append(path)
    return written


def format_study(study: dict[str, Any]) -> str:
    """The R² table: one row per group (variant, all), one column per measure."""
    names = list(MEASURES)
    lines = [f"{'group':<8}" + "".join(f"{name:>16}" for name in names), "-" * (8 + 16 * len(names))]
    for group, fits in study["regressions"].items():
        cells = []
        for name in names:
            fit = fits[name]
            cells.append(f"{'R² ' + format(fit['r2'], '.2f') if fit['r2'] is not None else '-':>16}")
        lines.append(f"{group:<8}" + "".join(cells))
    return "\n".join(lines)
