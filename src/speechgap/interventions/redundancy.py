"""The text redundancy test (Hsu et al., arXiv 2603.01502, paper 3): repeat each word of the text input.

Speech gives the LLM many positions per word (Qwen2-Audio: 25 per second), text about one. Paper 3 asks
whether redundancy alone hurts: each word of the *text* input is repeated ``r`` times (r = 1, 2, 4, 8) and
the text modality is evaluated again. Their finding: text accuracy drops with ``r`` (SpeechMMLU 73.9 ->
51.2, BBH 62.4 -> 53.5 at r = 8). Here this is a dataset transform: the same ids, the text rewritten.

Words are whitespace-separated tokens, punctuation attached (``"fox?"`` repeats as ``"fox? fox?"``); line
breaks are kept, so a multiple-choice text keeps one option per line (each line's words are repeated,
option labels included: every word of the text input, as the paper says).
"""

from __future__ import annotations

import dataclasses
import numbers

from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError

DEFAULT_REPEATS = (1, 2, 4, 8)


def repeat_words(text: str, r: int) -> str:
    """Each whitespace-separated word of ``text`` written ``r`` times, lines kept.

    Example:
        >>> repeat_words("What colour is the fox?\\nA. red", 2)
        'What What colour colour is is the the fox? fox?\\nA. A. red red'
    """
    if r < 1:
        raise ConfigError(f"argument 'r' (the repeat count) must be >= 1, got {r}")
    lines = []
    for line in text.split("\n"):
        lines.append(" ".join(word for word in line.split() for _ in range(r)))
    return "\n".join(lines)


def repeat_words_dataset(data: PairedDataset, r: int) -> PairedDataset:
    """``data`` with every sample's text rewritten by :func:`repeat_words` (audio and ids unchanged).

    The transform is recorded in the dataset's source (``transform``, ``repeats``), so a run's provenance
    says which ``r`` it saw.
    """
    if r < 1:
        raise ConfigError(f"argument 'r' (the repeat count) must be >= 1, got {r}")

    def load(index: int) -> PairedSample:
        sample = data[index]
        # a copy: an in-memory dataset hands out its own sample objects
        return dataclasses.replace(sample, text=repeat_words(sample.text, r), meta=dict(sample.meta))

    source = {**data.source, "transform": "repeat_words", "repeats": r}
    return PairedDataset(source, data.ids, load)


def parse_repeats(repeats: str | list[int] | tuple[int, ...]) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> ``(1, 2, 4, 8)``: distinct, ascending, each >= 1; 1 is added (the baseline)."""
    if isinstance(repeats, str):
        try:
            values = [int(part) for part in repeats.split(",") if part.strip()]
        except ValueError:
            raise ConfigError(
                f"argument 'repeats' must be comma-separated integers, got {repeats!r}"
            ) from None
    elif isinstance(repeats, (list, tuple)) and all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in repeats
    ):
        values = [int(v) for v in repeats]
    else:
        raise ConfigError(f"argument 'repeats' must be integers >= 1, got {repeats!r}")
    if not values or min(values) < 1:
        raise ConfigError(f"argument 'repeats' must be integers >= 1, got {repeats!r}")
    return tuple(sorted({1, *values}))
