"""A tiny random-weight Qwen2-Audio, short paired samples, and a small multiple-choice manifest on disk."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from speechgap.data.types import PairedDataset, PairedSample

TEXTS = [
    "What is the capital of France?",
    "Which planet is known as the red planet?",
    "The quick brown fox!",
    "Answer the question.",
    "Paris is the capital of France.",
    "What is seven plus five?",
]


def make_sample(index: int, text: str, seconds: float, **fields) -> PairedSample:
    """A tone-plus-noise clip of ``seconds`` at 16 kHz (the tiny model's window is 3 s)."""
    rng = np.random.default_rng(index)
    t = np.arange(int(seconds * 16000)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * (220 + 40 * index) * t) + 0.05 * rng.standard_normal(t.size)
    return PairedSample(id=f"s{index}", text=text, audio=audio.astype(np.float32), **fields)


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    from speechgap.models.tiny import build_tiny_model

    return build_tiny_model("qwen2_audio", tmp_path_factory.mktemp("tiny_qwen2_audio"), seed=0)


@pytest.fixture(scope="session")
def adapter(tiny_dir):
    from speechgap.models import load_model

    return load_model(tiny_dir)


@pytest.fixture(scope="session")
def samples() -> list[PairedSample]:
    return [make_sample(i, text, 0.8 + 0.3 * i) for i, text in enumerate(TEXTS)]


@pytest.fixture(scope="session")
def ragged() -> list[PairedSample]:
    """Ten samples of ten lengths (0.7 to 2.95 s), so that a batch of them pads every row but one."""
    return [make_sample(10 + i, TEXTS[i % len(TEXTS)], 0.7 + 0.25 * i) for i in range(10)]


@pytest.fixture(scope="session")
def dataset(samples) -> PairedDataset:
    return PairedDataset.from_samples(samples, source={"loader": "memory", "name": "interventions-fixture"})


@pytest.fixture(scope="session")
def manifest(tmp_path_factory):
    """A manifest of 8 four-option questions (answers spread over A-D), audio as WAV files."""
    folder = tmp_path_factory.mktemp("mcq_manifest")
    lines = []
    for i in range(8):
        question = TEXTS[i % len(TEXTS)]
        sample = make_sample(i, question, 0.7 + 0.25 * i)
        sf.write(folder / f"q{i}.wav", sample.audio, 16000)
        lines.append(
            {
                "id": f"q{i}",
                "text": f"{question}\nA. red\nB. blue\nC. green\nD. Paris",
                "audio": f"q{i}.wav",
                "answer": "ABCD"[i % 4],
                "choices": ["red", "blue", "green", "Paris"],
                "subset": "toy",
            }
        )
    path = folder / "manifest.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path
