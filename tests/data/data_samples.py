"""Helpers that write test data in the real schemas (audio, VoiceBench rows and parquet, SpeechMMLU rows);
the fixtures in ``conftest.py`` build folders from them. A module of its own, so that test modules import
it by a unique name (``from conftest import`` picks another folder's conftest when several test folders
are collected together)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf


def tone(freq_hz: float, sr: int, seconds: float = 0.25, amplitude: float = 0.3) -> np.ndarray:
    """A sine, float32, shape ``(round(sr * seconds),)``."""
    t = np.arange(int(round(sr * seconds))) / sr
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def wav_bytes(audio: np.ndarray, sr: int = 16000, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, sr, format="WAV", subtype=subtype)
    return buffer.getvalue()


def pcm16_reference(source: Path | bytes) -> np.ndarray:
    """A 16-bit WAV's samples read as integers and scaled by 1/32768, independently of speechgap."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    ints, _ = sf.read(handle, dtype="int16")
    return (ints.astype(np.float64) / 32768.0).astype(np.float32)


def voicebench_rows(subset: str, split: str, n: int, seed: int) -> dict[str, list]:
    """Columns of one VoiceBench split as the Hub stores them (audio as {bytes, path} WAV at 16 kHz)."""
    rng = np.random.default_rng(seed)
    freqs = rng.uniform(200, 2000, size=n)
    columns: dict[str, list] = {
        "audio": [
            {"bytes": wav_bytes(tone(f, 16000, 0.1 + 0.02 * i)), "path": f"{i}.wav"}
            for i, f in enumerate(freqs)
        ],
        "prompt": [],
    }
    if subset in ("mmsu", "openbookqa"):
        letters = "ABCD"
        columns["prompt"] = [
            f"Question {split} {i}: which option is right? A. first {i} B. second {i} C. third {i} D. fourth {i}"
            for i in range(n)
        ]
        columns["reference"] = [letters[i % 4] for i in range(n)]
        columns["id"] = [f"{split}_{i}" for i in range(n)]
    elif subset == "ifeval":
        columns["prompt"] = [f"Write {i + 2} sentences about cats." for i in range(n)]
        columns["key"] = [1000 + i for i in range(n)]
        columns["instruction_id_list"] = [["length_constraints:number_sentences"] for _ in range(n)]
        columns["kwargs"] = [[{"num_sentences": i + 2, "relation": "at least"}] for i in range(n)]
    elif subset == "sd-qa":
        columns["prompt"] = [f"Where is city number {i}?" for i in range(n)]
        columns["reference"] = [f"answer {i}" for i in range(n)]
        columns["id"] = [f"q{i}" for i in range(n)]
    else:
        columns["prompt"] = [f"Tell me about topic {i}." for i in range(n)]
    return columns


def hf_dataset(columns: dict[str, list]):
    import datasets

    return datasets.Dataset.from_dict(columns).cast_column("audio", datasets.Audio(sampling_rate=16000))


def write_parquet(columns: dict[str, list], path: Path, row_group_size: int = 2) -> None:
    """A parquet file exactly as ``datasets`` writes it (Audio struct + 'huggingface' schema metadata)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(hf_dataset(columns).data.table, path, row_group_size=row_group_size)


VOICEBENCH_LAYOUT = {"sd-qa": {"usa": 5, "gbr": 3}, "mmsu": {"biology": 4, "law": 3}, "openbookqa": {"test": 5},
                     "ifeval": {"test": 3}}  # fmt: skip


SPEECHMMLU_SUBJECTS = {"astronomy": 3, "virology": 2}


def speechmmlu_rows(subject: str, n: int) -> list[dict]:
    return [
        {
            "id": f"{subject}_{i}",
            "subject": subject,
            "question_text": f"Question: {subject} question {i}? Option A: alpha {i}. Option B: beta {i}. "
            f"Option C: gamma {i}. Option D: delta {i}.",
            "question_audio": f"audio/{subject}/{subject}_{i}_english_prompt_{i + 1:03d}.mp3",
            "voice_id": f"english_prompt_{i + 1:03d}",
            "answer": (i + 1) % 4,
        }
        for i in range(n)
    ]
