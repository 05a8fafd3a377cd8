"""Optional quality filter: drop synthesized clips an ASR cannot read back.

The Ke-SpeechChat recipe (KE-Omni; also the data of the CosyVoice-based paper in methods.md §4) transcribes
every synthetic clip and drops those whose word error rate against the intended text exceeds 0.1.
:func:`asr_wer_filter` builds that filter from any transcribe function the user supplies; speechgap ships
no ASR model. A filter is any callable ``filter(audio, sample_rate, text) -> (keep, info)``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from speechgap.errors import ConfigError

QualityFilter = Callable[[np.ndarray, int, str], tuple[bool, dict[str, Any]]]
"""``filter(audio (n_samples,) float32, sample_rate Hz, spoken text) -> (keep, info)``; ``info`` is
stored in ``dropped.jsonl`` for dropped clips and in the item's ``meta.quality`` for kept ones."""

Transcribe = Callable[[np.ndarray, int], str]
"""``transcribe(audio (n_samples,) float32, sample_rate Hz) -> text``."""

_TOKEN = re.compile(r"[\w']+")


def normalize_words(text: str) -> list[str]:
    """Lower-case words with punctuation removed: ``"A, Venus."`` -> ``["a", "venus"]``."""
    return _TOKEN.findall(text.lower().replace("’", "'"))


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (substitutions, insertions, deletions cost 1)."""
    previous = np.arange(len(hypothesis) + 1)
    for i, ref_word in enumerate(reference, start=1):
        current = np.empty_like(previous)
        current[0] = i
        for j, hyp_word in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return int(previous[-1])


def word_error_rate(reference: str | Sequence[str], hypothesis: str | Sequence[str]) -> float:
    """WER = edit distance between the word sequences / number of reference words.

    Strings are normalized with :func:`normalize_words`; sequences are compared as given. An empty
    reference gives 0.0 for an empty hypothesis and ``inf`` otherwise.
    """
    ref = normalize_words(reference) if isinstance(reference, str) else list(reference)
    hyp = normalize_words(hypothesis) if isinstance(hypothesis, str) else list(hypothesis)
    if not ref:
        return 0.0 if not hyp else float("inf")
    return edit_distance(ref, hyp) / len(ref)


def asr_wer_filter(transcribe: Transcribe, max_wer: float = 0.1) -> QualityFilter:
    """A quality filter that keeps a clip when ``WER(text, transcribe(audio)) <= max_wer``.

    Args:
        transcribe: the user's ASR: ``(audio, sample_rate) -> text``.
        max_wer: the largest word error rate kept (Ke-SpeechChat: 0.1).

    Note that the reference is the spoken text: an ASR that writes "3.5" where the text says "3.5" is
    right, one that writes "three point five" counts as errors.
    """
    if isinstance(max_wer, bool) or not isinstance(max_wer, (int, float)) or not math.isfinite(max_wer):
        raise ConfigError(f"argument 'max_wer' must be a finite number, got {max_wer!r}")
    if max_wer < 0:
        raise ConfigError(f"argument 'max_wer' must be >= 0, got {max_wer}")

    def keep(audio: np.ndarray, sample_rate: int, text: str) -> tuple[bool, dict[str, Any]]:
        transcript = transcribe(audio, sample_rate)
        wer = word_error_rate(text, transcript)
        return wer <= max_wer, {"wer": round(wer, 4), "transcript": transcript, "max_wer": max_wer}

    name = (
        getattr(transcribe, "__module__", "?") + "." + getattr(transcribe, "__qualname__", repr(transcribe))
    )
    keep.settings = {"kind": "asr_wer", "max_wer": max_wer, "transcribe": name}  # type: ignore[attr-defined]
    return keep


def load_transcriber(spec: str) -> Transcribe:
    """Import ``"module:function"`` -> the function.

    ``module`` is a module name, imported from ``sys.path`` as it is (the current folder is not added to
    it: a file there named like a library module could shadow it), or an explicit ``path/to/file.py``,
    loaded from that file.
    """
    module_name, sep, function_name = spec.rpartition(":")
    if not sep or not module_name or not function_name:
        raise ConfigError(
            f"argument 'spec' must be MODULE:FUNCTION or path/to/file.py:FUNCTION (e.g. my_asr:transcribe), "
            f"got {spec!r}"
        )
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ConfigError(f"argument 'spec' ({spec!r}): no such file {module_name}")
        spec_obj = importlib.util.spec_from_file_location(path.stem, path)
        if spec_obj is None or spec_obj.loader is None:
            raise ConfigError(f"argument 'spec' ({spec!r}): cannot load {module_name} as a Python module")
        module = importlib.util.module_from_spec(spec_obj)
        try:
            spec_obj.loader.exec_module(module)
        except Exception as err:
            raise ConfigError(
                f"argument 'spec' ({spec!r}): {module_name} failed to load: {type(err).__name__}: {err}"
            ) from err
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ConfigError(
                f"argument 'spec' ({spec!r}): cannot import {module_name!r}: {err} (a module in the current "
                f"folder is not searched: give its file, e.g. ./{module_name.replace('.', '/')}.py:{function_name})"
            ) from err
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ConfigError(f"argument 'spec' ({spec!r}): {module_name!r} has no function {function_name!r}")
    return function
