"""Spoken mini questions, from ``speechgap synthesize``: many speakers for training, disjoint ones for test.

Every clip is made by :func:`speechgap.synthesis.synthesize` (espeak-ng; a manifest + 16 kHz WAVs, resumable,
parallel) and read back with :func:`speechgap.data.load.load_pairs`, exactly as a user's own synthesized
set would be. The speakers come from the espeak-ng :class:`~speechgap.synthesis.VoiceBank` (88 English
voices = 8 accents x 11 variants, each at 2 fast rates x 3 pitches = 528 speakers), split **by voice** with
:meth:`VoiceBank.split` into train (80 %) and test (20 %) parts: no test speaker shares its voice (timbre and
accent) with a training speaker. Rates are 1.15 and 1.3 x espeak's 175 wpm, so that every question read
with its four options fits the mini models' 6 s audio window (longest measured clip: 5.7 s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechgap.data.types import SAMPLE_RATE
from speechgap.errors import DataError
from speechgap.mini.questions import MiniQuestion

RATES = (1.15, 1.3)
"""Speaking-rate factors of the bank (x espeak-ng's 175 wpm): every clip fits the 6 s window."""
PITCHES = (0.8, 1.0, 1.2)
SPEAKER_SPLIT = {"train": 0.8, "test": 0.2}
SPEAKER_SPLIT_SEED = 0
"""The train/test speaker split is fixed (independent of the training seed): the test speakers never change."""


@dataclass
class SpokenQuestion:
    """One question as a 16 kHz waveform, with the speaker that read it."""

    question: MiniQuestion
    audio: np.ndarray
    voice: str

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def speaker_banks() -> dict:
    """``{"train": VoiceBank, "test": VoiceBank}``: the espeak-ng bank split by voice (disjoint)."""
    from speechgap.synthesis import EspeakEngine, VoiceBank

    bank = VoiceBank.from_engine(EspeakEngine(), rates=RATES, pitches=PITCHES)
    return bank.split(SPEAKER_SPLIT, SPEAKER_SPLIT_SEED, group_by="voice")


def synthesis_items(questions: Sequence[MiniQuestion]) -> list[dict]:
    """The questions as ``speechgap synthesize`` input items (the written form equals ``question.text``)."""
    return [
        {
            "id": q.id,
            "text": q.question,
            "choices": list(q.choices),
            "answer": q.answer,
            "subset": q.fact.relation,
        }
        for q in questions
    ]


def speak_questions(
    questions: Sequence[MiniQuestion],
    part: str,
    out_dir: str | Path,
    *,
    seed: int,
    max_seconds: float | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> list[SpokenQuestion]:
    """Synthesize the questions into ``out_dir`` with the speakers of ``part`` ("train" or "test").

    Each question gets the speaker ``hash(seed, question id)`` of the part (``synthesize``'s rule); an
    earlier run in ``out_dir`` is resumed. Returns one :class:`SpokenQuestion` per question, in order.

    Raises:
        DataError: a clip is longer than ``max_seconds`` (it would not fit the models' audio window), or a
            question is missing from the manifest.
    """
    from speechgap.data.load import load_pairs
    from speechgap.errors import ModelError
    from speechgap.synthesis import synthesize

    bank = speaker_banks()[part]
    items = synthesis_items(questions)
    try:
        manifest = synthesize(items, out_dir, voices=bank, seed=seed, workers=workers, progress=progress)
    except ModelError:
        # a worker pool can fail on a loaded machine: resume in this process (finished clips are kept)
        manifest = synthesize(items, out_dir, voices=bank, seed=seed, workers=1, progress=progress)
    by_id = {sample.id: sample for sample in load_pairs(manifest)}
    spoken = []
    for question in questions:
        sample = by_id.get(question.id)
        if sample is None:
            raise DataError(f"question {question.id!r} is missing from the synthesized set", path=manifest)
        if max_seconds is not None and sample.duration_s > max_seconds:
            raise DataError(
                f"clip {question.id!r} lasts {sample.duration_s:.2f} s, longer than the {max_seconds} s audio "
                "window (argument 'max_seconds')",
                path=manifest,
            )
        spoken.append(SpokenQuestion(question, np.asarray(sample.audio, dtype=np.float32), sample.speaker))
    return spoken
