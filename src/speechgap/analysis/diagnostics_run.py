"""Paper 3's diagnostics over a dataset: streamed sample by sample, resumable, then probes and a summary.

Outputs in ``out_dir/diagnostics/`` (see ``docs/analysis.md``)::

    run.json             provenance and settings (checked on resume)
    samples.jsonl        one line per sample as it is done (lens, dispersion, updates, path stability),
                         with the sample's content hash
    states/<name>.safetensors
                         the sample's decision-step states and mean-pooled span states per layer and modality
                         (written before its line, so a crash never leaves a line without its states)
    per_layer.parquet    one row per (sample, layer): lens, update cosine, dispersion per run, answer ranks
    summary.json         per-layer means (lens, answer rank, dispersion speech vs text, update cosines), path
                         stability, probes per layer, provenance

Probes (scikit-learn, :func:`speechgap.metrics.fit_probe`), per layer, seeded split: the correct option
letter from the decision-step state (speech run and text run separately; with an evaluation folder also the
held-out accuracy on the speech samples the model answered wrongly), and the modality from the mean-pooled
span states.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.analysis.diagnostics import MODALITIES, answer_letter, answer_word, diagnose_sample
from speechgap.data.types import PairedDataset, sample_hash
from speechgap.errors import ConfigError, DataError
from speechgap.io import JsonlAppender, atomic_write_bytes, atomic_write_json, read_json, read_jsonl
from speechgap.metrics import fit_probe
from speechgap.provenance import provenance

DIAGNOSTICS_DIR = "diagnostics"
PROBE_MIN_SAMPLES = 8
WORD_PROBE_CLASSES = 10
WORD_PROBE_FRAMES = 300
"""At most this many word frames (a seeded sample) train and test the word-identity probe (linear)."""
"""The word-identity probe reads this many most frequent words (each seen at least twice)."""
"""Fewer multiple-choice samples than this: the answer probes are skipped (and the summary says so)."""


@dataclass
class DiagnosticsSettings:
    """Settings of :func:`run_diagnostics` (recorded, compared on resume).

    Attributes:
        base_layer: layer of the DTW path pairing speech frames with transcript tokens.
        stability_layers: base layers whose paths are compared (path stability).
        mass: the ``p`` of Cov_p (paper 3: 0.90).
        probe_kinds: ``"linear"``, ``"mlp"``.
        test_fraction: held-out share of the probes' split.
        seed: seed of the split, the MLP and the bootstrap.
    """

    base_layer: int
    stability_layers: tuple[int, ...] = ()
    mass: float = 0.90
    probe_kinds: tuple[str, ...] = ("linear", "mlp")
    test_fraction: float = 0.3
    seed: int = 0


def _state_file(folder: Path, sample_id: str) -> Path:
    from speechgap.analysis.run import path_file_name

    return folder / "states" / f"{path_file_name(sample_id)}.safetensors"


def _save_states(path: Path, result: Any, pooled: dict[str, np.ndarray], sample_id: str) -> None:
    from safetensors.numpy import save

    tensors = {
        f"decision_{m}": np.ascontiguousarray(v, dtype=np.float32) for m, v in result.decision_states.items()
    }
    tensors.update({f"pooled_{m}": np.ascontiguousarray(v, dtype=np.float32) for m, v in pooled.items()})
    if result.word_states is not None:
        tensors["words"] = np.ascontiguousarray(result.word_states, dtype=np.float32)
    atomic_write_bytes(path, save(tensors, metadata={"id": sample_id}))


def _load_states(path: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load

    if not path.is_file():
        raise DataError(
            "the states of a finished sample are missing; remove the folder to start fresh", path=path
        )
    return load(path.read_bytes())


@dataclass
class DiagnosticsResult:
    """What :func:`run_diagnostics` wrote.

    Attributes:
        folder: ``out_dir/diagnostics``.
        summary: the content of ``diagnostics/summary.json`` (also ``summary.json["diagnostics"]`` of the
            analysis), provenance included.
    """

    folder: Path
    summary: dict[str, Any]

    @property
    def n_samples(self) -> int:
        """Samples diagnosed."""
        return int(self.summary["n_samples"])

    @property
    def answer_form(self) -> str:
        """``"answer"`` (the model answers with the option letter) or ``"answer_word"`` (with its text)."""
        return str(self.summary["answer_form"])

    @property
    def dispersion(self) -> dict[str, dict[str, float]]:
        """Run -> attention statistic (``coverage``, ``max_attention``, ``normalized_entropy``,
        ``span_mass``) averaged over layers and heads."""
        return self.summary["dispersion_overall"]

    def to_json(self) -> dict[str, Any]:
        """The content of ``diagnostics/summary.json``."""
        return self.summary


def run_diagnostics(
    adapter: Any,
    dataset: PairedDataset,
    out_dir: str | Path,
    settings: DiagnosticsSettings,
    *,
    wrong_speech: Sequence[str] | None = None,
    progress: bool = False,
) -> DiagnosticsResult:
    """Every diagnostic of paper 3 over ``dataset``; writes ``diagnostics/`` and returns what it wrote.

    Args:
        adapter: the model.
        dataset: paired samples (the answer read-outs and answer probes use the multiple-choice ones).
        out_dir: the analysis folder; the diagnostics go to ``out_dir/diagnostics``.
        settings: :class:`DiagnosticsSettings`.
        wrong_speech: ids of the samples the model answered wrongly from speech (from an eval run); the
            answer probes then also report their held-out accuracy on these.
        progress: a progress bar.
    """
    folder = Path(out_dir) / DIAGNOSTICS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    # as JSON reads it back (tuples become lists), so that a resumed run compares like with like
    record = {
        "settings": json.loads(json.dumps(asdict(settings))),
        "model": adapter.describe(),
        "data": dataset.describe(),
    }
    run_path = folder / "run.json"
    if run_path.exists():
        earlier = read_json(run_path, what="diagnostics run record")
        if earlier.get("settings") != record["settings"]:
            raise ConfigError(
                f"{folder} holds diagnostics made with other settings ({earlier.get('settings')}); use another "
                "--out or remove the folder to start fresh"
            )
    else:
        atomic_write_json(run_path, {**record, "provenance": provenance()})
    samples = list(dataset)
    if progress:
        from tqdm import tqdm

        samples = tqdm(samples, desc="diagnostics", unit="sample")
    with JsonlAppender(folder / "samples.jsonl", key=lambda r: r["id"], remember=lambda r: r) as sink:
        for sample in samples:
            digest = sample_hash(sample)
            if sink.done(sample.id):
                if sink.remembered(sample.id).get("sample_hash") != digest:
                    raise DataError(
                        f"sample {sample.id!r} changed since its diagnostics were written; remove {folder} to "
                        "start fresh",
                        path=folder / "samples.jsonl",
                    )
                continue
            result = diagnose_sample(
                adapter,
                sample,
                base_layer=settings.base_layer,
                stability_layers=settings.stability_layers,
                mass=settings.mass,
            )
            _save_states(_state_file(folder, sample.id), result, result.pooled_states, sample.id)
            sink.write({**result.to_json(), "word_labels": result.word_labels, "sample_hash": digest})
        lines = {sample.id: sink.remembered(sample.id) for sample in dataset if sink.done(sample.id)}
    write_per_layer_table(folder / "per_layer.parquet", [lines[s.id] for s in dataset if s.id in lines])
    summary = _summarize(folder, dataset, lines, settings, wrong_speech=wrong_speech)
    atomic_write_json(
        folder / "summary.json", {**summary, "provenance": provenance(settings=asdict(settings))}
    )
    # the result holds the file as JSON reads it back, so the analysis summary copies it unchanged
    return DiagnosticsResult(folder, read_json(folder / "summary.json", what="diagnostics summary"))


LAYER_COLUMNS = (
    "lens_top1",
    "lens_rank",
    "update_cosine",
    *(
        f"{m}_{stat}"
        for m in MODALITIES
        for stat in ("normalized_entropy", "max_attention", "coverage", "span_mass")
    ),
    *(f"{target}_rank_{m}" for target in ("answer", "answer_word") for m in MODALITIES),
)
"""Columns of ``diagnostics/per_layer.parquet`` besides ``sample_id`` and ``layer``. ``update_cosine`` and the
dispersion columns at layer l belong to block l (its update, its attention); null at layer 0."""


def write_per_layer_table(path: Path, rows: list[dict[str, Any]]) -> None:
    """One row per (sample, layer) of the per-sample diagnostics, written atomically."""
    import io as _io

    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {"sample_id": [], "layer": [], **{name: [] for name in LAYER_COLUMNS}}
    for row in rows:
        for layer in range(len(row["lens_top1"])):
            values = {
                "lens_top1": row["lens_top1"][layer],
                "lens_rank": row["lens_rank"][layer],
                "update_cosine": row["update_cosine"][layer - 1] if layer >= 1 else None,
            }
            for m in MODALITIES:
                for stat, series in row["dispersion"][m].items():
                    values[f"{m}_{stat}"] = series[layer - 1] if layer >= 1 else None  # block l's attention
                for target in ("answer", "answer_word"):
                    ranks = (row.get(f"{target}_rank") or {}).get(m)
                    values[f"{target}_rank_{m}"] = None if ranks is None else ranks[layer]
            columns["sample_id"].append(row["id"])
            columns["layer"].append(layer)
            for name in LAYER_COLUMNS:
                columns[name].append(values.get(name))
    table = pa.table(
        {
            "sample_id": pa.array(columns["sample_id"], pa.string()),
            "layer": pa.array(columns["layer"], pa.int32()),
            **{name: pa.array(columns[name], pa.float64()) for name in LAYER_COLUMNS},
        }
    )
    buffer = _io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _mean(rows: list[list[float]]) -> list[float | None]:
    array = np.asarray(rows, dtype=np.float64)
    means = np.nanmean(array, axis=0) if array.size else np.array([])
    return [None if not np.isfinite(v) else float(v) for v in means]


def _summarize(
    folder: Path,
    dataset: PairedDataset,
    lines: dict[str, dict[str, Any]],
    settings: DiagnosticsSettings,
    *,
    wrong_speech: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Aggregate the per-sample lines and train the probes from the saved states."""
    ids = [sample.id for sample in dataset if sample.id in lines]
    if not ids:
        raise DataError("no sample has diagnostics to summarize", path=folder / "samples.jsonl")
    rows = [lines[i] for i in ids]
    summary: dict[str, Any] = {
        "n_samples": len(ids),
        "base_layer": settings.base_layer,
        "lens_top1": _mean([r["lens_top1"] for r in rows]),
        "lens_rank_median": _mean([r["lens_rank"] for r in rows]),
        "update_cosine": _mean([r["update_cosine"] for r in rows]),
        "dispersion": {
            m: {
                stat: _mean([r["dispersion"][m][stat] for r in rows])
                for stat in ("normalized_entropy", "max_attention", "coverage", "span_mass")
            }
            for m in MODALITIES
        },
        "path_stability": {
            "layers": rows[0]["path_stability"]["layers"],
            "agreement": np.mean([r["path_stability"]["agreement"] for r in rows], axis=0).tolist(),
        },
    }
    summary["dispersion_overall"] = {
        m: {stat: float(np.nanmean(values)) for stat, values in summary["dispersion"][m].items()}
        for m in MODALITIES
    }
    for key, prefix in (("answer_rank", "answer"), ("answer_word_rank", "answer_word")):
        answered = [r for r in rows if r.get(key)]
        if answered:
            summary[f"{prefix}_rank_median"] = {
                m: [float(v) for v in np.median([r[key][m] for r in answered], axis=0)] for m in MODALITIES
            }
            summary[f"{prefix}_top1"] = {
                m: _mean([[float(x == 0) for x in r[key][m]] for r in answered]) for m in MODALITIES
            }
    summary["answer_form"] = answer_form(summary)
    summary["probes"] = _probes(folder, dataset, ids, settings, wrong_speech, summary["answer_form"])
    summary["probes"]["word"] = _word_probes(
        folder, ids, {i: lines[i].get("word_labels") or [] for i in ids}, settings
    )
    return summary


def _word_probes(
    folder: Path, ids: list[str], labels_by_id: dict[str, list[str]], settings: DiagnosticsSettings
) -> dict[str, Any] | None:
    """Word identity from the speech frame at the middle of each spoken word, per layer (paper 3's probe of
    what the speech frames hold): the :data:`WORD_PROBE_CLASSES` most frequent words seen at least twice."""
    rows, labels = [], []
    for sample_id in ids:
        words = labels_by_id[sample_id]
        if not words:
            continue
        states = _load_states(_state_file(folder, sample_id))["words"]  # (L+1, W, d)
        rows.extend(states[:, k] for k in range(len(words)))
        labels.extend(words)
    if not labels:
        return None
    label_array = np.asarray(labels)
    values, counts = np.unique(label_array, return_counts=True)
    # the most frequent words seen at least twice: enough examples per class for a held-out split, and a
    # probe whose cost does not grow with the vocabulary of the data
    order = np.argsort(-counts, kind="stable")
    frequent = [values[k] for k in order[:WORD_PROBE_CLASSES] if counts[k] >= 2]
    kept = np.isin(label_array, frequent)
    if kept.sum() < PROBE_MIN_SAMPLES or np.unique(label_array[kept]).size < 2:
        return None
    chosen = np.nonzero(kept)[0]
    if chosen.size > WORD_PROBE_FRAMES:  # a seeded sample keeps the probe's cost flat on big datasets
        chosen = np.sort(
            np.random.default_rng(settings.seed).choice(chosen, WORD_PROBE_FRAMES, replace=False)
        )
    features = np.stack([rows[k] for k in chosen])  # (n, L+1, d)
    words = label_array[chosen]
    return {
        "n_frames": int(chosen.size),
        "n_words": int(np.unique(words).size),
        "linear": [
            fit_probe(features[:, layer], words, kind="linear", test_fraction=settings.test_fraction,
                      seed=settings.seed).to_json()
            for layer in range(features.shape[1])
        ],
    }  # fmt: skip


def answer_form(summary: dict[str, Any]) -> str:
    """``"answer"`` (the model answers with the option letter) or ``"answer_word"`` (with the option's text):
    whichever is more often the top prediction at the decision step of the text run's last layer. The answer
    probes read this form only (probing both doubles their cost; the other form is what the model does not
    say)."""

    def last(key: str) -> float:
        values = (summary.get(key) or {}).get("text") or []
        return float(values[-1]) if values and values[-1] is not None else -1.0

    return "answer_word" if last("answer_word_top1") > last("answer_top1") else "answer"


def _probes(
    folder: Path,
    dataset: PairedDataset,
    ids: list[str],
    settings: DiagnosticsSettings,
    wrong_speech: Sequence[str] | None,
    form: str = "answer",
) -> dict[str, Any]:
    by_id = {sample.id: sample for sample in dataset}
    states = {i: _load_states(_state_file(folder, i)) for i in ids}
    layers = next(iter(states.values()))["pooled_speech"].shape[0]
    out: dict[str, Any] = {"layers": list(range(layers))}
    # modality from the mean-pooled spans: speech rows vs text rows
    pooled = np.concatenate(
        [[states[i]["pooled_speech"] for i in ids], [states[i]["pooled_text"] for i in ids]]
    )
    modality = np.array(["speech"] * len(ids) + ["text"] * len(ids))
    if len(ids) * 2 >= PROBE_MIN_SAMPLES:
        out["modality"] = {
            "linear": [fit_probe(pooled[:, layer], modality, kind="linear", test_fraction=settings.test_fraction,
                                 seed=settings.seed).to_json() for layer in range(layers)]
        }  # fmt: skip
    mcq = [i for i in ids if answer_letter(by_id[i]) is not None]
    wrong = set(wrong_speech or ())
    for name, label_of in (("answer", answer_letter), ("answer_word", answer_word)):
        if name != form:
            what = "option's text" if form == "answer_word" else "option letter"
            out[name], out[f"{name}_note"] = None, f"not probed: the model answers with the {what}"
            continue
        out[name], out[f"{name}_note"] = _answer_probes(
            mcq, [str(label_of(by_id[i])).lower() if name == "answer_word" else label_of(by_id[i]) for i in mcq],
            states, settings, wrong if wrong_speech is not None else None, layers,
        )  # fmt: skip
    return out


def _answer_probes(
    mcq: list[str],
    labels: list[Any],
    states: dict[str, dict[str, np.ndarray]],
    settings: DiagnosticsSettings,
    wrong: set[str] | None,
    layers: int,
) -> tuple[dict[str, Any] | None, str | None]:
    """Answer probes (the letter, or the answer word) from the decision-step state, per run and layer."""
    label_array = np.asarray(labels)
    if len(mcq) < PROBE_MIN_SAMPLES or np.unique(label_array).size < 2:
        return None, (
            f"skipped: {len(mcq)} multiple-choice samples with {np.unique(label_array).size} distinct answers "
            f"(needs >= {PROBE_MIN_SAMPLES} and >= 2)"
        )
    subset = np.array([i in wrong for i in mcq]) if wrong is not None else None
    letters = label_array
    out: dict[str, Any] = {}
    for m in MODALITIES:
        features = np.stack([states[i][f"decision_{m}"] for i in mcq])
        out[m] = {
            kind: [
                fit_probe(
                    features[:, layer],
                    letters,
                    kind=kind,
                    test_fraction=settings.test_fraction,
                    seed=settings.seed,
                    subset=subset if m == "speech" else None,
                ).to_json()
                for layer in range(layers)
            ]
            for kind in settings.probe_kinds
        }
    return out, None


def wrong_speech_ids(eval_dir: str | Path) -> list[str]:
    """Ids of the samples an evaluation scored wrong in the speech run (``correct`` false)."""
    path = Path(eval_dir) / "results.jsonl"
    if not path.is_file():
        raise DataError("no results.jsonl: run `speechgap eval` first", path=path)
    return [
        record["id"]
        for _, record in read_jsonl(path)
        if record.get("modality") == "speech" and record.get("correct") is False
    ]
