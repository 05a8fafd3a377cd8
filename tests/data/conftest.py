"""Fixture data written in the real schemas: manifests with audio files, VoiceBench parquet and save_to_disk
folders (``datasets`` Audio struct encoding), a SpeechMMLU folder with its dataset card and MP3 audio."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_samples import (
    SPEECHMMLU_SUBJECTS,
    VOICEBENCH_LAYOUT,
    hf_dataset,
    speechmmlu_rows,
    tone,
    voicebench_rows,
    write_parquet,
)


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    """A manifest with WAV 16 kHz mono, FLAC 44.1 kHz stereo, OGG 22.05 kHz and int16 WAV 8 kHz."""
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "a.wav", tone(440, 16000), 16000, subtype="PCM_16")
    stereo = np.stack([tone(1000, 44100), tone(1000, 44100, amplitude=0.1)], axis=1)
    sf.write(audio / "b.flac", stereo, 44100)
    sf.write(audio / "c.ogg", tone(660, 22050), 22050, format="OGG", subtype="VORBIS")
    pcm = (tone(300, 8000) * 32767).astype(np.int16)
    sf.write(audio / "d.wav", pcm, 8000, subtype="PCM_16")
    records = [
        {
            "id": "a",
            "text": "What is two plus two?",
            "audio": "audio/a.wav",
            "answer": "four",
            "subset": "math",
        },
        {
            "id": "b",
            "text": "Which gas? A. oxygen B. helium",
            "audio": "audio/b.flac",
            "answer": "B",
            "choices": ["oxygen", "helium"],
            "subset": "science",
            "speaker": "spk1",
            "word_times": [["Which", 0.0, 0.1], ["gas", 0.1, 0.2]],
            "meta": {"source": "unit"},
        },
        {"id": "c", "text": "Name a colour.", "audio": "audio/c.ogg", "subset": "math", "duration": 0.25},
        {"id": 7, "text": "Count to three.", "audio": str((audio / "d.wav").resolve())},
    ]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return tmp_path


@pytest.fixture(scope="session")
def voicebench_dir(tmp_path_factory) -> Path:
    """A ``huggingface-cli download hlt-lab/voicebench`` copy: ``<subset>/<split>-00000-of-00001.parquet``,
    plus ``wildvoice`` in two shards, a ``.cache`` folder and the dataset card."""
    root = tmp_path_factory.mktemp("voicebench")
    for seed, (subset, splits) in enumerate(VOICEBENCH_LAYOUT.items()):
        for offset, (split, n) in enumerate(splits.items()):
            write_parquet(
                voicebench_rows(subset, split, n, 10 * seed + offset),
                root / subset / f"{split}-00000-of-00001.parquet",
            )
    wild = voicebench_rows("wildvoice", "test", 5, 99)
    first = {k: v[:3] for k, v in wild.items()}
    second = {k: v[3:] for k, v in wild.items()}
    write_parquet(first, root / "wildvoice" / "test-00000-of-00002.parquet")
    write_parquet(second, root / "wildvoice" / "test-00001-of-00002.parquet")
    (root / ".cache" / "huggingface").mkdir(parents=True)
    (root / "README.md").write_text("---\nconfigs:\n- config_name: sd-qa\n---\n# VoiceBench\n")
    return root


@pytest.fixture(scope="session")
def voicebench_disk(tmp_path_factory) -> Path:
    """``save_to_disk`` folders: ``sd-qa`` as a DatasetDict of regions, ``openbookqa`` as a Dataset."""
    import datasets

    root = tmp_path_factory.mktemp("voicebench_disk")
    regions = {
        split: hf_dataset(voicebench_rows("sd-qa", split, n, i))
        for i, (split, n) in enumerate(VOICEBENCH_LAYOUT["sd-qa"].items())
    }
    datasets.DatasetDict(regions).save_to_disk(str(root / "sd-qa"))
    hf_dataset(voicebench_rows("openbookqa", "test", 5, 20)).save_to_disk(str(root / "openbookqa"))
    return root


@pytest.fixture(scope="session")
def speechmmlu_dir(tmp_path_factory) -> Path:
    """A local SpeechMMLU copy: dataset card with one config per subject, parquet per subject (split
    ``train``), ``few_shot_prompts.json`` and the unpacked ``audio/`` folder with MP3 files at 24 kHz."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("speechmmlu")
    card = ["---", "configs:"]
    for subject, n in SPEECHMMLU_SUBJECTS.items():
        rows = speechmmlu_rows(subject, n)
        (root / subject).mkdir()
        pq.write_table(pa.Table.from_pylist(rows), root / subject / "train-00000-of-00001.parquet")
        card += [
            f"- config_name: {subject}",
            "  data_files:",
            "  - split: train",
            f"    path: {subject}/train-*",
        ]
        for i, row in enumerate(rows):
            path = root / row["question_audio"]
            path.parent.mkdir(parents=True, exist_ok=True)
            sf.write(path, tone(300 + 100 * i, 24000), 24000, format="MP3")
    card += ["---", "# SpeechMMLU"]
    (root / "README.md").write_text("\n".join(card) + "\n")
    (root / "few_shot_prompts.json").write_text(
        json.dumps({s: {"beginning": "", "examples": []} for s in SPEECHMMLU_SUBJECTS})
    )
    return root
