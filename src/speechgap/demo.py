"""``speechgap demo``: the whole job on the embedded default, ending in a report a researcher would send.

On the shipped mini speech LLM (a Qwen2-Audio checkpoint trained by ``speechgap mini train``) and its
held-out test questions read by held-out speakers: evaluate both modalities (``speechgap eval``), capture
hidden states and compute every measure (``speechgap analyze``), then write ``summary.json``,
``report.html`` (self-contained) and the figures as PNG files. Every step resumes if interrupted.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.data.types import PairedDataset
from speechgap.errors import ConfigError
from speechgap.evaluation.run import DEFAULT_BATCH_SIZE
from speechgap.io import atomic_write_json, atomic_write_text
from speechgap.provenance import provenance

DEMO_PROTOCOL = "instructed"
"""The prompt protocol of the demo: the layout the mini models were trained on (``speechgap.mini.train``:
question, newline, "Answer the question."). Recorded in ``summary.json`` and with the model in every run."""


@dataclass
class DemoSettings:
    """Settings of the demo (recorded in ``summary.json``).

    Attributes:
        n_questions: held-out test questions (at most 258, the mini test split).
        max_new_tokens: generation budget per answer.
        analysis_limit: samples analysed (hidden states, paths, CKA); None = all.
        path_samples: how many samples get an alignment-path figure.
        batch_size: samples per generation call (left-padded; equal to one at a time).
        fixes_limit: samples used for the fixes section (interventions and speech-token merging); 0 skips it.
        dap_tau, dap_deep_tau: the dual Affinity Pooling setting shown (input and deep thresholds); the
            defaults were chosen for the shipped default on the zoo's dev clips (training voices, never the
            test set) as the setting that cuts prefill FLOPs by ≥ 27 % within 1 point (docs/compression.md).
        seed: the mini task's seed (questions, distractors, speakers).
        diagnostics: also run paper 3's diagnostics in the analysis (logit lens, probes, attention
            dispersion, update vectors, path stability).
    """

    n_questions: int = 258
    max_new_tokens: int = 8
    analysis_limit: int | None = None
    path_samples: int = 3
    batch_size: int = DEFAULT_BATCH_SIZE
    fixes_limit: int = 64
    dap_tau: float = 0.98
    dap_deep_tau: float = 0.88
    seed: int = 0
    diagnostics: bool = True

    def __post_init__(self) -> None:
        for name in ("n_questions", "max_new_tokens", "path_samples", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"argument {name!r} must be a whole number >= 1, got {value!r}")
        if self.analysis_limit is not None and self.analysis_limit < 1:
            raise ConfigError(f"argument 'analysis_limit' must be >= 1, got {self.analysis_limit}")
        if self.fixes_limit < 0:
            raise ConfigError(f"argument 'fixes_limit' must be >= 0, got {self.fixes_limit}")


def _shipped_base_lm() -> Path | None:
    """The mini base text LM shipped next to the default checkpoint, if any."""
    from speechgap.mini import CHECKPOINTS_DIR

    for folder in (CHECKPOINTS_DIR / "base_lm", CHECKPOINTS_DIR / "zoo" / "base_lm"):
        if (folder / "config.json").is_file():
            return folder
    return None


def _path_sample_ids(data: PairedDataset, count: int) -> list[str]:
    """Samples to draw alignment paths for: the first of each subset (mini: colour, city, sum), then more."""
    picked: list[str] = []
    seen: set = set()
    for index in range(len(data)):
        if len(picked) == count:
            break
        subset = data[index].subset
        if subset not in seen:
            seen.add(subset)
            picked.append(data.ids[index])
    for sample_id in data.ids:
        if len(picked) == count:
            break
        if sample_id not in picked:
            picked.append(sample_id)
    return picked


def _stage(name: str, started: float) -> None:
    print(f"[{time.time() - started:6.1f} s] {name}", flush=True)


def run_demo(
    out_dir: str | Path,
    settings: DemoSettings | None = None,
    *,
    model_path: str | Path | None = None,
    base_model_path: str | Path | None = None,
    data: PairedDataset | None = None,
    progress: bool = True,
) -> DemoResult:
    """Run the demo into ``out_dir``; returns :class:`DemoResult` (its ``summary`` is ``summary.json``).

    Args:
        out_dir: output folder (``eval/``, ``analysis/``, ``figures/``, ``summary.json``, ``report.html``).
        settings: :class:`DemoSettings`.
        model_path: the speech LLM; default the shipped mini default checkpoint.
        base_model_path: its base text LM, for the split of the gap; default the shipped mini base LM.
        data: the paired test set; default the mini held-out set, synthesized into ``out_dir/pairs``.
        progress: progress bars.
    """
    from speechgap.analysis import AnalysisSettings, analyze
    from speechgap.evaluation.run import EvalSettings, evaluate
    from speechgap.mini import default_model_path
    from speechgap.mini.evalset import fixed_eval_set
    from speechgap.models import load_model
    from speechgap.models.text_lm import load_text_model

    settings = settings or DemoSettings()
    out_dir = Path(out_dir)
    started = time.time()
    if model_path is None:
        model_path = default_model_path()
        base_model_path = base_model_path or _shipped_base_lm()
    if data is None:
        _stage(f"synthesizing {settings.n_questions} held-out questions with held-out speakers", started)
        data = fixed_eval_set(settings.n_questions, seed=settings.seed, out_dir=out_dir / "pairs")

    _stage(f"loading {model_path}", started)
    # the mini models were trained on the "instructed" layout (question, newline, "Answer the question."), not
    # on the default voicebench protocol (question alone); the run records the protocol with the model
    model = load_model(model_path, protocol=DEMO_PROTOCOL)
    base = load_text_model(base_model_path, protocol=DEMO_PROTOCOL) if base_model_path else None

    _stage("evaluating speech and text (speechgap eval)", started)
    run = evaluate(
        model,
        data,
        out_dir / "eval",
        EvalSettings(max_new_tokens=settings.max_new_tokens, batch_size=settings.batch_size),
        base_model=base,
        progress=progress,
    )
    print(run.format())

    _stage("capturing hidden states and computing the measures (speechgap analyze)", started)
    path_ids = _path_sample_ids(data, settings.path_samples)
    analysis = analyze(
        (model, data),
        out_dir / "analysis",
        AnalysisSettings(
            limit=settings.analysis_limit, path_samples=path_ids, diagnostics=settings.diagnostics
        ),
        eval_dir=out_dir / "eval",
        progress=progress,
    )

    fixes = None
    if settings.fixes_limit:
        _stage(
            f"trying fixes on {settings.fixes_limit} samples (speechgap intervene, speechgap compress)",
            started,
        )
        fixes = run_fixes(model, data, out_dir, settings, progress=progress)

    _stage("writing summary.json, report.html and figures", started)
    figures = out_dir / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    for png in sorted((out_dir / "analysis" / "figures").glob("*.png")):
        shutil.copyfile(png, figures / png.name)
    summary = _demo_summary(run, analysis.summary)
    summary["fixes"] = fixes
    summary["settings"] = {**asdict(settings), "protocol": model.protocol}
    summary["seconds"] = round(time.time() - started, 1)
    summary["provenance"] = provenance(
        model=model.describe(), data=data.describe(), settings=asdict(settings)
    )
    summary["provenance"]["base_model"] = base.describe() if base is not None else None
    atomic_write_json(out_dir / "summary.json", summary)
    from speechgap.explore import explorer_data, find_sources

    explorer = explorer_data(find_sources(out_dir), data=data)
    atomic_write_text(out_dir / "report.html", demo_page(summary, run.summary, figures, path_ids, explorer))
    _stage(f"done -> {out_dir / 'report.html'}", started)
    return DemoResult(out_dir, summary)


def run_fixes(model, data: PairedDataset, out_dir: Path, settings: DemoSettings, *, progress: bool) -> dict:
    """Paper 1's interventions and paper 2's dual Affinity Pooling on the first ``fixes_limit`` samples."""
    from speechgap.compression.experiment import CompressionSpec, run_compression
    from speechgap.evaluation.run import EvalSettings
    from speechgap.interventions import InterventionSettings, run_intervention

    # an even spread over the set (the mini test split lists its relations one after the other)
    step = max(1, len(data) // settings.fixes_limit)
    data = data.select(range(0, len(data), step)).limit(settings.fixes_limit)
    eval_settings = EvalSettings(max_new_tokens=settings.max_new_tokens)
    interventions = {}
    for method in ("angle", "length"):
        result = run_intervention(
            model,
            data,
            method,
            out_dir / "interventions",
            InterventionSettings(),
            eval_settings,
            progress=progress,
        )
        comparison = result.comparison
        interventions[method] = {
            "settings": result.record.get("intervention"),
            "baseline_accuracy": comparison.baseline_accuracy,
            "treated_accuracy": comparison.treated_accuracy,
            "delta": comparison.delta,
            "delta_ci": [comparison.delta_low, comparison.delta_high],
            "mcnemar_p": comparison.mcnemar.p_exact,
            "changed": len(comparison.changed),
            "n": comparison.n,
        }
    spec = CompressionSpec(method="dap", tau=settings.dap_tau, deep_tau=settings.dap_deep_tau)
    compression = run_compression(
        model,
        data,
        out_dir / "compression",
        [spec],
        eval_settings,
        timing_samples=2,
        repeats=2,
        progress=progress,
    )
    variant = compression.variants[0]
    speed = variant.speed
    return {
        "n": len(data),
        "interventions": interventions,
        "best_intervention": max(interventions, key=lambda m: interventions[m]["delta"]),
        "compression": {
            "name": variant.name,
            "spec": asdict(variant.spec),
            "retention": variant.retention,
            "prefill_flops_ratio": variant.flops_ratio,
            "ttft_ratio": speed.ttft_ratio if speed else None,
            "peak_memory_ratio": speed.peak_memory_ratio if speed else None,
            "kv_cache_ratio": speed.kv_cache_ratio if speed else None,
            "baseline_accuracy": variant.baseline_accuracy,
            "treated_accuracy": variant.accuracy,
            "delta": variant.accuracy_delta,
            "delta_ci": list(variant.accuracy_delta_ci),
        },
    }


def _overall(row: Any) -> dict[str, Any]:
    return {
        "text_accuracy": row.text_accuracy,
        "speech_accuracy": row.speech_accuracy,
        "gap": row.gap,
        "gap_ci": [row.gap_low, row.gap_high],
        "base_text_accuracy": row.base_text_accuracy,
        "n": row.n,
        "definition": row.description,
    }


def _demo_summary(run: Any, analysis_summary: dict[str, Any]) -> dict[str, Any]:
    """The demo's headline numbers from the evaluation (:class:`EvalResult`) and the analysis summary.

    The top-level ``text_accuracy`` / ``speech_accuracy`` / ``gap`` / ``n`` are the ``pooled`` figures (all
    questions together); ``macro`` (the mean of the subset scores, VoiceBench's convention) sits beside them.
    """
    per_layer = analysis_summary["per_layer"]
    cka = analysis_summary.get("cka") or {}
    pooled = _overall(run.pooled)
    return {
        **{
            key: pooled[key] for key in ("n", "text_accuracy", "speech_accuracy", "gap", "base_text_accuracy")
        },
        "pooled": pooled,
        "macro": _overall(run.macro),
        "per_subset": {
            name: {
                "text_accuracy": subset.text_accuracy,
                "speech_accuracy": subset.speech_accuracy,
                "gap": {"gap": subset.gap, "low": subset.gap_low, "high": subset.gap_high},
                "mcnemar_p": subset.mcnemar_p,
                "n": subset.n,
            }
            for name, subset in run.per_subset.items()
        },
        "layers": per_layer["pooled_cosine"]["layers"],
        "include_layer0": analysis_summary["include_layer0"],
        "pooled_cosine_per_layer": per_layer["pooled_cosine"]["mean"],
        "pooled_euclidean_per_layer": per_layer["pooled_euclidean"]["mean"],
        "aps": {
            "cos": analysis_summary["aps"]["cos"]["mean"],
            "euclid": analysis_summary["aps"]["euclid"]["mean"],
            "cos_per_layer": per_layer["aps_cos"]["mean"],
        },
        "word_alignment": {
            key: analysis_summary["per_sample"][key]["mean"]
            for key in ("word_acc_argmax", "word_acc_dtw", "word_acc_uniform")
            if key in analysis_summary["per_sample"]
        },
        "cka": {
            "pairing": cka.get("pairing"),
            "speech_layers": cka.get("speech_layers"),
            "text_layers": cka.get("text_layers"),
            "matrix": cka.get("matrix"),
            "band": cka.get("band"),
        },
        "correctness": analysis_summary.get("correctness"),
        "diagnostics": analysis_summary.get("diagnostics"),
    }


@dataclass
class DemoResult:
    """What :func:`run_demo` wrote.

    Attributes:
        out_dir: the demo folder.
        summary: the content of ``summary.json`` (headline: pooled over all questions; ``macro`` beside).
    """

    out_dir: Path
    summary: dict[str, Any]

    @property
    def evaluation(self) -> Any:
        """The evaluation (:class:`~speechgap.evaluation.result.EvalResult`) of ``out_dir/eval``."""
        from speechgap.evaluation.result import EvalResult

        return EvalResult.load(self.out_dir / "eval")

    @property
    def analysis(self) -> Any:
        """The analysis (:class:`~speechgap.analysis.AnalysisResult`) of ``out_dir/analysis``."""
        from speechgap.analysis import AnalysisResult

        return AnalysisResult.load(self.out_dir / "analysis")

    def to_json(self) -> dict[str, Any]:
        return self.summary

    @classmethod
    def load(cls, out_dir: str | Path) -> DemoResult:
        from speechgap.io import read_json

        return cls(Path(out_dir), read_json(Path(out_dir) / "summary.json", what="demo summary"))


def plain_reading(summary: dict[str, Any]) -> list[str]:
    """A short reading of the numbers, in words; every sentence is derived from the summary."""
    lines = []
    text, speech, gap = summary["text_accuracy"], summary["speech_accuracy"], summary["gap"]
    lines.append(
        f"On {summary['n']} held-out questions, the model answers {100 * text:.1f}% correctly from text and "
        f"{100 * speech:.1f}% from speech: a modality gap of {100 * gap:.1f} points (pooled over all questions)."
    )
    macro = summary.get("macro") or {}
    if macro.get("speech_accuracy") is not None and macro.get("n", 0) > 1:
        lines.append(
            f"Averaged over its {macro['n']} subsets instead (VoiceBench's macro convention), text scores "
            f"{100 * macro['text_accuracy']:.1f}% and speech {100 * macro['speech_accuracy']:.1f}%: a gap of "
            f"{100 * macro['gap']:.1f} points; the two differ because the subsets differ in size."
        )
    if summary.get("base_text_accuracy") is not None:
        base = summary["base_text_accuracy"]
        lines.append(
            f"The base text LM it was built from scores {100 * base:.1f}% on text, so "
            f"{100 * (base - text):.1f} points are lost to fine-tuning (erosion) and {100 * gap:.1f} to the "
            f"speech-text alignment (paper 1's split)."
        )
    cos = np.asarray(summary["pooled_cosine_per_layer"], dtype=float)
    euc = np.asarray(summary["pooled_euclidean_per_layer"], dtype=float)
    layers = summary["layers"]
    if len(cos) >= 2:
        lines.append(
            f"Mean-pooled speech and text states {'grow more' if cos[-1] > cos[0] else 'become less'} aligned in "
            f"direction with depth (cosine {cos[0]:.2f} at layer {layers[0]} → {cos[-1]:.2f} at layer "
            f"{layers[-1]}), while their Euclidean distance {'grows' if euc[-1] > euc[0] else 'shrinks'} "
            f"({euc[0]:.2f} → {euc[-1]:.2f}); paper 1 found both rising in its models."
        )
    aps = summary["aps"]["cos"]
    lines.append(
        f"Token by token, each transcript token finds a best-matching speech frame with cosine {aps:.2f} on "
        f"average over layers (the Alignment Path Score)."
    )
    words = summary.get("word_alignment") or {}
    if words.get("word_acc_argmax") is not None and words.get("word_acc_uniform") is not None:
        lines.append(
            f"That frame lies inside the token's spoken word for {100 * words['word_acc_argmax']:.0f}% of tokens "
            f"(argmax path) against {100 * words['word_acc_uniform']:.0f}% for a uniform, length-proportional "
            f"alignment: {'the model aligns speech to text better than chance timing' if words['word_acc_argmax'] > words['word_acc_uniform'] else 'no better than chance timing'}."
        )
    fixes = summary.get("fixes")
    if fixes:
        best = fixes["interventions"][fixes["best_intervention"]]
        c = fixes["compression"]
        lines.append(
            f"Of the training-free fixes, {fixes['best_intervention']} changes speech accuracy by "
            f"{100 * best['delta']:+.1f} points on {fixes['n']} questions (McNemar p {best['mcnemar_p']:.2g}); "
            f"dual Affinity Pooling keeps {100 * c['retention']:.0f}% of the speech tokens at "
            f"{100 * c['prefill_flops_ratio']:.0f}% of the prefill FLOPs, with speech accuracy "
            f"{100 * c['delta']:+.1f} points."
        )
    lines.extend(diagnostic_reading(summary.get("diagnostics")))
    band = (summary.get("cka") or {}).get("band") or {}
    if band.get("best_layer") and band.get("width"):
        widths = band.get("width") or []
        lines.append(
            f"In cross-layer CKA, speech layers {summary['cka']['speech_layers']} best match text layers "
            f"{band['best_layer']}; the band of near-best text layers is {np.mean(widths):.1f} layers wide on "
            f"average (paper 3 reports ~6 in 7B models)."
        )
    return lines


def diagnostic_reading(diagnostics: dict[str, Any] | None) -> list[str]:
    """Sentences on paper 3's diagnostics, each derived from the summary and set beside the paper's figure."""
    if not diagnostics:
        return []
    lines = []
    overall = diagnostics["dispersion_overall"]
    text, speech = overall["text"], overall["speech"]
    spread = "more thinly" if speech["normalized_entropy"] > text["normalized_entropy"] else "no more thinly"
    lines.append(
        f"At the decision step the attention over the question is spread {spread} in the speech run: 90% of it "
        f"covers {speech['coverage']:.1f} speech tokens against {text['coverage']:.1f} transcript tokens "
        f"(Cov_0.90), the largest single weight is {speech['max_attention']:.2f} against "
        f"{text['max_attention']:.2f}, and the normalized entropy {speech['normalized_entropy']:.2f} against "
        f"{text['normalized_entropy']:.2f} (paper 3, Qwen2.5-Omni: 101 vs 8 tokens, 0.11 vs 0.64, 0.66 vs 0.36)."
    )
    lens = np.asarray([np.nan if v is None else v for v in diagnostics["lens_top1"]], dtype=float)
    if np.isfinite(lens).any():
        best = int(np.nanargmax(lens))
        lines.append(
            f"Read through the logit lens, a transcript token is the top prediction at its aligned speech frame "
            f"for at most {100 * lens[best]:.0f}% of tokens (layer {best})."
        )
    updates = np.asarray([np.nan if v is None else v for v in diagnostics["update_cosine"]], dtype=float)
    if np.isfinite(updates).any():
        lines.append(
            f"The layers' updates to speech frames and to their aligned transcript tokens have a mean cosine of "
            f"{np.nanmean(updates):.2f} per block (paper 3 finds them highly aligned: the same work on both)."
        )
    from speechgap.report.figures import answer_target

    target = answer_target(diagnostics)
    what = "letter" if target == "answer" else "answer (the option's text, the form this model answers in)"
    answer = (diagnostics.get("probes") or {}).get(target)
    top1 = (diagnostics.get(f"{target}_top1") or {}).get("speech") or []
    if top1 and top1[-1] is not None:
        lines.append(
            f"At the last layer the correct {what.split(' (')[0]} is the top prediction at the decision step for "
            f"{100 * top1[-1]:.0f}% of speech runs and "
            f"{100 * (diagnostics[f'{target}_top1']['text'][-1] or 0):.0f}% of text runs."
        )
    if answer:
        speech_probe = answer["speech"]["linear"]
        best = int(np.argmax([p["accuracy"] for p in speech_probe]))
        probe = speech_probe[best]
        wrong = probe.get("subset_accuracy")
        on_wrong = (
            f", and {100 * wrong:.0f}% on the {probe['subset_n']} held-out speech samples the model answered "
            f"wrongly"
            if wrong is not None
            else ""
        )
        lines.append(
            f"A linear probe reads the correct {what} from the speech run's decision-step state with "
            f"{100 * probe['accuracy']:.0f}% held-out accuracy at layer {best} (chance {100 * probe['chance']:.0f}%)"
            f"{on_wrong}; paper 3's reading is that where this stays high the information is there and the "
            f"read-out fails."
        )
    return lines


def demo_page(
    summary: dict[str, Any],
    eval_summary: dict[str, Any],
    figures: Path,
    path_ids: list[str],
    explorer: Any = None,
) -> str:
    """The demo's page; ``explorer``: the samples (:class:`~speechgap.report.explorer.ExplorerData`) for the
    interactive sample explorer after the gap table (the static figures follow, for print)."""
    from speechgap.analysis.run import path_figure_name
    from speechgap.report.html import (
        FIGURE_CAPTIONS,
        PATH_CAPTION,
        build_page,
        figure_block,
        fixes_table,
        gap_table,
    )

    sections = [("The gap", gap_table(eval_summary))]
    if explorer is not None:
        from speechgap.report.explorer import explorer_section

        sections.append(("Samples: listen and look", explorer_section(explorer)))
    if (figures / "layer_curves.png").exists():
        sections.append(
            (
                "Layer by layer",
                figure_block(figures / "layer_curves.png", FIGURE_CAPTIONS["layer_curves"]),
            )
        )
    if (figures / "cka_heatmap.png").exists():
        sections.append(
            (
                "Cross-layer CKA",
                figure_block(figures / "cka_heatmap.png", FIGURE_CAPTIONS["cka_heatmap"]),
            )
        )
    paths = "".join(
        figure_block(figures / path_figure_name(sid), f"Sample {sid}: {PATH_CAPTION}")
        for sid in path_ids
        if (figures / path_figure_name(sid)).exists()
    )
    if paths:
        sections.append(("Alignment paths", paths))
    diagnostic_figures = [
        (f"{stem}.png", FIGURE_CAPTIONS[stem])
        for stem in ("diagnostics_attention", "diagnostics_lens", "diagnostics_probes", "diagnostics_updates")
        if (figures / f"{stem}.png").exists()
    ]
    if diagnostic_figures:
        sections.append(
            (
                "Where the gap arises (paper 3's diagnostics)",
                "".join(figure_block(figures / name, caption) for name, caption in diagnostic_figures),
            )
        )
    if summary.get("fixes"):
        sections.append(("Fixes and speed", fixes_table(summary["fixes"])))
    if (figures / "aps_histogram.png").exists():
        sections.append(
            (
                "APS distribution",
                figure_block(figures / "aps_histogram.png", FIGURE_CAPTIONS["aps_histogram"]),
            )
        )
    model = summary["provenance"]["model"] or {}
    meta = {
        "model": model.get("name_or_path"),
        "family": model.get("family"),
        "data": summary["provenance"]["data"],
        "speechgap": summary["provenance"]["speechgap_version"],
        "git commit": summary["provenance"]["git_commit"],
        "created": summary["provenance"]["created"],
        "run time": f"{summary['seconds']} s",
    }
    return build_page(
        title="speechgap: the modality gap of the embedded mini speech LLM",
        subtitle="Same questions, once spoken and once typed; held-out questions, held-out speakers.",
        reading=plain_reading(summary),
        sections=sections,
        meta=meta,
    )
