"""What a sweep writes at the end, from its jobs' folders: the table, the studies and the report page.

- ``OUT/table.csv``: one row per job (shards left out): model, variant, data, step, status, duration, host
  and the job's headline figures (eval: macro text/speech accuracy and gap; analyze: the means of pooled
  cosine, pooled Euclidean distance and APS; intervene: accuracy without/with, delta, McNemar p; compress:
  the first variant's retention, prefill FLOPs ratio and accuracy delta).
- ``OUT/study/<data>/``: for each dataset on which models were both evaluated and analysed, the zoo study
  of ``speechgap study`` (:func:`speechgap.study.write_study`: one point per model, the regressions of the
  gap on each measure per variant and over all; fewer than 3 points get no fit, and say so).
- ``OUT/jobs/.../report.html``: each finished eval and analyze job's own page with the sample explorer
  (``speechgap report``).
- ``OUT/report.html``: one self-contained page: the jobs with their status and figures, each linked to its own
  page (or its summary); the study tables and figures; the failures with their errors.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from speechgap.sweep.job import DONE_FILES
from speechgap.sweep.spec import Job, SweepSpec, eval_step_for


def _headline(verb: str, out_dir: str | Path) -> dict[str, Any]:
    """The figures a job's row shows, read from its finished folder (empty when it is not finished)."""
    folder = Path(out_dir)
    if not (folder / DONE_FILES[verb]).is_file():
        return {}
    if verb == "eval":
        from speechgap.evaluation.result import EvalResult

        run = EvalResult.load(folder)
        macro = run.macro
        return {
            "text_accuracy": macro.text_accuracy,
            "speech_accuracy": macro.speech_accuracy,
            "gap": macro.gap,
        }
    if verb == "analyze":
        from speechgap.analysis import AnalysisResult
        from speechgap.study import MEASURES

        per_sample = AnalysisResult.load(folder).summary["per_sample"]
        return {name: per_sample[key]["mean"] for name, (key, _) in MEASURES.items()}
    if verb == "intervene":
        from speechgap.interventions.run import InterventionResult

        result = InterventionResult.load(folder)
        if not result.comparisons:
            return {}
        return {
            "baseline_accuracy": result.baseline_accuracy,
            "treated_accuracy": result.treated_accuracy,
            "delta": result.delta,
            "mcnemar_p": result.mcnemar_p,
        }
    from speechgap.compression.experiment import CompressionResult

    variants = CompressionResult.load(folder).variants
    if not variants:
        return {}
    first = variants[0]
    return {
        "variant": first.name,
        "retention": first.retention,
        "flops_ratio": first.flops_ratio,
        "baseline_accuracy": first.baseline_accuracy,
        "treated_accuracy": first.accuracy,
        "delta": first.accuracy_delta,
        "mcnemar_p": first.comparison.mcnemar.p_exact,
    }


def jobs_frame(statuses: list[Any]) -> Any:
    """One row per job, shards left out: what, status, time, where, and its headline figures."""
    import pandas as pd

    rows = []
    for status in statuses:
        if status.shard is not None:
            continue
        row = {
            "job": status.id,
            "model": status.model,
            "data": status.data,
            "step": status.step,
            "verb": status.verb,
            "status": status.status,
            "duration_s": status.duration_s,
            "host": status.host,
            "records": status.records,
            "error": status.error,
        }
        if status.status == "done":
            row.update(_headline(status.verb, status.out_dir))
        rows.append(row)
    return pd.DataFrame(rows)


@dataclass
class SweepSummary:
    """What :func:`write_summary` wrote.

    Attributes:
        table: ``OUT/table.csv``.
        studies: dataset name → :class:`~speechgap.study.StudyResult`.
        report: ``OUT/report.html``.
    """

    table: Path
    studies: dict[str, Any]
    report: Path


def write_summary(
    out_dir: Path, spec: SweepSpec, jobs: list[Job], statuses: dict[str, Any], record: dict[str, Any]
) -> SweepSummary:
    """Write ``table.csv``, the studies and ``report.html``."""
    from speechgap.io import atomic_write_text

    ordered = [statuses[job.id] for job in jobs]
    _job_reports(ordered)
    frame = jobs_frame(ordered)
    atomic_write_text(out_dir / "table.csv", frame.to_csv(index=False))
    studies = _studies(out_dir, spec, statuses)
    page = _page(out_dir, frame, studies, ordered, record)
    report = out_dir / "report.html"
    atomic_write_text(report, page)
    return SweepSummary(out_dir / "table.csv", studies, report)


def _job_reports(statuses: list[Any]) -> None:
    """Each finished eval and analyze job's own page with the sample explorer (``speechgap report``), in its
    folder; a page that cannot be built is noted on the job (``report_error``) and the sweep goes on."""
    from speechgap.errors import SpeechgapError
    from speechgap.explore import build_report

    for status in statuses:
        if status.shard is not None or status.status != "done" or status.verb not in ("eval", "analyze"):
            continue
        try:
            build_report(status.out_dir)
        except SpeechgapError as err:
            status.report_error = str(err)


def _studies(out_dir: Path, spec: SweepSpec, statuses: dict[str, Any]) -> dict[str, Any]:
    """Per dataset: the zoo study over the models whose eval and analyze steps are both done."""
    from speechgap.analysis import AnalysisResult
    from speechgap.evaluation.result import EvalResult
    from speechgap.provenance import provenance
    from speechgap.study import point_from_runs, write_study

    studies = {}
    for data in spec.data:
        analyses = [s for s in spec.steps if s.verb == "analyze" and s.covers(data.name)]
        linked = [(s, eval_step_for(spec.steps, s, data.name)) for s in analyses]
        linked = [(analyze_step, eval_step) for analyze_step, eval_step in linked if eval_step is not None]
        if not linked:
            continue
        analyze_step, eval_step = linked[0]
        points = []
        for model in spec.models:
            run = statuses[f"{model.name}/{data.name}/{eval_step.name}"]
            analysis = statuses[f"{model.name}/{data.name}/{analyze_step.name}"]
            if run.status != "done" or analysis.status != "done":
                continue
            entry = {"name": model.name, "variant": model.variant, "path": model.path, "step": model.step}
            points.append(
                point_from_runs(entry, EvalResult.load(run.out_dir), AnalysisResult.load(analysis.out_dir))
            )
        if not points:
            continue
        record = provenance(
            model=[p.name for p in points],
            data={"name": data.name, "spec": data.spec},
            settings={
                "eval": eval_step.settings,
                "analyze": analyze_step.settings,
                "from": "speechgap sweep",
            },
        )
        studies[data.name] = write_study(out_dir / "study" / data.name, points, record)
    return studies


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _page(
    out_dir: Path, frame: Any, studies: dict[str, Any], statuses: list[Any], record: dict[str, Any]
) -> str:
    from speechgap.report.html import build_page, figure_block

    fixed = ["job", "model", "data", "step", "verb", "status", "duration_s", "host", "records", "error"]
    figures = [c for c in frame.columns if c not in fixed]
    head = "".join(
        f"<th>{html.escape(name)}</th>" for name in ["job", "status", "time (s)", "host", *figures]
    )
    rows = []
    for row in frame.to_dict("records"):
        status = next(s for s in statuses if s.id == row["job"])
        folder = Path(status.out_dir)
        target = folder / "report.html"
        if not target.is_file():
            target = folder / DONE_FILES[status.verb]
        link = html.escape(str(_relative(target if target.is_file() else folder, out_dir)))
        cells = [f'<td><a href="{link}">{html.escape(row["job"])}</a></td>',
                 f"<td>{html.escape(row['status'])}</td>",
                 f"<td class=num>{_fmt(row['duration_s'])}</td>",
                 f"<td>{html.escape(_fmt(row['host']))}</td>"]  # fmt: skip
        cells += [f"<td class=num>{html.escape(_fmt(row.get(name)))}</td>" for name in figures]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    sections = [("Jobs", f"<table><tr>{head}</tr>{''.join(rows)}</table>")]
    for name, study in studies.items():
        content = f"<pre>{html.escape(study.format())}</pre>"
        for figure in study.record.get("figures", []):
            content += figure_block(study.out_dir / figure, f"{name}: {Path(figure).stem}")
        sections.append((f"Study on {name}: the gap against the measures, one point per model", content))
    failures = [s for s in statuses if s.status in ("failed", "skipped")]
    if failures:
        items = "".join(
            f"<li><b>{html.escape(s.id)}</b> ({s.status}): {html.escape(str(s.error))}</li>" for s in failures
        )
        sections.append(("Failures", f"<ul>{items}</ul>"))
    counts = record["counts"]
    reading = [
        f"{len(statuses)} jobs: {counts['done']} done, {counts['failed']} failed, {counts['skipped']} not run.",
        "Each job's link opens the folder its verb wrote; table.csv holds this table, sweep.json every job's "
        "settings, attempts, hosts and errors.",
    ]
    provenance = record.get("provenance") or {}
    return build_page(
        title="speechgap sweep",
        subtitle=f"{len(record['spec']['models'])} models × {len(record['spec']['data'])} datasets × "
        f"{len(record['spec']['steps'])} steps",
        reading=reading,
        sections=sections,
        meta={
            "engine": record.get("engine"),
            "speechgap": provenance.get("speechgap_version"),
            "created": provenance.get("created"),
        },
    )


def _relative(path: Path, start: Path) -> Path:
    try:
        return path.relative_to(start)
    except ValueError:
        return path
