"""``speechgap data`` prints what :meth:`PairedDataset.summarize` returns, and names the first bad sample."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from speechgap.cli import main
from speechgap.data.load import load_pairs


@pytest.fixture
def manifest(tmp_path):
    """Three WAVs of 0.25, 0.5 and 1.0 s: subsets math, science (multiple choice) and none."""
    (tmp_path / "audio").mkdir()
    records = []
    for name, seconds, extra in (
        ("a", 0.25, {"subset": "math"}),
        ("b", 0.5, {"subset": "science", "choices": ["oxygen", "helium"], "answer": "B"}),
        ("c", 1.0, {}),
    ):
        t = np.arange(int(16000 * seconds)) / 16000
        sf.write(tmp_path / "audio" / f"{name}.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 16000)
        records.append({"id": name, "text": f"question {name}", "audio": f"audio/{name}.wav", **extra})
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_data_prints_the_library_summary(manifest, capsys):
    assert main(["data", "--data", str(manifest)]) == 0
    printed = capsys.readouterr().out
    assert printed == load_pairs(str(manifest)).summarize().format() + "\n"
    assert printed == (
        f"source:   manifest {manifest}\n"
        "samples:  3 (all decode; 1 multiple choice)\n"
        "subsets:  (none) 1, math 1, science 1\n"
        "duration: total 1.8 s; per sample min 0.25, mean 0.58, median 0.50, max 1.00 s\n"
    )


def test_data_json_is_the_library_record(manifest, capsys):
    assert main(["data", "--data", str(manifest), "--limit", "2", "--json"]) == 0
    printed = capsys.readouterr().out
    assert printed.endswith("\n") and printed.count("\n") == 1
    record = json.loads(printed)
    assert record == load_pairs(str(manifest), limit=2).summarize().to_json()
    assert record["num_samples"] == 2 and record["source"]["limit"] == 2
    assert record["subsets"] == {"math": 1, "science": 1}
    assert record["duration_s"] == {"total": 0.75, "min": 0.25, "mean": 0.375, "median": 0.375, "max": 0.5}


def test_data_names_the_first_sample_that_does_not_load(manifest, capsys):
    (manifest.parent / "audio" / "b.wav").write_bytes(b"RIFF, then nothing a decoder can read")
    assert main(["data", "--data", str(manifest)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("speechgap data: error: sample 1 (id 'b') does not load: ")
    assert "b.wav" in lines[0]
    assert lines[0].endswith("(checked 1 of 3 samples before this one)")


def test_data_refuses_a_negative_limit(manifest, capsys):
    assert main(["data", "--data", str(manifest), "--limit", "-1"]) == 2
    assert "--limit must be >= 0" in capsys.readouterr().err
