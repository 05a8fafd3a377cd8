"""Two evaluations of the same samples compared: a baseline run and a treated run (an intervention, a
merging setting). Accuracy of each, the paired four-cell table, McNemar's test, a paired bootstrap interval
of the difference, and the answers that changed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechgap.errors import ConfigError
from speechgap.evaluation.stats import (
    BootstrapGap,
    FourCells,
    McNemarResult,
    four_cells,
    mcnemar,
    paired_bootstrap_gap,
)
from speechgap.io import read_jsonl

RESULTS = "results.jsonl"


@dataclass
class ChangedAnswer:
    """One sample whose answer differs between the two runs."""

    id: str
    baseline_extracted: str | None
    treated_extracted: str | None
    baseline_correct: bool
    treated_correct: bool


@dataclass
class RunComparison:
    """Baseline vs treated on the same samples and modality.

    Attributes:
        modality: the modality compared.
        n: paired samples (present in both runs).
        baseline_accuracy, treated_accuracy: fractions in [0, 1].
        difference: treated − baseline accuracy with a paired bootstrap interval (``BootstrapGap`` with
            the baseline in the first role: its ``gap`` is baseline − treated, so ``difference`` reports
            the negation as ``delta``).
        cells: four cells with "text" = baseline and "speech" = treated: ``both_right``,
            ``only_text_right`` (= only the baseline right), ``only_speech_right`` (= only treated right),
            ``both_wrong``.
        mcnemar: McNemar's test on the discordant pairs.
        changed: samples whose extracted answer changed.
        missing: ids present in only one of the runs (not compared).
    """

    modality: str
    n: int
    baseline_accuracy: float
    treated_accuracy: float
    delta: float
    delta_low: float
    delta_high: float
    cells: FourCells
    mcnemar: McNemarResult
    changed: list[ChangedAnswer] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, record: dict[str, Any]) -> RunComparison:
        """The inverse of :meth:`to_dict` (reads ``comparison.json`` / ``compression.json`` entries)."""
        cells = record["cells"]
        return cls(
            modality=record["modality"],
            n=int(record["n"]),
            baseline_accuracy=float(record["baseline_accuracy"]),
            treated_accuracy=float(record["treated_accuracy"]),
            delta=float(record["delta"]),
            delta_low=float(record["delta_low"]),
            delta_high=float(record["delta_high"]),
            cells=FourCells(
                both_right=int(cells["both_right"]),
                only_text_right=int(cells["only_baseline_right"]),
                only_speech_right=int(cells["only_treated_right"]),
                both_wrong=int(cells["both_wrong"]),
                n=int(cells["n"]),
            ),
            mcnemar=McNemarResult(**record["mcnemar"]),
            changed=[ChangedAnswer(**answer) for answer in record.get("changed", [])],
            missing=list(record.get("missing", [])),
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cells"] = {
            "both_right": self.cells.both_right,
            "only_baseline_right": self.cells.only_text_right,
            "only_treated_right": self.cells.only_speech_right,
            "both_wrong": self.cells.both_wrong,
            "n": self.cells.n,
        }
        return out


def _load(run_dir: Path, modality: str, role: str) -> dict[str, dict[str, Any]]:
    path = run_dir / RESULTS
    if not path.exists():
        raise ConfigError(f"{run_dir}: no {RESULTS}; run the evaluation first")
    records = {}
    for _, record in read_jsonl(path):
        if record["modality"] == modality and record.get("model_role", "lslm") == role:
            if record.get("correct") is None:
                raise ConfigError(f"{path}: record {record['id']!r} is not scored (judge mode needs a judge)")
            records[record["id"]] = record
    return records


def compare_runs(
    baseline_dir: str | Path,
    treated_dir: str | Path,
    *,
    modality: str = "speech",
    role: str = "lslm",
    n_resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> RunComparison:
    """Compare two scored evaluation folders on the samples they share.

    Args:
        baseline_dir, treated_dir: folders written by :func:`speechgap.evaluation.run.evaluate`.
        modality: ``"speech"`` or ``"text"``.
        role: ``"lslm"`` (default) or ``"base"``.
        n_resamples, confidence, seed: the paired bootstrap of the accuracy difference.
    """
    baseline = _load(Path(baseline_dir), modality, role)
    treated = _load(Path(treated_dir), modality, role)
    shared = [sid for sid in baseline if sid in treated]
    if not shared:
        raise ConfigError(f"{baseline_dir} and {treated_dir} share no {modality} records to compare")
    missing = sorted(set(baseline).symmetric_difference(treated))
    base_ok = [bool(baseline[sid]["correct"]) for sid in shared]
    treat_ok = [bool(treated[sid]["correct"]) for sid in shared]
    # the stats are written for (text, speech); here text = baseline, speech = treated
    interval: BootstrapGap = paired_bootstrap_gap(
        base_ok, treat_ok, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    changed = [
        ChangedAnswer(sid, baseline[sid].get("extracted"), treated[sid].get("extracted"), b, t)
        for sid, b, t in zip(shared, base_ok, treat_ok, strict=True)
        if baseline[sid].get("extracted") != treated[sid].get("extracted") or b != t
    ]
    return RunComparison(
        modality=modality,
        n=len(shared),
        baseline_accuracy=sum(base_ok) / len(shared),
        treated_accuracy=sum(treat_ok) / len(shared),
        delta=-interval.gap,
        delta_low=-interval.high,
        delta_high=-interval.low,
        cells=four_cells(base_ok, treat_ok),
        mcnemar=mcnemar(base_ok, treat_ok),
        changed=changed,
        missing=missing,
    )


def format_comparison(comparison: RunComparison, label: str = "treated") -> str:
    """A printed summary: accuracies in percent, Δ with its interval, the four cells, McNemar p."""
    c = comparison
    cells = c.cells

    def points(value: float) -> str:
        return f"{100 * value + 0.0:+.1f}"  # + 0.0 turns -0.0 into 0.0

    lines = [
        f"{c.modality}: n={c.n}  baseline {100 * c.baseline_accuracy:.1f}%  {label} {100 * c.treated_accuracy:.1f}%"
        f"  Δ {points(c.delta)} [{points(c.delta_low)}, {points(c.delta_high)}]"
        f"  McNemar p={c.mcnemar.p_exact:.3g}",
        f"  both right {cells.both_right}, only baseline right {cells.only_text_right}, "
        f"only {label} right {cells.only_speech_right}, both wrong {cells.both_wrong}; "
        f"{len(c.changed)} answers changed"
        + (f" (e.g. {', '.join(a.id for a in c.changed[:5])})" if c.changed else ""),
    ]
    if c.missing:
        lines.append(f"  {len(c.missing)} samples in only one run were not compared")
    return "\n".join(lines)
