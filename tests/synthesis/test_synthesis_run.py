import json

import numpy as np
import pytest
import soundfile
from synthesis_fakes import GAP_S, WORD_S, ToneEngine

from speechgap.errors import ConfigError, DataError, ModelError
from speechgap.io import read_jsonl
from speechgap.synthesis import synthesize
from speechgap.synthesis.run import audio_filename
from speechgap.synthesis.timing import split_words

ITEMS = [
    {
        "id": "q1",
        "text": "Which planet is red?",
        "choices": ["Venus", "Mars"],
        "answer": 1,
        "subject": "astro",
        "meta": {"src": "x"},
    },
    {"id": "q2", "text": "What is the capital of France?", "subset": "geo"},
    {"id": "q3", "text": "Name a colour.\nA. Red\nB. Seven", "answer": "A"},
]


def _write_jsonl(path, records) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def _manifest(out) -> list[dict]:
    return [record for _, record in read_jsonl(out / "manifest.jsonl")]


def _tone_items(n: int) -> list[dict]:
    return [{"id": f"t{i:03d}", "text": " ".join(["word"] * (1 + i % 4)) + f" number {i}"} for i in range(n)]


def test_espeak_run_writes_16k_wavs_and_a_manifest_with_word_times(tmp_path):
    out = tmp_path / "out"
    manifest = synthesize(_write_jsonl(tmp_path / "in.jsonl", ITEMS), out, voices=4, seed=0, progress=False)
    records = _manifest(out)
    assert manifest == out / "manifest.jsonl"
    assert [r["id"] for r in records] == ["q1", "q2", "q3"]
    q1, q2, q3 = records
    assert q1["text"] == "Which planet is red?\nA. Venus\nB. Mars" and q1["answer"] == "B"
    assert q1["choices"] == ["Venus", "Mars"] and q1["meta"]["subject"] == "astro"
    assert q1["meta"]["src"] == "x" and "meta" not in q1["meta"]
    assert q1["meta"]["spoken_text"] == "Which planet is red? A, Venus. B, Mars."
    assert q2["subset"] == "geo" and "answer" not in q2
    assert q3["text"] == ITEMS[2]["text"] and q3["meta"]["spoken_text"] == "Name a colour. A, Red. B, Seven."
    speakers = {r["speaker"] for r in records}
    assert speakers <= set(json.loads((out / "synthesis.json").read_text())["settings"]["speakers"])
    for record in records:
        audio, sample_rate = soundfile.read(out / record["audio"], dtype="float32")
        assert sample_rate == 16_000 and audio.ndim == 1
        assert np.sqrt(np.mean(audio**2)) > 0.01
        duration = len(audio) / sample_rate
        assert duration == pytest.approx(record["meta"]["duration_s"], abs=1e-3)
        words = [w.word for w in split_words(record["meta"]["spoken_text"])]
        assert [w for w, _, _ in record["word_times"]] == words
        flat = [t for _, s, e in record["word_times"] for t in (s, e)]
        assert (
            all(a <= b for a, b in zip(flat, flat[1:], strict=False))
            and 0 <= flat[0]
            and flat[-1] <= duration
        )
    info = json.loads((out / "synthesis.json").read_text())
    assert (
        info["status"] == "complete" and info["counts"]["kept"] == 3 and info["model"]["name"] == "espeak-ng"
    )
    assert info["settings"]["seed"] == 0 and info["settings"]["voice_bank"]["sample"] == {"n": 4, "seed": 0}
    assert "speechgap_version" in info and "packages" in info


def test_manifest_round_trips_through_load_pairs(tmp_path):
    from speechgap.data.load import load_pairs

    out = tmp_path / "out"
    manifest = synthesize(ITEMS[:2], out, voices=2, progress=False)
    dataset = load_pairs(manifest)
    samples = list(dataset)
    records = _manifest(out)
    assert [s.id for s in samples] == ["q1", "q2"]
    for sample, record in zip(samples, records, strict=True):
        assert sample.text == record["text"] and sample.speaker == record["speaker"]
        assert sample.sample_rate == 16_000 and sample.duration_s == pytest.approx(
            record["meta"]["duration_s"], abs=1e-3
        )
        assert [list(w) for w in sample.word_times] == record["word_times"]
    assert samples[0].answer == "B" and samples[0].choices == ["Venus", "Mars"]


def test_same_item_and_seed_give_same_speaker_and_audio_in_any_order(tmp_path):
    forward = synthesize(ITEMS, tmp_path / "a", voices=6, seed=3, progress=False).parent
    backward = synthesize(ITEMS[::-1], tmp_path / "b", voices=6, seed=3, progress=False).parent
    by_id = {r["id"]: r for r in _manifest(backward)}
    for record in _manifest(forward):
        assert by_id[record["id"]]["speaker"] == record["speaker"]
        assert (forward / record["audio"]).read_bytes() == (
            backward / by_id[record["id"]]["audio"]
        ).read_bytes()
    other_seed = synthesize(ITEMS, tmp_path / "c", voices=6, seed=4, progress=False).parent
    assert [r["speaker"] for r in _manifest(other_seed)] != [r["speaker"] for r in _manifest(forward)]


def test_parallel_run_equals_serial_run(tmp_path):
    items = [{"id": f"p{i}", "text": f"Question number {i}: is {i} even?"} for i in range(6)]
    serial = synthesize(items, tmp_path / "serial", voices=5, workers=1, progress=False).parent
    parallel = synthesize(items, tmp_path / "parallel", voices=5, workers=2, progress=False).parent
    assert json.loads((parallel / "synthesis.json").read_text())["counts"]["workers"] == 2
    assert _manifest(serial) == _manifest(parallel)
    for record in _manifest(serial):
        assert (serial / record["audio"]).read_bytes() == (parallel / record["audio"]).read_bytes()


def test_plug_in_engine_is_used_and_its_word_times_kept(tmp_path):
    engine = ToneEngine()
    out = synthesize(ITEMS[:2], tmp_path / "out", engine=engine, progress=False).parent
    records = _manifest(out)
    assert len(engine.calls) == 2
    assert {r["speaker"] for r in records} <= {"low_r1_p1", "mid_r1_p1", "high_r1_p1"}
    first = records[1]  # "What is the capital of France?"
    assert [w for w, _, _ in first["word_times"]] == ["What", "is", "the", "capital", "of", "France"]
    assert first["word_times"][1][1] == pytest.approx(WORD_S + GAP_S, abs=1e-4)
    audio, sample_rate = soundfile.read(out / first["audio"])
    assert sample_rate == 16_000 and len(audio) / sample_rate == pytest.approx(6 * (WORD_S + GAP_S), abs=2e-3)


def test_resume_after_crash_finishes_every_id_exactly_once(tmp_path):
    items = _tone_items(12)
    out = tmp_path / "out"
    with pytest.raises(ModelError, match="t007"):
        synthesize(items, out, engine=ToneEngine(fail_on="number 7"), workers=1, progress=False)
    done = [r["id"] for _, r in read_jsonl(out / "progress.jsonl")]
    assert done == [f"t{i:03d}" for i in range(7)] and not (out / "manifest.jsonl").exists()
    before = {name: (out / "audio" / f"{name}.wav").read_bytes() for name in done}
    (out / "progress.jsonl").open("a").write('{"id": "t007", "te')  # a torn line, as a kill leaves
    engine = ToneEngine()
    synthesize(items, out, engine=engine, workers=1, progress=False)
    assert len(engine.calls) == 5  # only the unfinished items
    ids = [r["id"] for r in _manifest(out)]
    assert ids == [item["id"] for item in items]
    assert sorted(r["id"] for _, r in read_jsonl(out / "progress.jsonl")) == ids
    assert all((out / "audio" / f"{name}.wav").read_bytes() == data for name, data in before.items())
    assert len(list((out / "audio").iterdir())) == 12
    counts = json.loads((out / "synthesis.json").read_text())["counts"]
    assert counts["resumed"] == 7 and counts["synthesized_this_run"] == 5
    again = ToneEngine()
    synthesize(items, out, engine=again, progress=False)  # a finished run: nothing to do
    assert again.calls == [] and [r["id"] for r in _manifest(out)] == ids


def test_parallel_plug_in_engine_matches_serial(tmp_path):
    items = _tone_items(20)
    serial = synthesize(items, tmp_path / "s", engine=ToneEngine(), workers=1, progress=False).parent
    parallel = synthesize(items, tmp_path / "p", engine=ToneEngine(), workers=2, progress=False).parent
    assert _manifest(serial) == _manifest(parallel)


def test_resume_with_other_settings_or_changed_items_is_refused(tmp_path):
    out = tmp_path / "out"
    items = _tone_items(3)
    synthesize(items, out, engine=ToneEngine(), seed=0, progress=False)
    with pytest.raises(ConfigError, match="seed"):
        synthesize(items, out, engine=ToneEngine(), seed=1, progress=False)
    changed = [dict(items[0], text="something new")] + items[1:]
    with pytest.raises(DataError, match="t000.*changed"):
        synthesize(changed, out, engine=ToneEngine(), seed=0, progress=False)
    assert len(_manifest(out)) == 3  # nothing lost


def test_quality_filter_drops_the_right_items(tmp_path):
    from speechgap.synthesis.quality import asr_wer_filter

    items = _tone_items(8)  # "word ... word number I": 3 to 6 spoken words

    def transcribe(audio, sample_rate):
        """A fake ASR that hears every tone burst as a word but misses the last one (the number)."""
        bursts = round(len(audio) / sample_rate / (WORD_S + GAP_S))
        return " ".join(["word"] * (bursts - 2) + ["number"])

    quality = asr_wer_filter(transcribe, max_wer=0.2)
    out = synthesize(
        items, tmp_path / "out", engine=ToneEngine(), quality_filter=quality, progress=False
    ).parent
    expected_dropped = [it["id"] for it in items if 1 / len(split_words(it["text"])) > 0.2]
    dropped = [r for _, r in read_jsonl(out / "dropped.jsonl")]
    assert [r["id"] for r in dropped] == expected_dropped and expected_dropped
    assert all(r["wer"] == pytest.approx(1 / len(split_words(r["spoken_text"])), abs=1e-4) for r in dropped)
    kept = _manifest(out)
    assert [r["id"] for r in kept] == [it["id"] for it in items if it["id"] not in expected_dropped]
    assert all(0 < r["meta"]["quality"]["wer"] <= 0.2 for r in kept)
    assert not any((out / "audio" / f"{name}.wav").exists() for name in expected_dropped)


def test_unsafe_ids_are_escaped_to_distinct_file_names(tmp_path):
    items = [{"id": "a/b", "text": "one"}, {"id": "a b", "text": "two"}, {"id": "..", "text": "three"}]
    out = synthesize(items, tmp_path / "out", engine=ToneEngine(), progress=False).parent
    records = _manifest(out)
    files = [r["audio"] for r in records]
    assert len(set(files)) == 3 and all(f.startswith("audio/") and "/" not in f[6:] for f in files)
    assert all((out / f).is_file() for f in files)
    assert audio_filename("q-1.x_2") == "q-1.x_2.wav"


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("", "no items"),
        ("\n\n", "no items"),
        ('{"id": "a", "text": "x"}\nnot json\n', r"in\.jsonl:2"),
        ('{"id": "a", "text": "x"}\n{"text": "y"}\n', r"in\.jsonl:2, field 'id'"),
        ('{"id": "a"}\n', r"in\.jsonl:1, field 'text'"),
        (
            '{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n',
            r"in\.jsonl:2, field 'id'.*duplicate id 'a'.*:1",
        ),
        ('{"id": "a", "text": "x", "choices": ["only"]}\n', "field 'choices'"),
        ('{"id": "a", "text": "x", "choices": ["p", "q"], "answer": 5}\n', "field 'answer'"),
        ('{"id": "Q1", "text": "x"}\n{"id": "q1", "text": "y"}\n', "differ only in case"),
    ],
)
def test_bad_input_names_file_line_and_field_and_writes_nothing(tmp_path, content, match):
    path = tmp_path / "in.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=match):
        synthesize(path, tmp_path / "out", engine=ToneEngine(), progress=False)
    assert not (tmp_path / "out").exists()


def test_missing_input_file_and_bad_voices(tmp_path):
    with pytest.raises(DataError, match="not found"):
        synthesize(tmp_path / "nope.jsonl", tmp_path / "out", engine=ToneEngine(), progress=False)
    with pytest.raises(
        ConfigError, match=r"argument 'voices' must be between 1 and \d+ \(the bank's size\), got 99"
    ):
        synthesize(ITEMS, tmp_path / "out", engine=ToneEngine(), voices=99, progress=False)
