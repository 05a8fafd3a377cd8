"""The sweep spec: parsing, the errors that name the field at fault, and the jobs it expands to."""

from __future__ import annotations

import json

import pytest

from speechgap.cli import main
from speechgap.errors import DataError
from speechgap.sweep import expand, load_spec, parse_spec
from speechgap.sweep.spec import parse_memory


def _spec(pairs, **extra):
    spec = {
        "models": ["m1", {"name": "m2", "path": "m2", "dtype": "bfloat16"}],
        "data": [str(pairs)],
        "steps": [{"verb": "eval"}, {"verb": "analyze"}],
    }
    spec.update(extra)
    return spec


def test_expand_lists_a_job_per_model_data_and_step_with_the_analysis_after_its_eval(pairs, tmp_path):
    spec = parse_spec(_spec(pairs), base=tmp_path)
    jobs = expand(spec, tmp_path / "out")
    data_name = pairs.parent.name
    assert [job.id for job in jobs] == [
        f"m1/{data_name}/eval", f"m1/{data_name}/analyze", f"m2/{data_name}/eval", f"m2/{data_name}/analyze"
    ]  # fmt: skip
    analyze = jobs[1]
    assert analyze.after == [jobs[0].id]
    assert analyze.eval_dir == jobs[0].out_dir
    assert jobs[0].out_dir == str((tmp_path / "out" / "jobs" / "m1" / data_name / "eval").resolve())
    assert jobs[2].model["settings"] == {"dtype": "bfloat16"}
    # a Hub id stays as it is; a local folder becomes absolute
    assert jobs[0].model["path"] == "m1"
    (tmp_path / "m1").mkdir()
    assert expand(parse_spec(_spec(pairs), base=tmp_path), tmp_path)[0].model["path"] == str(tmp_path / "m1")


def test_shards_expand_to_one_task_per_shard_and_a_merge_that_the_next_steps_wait_for(pairs, tmp_path):
    spec = parse_spec(_spec(pairs, steps=[{"verb": "eval", "shards": 3}, {"verb": "analyze", "shards": 2}]))
    jobs = {job.id: job for job in expand(spec, tmp_path)}
    name = pairs.parent.name
    shards = [jobs[f"m1/{name}/eval#{k}-of-3"] for k in (1, 2, 3)]
    assert [job.shard for job in shards] == [[0, 3], [1, 3], [2, 3]]
    merge = jobs[f"m1/{name}/eval"]
    assert merge.kind == "merge" and merge.after == [job.id for job in shards]
    assert merge.shard_dirs == [job.out_dir for job in shards]
    analyze_merge = jobs[f"m1/{name}/analyze"]
    assert analyze_merge.after[-1] == merge.id and len(analyze_merge.after) == 3
    # the analysis shards do not wait for the eval: only their merge joins its answers
    assert jobs[f"m1/{name}/analyze#1-of-2"].after == []


def test_a_step_runs_on_the_data_it_names_and_analyze_joins_the_eval_that_covers_its_data(pairs, tmp_path):
    spec = parse_spec(
        _spec(
            pairs,
            data=[{"name": "a", "spec": str(pairs)}, {"name": "b", "spec": str(pairs)}],
            steps=[
                {"verb": "eval", "name": "eval-a", "data": ["a"]},
                {"verb": "eval", "name": "eval-b", "data": ["b"]},
                {"verb": "analyze"},
                {"verb": "analyze", "name": "plain", "eval": False},
            ],
        )
    )
    jobs = {job.id: job for job in expand(spec, tmp_path)}
    assert "m1/a/eval-b" not in jobs and "m1/b/eval-a" not in jobs
    assert jobs["m1/a/analyze"].after == ["m1/a/eval-a"]
    assert jobs["m1/b/analyze"].after == ["m1/b/eval-b"]
    assert jobs["m1/b/plain"].after == [] and jobs["m1/b/plain"].eval_dir is None


def test_the_worked_example_of_the_docs_parses_and_expands(tmp_path):
    from pathlib import Path

    example = Path(__file__).parents[2] / "docs" / "examples" / "voicebench_7b.yaml"
    spec = load_spec(example)
    jobs = expand(spec, tmp_path)
    assert [m.name for m in spec.models] == ["qwen2-audio-7b", "qwen2.5-omni-7b"]
    assert len(spec.data) == 10
    merged = [job for job in jobs if job.shard is None]
    # per model: an eval and an analysis per subset, and DAP on the two multiple-choice subsets
    assert len(merged) == 2 * (10 + 10 + 2)
    assert all(job.resources["gpus"] == 1 for job in jobs if job.kind == "run")
    assert all(job.resources["memory"] == 40 * 10**9 for job in jobs if job.kind == "run")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"colour": 1}, "colour", "unknown key"),
        ({"steps": [{"verb": "train"}]}, "steps[0].verb", "expected one of eval, analyze"),
        ({"steps": [{"verb": "analyze", "settings": {"tua": 1}}]}, "steps[0].settings.tua", "not a setting of analyze"),
        ({"steps": [{"verb": "intervene"}]}, "steps[0].settings.method", "needs a method"),
        ({"steps": [{"verb": "compress", "shards": 2}]}, "steps[0].shards", "runs whole"),
        ({"steps": [{"verb": "analyze", "shards": 2, "settings": {"diagnostics": True}}]}, "steps[0].shards",
         "probes"),
        ({"steps": [{"verb": "eval", "shards": 0}]}, "steps[0].shards", ">= 1"),
        ({"steps": [{"verb": "eval"}, {"verb": "eval"}]}, "steps", "named 'eval'"),
        ({"steps": [{"verb": "analyze", "eval": "nope"}]}, "steps[0].eval", "eval step"),
        ({"steps": [{"verb": "eval", "data": ["nope"]}]}, "steps[0].data", "not a dataset"),
        ({"steps": [{"verb": "eval", "resources": {"gpus": -1}}]}, "steps[0].resources.gpus", ">= 0"),
        ({"steps": [{"verb": "eval", "resources": {"memory": "lots"}}]}, "steps[0].resources.memory", "16GB"),
        ({"resources": {"cpus": 0}}, "resources.cpus", "some CPU or GPU"),
        ({"retries": -1}, "retries", ">= 0"),
        ({"models": []}, "models", "non-empty list"),
        ({"models": ["a/m", "b/m"]}, "models", "named 'm'"),
        ({"models": [{"path": "m", "name": "a b"}]}, "models[0].name", "plain name"),
        ({"models": [{"path": "m", "colour": 1}]}, "models[0].colour", "unknown key"),
        ({"data": ["manifest.jsonl?colour=1"]}, "data[0].spec", "unknown key 'colour'"),
        ({"steps": [{"verb": "eval", "settings": {"judge": {"url": "http://x"}}}]}, "steps[0].settings.judge",
         "judge"),
    ],
)  # fmt: skip
def test_a_bad_spec_is_refused_naming_the_file_and_the_field(pairs, tmp_path, change, field, words):
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(_spec(pairs, **change)))
    with pytest.raises(DataError, match=words) as caught:
        load_spec(path)
    assert str(path) in str(caught.value)
    assert f"field '{field}'" in str(caught.value)


def test_a_zoo_entry_takes_its_speech_checkpoints_or_the_ones_named(tiny_zoo, pairs, tmp_path):
    spec = parse_spec(_spec(pairs, models=[{"zoo": str(tiny_zoo)}]))
    assert [(m.name, m.variant, m.step) for m in spec.models] == [
        ("full-a", "full", 1),
        ("lora-b", "lora", 2),
    ]
    assert spec.models[0].path == str(tiny_zoo / "full-a")
    spec = parse_spec(_spec(pairs, models=[{"zoo": str(tiny_zoo), "checkpoints": ["lora-b"]}]))
    assert [m.name for m in spec.models] == ["lora-b"]
    with pytest.raises(DataError, match="'nope' is not a speech checkpoint"):
        parse_spec(_spec(pairs, models=[{"zoo": str(tiny_zoo), "checkpoints": ["nope"]}]))
    with pytest.raises(DataError, match="no zoo.json"):
        parse_spec(_spec(pairs, models=[{"zoo": str(tmp_path)}]))


def test_memory_sizes_read_as_bytes():
    assert parse_memory("16GB") == 16 * 10**9
    assert parse_memory("16 GiB") == 16 * 2**30
    assert parse_memory("512MiB") == 512 * 2**20
    assert parse_memory(1000) == 1000
    assert parse_memory(None) is None
    for bad in ("0GB", "-1GB", "GB", True, 0):
        with pytest.raises(DataError):
            parse_memory(bad)


def test_a_yaml_that_does_not_parse_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text("models: [a\nsteps: {")
    with pytest.raises(DataError, match="not a valid YAML file") as caught:
        load_spec(path)
    assert str(path) in str(caught.value)


def test_plan_lists_the_jobs_without_running_them(pairs, tmp_path, capsys):
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(_spec(pairs, steps=[{"verb": "eval", "shards": 2}])))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out"), "--plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 * 3
    assert lines[2].split()[1] == "merge"
    assert not (tmp_path / "out" / "sweep.json").exists()
    assert main(["sweep", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "out")]) == 2
    assert "SPEC: no such file" in capsys.readouterr().err


def test_a_judge_url_with_credentials_is_redacted_where_the_sweep_records_it(pairs, tmp_path):
    from speechgap.sweep.run import _initial_statuses

    url = "http://user:s3cret@127.0.0.1:9/v1?key=abc"
    spec = parse_spec(
        _spec(pairs, steps=[{"verb": "eval", "settings": {"judge": {"url": url, "model": "j"}}}])
    )
    jobs = expand(spec, tmp_path)
    assert jobs[0].settings["judge"]["url"] == url  # the task gets the real URL
    recorded = json.dumps([spec.to_json(), [vars(s) for s in _initial_statuses(jobs, tmp_path).values()]])
    assert "s3cret" not in recorded and "abc" not in recorded and "127.0.0.1" in recorded
