"""Hardening of eval, capture and model loading: one run per folder, resume only onto the same data,
clear errors for broken model folders, bad devices and bad flags, and no silent NaN or overlong prompts.

Each case reproduces a failure that used to run silently or end in a traceback, and asserts the clear
error (naming the file, field or argument; from the command line: exit 2, no traceback) or the correct
behaviour. Every subprocess has a timeout.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechgap.cli import main as cli_main
from speechgap.data.load import load_pairs
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError, DataError, ModelError
from speechgap.evaluation.run import EvalSettings, evaluate
from speechgap.io import JsonlAppender, ResumeWarning, RunLock, _process_start, read_jsonl
from speechgap.models import load_model
from speechgap.models.capture import CaptureStore, capture_dataset
from speechgap.models.tiny import build_tiny_model

SUBPROCESS_TIMEOUT_S = 300
MODELS_SRC = Path(__file__).resolve().parents[2] / "src" / "speechgap" / "models"
ADAPTERS = {"family", "TextLM"}  # speechgap's own from_pretrained, which loads through load_checked
NO_WEIGHTS = ("Tokenizer", "Processor", "Config", "FeatureExtractor")


# ------------------------------------------------------------------------------------------ fixtures
def _write_manifest(folder: Path, n: int, *, seed: int = 0, answer_shift: int = 0) -> Path:
    """``n`` multiple-choice pairs with random audio, written as ``folder/manifest.jsonl``."""
    rng = np.random.default_rng(seed)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    with open(folder / "manifest.jsonl", "w", encoding="utf-8") as handle:
        for i in range(n):
            sf.write(folder / "audio" / f"q{i}.wav", 0.2 * rng.standard_normal(8000 + 800 * i), 16000)
            item = {
                "id": f"q{i}",
                "text": f"Which colour {i}?\nA. red\nB. blue\nC. green\nD. black",
                "audio": f"audio/q{i}.wav",
                "choices": ["red", "blue", "green", "black"],
                "answer": "ABCD"[(i + answer_shift) % 4],
            }
            handle.write(json.dumps(item) + "\n")
    return folder / "manifest.jsonl"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random-weight Qwen2-Audio folder and a 5-sample manifest."""
    root = tmp_path_factory.mktemp("hardening_models")
    build_tiny_model("qwen2_audio", root / "model", seed=0)
    _write_manifest(root / "data", 5)
    return root


@pytest.fixture(scope="module")
def adapter(tiny):
    return load_model(tiny / "model", protocol="instructed")


def _sample(sample_id: str, text: str = "What is the capital of France?", seconds: float = 0.8, **fields):
    rng = np.random.default_rng(zlib.crc32(sample_id.encode()))
    audio = (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32)
    return PairedSample(id=sample_id, text=text, audio=audio, **fields)


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    """Run ``speechgap ARGV`` in this process: exit status and stderr."""
    status = cli_main(argv)
    return status, capsys.readouterr().err


def _keys(path: Path) -> list[tuple]:
    return [(r["id"], r["modality"], r.get("model_role")) for _, r in read_jsonl(path)]


class ScriptedModel:
    """Answers "A" to everything: enough for the runner's bookkeeping."""

    def generate_batch(self, samples, modality, max_new_tokens):
        return ["The answer is A." for _ in samples]

    def score_options(self, sample, modality, options):
        raise AssertionError("not used")

    def render_prompt(self, modality, text=""):
        return f"<{modality}>{text}"

    def generation_settings(self, max_new_tokens=256):
        return {"do_sample": False, "max_new_tokens": max_new_tokens}

    def describe(self):
        return {"name_or_path": "scripted"}


def _memory_data(n: int, *, answer_shift: int = 0, ids: list[str] | None = None) -> PairedDataset:
    ids = ids or [f"q{i}" for i in range(n)]
    samples = [
        PairedSample(
            id=sample_id,
            text=f"Question {i}?",
            audio=np.full(1600, 0.1, np.float32),
            answer="ABCD"[(i + answer_shift) % 4],
            choices=["w", "x", "y", "z"],
            subset="toy",
        )
        for i, sample_id in enumerate(ids)
    ]
    return PairedDataset.from_samples(samples, {"loader": "test"})


# ------------------------------------------------------------------------------------------ 1. one run per folder
def test_two_eval_processes_into_one_folder_run_once(tiny, tmp_path):
    """Two `speechgap eval` started at once into one --out: one runs, the other is refused as 'in use'
    (or, if the first finished before the second took the folder, resumes with nothing to do); every
    record is in results.jsonl exactly once."""
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "speechgap", "eval", "--model", str(tiny / "model"),
        "--data", str(tiny / "data" / "manifest.jsonl"), "--out", str(out),
        "--max-new-tokens", "8", "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    outcomes = []
    try:
        for process in processes:
            _, err = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
            outcomes.append((process.returncode, err))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    statuses = sorted(status for status, _ in outcomes)
    assert statuses in ([0, 0], [0, 2]), outcomes
    for status, err in outcomes:
        assert "Traceback" not in err
        if status == 2:
            assert "is in use by another speechgap run" in err and "--out" in err
    keys = _keys(out / "results.jsonl")
    assert len(keys) == len(set(keys)) == 10
    assert not (out / ".speechgap.lock").exists()


@pytest.fixture
def foreign_lock():
    """A lock file as another live process would leave it: ``hold(folder)``."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    held: list[Path] = []

    def hold(folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        record = {
            "pid": sleeper.pid,
            "pid_start": _process_start(sleeper.pid),
            "host": socket.gethostname(),
            "started": "2026-01-01T00:00:00+00:00",
            "command": "eval",
        }
        (folder / ".speechgap.lock").write_text(json.dumps(record))
        held.append(folder)

    yield hold
    sleeper.kill()
    sleeper.wait(timeout=30)


def test_eval_and_capture_refuse_a_folder_in_use(tiny, adapter, tmp_path, foreign_lock, capsys):
    foreign_lock(tmp_path / "eval")
    with pytest.raises(ConfigError, match="in use by another speechgap run"):
        evaluate(ScriptedModel(), _memory_data(2), tmp_path / "eval", progress=False)
    assert not (tmp_path / "eval" / "results.jsonl").exists()
    foreign_lock(tmp_path / "cap")
    with pytest.raises(ConfigError, match="in use by another speechgap run"):
        capture_dataset(adapter, _memory_data(2), tmp_path / "cap", progress=False)
    assert not (tmp_path / "cap" / "index.jsonl").exists()
    # the command line refuses before it loads the model (the model path does not even exist)
    status, err = _cli(
        ["capture", "--model", str(tmp_path / "nope"), "--data", str(tiny / "data" / "manifest.jsonl"),
         "--out", str(tmp_path / "cap"), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert status == 2 and "in use" in err and "--out" in err and "Traceback" not in err


def test_a_stale_lock_is_taken_over_by_one_run_only(tmp_path, foreign_lock):
    """Two runs that both judged the same dead run's lock stale: the second must not remove the lock the
    first one has just taken."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    stale = {
        "pid": dead.pid,
        "pid_start": "1",
        "host": socket.gethostname(),
        "started": "then",
        "command": "",
    }
    (tmp_path / ".speechgap.lock").write_text(json.dumps(stale))
    late = RunLock(tmp_path)
    assert late._is_stale(late._owner())
    with RunLock(tmp_path):  # the first run takes over the stale lock ...
        late._remove_stale(stale)  # ... and the second, acting on what it read before, leaves it alone
        assert json.loads((tmp_path / ".speechgap.lock").read_text())["pid"] == os.getpid()
    assert not (tmp_path / ".speechgap.lock").exists()
    foreign_lock(tmp_path)  # a live owner is never removed
    late._remove_stale(late._owner())
    assert (tmp_path / ".speechgap.lock").exists()


def test_out_that_is_a_file_or_read_only(tiny, adapter, tmp_path, capsys):
    a_file = tmp_path / "results.txt"
    a_file.write_text("not a folder")
    with pytest.raises(ConfigError, match="argument 'out_dir'.*existing file"):
        evaluate(ScriptedModel(), _memory_data(2), a_file, progress=False)
    with pytest.raises(ConfigError, match="argument 'out_dir'.*existing file"):
        capture_dataset(adapter, _memory_data(2), a_file, progress=False)
    status, err = _cli(
        ["eval", "--model", str(tiny / "model"), "--data", str(tiny / "data" / "manifest.jsonl"),
         "--out", str(a_file), "--no-progress", "--limit", "1"],
        capsys,
    )  # fmt: skip
    assert status == 2 and "--out" in err and "existing file" in err and "Traceback" not in err
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "read_only"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            with pytest.raises(ConfigError, match="not writable"):
                evaluate(ScriptedModel(), _memory_data(2), locked, progress=False)
        finally:
            locked.chmod(0o700)


def test_appender_keeps_the_first_of_duplicate_keys_and_counts_them(tmp_path):
    path = tmp_path / "results.jsonl"
    lines = [{"id": "a", "v": 1}, {"id": "b", "v": 2}, {"id": "a", "v": 3}, {"id": "b", "v": 4}]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    with JsonlAppender(path, key=lambda r: r["id"], remember=lambda r: r["v"]) as sink:
        assert sink.duplicates == 2
        assert sink.remembered("a") == 1 and sink.remembered("b") == 2
        sink.write({"id": "c", "v": 5})
    assert [r for _, r in read_jsonl(path)] == [{"id": "a", "v": 1}, {"id": "b", "v": 2}, {"id": "c", "v": 5}]
    with JsonlAppender(path, key=lambda r: r["id"]) as sink:
        assert sink.duplicates == 0
    path.write_text('{"id": "a"}\n{"name": "b"}\n')
    with pytest.raises(DataError, match=r"results\.jsonl:2.*without its key"):
        JsonlAppender(path, key=lambda r: r["id"])


def test_eval_resume_reports_and_drops_duplicate_records(tmp_path):
    data = _memory_data(4)
    evaluate(ScriptedModel(), data, tmp_path, progress=False)
    results = tmp_path / "results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines + lines[:3]) + "\n")  # as two runs at once left it
    with pytest.warns(ResumeWarning, match=r"results\.jsonl: dropped 3 duplicate record"):
        run = evaluate(ScriptedModel(), data, tmp_path, progress=False)
    assert run.written == 0
    keys = _keys(results)
    assert len(keys) == len(set(keys)) == 8
    assert "dropped 3 duplicate" in json.loads((tmp_path / "run.json").read_text())["warnings"][0]


def test_capture_resume_reports_and_drops_duplicate_index_lines(adapter, tmp_path):
    data = _memory_data(3)
    capture_dataset(adapter, data, tmp_path, layers=[1], progress=False)
    index = tmp_path / "index.jsonl"
    lines = index.read_text().splitlines()
    index.write_text("\n".join(lines + lines[:2]) + "\n")
    with pytest.warns(ResumeWarning, match=r"index\.jsonl: dropped 2 duplicate line"):
        store = capture_dataset(adapter, data, tmp_path, layers=[1], progress=False)
    assert [json.loads(line)["id"] for line in index.read_text().splitlines()] == data.ids
    assert store.ids == data.ids
    assert "dropped 2 duplicate" in json.loads((tmp_path / "capture.json").read_text())["warnings"][0]


# ------------------------------------------------------------------------------------------ 2. resume onto other data
def test_eval_resume_refuses_changed_samples_and_other_ids(tmp_path):
    evaluate(ScriptedModel(), _memory_data(4), tmp_path, progress=False)
    assert all(r["sample_hash"] for _, r in read_jsonl(tmp_path / "results.jsonl"))
    with pytest.raises(
        ConfigError, match=r"sample 'q0' changed since .*results\.jsonl.*argument 'out_dir'.*delete"
    ):
        evaluate(ScriptedModel(), _memory_data(4, answer_shift=1), tmp_path, progress=False)
    other_ids = _memory_data(4, ids=["q0", "q1", "q2", "x9"])
    with pytest.raises(ConfigError, match=r"1 sample\(s\) that this data does not have \(such as 'q3'\)"):
        evaluate(ScriptedModel(), other_ids, tmp_path, progress=False)
    # the same data still resumes
    assert evaluate(ScriptedModel(), _memory_data(4), tmp_path, progress=False).skipped == 8


def test_eval_cli_refuses_resume_after_the_manifest_was_edited(tiny, tmp_path, capsys):
    data_dir = tmp_path / "data"
    manifest = _write_manifest(data_dir, 3)
    argv = ["eval", "--model", str(tiny / "model"), "--data", str(manifest), "--out", str(tmp_path / "run"),
            "--max-new-tokens", "2", "--no-progress", "--modality", "text"]  # fmt: skip
    assert _cli(argv, capsys)[0] == 0
    _write_manifest(data_dir, 3, answer_shift=2)  # same path, same count: only the references changed
    status, err = _cli(argv, capsys)
    assert status == 2 and "Traceback" not in err
    assert "sample 'q0' changed" in err and "--out" in err and "delete" in err


def test_folders_without_fingerprints_still_resume_with_one_warning(adapter, tmp_path):
    data = _memory_data(4)
    evaluate(ScriptedModel(), data, tmp_path / "eval", progress=False)
    results = tmp_path / "eval" / "results.jsonl"
    records = [r for _, r in read_jsonl(results)]
    for record in records:
        del record["sample_hash"]
    results.write_text("".join(json.dumps(r) + "\n" for r in records[:5]))  # and a crash after 5 records
    with pytest.warns(
        ResumeWarning, match=r"4 finished sample\(s\) were written before sample fingerprints"
    ) as caught:
        run = evaluate(ScriptedModel(), data, tmp_path / "eval", progress=False)
    assert len([w for w in caught if issubclass(w.category, ResumeWarning)]) == 1
    assert run.written == 3 and len(set(_keys(results))) == 8

    capture_dataset(adapter, data, tmp_path / "cap", layers=[1], progress=False)
    index = tmp_path / "cap" / "index.jsonl"
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    for line in lines:
        del line["sample_hash"]
    index.write_text("".join(json.dumps(line) + "\n" for line in lines[:2]))
    with pytest.warns(ResumeWarning, match=r"2 finished sample\(s\) were written before"):
        store = capture_dataset(adapter, data, tmp_path / "cap", layers=[1], progress=False)
    assert store.ids == data.ids


def test_capture_refuses_other_data_and_keeps_its_record(adapter, tmp_path):
    data = _memory_data(3)
    capture_dataset(adapter, data, tmp_path, layers=[1], progress=False)
    before = (tmp_path / "capture.json").read_text()
    other = PairedDataset.from_samples(
        [_sample(f"q{i}") for i in range(3)], {"loader": "memory", "name": "b"}
    )
    with pytest.raises(ConfigError, match=r"sample 'q0' changed since .*index\.jsonl.*delete"):
        capture_dataset(adapter, other, tmp_path, layers=[1], progress=False)
    disjoint = PairedDataset.from_samples([_sample("z0")], {"loader": "memory", "name": "c"})
    with pytest.raises(ConfigError, match=r"3 sample\(s\) that this data does not have"):
        capture_dataset(adapter, disjoint, tmp_path, layers=[1], progress=False)
    assert (tmp_path / "capture.json").read_text() == before
    assert CaptureStore(tmp_path).ids == data.ids
    # the same samples with more after them: a larger --limit continues the capture
    more = _memory_data(5)
    assert capture_dataset(adapter, more, tmp_path, layers=[1], progress=False).ids == more.ids


# ------------------------------------------------------------------------------------------ 3. clear errors
def _broken_copy(tiny: Path, tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(tiny / "model", folder)
    return folder


def _with_safetensors(folder: Path, change) -> None:
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    change(tensors)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})


UP_PROJ = "language_model.model.layers.0.mlp.up_proj.weight"


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("invalid_json", r"config\.json: not valid JSON"),
        ("not_utf8", r"config\.json: not UTF-8"),
        ("list_json", r"config\.json: expected a JSON object, found a JSON array"),
        ("no_model_type", r"config\.json has no model_type"),
        ("empty_weights", r"cannot load the qwen2_audio model.*header"),
        ("truncated_weights", r"cannot load the qwen2_audio model"),
        (
            "wrong_shape",
            r"1 weight\(s\) of the checkpoint have another shape.*up_proj.*\(64, 16\).*\(64, 32\)",
        ),
        ("missing_weight", r"1 weight\(s\) are missing from the checkpoint.*up_proj"),
        ("template_raises", r"chat template failed to render the (speech|text) prompt.*boom"),
        ("template_escapes", r"chat template tried an operation the sandbox forbids"),
    ],
)
def test_broken_model_folders_are_clear_errors(tiny, tmp_path, case, expected):
    folder = _broken_copy(tiny, tmp_path, case)
    weights = folder / "model.safetensors"
    if case == "invalid_json":
        (folder / "config.json").write_text("{not json")
    elif case == "not_utf8":
        (folder / "config.json").write_bytes(b"\xff\xfe{}")
    elif case == "list_json":
        (folder / "config.json").write_text("[1, 2]")
    elif case == "no_model_type":
        (folder / "config.json").write_text("{}")
    elif case == "empty_weights":
        weights.write_bytes(b"")
    elif case == "truncated_weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif case == "wrong_shape":
        _with_safetensors(folder, lambda t: t.__setitem__(UP_PROJ, t[UP_PROJ][:, :16].contiguous()))
    elif case == "missing_weight":
        _with_safetensors(folder, lambda t: t.pop(UP_PROJ))
    elif case == "template_raises":
        (folder / "chat_template.jinja").write_text("{{ raise_exception('boom') }}")
    elif case == "template_escapes":
        (folder / "chat_template.jinja").write_text("{{ ''.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ModelError, match=expected) as caught:
        load_model(folder)
    assert str(folder) in str(caught.value)


def test_broken_model_folder_from_the_command_line(tiny, tmp_path, capsys):
    folder = _broken_copy(tiny, tmp_path, "cli")
    (folder / "config.json").write_text("[]")
    status, err = _cli(
        ["capture", "--model", str(folder), "--data", str(tiny / "data" / "manifest.jsonl"),
         "--out", str(tmp_path / "out"), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert status == 2 and "config.json" in err and "Traceback" not in err


def test_devices_are_checked_before_anything_is_loaded(tiny, tmp_path, capsys):
    missing_model = tmp_path / "no_such_model"
    with pytest.raises(ConfigError, match="argument 'device' must be cpu, cuda, cuda:N or mps, got 'banana'"):
        load_model(missing_model, device="banana")
    if torch.cuda.is_available():
        impossible = f"cuda:{torch.cuda.device_count()}"
        with pytest.raises(ConfigError, match=rf"argument 'device' is '{impossible}'.*CUDA device"):
            load_model(missing_model, device=impossible)
    else:
        with pytest.raises(ConfigError, match="argument 'device' is 'cuda', but"):
            load_model(missing_model, device="cuda")
    for command in ("eval", "capture"):
        status, err = _cli(
            [command, "--model", str(missing_model), "--data", str(tiny / "data" / "manifest.jsonl"),
             "--out", str(tmp_path / command), "--device", "banana", "--no-progress"],
            capsys,
        )  # fmt: skip
        assert status == 2 and "--device" in err and "banana" in err and "Traceback" not in err


def test_corrupt_run_record_is_a_clear_error(tiny, tmp_path, capsys):
    evaluate(ScriptedModel(), _memory_data(2), tmp_path / "run", progress=False)
    (tmp_path / "run" / "run.json").write_text('{"model": ')
    with pytest.raises(DataError, match=r"run\.json: cannot read a run record.*argument 'out_dir'"):
        evaluate(ScriptedModel(), _memory_data(2), tmp_path / "run", progress=False)
    (tmp_path / "run" / "run.json").write_text("[]")
    with pytest.raises(DataError, match=r"run\.json: expected a run record"):
        evaluate(ScriptedModel(), _memory_data(2), tmp_path / "run", progress=False)
    (tmp_path / "run" / "run.json").unlink()
    with pytest.raises(DataError, match=r"results\.jsonl is here but run\.json is missing"):
        evaluate(ScriptedModel(), _memory_data(2), tmp_path / "run", progress=False)

    manifest = _write_manifest(tmp_path / "data", 2)
    argv = ["eval", "--model", str(tiny / "model"), "--data", str(manifest), "--out", str(tmp_path / "cli"),
            "--max-new-tokens", "2", "--no-progress", "--modality", "text"]  # fmt: skip
    assert _cli(argv, capsys)[0] == 0
    (tmp_path / "cli" / "run.json").write_bytes(b"\xff\x00")
    status, err = _cli(argv, capsys)
    assert status == 2 and "run.json" in err and "--out" in err and "Traceback" not in err


@pytest.mark.parametrize("damage", ["deleted", "truncated"])
def test_damaged_capture_shard_when_resuming_and_reading(adapter, tmp_path, damage):
    data = _memory_data(4)
    capture_dataset(adapter, data, tmp_path, layers=[1], shard_samples=2, progress=False)
    shard = tmp_path / "shards" / "shard-00000.safetensors"
    if damage == "deleted":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:-100])
    store = CaptureStore(tmp_path)
    with pytest.raises(DataError, match=r"shard-00000\.safetensors.*(missing|damaged or truncated).*'q0'"):
        store.get("q0", "speech")
    np.testing.assert_equal(store.get("q2", "text").hidden.ndim, 3)  # the other shard still reads
    with pytest.raises(DataError, match=r"shard-00000\.safetensors.*(missing|damaged or truncated).*delete"):
        capture_dataset(adapter, data, tmp_path, layers=[1], shard_samples=2, progress=False)


def test_corrupt_capture_record_is_a_clear_error(adapter, tmp_path):
    capture_dataset(adapter, _memory_data(1), tmp_path, layers=[1], progress=False)
    (tmp_path / "capture.json").write_text("{")
    with pytest.raises(DataError, match=r"capture\.json: cannot read a capture record"):
        CaptureStore(tmp_path)
    with pytest.raises(DataError, match=r"capture\.json: cannot read a capture record.*delete"):
        capture_dataset(adapter, _memory_data(1), tmp_path, layers=[1], progress=False)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--seed", "-1"], "--seed"),
        (["--batch-size", "0"], "--batch-size"),
        (["--max-new-tokens", "0"], "--max-new-tokens"),
        (["--limit", "0"], "--limit"),
        (["--limit", "-3"], "--limit"),
        (["--modality", "speech,speech"], "--modality"),
        (["--modality", "video"], "--modality"),
        (["--scoring-mode", "vibes"], "--scoring-mode"),
        (["--dtype", "int3"], "--dtype"),
    ],
)
def test_every_eval_flag_is_checked_before_the_model_loads(tiny, tmp_path, capsys, flags, named):
    """The model path does not exist: the flag's error comes first, naming it, with no summary written."""
    started = time.monotonic()
    status, err = _cli(
        ["eval", "--model", str(tmp_path / "no_such_model"), "--data", str(tiny / "data" / "manifest.jsonl"),
         "--out", str(tmp_path / "run"), "--no-progress", *flags],
        capsys,
    )  # fmt: skip
    assert status == 2 and named in err and "Traceback" not in err, err
    assert "no_such_model" not in err
    assert time.monotonic() - started < 30


def test_eval_settings_refuse_bad_values():
    for bad in ({"seed": -1}, {"seed": 1.5}, {"batch_size": True}, {"limit": 0}, {"max_new_tokens": "8"}):
        with pytest.raises(ConfigError, match=f"argument '{next(iter(bad))}'"):
            EvalSettings(**bad)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--limit", "0"], "--limit"),
        (["--batch-size", "0"], "--batch-size"),
        (["--shard-samples", "0"], "--shard-samples"),
        (["--layers", "-1"], "--layers"),
        (["--layers", "1,x"], "--layers"),
        (["--modalities", "video"], "--modalities"),
        (["--modalities", "text,text"], "--modalities"),
        (["--model-dtype", "int3"], "--model-dtype"),
    ],
)
def test_every_capture_flag_is_checked_before_the_model_loads(tiny, tmp_path, capsys, flags, named):
    status, err = _cli(
        ["capture", "--model", str(tmp_path / "no_such_model"), "--data", str(tiny / "data" / "manifest.jsonl"),
         "--out", str(tmp_path / "cap"), "--no-progress", *flags],
        capsys,
    )  # fmt: skip
    assert status == 2 and named in err and "Traceback" not in err, err
    assert not (tmp_path / "cap" / "index.jsonl").exists()


def test_capture_limit_zero_writes_nothing_and_fails(tiny, tmp_path, capsys):
    status, err = _cli(
        ["capture", "--model", str(tiny / "model"), "--data", str(tiny / "data" / "manifest.jsonl"),
         "--out", str(tmp_path / "cap"), "--limit", "0", "--no-progress"],
        capsys,
    )  # fmt: skip
    assert status == 2 and "--limit must be >= 1, got 0" in err
    with pytest.raises(ConfigError, match="argument 'dataset' holds no samples"):
        capture_dataset(load_model(tiny / "model"), _memory_data(0), tmp_path / "empty", progress=False)


# ------------------------------------------------------------------------------------------ 4. silent failures
def test_prompt_longer_than_the_model_positions_is_refused(adapter, tmp_path):
    limit = adapter.max_positions
    assert limit == 1024
    long = _sample(
        "long", text="The quick brown fox jumps over the lazy dog. " * 200, choices=["a", "b"], answer="A"
    )
    for call in (
        lambda: adapter.generate(long, "text", max_new_tokens=2),
        lambda: adapter.capture(long, "text"),
        lambda: adapter.score_options(long, "text"),
    ):
        with pytest.raises(
            ModelError, match=rf"sample 'long': the text prompt is \d+ tokens.*{limit} positions"
        ):
            call()
    # eval stops at it with the error; capture records it as skipped with its reason
    data = PairedDataset.from_samples([long])
    with pytest.raises(ModelError, match="sample 'long'"):
        evaluate(adapter, data, tmp_path / "eval", EvalSettings(modalities=("text",)), progress=False)
    store = capture_dataset(adapter, data, tmp_path / "cap", layers=[1], modalities=["text"], progress=False)
    assert "1024 positions" in store.skipped["long"]


def test_non_finite_audio_is_refused_before_the_model_runs(adapter, tmp_path):
    bad = _sample("nan_audio")
    bad.audio[100] = np.nan
    bad.audio[200] = np.inf
    for call in (
        lambda: adapter.generate(bad, "speech", max_new_tokens=2),
        lambda: adapter.capture(bad, "speech"),
        lambda: adapter.score_options(bad, "speech"),
    ):
        with pytest.raises(ModelError, match=r"sample 'nan_audio': the audio holds 2 non-finite values"):
            call()
    store = capture_dataset(adapter, PairedDataset.from_samples([bad]), tmp_path, layers=[1], progress=False)
    assert "non-finite" in store.skipped["nan_audio"]


def test_non_finite_states_from_an_edit_name_the_sample_and_layer(adapter):
    sample = _sample("edited")

    def make_nan(states, positions):
        return torch.full_like(states, float("nan"))

    with adapter.edit({2: make_nan}):
        for call in (
            lambda: adapter.generate(sample, "speech", max_new_tokens=2),
            lambda: adapter.capture(sample, "text"),
            lambda: adapter.score_options(sample, "text"),
        ):
            with pytest.raises(
                ModelError, match=r"sample 'edited' \(\w+ run\): the edit at layer 2 returned non-finite"
            ):
                call()
    assert np.isfinite(adapter.capture(sample, "speech").hidden).all()  # the model is untouched afterwards


def _poison(block: torch.nn.Module, rows: slice = slice(None)):
    """A hook that puts inf into a block's output (as a float16 overflow would), in the given rows."""

    def hook(_module, _args, out):
        hidden = out[0] if isinstance(out, tuple) else out
        hidden = hidden.clone()
        hidden[rows, -1] = float("inf")
        return (hidden, *out[1:]) if isinstance(out, tuple) else hidden

    return block.register_forward_hook(hook)


def test_non_finite_hidden_states_are_an_error_not_an_empty_answer(adapter):
    sample = _sample("overflow")
    handle = _poison(adapter.decoder_layers[1])  # the output of block 2 = layer 2
    try:
        for call in (
            lambda: adapter.generate(sample, "text", max_new_tokens=2),
            lambda: adapter.capture(sample, "speech", layers=[3]),
            lambda: adapter.score_options(sample, "speech"),
        ):
            with pytest.raises(
                ModelError,
                match=r"sample 'overflow' \(\w+ run\): the hidden states at layer 2 are not finite.*dtype",
            ):
                call()
        with adapter.edit({1: lambda states, positions: None}):
            with pytest.raises(ModelError, match=r"layer 2 are not finite.*inside an edit block"):
                adapter.capture(sample, "text")
    finally:
        handle.remove()
    # a batch: the row that holds the non-finite state is named
    handle = _poison(adapter.decoder_layers[0], rows=slice(1, 2))
    try:
        with pytest.raises(ModelError, match=r"sample 'second' \(text run\): the hidden states at layer 1"):
            adapter.capture_batch([_sample("first"), _sample("second")], "text", layers=[3])
    finally:
        handle.remove()
    assert np.isfinite(adapter.capture(sample, "text").hidden).all()


def test_loglik_refuses_more_than_26_options(adapter, tmp_path):
    choices = [f"option {k}" for k in range(30)]
    sample = _sample("many", text="Pick one.", choices=choices, answer="A")
    data = PairedDataset.from_samples([sample])
    with pytest.raises(DataError, match=r"field 'choices': sample 'many' has 30 options.*at most 26"):
        evaluate(
            adapter, data, tmp_path, EvalSettings(answer_mode="loglik", modalities=("text",)), progress=False
        )


def test_padding_rows_are_not_reported_as_non_finite(adapter):
    """Batched runs pad short rows; only real positions are checked, so batched == unbatched still holds."""
    samples = [_sample("short", text="Hi?"), _sample("longer", text="What is the capital of France, again?")]
    answers = adapter.generate_batch(samples, "text", max_new_tokens=3)
    assert answers == [adapter.generate(s, "text", max_new_tokens=3) for s in samples]


# ------------------------------------------------------------------------------------------ 5. safe loading
def test_every_weight_load_uses_safetensors_and_no_remote_code_unless_asked():
    """Every ``from_pretrained`` in models/ that loads weights passes ``use_safetensors=True``; none passes
    ``trust_remote_code=True`` as a literal (only the caller's own flag)."""
    weight_calls = 0
    for path in sorted(MODELS_SRC.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "from_pretrained":
                continue
            keywords = {k.arg: k.value for k in node.keywords if k.arg}
            remote = keywords.get("trust_remote_code")
            assert not (isinstance(remote, ast.Constant) and remote.value is True), (
                f"{path.name}:{node.lineno}"
            )
            receiver = ast.unparse(node.func.value)
            if receiver in ADAPTERS or any(part in receiver for part in NO_WEIGHTS):
                continue
            weight_calls += 1
            flag = keywords.get("use_safetensors")
            assert isinstance(flag, ast.Constant) and flag.value is True, (
                f"{path.name}:{node.lineno} {receiver}"
            )
    assert weight_calls >= 1


def test_loading_passes_trust_remote_code_only_when_asked(tiny, monkeypatch):
    import transformers

    seen = []
    real = transformers.AutoProcessor.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoProcessor, "from_pretrained", spy)
    load_model(tiny / "model")
    assert seen == [False]


def test_kill_free_resume_still_exactly_once_with_fingerprints(tiny, tmp_path):
    """A resumed eval over a real manifest: the hashes written, re-checked, and every key once."""
    data = load_pairs(tiny / "data" / "manifest.jsonl")
    model = load_model(tiny / "model")
    settings = EvalSettings(max_new_tokens=2, modalities=("text",))
    evaluate(model, data, tmp_path, settings, progress=False)
    results = tmp_path / "results.jsonl"
    lines = results.read_text().splitlines()
    results.write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])  # a crash mid-record
    run = evaluate(model, data, tmp_path, settings, progress=False)
    assert run.written == 3 and run.skipped == 2
    hashes = {r["id"]: r["sample_hash"] for _, r in read_jsonl(results)}
    assert hashes == data.fingerprint()
