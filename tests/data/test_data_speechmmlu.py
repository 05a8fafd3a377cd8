"""SpeechMMLU from a local copy: dataset-card configs, subject choice, answer letters, MP3 audio."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import soundfile as sf
from data_samples import SPEECHMMLU_SUBJECTS, speechmmlu_rows

from speechgap.data.speechmmlu import load_speechmmlu
from speechgap.errors import DataError


def dominant_hz(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / 16000)[np.argmax(spectrum)])


def test_one_subject_maps_every_field(speechmmlu_dir):
    dataset = load_speechmmlu(speechmmlu_dir, subject="astronomy")
    rows = speechmmlu_rows("astronomy", 3)
    assert dataset.ids == [row["id"] for row in rows]
    for i, (sample, row) in enumerate(zip(dataset, rows, strict=True)):
        assert sample.text == row["question_text"] and sample.subset == "astronomy"
        assert sample.answer == "ABCD"[row["answer"]] and sample.meta["answer_index"] == row["answer"]
        assert sample.choices == [f"alpha {i}", f"beta {i}", f"gamma {i}", f"delta {i}"]
        assert sample.speaker == row["voice_id"]
        # 24 kHz MP3 of a (300 + 100 i) Hz tone: resampled to 16 kHz, same pitch, same duration.
        assert abs(len(sample.audio) - 0.25 * 16000) <= 0.01 * 16000
        assert abs(dominant_hz(sample.audio) - (300 + 100 * i)) <= 16000 / len(sample.audio)
    assert dataset.source["loader"] == "speechmmlu" and dataset.source["subset"] == "astronomy"


def test_all_subjects_and_a_list(speechmmlu_dir):
    assert len(load_speechmmlu(speechmmlu_dir)) == sum(SPEECHMMLU_SUBJECTS.values())
    both = load_speechmmlu(speechmmlu_dir, subject=["virology", "astronomy"])
    assert both.ids[0] == "virology_0" and both.source["subjects"] == ["virology", "astronomy"]


def test_unknown_subject_lists_the_available(speechmmlu_dir):
    with pytest.raises(DataError, match="unknown subject 'astrology'; available: astronomy, virology"):
        load_speechmmlu(speechmmlu_dir, subject="astrology")


def copy_without_card(speechmmlu_dir, tmp_path, rows):
    root = tmp_path / "smmlu"
    shutil.copytree(speechmmlu_dir / "audio", root / "audio")
    (root / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_without_a_card_rows_are_grouped_by_subject(speechmmlu_dir, tmp_path):
    rows = speechmmlu_rows("astronomy", 3) + speechmmlu_rows("virology", 2)
    root = copy_without_card(speechmmlu_dir, tmp_path, rows)
    dataset = load_speechmmlu(root, subject="virology")
    assert dataset.ids == ["virology_0", "virology_1"] and dataset[1].answer == "C"


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"answer": 4}, r"row 1, field 'answer': must be an option index 0-3, got 4"),
        ({"answer": None}, r"row 1, field 'answer': missing field"),
        ({"id": "astronomy_0"}, r"duplicate id 'astronomy_0'"),
        ({"question_audio": "audio/astronomy/none.mp3"}, r"audio file not found.*tar -xzf"),
    ],
)
def test_bad_rows(speechmmlu_dir, tmp_path, change, pattern):
    rows = speechmmlu_rows("astronomy", 3)
    rows[1].update(change)
    root = copy_without_card(speechmmlu_dir, tmp_path, rows)
    with pytest.raises(DataError, match=pattern):
        load_speechmmlu(root)


def test_corrupt_mp3_fails_on_access_naming_file_and_row(speechmmlu_dir, tmp_path):
    rows = speechmmlu_rows("astronomy", 2)
    root = copy_without_card(speechmmlu_dir, tmp_path, rows)
    (root / rows[1]["question_audio"]).write_bytes(b"ID3 broken")
    dataset = load_speechmmlu(root)
    dataset[0]
    with pytest.raises(DataError, match=r"astronomy_1_english_prompt_002\.mp3.*data\.jsonl row 1"):
        dataset[1]
    sf.info(root / rows[0]["question_audio"])  # the good file is untouched
