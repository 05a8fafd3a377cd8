"""Statistical calibration of speech states to text statistics (Hsu et al., arXiv 2603.01502, paper 3).

Per dimension ``k`` of the hidden states at one layer::

    x~_k = (x_k - mu_s,k) / (sigma_s,k + eps) * sigma_t,k + mu_t,k

where ``mu_s, sigma_s`` are the mean and (population) standard deviation of the *speech-span* states and
``mu_t, sigma_t`` those of the *transcript-span* states, pooled over every position of every sample of a
calibration split (:func:`estimate_calibration_stats`, one streaming pass, float64 accumulators merged with
Chan et al.'s parallel update of mean and squared deviations). The statistics are saved as safetensors with
their provenance (:meth:`CalibrationStats.save`) so that an evaluation can reuse them.

The calibration split must be disjoint from the evaluation split: :func:`check_disjoint` refuses any shared
id; :func:`split_for_calibration` draws a seeded random split of one dataset.

Open choices (methods.md §3) and defaults: per-dimension matching (the natural reading; the paper does not
say); the layer is 0 (the decoder input; where the paper finds it harmful) or ``L`` (the output of the last
block, before the final norm; "nearly neutral" in the paper); the positions edited are the speech span
(``positions="span"``, default). Note that at layer ``L`` the span positions feed only the LM head at those
same positions, never the answer's logits, so ``"span"`` at ``L`` leaves every answer exactly unchanged;
``positions="all"`` edits every prompt position of the speech run and every generated token, which can.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError, DataError
from speechgap.interventions.base import EditPlan, Intervention
from speechgap.models.base import SpeechLLM

CALIBRATION_POSITIONS = ("span", "all")
DEFAULT_EPS = 1e-6
_METADATA_KEY = "speechgap_calibration"


class RunningMoments:
    """Per-dimension count, mean and sum of squared deviations, updated one block of rows at a time.

    Float64 throughout; blocks are merged with the parallel update of Chan, Golub & LeVeque, so the result
    equals a one-shot computation over the concatenated rows up to float64 rounding.

    Args:
        dim: number of dimensions ``d``.
    """

    def __init__(self, dim: int) -> None:
        self.count = 0
        self.mean = np.zeros(dim, dtype=np.float64)
        self.m2 = np.zeros(dim, dtype=np.float64)

    def update(self, rows: Any) -> None:
        """Add ``(n, d)`` rows."""
        block = np.asarray(rows, dtype=np.float64)
        if block.ndim != 2 or block.shape[1] != self.mean.shape[0]:
            raise ConfigError(f"argument 'rows' must have shape (n, {self.mean.shape[0]}), got {block.shape}")
        n = block.shape[0]
        if n == 0:
            return
        block_mean = block.mean(axis=0)
        block_m2 = ((block - block_mean) ** 2).sum(axis=0)
        total = self.count + n
        delta = block_mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + block_m2 + delta**2 * (self.count * n / total)
        self.count = total

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation ``sqrt(m2 / count)``, ``(d,)``."""
        if self.count == 0:
            raise ConfigError("no rows were added; the statistics are undefined")
        return np.sqrt(self.m2 / self.count)


@dataclass
class CalibrationStats:
    """Per-dimension speech and text statistics at one layer, from a calibration split.

    Attributes:
        layer: the layer (0 = decoder input, ``l >= 1`` = output of block ``l``, before the final norm).
        speech_mean, speech_std: float64 ``(d,)`` over the speech-span states.
        text_mean, text_std: float64 ``(d,)`` over the transcript-span states.
        speech_count, text_count: number of states (positions) pooled.
        sample_ids: the calibration samples' ids (to check disjointness from an evaluation split).
        data: the calibration data's description.
        model: the model's description.
    """

    layer: int
    speech_mean: np.ndarray
    speech_std: np.ndarray
    text_mean: np.ndarray
    text_std: np.ndarray
    speech_count: int
    text_count: int
    sample_ids: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.speech_mean.shape[0])

    def fingerprint(self) -> str:
        """A short hash of the four statistics and the layer (recorded in provenance)."""
        digest = hashlib.sha256(str(self.layer).encode())
        for array in (self.speech_mean, self.speech_std, self.text_mean, self.text_std):
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
        return digest.hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        """Provenance of the statistics (without the arrays)."""
        return {
            "layer": self.layer,
            "dim": self.dim,
            "speech_count": self.speech_count,
            "text_count": self.text_count,
            "num_samples": len(self.sample_ids),
            "data": self.data,
            "fingerprint": self.fingerprint(),
        }

    def save(self, path: str | Path) -> Path:
        """Write the statistics as safetensors (float64 tensors; metadata as JSON in the header)."""
        from safetensors.numpy import save

        from speechgap.io import atomic_write_bytes

        path = Path(path)
        meta = {
            "layer": self.layer,
            "speech_count": self.speech_count,
            "text_count": self.text_count,
            "sample_ids": self.sample_ids,
            "data": self.data,
            "model": self.model,
        }
        tensors = {
            "speech_mean": np.ascontiguousarray(self.speech_mean, dtype=np.float64),
            "speech_std": np.ascontiguousarray(self.speech_std, dtype=np.float64),
            "text_mean": np.ascontiguousarray(self.text_mean, dtype=np.float64),
            "text_std": np.ascontiguousarray(self.text_std, dtype=np.float64),
        }
        atomic_write_bytes(path, save(tensors, metadata={_METADATA_KEY: json.dumps(meta, default=str)}))
        return path

    @classmethod
    def load(cls, path: str | Path) -> CalibrationStats:
        """Read statistics written by :meth:`save` (safetensors only; nothing is unpickled)."""
        from safetensors import SafetensorError, safe_open

        path = Path(path)
        if not path.is_file():
            raise DataError("calibration statistics file not found", path=path)
        try:
            with safe_open(str(path), framework="numpy") as handle:
                header = handle.metadata() or {}
                arrays = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except (SafetensorError, OSError) as err:
            raise DataError(f"not a safetensors file ({err})", path=path) from None
        if _METADATA_KEY not in header:
            raise DataError("not a speechgap calibration file (no calibration metadata)", path=path)
        missing = {"speech_mean", "speech_std", "text_mean", "text_std"} - set(arrays)
        if missing:
            raise DataError(f"missing tensors {sorted(missing)}", path=path)
        for name in ("speech_mean", "speech_std", "text_mean", "text_std"):
            if not np.all(np.isfinite(arrays[name])):
                raise DataError(f"tensor '{name}' holds NaN or infinite values", path=path)
        meta = json.loads(header[_METADATA_KEY])
        return cls(
            layer=int(meta["layer"]),
            speech_mean=arrays["speech_mean"],
            speech_std=arrays["speech_std"],
            text_mean=arrays["text_mean"],
            text_std=arrays["text_std"],
            speech_count=int(meta["speech_count"]),
            text_count=int(meta["text_count"]),
            sample_ids=[str(i) for i in meta.get("sample_ids", [])],
            data=meta.get("data", {}),
            model=meta.get("model", {}),
        )


def check_layer_name(layer: int | str, *, argument: str = "layer") -> int | str:
    """``layer`` when it can name a layer of some model: ``"input"``, ``"output"`` or an integer >= 0 (as
    such or as a string of digits); the model's depth bounds it later (:func:`resolve_layer`).

    Raises:
        ConfigError: naming ``argument``.
    """
    if isinstance(layer, str):
        if layer in ("input", "output") or layer.strip().isdigit():
            return layer
    elif isinstance(layer, numbers.Integral) and not isinstance(layer, bool) and layer >= 0:
        return int(layer)
    raise ConfigError(f"argument {argument!r} must be input, output or a layer index >= 0, got {layer!r}")


def check_eps(eps: float, *, argument: str = "eps") -> float:
    """``eps`` as a float when it is a usable stabiliser: a finite number >= 0.

    Raises:
        ConfigError: naming ``argument``.
    """
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real) or not math.isfinite(eps) or not eps >= 0:
        raise ConfigError(f"argument {argument!r} must be a finite number >= 0, got {eps!r}")
    return float(eps)


def check_fraction(fraction: float, *, argument: str = "fraction") -> float:
    """``fraction`` as a float when it can split a dataset in two: a number strictly between 0 and 1.

    Raises:
        ConfigError: naming ``argument``.
    """
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, numbers.Real)
        or not math.isfinite(fraction)
        or not 0.0 < fraction < 1.0
    ):
        raise ConfigError(
            f"argument {argument!r} must be in (0, 1), got {fraction!r} (the share of the data drawn as the "
            "calibration split)"
        )
    return float(fraction)


def resolve_layer(layer: int | str, num_layers: int, *, argument: str = "layer") -> int:
    """``"input"`` -> 0, ``"output"`` -> ``num_layers`` (output of the last block), an int -> itself;
    ``argument`` is the name an error gives the setting."""
    if isinstance(layer, str):
        if layer == "input":
            return 0
        if layer == "output":
            return num_layers
        try:
            layer = int(layer)
        except ValueError:
            raise ConfigError(
                f"argument {argument!r} must be input, output or 0..{num_layers}, got {layer!r}"
            ) from None
    if not 0 <= int(layer) <= num_layers:
        raise ConfigError(f"argument {argument!r} must be input, output or 0..{num_layers}, got {layer}")
    return int(layer)


def estimate_calibration_stats(
    adapter: SpeechLLM,
    data: PairedDataset | Sequence[PairedSample],
    layer: int | str,
    *,
    batch_size: int = 1,
    progress: bool = False,
) -> CalibrationStats:
    """Speech and text statistics at ``layer`` in one streaming pass over ``data`` (paper 3).

    Each batch is captured (speech span and transcript span, only ``layer``), folded into float64 running
    moments and dropped, so memory does not grow with the data.

    Args:
        adapter: the speech LLM.
        data: the calibration split (disjoint from the evaluation split).
        layer: ``"input"`` (0), ``"output"`` (L) or a layer index.
        batch_size: samples per capture pass (results equal one at a time).
        progress: show a progress bar.
    """
    from tqdm.auto import tqdm

    layer = resolve_layer(layer, adapter.num_layers)
    if len(data) == 0:
        raise ConfigError(
            "argument 'data' (the calibration split) is empty; give more samples or a larger calibration fraction"
        )
    if batch_size < 1:
        raise ConfigError(f"argument 'batch_size' must be >= 1, got {batch_size}")
    speech = RunningMoments(adapter.hidden_size)
    text = RunningMoments(adapter.hidden_size)
    ids: list[str] = []
    batch: list[PairedSample] = []
    samples = iter(data)
    with tqdm(total=len(data), desc="calibration", unit="sample", disable=not progress) as bar:
        while True:
            sample = next(samples, None)
            if sample is not None:
                batch.append(sample)
            if batch and (sample is None or len(batch) == batch_size):
                for modality, moments in (("speech", speech), ("text", text)):
                    for capture in adapter.capture_batch(batch, modality, layers=[layer]):
                        moments.update(capture.hidden[0])
                ids.extend(s.id for s in batch)
                bar.update(len(batch))
                batch = []
            if sample is None:
                break
    describe = getattr(data, "describe", None)
    return CalibrationStats(
        layer=layer,
        speech_mean=speech.mean,
        speech_std=speech.std,
        text_mean=text.mean,
        text_std=text.std,
        speech_count=speech.count,
        text_count=text.count,
        sample_ids=ids,
        data=describe() if callable(describe) else {"num_samples": len(ids)},
        model=adapter.describe(),
    )


def calibrate(states: torch.Tensor, stats: CalibrationStats, eps: float = DEFAULT_EPS) -> torch.Tensor:
    """``(x - mu_s) / (sigma_s + eps) * sigma_t + mu_t`` per dimension, for ``(n, d)`` states.

    Computed in float64 and returned in ``states``' dtype.
    """
    if states.ndim != 2 or states.shape[-1] != stats.dim:
        raise ConfigError(f"argument 'states' must be (n, {stats.dim}), got {tuple(states.shape)}")
    x = states.to(torch.float64)
    device = states.device

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array, dtype=np.float64), device=device)

    scaled = (x - tensor(stats.speech_mean)) / (tensor(stats.speech_std) + eps)
    return (scaled * tensor(stats.text_std) + tensor(stats.text_mean)).to(states.dtype)


class StatisticalCalibration(Intervention):
    """Paper 3's statistical calibration of the speech run at one layer, with precomputed statistics.

    Args:
        stats: from :func:`estimate_calibration_stats` (or :meth:`CalibrationStats.load`); their layer is
            the layer edited.
        positions: ``"span"`` (default: the speech positions, prefill) or ``"all"`` (every prompt position
            of the speech run and every generated token).
        eps: added to ``sigma_s`` (default 1e-6).
    """

    name = "calibration"

    def __init__(self, stats: CalibrationStats, *, positions: str = "span", eps: float = DEFAULT_EPS) -> None:
        if positions not in CALIBRATION_POSITIONS:
            raise ConfigError(
                f"argument 'positions' must be one of {CALIBRATION_POSITIONS}, got {positions!r}"
            )
        eps = check_eps(eps)
        if eps == 0 and np.any(np.asarray(stats.speech_std) == 0):
            dims = np.flatnonzero(np.asarray(stats.speech_std) == 0)
            raise ConfigError(
                f"argument 'eps' must be > 0 for these statistics: the speech standard deviation is 0 in "
                f"{dims.size} dimension(s) (first: {dims[:5].tolist()}), where eps 0 would divide 0 by 0"
            )
        self.stats = stats
        self.positions = positions
        self.eps = eps

    def settings(self) -> dict[str, Any]:
        return {
            "layer": self.stats.layer,
            "positions": self.positions,
            "eps": self.eps,
            "per_dimension": True,
            "phase": "prefill+decode" if self.positions == "all" else "prefill",
            "statistics": self.stats.describe(),
        }

    def validate(self, adapter: SpeechLLM) -> None:
        if self.stats.layer > adapter.num_layers:
            raise ConfigError(
                f"argument 'stats' holds calibration layer {self.stats.layer}, "
                f"not in 0..{adapter.num_layers} for this model"
            )
        if self.stats.dim != adapter.hidden_size:
            raise ConfigError(
                f"argument 'stats' has calibration statistics of {self.stats.dim} dimensions but the model has "
                f"{adapter.hidden_size}; they were estimated with another model"
            )

    def prepare(self, adapter: SpeechLLM, sample: PairedSample) -> EditPlan:
        """No per-sample oracle work: the same affine map for every sample."""
        self.validate(adapter)
        stats, eps = self.stats, self.eps

        def replace(states: torch.Tensor, _positions: torch.Tensor) -> torch.Tensor:
            return calibrate(states, stats, eps)

        return EditPlan(
            {stats.layer: replace},
            positions=self.positions,
            decode=self.positions == "all",
            details={"layer": stats.layer, "positions": self.positions},
        )


def check_disjoint(calibration_ids: Sequence[str], evaluation_ids: Sequence[str]) -> None:
    """Raise :class:`ConfigError` naming the shared ids when the two splits overlap."""
    shared = sorted(set(map(str, calibration_ids)) & set(map(str, evaluation_ids)))
    if shared:
        shown = ", ".join(repr(i) for i in shared[:5]) + (" ..." if len(shared) > 5 else "")
        raise ConfigError(
            f"the calibration split and the evaluation split share {len(shared)} sample id(s) ({shown}); "
            "calibration statistics must come from samples that are not evaluated"
        )


def split_for_calibration(
    data: PairedDataset, fraction: float, seed: int = 0
) -> tuple[PairedDataset, PairedDataset]:
    """A seeded random split into ``(calibration, evaluation)``, disjoint by construction.

    ``round(fraction * n)`` samples (at least 1, at most ``n - 1``) go to calibration, drawn by
    ``numpy.random.default_rng(seed).permutation(n)``; both parts keep the dataset's order.
    """
    fraction = check_fraction(fraction)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"argument 'seed' must be an integer, got {seed!r}")
    n = len(data)
    if n < 2:
        raise ConfigError(
            f"argument 'data' has {n} sample(s): too few to split into a calibration and an evaluation part"
        )
    size = min(max(1, round(fraction * n)), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    calibration_idx = sorted(int(i) for i in order[:size])
    evaluation_idx = sorted(int(i) for i in order[size:])
    calibration, evaluation = data.select(calibration_idx), data.select(evaluation_idx)
    split = {"calibration_fraction": fraction, "split_seed": seed}
    calibration.source.update(split, split_part="calibration")
    evaluation.source.update(split, split_part="evaluation")
    check_disjoint(calibration.ids, evaluation.ids)
    return calibration, evaluation
