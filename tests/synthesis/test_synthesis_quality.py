import itertools

import numpy as np
import pytest

from speechgap.errors import ConfigError
from speechgap.synthesis.quality import (
    asr_wer_filter,
    edit_distance,
    load_transcriber,
    normalize_words,
    word_error_rate,
)


def _brute_force_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    """The definition, unmemoized: try deleting, inserting, substituting at the front."""
    if not a:
        return len(b)
    if not b:
        return len(a)
    return min(
        _brute_force_distance(a[1:], b) + 1,
        _brute_force_distance(a, b[1:]) + 1,
        _brute_force_distance(a[1:], b[1:]) + (a[0] != b[0]),
    )


def test_edit_distance_matches_brute_force_on_small_sequences():
    rng = np.random.default_rng(0)
    vocabulary = ["a", "b", "c"]
    for _ in range(150):
        a = tuple(rng.choice(vocabulary, rng.integers(0, 6)))
        b = tuple(rng.choice(vocabulary, rng.integers(0, 6)))
        assert edit_distance(a, b) == _brute_force_distance(a, b)


def test_edit_distance_is_a_metric_on_small_sequences():
    words = [tuple(p) for n in range(3) for p in itertools.product("xy", repeat=n)]
    for a, b, c in itertools.product(words, repeat=3):
        assert edit_distance(a, b) == edit_distance(b, a)
        assert edit_distance(a, c) <= edit_distance(a, b) + edit_distance(b, c)
        assert (edit_distance(a, b) == 0) == (a == b)


def test_word_error_rate_normalizes_case_and_punctuation():
    assert normalize_words("A, Venus. B, Mars!") == ["a", "venus", "b", "mars"]
    assert word_error_rate("Which planet? A, Venus.", "which planet a venus") == 0.0
    assert word_error_rate("one two three four", "one too three") == pytest.approx(2 / 4)
    assert word_error_rate("", "") == 0.0 and word_error_rate("", "x") == float("inf")


def test_asr_filter_keeps_clips_within_max_wer():
    heard = {"good": "the cat sat on the mat", "bad": "the hat sat"}

    def transcribe(audio: np.ndarray, sample_rate: int) -> str:
        return heard["good" if audio[0] > 0 else "bad"]

    keep = asr_wer_filter(transcribe, max_wer=0.1)
    ok, info = keep(np.ones(10, np.float32), 16000, "The cat sat on the mat.")
    assert ok and info["wer"] == 0.0
    ok, info = keep(-np.ones(10, np.float32), 16000, "The cat sat on the mat.")
    assert not ok and info["wer"] == pytest.approx(4 / 6, abs=1e-4) and info["transcript"] == "the hat sat"
    assert keep.settings["max_wer"] == 0.1
    with pytest.raises(ConfigError, match="argument 'max_wer' must be >= 0"):
        asr_wer_filter(transcribe, max_wer=-1)


def test_load_transcriber_from_file_and_errors(tmp_path):
    module = tmp_path / "my_asr.py"
    module.write_text("def transcribe(audio, sample_rate):\n    return 'hello'\n")
    assert load_transcriber(f"{module}:transcribe")(np.zeros(1), 16000) == "hello"
    for spec, message in (
        ("nocolon", "MODULE:FUNCTION"),
        (f"{module}:missing", "no function"),
        ("no_such_module_xyz:f", "cannot import"),
        ("/no/file.py:f", "no such file"),
    ):
        with pytest.raises(ConfigError, match=f"argument 'spec'.*{message}"):
            load_transcriber(spec)
