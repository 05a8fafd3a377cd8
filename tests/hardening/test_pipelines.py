"""The long pipelines (analyze, synthesize, study, mini train/ship) refuse what would silently go wrong.

Each case reproduces a reported failure and asserts the clear error (naming the file, line and field, or the
argument; through the CLI: exit status 2, the flag, no traceback) or the corrected behaviour: one run per
output folder, resumes that refuse other data, file names that neither collide nor overflow, worker
processes that die with a killed run, no temporary files left behind, and numbers that mean nothing
refused before any model is loaded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from speechgap.cli import main
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError, DataError
from speechgap.io import LOCK_FILE, read_jsonl, remove_stale_temp_files

MISSING = "/nonexistent/speechgap-input"


def _cli(args: list[str], timeout: float = 120, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """``python -m speechgap ARGS`` in a fresh process (what a user runs)."""
    return subprocess.run(
        [sys.executable, "-m", "speechgap", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )


def _refused(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr


def _hold_lock_in_another_process(folder: Path) -> subprocess.Popen:
    """A live process that holds ``folder``'s RunLock until killed."""
    code = (
        "import sys, time\n"
        "from speechgap.io import RunLock\n"
        "with RunLock(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


# ------------------------------------------------------------------------------------------------ shared


def test_remove_stale_temp_files_removes_only_speechgap_temporaries(tmp_path):
    stale = [tmp_path / ".per_sample.parquet.ab12cd_9.tmp", tmp_path / ".summary.json.x1y2z3w4.tmp"]
    kept = [
        tmp_path / "notes.tmp",
        tmp_path / ".hidden.tmp",
        tmp_path / ".a.short.tmp",
        tmp_path / "a.abcdefgh.tmp",
    ]
    for path in stale + kept:
        path.write_text("x")
    (tmp_path / ".dir.abcdefgh.tmp").mkdir()
    assert sorted(remove_stale_temp_files(tmp_path)) == sorted(stale)
    assert all(path.exists() for path in kept) and (tmp_path / ".dir.abcdefgh.tmp").is_dir()
    assert remove_stale_temp_files(tmp_path / "missing") == []


# ---------------------------------------------------------------------------------------------- analyze


def _sample(sample_id: str, seed: int, text: str = "What is the capital of France?") -> PairedSample:
    rng = np.random.default_rng(seed)
    seconds = 0.9
    t = np.arange(int(seconds * 16000)) / 16000
    audio = 0.3 * np.sin(2 * np.pi * (200 + 30 * seed) * t) + 0.05 * rng.standard_normal(t.size)
    words = [w.strip("?!.,") for w in text.split()]
    edges = np.linspace(0.05, seconds - 0.05, len(words) + 1)
    word_times = [(w, float(edges[k]), float(edges[k + 1])) for k, w in enumerate(words)]
    return PairedSample(id=sample_id, text=text, audio=audio.astype(np.float32), word_times=word_times)


def _dataset(ids: list[str], seed: int = 0) -> PairedDataset:
    samples = [_sample(sample_id, seed + k) for k, sample_id in enumerate(ids)]
    return PairedDataset.from_samples(samples, source={"loader": "memory", "name": f"hardening-{seed}"})


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    from speechgap.models import load_model
    from speechgap.models.tiny import build_tiny_model

    return load_model(build_tiny_model("qwen2_audio", tmp_path_factory.mktemp("tiny"), seed=0))


def _settings(**changes):
    from speechgap.analysis import AnalysisSettings

    return AnalysisSettings(**{"figures": False, **changes})


def test_analyze_out_that_is_a_file_is_refused(adapter, tmp_path):
    from speechgap.analysis import analyze

    out = tmp_path / "out.txt"
    out.write_text("not a folder")
    with pytest.raises(ConfigError, match="argument 'out_dir'.*existing file"):
        analyze((adapter, _dataset(["s0"])), out, _settings())
    result = _cli(["analyze", "--captures", str(tmp_path), "--out", str(out)])
    _refused(result, "--out", "existing file")


def test_an_out_folder_that_is_read_only_is_refused(adapter, tmp_path, monkeypatch):
    """The tests run as root, who writes into read-only folders anyway; the permission the kernel would
    report to an ordinary user is what ``prepare_out_dir`` asks (``os.access``), so that answer is given."""
    from speechgap.analysis import analyze

    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o555)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if Path(path) == out else real_access(path, mode)
    )
    with pytest.raises(ConfigError, match="argument 'out_dir'.*not writable"):
        analyze((adapter, _dataset(["s0"])), out, _settings())
    assert list(out.iterdir()) == []  # nothing was written there


def test_analyze_into_a_folder_another_run_holds_is_refused(adapter, tmp_path):
    from speechgap.analysis import analyze

    out = tmp_path / "busy"
    holder = _hold_lock_in_another_process(out)
    try:
        with pytest.raises(ConfigError, match="in use by another speechgap run"):
            analyze((adapter, _dataset(["s0"])), out, _settings())
    finally:
        holder.kill()
        holder.wait(timeout=10)
    assert not (out / "samples.jsonl").exists()
    analyze((adapter, _dataset(["s0"])), out, _settings())  # the holder is gone: its lock is stale
    assert not (out / LOCK_FILE).exists()


def test_analyze_resume_with_other_data_is_refused(adapter, tmp_path):
    from speechgap.analysis import analyze

    out = tmp_path / "run"
    analyze((adapter, _dataset(["s0", "s1"], seed=0)), out, _settings())
    recorded = json.loads((out / "analysis.json").read_text())["fingerprint"]
    assert sorted(recorded) == ["s0", "s1"] and all(len(h) == 16 for h in recorded.values())
    # same ids, other audio: the recorded hashes catch it
    with pytest.raises(ConfigError, match="other data: sample 's0'.*start fresh"):
        analyze((adapter, _dataset(["s0", "s1"], seed=5)), out, _settings())
    # other ids altogether
    with pytest.raises(ConfigError, match="other samples.*start fresh"):
        analyze((adapter, _dataset(["t0", "t1"], seed=0)), out, _settings())
    # the same data with more samples resumes
    result = analyze((adapter, _dataset(["s0", "s1", "s2"], seed=0)), out, _settings())
    assert result.n_new == 1 and result.n_samples == 3


def test_analyze_tolerates_and_reports_duplicate_sample_lines(adapter, tmp_path):
    from speechgap.analysis import analyze

    out = tmp_path / "run"
    analyze((adapter, _dataset(["s0", "s1"])), out, _settings())
    lines = (out / "samples.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    (out / "samples.jsonl").write_text("\n".join([*lines, json.dumps({**first, "aps_cos": 123.0})]) + "\n")
    result = analyze((adapter, _dataset(["s0", "s1"])), out, _settings())
    assert result.summary["duplicate_records"] == {"s0": 1}
    frame = result.to_frame()
    assert sorted(frame["sample_id"]) == ["s0", "s1"]
    assert frame.set_index("sample_id").loc["s0", "aps_cos"] == pytest.approx(first["aps_cos"])


def test_analyze_path_files_are_collision_free_length_safe_and_hold_the_id(adapter, tmp_path):
    from speechgap.analysis import analyze
    from speechgap.analysis.run import _load_path_view, path_file_name

    long_id = "q" * 300
    ids = ["a b", "a_b", "a/b", long_id]
    out = tmp_path / "run"
    for _ in range(2):  # a rerun finds the files again (it used to fail: File name too long)
        analyze((adapter, _dataset(ids)), out, _settings(path_samples=ids, figures=True))
    files = sorted((out / "paths").glob("*.npz"))
    assert len(files) == 4 and all(len(path.name) <= 80 for path in files)
    for sample_id in ids:
        with np.load(out / "paths" / path_file_name(sample_id)) as saved:
            assert str(saved["sample_id"]) == sample_id
        assert _load_path_view(out / "paths" / path_file_name(sample_id)).sim.ndim == 2
    assert len(list((out / "figures").glob("path_*.png"))) == 4


def test_analyze_remakes_path_files_of_an_older_run(adapter, tmp_path):
    from speechgap.analysis import analyze
    from speechgap.analysis.run import path_file_name

    ids = ["a b", "a_b"]
    out = tmp_path / "run"
    analyze((adapter, _dataset(ids)), out, _settings(path_samples=ids))
    # an older speechgap named the files by the sanitized id alone: both samples wrote paths/a_b.npz
    for sample_id in ids:
        (out / "paths" / path_file_name(sample_id)).unlink()
    np.savez(out / "paths" / "a_b.npz", sim=np.zeros((2, 2)))
    result = analyze((adapter, _dataset(ids)), out, _settings(path_samples=ids))
    assert result.n_new == 0
    for sample_id in ids:
        with np.load(out / "paths" / path_file_name(sample_id)) as saved:
            assert str(saved["sample_id"]) == sample_id


def test_analyze_removes_temporary_files_a_killed_run_left(adapter, tmp_path):
    from speechgap.analysis import analyze

    out = tmp_path / "run"
    (out / "paths").mkdir(parents=True)
    stale = [out / ".per_sample.parquet.k3j4h5g6.tmp", out / "paths" / ".s0.npz.abcdefgh.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    (out / "mine.tmp").write_text("the user's")
    analyze((adapter, _dataset(["s0"])), out, _settings())
    assert not any(path.exists() for path in stale)
    assert (out / "mine.tmp").exists()
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize(
    "changes, argument",
    [
        ({"band_tolerance": float("nan")}, "band_tolerance"),
        ({"band_tolerance": -0.1}, "band_tolerance"),
        ({"band_tolerance": float("inf")}, "band_tolerance"),
        ({"checkpoint_every": 0}, "checkpoint_every"),
        ({"limit": 0}, "limit"),
        ({"cka_max_bytes": -1}, "cka_max_bytes"),
        ({"base_layer": -2}, "base_layer"),
        ({"layers": [1, -1]}, "layers"),
        ({"cka_pairing": "nearest"}, "cka_pairing"),
    ],
)
def test_analysis_settings_refuse_meaningless_numbers(changes, argument):
    with pytest.raises(ConfigError, match=f"argument '{argument}'"):
        _settings(**changes)


@pytest.mark.parametrize(
    "flag, value", [("--band-tolerance", "nan"), ("--band-tolerance", "-1"), ("--limit", "0")]
)
def test_analyze_cli_refuses_bad_numbers_before_reading_anything(flag, value, tmp_path):
    result = _cli(["analyze", "--captures", MISSING, "--out", str(tmp_path / "out"), flag, value])
    _refused(result, flag)
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------- synthesize


def _items_file(folder: Path, items: list[dict]) -> Path:
    path = folder / "items.jsonl"
    path.write_text("".join(json.dumps(item) + "\n" for item in items), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "item, field",
    [
        ({"id": "x", "text": "Hello \u0000 world \x1b[31m red"}, "text"),
        ({"id": "x", "text": "Pick one", "choices": ["red", "bl\u0000ue"]}, "choices[1]"),
        ({"id": "x", "text": "Pick one", "choices": ["red", "blue"], "answer": "\x07A"}, "answer"),
        ({"id": "x\x1b", "text": "Hello world"}, "id"),
    ],
)
def test_synthesize_refuses_control_characters(item, field, tmp_path):
    from speechgap.synthesis import synthesize

    path = _items_file(tmp_path, [{"id": "ok", "text": "Fine."}, item])
    with pytest.raises(DataError) as caught:
        synthesize(path, tmp_path / "out", workers=1, progress=False)
    assert caught.value.path == str(path) and caught.value.line == 2 and caught.value.field == field
    assert "control character" in str(caught.value)
    assert not (tmp_path / "out").exists()
    _refused(_cli(["synthesize", str(path), "--out", str(tmp_path / "out")]), f"{path}:2", f"field '{field}'")


def test_espeak_refuses_nul_instead_of_inventing_word_times():
    from speechgap.synthesis import EspeakEngine
    from speechgap.synthesis.engine import Voice

    with pytest.raises(DataError, match="NUL"):
        EspeakEngine().synthesize("Hello \u0000 world", Voice("en-us+m1"))


def test_synthesized_word_times_are_the_words_spoken(tmp_path):
    from speechgap.synthesis import synthesize
    from speechgap.synthesis.timing import split_words

    items = [{"id": "q", "text": "Hello world, what is red?", "choices": ["red", "blue"], "answer": "A"}]
    manifest = synthesize(items, tmp_path / "out", voices=1, workers=1, progress=False)
    [(_, record)] = list(read_jsonl(manifest))
    spoken = record["meta"]["spoken_text"]
    assert [w for w, _, _ in record["word_times"]] == [w.word for w in split_words(spoken)]
    assert record["word_times"][-1][2] <= record["meta"]["duration_s"] + 1e-4


@pytest.mark.parametrize("text", ["?!...", "  -- ; ", "¿?"])
def test_synthesize_refuses_text_without_words(text, tmp_path):
    from speechgap.synthesis import synthesize

    path = _items_file(tmp_path, [{"id": "blank-7", "text": text}])
    with pytest.raises(DataError, match="'blank-7'.*no word to speak") as caught:
        synthesize(path, tmp_path / "out", workers=1, progress=False)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 1, "text")


@pytest.mark.parametrize(
    "item",
    [
        {"id": "x", "text": "Pick one", "choices": ["a", "b", "c", "d"], "answer": "Z"},
        {"id": "x", "text": "Pick one", "choices": ["a", "b", "c", "d"], "answer": "E"},
        {"id": "x", "text": "Pick one\nA. red\nB. blue", "answer": "C"},
        {"id": "x", "text": "Pick one", "choices": ["a", "b"], "answer": 2},
    ],
)
def test_synthesize_refuses_an_answer_outside_the_choices_when_reading(item, tmp_path):
    from speechgap.synthesis import read_items

    path = _items_file(tmp_path, [item])
    with pytest.raises(DataError) as caught:
        read_items(path)
    assert (caught.value.path, caught.value.line, caught.value.field) == (str(path), 1, "answer")
    _refused(_cli(["synthesize", str(path), "--out", str(tmp_path / "out")]), f"{path}:1", "field 'answer'")


def test_synthesize_accepts_answers_the_scorer_reads(tmp_path):
    from speechgap.synthesis import read_items

    items = [
        {"id": "a", "text": "Pick", "choices": ["x", "y", "z"], "answer": "(c)"},
        {"id": "b", "text": "Pick\nA. red\nB. blue", "answer": "B"},
        {"id": "c", "text": "Say hi", "answer": "anything at all"},
    ]
    assert [item.answer for item in read_items(items)] == ["(c)", "B", "anything at all"]


@pytest.mark.parametrize(
    "flags, flag",
    [
        (["--max-wer", "nan", "--asr-filter", "x.py:f"], "--max-wer"),
        (["--split-fractions", "train=nan,test=0.2", "--speaker-split", "test"], "--split-fractions"),
        (["--workers", "-1"], "--workers"),
    ],
)
def test_synthesize_cli_refuses_meaningless_numbers(flags, flag, tmp_path):
    path = _items_file(tmp_path, [{"id": "q", "text": "Hello."}])
    script = tmp_path / "x.py"
    script.write_text("def f(audio, sample_rate):\n    return 'hello'\n")
    _refused(_cli(["synthesize", str(path), "--out", str(tmp_path / "out"), *flags], cwd=tmp_path), flag)
    assert not (tmp_path / "out").exists()


def test_asr_filter_does_not_import_from_the_current_folder(tmp_path, monkeypatch):
    from speechgap.synthesis.quality import load_transcriber

    (tmp_path / "speechgap_test_asr_mod.py").write_text(
        "def transcribe(audio, sample_rate):\n    return 'x'\n"
    )
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    with pytest.raises(ConfigError, match="cannot import.*current folder is not searched"):
        load_transcriber("speechgap_test_asr_mod:transcribe")
    assert sys.path == path_before
    assert load_transcriber("./speechgap_test_asr_mod.py:transcribe")(np.zeros(1), 16000) == "x"
    assert load_transcriber("json:dumps") is json.dumps  # a module by name still imports


def test_synthesize_removes_temporary_files_a_killed_run_left(tmp_path):
    from speechgap.synthesis import synthesize

    out = tmp_path / "out"
    (out / "audio").mkdir(parents=True)
    stale = [out / "audio" / ".q.wav.abcdefgh.tmp", out / ".manifest.jsonl.1234abcd.tmp"]
    for path in stale:
        path.write_bytes(b"RIFF")
    synthesize([{"id": "q", "text": "Hello."}], out, voices=1, workers=1, progress=False)
    assert not any(path.exists() for path in stale)


def test_two_synthesize_processes_into_one_folder(tmp_path):
    ids = [f"q{i:03d}" for i in range(150)]
    path = _items_file(tmp_path, [{"id": i, "text": f"What is {k} plus {k}?"} for k, i in enumerate(ids)])
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "speechgap",
        "synthesize",
        str(path),
        "--out",
        str(out),
        "--workers",
        "1",
    ]
    runs = [
        subprocess.Popen([*command, "--no-progress"], stderr=subprocess.PIPE, text=True) for _ in range(2)
    ]
    results = []
    try:
        for run in runs:
            _, stderr = run.communicate(timeout=300)
            results.append((run.returncode, stderr))
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
    assert any(code == 0 for code, _ in results), results
    for code, stderr in results:
        assert "Traceback" not in stderr
        assert code == 0 or (code == 2 and "in use by another speechgap run" in stderr and "--out" in stderr)
    manifest_ids = [record["id"] for _, record in read_jsonl(out / "manifest.jsonl")]
    assert manifest_ids == ids  # every record exactly once, in input order
    progress_ids = [record["id"] for _, record in read_jsonl(out / "progress.jsonl")]
    assert sorted(progress_ids) == ids
    assert not (out / LOCK_FILE).exists()


def test_killed_synthesize_leaves_no_worker_alive(tmp_path):
    import psutil

    path = _items_file(
        tmp_path, [{"id": f"q{i}", "text": f"Question number {i}, what is it?"} for i in range(3000)]
    )
    command = [sys.executable, "-m", "speechgap", "synthesize", str(path), "--out", str(tmp_path / "out")]
    run = subprocess.Popen([*command, "--workers", "2", "--no-progress"], stderr=subprocess.DEVNULL)
    parent = psutil.Process(run.pid)
    seen: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + 120
        workers: list = []
        while time.monotonic() < deadline and len(workers) < 2:
            for child in parent.children(recursive=True):
                seen[child.pid] = child
            workers = [p for p in seen.values() if _is_spawned_worker(p, psutil)]
            time.sleep(0.1)
        assert len(workers) >= 2, "the run did not start its worker processes"
        time.sleep(1.0)  # let them import and take work
        for child in parent.children(recursive=True):
            seen[child.pid] = child
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p, psutil) for p in seen.values()):
            time.sleep(0.1)
        alive = [p.pid for p in seen.values() if _alive(p, psutil)]
        assert not alive, f"processes of the killed run still alive: {alive}"
    finally:
        if run.poll() is None:
            run.kill()
        for process in seen.values():
            if _alive(process, psutil):
                process.kill()


def _is_spawned_worker(process, psutil) -> bool:
    try:
        return "spawn_main" in " ".join(process.cmdline())
    except psutil.Error:
        return False


def _alive(process, psutil) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


# ------------------------------------------------------------------------------------------------ study


def _zoo(folder: Path, entries: list[dict], models: list[str]) -> Path:
    for name in models:
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "config.json").write_text("{}")
    (folder / "zoo.json").write_text(json.dumps({"checkpoints": entries}))
    return folder


def test_study_refuses_a_checkpoint_listed_twice(tmp_path):
    from speechgap.study import read_zoo

    named_twice = [{"name": n, "variant": "full"} for n in ("a", "b", "a")]
    _zoo(tmp_path / "z1", named_twice, ["a", "b"])
    with pytest.raises(DataError, match="'a' is listed twice") as caught:
        read_zoo(tmp_path / "z1")
    assert caught.value.field == "checkpoints[2].name" and caught.value.path.endswith("zoo.json")
    same_model = [
        {"name": "a", "variant": "full"},
        {"name": "b", "variant": "full"},
        {"name": "c", "variant": "full", "path": "./a"},
    ]
    _zoo(tmp_path / "z2", same_model, ["a", "b"])
    with pytest.raises(DataError, match="model of checkpoints\\[0\\] again") as caught:
        read_zoo(tmp_path / "z2")
    assert caught.value.field == "checkpoints[2].path"


def test_regression_through_two_distinct_points_is_not_reported():
    from speechgap.study import CheckpointPoint, regress_points

    def point(name: str, gap: float, value: float) -> CheckpointPoint:
        measures = dict.fromkeys(("mean_cosine", "mean_euclidean", "aps_cos", "aps_euclid"), value)
        return CheckpointPoint(name, "full", name, None, 0.9, 0.9 - gap, gap, measures)

    regressions = regress_points([point("a", 0.1, 0.5), point("b", 0.3, 0.7), point("a2", 0.1, 0.5)])
    assert all(fit["r2"] is None and "distinct" in fit["note"] for fit in regressions["full"].values())


@pytest.mark.parametrize(
    "content", ["{not json", "[1, 2]", '{"checkpoints": {"a": 1}}', '{"checkpoints": [3]}']
)
def test_study_and_ship_refuse_a_corrupt_zoo_json(content, tmp_path):
    from speechgap.mini.ship import ship_zoo
    from speechgap.study import read_zoo

    (tmp_path / "zoo.json").write_text(content)
    with pytest.raises(DataError) as caught:
        read_zoo(tmp_path)
    assert caught.value.path == str(tmp_path / "zoo.json")
    with pytest.raises(DataError) as caught:
        ship_zoo(tmp_path, tmp_path / "dest")
    assert caught.value.path == str(tmp_path / "zoo.json")


def test_study_and_ship_cli_refuse_a_corrupt_zoo_json(tmp_path):
    (tmp_path / "zoo.json").write_text("{not json")
    data = _manifest(tmp_path / "data")
    _refused(
        _cli(["study", "--zoo", str(tmp_path), "--data", str(data), "--out", str(tmp_path / "o")]), "zoo.json"
    )
    _refused(_cli(["mini", "ship", "--from", str(tmp_path)]), "zoo.json")


def _manifest(folder: Path) -> Path:
    """A one-sample paired manifest (the study CLI loads its data before it reads the zoo)."""
    import soundfile as sf

    (folder / "audio").mkdir(parents=True)
    sf.write(folder / "audio" / "q.wav", np.zeros(1600, dtype=np.float32) + 0.1, 16000)
    record = {"id": "q", "text": "Pick\nA. red\nB. blue", "audio": "audio/q.wav", "choices": ["red", "blue"]}
    (folder / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    return folder / "manifest.jsonl"


def test_ship_refuses_a_default_that_is_not_listed(tmp_path):
    from speechgap.mini.ship import ship_zoo

    zoo = {"default": "full-step9", "checkpoints": [{"name": "base_lm", "kind": "text"}]}
    (tmp_path / "zoo.json").write_text(json.dumps(zoo))
    with pytest.raises(DataError, match="'full-step9' is not one of the listed") as caught:
        ship_zoo(tmp_path, tmp_path / "dest")
    assert caught.value.field == "default"


def test_study_into_a_folder_another_run_holds_is_refused(tmp_path):
    from speechgap.study import run_study

    zoo = _zoo(tmp_path / "zoo", [{"name": n, "variant": "full"} for n in "abc"], list("abc"))
    out = tmp_path / "study"
    holder = _hold_lock_in_another_process(out)
    try:
        with pytest.raises(ConfigError, match="in use by another speechgap run"):
            run_study(zoo, _dataset(["s0"]), out, progress=False)
    finally:
        holder.kill()
        holder.wait(timeout=10)


@pytest.mark.parametrize(
    "flag, value", [("--max-new-tokens", "0"), ("--eval-limit", "0"), ("--analysis-limit", "-3")]
)
def test_study_cli_refuses_meaningless_numbers(flag, value, tmp_path):
    result = _cli(["study", "--zoo", MISSING, "--data", MISSING, "--out", str(tmp_path / "o"), flag, value])
    _refused(result, flag)


# ------------------------------------------------------------------------------------------------- mini


@pytest.mark.parametrize(
    "flags, flag",
    [(["--threads", "0"], "--threads"), (["--checkpoints", "5", "--speech-steps", "2"], "--checkpoints")],
)
def test_mini_train_refuses_meaningless_numbers_before_writing(flags, flag, tmp_path, capsys):
    out = tmp_path / "zoo"
    assert main(["mini", "train", "--out", str(out), *flags]) == 2
    assert flag in capsys.readouterr().err
    assert not out.exists()


def test_mini_train_out_that_is_a_file_is_refused(tmp_path, capsys):
    out = tmp_path / "zoo"
    out.write_text("a file")
    assert main(["mini", "train", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "existing file" in err


def _tiny_training(text_steps: int = 1):
    from speechgap.mini.encoder import EncoderSettings
    from speechgap.mini.train import TrainSettings

    return TrainSettings(
        per_fact={"train": 1, "dev": 1, "test": 1},
        speech_train_per_fact=1,
        text_steps=text_steps,
        text_mix={"mcq": 4, "content": 2, "match": 2},
        speech_steps=1,
        speech_batch=4,
        text_per_batch=2,
        checkpoints=1,
        eval_limit=4,
        encoder=EncoderSettings(steps=0),
    )


def test_mini_train_one_step_zoo_and_reruns(tmp_path, monkeypatch):
    from transformers import Qwen2ForCausalLM

    from speechgap.mini.train import ZooResult, train_zoo

    out = tmp_path / "zoo"
    # as `--checkpoints 1 --speech-steps 1 --text-steps 1 --encoder-steps 0`: the base LM also has step 1,
    # which used to make it a candidate default (KeyError: 'speech_dev_accuracy', no zoo.json)
    zoo = train_zoo(out, _tiny_training())
    assert (out / "zoo.json").is_file()
    assert ZooResult.load(out).default in ("full-step1", "lora-step1") and zoo.default in (
        "full-step1",
        "lora-step1",
    )
    assert [c.name for c in zoo.checkpoints] == ["base_lm", "full-step1", "lora-step1"]

    # a rerun with another base LM budget must not reuse the old base LM under the new count
    before = (out / "zoo.json").read_bytes()
    with pytest.raises(
        ConfigError, match="base_lm was trained with other settings.*argument 'text_steps' is 2"
    ):
        train_zoo(out, _tiny_training(text_steps=2))
    assert (out / "zoo.json").read_bytes() == before

    # a rerun with the same settings reuses every stage, loading the base LM from safetensors only
    calls = []
    original = Qwen2ForCausalLM.from_pretrained.__func__

    def spy(cls, *args, **kwargs):
        calls.append(kwargs)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(Qwen2ForCausalLM, "from_pretrained", classmethod(spy))
    again = train_zoo(out, _tiny_training())
    assert [c.name for c in again.checkpoints] == ["base_lm", "full-step1", "lora-step1"]
    assert calls and all(kwargs.get("use_safetensors") is True for kwargs in calls)
    assert not (out / LOCK_FILE).exists()
