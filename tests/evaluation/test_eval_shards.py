"""Sharded ``evaluate``: K shards run one after another, merged, against the unsharded run of the same data."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

from speechgap import api
from speechgap.data.types import PairedDataset, PairedSample
from speechgap.errors import ConfigError, DataError
from speechgap.evaluation.run import EvalSettings, evaluate
from speechgap.evaluation.shards import merge_eval_shards
from speechgap.io import read_jsonl

# the moment and command of a run, and the merge's list of its shards
_WHEN_AND_HOW = ("created", "command", "merged_from")


class ScriptedModel:
    """Answers from a script; ``fail=True`` refuses to answer (a resume must not ask)."""

    def __init__(self, script: dict[tuple[str, str], str], name: str = "scripted", fail: bool = False):
        self.script, self.name, self.fail = script, name, fail

    def generate_batch(self, samples, modality, max_new_tokens):
        if self.fail:
            raise AssertionError("asked to answer, but every record is already there")
        return [self.script[(sample.id, modality)] for sample in samples]

    def score_options(self, sample, modality, options):
        raise AssertionError("not used")

    def render_prompt(self, modality, text=""):
        return f"<{modality}>{text}"

    def generation_settings(self, max_new_tokens=256):
        return {"do_sample": False, "max_new_tokens": max_new_tokens}

    def describe(self):
        return {"name_or_path": self.name}


def _dataset(n: int, name: str = "shards") -> PairedDataset:
    samples = [
        PairedSample(
            id=f"q{i}",
            text=f"Question {i}?\nA. w\nB. x\nC. y\nD. z",
            audio=(0.1 * np.sin(np.arange(8000) * (0.05 + 0.01 * i))).astype(np.float32),
            answer="ABCD"[i % 4],
            choices=["w", "x", "y", "z"],
            subset="ab"[i % 2],
        )
        for i in range(n)
    ]
    return PairedDataset.from_samples(samples, {"loader": "test", "name": name})


def _models(n: int, seed: int = 0, fail: bool = False) -> tuple[ScriptedModel, ScriptedModel]:
    """A speech LLM and a base LM answering right, wrong or unparseably (VoiceBench's seeded fallback then
    guesses, in record order)."""
    rng = random.Random(seed)
    script = {}
    for i in range(n):
        for modality in ("speech", "text"):
            script[(f"q{i}", modality)] = rng.choice(
                ["The answer is " + "ABCD"[i % 4], "**" + "ABCD"[(i + 1) % 4] + "**", "No idea."]
            )
    base = {(sid, "text"): "**A**" if k % 3 else "hmm" for k, (sid, _) in enumerate(script)}
    return ScriptedModel(script, fail=fail), ScriptedModel(base, name="base", fail=fail)


SETTINGS = EvalSettings(mcq_protocol="voicebench", max_new_tokens=8)


def _records(folder: Path) -> list[dict]:
    return [record for _, record in read_jsonl(folder / "results.jsonl")]


def _run_shards(data, folder, count, settings=SETTINGS, seed=0):
    model, base = _models(len(data), seed)
    dirs = [folder / f"shard-{k}" for k in range(count)]
    for k, shard_dir in enumerate(dirs):
        evaluate(model, data.shard(k, count), shard_dir, settings, base_model=base, progress=False)
    return dirs


def _without(record: dict) -> dict:
    return {key: value for key, value in record.items() if key not in _WHEN_AND_HOW}


@pytest.mark.parametrize("count", [3, 2])  # 7 samples: 3 + 2 + 2, and 4 + 3
def test_merged_shards_equal_the_unsharded_run_and_it_resumes_with_nothing_to_do(count, tmp_path):
    data = _dataset(7)
    model, base = _models(7)
    reference = evaluate(model, data, tmp_path / "ref", SETTINGS, base_model=base, progress=False)
    dirs = _run_shards(data, tmp_path, count)
    merged = merge_eval_shards(list(reversed(dirs)), tmp_path / "merged", data)
    assert merged.written == 3 * 7

    # every record once, in the unsharded run's order (role and modality outer, data order inner)
    records = _records(tmp_path / "merged")
    assert records == _records(tmp_path / "ref")
    assert [(r["model_role"], r["modality"], r["id"]) for r in records] == [
        (role, modality, sid) for role, modality in SEQUENCE for sid in data.ids
    ]
    assert any(r["rule"].startswith("voicebench_compat:") for r in records)
    summary = json.loads((tmp_path / "merged" / "summary.json").read_text())
    expected = json.loads((tmp_path / "ref" / "summary.json").read_text())
    assert {k: v for k, v in summary.items() if k != "provenance"} == {
        k: v for k, v in expected.items() if k != "provenance"
    }
    assert _without(summary["provenance"]) == _without(expected["provenance"])
    assert merged.summary == summary and reference.summary == expected

    run_record = json.loads((tmp_path / "merged" / "run.json").read_text())
    expected_record = json.loads((tmp_path / "ref" / "run.json").read_text())
    for key in ("model", "base_model", "data", "settings"):
        assert run_record[key] == expected_record[key]
    assert run_record["merged_from"] == [str(folder.resolve()) for folder in dirs]

    # merging again gives the same files
    before = {name: (tmp_path / "merged" / name).read_bytes() for name in ("results.jsonl", "run.json")}
    merge_eval_shards(dirs, tmp_path / "merged", data)
    assert {name: (tmp_path / "merged" / name).read_bytes() for name in before} == before

    # the unsharded command resumes the merged folder with nothing left to do
    silent, silent_base = _models(7, fail=True)
    resumed = evaluate(silent, data, tmp_path / "merged", SETTINGS, base_model=silent_base, progress=False)
    assert (resumed.written, resumed.skipped) == (0, 3 * 7)
    assert _records(tmp_path / "merged") == _records(tmp_path / "ref")


SEQUENCE = [("lslm", "speech"), ("lslm", "text"), ("base", "text")]


def test_merge_refuses_what_does_not_make_the_whole_run(tmp_path):
    data = _dataset(7)
    dirs = _run_shards(data, tmp_path, 3)
    out = tmp_path / "merged"

    def copy(folder: Path, name: str) -> Path:
        shutil.copytree(folder, tmp_path / name, ignore=shutil.ignore_patterns(".speechgap.lock"))
        return tmp_path / name

    with pytest.raises(ConfigError, match=r"sample 'q5' \(speech, lslm\) is in no shard: shard 3/3 should"):
        merge_eval_shards(dirs[:2], out, data)
    with pytest.raises(ConfigError, match="both hold shard 2/3, so their records overlap"):
        merge_eval_shards([dirs[0], dirs[1], dirs[1], dirs[2]], out, data)
    with pytest.raises(ConfigError, match="argument 'out_dir' is the folder of shard 1/3"):
        merge_eval_shards(dirs, dirs[0], data)
    with pytest.raises(DataError, match="shard 1/3 was run on other data than argument 'data'"):
        merge_eval_shards(dirs, out, _dataset(7, name="other"))
    with pytest.raises(
        DataError, match="shard 3/3 holds sample 'q5', which is in block 2/3 of argument 'data'"
    ):
        merge_eval_shards(dirs[2:], out, _dataset(8))  # the same data record, but 8 samples split otherwise

    incomplete = copy(dirs[1], "incomplete")
    lines = (incomplete / "results.jsonl").read_text().splitlines(keepends=True)
    (incomplete / "results.jsonl").write_text("".join(lines[:3]))  # killed after q3's text record
    with pytest.raises(DataError, match=r"sample 'q4' \(text, lslm\) is in no shard: shard 2/3 .*incomplete"):
        merge_eval_shards([dirs[0], incomplete, dirs[2]], out, data)
    (incomplete / "results.jsonl").write_text("".join(lines) + lines[0])
    with pytest.raises(DataError, match="the record of sample 'q3' \\(speech, lslm\\) appears twice"):
        merge_eval_shards([dirs[0], incomplete, dirs[2]], out, data)

    overlapping = copy(dirs[2], "overlapping")
    first_record = (dirs[0] / "results.jsonl").read_text().splitlines(keepends=True)[0]
    with open(overlapping / "results.jsonl", "a") as handle:
        handle.write(first_record)
    with pytest.raises(
        DataError, match=r"shard 3/3 holds sample 'q0', which is in block 1/3 .*the shards overlap"
    ):
        merge_eval_shards([dirs[0], dirs[1], overlapping], out, data)

    foreign = copy(dirs[2], "foreign")
    with open(foreign / "results.jsonl", "a") as handle:
        handle.write(first_record.replace('"q0"', '"zz"'))
    with pytest.raises(DataError, match="record of sample 'zz', which argument 'data' does not have"):
        merge_eval_shards([dirs[0], dirs[1], foreign], out, data)

    other = copy(dirs[2], "other_settings")
    record = json.loads((other / "run.json").read_text())
    record["settings"]["max_new_tokens"] = 7
    (other / "run.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="shard was run with another settings"):
        merge_eval_shards([dirs[0], dirs[1], other], out, data)
    record["settings"]["max_new_tokens"] = 8
    record["model"] = {"name_or_path": "another"}
    (other / "run.json").write_text(json.dumps(record))
    with pytest.raises(ConfigError, match="shard was run with another model"):
        merge_eval_shards([dirs[0], dirs[1], other], out, data)

    (other / "results.jsonl").unlink()
    with pytest.raises(DataError, match="no results.jsonl next to run.json"):
        merge_eval_shards([dirs[0], dirs[1], other], out, data)
    (other / "run.json").unlink()
    with pytest.raises(DataError, match="no run.json: not the folder of an evaluation shard"):
        merge_eval_shards([dirs[0], dirs[1], other], out, data)

    model, base = _models(7)
    evaluate(model, data, tmp_path / "unsharded", SETTINGS, base_model=base, progress=False)
    with pytest.raises(DataError, match="not a shard folder: its data record has no shard"):
        merge_eval_shards([*dirs, tmp_path / "unsharded"], out, data)
    with pytest.raises(ConfigError, match="argument 'shard_dirs'"):
        merge_eval_shards([], out, data)
    assert not out.exists() or not (out / "summary.json").exists()  # nothing merged by refused calls


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from speechgap.models import load_model
    from speechgap.models.tiny import build_tiny_model

    return load_model(build_tiny_model("qwen2_audio", tmp_path_factory.mktemp("tiny_shards"), seed=0))


def test_api_evaluate_shards_the_data_after_the_limit(tiny_model, tmp_path):
    data = _dataset(6)
    common = {"limit": 5, "max_new_tokens": 2}
    api.evaluate(tiny_model, data, tmp_path / "ref", **common)
    dirs = [tmp_path / f"shard-{k}" for k in range(2)]
    for k, folder in enumerate(dirs):
        api.evaluate(tiny_model, data, folder, shard=(k, 2), **common)
    assert [r["id"] for r in _records(dirs[1]) if r["modality"] == "speech"] == ["q3", "q4"]
    merged = merge_eval_shards(dirs, tmp_path / "merged", data.limit(5))
    assert _records(tmp_path / "merged") == _records(tmp_path / "ref")
    assert merged.summary["subsets"] == json.loads((tmp_path / "ref" / "summary.json").read_text())["subsets"]
    for bad in [(2, 2), (0,), "0/2"]:
        with pytest.raises(ConfigError, match="argument 'shard'"):
            api.evaluate(tiny_model, data, tmp_path / "bad", shard=bad, **common)
