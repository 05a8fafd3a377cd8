"""Word timings from word-start events: which words, where each starts and where each ends.

Engines like espeak-ng report when each word *starts* (an audio position per word event, with the word's
character offset in the text) but not when it ends. :func:`word_times_from_starts` derives the ends:

1. Each word's raw span runs from its start to the next word's start; the last word's span runs to the end
   of the clip.
2. Inside that span, silence is trimmed from both sides with frame energy: 10 ms frames, a frame is speech
   when its RMS is within ``silence_db`` (default 35 dB) of the loudest frame in the clip. The pause after a
   comma or a sentence end is thus cut off the word before it, and the pause espeak puts before a word
   (its word event fires at the start of that pause) is cut off the word itself.
   Only 10 ms frames wholly inside the span are looked at; when speech reaches the span's edge frame, the
   edge stays where the events put it (words spoken without a pause touch). A span without any speech
   frame (shorter than a frame, or a word spoken too softly) keeps its raw span.

Words are the spoken text split with :data:`WORD_PATTERN` (letters and digits, joined by inner apostrophes,
periods or hyphens: "don't", "3.5", "well-known"), with surrounding punctuation stripped. Several events
inside one word ("3.5" is spoken "three point five") are merged into that word; a word that gets no event
shares the span of the word before it, split in proportion to the words' lengths in characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from speechgap.data.types import WordTime

WORD_PATTERN = re.compile(r"\w+(?:['’.\-]\w+)*")
"""A spoken word: word characters, possibly joined by an inner apostrophe, period or hyphen."""

FRAME_S = 0.010
"""Seconds per energy frame used to find silence."""


@dataclass(frozen=True)
class TextWord:
    """A word of a text and where it lies: ``text[start:end] == word`` (0-based character offsets)."""

    word: str
    start: int
    end: int


def split_words(text: str) -> list[TextWord]:
    """The words of ``text`` in order, punctuation stripped (see :data:`WORD_PATTERN`)."""
    return [TextWord(m.group(0), m.start(), m.end()) for m in WORD_PATTERN.finditer(text)]


def assign_events(words: Sequence[TextWord], events: Sequence[tuple[int, float]]) -> list[float | None]:
    """Start time of each word from word-start events.

    Args:
        words: the words of the text, from :func:`split_words`.
        events: ``(char_offset, time_s)`` per word event; ``char_offset`` is 0-based in the same text.

    Returns:
        one start time (seconds) per word: the earliest event that falls inside the word, or that falls
        between the previous word's end and this word's end; ``None`` for a word without an event.
    """
    starts: list[float | None] = [None] * len(words)
    ends = [w.end for w in words]
    for offset, time_s in events:
        index = int(np.searchsorted(ends, offset, side="right"))
        if index >= len(words):
            continue  # an event after the last word (trailing punctuation)
        if starts[index] is None or time_s < starts[index]:
            starts[index] = time_s
    return starts


def _speech_frames(audio: np.ndarray, sample_rate: int, silence_db: float) -> np.ndarray:
    """Boolean per 10 ms frame: True where the frame's RMS is within ``silence_db`` of the loudest frame."""
    frame = max(1, int(round(FRAME_S * sample_rate)))
    n_frames = int(np.ceil(len(audio) / frame))
    if n_frames == 0:
        return np.zeros(0, dtype=bool)
    padded = np.zeros(n_frames * frame, dtype=np.float64)
    padded[: len(audio)] = audio
    rms = np.sqrt(np.mean(padded.reshape(n_frames, frame) ** 2, axis=1))
    peak = float(rms.max())
    if peak <= 0.0:
        return np.zeros(n_frames, dtype=bool)
    return rms >= peak * 10.0 ** (-silence_db / 20.0)


def word_times_from_starts(
    words: Sequence[str],
    starts_s: Sequence[float | None],
    audio: np.ndarray,
    sample_rate: int,
    *,
    silence_db: float = 35.0,
) -> list[WordTime]:
    """``(word, start_s, end_s)`` per word, from word starts and the audio's energy.

    Args:
        words: the words in spoken order.
        starts_s: start of each word in seconds, ``None`` where unknown (see :func:`assign_events`).
        audio: the clip, float mono, shape ``(n_samples,)``.
        sample_rate: Hz of ``audio``.
        silence_db: a frame quieter than the loudest frame by more than this is silence.

    Returns:
        one entry per word, monotonic (each start >= the previous end, start <= end), inside the clip.
        Method: see the module docstring.
    """
    if len(words) != len(starts_s):
        raise ValueError(
            f"argument 'words' has {len(words)} words but argument 'starts_s' has {len(starts_s)} start times"
        )
    duration = len(audio) / float(sample_rate)
    known: list[tuple[int, float]] = []
    for index, start in enumerate(starts_s):
        if start is not None:
            floor = known[-1][1] if known else 0.0  # keep starts monotonic even if events are not
            known.append((index, min(max(float(start), floor), duration)))
    if not known:
        known = [(0, 0.0)]  # no event at all: spread the words over the whole clip
    raw: list[tuple[float, float]] = [(0.0, 0.0)] * len(words)
    for k, (index, start) in enumerate(known):
        # Words before the first event join the first group; words without an event join the group before.
        group = range(0 if k == 0 else index, known[k + 1][0] if k + 1 < len(known) else len(words))
        stop = known[k + 1][1] if k + 1 < len(known) else duration
        lengths = np.array([max(len(words[i]), 1) for i in group], dtype=np.float64)
        edges = start + (stop - start) * np.concatenate([[0.0], np.cumsum(lengths) / lengths.sum()])
        for j, i in enumerate(group):
            raw[i] = (float(edges[j]), float(edges[j + 1]))

    speech = _speech_frames(np.asarray(audio, dtype=np.float64), sample_rate, silence_db)
    times: list[WordTime] = []
    for word, (start, stop) in zip(words, raw, strict=True):
        # Only frames wholly inside the span count, so speech of the neighbouring words is never seen.
        first, last = int(np.ceil(start / FRAME_S - 1e-9)), int(np.floor(stop / FRAME_S + 1e-9))
        voiced = np.nonzero(speech[first:last])[0] if last > first else np.zeros(0, dtype=int)
        start_t, end_t = start, stop
        if len(voiced):
            if voiced[0] > 0:
                start_t = (first + voiced[0]) * FRAME_S
            if voiced[-1] < last - first - 1:
                end_t = (first + voiced[-1] + 1) * FRAME_S
        times.append((word, round(float(start_t), 4), round(float(end_t), 4)))
    return times
