"""The typed result of an evaluation: what :func:`speechgap.evaluate` returns and :meth:`EvalResult.load`
reopens from a finished folder, without the model.

    >>> result = speechgap.evaluate(model, "pairs/manifest.jsonl", out_dir="runs/eval")
    >>> result.speech_accuracy, result.gap, result.gap_ci        # macro: mean over subsets
    >>> result.pooled.speech_accuracy                            # pooled: over all samples
    >>> result.per_subset["mmsu"].mcnemar_p
    >>> result.to_frame()                                        # one row per (sample, modality)

Two overall conventions, both always named: ``macro`` (the plain mean of the subset scores, VoiceBench's
Overall) and ``pooled`` (every paired sample together). They differ as soon as subsets differ in size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from speechgap.errors import ConfigError, DataError
from speechgap.io import read_jsonl

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

RESULTS = "results.jsonl"
SUMMARY = "summary.json"


@dataclass(frozen=True)
class Overall:
    """Text and speech scores and the GAP over a whole evaluation, by one named convention.

    Attributes:
        definition: ``"macro"`` (mean of the subset scores) or ``"pooled"`` (all paired samples together).
        text_accuracy, speech_accuracy: fractions in [0, 1] (None when that modality was not run).
        gap: text − speech (fraction; × 100 for points).
        gap_low, gap_high: 95 % paired bootstrap interval of the GAP (stratified by subset for ``macro``);
            None where it is not defined (a judge-scored subset, one modality only).
        n: paired samples (``pooled``) or subsets (``macro``).
        base_text_accuracy: the base text LM's score by the same convention, when one was run.
        mcnemar_p: exact McNemar p over all paired samples (``pooled`` only).
        description: the definition in words, as written to ``summary.json``.
    """

    definition: str
    text_accuracy: float | None
    speech_accuracy: float | None
    gap: float | None
    gap_low: float | None
    gap_high: float | None
    n: int
    base_text_accuracy: float | None = None
    mcnemar_p: float | None = None
    description: str = ""

    @classmethod
    def from_summary(cls, definition: str, row: dict[str, Any]) -> Overall:
        return cls(
            definition=definition,
            text_accuracy=row.get("text_score"),
            speech_accuracy=row.get("speech_score"),
            gap=row.get("gap"),
            gap_low=row.get("gap_low"),
            gap_high=row.get("gap_high"),
            n=int(row.get("n", row.get("n_subsets", 0)) or 0),
            base_text_accuracy=row.get("base_text_score"),
            mcnemar_p=row.get("mcnemar_p"),
            description=row.get("definition", ""),
        )


@dataclass(frozen=True)
class SubsetResult:
    """One subset's figures (judge-scored subsets: scores on the judge's 1–5 scale).

    Attributes:
        subset: the subset name (``"all"`` when the data has none).
        scoring_mode: how its answers were scored (``mcq``, ``bbh``, ``judge``, ...).
        n: paired samples.
        text_accuracy, speech_accuracy, base_text_accuracy: scores (None when not run).
        gap, gap_low, gap_high: text − speech with its paired bootstrap interval.
        mcnemar_p: exact McNemar p (accuracy-scored subsets).
        text_parse_failure_rate, speech_parse_failure_rate: share of answers nothing could be read from.
    """

    subset: str
    scoring_mode: str
    n: int
    text_accuracy: float | None
    speech_accuracy: float | None
    gap: float | None
    gap_low: float | None
    gap_high: float | None
    mcnemar_p: float | None
    text_parse_failure_rate: float | None
    speech_parse_failure_rate: float | None
    base_text_accuracy: float | None

    @classmethod
    def from_summary(cls, subset: str, row: dict[str, Any]) -> SubsetResult:
        paired = row.get("paired") or {}
        gap = paired.get("gap") or row.get("gap") or {}
        return cls(
            subset=subset,
            scoring_mode=row["scoring_mode"],
            n=int(row.get("paired_n") or max(row.get("text_n", 0), row.get("speech_n", 0))),
            text_accuracy=row.get("text_score"),
            speech_accuracy=row.get("speech_score"),
            gap=gap.get("gap"),
            gap_low=gap.get("low"),
            gap_high=gap.get("high"),
            mcnemar_p=(paired.get("mcnemar") or {}).get("p_exact"),
            text_parse_failure_rate=row.get("text_parse_failure_rate"),
            speech_parse_failure_rate=row.get("speech_parse_failure_rate"),
            base_text_accuracy=row.get("base_text_score"),
        )


@dataclass
class EvalResult:
    """An evaluation folder's figures, typed; returned by :func:`speechgap.evaluate` and
    :func:`speechgap.evaluation.report.score_run`.

    Attributes:
        out_dir: the evaluation folder (``results.jsonl``, ``summary.json``, ``run.json``).
        summary: the content of ``summary.json`` exactly as written (what :meth:`to_json` returns).
        written: records written by this call (0 when reopened with :meth:`load`).
        skipped: records already present from an earlier run of the same command.
    """

    out_dir: Path
    summary: dict[str, Any]
    written: int = 0
    skipped: int = 0
    per_subset: dict[str, SubsetResult] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)
        self.per_subset = {
            name: SubsetResult.from_summary(name, row) for name, row in self.summary["subsets"].items()
        }

    # ------------------------------------------------------------------ the two overall conventions
    @property
    def macro(self) -> Overall:
        """Mean over subsets of each subset's score (VoiceBench's Overall)."""
        from speechgap.evaluation.report import overall_rows

        return Overall.from_summary("macro", dict(overall_rows(self.summary))["macro"])

    @property
    def pooled(self) -> Overall:
        """All paired samples together (judge-scored subsets left out)."""
        from speechgap.evaluation.report import pooled_figures

        row = self.summary.get("pooled")
        if row is None:  # a folder scored before the pooled figures existed
            row = pooled_figures(_read_records(self.out_dir), seed=self.seed)
        return Overall.from_summary("pooled", row)

    @property
    def text_accuracy(self) -> float | None:
        """Macro text score (the mean over subsets; see :attr:`pooled` for all samples together)."""
        return self.macro.text_accuracy

    @property
    def speech_accuracy(self) -> float | None:
        """Macro speech score (the mean over subsets)."""
        return self.macro.speech_accuracy

    @property
    def gap(self) -> float | None:
        """Macro GAP = text − speech."""
        return self.macro.gap

    @property
    def gap_ci(self) -> tuple[float | None, float | None]:
        """The macro GAP's 95 % interval (stratified paired bootstrap)."""
        return (self.macro.gap_low, self.macro.gap_high)

    @property
    def protocol(self) -> dict[str, Any]:
        """How answers were scored (``mcq_protocol``, its label, the judge)."""
        return dict(self.summary.get("protocol") or {})

    @property
    def seed(self) -> int:
        return int(((self.summary.get("provenance") or {}).get("settings") or {}).get("seed", 0))

    # ------------------------------------------------------------------ views
    def to_json(self) -> dict[str, Any]:
        """The content of ``summary.json`` (unchanged on disk)."""
        return self.summary

    def to_frame(self) -> pd.DataFrame:
        """One row per (sample, modality[, model role]) with the columns of ``results.jsonl``."""
        import pandas as pd

        return pd.DataFrame(_read_records(self.out_dir))

    def plot(self) -> Figure:
        """Text vs speech score per subset, as bars."""
        from speechgap.report.figures import subset_bars

        return subset_bars(
            [
                {"subset": s.subset, "text_accuracy": s.text_accuracy, "speech_accuracy": s.speech_accuracy}
                for s in self.per_subset.values()
            ]
        )

    @classmethod
    def load(cls, out_dir: str | Path) -> EvalResult:
        """Reopen a finished evaluation folder (no model needed)."""
        out_dir = Path(out_dir)
        path = out_dir / SUMMARY
        if not path.is_file():
            raise ConfigError(
                f"{out_dir}: no {SUMMARY}; run `speechgap eval` there (or `speechgap score {out_dir}`)"
            )
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise DataError(f"not a JSON summary: {err}", path=path) from None
        if not isinstance(summary, dict) or "subsets" not in summary:
            raise DataError("not an evaluation summary (no 'subsets')", path=path)
        return cls(out_dir, summary)

    def format(self) -> str:
        """The printed table (``speechgap eval`` prints it)."""
        from speechgap.evaluation.report import format_table

        return format_table(self.summary)

    def __repr__(self) -> str:
        return f"EvalResult({str(self.out_dir)!r})\n{self.format()}"

    def _repr_html_(self) -> str:
        from speechgap.report.html import result_table

        rows = [
            [s.subset, s.n, _pct(s.text_accuracy), _pct(s.speech_accuracy), _pct(s.gap),
             f"[{_pct(s.gap_low)}, {_pct(s.gap_high)}]", _p(s.mcnemar_p)]
            for s in self.per_subset.values()
        ]  # fmt: skip
        for o in (self.macro, self.pooled):
            rows.append(
                [o.definition, o.n, _pct(o.text_accuracy), _pct(o.speech_accuracy), _pct(o.gap),
                 f"[{_pct(o.gap_low)}, {_pct(o.gap_high)}]", _p(o.mcnemar_p)]
            )  # fmt: skip
        return result_table(
            f"EvalResult: {self.out_dir}",
            ["subset", "n", "text %", "speech %", "GAP", "95% CI", "McNemar p"],
            rows,
        )


def _read_records(out_dir: Path) -> list[dict[str, Any]]:
    path = Path(out_dir) / RESULTS
    if not path.is_file():
        raise ConfigError(f"{out_dir}: no {RESULTS}")
    return [record for _, record in read_jsonl(path)]


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.3g}"
