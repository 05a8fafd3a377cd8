"""``speechgap report DIR``: the report page with the sample explorer, from the folders a run wrote.

It reads, never recomputes: the answers of ``speechgap eval`` (``results.jsonl``), the per-sample measures and
each sample's matrices of ``speechgap analyze`` (``per_sample.parquet``, ``views/*.npz``), the answers under
the fixes of ``speechgap intervene`` / ``speechgap compress`` (their treated ``results.jsonl``, and for the
merging methods ``lengths.jsonl``'s groups of merged frames), and the audio of the data the run recorded
(``run.json`` / ``analysis.json``; give ``data`` when it moved). No model is loaded.

:func:`explorer_data` gathers the samples (:class:`~speechgap.report.explorer.ExplorerData`);
:func:`build_report` writes the page (``report.html``): the gap table, the figures, and the explorer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speechgap.errors import ConfigError, DataError, SpeechgapError
from speechgap.io import read_json, read_jsonl
from speechgap.report.explorer import ExplorerAnswer, ExplorerData, ExplorerSample

EVAL_FILES = ("run.json", "results.jsonl")
ANALYSIS_FILES = ("analysis.json", "summary.json")


@dataclass
class ReportSources:
    """The folders a report is built from.

    Attributes:
        eval_dir: a ``speechgap eval`` folder (answers, the gap table), or None.
        analysis_dir: a ``speechgap analyze`` folder (measures, matrices, figures), or None.
        fixes: label → a folder of answers under a fix (an intervention's or a merge variant's evaluation).
        merges: label → the ``lengths.jsonl`` of a merging fix (which frames were merged).
    """

    eval_dir: Path | None = None
    analysis_dir: Path | None = None
    fixes: dict[str, Path] = field(default_factory=dict)
    merges: dict[str, Path] = field(default_factory=dict)


def find_sources(folder: str | Path) -> ReportSources:
    """What ``folder`` holds: an eval folder, an analyze folder (whose eval folder it names), or a folder with
    ``eval/`` and ``analysis/`` (``speechgap demo``'s, with its ``interventions/`` and ``compression/``).

    Raises:
        ConfigError: a folder that holds none of them.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"argument 'folder': no such folder: {folder}")
    sources = ReportSources()
    if all((folder / name).is_file() for name in ANALYSIS_FILES):
        sources.analysis_dir = folder
        recorded = read_json(folder / "analysis.json", what="analysis record").get("eval_dir")
        if recorded and (Path(recorded) / "results.jsonl").is_file():
            sources.eval_dir = Path(recorded)
    elif all((folder / name).is_file() for name in EVAL_FILES):
        sources.eval_dir = folder
    else:
        if all((folder / "eval" / name).is_file() for name in EVAL_FILES):
            sources.eval_dir = folder / "eval"
        if all((folder / "analysis" / name).is_file() for name in ANALYSIS_FILES):
            sources.analysis_dir = folder / "analysis"
        for run in sorted((folder / "interventions").glob("*/results.jsonl")):
            if run.parent.name != "baseline":
                sources.fixes[run.parent.name] = run.parent
        for run in sorted((folder / "compression").glob("*/results.jsonl")):
            if run.parent.name != "baseline":
                sources.fixes[run.parent.name] = run.parent
                if (run.parent / "lengths.jsonl").is_file():
                    sources.merges[run.parent.name] = run.parent / "lengths.jsonl"
    if sources.eval_dir is None and sources.analysis_dir is None:
        raise ConfigError(
            f"{folder} holds no run to report: give a `speechgap eval` folder (run.json, results.jsonl), a "
            "`speechgap analyze` folder (analysis.json, summary.json) or a folder with eval/ and analysis/"
        )
    return sources


def _answers(run_dir: Path, modality: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(id, modality): record}`` of the speech LLM's answers in an evaluation folder."""
    path = run_dir / "results.jsonl"
    if not path.is_file():
        raise DataError("answers not found (expected results.jsonl from an evaluation)", path=path)
    answers = {}
    for line, record in read_jsonl(path):
        for key in ("id", "modality"):
            if key not in record:
                raise DataError("record without this field", path=path, line=line, field=key)
        if record.get("model_role", "lslm") != "lslm" or (modality and record["modality"] != modality):
            continue
        answers[(str(record["id"]), str(record["modality"]))] = record
    return answers


def _answer(record: dict[str, Any] | None) -> ExplorerAnswer | None:
    if record is None:
        return None
    return ExplorerAnswer(
        response=record.get("response"),
        extracted=record.get("extracted"),
        correct=record.get("correct"),
        parsed=record.get("parsed"),
    )


_TOKEN_MARKS = {"Ġ": " ", "▁": " ", "Ċ": "⏎", "ĉ": "⇥"}


def display_token(token: str) -> str:
    """A tokenizer's token as a reader sees it: byte-level BPE's ``Ġ`` (GPT-2, Qwen) and SentencePiece's ``▁``
    as spaces, ``Ċ`` as ⏎."""
    return "".join(_TOKEN_MARKS.get(ch, ch) for ch in token)


def _data_of(sources: ReportSources) -> dict[str, Any] | None:
    """The data description the run recorded (``run.json`` or ``analysis.json``)."""
    if sources.eval_dir is not None:
        return read_json(sources.eval_dir / "run.json", what="run record").get("data")
    if sources.analysis_dir is not None:
        return (
            read_json(sources.analysis_dir / "analysis.json", what="analysis record").get("source") or {}
        ).get("data")
    return None


def _load_data(description: dict[str, Any] | None, data: Any) -> tuple[Any, str | None]:
    """The paired dataset for the audio: ``data`` as given, or reloaded from the recorded description."""
    from speechgap.data.load import load_pairs
    from speechgap.data.types import PairedDataset

    if isinstance(data, PairedDataset):
        return data, None
    if data is not None:
        return load_pairs(data), None
    if not description or not description.get("path"):
        return None, "the run does not record where its data is; give argument 'data' to hear the samples"
    try:
        return (
            load_pairs(
                description["path"],
                subset=description.get("subset"),
                split=description.get("split"),
                loader=description.get("loader"),
            ),
            None,
        )
    except SpeechgapError as err:
        return None, f"the run's data did not load ({err}); give argument 'data' to hear the samples"


MAX_AUDIO_BYTES = 30_000_000
"""The audio a page embeds at most (Ogg Vorbis bytes); the clips of the samples after it are left out."""


def explorer_data(
    sources: ReportSources,
    *,
    data: Any = None,
    title: str = "Samples",
    audio: bool = True,
    max_audio_bytes: int = MAX_AUDIO_BYTES,
) -> ExplorerData:
    """Every analysed sample (every evaluated one without an analysis) with its answers, measures, matrices,
    audio and the answers under each fix.

    Args:
        sources: the folders (:func:`find_sources`).
        data: the paired data (a dataset, manifest or ``--data`` spec) when the recorded one moved.
        audio: embed each sample's audio (Ogg Vorbis).
        max_audio_bytes: the audio the page holds at most; the samples after it get none, and a note says so.
    """
    import pyarrow.parquet as pq

    from speechgap.analysis.run import load_sample_view, view_file
    from speechgap.report.explorer import encode_audio

    notes: list[str] = []
    answers = _answers(sources.eval_dir) if sources.eval_dir is not None else {}
    measures: dict[str, dict[str, Any]] = {}
    if sources.analysis_dir is not None:
        table = pq.read_table(sources.analysis_dir / "per_sample.parquet").to_pylist()
        measures = {row["sample_id"]: row for row in table}
        ids = list(measures)
    else:
        ids = list(dict.fromkeys(sample_id for sample_id, _ in answers))
    fixes = {label: _answers(folder, "speech") for label, folder in sources.fixes.items()}
    merges = {
        label: {r["id"]: r.get("groups") for _, r in read_jsonl(path)}
        for label, path in sources.merges.items()
    }
    dataset, problem = _load_data(_data_of(sources), data) if audio else (None, None)
    if problem:
        notes.append(problem)
    position = {sample_id: k for k, sample_id in enumerate(dataset.ids)} if dataset is not None else {}

    samples = []
    audio_bytes = 0
    for sample_id in ids:
        text, speech = answers.get((sample_id, "text")), answers.get((sample_id, "speech"))
        reference = (speech or text or {}).get("reference") or {}
        row = measures.get(sample_id, {})
        sample = dataset[position[sample_id]] if sample_id in position else None
        view = None
        if sources.analysis_dir is not None and view_file(sources.analysis_dir, sample_id).is_file():
            try:
                view = load_sample_view(view_file(sources.analysis_dir, sample_id))
            except DataError as err:
                notes.append(f"sample {sample_id!r} is shown without its matrix: {err}")
        clip, mime = (None, "audio/ogg")
        if sample is not None and audio_bytes <= max_audio_bytes:
            clip, mime = encode_audio(sample.audio, sample.sample_rate)
            audio_bytes += len(clip)
            if audio_bytes > max_audio_bytes:
                clip, left_out = None, len(ids) - len(samples)
                notes.append(
                    f"the audio of the last {left_out} samples is left out to keep the page small (it holds "
                    f"{max_audio_bytes / 1e6:.0f} MB of audio at most)"
                )
        words = (
            (view.word_times if view is not None else None) or (sample.word_times if sample else None) or []
        )
        samples.append(
            ExplorerSample(
                id=sample_id,
                subset=reference.get("subset") or (sample.subset if sample else None),
                speaker=reference.get("speaker") or (sample.speaker if sample else None),
                question=reference.get("text") or (sample.text if sample else ""),
                gold=reference.get("answer") or (sample.answer if sample else None),
                text=_answer(text),
                speech=_answer(speech),
                aps=row.get("aps_cos"),
                pooled_cosine=row.get("pooled_cosine"),
                duration_s=sample.duration_s if sample is not None else row.get("duration_s"),
                audio=clip,
                audio_mime=mime,
                words=[(str(w), float(s), float(e)) for w, s, e in words],
                tokens=[display_token(t) for t in view.tokens] if view is not None else [],
                frame_times=view.frame_times if view is not None else None,
                layers=view.layers if view is not None else [],
                sim=view.sim if view is not None else None,
                argmax=view.argmax if view is not None else None,
                dtw=view.dtw if view is not None else None,
                fixes={
                    label: a
                    for label, runs in fixes.items()
                    if (a := _answer(runs.get((sample_id, "speech"))))
                },
                merged={
                    label: groups[sample_id] for label, groups in merges.items() if groups.get(sample_id)
                },
            )
        )
    if sources.analysis_dir is not None and not any(s.sim is not None for s in samples):
        notes.append(
            "the analysis kept no per-sample matrices (run `speechgap analyze` again into a new folder)"
        )
    return ExplorerData(title=title, samples=samples, notes=notes)


def report_sections(sources: ReportSources, explorer: ExplorerData) -> list[tuple[str, str]]:
    """The page's sections: the gap table, the analysis figures (for print and readers without JavaScript),
    and the explorer."""
    from speechgap.report.explorer import explorer_section
    from speechgap.report.html import figure_block, figure_caption, gap_table

    sections = []
    if sources.eval_dir is not None and (sources.eval_dir / "summary.json").is_file():
        sections.append(
            ("The gap", gap_table(read_json(sources.eval_dir / "summary.json", what="eval summary")))
        )
    sections.append(("Samples", explorer_section(explorer)))
    if sources.analysis_dir is not None:
        figures = "".join(
            figure_block(path, figure_caption(path.stem))
            for path in sorted((sources.analysis_dir / "figures").glob("*.png"))
        )
        if figures:
            sections.append(("Figures", figures))
    return sections


def build_report(
    folder: str | Path,
    *,
    out: str | Path | None = None,
    data: Any = None,
    fixes: Mapping[str, str | Path] | None = None,
    audio: bool = True,
) -> Path:
    """Write the report page of a run folder (``speechgap report DIR``) and return its path.

    Args:
        folder: an eval folder, an analyze folder or a folder with ``eval/`` and ``analysis/``.
        out: the page (default ``folder/report.html``).
        data: the paired data when the run's recorded data moved (for the audio).
        fixes: more label → folder of answers under a fix, beside those found in ``folder``.
        audio: embed the audio.
    """
    from speechgap.io import atomic_write_text
    from speechgap.provenance import provenance
    from speechgap.report.html import build_page

    sources = find_sources(folder)
    for label, run in (fixes or {}).items():
        sources.fixes[label] = Path(run)
    explorer = explorer_data(sources, data=data, audio=audio)
    n = len(explorer.samples)
    record = provenance(data=_data_of(sources), settings={"folder": str(Path(folder).resolve())})
    page = build_page(
        title="speechgap report",
        subtitle=f"{Path(folder).resolve()}: {n} samples",
        reading=[
            "Click a sample to read both answers, hear the question and see its speech × text similarity at any "
            "layer, with the alignment paths. The table filters by subset, by cell and by text.",
        ],
        sections=report_sections(sources, explorer),
        meta={"speechgap": record["speechgap_version"], "created": record["created"], "data": record["data"]},
    )
    target = Path(out) if out is not None else Path(folder) / "report.html"
    atomic_write_text(target, page)
    return target
