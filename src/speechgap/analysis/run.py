"""``analyze``: every gap measure over a whole dataset, streamed sample by sample, resumable.

Outputs in ``out_dir`` (see ``docs/analysis.md``)::

    analysis.json          provenance, settings and data fingerprint of the run (checked on resume)
    samples.jsonl          one line per sample as it is done, with the sample's content hash (crash-safe;
                           a rerun skips done samples and refuses samples whose content changed)
    cka_state.npz          the cross-layer CKA accumulator (float64 sums, or the rows), saved atomically
    paths/<name>.npz       base-layer similarity matrix and paths of the --path-samples; <name> is the id
                           made file-safe plus a hash of the id (:func:`path_file_name`), the id is inside
    views/<name>.npz       every sample's cosine matrices, argmax and DTW paths at every analysed layer
                           (float16), for the report's sample explorer
    per_layer.parquet      tidy: one row per (sample, layer)
    per_sample.parquet     one row per sample (+ correctness and logit margins with an eval run)
    cka.npy                (speech layers, text layers) CKA matrix
    summary.json           per-layer mean/std, APS distribution, CKA and band, correlations, provenance
    figures/*.png          layer curves, CKA heat map, APS histogram, alignment paths
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import zipfile
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.analysis.pairing import PAIRINGS
from speechgap.analysis.sample import (
    LAYER_MEASURES,
    PathView,
    SampleView,
    measure_sample,
    path_view,
    sample_view,
)
from speechgap.data.types import PairedDataset, PairedSample, check_shard, sample_hash, shard_range
from speechgap.errors import ConfigError, DataError, ModelError
from speechgap.io import (
    JsonlAppender,
    RunLock,
    atomic_write_bytes,
    atomic_write_json,
    prepare_out_dir,
    read_json,
    read_jsonl,
    remove_stale_temp_files,
)
from speechgap.metrics import CrossLayerCKA, cka_band, relation_to_correctness
from speechgap.provenance import provenance

__all__ = [
    "AnalysisResult",
    "AnalysisSettings",
    "analyze",
    "default_base_layer",
    "load_sample_view",
    "path_file_name",
    "view_file",
]

SAMPLES_FILE = "samples.jsonl"
CKA_STATE_FILE = "cka_state.npz"
RUN_FILE = "analysis.json"

SAMPLE_MEASURES = (
    *(name for name in LAYER_MEASURES if name != "word_acc"),
    "word_acc_argmax",
    "word_acc_dtw",
    "word_acc_uniform",
)
"""Per-sample measure columns of ``per_sample.parquet`` (layer means, word alignment accuracies)."""

CORRELATED_MEASURES = (
    "aps_cos",
    "aps_euclid",
    "pooled_cosine",
    "pooled_euclidean",
    "monotonicity_cos",
    "consistency",
    "standardized_l2",
    "word_acc_argmax",
)
"""Measures related to speech-answer correctness when an eval run is given."""

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MAX_AUTO_BATCH_SIZE = 16
CAPTURE_BUDGET_BYTES = 4 * 2**30
ASSUMED_SPAN_TOKENS = 750  # Qwen2-Audio's 30 s window at 25 positions per second


def auto_batch_size(num_layers: int, hidden_size: int) -> int:
    """Samples per capture pass when :attr:`AnalysisSettings.batch_size` is None: as many as keep one batch's
    float32 captures (``num_layers`` kept layers × :data:`ASSUMED_SPAN_TOKENS` × ``hidden_size``, speech and
    text) within :data:`CAPTURE_BUDGET_BYTES`, at most :data:`MAX_AUTO_BATCH_SIZE`: 16 for the embedded
    default, 5 for a 7B model of 33 layers × 4096 analysed at every layer, 1 at least."""
    per_sample = 2 * 4 * max(1, int(num_layers)) * ASSUMED_SPAN_TOKENS * max(1, int(hidden_size))
    return max(1, min(MAX_AUTO_BATCH_SIZE, CAPTURE_BUDGET_BYTES // per_sample))


_RESUME_KEYS = ("layers", "include_layer0", "cka_pairing", "base_layer", "debiased", "shard", "source")


@dataclass
class AnalysisSettings:
    """Settings of :func:`analyze` (all recorded in every output).

    Attributes:
        layers: layer indices to analyse (model convention: 0 = input to block 1, l = output of block l);
            None = every captured layer (every layer 0..L when running the model).
        include_layer0: whether layer 0 (the input embeddings) is analysed and aggregated. Paper 1 leaves it
            open; default False: APS and the layer means run over decoder-block outputs only.
        cka_pairing: how speech frames are paired with text tokens for cross-layer CKA and standardized L2:
            ``"dtw"`` (paper 3, default), ``"argmax"``, ``"words"``, ``"uniform"``.
        base_layer: the layer whose cosine matrix gives the DTW/argmax pairing and the path figures. None =
            layer 5 (paper 3: paths are stable from layer 5 on) when the model has it, the middle layer of a
            shallower model (see :func:`default_base_layer`).
        path_samples: sample ids whose alignment paths are drawn; None = the first two samples.
        limit: analyse only the first N samples.
        debiased: debiased (unbiased-HSIC) CKA instead of the biased estimator.
        band_tolerance: absolute CKA tolerance of the band (:func:`speechgap.metrics.cka_band`).
        checkpoint_every: save the CKA accumulator after this many samples.
        cka_max_bytes: memory cap for the CKA feature statistics; above it the rows are kept instead
            (:class:`speechgap.metrics.CrossLayerCKA`).
        figures: write ``figures/*.png`` (the path samples' ``paths/*.npz`` are saved either way).
        diagnostics: also run paper 3's diagnostics (logit lens, probes, attention dispersion, update
            vectors, path stability; :mod:`speechgap.analysis.diagnostics_run`) into ``diagnostics/`` and
            ``summary.json["diagnostics"]``; needs a model source (attention and the lens need the model).
        sample_views: save every sample's cosine matrix, argmax and DTW paths at every analysed layer
            (``views/<name>.npz``, float16; :func:`load_sample_view`) for the report's sample explorer
            (``speechgap report``).
        shard: ``(k, K)``: plan the whole run as usual (limit, layers, path samples), then analyse only block
            ``k`` (0-based) of ``K`` contiguous, near-equal blocks of the planned samples
            (:func:`speechgap.data.types.shard_range`); the shards' folders merge into the unsharded run's
            with :func:`speechgap.analysis.shards.merge_analysis_shards`. None = every sample.
        batch_size: samples per forward pass when running the model (right-padded; the states equal one
            sample at a time within float rounding, ~1e-6, so it is not part of a run's identity: a folder
            resumes under another batch size). None (default) = :func:`auto_batch_size` of the model and the
            analysed layers (recorded in ``analysis.json``). Ignored for a captures folder.
    """

    layers: list[int] | None = None
    include_layer0: bool = False
    cka_pairing: str = "dtw"
    base_layer: int | None = None
    path_samples: list[str] | None = None
    limit: int | None = None
    debiased: bool = False
    band_tolerance: float = 0.05
    checkpoint_every: int = 16
    cka_max_bytes: int = 2 * 2**30
    figures: bool = True
    diagnostics: bool = False
    shard: tuple[int, int] | None = None
    sample_views: bool = True
    batch_size: int | None = None

    def __post_init__(self) -> None:
        """Refuse settings that cannot work, before a model is loaded or a file is written."""
        if self.batch_size is not None and not (_is_int(self.batch_size) and self.batch_size >= 1):
            raise ConfigError(f"argument 'batch_size' must be a whole number >= 1, got {self.batch_size!r}")
        if self.cka_pairing not in PAIRINGS:
            raise ConfigError(
                f"argument 'cka_pairing': expected one of {', '.join(PAIRINGS)}, got {self.cka_pairing!r}"
            )
        if self.layers is not None:
            if isinstance(self.layers, (str, bytes)) or not all(_is_int(v) and v >= 0 for v in self.layers):
                raise ConfigError(f"argument 'layers' must be layer indices >= 0, got {self.layers!r}")
        if self.base_layer is not None and not (_is_int(self.base_layer) and self.base_layer >= 0):
            raise ConfigError(f"argument 'base_layer' must be a layer index >= 0, got {self.base_layer!r}")
        if self.path_samples is not None:
            if isinstance(self.path_samples, (str, bytes)) or not all(
                isinstance(v, str) for v in self.path_samples
            ):
                raise ConfigError(
                    f"argument 'path_samples' must be a list of sample ids, got {self.path_samples!r}"
                )
            self.path_samples = list(dict.fromkeys(self.path_samples))
        if self.limit is not None and not (_is_int(self.limit) and self.limit >= 1):
            raise ConfigError(f"argument 'limit' must be a whole number >= 1, got {self.limit!r}")
        if not _is_number(self.band_tolerance) or not math.isfinite(self.band_tolerance):
            raise ConfigError(
                f"argument 'band_tolerance' must be a finite number, got {self.band_tolerance!r}"
            )
        if self.band_tolerance < 0:
            raise ConfigError(f"argument 'band_tolerance' must be >= 0, got {self.band_tolerance}")
        if not (_is_int(self.checkpoint_every) and self.checkpoint_every >= 1):
            raise ConfigError(f"argument 'checkpoint_every' must be >= 1, got {self.checkpoint_every!r}")
        if not isinstance(self.sample_views, bool):
            raise ConfigError(f"argument 'sample_views' must be True or False, got {self.sample_views!r}")
        if not isinstance(self.diagnostics, bool):
            raise ConfigError(f"argument 'diagnostics' must be True or False, got {self.diagnostics!r}")
        if not (_is_int(self.cka_max_bytes) and self.cka_max_bytes >= 0):
            raise ConfigError(
                f"argument 'cka_max_bytes' must be a whole number >= 0, got {self.cka_max_bytes!r}"
            )
        self.shard = check_shard(self.shard, "shard")
        if self.shard is not None and self.diagnostics:
            raise ConfigError(
                "argument 'shard' cannot be combined with argument 'diagnostics': the diagnostics' probes are "
                "trained on all samples together; run the diagnostics unsharded"
            )


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


@dataclass
class AnalysisResult:
    """What :func:`analyze` produced.

    Attributes:
        out_dir: the output folder.
        summary: the content of ``summary.json``.
        cka: the ``(speech layers, text layers)`` CKA matrix, or None when it could not be computed.
        n_samples: samples analysed (skipped ones not counted).
        n_new: samples analysed in this call (the rest came from an earlier, resumed run).
        skipped: ``{sample_id: reason}`` for samples that could not be analysed.
        figures: paths of the PNGs written.
    """

    out_dir: Path
    summary: dict[str, Any]
    cka: np.ndarray | None
    n_samples: int
    n_new: int
    skipped: dict[str, str] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    @property
    def per_layer_path(self) -> Path:
        return self.out_dir / "per_layer.parquet"

    @property
    def per_sample_path(self) -> Path:
        return self.out_dir / "per_sample.parquet"

    # ------------------------------------------------------------------ typed views of the summary
    @property
    def layers(self) -> list[int]:
        """The analysed layers (0 = input to block 1, l = output of block l)."""
        return list(self.summary["per_layer"]["pooled_cosine"]["layers"])

    def layer_means(self, measure: str) -> np.ndarray:
        """Mean over samples of a per-layer measure (``pooled_cosine``, ``pooled_euclidean``, ``aps_cos``,
        ...), shape ``(len(layers),)``; NaN where no sample had a value."""
        stats = self.summary["per_layer"].get(measure)
        if stats is None:
            raise ConfigError(
                f"argument 'measure' must be one of {', '.join(self.summary['per_layer'])}, got {measure!r}"
            )
        return np.array([np.nan if v is None else v for v in stats["mean"]], dtype=np.float64)

    @property
    def pooled_cosine(self) -> np.ndarray:
        """Mean-pooled speech/text cosine similarity per layer (paper 1), ``(len(layers),)``."""
        return self.layer_means("pooled_cosine")

    @property
    def pooled_euclidean(self) -> np.ndarray:
        """Mean-pooled speech/text Euclidean distance per layer (paper 1), ``(len(layers),)``."""
        return self.layer_means("pooled_euclidean")

    @property
    def aps_cos(self) -> float | None:
        """Alignment Path Score (cosine), mean over samples."""
        return self.summary["aps"]["cos"]["mean"]

    @property
    def aps_euclid(self) -> float | None:
        """Alignment Path Score (Euclidean distance), mean over samples."""
        return self.summary["aps"]["euclid"]["mean"]

    @property
    def cka_band(self) -> dict[str, Any] | None:
        """The CKA band: per speech layer its best text layer and the band's width."""
        return (self.summary.get("cka") or {}).get("band")

    @property
    def diagnostics(self) -> dict[str, Any] | None:
        """Paper 3's diagnostics (``summary.json["diagnostics"]``), None unless the run had them."""
        return self.summary.get("diagnostics")

    def to_json(self) -> dict[str, Any]:
        """The content of ``summary.json``."""
        return self.summary

    def to_frame(self) -> Any:
        """One row per analysed sample (``per_sample.parquet`` as a pandas DataFrame)."""
        import pandas as pd

        return pd.read_parquet(self.per_sample_path)

    def per_layer_frame(self) -> Any:
        """One row per (sample, layer) (``per_layer.parquet`` as a pandas DataFrame)."""
        import pandas as pd

        return pd.read_parquet(self.per_layer_path)

    def plot(self) -> Any:
        """The layer curves: pooled cosine, Euclidean distance and APS per layer, mean ± std."""
        from speechgap.report.figures import layer_curves

        return layer_curves(self.summary)

    @classmethod
    def load(cls, out_dir: str | Path) -> AnalysisResult:
        """Reopen a finished ``speechgap analyze`` folder (no model needed)."""
        out_dir = Path(out_dir)
        summary_path = out_dir / "summary.json"
        if not summary_path.is_file():
            raise ConfigError(f"{out_dir}: no summary.json; run `speechgap analyze` there first")
        summary = read_json(summary_path, what="analysis summary")
        if "per_layer" not in summary:
            raise DataError("not an analysis summary (no 'per_layer')", path=summary_path)
        cka_path = out_dir / "cka.npy"
        cka = np.load(cka_path, allow_pickle=False) if cka_path.is_file() else None
        figures = sorted((out_dir / "figures").glob("*.png"))
        skipped = dict(summary.get("skipped") or {})
        return cls(out_dir, summary, cka, int(summary["n_samples"]), 0, skipped, figures)

    def format(self) -> str:
        layer0 = "included" if self.summary.get("include_layer0") else "excluded"
        cosine = ", ".join(f"{v:.3f}" for v in self.pooled_cosine)
        text = (
            f"{self.n_samples} samples, layers {self.layers} (layer 0 {layer0}); "
            f"APS cos {_fmt(self.aps_cos)}, APS euclid {_fmt(self.aps_euclid)}; pooled cosine per layer "
            f"[{cosine}]"
        )
        if self.diagnostics:
            overall = self.diagnostics["dispersion_overall"]
            text += (
                "\ndiagnostics: attention at the decision step, text vs speech: Cov_0.90 "
                f"{overall['text']['coverage']:.1f} vs {overall['speech']['coverage']:.1f} tokens, max weight "
                f"{overall['text']['max_attention']:.2f} vs {overall['speech']['max_attention']:.2f}, normalized "
                f"entropy {overall['text']['normalized_entropy']:.2f} vs {overall['speech']['normalized_entropy']:.2f}"
            )
        return text

    def __repr__(self) -> str:
        return f"AnalysisResult({str(self.out_dir)!r})\n{self.format()}"

    def _repr_html_(self) -> str:
        from speechgap.report.html import result_table

        rows = [
            [layer, f"{cos:.4f}", f"{euc:.4f}", f"{aps:.4f}"]
            for layer, cos, euc, aps in zip(
                self.layers,
                self.pooled_cosine,
                self.pooled_euclidean,
                self.layer_means("aps_cos"),
                strict=True,
            )
        ]
        return result_table(
            f"AnalysisResult: {self.out_dir} ({self.n_samples} samples; APS cos {_fmt(self.aps_cos)})",
            ["layer", "pooled cosine", "pooled Euclidean", "APS cos"],
            rows,
        )


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def default_base_layer(available: Sequence[int], num_layers: int) -> int:
    """Layer 5 when the model has at least 5 blocks, else the middle layer ``ceil(L / 2)``; then the captured
    layer nearest to that (ties: the deeper one).

    Args:
        available: the captured (or capturable) layer indices.
        num_layers: the model's number of decoder blocks L.
    """
    target = 5 if num_layers >= 5 else (num_layers + 1) // 2
    return min(available, key=lambda layer: (abs(layer - target), -layer))


# ----------------------------------------------------------------------------------------------- sources


@dataclass
class _Item:
    sample_id: str
    speech: Any  # Capture
    text: Any  # Capture
    sample: PairedSample | None


class _Source:
    """Uniform access to a capture folder or a model + dataset, one sample at a time."""

    ids: list[str]
    available: list[int]
    num_layers: int
    skipped: dict[str, str]

    def describe(self) -> dict[str, Any]:
        raise NotImplementedError

    def load(self, sample_id: str, layers: list[int]) -> _Item:
        raise NotImplementedError

    def schedule(self, sample_ids: list[str], layers: list[int]) -> None:
        """The samples the run will :meth:`load` at ``layers``, in that order (a source may read ahead)."""
        return None

    def close(self) -> None:
        """Release what the source holds (its worker thread)."""
        return None

    def sample_hash(self, sample_id: str) -> str:
        """A short hash of everything of ``sample_id`` the analysis reads (recorded; checked on resume)."""
        raise NotImplementedError


class _StoreSource(_Source):
    def __init__(self, store: Any, pairs: PairedDataset | None) -> None:
        missing = [m for m in ("speech", "text") if m not in store.modalities]
        if missing:
            raise DataError(
                f"the capture holds no {' or '.join(missing)} run; analyze needs both", path=store.folder
            )
        self.store = store
        self.ids = store.ids
        self.available = store.layers
        model = store.meta.get("model") or {}
        self.num_layers = int(model.get("num_layers") or max(self.available))
        self.skipped = dict(store.skipped)
        self.pairs = pairs if pairs is not None else _pairs_from_capture(store)
        self._pair_index = {} if self.pairs is None else {sid: k for k, sid in enumerate(self.pairs.ids)}
        self._index_lines: dict[str, str] | None = None
        self._last: PairedSample | None = None  # decoded once for its hash and its word timings

    def _pair(self, sample_id: str) -> PairedSample | None:
        index = self._pair_index.get(sample_id)
        if index is None:
            return None
        if self._last is None or self._last.id != sample_id:
            self._last = self.pairs[index]
        return self._last

    def sample_hash(self, sample_id: str) -> str:
        # the capture's index line (tokens, frame times, shard) and the paired sample giving word timings
        if self._index_lines is None:
            # index.jsonl is the capture folder's documented layout; the last line of an id is the one in use
            self._index_lines = {
                str(record["id"]): json.dumps(record, sort_keys=True, default=str)
                for _, record in read_jsonl(Path(self.store.folder) / "index.jsonl")
                if "id" in record and "skipped" not in record
            }
        pair = self._pair(sample_id)
        return _short_hash(json.dumps([self._index_lines.get(sample_id), pair and sample_hash(pair)]))

    def describe(self) -> dict[str, Any]:
        meta = self.store.meta
        return {
            "kind": "captures",
            "folder": str(Path(self.store.folder).resolve()),
            "model": meta.get("model"),
            "data": meta.get("data"),
            "word_times_from": None if self.pairs is None else self.pairs.describe(),
        }

    def load(self, sample_id: str, layers: list[int]) -> _Item:
        sample = self._pair(sample_id)
        return _Item(
            sample_id, self.store.get(sample_id, "speech"), self.store.get(sample_id, "text"), sample
        )


def _pairs_from_capture(store: Any) -> PairedDataset | None:
    """The capture's own manifest, for word timings, when it is a manifest that still exists."""
    data = store.meta.get("data") or {}
    path = data.get("path")
    if data.get("loader") != "manifest" or not path or not Path(path).is_file():
        return None
    from speechgap.data.manifest import read_manifest

    return read_manifest(path, subset=data.get("subset"), check_audio=False)


class _ModelSource(_Source):
    """Captures made on the fly, ``batch_size`` samples per forward pass, the next batch while this one is
    measured.

    :meth:`schedule` tells the source which samples the run will load, in order, and at which layers; they
    are captured in blocks of ``batch_size``, each in one right-padded pass per modality
    (:meth:`SpeechLLM.capture_batch`, equal to one sample at a time within float rounding). A worker thread
    decodes and captures block ``b + 1`` while the caller measures block ``b`` (torch releases the GIL while
    it computes), so at most two blocks are held. Every model call and every read of the dataset happens on
    that one thread, so they never run concurrently. A block that fails (a sample without audio, a clip too
    long, a damaged file) is captured again one sample at a time, so the failing sample alone is skipped or
    raises, as unbatched.
    """

    def __init__(self, adapter: Any, dataset: PairedDataset, batch_size: int = 1) -> None:
        self.adapter = adapter
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.ids = list(dataset.ids)
        self.available = list(range(adapter.num_layers + 1))
        self.num_layers = int(adapter.num_layers)
        self.skipped = {}
        self._index = {sid: k for k, sid in enumerate(self.ids)}
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speechgap-capture")
        self._layers: tuple[int, ...] = ()
        self._blocks: list[list[str]] = []
        self._block_of: dict[str, int] = {}
        self._in_flight: dict[int, Future] = {}
        self._decoded: dict[str, PairedSample] = {}  # read once for its hash and its capture
        self._ready: dict[str, _Item] = {}
        self._alone: set[str] = set()  # samples of a block that failed: read and captured one at a time

    def describe(self) -> dict[str, Any]:
        return {"kind": "model", "model": self.adapter.describe(), "data": self.dataset.describe()}

    def schedule(self, sample_ids: list[str], layers: list[int]) -> None:
        """The samples the run will :meth:`load` at ``layers``, in that order; the first block starts now."""
        self._drop_in_flight()
        self._layers = tuple(layers)
        self._blocks = [
            sample_ids[k : k + self.batch_size] for k in range(0, len(sample_ids), self.batch_size)
        ]
        self._block_of = {sid: b for b, block in enumerate(self._blocks) for sid in block}
        self._decoded.clear()
        self._ready.clear()
        self._start(0)

    def close(self) -> None:
        """Stop the worker (a block still being captured is finished first)."""
        self._drop_in_flight()
        self._worker.shutdown(wait=True, cancel_futures=True)

    def sample_hash(self, sample_id: str) -> str:
        return sample_hash(self._sample(sample_id))

    def load(self, sample_id: str, layers: list[int]) -> _Item:
        if tuple(layers) == self._layers and self._wait_block(sample_id):
            self._decoded.pop(sample_id, None)
            return self._ready.pop(sample_id)
        sample = self._sample(sample_id)
        _, items, error = self._worker.submit(self._read_and_capture, [sample_id], layers, [sample]).result()
        self._decoded.pop(sample_id, None)
        if error is not None:
            raise error
        return items[0]

    def _sample(self, sample_id: str) -> PairedSample:
        if sample_id not in self._decoded and not self._wait_block(sample_id):
            if len(self._decoded) > 2 * self.batch_size:
                self._decoded.clear()
            index = self._index[sample_id]
            self._decoded[sample_id] = self._worker.submit(self.dataset.__getitem__, index).result()
        return self._decoded[sample_id]

    def _wait_block(self, sample_id: str) -> bool:
        """Make ``sample_id``'s scheduled block ready (decoded and captured); False when it is not scheduled,
        or its block failed (it is then read and captured alone)."""
        if sample_id in self._ready:
            return True
        block = self._block_of.get(sample_id)
        if block is None or sample_id in self._alone:
            return False
        future = self._start(block)
        self._start(block + 1)  # captured while this block is measured
        self._in_flight.pop(block, None)
        try:
            samples, items, error = future.result()
        except Exception:  # noqa: BLE001 - a sample of the block cannot be read: each is read alone, to fail alone
            self._alone.update(self._blocks[block])
            return False
        self._decoded.update((sample.id, sample) for sample in samples)
        if (
            error is not None
        ):  # a sample the model refuses: each is captured alone, so that it alone is skipped
            self._alone.update(self._blocks[block])
            return False
        self._ready.update((item.sample_id, item) for item in items)
        return True

    def _start(self, block: int) -> Future | None:
        """The future of ``block``'s capture, submitted to the worker unless it already is."""
        if not 0 <= block < len(self._blocks):
            return None
        if block not in self._in_flight:
            ids = [sid for sid in self._blocks[block] if sid not in self._ready]
            self._in_flight[block] = self._worker.submit(self._read_and_capture, ids, list(self._layers))
        return self._in_flight[block]

    def _drop_in_flight(self) -> None:
        for future in self._in_flight.values():
            future.cancel()
        self._in_flight.clear()

    def _read_and_capture(
        self, sample_ids: list[str], layers: list[int], samples: list[PairedSample] | None = None
    ) -> tuple[list[PairedSample], list[_Item], ModelError | None]:
        """On the worker thread: the samples (read unless given) and their items, or the model's refusal."""
        if samples is None:
            samples = [self.dataset[self._index[sid]] for sid in sample_ids]
        try:
            speech = self.adapter.capture_batch(samples, "speech", layers=layers)
            text = self.adapter.capture_batch(samples, "text", layers=layers)
        except ModelError as error:
            return samples, [], error
        items = [_Item(sample.id, s, t, sample) for sample, s, t in zip(samples, speech, text, strict=True)]
        return samples, items, None


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _open_source(source: Any, pairs: PairedDataset | None) -> _Source:
    from speechgap.models.capture import CaptureStore

    if isinstance(source, CaptureStore):
        return _StoreSource(source, pairs)
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.is_dir():
            raise DataError("captures folder not found", path=folder)
        return _StoreSource(CaptureStore(folder), pairs)
    if isinstance(source, tuple) and len(source) == 2:
        adapter, dataset = source
        if not isinstance(dataset, PairedDataset):
            raise ConfigError("argument 'source': expected (adapter, PairedDataset)")
        return _ModelSource(adapter, dataset)
    raise ConfigError(
        f"argument 'source': expected a CaptureStore, a capture folder or (adapter, dataset), got {type(source)}"
    )


# ----------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class _Plan:
    ids: list[str]
    layers: list[int]
    base_layer: int
    load_layers: list[int]
    path_samples: list[str]


def _plan(source: _Source, settings: AnalysisSettings) -> _Plan:
    available = sorted(source.available)
    if settings.layers is None:
        layers = list(available)
    else:
        layers = sorted({int(layer) for layer in settings.layers})
        bad = [layer for layer in layers if layer not in available]
        if bad:
            raise ConfigError(f"argument 'layers': {bad} not available; the source has layers {available}")
    if not settings.include_layer0:
        layers = [layer for layer in layers if layer != 0]
    if not layers:
        raise ConfigError(
            "argument 'layers': no layer left to analyse (layer 0 excluded: set argument 'include_layer0')"
        )
    if settings.base_layer is None:
        base = default_base_layer(available, source.num_layers)
    else:
        base = int(settings.base_layer)
        if base not in available:
            raise ConfigError(
                f"argument 'base_layer': layer {base} is not available; the source has layers {available}"
            )
    ids = source.ids if settings.limit is None else source.ids[: settings.limit]
    if not ids:
        raise DataError("no samples to analyse (empty capture or dataset)")
    if settings.path_samples is None:
        path_samples = ids[:2]
    else:
        known = set(ids)
        unknown = [sid for sid in settings.path_samples if sid not in known]
        if unknown:
            raise ConfigError(
                f"argument 'path_samples': unknown sample ids {unknown} (not among the analysed samples)"
            )
        path_samples = list(settings.path_samples)
    return _Plan(ids, layers, base, sorted(set(layers) | {base}), path_samples)


def _settings_record(settings: AnalysisSettings, plan: _Plan) -> dict[str, Any]:
    record = asdict(settings)
    record.update(
        shard=None if settings.shard is None else list(settings.shard),  # as JSON reads it back
        layers=plan.layers,
        base_layer=plan.base_layer,
        path_samples=plan.path_samples,
        layer_convention="0 = input to block 1 (embeddings); l >= 1 = output of block l before the final norm",
    )
    return record


# --------------------------------------------------------------------------------------------- eval join


@dataclass(frozen=True)
class _EvalRecord:
    correct: bool | None
    parsed: bool | None
    logit_margin: float | None


def _read_eval(eval_dir: str | Path, ids: Sequence[str]) -> dict[tuple[str, str], _EvalRecord]:
    """``{(id, modality): record}`` of the speech LLM's answers in an eval run, checked against ``ids``."""
    path = Path(eval_dir) / "results.jsonl"
    if not path.is_file():
        raise DataError("eval results not found (expected results.jsonl from `speechgap eval`)", path=path)
    out: dict[tuple[str, str], _EvalRecord] = {}
    for line, record in read_jsonl(path):
        for key in ("id", "modality"):
            if key not in record:
                raise DataError("eval record without this field", path=path, line=line, field=key)
        if record.get("model_role", "lslm") != "lslm":
            continue
        margin = record.get("logit_margin")
        out[(str(record["id"]), str(record["modality"]))] = _EvalRecord(
            correct=record.get("correct"),
            parsed=record.get("parsed"),
            logit_margin=None if margin is None else float(margin),
        )
    eval_ids = {sid for sid, _ in out}
    matched = [sid for sid in ids if sid in eval_ids]
    if not matched:
        sample = sorted(eval_ids)[:3]
        raise DataError(
            f"no analysed sample id is in the eval run (eval ids e.g. {sample}, analysed e.g. {list(ids[:3])}); "
            "was it run on the same data?",
            path=path,
            field="id",
        )
    return out


# ------------------------------------------------------------------------------------------- checkpoint


def _save_cka_state(path: Path, accumulator: CrossLayerCKA, ids: list[str]) -> None:
    """The accumulator's sums (or rows) and the ids they cover, in an .npz written atomically (no pickle)."""
    buffer = io.BytesIO()
    np.savez(buffer, ids=np.array(ids, dtype=str), **accumulator.state_dict())
    atomic_write_bytes(path, buffer.getvalue())


def _load_cka_state(path: Path, settings: AnalysisSettings) -> tuple[CrossLayerCKA, list[str]]:
    if not path.is_file():
        return CrossLayerCKA(debiased=settings.debiased, max_bytes=settings.cka_max_bytes), []
    with np.load(path, allow_pickle=False) as saved:
        # files written before CrossLayerCKA.state_dict existed prefix each sum with "state"
        state = {key.removeprefix("state"): saved[key] for key in saved.files if key != "ids"}
        ids = [str(sid) for sid in saved["ids"]]
    accumulator = CrossLayerCKA.from_state(state, max_bytes=settings.cka_max_bytes)
    if accumulator.debiased != settings.debiased:
        raise ConfigError(f"{path}: the saved CKA state has debiased={accumulator.debiased}")
    return accumulator, ids


# ---------------------------------------------------------------------------------------------- records


def _clean(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _sample_record(measures: Any, notes: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = {"id": measures.sample_id, "layers": measures.layers}
    record["per_layer"] = {
        name: [_clean(v) for v in measures.per_layer[name].tolist()] for name in LAYER_MEASURES
    }
    for key, value in measures.scalars.items():
        record[key] = _clean(value) if isinstance(value, float) else value
    if notes:
        record["notes"] = notes
    return record


def _save_path_view(path: Path, view: PathView, sample_id: str) -> None:
    words = view.word_times or []
    buffer = io.BytesIO()
    np.savez(
        buffer,
        sample_id=np.array(sample_id, dtype=str),
        sim=view.sim,
        argmax=view.argmax,
        dtw=view.dtw,
        frame_times=view.frame_times,
        tokens=np.array(view.tokens, dtype=str),
        words=np.array([w for w, _, _ in words], dtype=str),
        word_spans=np.array([(s, e) for _, s, e in words], dtype=np.float64).reshape(-1, 2),
    )
    atomic_write_bytes(path, buffer.getvalue())


def _sample_view(item: _Item, plan: _Plan) -> SampleView:
    speech, text = item.speech, item.text
    rows_s = [speech.layers.index(layer) for layer in plan.layers]
    rows_t = [text.layers.index(layer) for layer in plan.layers]
    word_times = item.sample.word_times if item.sample is not None else None
    return sample_view(
        speech.hidden[rows_s], text.hidden[rows_t], plan.layers, speech.frame_times, text.tokens, word_times
    )


def _save_sample_view(path: Path, view: SampleView, sample_id: str) -> None:
    """The view as float16 matrices and int32 paths (the DTW paths of all layers end to end, with offsets)."""
    words = view.word_times or []
    offsets = np.cumsum([0, *(len(path) for path in view.dtw)]).astype(np.int64)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        sample_id=np.array(sample_id, dtype=str),
        layers=np.asarray(view.layers, dtype=np.int32),
        sim=view.sim.astype(np.float16),
        argmax=view.argmax,
        dtw=np.concatenate(view.dtw).astype(np.int32).reshape(-1, 2),
        dtw_offsets=offsets,
        frame_times=view.frame_times,
        tokens=np.array(view.tokens, dtype=str),
        words=np.array([w for w, _, _ in words], dtype=str),
        word_spans=np.array([(s, e) for _, s, e in words], dtype=np.float64).reshape(-1, 2),
    )
    # shown only (the explorer), not read back by the analysis: an fsync per sample would cost more than the
    # forward pass of a small model (benchmarks/sample_views_cost.py)
    atomic_write_bytes(path, buffer.getvalue(), durable=False)


def load_sample_view(path: str | Path) -> SampleView:
    """A sample's ``views/*.npz`` (written by :func:`analyze` with ``sample_views``), with float32 matrices.

    Raises:
        DataError: a file that is not such a view (damaged, cut short, or of another kind).
    """
    try:
        return _read_sample_view(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"not a readable sample view ({type(err).__name__}: {err})", path=path) from None


def _read_sample_view(path: str | Path) -> SampleView:
    with np.load(path, allow_pickle=False) as saved:
        offsets = saved["dtw_offsets"]
        dtw = saved["dtw"]
        words = [
            (str(w), float(s), float(e))
            for w, (s, e) in zip(saved["words"], saved["word_spans"], strict=True)
        ]
        return SampleView(
            layers=[int(layer) for layer in saved["layers"]],
            sim=saved["sim"].astype(np.float32),
            argmax=saved["argmax"],
            dtw=[dtw[offsets[k] : offsets[k + 1]] for k in range(len(offsets) - 1)],
            frame_times=saved["frame_times"],
            tokens=[str(t) for t in saved["tokens"]],
            word_times=words or None,
        )


def view_file(out_dir: str | Path, sample_id: str) -> Path:
    """Where :func:`analyze` keeps a sample's explorer view: ``views/<path_file_name(id)>``."""
    return Path(out_dir) / "views" / path_file_name(sample_id)


def _load_path_view(path: Path) -> PathView:
    with np.load(path, allow_pickle=False) as saved:
        words = [
            (str(w), float(s), float(e))
            for w, (s, e) in zip(saved["words"], saved["word_spans"], strict=True)
        ]
        return PathView(
            sim=saved["sim"],
            argmax=saved["argmax"],
            dtw=saved["dtw"],
            frame_times=saved["frame_times"],
            tokens=[str(t) for t in saved["tokens"]],
            word_times=words or None,
        )


_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def path_file_name(sample_id: str) -> str:
    """The file name of a sample's ``paths/*.npz``: the id made file-safe (at most 60 characters) and a hash
    of the whole id, so that two ids never share a file (``"a b"``, ``"a_b"``, ``"a/b"``) and a long id
    still gives a short name. The id itself is stored inside the file (``sample_id``)."""
    stem = _UNSAFE_FILE_CHARS.sub("_", sample_id)[:60] or "sample"
    return f"{stem}-{hashlib.sha256(sample_id.encode('utf-8', 'surrogatepass')).hexdigest()[:12]}.npz"


def path_figure_name(sample_id: str) -> str:
    """The file name of a sample's alignment-path figure under ``figures/`` (collision-free, length-safe)."""
    return f"path_{Path(path_file_name(sample_id)).stem}.png"


def _path_file(out_dir: Path, sample_id: str) -> Path:
    return out_dir / "paths" / path_file_name(sample_id)


def _has_path_file(out_dir: Path, sample_id: str) -> bool:
    """Whether ``paths/`` holds the path view of ``sample_id`` (an older run's files, named by the id alone
    and without the id inside, are not trusted: two ids could have shared one; they are made again)."""
    path = _path_file(out_dir, sample_id)
    if not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as saved:
            return "sample_id" in saved.files and str(saved["sample_id"]) == sample_id
    except (OSError, ValueError):
        return False


# ------------------------------------------------------------------------------------------------ main


def analyze(
    source: Any,
    out_dir: str | Path,
    settings: AnalysisSettings | None = None,
    *,
    eval_dir: str | Path | None = None,
    pairs: PairedDataset | None = None,
    progress: bool = False,
    command: list[str] | None = None,
) -> AnalysisResult:
    """Compute every gap measure per sample and aggregate them over the dataset (issue #4).

    Samples are measured one at a time (captures read lazily, or captured on the fly ``batch_size`` samples
    per forward pass), so memory holds one batch's states plus the CKA accumulator. Each finished sample is appended to ``samples.jsonl`` at once,
    and the CKA accumulator is saved every ``settings.checkpoint_every`` samples; rerunning the same call
    resumes: done samples are skipped, and done samples missing from the saved CKA state (at most
    ``checkpoint_every − 1``) are loaded again for their CKA rows only. Tables, ``cka.npy``, ``summary.json``
    and figures are (re)written atomically at the end.

    Args:
        source: a :class:`~speechgap.models.capture.CaptureStore`, a capture folder, or ``(adapter, dataset)``
            to run the model directly.
        out_dir: output folder (created; an earlier run there with the same settings is resumed).
        settings: :class:`AnalysisSettings`.
        eval_dir: a ``speechgap eval`` output folder; adds correctness/logit margins per sample and the
            relation of each measure to speech correctness.
        pairs: for a capture source, the paired dataset holding word timings (default: the capture's own
            manifest, when it still exists).
        progress: show a progress bar.
        command: the command line, for provenance.

    Returns:
        :class:`AnalysisResult`.

    Raises:
        DataError: missing captures folder or eval results, eval ids that match no sample.
        ConfigError: unknown pairing, layers or base layer not available, settings different from an
            earlier run in ``out_dir``.
    """
    settings = settings or AnalysisSettings()
    if not isinstance(settings, AnalysisSettings):
        raise ConfigError(f"argument 'settings' must be an AnalysisSettings, got {type(settings).__name__}")
    out_dir = prepare_out_dir(out_dir)
    with RunLock(out_dir, command="analyze"):
        for folder in (out_dir, out_dir / "paths", out_dir / "views", out_dir / "figures"):
            remove_stale_temp_files(folder)
        return _analyze_locked(source, out_dir, settings, eval_dir, pairs, progress, command)


def _analyze_locked(
    source: Any,
    out_dir: Path,
    settings: AnalysisSettings,
    eval_dir: str | Path | None,
    pairs: PairedDataset | None,
    progress: bool,
    command: list[str] | None,
) -> AnalysisResult:
    src = _open_source(source, pairs)
    if settings.diagnostics and not isinstance(src, _ModelSource):
        raise ConfigError(
            "argument 'diagnostics' needs the model (attention weights and the logit lens are not in a "
            "captures folder): analyse with the model and the data instead"
        )
    full_plan = _plan(src, settings)
    plan = _shard_plan(full_plan, settings.shard)
    eval_records = _read_eval(eval_dir, plan.ids) if eval_dir is not None else None
    settings_record = _settings_record(settings, plan)
    if isinstance(src, _ModelSource):
        src.batch_size = settings.batch_size or auto_batch_size(
            len(plan.load_layers), src.adapter.hidden_size
        )
        settings_record["batch_size"] = src.batch_size  # the one used, also when chosen automatically
    description = src.describe()
    run_record = provenance(
        model=description.get("model"),
        data=description.get("data"),
        settings=settings_record,
        command=command,
    )
    run_record["source"] = description
    # where the answers joined to this analysis came from (the report's explorer reads them there too)
    run_record["eval_dir"] = str(Path(eval_dir).resolve()) if eval_dir is not None else None
    if src.skipped:
        run_record["capture_skipped"] = src.skipped
    if settings.shard is not None:
        # what the merge needs to rebuild the whole run's plan without the model
        run_record["shard"] = {
            "index": settings.shard[0],
            "count": settings.shard[1],
            "ids": plan.ids,
            "planned_ids": full_plan.ids,
        }
    _check_resume(out_dir / RUN_FILE, run_record)
    samples_path = out_dir / SAMPLES_FILE
    earlier_file = _read_samples(samples_path) if samples_path.is_file() else _SampleFile({}, {})
    earlier = earlier_file.records
    _check_same_data(out_dir, src, plan, earlier)
    atomic_write_json(out_dir / RUN_FILE, run_record)

    state_path = out_dir / CKA_STATE_FILE
    accumulator, in_state = _load_cka_state(state_path, settings)
    in_state_set = set(in_state)
    n_new = 0
    since_checkpoint = 0
    skipped_before = {sid for sid, record in earlier.items() if "skipped" in record}
    # path views lost (or written by an older speechgap, named by the id alone) are made again
    missing_views = {
        sid
        for sid in plan.path_samples
        if sid in earlier and "skipped" not in earlier[sid] and not _has_path_file(out_dir, sid)
    }
    try:
        with JsonlAppender(samples_path, key=lambda r: r["id"]) as sink:
            if not in_state_set <= sink.done_keys or not in_state_set <= set(plan.ids):
                # a CKA state holding samples the sample file lacks belongs to another run, and one holding
                # samples outside this run's (e.g. a smaller --limit, another shard) would mix them in: rebuild it
                accumulator = CrossLayerCKA(debiased=settings.debiased, max_bytes=settings.cka_max_bytes)
                in_state, in_state_set = [], set()
            anchor: tuple[str, _Item] | None = None
            if settings.shard is not None and accumulator.shape is None:
                anchor = _set_anchor_origin(accumulator, src, full_plan, settings)
            src.schedule(
                [
                    sid
                    for sid in plan.ids
                    if not (sink.done(sid) and (sid in in_state_set or sid in skipped_before))
                    and not (anchor is not None and anchor[0] == sid)
                ],
                plan.load_layers,
            )
            for sample_id in _progress(plan.ids, progress):
                done = sink.done(sample_id)
                if done and (sample_id in in_state_set or sample_id in skipped_before):
                    if sample_id in missing_views:
                        _remake_path_view(out_dir, src, sample_id, plan, settings)
                    continue
                content_hash = None
                try:
                    content_hash = src.sample_hash(sample_id)
                    if anchor is not None and anchor[0] == sample_id:
                        item, anchor = anchor[1], None
                    else:
                        item = src.load(sample_id, plan.load_layers)
                    measures, view = _measure(item, plan, settings, want_view=sample_id in plan.path_samples)
                except ModelError as err:
                    if done:
                        raise
                    sink.write({"id": sample_id, "skipped": str(err), "hash": content_hash})
                    in_state.append(sample_id)
                    in_state_set.add(sample_id)
                    continue
                if measures.rows.n_rows:
                    accumulator.update(measures.rows.speech, measures.rows.text)
                in_state.append(sample_id)
                in_state_set.add(sample_id)
                if view is not None and (not done or sample_id in missing_views):
                    _save_path_view(_path_file(out_dir, sample_id), view, sample_id)
                if settings.sample_views and not done:
                    _save_sample_view(view_file(out_dir, sample_id), _sample_view(item, plan), sample_id)
                if not done:
                    sink.write({**_sample_record(measures, measures.notes), "hash": content_hash})
                    n_new += 1
                since_checkpoint += 1
                if since_checkpoint >= settings.checkpoint_every:
                    sink.commit()  # the CKA state never covers a sample whose line is not in the file
                    _save_cka_state(state_path, accumulator, in_state)
                    since_checkpoint = 0
            if since_checkpoint:
                sink.commit()
                _save_cka_state(state_path, accumulator, in_state)
    finally:
        src.close()  # the capture worker of a model source
    result = _finish(
        out_dir,
        plan,
        settings,
        settings_record,
        run_record,
        accumulator,
        eval_records,
        n_new,
        earlier_file.duplicates,
    )
    if settings.diagnostics:
        assert isinstance(src, _ModelSource)
        _add_diagnostics(result, src, plan, settings, eval_records, progress)
    return result


def _shard_plan(plan: _Plan, shard: tuple[int, int] | None) -> _Plan:
    """``plan`` with only the samples of block ``shard = (k, K)`` of its ids (all of them for None).

    Raises:
        ConfigError: the block holds no sample (more shards than planned samples).
    """
    if shard is None:
        return plan
    index, count = shard
    positions = shard_range(len(plan.ids), index, count)
    if not positions:
        raise ConfigError(
            f"argument 'shard': block {index + 1} of {count} holds no sample: the run plans "
            f"{len(plan.ids)} sample(s); use at most {len(plan.ids)} shards"
        )
    return replace(plan, ids=plan.ids[positions.start : positions.stop])


def _set_anchor_origin(
    accumulator: CrossLayerCKA, src: _Source, full_plan: _Plan, settings: AnalysisSettings
) -> tuple[str, _Item] | None:
    """Give a shard's CKA accumulator the origin of the unsharded run's: the rows of the first planned
    sample that has any (the unsharded accumulator takes its origin from its first batch, which is that
    sample's rows). Every shard finds the same sample, so their sums add up (:meth:`CrossLayerCKA.merge`).

    Returns:
        ``(sample_id, item)`` of that sample, loaded (the shard that holds it need not load it again), or
        None when no planned sample has rows.
    """
    for sample_id in full_plan.ids:
        try:
            item = src.load(sample_id, full_plan.load_layers)
            measures, _ = _measure(item, full_plan, settings, want_view=False)
        except ModelError:
            continue  # the unsharded run skips it, and so adds no rows from it
        if measures.rows.n_rows:
            accumulator.set_origin(measures.rows.speech, measures.rows.text)
            return sample_id, item
    return None


def diagnostic_stability_layers(num_layers: int) -> tuple[int, ...]:
    """Base layers whose alignment paths are compared: 0, 1, 5 (paper 3: stable from 5 on), the middle and
    the last layer, those the model has."""
    return tuple(sorted({0, 1, min(5, num_layers), num_layers // 2, num_layers}))


def _add_diagnostics(
    result: AnalysisResult,
    src: _ModelSource,
    plan: _Plan,
    settings: AnalysisSettings,
    eval_records: dict[tuple[str, str], _EvalRecord] | None,
    progress: bool,
) -> None:
    """Run the diagnostics over the analysed samples; add them to the summary, the result and the figures."""
    from speechgap.analysis.diagnostics_run import DiagnosticsSettings, run_diagnostics
    from speechgap.data.load import load_pairs

    dataset = load_pairs(src.dataset, limit=len(plan.ids))
    wrong = None
    if eval_records is not None:
        wrong = [
            sid
            for sid in plan.ids
            if (g := eval_records.get((sid, "speech"))) is not None and g.correct is False
        ]
    diagnostics = run_diagnostics(
        src.adapter,
        dataset,
        result.out_dir,
        DiagnosticsSettings(
            base_layer=plan.base_layer, stability_layers=diagnostic_stability_layers(src.num_layers)
        ),
        wrong_speech=wrong,
        progress=progress,
    )
    result.summary["diagnostics"] = diagnostics.summary
    atomic_write_json(result.out_dir / "summary.json", result.summary)
    if settings.figures:
        from speechgap.report.figures import diagnostic_figures, save_png

        for stem, figure in diagnostic_figures(diagnostics.summary).items():
            result.figures.append(save_png(figure, result.out_dir / "figures" / f"{stem}.png"))


def _remake_path_view(out_dir: Path, src: _Source, sample_id: str, plan: _Plan, settings: AnalysisSettings):
    try:
        item = src.load(sample_id, plan.load_layers)
        _, view = _measure(item, plan, settings, want_view=True)
    except ModelError:
        return  # the figure is left out, as for a sample that cannot be analysed
    if view is not None:
        _save_path_view(_path_file(out_dir, sample_id), view, sample_id)


def _progress(ids: list[str], enabled: bool) -> Iterator[str]:
    from tqdm.auto import tqdm

    yield from tqdm(ids, desc="analyze", unit="sample", disable=not enabled)


@dataclass
class _SampleFile:
    """``samples.jsonl`` read back: the first record of each id, and how many more lines repeated it."""

    records: dict[str, dict[str, Any]]
    duplicates: dict[str, int]


def _read_samples(path: Path) -> _SampleFile:
    records: dict[str, dict[str, Any]] = {}
    duplicates: dict[str, int] = {}
    for line, record in read_jsonl(path):
        if "id" not in record:
            raise DataError("sample record without this field", path=path, line=line, field="id")
        sample_id = str(record["id"])
        if sample_id in records:
            duplicates[sample_id] = duplicates.get(sample_id, 0) + 1  # the first line is the one kept
            continue
        records[sample_id] = record
    return _SampleFile(records, duplicates)


def _fresh_start_hint(out_dir: Path) -> str:
    return (
        f"give another output folder (argument 'out_dir'), or delete {out_dir} (or its {SAMPLES_FILE}, "
        f"{CKA_STATE_FILE} and {RUN_FILE}) to start fresh"
    )


def _check_same_data(out_dir: Path, src: _Source, plan: _Plan, earlier: dict[str, dict[str, Any]]) -> None:
    """Refuse to resume over samples whose content differs from the ones analysed there before.

    Every record of ``samples.jsonl`` holds the hash of the sample it measured (:meth:`_Source.sample_hash`);
    each done sample of this run is hashed again and compared. A folder whose done samples share no id with
    this run holds another dataset and is refused too. Records written before hashes were kept have none and
    are taken as they are.
    """
    if not earlier:
        return
    overlap = [sid for sid in plan.ids if sid in earlier]
    if not overlap:
        shown = ", ".join(repr(sid) for sid in list(earlier)[:3])
        raise ConfigError(
            f"{out_dir} holds an analysis of other samples (ids {shown}, ...; none of them is in this run's "
            f"data); {_fresh_start_hint(out_dir)}"
        )
    for sample_id in overlap:
        recorded = earlier[sample_id].get("hash")
        if recorded is None:
            continue
        if src.sample_hash(sample_id) != recorded:
            raise ConfigError(
                f"{out_dir} holds an analysis of other data: sample {sample_id!r} differs from the one analysed "
                f"there (its audio, text, word timings or capture changed); {_fresh_start_hint(out_dir)}"
            )


def _check_resume(path: Path, record: dict[str, Any]) -> None:
    if not path.is_file():
        return
    previous = read_json(path, what="analysis record")

    def key(run: dict[str, Any]) -> dict[str, Any]:
        settings = run.get("settings", {})
        source = run.get("source", {})
        identity = {k: source.get(k) for k in ("kind", "folder")}
        identity["model"] = (source.get("model") or {}).get("name_or_path")
        out = {k: settings.get(k) for k in _RESUME_KEYS if k != "source"}
        out["source"] = identity
        return out

    if key(previous) != key(record):
        raise ConfigError(
            f"{path.parent} holds an analysis with other settings or another source ({key(previous)}); "
            f"use the same settings to resume, or {_fresh_start_hint(path.parent)}"
        )


def _measure(item: _Item, plan: _Plan, settings: AnalysisSettings, want_view: bool):
    speech, text = item.speech, item.text
    for capture in (speech, text):
        missing = [layer for layer in plan.load_layers if layer not in capture.layers]
        if missing:
            raise DataError(f"sample {item.sample_id!r}: {capture.modality} capture lacks layers {missing}")
    rows_s = [speech.layers.index(layer) for layer in plan.layers]
    rows_t = [text.layers.index(layer) for layer in plan.layers]
    base_s = speech.hidden[speech.layers.index(plan.base_layer)]
    base_t = text.hidden[text.layers.index(plan.base_layer)]
    sample = item.sample
    word_times = sample.word_times if sample is not None else None
    transcript = sample.text if sample is not None else None
    measures = measure_sample(
        item.sample_id,
        speech.hidden[rows_s],
        text.hidden[rows_t],
        plan.layers,
        base_speech=base_s,
        base_text=base_t,
        frame_times=speech.frame_times,
        tokens=text.tokens,
        transcript=transcript,
        word_times=word_times,
        pairing=settings.cka_pairing,
    )
    view = path_view(base_s, base_t, speech.frame_times, text.tokens, word_times) if want_view else None
    return measures, view


# ----------------------------------------------------------------------------------------------- finish


def _distribution(values: np.ndarray) -> dict[str, Any]:
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"n": 0, "mean": None, "std": None, "quantiles": None}
    return {
        "n": int(finite.size),
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "quantiles": {str(q): float(np.quantile(finite, q)) for q in QUANTILES},
    }


def _finish(
    out_dir: Path,
    plan: _Plan,
    settings: AnalysisSettings,
    settings_record: dict[str, Any],
    run_record: dict[str, Any],
    accumulator: CrossLayerCKA,
    eval_records: dict[tuple[str, str], _EvalRecord] | None,
    n_new: int,
    duplicates: dict[str, int],
) -> AnalysisResult:
    """Write the tables, ``cka.npy``, ``summary.json`` and figures from ``samples.jsonl``.

    ``duplicates``: ids that ``samples.jsonl`` held on more than one line when the run started (the first
    line of each is used), reported in the summary."""
    import pyarrow as pa

    sample_file = _read_samples(out_dir / SAMPLES_FILE)
    by_id = sample_file.records
    for sample_id, count in sample_file.duplicates.items():
        duplicates = {**duplicates, sample_id: duplicates.get(sample_id, 0) + count}
    records = [by_id[sid] for sid in plan.ids if sid in by_id and "skipped" not in by_id[sid]]
    skipped = {sid: by_id[sid]["skipped"] for sid in plan.ids if sid in by_id and "skipped" in by_id[sid]}
    skipped.update({sid: reason for sid, reason in run_record.get("capture_skipped", {}).items()})
    if not records and settings.shard is None:
        # a shard may hold only skipped samples: the merge takes what it has
        raise DataError("no sample could be analysed", path=out_dir / SAMPLES_FILE)
    # the data this folder's results come from: id -> content hash of every sample analysed or skipped
    run_record["fingerprint"] = {sid: by_id[sid].get("hash") for sid in plan.ids if sid in by_id}
    atomic_write_json(out_dir / RUN_FILE, run_record)
    metadata = {
        b"speechgap": json.dumps(
            {
                "settings": settings_record,
                "include_layer0": settings.include_layer0,
                "provenance": run_record,
            },
            default=str,
        ).encode()
    }

    # per-layer tidy table
    columns: dict[str, list[Any]] = {"sample_id": [], "layer": []}
    columns.update({name: [] for name in LAYER_MEASURES})
    for record in records:
        for k, layer in enumerate(record["layers"]):
            columns["sample_id"].append(record["id"])
            columns["layer"].append(int(layer))
            for name in LAYER_MEASURES:
                columns[name].append(record["per_layer"][name][k])
    per_layer = pa.table(
        {
            "sample_id": pa.array(columns["sample_id"], pa.string()),
            "layer": pa.array(columns["layer"], pa.int32()),
            **{name: pa.array(columns[name], pa.float64()) for name in LAYER_MEASURES},
        }
    ).replace_schema_metadata(metadata)
    _write_parquet(out_dir / "per_layer.parquet", per_layer)

    # per-sample table
    sample_columns: dict[str, Any] = {
        "sample_id": pa.array([r["id"] for r in records], pa.string()),
        "n_frames": pa.array([r["n_frames"] for r in records], pa.int32()),
        "n_tokens": pa.array([r["n_tokens"] for r in records], pa.int32()),
        "duration_s": pa.array([r["duration_s"] for r in records], pa.float64()),
        **{name: pa.array([r.get(name) for r in records], pa.float64()) for name in SAMPLE_MEASURES},
        "word_tokens": pa.array([r.get("word_tokens", 0) for r in records], pa.int32()),
        "cka_rows": pa.array([r["cka_rows"] for r in records], pa.int32()),
    }
    if eval_records is not None:
        for modality in ("speech", "text"):
            got = [eval_records.get((r["id"], modality)) for r in records]
            sample_columns[f"{modality}_correct"] = pa.array(
                [None if g is None else g.correct for g in got], pa.bool_()
            )
            sample_columns[f"{modality}_parsed"] = pa.array(
                [None if g is None else g.parsed for g in got], pa.bool_()
            )
            sample_columns[f"{modality}_logit_margin"] = pa.array(
                [None if g is None else g.logit_margin for g in got], pa.float64()
            )
    per_sample = pa.table(sample_columns).replace_schema_metadata(metadata)
    _write_parquet(out_dir / "per_sample.parquet", per_sample)

    # aggregates
    layer_array = np.asarray(columns["layer"])
    per_layer_summary = {}
    for name in LAYER_MEASURES:
        values = np.asarray(columns[name], dtype=np.float64)
        stats = {"layers": plan.layers, "mean": [], "std": [], "n": []}
        for layer in plan.layers:
            chosen = values[(layer_array == layer) & np.isfinite(values)]
            stats["mean"].append(float(chosen.mean()) if chosen.size else None)
            stats["std"].append(float(chosen.std()) if chosen.size else None)
            stats["n"].append(int(chosen.size))
        per_layer_summary[name] = stats
    per_sample_summary = {
        name: _distribution(np.asarray([np.nan if r.get(name) is None else r[name] for r in records], float))
        for name in SAMPLE_MEASURES
    }

    cka_matrix, cka_summary = _cka_summary(out_dir, accumulator, plan, settings)
    correlations = _correlations(records, eval_records) if eval_records is not None else None
    notes = {r["id"]: r["notes"] for r in records if r.get("notes")}
    summary = {
        "n_samples": len(records),
        "n_skipped": len(skipped),
        "skipped": skipped,
        "settings": settings_record,
        "include_layer0": settings.include_layer0,
        "per_layer": per_layer_summary,
        "per_sample": per_sample_summary,
        "aps": {"cos": per_sample_summary["aps_cos"], "euclid": per_sample_summary["aps_euclid"]},
        "cka": cka_summary,
        "correctness": correlations,
        "eval": None
        if eval_records is None
        else {
            "matched": sum(1 for r in records if (r["id"], "speech") in eval_records),
            "unmatched": [r["id"] for r in records if (r["id"], "speech") not in eval_records],
        },
        "notes": notes,
        # lines of samples.jsonl that repeated an id (two runs at once, before runs held a lock): the first
        # line of each id is the one used
        "duplicate_records": duplicates,
        "provenance": run_record,
    }
    atomic_write_json(out_dir / "summary.json", summary)
    figures = (
        _write_figures(out_dir, summary, cka_matrix, records, plan) if settings.figures and records else []
    )
    return AnalysisResult(out_dir, summary, cka_matrix, len(records), n_new, skipped, figures)


def _write_parquet(path: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def _cka_summary(out_dir: Path, accumulator: CrossLayerCKA, plan: _Plan, settings: AnalysisSettings):
    base = {
        "pairing": settings.cka_pairing,
        "base_layer": plan.base_layer if settings.cka_pairing in ("dtw", "argmax") else None,
        "debiased": settings.debiased,
        "speech_layers": plan.layers,
        "text_layers": plan.layers,
        "n_rows": accumulator.n_rows,
    }
    try:
        matrix = accumulator.compute()
    except ConfigError as err:
        return None, {**base, "matrix": None, "band": None, "error": str(err)}
    buffer = io.BytesIO()
    np.save(buffer, matrix)
    atomic_write_bytes(out_dir / "cka.npy", buffer.getvalue())
    band = cka_band(matrix, tolerance=settings.band_tolerance)
    band_record = {
        "tolerance": band.tolerance,
        "best": band.best.tolist(),
        "best_layer": [plan.layers[k] for k in band.best.tolist()],
        "best_value": band.best_value.tolist(),
        "lower": band.lower.tolist(),
        "upper": band.upper.tolist(),
        "width": band.width.tolist(),
    }
    return matrix, {**base, "matrix": matrix.tolist(), "band": band_record, "error": None}


def _correlations(records: list[dict[str, Any]], eval_records: dict[tuple[str, str], _EvalRecord]):
    out: dict[str, Any] = {}
    for name in CORRELATED_MEASURES:
        values, flags = [], []
        for record in records:
            got = eval_records.get((record["id"], "speech"))
            value = record.get(name)
            if got is None or got.correct is None or value is None or not math.isfinite(value):
                continue
            values.append(value)
            flags.append(bool(got.correct))
        try:
            relation = relation_to_correctness(np.asarray(values, float), np.asarray(flags, bool))
        except ConfigError as err:
            out[name] = {"error": str(err), "n": len(values)}
            continue
        out[name] = asdict(relation)
    return out


def _write_figures(
    out_dir: Path,
    summary: dict[str, Any],
    cka_matrix: np.ndarray | None,
    records: list[dict[str, Any]],
    plan: _Plan,
) -> list[Path]:
    from speechgap.report.figures import (
        alignment_path_figure,
        aps_histogram,
        cka_heatmap,
        layer_curves,
        save_png,
    )

    folder = out_dir / "figures"
    layer0 = "layer 0 included" if summary["include_layer0"] else "layer 0 excluded"
    written = [save_png(layer_curves(summary), folder / "layer_curves.png")]
    if cka_matrix is not None:
        cka = summary["cka"]
        kind = "debiased" if cka["debiased"] else "biased"
        pairing = cka["pairing"] + (f" at layer {cka['base_layer']}" if cka["base_layer"] is not None else "")
        title = f"Cross-layer linear CKA ({kind}; pairing: {pairing};\n{cka['n_rows']} rows; {layer0})"
        written.append(
            save_png(
                cka_heatmap(
                    cka_matrix, cka["band"], speech_layers=plan.layers, text_layers=plan.layers, title=title
                ),
                folder / "cka_heatmap.png",
            )
        )
    aps = np.asarray([np.nan if r.get("aps_cos") is None else r["aps_cos"] for r in records], float)
    written.append(
        save_png(
            aps_histogram(
                aps, metric="cos", title=f"APS (cosine) over {int(np.isfinite(aps).sum())} samples ({layer0})"
            ),
            folder / "aps_histogram.png",
        )
    )
    for sample_id in plan.path_samples:
        path = _path_file(out_dir, sample_id)
        if not path.is_file():
            continue
        view = _load_path_view(path)
        figure = alignment_path_figure(
            view.sim,
            view.argmax,
            view.dtw,
            view.frame_times,
            view.tokens,
            view.word_times,
            title=f"Sample {sample_id}: paths at layer {plan.base_layer}",
        )
        written.append(save_png(figure, folder / f"path_{path.stem}.png"))
    return written
