"""The manifest format: reading (lazy, validated up front), writing, and every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from data_samples import pcm16_reference, tone

from speechgap.data import manifest as manifest_module
from speechgap.data.manifest import ManifestRecord, read_manifest, write_manifest, write_manifest_record
from speechgap.errors import DataError
from speechgap.io import JsonlAppender


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def test_reads_every_format_to_16k_mono(manifest_dir: Path):
    dataset = read_manifest(manifest_dir / "manifest.jsonl")
    assert dataset.ids == ["a", "b", "c", "7"]
    a, b, c, d = list(dataset)
    np.testing.assert_array_equal(a.audio, pcm16_reference(manifest_dir / "audio" / "a.wav"))
    assert (a.text, a.answer, a.subset) == ("What is two plus two?", "four", "math")
    assert (b.choices, b.answer, b.speaker) == (["oxygen", "helium"], "B", "spk1")
    assert b.word_times == [("Which", 0.0, 0.1), ("gas", 0.1, 0.2)]
    assert b.meta == {"source": "unit"}
    assert c.meta == {"duration": 0.25}  # unknown top-level fields are kept in meta
    for sample, seconds in zip((a, b, c, d), (0.25, 0.25, 0.25, 0.25), strict=True):
        assert sample.audio.dtype == np.float32 and sample.audio.ndim == 1
        assert sample.sample_rate == 16000
        assert abs(len(sample.audio) - seconds * 16000) <= 1
    # 44.1 kHz stereo with channel amplitudes 0.3 and 0.1 in phase: the mean has amplitude 0.2.
    assert np.max(np.abs(b.audio)) == pytest.approx(0.2, rel=0.02)
    # int16 at 8 kHz with amplitude 0.3 full scale stays at 0.3 after scaling and resampling.
    assert np.max(np.abs(d.audio)) == pytest.approx(0.3, rel=0.02)
    assert dataset.source["loader"] == "manifest"
    assert dataset.source["path"] == str((manifest_dir / "manifest.jsonl").resolve())


def test_audio_is_decoded_only_on_access(manifest_dir: Path, monkeypatch):
    calls = []
    real = manifest_module.load_audio
    monkeypatch.setattr(manifest_module, "load_audio", lambda *a, **k: calls.append(a) or real(*a, **k))
    dataset = read_manifest(manifest_dir / "manifest.jsonl")
    assert calls == []
    dataset[2]
    assert len(calls) == 1 and str(calls[0][0]).endswith("c.ogg")


def test_corrupt_audio_fails_on_access_naming_file_and_line(manifest_dir: Path):
    (manifest_dir / "audio" / "c.ogg").write_bytes(b"OggS but broken")
    dataset = read_manifest(manifest_dir / "manifest.jsonl")
    dataset[0]
    with pytest.raises(DataError, match=r"c\.ogg.*manifest\.jsonl:3.*cannot decode"):
        dataset[2]


def test_subset_filter_and_unknown_subset(manifest_dir: Path):
    dataset = read_manifest(manifest_dir / "manifest.jsonl", subset="math")
    assert dataset.ids == ["a", "c"] and dataset.source["subset"] == "math"
    with pytest.raises(DataError, match="unknown subset 'art'.*math, science"):
        read_manifest(manifest_dir / "manifest.jsonl", subset="art")


@pytest.mark.parametrize(
    ("line", "pattern"),
    [
        ("{not json", r"m\.jsonl:2: not valid JSON"),
        ('["a", "list"]', r"m\.jsonl:2: expected a JSON object"),
        ({"text": "t", "audio": "a.wav"}, r"m\.jsonl:2, field 'id': missing required field"),
        ({"id": "x", "audio": "a.wav"}, r"m\.jsonl:2, field 'text': missing"),
        ({"id": "x", "text": "t"}, r"m\.jsonl:2, field 'audio': missing"),
        ({"id": "x", "text": "", "audio": "a.wav"}, r"field 'text': must be a non-empty string"),
        ({"id": "x", "text": "t", "audio": "a.wav", "choices": "A B"}, r"field 'choices'"),
        ({"id": "x", "text": "t", "audio": "a.wav", "answer": 3}, r"field 'answer': must be a string"),
        ({"id": "x", "text": "t", "audio": "a.wav", "meta": [1]}, r"field 'meta'"),
        (
            {"id": "x", "text": "t", "audio": "a.wav", "word_times": [["w", 0.5, 0.2]]},
            r"word_times\[0\].*start_s <= end_s",
        ),
        ({"id": "x", "text": "t", "audio": "a.wav", "word_times": [["w", 0.1]]}, r"word_times\[0\]"),
        ({"id": "x", "text": "t", "audio": "a.wav", "word_times": [[1, 0.1, 0.2]]}, r"word_times\[0\]"),
        (
            {"id": "a", "text": "t", "audio": "a.wav"},
            r"m\.jsonl:2, field 'id': duplicate id 'a' \(first on line 1\)",
        ),
        (
            {"id": "y", "text": "t", "audio": "missing.wav"},
            r"m\.jsonl:2, field 'audio': audio file not found",
        ),
    ],
)
def test_bad_lines_name_file_line_and_field(tmp_path: Path, line, pattern):
    sf.write(tmp_path / "a.wav", tone(440, 16000), 16000)
    path = write_lines(tmp_path / "m.jsonl", [{"id": "a", "text": "t", "audio": "a.wav"}, line])
    with pytest.raises(DataError, match=pattern):
        read_manifest(path)


def test_missing_and_empty_manifest(tmp_path: Path):
    with pytest.raises(DataError, match="manifest file not found"):
        read_manifest(tmp_path / "none.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="no records"):
        read_manifest(tmp_path / "empty.jsonl")


def test_torn_last_line_is_an_error_not_a_silent_skip(tmp_path: Path):
    sf.write(tmp_path / "a.wav", tone(440, 16000), 16000)
    (tmp_path / "m.jsonl").write_text(
        json.dumps({"id": "a", "text": "t", "audio": "a.wav"}) + '\n{"id": "b", "te'
    )
    with pytest.raises(DataError, match=r"m\.jsonl:2: not valid JSON"):
        read_manifest(tmp_path / "m.jsonl")


def test_write_manifest_record_resumes_and_round_trips(tmp_path: Path):
    audio_dir = tmp_path / "wavs"
    audio_dir.mkdir()
    records = []
    for i in range(3):
        path = audio_dir / f"{i}.wav"
        sf.write(path, tone(300 + 50 * i, 16000), 16000)
        records.append(
            ManifestRecord(
                id=f"s{i}",
                text=f"text {i}",
                audio=str(path.resolve()),
                answer="A",
                choices=["x", "y"],
                speaker=f"v{i}",
                word_times=[("text", 0.0, 0.1)],
                meta={"i": i},
            )  # fmt: skip
        )
    manifest = tmp_path / "out" / "manifest.jsonl"
    with JsonlAppender(manifest, key=lambda r: r["id"]) as sink:
        write_manifest_record(sink, records[0])
        write_manifest_record(sink, records[1])
    with JsonlAppender(manifest, key=lambda r: r["id"]) as sink:  # a rerun after a crash
        assert sink.done("s0") and sink.done("s1") and not sink.done("s2")
        write_manifest_record(sink, records[2])
        with pytest.raises(DataError, match="word_times"):
            write_manifest_record(
                sink, ManifestRecord(id="bad", text="t", audio="a.wav", word_times=[("w", 2.0, 1.0)])
            )
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [line["audio"] for line in lines] == ["../wavs/0.wav", "../wavs/1.wav", "../wavs/2.wav"]
    dataset = read_manifest(manifest)
    assert dataset.ids == ["s0", "s1", "s2"]
    sample = dataset[2]
    assert (sample.text, sample.answer, sample.choices, sample.speaker) == ("text 2", "A", ["x", "y"], "v2")
    assert sample.word_times == [("text", 0.0, 0.1)] and sample.meta == {"i": 2}


def test_write_manifest_is_whole_and_rejects_duplicates(tmp_path: Path):
    sf.write(tmp_path / "a.wav", tone(440, 16000), 16000)
    path = write_manifest(tmp_path / "m.jsonl", [ManifestRecord(id="a", text="t", audio="a.wav")])
    assert read_manifest(path).ids == ["a"]
    before = path.read_bytes()
    with pytest.raises(DataError, match="duplicate id 'a'"):
        write_manifest(path, [ManifestRecord(id="a", text="t", audio="a.wav")] * 2)
    assert path.read_bytes() == before
