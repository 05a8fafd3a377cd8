"""A bank of synthetic speakers, and deterministic ways to pick, split and assign them.

A speaker is an engine voice at one speaking rate and one pitch: with espeak-ng, 8 English accents x 11
voice variants x 3 rates x 3 pitches = 792 speakers. Every choice here is a pure function of the speaker
ids and a seed, never of the order items arrive in:

- :meth:`VoiceBank.sample` keeps ``n`` speakers chosen by ``seed``;
- :meth:`VoiceBank.split` divides the bank into disjoint parts (train/test) by ``seed``; by default whole
  engine voices go to one part, so a test speaker never shares its timbre with a train speaker;
- :meth:`VoiceBank.assign` gives an item its speaker from a hash of ``(seed, item id)``.
"""

from __future__ import annotations

import hashlib
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from speechgap.errors import ConfigError
from speechgap.synthesis.engine import TTSEngine, Voice


def stable_hash(*parts: object) -> int:
    """A 64-bit integer from the parts' text: the same in every process and Python version."""
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


class VoiceBank:
    """An ordered set of speakers (:class:`Voice`) with unique ids.

    Args:
        speakers: the speakers; their order does not matter (kept sorted by id).
        origin: how the bank was made (engine voices, rates, pitches, split, sample): recorded in
            ``synthesis.json``.
    """

    def __init__(self, speakers: Iterable[Voice], origin: Mapping[str, Any] | None = None) -> None:
        self.origin: dict[str, Any] = dict(origin or {})
        by_id: dict[str, Voice] = {}
        for voice in speakers:
            if voice.id in by_id and by_id[voice.id] != voice:
                raise ConfigError(f"two different speakers share the id {voice.id!r}")
            by_id[voice.id] = voice
        self.speakers: list[Voice] = [by_id[key] for key in sorted(by_id)]
        if not self.speakers:
            raise ConfigError("the voice bank is empty: the engine offers no voices")

    @classmethod
    def from_engine(
        cls,
        engine: TTSEngine,
        *,
        rates: Sequence[float] | None = None,
        pitches: Sequence[float] | None = None,
    ) -> VoiceBank:
        """Every engine voice at every rate and pitch factor.

        Args:
            engine: supplies the base voices (:meth:`TTSEngine.voices`).
            rates: speaking-rate factors; default ``engine.default_rates``.
            pitches: pitch factors; default ``engine.default_pitches``.
        """
        rates = tuple(engine.default_rates if rates is None else rates)
        pitches = tuple(engine.default_pitches if pitches is None else pitches)
        for label, values in (("rates", rates), ("pitches", pitches)):
            if not values or not all(_positive(v) for v in values):
                raise ConfigError(f"argument '{label}' must be positive factors, got {values}")
        return cls(
            (
                Voice(base.name, rate, pitch)
                for base in engine.voices()
                for rate in rates
                for pitch in pitches
            ),
            {"engine": engine.name, "rates": list(rates), "pitches": list(pitches)},
        )

    @property
    def ids(self) -> list[str]:
        return [voice.id for voice in self.speakers]

    def __len__(self) -> int:
        return len(self.speakers)

    def __iter__(self):
        return iter(self.speakers)

    def __contains__(self, voice: object) -> bool:
        return isinstance(voice, Voice) and voice in self.speakers

    def get(self, speaker_id: str) -> Voice:
        for voice in self.speakers:
            if voice.id == speaker_id:
                return voice
        raise ConfigError(f"no speaker {speaker_id!r} in the voice bank")

    def select(self, speaker_ids: Iterable[str]) -> VoiceBank:
        """The speakers with these ids (e.g. read from a speakers file)."""
        return VoiceBank(
            (self.get(speaker_id) for speaker_id in speaker_ids), {**self.origin, "selected": True}
        )

    def sample(self, n: int, seed: int = 0) -> VoiceBank:
        """``n`` speakers chosen by ``seed``: rank speakers by ``hash(seed, id)`` and keep the first ``n``."""
        if not 1 <= n <= len(self):
            raise ConfigError(f"argument 'n' must be between 1 and {len(self)} (the bank's size), got {n}")
        ranked = sorted(self.speakers, key=lambda voice: stable_hash("sample", seed, voice.id))
        return VoiceBank(ranked[:n], {**self.origin, "sample": {"n": n, "seed": seed}})

    def split(
        self,
        fractions: Mapping[str, float],
        seed: int = 0,
        *,
        group_by: Literal["voice", "speaker"] = "voice",
    ) -> dict[str, VoiceBank]:
        """Disjoint parts of the bank, e.g. ``{"train": 0.8, "test": 0.2}``.

        Args:
            fractions: part name -> share of the groups (normalized to sum to 1).
            seed: which groups go where; the same seed always gives the same parts.
            group_by: ``"voice"`` keeps all rates and pitches of one engine voice in the same part
                (no timbre is shared across parts); ``"speaker"`` splits individual speakers.

        Returns:
            part name -> :class:`VoiceBank`; no speaker id (and with ``"voice"`` no voice name) is in
            two parts. Groups are ranked by ``hash(seed, group)`` and cut by cumulative share, rounding
            so that every part gets at least one group.
        """
        if group_by not in ("voice", "speaker"):
            raise ConfigError(f"argument 'group_by' must be 'voice' or 'speaker', got {group_by!r}")
        if not fractions or not all(_positive(share) for share in fractions.values()):
            raise ConfigError(f"argument 'fractions' must hold positive shares, got {dict(fractions)}")
        groups: dict[str, list[Voice]] = {}
        for voice in self.speakers:
            groups.setdefault(voice.name if group_by == "voice" else voice.id, []).append(voice)
        if len(groups) < len(fractions):
            raise ConfigError(
                f"cannot split {len(groups)} {group_by}s into the {len(fractions)} parts of argument 'fractions'"
            )
        ranked = sorted(groups, key=lambda key: stable_hash("split", seed, key))
        total = sum(fractions.values())
        names = list(fractions)
        counts = [max(1, round(len(ranked) * fractions[name] / total)) for name in names]
        # Fix rounding: the last part takes what is left, but every part keeps at least one group.
        counts[-1] = len(ranked) - sum(counts[:-1])
        while counts[-1] < 1:
            largest = max(range(len(counts) - 1), key=lambda i: counts[i])
            counts[largest] -= 1
            counts[-1] += 1
        parts: dict[str, VoiceBank] = {}
        position = 0
        for name, count in zip(names, counts, strict=True):
            split = {"part": name, "fractions": dict(fractions), "seed": seed, "group_by": group_by}
            parts[name] = VoiceBank(
                (voice for key in ranked[position : position + count] for voice in groups[key]),
                {**self.origin, "split": split},
            )
            position += count
        return parts

    def assign(self, item_id: str, seed: int = 0) -> Voice:
        """The speaker of an item: ``speakers[hash(seed, item_id) % len]``, independent of item order."""
        return self.speakers[stable_hash("assign", seed, item_id) % len(self.speakers)]

    def describe(self) -> dict[str, Any]:
        return {**self.origin, "num_speakers": len(self)}


def _positive(value: object) -> bool:
    """A finite number > 0 (NaN and infinity are no share, rate or pitch)."""
    return (
        isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def parse_fractions(text: str) -> dict[str, float]:
    """``"train=0.8,test=0.2"`` -> ``{"train": 0.8, "test": 0.2}`` (for the CLI)."""
    fractions: dict[str, float] = {}
    for piece in text.split(","):
        name, sep, value = piece.partition("=")
        name = name.strip()
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if not sep or not name or not _positive(share) or name in fractions:
            raise ConfigError(
                f"argument 'text' must be NAME=SHARE,NAME=SHARE with finite positive shares and distinct names "
                f"(e.g. train=0.8,test=0.2), got {text!r}"
            )
        fractions[name] = share
    return fractions


def choose_speakers(
    bank: VoiceBank,
    *,
    part: str | None = None,
    fractions: Mapping[str, float] | None = None,
    split_seed: int = 0,
    group_by: Literal["voice", "speaker"] = "voice",
    n: int | None = None,
    seed: int = 0,
) -> VoiceBank:
    """The speakers of one run: optionally one part of a split, then optionally ``n`` of them.

    Split first (by ``split_seed``, which must be the same for the train and the test run), then sample
    (by ``seed``): runs for different parts never share a speaker, whatever their ``seed`` and ``n``.
    """
    if part is not None:
        parts = bank.split(fractions or {"train": 0.8, "test": 0.2}, split_seed, group_by=group_by)
        if part not in parts:
            raise ConfigError(
                f"argument 'part' must be one of the split's parts {sorted(parts)}, got {part!r}"
            )
        bank = parts[part]
    if n is not None:
        bank = bank.sample(n, seed)
    return bank
