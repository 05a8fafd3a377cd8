"""A merged model behind the evaluation runner's interface, and the measurements of one compression run.

:class:`CompressedModel` answers like the adapter it wraps, with the speech span shortened by a
:class:`~speechgap.compression.plan.MergePlan` (text runs are untouched and go to the adapter). It records
per speech sample the tokens each block processed, from which retention and prefill FLOPs follow; speech
questions are answered in padded batches. :func:`measure_speed` times the prefill (time to first token) and
its peak memory of one request at a time, merged against unmerged on the same samples in the same process,
alternating the two so that drift hits both alike.
"""

from __future__ import annotations

import numbers
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from speechgap.compression.flops import DecoderShape, prefill_flops
from speechgap.compression.plan import MergePlan
from speechgap.compression.shorten import PrefillState, ShorteningEngine
from speechgap.data.types import PairedSample
from speechgap.errors import ConfigError
from speechgap.io import JsonlAppender
from speechgap.models.base import OptionScores, SpeechLLM


@dataclass
class LengthRecord:
    """What the merge did to one speech sample.

    Attributes:
        id: the sample id.
        speech_tokens: speech positions before any merge.
        speech_lengths: ``(L,)`` speech tokens in the input of each block.
        seq_lengths: ``(L,)`` tokens each block processed.
        prompt_tokens: prompt length before any merge.
        groups: ``[first, last]`` original speech positions of each speech token that reached the last block
            (a merged token spans several; a dropped frame is in none); None in files written before it was kept.
    """

    id: str
    speech_tokens: int
    speech_lengths: list[int]
    seq_lengths: list[int]
    prompt_tokens: int
    groups: list[list[int]] | None = None

    @classmethod
    def from_prefill(cls, sample_id: str, state: PrefillState) -> LengthRecord:
        groups = [[int(m[0]), int(m[-1])] for m in state.members if m]
        return cls(
            sample_id,
            state.speech_tokens,
            state.speech_lengths,
            state.seq_lengths,
            state.prompt_tokens,
            groups,
        )


class CompressedModel:
    """The adapter's answers with the speech span shortened; satisfies the evaluation runner's protocol.

    Speech runs are answered in padded batches by the :class:`ShorteningEngine` (each row shortened by itself;
    answers equal one-at-a-time answers), text runs by the unmodified adapter.

    Args:
        adapter: the speech LLM (:func:`speechgap.load_model`).
        plan: the merge plan.
        lengths_path: optional JSONL file receiving one :class:`LengthRecord` per speech sample answered
            (appended as it goes; a sample already there is not written twice). The file is opened once, on
            the first record, and read once then (the samples already in it are skipped, a line torn by a
            crash is cut off); each answering call ends with a commit, so every record it made is on disk
            when it returns. :meth:`close` (or ``with CompressedModel(...) as merged:``) releases the file.
    """

    def __init__(self, adapter: SpeechLLM, plan: MergePlan, lengths_path: str | Path | None = None) -> None:
        self.adapter = adapter
        self.plan = plan
        self.engine = ShorteningEngine(adapter, plan)
        self.lengths_path = Path(lengths_path) if lengths_path is not None else None
        self.lengths: dict[str, LengthRecord] = {}
        self._lengths_sink: JsonlAppender | None = None

    def _record(self, sample: PairedSample, state: PrefillState) -> None:
        record = LengthRecord.from_prefill(sample.id, state)
        self.lengths[sample.id] = record
        if self.lengths_path is None:
            return
        if self._lengths_sink is None:
            self._lengths_sink = JsonlAppender(self.lengths_path, key=lambda r: r["id"])
        if not self._lengths_sink.done(sample.id):
            self._lengths_sink.write(asdict(record))

    def commit(self) -> None:
        """Make every length record written so far durable (one flush and fsync)."""
        if self._lengths_sink is not None:
            self._lengths_sink.commit()

    def close(self) -> None:
        """Commit and close ``lengths_path``; a later record opens it again (reading what is there)."""
        if self._lengths_sink is not None:
            try:
                self._lengths_sink.close()
            finally:
                self._lengths_sink = None

    def __enter__(self) -> CompressedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate_batch(
        self, samples: Sequence[PairedSample], modality: str, max_new_tokens: int = 256
    ) -> list[str]:
        """Greedy answers of the samples in one padded batch (:meth:`ShorteningEngine.generate_batch`); each
        answer equals the sample's answer alone. Without per-row masks (attention other than
        :data:`~speechgap.compression.shorten.BATCHED_ATTENTION`) the engine runs one sample at a time."""
        samples = list(samples)
        if modality != "speech":
            return self.adapter.generate_batch(samples, modality, max_new_tokens=max_new_tokens)
        try:
            generations = self.engine.generate_batch(samples, modality, max_new_tokens)
            for sample, generation in zip(samples, generations, strict=True):
                self._record(sample, generation.prefill)
        finally:
            self.commit()
        return [
            self.adapter.tokenizer.decode(generation.token_ids, skip_special_tokens=True)
            for generation in generations
        ]

    def score_options(
        self, sample: PairedSample, modality: str, options: Sequence[str] = ("A", "B", "C", "D")
    ) -> OptionScores:
        """Log-probability of each option's first token after the (shortened) prompt."""
        return self.score_options_batch([sample], modality, [options])[0]

    def score_options_batch(
        self, samples: Sequence[PairedSample], modality: str, options: Sequence[Sequence[str]]
    ) -> list[OptionScores]:
        """:meth:`score_options` for several samples in one padded prefill (same scores within float
        rounding); one sample at a time where the engine cannot batch (:attr:`ShorteningEngine.batched`).

        Args:
            samples: the samples.
            modality: ``"speech"`` (shortened) or ``"text"`` (the adapter's own).
            options: the options of each sample (samples may have different numbers of options).
        """
        samples = list(samples)
        if len(options) != len(samples):
            raise ConfigError(
                f"argument 'options': {len(options)} option lists for {len(samples)} samples; expected one each"
            )
        if modality != "speech":
            return self.adapter.score_options_batch(samples, modality, options)
        options = [[str(option) for option in opts] for opts in options]
        token_ids = [self.adapter.option_token_ids(opts) for opts in options]  # refused before running
        if not samples:
            return []
        if self.engine.batched:
            states = self.engine.prefill_batch(samples, modality).rows
        else:
            states = [self.engine.prefill(sample, modality) for sample in samples]
        try:
            for sample, state in zip(samples, states, strict=True):
                self._record(sample, state)
        finally:
            self.commit()
        return [
            OptionScores.from_logits(opts, ids, state.logits)
            for opts, ids, state in zip(options, token_ids, states, strict=True)
        ]

    def render_prompt(self, modality: str, text: str = "") -> str:
        return self.adapter.render_prompt(modality, text)

    def generation_settings(self, max_new_tokens: int = 256) -> dict[str, Any]:
        return {**self.adapter.generation_settings(max_new_tokens), "compression": self.plan.describe()}

    def describe(self) -> dict[str, Any]:
        return {**self.adapter.describe(), "compression": self.plan.describe()}


@dataclass
class LengthSummary:
    """Retention and prefill FLOPs over samples (sums over samples, so long clips weigh more).

    Attributes:
        samples: speech samples counted.
        retention: speech tokens reaching the last block / speech tokens at the input, pooled.
        retention_first_block: the same at the first block's input (after an input merge).
        prefill_flops_baseline, prefill_flops_merged: summed prefill FLOPs (:mod:`flops`).
        prefill_flops_ratio: merged / baseline.
    """

    samples: int
    retention: float
    retention_first_block: float
    prefill_flops_baseline: int
    prefill_flops_merged: int
    prefill_flops_ratio: float


def summarize_lengths(records: Sequence[LengthRecord], shape: DecoderShape) -> LengthSummary:
    """Pool :class:`LengthRecord` s: the unmerged run has ``prompt_tokens`` in every block."""
    speech = sum(r.speech_tokens for r in records)
    base = sum(prefill_flops(shape, [r.prompt_tokens] * shape.layers) for r in records)
    merged = sum(prefill_flops(shape, r.seq_lengths) for r in records)
    return LengthSummary(
        samples=len(records),
        retention=sum(r.speech_lengths[-1] for r in records) / speech if speech else 1.0,
        retention_first_block=sum(r.speech_lengths[0] for r in records) / speech if speech else 1.0,
        prefill_flops_baseline=base,
        prefill_flops_merged=merged,
        prefill_flops_ratio=merged / base if base else 1.0,
    )


def _rss_bytes(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _release_freed_memory() -> None:
    """Hand memory freed by earlier runs back to the OS (glibc ``malloc_trim``), so that the resident set
    before a measurement is low and the run's own allocations raise it again."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    if name:
        try:
            ctypes.CDLL(name).malloc_trim(0)
        except (OSError, AttributeError):
            pass


def measure_peak_memory(fn: Callable[[], Any], device: torch.device) -> tuple[Any, int | None]:
    """Run ``fn`` and return its result and the peak memory it added, in bytes.

    CUDA: ``torch.cuda.max_memory_allocated`` above what was allocated before. CPU (Linux): the resident
    set's high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``) above the resident set
    before, after handing freed memory back to the OS (``malloc_trim``); coarse (page granularity, allocator
    caching). None when neither is available.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        result = fn()
        torch.cuda.synchronize(device)
        return result, int(torch.cuda.max_memory_allocated(device) - before)
    _release_freed_memory()
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        return fn(), None
    before = _rss_bytes("VmRSS")
    result = fn()
    peak = _rss_bytes("VmHWM")
    if before is None or peak is None:
        return result, None
    return result, max(0, peak - before)


@dataclass
class SpeedSummary:
    """Time to first token and peak memory, merged vs unmerged, on the same samples in the same run.

    Attributes:
        samples: samples timed; repeats: timed prefills per sample and model (median taken).
        ttft_baseline_s, ttft_merged_s: summed per-sample median time to first token, seconds (prefill
            including the audio encoder, plus the first argmax).
        ttft_ratio: merged / baseline (< 1 is faster).
        peak_memory_baseline_bytes, peak_memory_merged_bytes: summed per-sample median peak memory added
            by the prefill (None when it cannot be measured); peak_memory_ratio: merged / baseline.
        kv_cache_bytes_baseline, kv_cache_bytes_merged: summed KV-cache size after the prefill (exact);
            kv_cache_ratio: merged / baseline.
        device: where it ran.
    """

    samples: int
    repeats: int
    ttft_baseline_s: float
    ttft_merged_s: float
    ttft_ratio: float
    peak_memory_baseline_bytes: int | None
    peak_memory_merged_bytes: int | None
    peak_memory_ratio: float | None
    kv_cache_bytes_baseline: int
    kv_cache_bytes_merged: int
    kv_cache_ratio: float
    device: str


def measure_speed(
    adapter: SpeechLLM, plan: MergePlan, samples: Sequence[PairedSample], repeats: int = 3
) -> SpeedSummary:
    """Time-to-first-token and peak memory of the merged plan against the empty plan (the unmodified
    model through the same engine: tested equal to ``model.generate``), alternating per repeat.

    ``repeats``: timed prefills per sample and engine (the median counts), an integer >= 1.
    """
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral):
        raise ConfigError(f"argument 'repeats' must be an integer, got {repeats!r}")
    if repeats < 1:
        raise ConfigError(f"argument 'repeats' must be >= 1, got {repeats}")
    engines = {"baseline": ShorteningEngine(adapter, MergePlan()), "merged": ShorteningEngine(adapter, plan)}
    device = adapter.device
    times: dict[str, list[float]] = {"baseline": [], "merged": []}
    peaks: dict[str, list[int | None]] = {"baseline": [], "merged": []}
    kv = {"baseline": 0, "merged": 0}
    for sample in samples:
        engines["baseline"].prefill(sample, "speech")  # warm-up, not counted
        per_times: dict[str, list[float]] = {"baseline": [], "merged": []}
        per_peaks: dict[str, list[int | None]] = {"baseline": [], "merged": []}
        for _ in range(repeats):
            for name, engine in engines.items():

                def first_token(
                    engine: ShorteningEngine = engine, sample: PairedSample = sample
                ) -> PrefillState:
                    state = engine.prefill(sample, "speech")
                    int(torch.argmax(state.logits))
                    return state

                start = time.perf_counter()
                state, peak = measure_peak_memory(first_token, device)
                per_times[name].append(time.perf_counter() - start)
                per_peaks[name].append(peak)
        for name in engines:
            times[name].append(statistics.median(per_times[name]))
            known = [p for p in per_peaks[name] if p is not None]
            peaks[name].append(int(statistics.median(known)) if known else None)
            kv[name] += engines[name].prefill(sample, "speech").kv_cache_bytes()
    peak_sum = {k: (None if any(p is None for p in v) else sum(v)) for k, v in peaks.items()}  # type: ignore[misc]
    base_peak, merged_peak = peak_sum["baseline"], peak_sum["merged"]
    return SpeedSummary(
        samples=len(samples),
        repeats=repeats,
        ttft_baseline_s=sum(times["baseline"]),
        ttft_merged_s=sum(times["merged"]),
        ttft_ratio=sum(times["merged"]) / max(sum(times["baseline"]), 1e-12),
        peak_memory_baseline_bytes=base_peak,
        peak_memory_merged_bytes=merged_peak,
        peak_memory_ratio=(merged_peak / base_peak) if base_peak and merged_peak is not None else None,
        kv_cache_bytes_baseline=kv["baseline"],
        kv_cache_bytes_merged=kv["merged"],
        kv_cache_ratio=kv["merged"] / kv["baseline"] if kv["baseline"] else 1.0,
        device=str(device),
    )
