"""The record everything in speechgap starts from: one question, once as speech and once as text."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, overload

import numpy as np

from speechgap.errors import ConfigError, DataError, SpeechgapError

SAMPLE_RATE = 16_000
"""Hz. Every waveform inside speechgap is float32 mono at this rate."""

WordTime = tuple[str, float, float]
"""(word, start_s, end_s): where a word of the transcript is spoken, in seconds from the clip's start."""


@dataclass
class PairedSample:
    """One question as speech and as its text.

    Attributes:
        id: unique within its dataset.
        text: the question as text, exactly what a text-input run is given.
        audio: float32 mono waveform, shape ``(n_samples,)``, at ``sample_rate`` Hz (always 16 kHz once
            loaded through speechgap).
        sample_rate: Hz.
        answer: the reference answer when known: an option letter ("A".."D") for multiple choice,
            the reference text for open questions.
        choices: option texts in letter order, for multiple choice.
        subset: benchmark subset (VoiceBench subset, SpeechMMLU subject, ...).
        speaker: speaker or voice id.
        word_times: per-word timings ``(word, start_s, end_s)`` when known (TTS, forced alignment).
        meta: anything else the source carried (ifeval's instruction ids, split names, ...).
    """

    id: str
    text: str
    audio: np.ndarray
    sample_rate: int = SAMPLE_RATE
    answer: str | None = None
    choices: list[str] | None = None
    subset: str | None = None
    speaker: str | None = None
    word_times: list[WordTime] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        """Length of the audio in seconds."""
        return float(len(self.audio)) / float(self.sample_rate)

    def with_audio(self, audio: np.ndarray) -> PairedSample:
        """A copy of this sample (its own ``choices`` and ``meta``) holding ``audio``: loaders keep the
        text fields of every sample and decode the audio on access."""
        return replace(
            self,
            audio=audio,
            choices=list(self.choices) if self.choices else None,
            meta=dict(self.meta),
        )

    def describe(self) -> dict[str, Any]:
        """The sample's fields without the waveform, for result records."""
        return {
            "id": self.id,
            "text": self.text,
            "answer": self.answer,
            "choices": self.choices,
            "subset": self.subset,
            "speaker": self.speaker,
            "duration_s": round(self.duration_s, 4),
        }


def sample_hash(sample: PairedSample) -> str:
    """A short sha256 of everything that defines ``sample`` (see :meth:`PairedDataset.fingerprint`)."""
    import hashlib
    import json

    fields = {
        "id": sample.id,
        "text": sample.text,
        "answer": sample.answer,
        "choices": sample.choices,
        "subset": sample.subset,
        "speaker": sample.speaker,
        "word_times": sample.word_times,
        "meta": sample.meta,
        "sample_rate": sample.sample_rate,
    }
    digest = hashlib.sha256(
        json.dumps(fields, sort_keys=True, ensure_ascii=True, default=str).encode("utf-8", "surrogatepass")
    )
    audio = np.ascontiguousarray(np.asarray(sample.audio, dtype=np.float32))
    digest.update(audio.tobytes())
    return digest.hexdigest()[:16]


def _is_whole(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def shard_range(length: int, index: int, count: int) -> range:
    """The positions of block ``index`` (0-based) of ``count`` contiguous blocks of ``length`` items.

    The split of :func:`numpy.array_split`: every block holds ``length // count`` items and the first
    ``length % count`` blocks one more, so the blocks in order cover ``range(length)`` exactly once. The
    one rule for :meth:`PairedDataset.shard` and for sharded analyses.

    Raises:
        ConfigError: ``count`` not a whole number >= 1 (``argument 'count'``), ``index`` not a whole number
            in ``[0, count)`` (``argument 'index'``).
    """
    if not _is_whole(count) or count < 1:
        raise ConfigError(f"argument 'count' must be a whole number >= 1, got {count!r}")
    if not _is_whole(index) or not 0 <= index < count:
        raise ConfigError(f"argument 'index' must be a whole number in [0, {count}), got {index!r}")
    size, extra = divmod(int(length), int(count))
    start = int(index) * size + min(int(index), extra)
    return range(start, start + size + (1 if index < extra else 0))


def check_shard(value: Any, argument: str = "shard") -> tuple[int, int] | None:
    """``value`` as a ``(index, count)`` shard, 0-based index, or None; a list (as read from JSON) is fine.

    Raises:
        ConfigError: not two whole numbers with ``0 <= index < count`` (named as ``argument``).
    """
    if value is None:
        return None
    if (
        isinstance(value, (str, bytes))
        or not isinstance(value, Sequence)
        or len(value) != 2
        or not all(_is_whole(part) for part in value)
    ):
        raise ConfigError(
            f"argument {argument!r} must be (index, count), two whole numbers with 0 <= index < count, "
            f"got {value!r}"
        )
    index, count = int(value[0]), int(value[1])
    if count < 1 or not 0 <= index < count:
        raise ConfigError(
            f"argument {argument!r} must be (index, count) with 0 <= index < count (index 0-based), "
            f"got {value!r}"
        )
    return index, count


class SampleLoadError(DataError):
    """A sample of a dataset whose audio (or fields) cannot be loaded; raised by
    :meth:`PairedDataset.summarize`, with the loader's own error as ``__cause__``.

    Attributes:
        position: 0-based position of the sample in the dataset (also: how many samples loaded before it).
        sample_id: the sample's id.
    """

    def __init__(self, position: int, sample_id: str, cause: Exception) -> None:
        self.position = position
        self.sample_id = sample_id
        super().__init__(f"sample {position} (id '{sample_id}') does not load: {cause}")


@dataclass
class DatasetSummary:
    """What a paired dataset holds, every sample decoded once (``speechgap data``).

    Attributes:
        source: the dataset's :meth:`PairedDataset.describe` record (loader, path, subset, split, limit, ...).
        num_samples: number of samples.
        subsets: samples per subset, sorted by name; samples without one are counted as ``"(none)"``.
        multiple_choice: samples that carry ``choices``.
        duration_s: audio durations in seconds, rounded to 3 decimals: ``total`` (0.0 when empty) and
            ``min``, ``mean``, ``median``, ``max`` per sample (None when empty).
    """

    source: dict[str, Any]
    num_samples: int
    subsets: dict[str, int]
    multiple_choice: int
    duration_s: dict[str, float | None]

    def to_json(self) -> dict[str, Any]:
        """The summary as a JSON-ready dict (the output of ``speechgap data --json``)."""
        return {
            "source": dict(self.source),
            "num_samples": self.num_samples,
            "subsets": dict(self.subsets),
            "multiple_choice": self.multiple_choice,
            "duration_s": dict(self.duration_s),
        }

    def format(self) -> str:
        """The summary as the lines ``speechgap data`` prints (no trailing newline)."""
        source = self.source
        lines = [f"source:   {source.get('loader')} {source.get('path')}"]
        for key in ("subset", "split", "limit"):
            if source.get(key) is not None:
                lines.append(f"{key + ':':<9} {source[key]}")
        lines.append(f"samples:  {self.num_samples} (all decode; {self.multiple_choice} multiple choice)")
        lines.append("subsets:  " + ", ".join(f"{name} {count}" for name, count in self.subsets.items()))
        stats = self.duration_s
        if self.num_samples:
            lines.append(
                f"duration: total {stats['total']:.1f} s; per sample min {stats['min']:.2f}, "
                f"mean {stats['mean']:.2f}, median {stats['median']:.2f}, max {stats['max']:.2f} s"
            )
        return "\n".join(lines)


class PairedDataset(Sequence[PairedSample]):
    """A sequence of :class:`PairedSample` whose audio is decoded on access, not held in memory.

    Args:
        source: how the data was found (loader name, path, subset, split, ...): recorded in every result.
        ids: sample ids in order; must be unique.
        load: ``load(index) -> PairedSample``, decoding that sample's audio.
    """

    def __init__(self, source: dict[str, Any], ids: Sequence[str], load: Callable[[int], PairedSample]):
        self.source = dict(source)
        self.ids = list(ids)
        self._load = load

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> PairedSample: ...
    @overload
    def __getitem__(self, index: slice) -> PairedDataset: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.select(range(*index.indices(len(self))))
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} samples")
        return self._load(index)

    def __iter__(self) -> Iterator[PairedSample]:
        for index in range(len(self)):
            yield self._load(index)

    def select(self, indices: Sequence[int] | range) -> PairedDataset:
        """A view on the given positions (in that order)."""
        positions = list(indices)
        source = dict(self.source)
        if len(positions) != len(self):
            source["selected"] = len(positions)
        return PairedDataset(source, [self.ids[i] for i in positions], lambda k: self._load(positions[k]))

    def limit(self, n: int | None) -> PairedDataset:
        """The first ``n`` samples (all when ``n`` is None)."""
        if n is None or n >= len(self):
            return self
        if n < 0:
            raise ValueError(f"argument 'n' must be >= 0, got {n}")
        view = self.select(range(n))
        view.source["limit"] = n
        return view

    def shard(self, index: int, count: int) -> PairedDataset:
        """Block ``index`` (0-based) of ``count`` contiguous, near-equal blocks of the dataset, in order.

        The blocks split the positions as :func:`numpy.array_split` does: the first ``len % count`` blocks
        hold one sample more than the others. A block is empty when ``count > len``; callers decide whether
        they accept that (:func:`speechgap.evaluation.run.evaluate` refuses empty data). The view records
        ``source["shard"] = "index+1/count"``, so that every result of a shard says which one it is.

        Raises:
            ConfigError: ``count`` is not a whole number >= 1 (``argument 'count'``), or ``index`` is not a
                whole number in ``[0, count)`` (``argument 'index'``).
        """
        positions = shard_range(len(self), index, count)
        view = self.select(positions)
        view.source["shard"] = f"{index + 1}/{count}"
        return view

    def describe(self) -> dict[str, Any]:
        """Provenance of the data: the source record plus the sample count."""
        return {**self.source, "num_samples": len(self)}

    def fingerprint(self, ids: Sequence[str] | None = None) -> dict[str, str]:
        """Content hashes of the samples: ``{id: sha256 hex (16 chars)}``, over every field a result
        depends on (text, answer, choices, subset, speaker, word timings, meta, and the decoded audio).

        A resumed run compares them with the ones it recorded, so a folder made from other data (or from
        an edited manifest) is never silently continued. ``ids``: hash only these samples (default all).
        Decodes the audio of each hashed sample once.
        """
        wanted = None if ids is None else set(ids)
        hashes: dict[str, str] = {}
        for position, sample_id in enumerate(self.ids):
            if wanted is not None and sample_id not in wanted:
                continue
            hashes[sample_id] = sample_hash(self[position])
        return hashes

    def summarize(self) -> DatasetSummary:
        """Decode every sample once and count what the dataset holds.

        Raises:
            SampleLoadError: at the first sample that does not load, naming its position and id; the
                loader's error is its ``__cause__``.
        """
        durations: list[float] = []
        subsets: dict[str, int] = {}
        multiple_choice = 0
        for position in range(len(self)):
            try:
                sample = self._load(position)
            except SpeechgapError as err:
                raise SampleLoadError(position, self.ids[position], err) from err
            durations.append(sample.duration_s)
            key = sample.subset or "(none)"
            subsets[key] = subsets.get(key, 0) + 1
            multiple_choice += sample.choices is not None
        seconds = np.asarray(durations, dtype=np.float64)

        def stat(reduce: Callable[[np.ndarray], Any]) -> float | None:
            return round(float(reduce(seconds)), 3) if seconds.size else None

        return DatasetSummary(
            source=self.describe(),
            num_samples=len(self),
            subsets=dict(sorted(subsets.items())),
            multiple_choice=int(multiple_choice),
            duration_s={
                "total": round(float(seconds.sum()), 3),
                "min": stat(np.min),
                "mean": stat(np.mean),
                "median": stat(np.median),
                "max": stat(np.max),
            },
        )

    @classmethod
    def from_samples(cls, samples: Sequence[PairedSample], source: dict[str, Any] | None = None):
        """Wrap samples already in memory."""
        items = list(samples)
        return cls(source or {"loader": "memory"}, [s.id for s in items], lambda i: items[i])
