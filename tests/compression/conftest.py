"""A tiny random Qwen2-Audio model and speech samples with word timings, built once per session."""

from __future__ import annotations

import numpy as np
import pytest

from speechgap.data.types import PairedSample


def make_sample(sample_id: str, seconds: float, seed: int, words: int = 5) -> PairedSample:
    """A noisy tone of ``seconds`` at 16 kHz with ``words`` evenly spaced word timings (pauses between)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * (180 + 40 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    edges = np.linspace(0.1, seconds - 0.1, words + 1)
    word_times = [(f"w{k}", float(edges[k]), float(edges[k + 1] - 0.05)) for k in range(words)]
    return PairedSample(
        id=sample_id,
        text="Which colour?\nA. red\nB. blue\nC. green\nD. black",
        audio=audio.astype(np.float32),
        answer="B",
        choices=["red", "blue", "green", "black"],
        word_times=word_times,
    )


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from speechgap.models.tiny import build_tiny_model

    return build_tiny_model("qwen2_audio", tmp_path_factory.mktemp("compress_tiny"), seed=0, layers=4)


@pytest.fixture(scope="session")
def tiny(tiny_dir):
    from speechgap.models import load_model

    return load_model(tiny_dir)


@pytest.fixture(scope="session")
def speech_samples():
    return [make_sample("s1", 2.3, 1), make_sample("s2", 1.6, 2, words=3)]


@pytest.fixture(scope="session")
def batch_samples():
    """Five clips of different lengths (so every block of a batch is padded), with word timings."""
    return [make_sample(f"b{i}", 0.9 + 0.37 * i, 10 + i, words=3 + i % 3) for i in range(5)]
