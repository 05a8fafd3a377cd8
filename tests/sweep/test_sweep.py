"""`speechgap sweep` on worker processes and on a real local Ray instance: the same files as the verbs
run by hand, resumable, a failing job reported once while the others go on, a killed worker's job run
again with every record exactly once."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from sweep_data import write_pairs

import speechgap
from speechgap.cli import main
from speechgap.sweep import load_spec, run_sweep
from speechgap.sweep.job import read_attempts

EVAL = {"max_new_tokens": 4, "batch_size": 4}


def _write_spec(folder, models, pairs, steps, **extra):
    path = folder / "sweep.json"
    path.write_text(json.dumps({"models": models, "data": [{"name": "qs", "spec": str(pairs)}], "steps": steps,
                                **extra}))  # fmt: skip
    return path


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _without_provenance(summary_path):
    summary = json.loads(summary_path.read_text())
    summary.pop("provenance", None)
    return summary


def assert_same_eval(got, expected):
    assert _records(got / "results.jsonl") == _records(expected / "results.jsonl")
    assert _without_provenance(got / "summary.json") == _without_provenance(expected / "summary.json")


def assert_same_analysis(got, expected):
    assert _records(got / "samples.jsonl") == _records(expected / "samples.jsonl")
    assert pq.read_table(got / "per_sample.parquet").equals(pq.read_table(expected / "per_sample.parquet"))
    np.testing.assert_array_equal(np.load(got / "cka.npy"), np.load(expected / "cka.npy"))
    got_summary, expected_summary = (
        _without_provenance(got / "summary.json"),
        _without_provenance(expected / "summary.json"),
    )
    assert got_summary == expected_summary


@pytest.fixture(scope="module")
def by_hand(tiny_zoo, pairs, tmp_path_factory):
    """The two checkpoints evaluated and analysed by the verbs themselves, one after the other."""
    root = tmp_path_factory.mktemp("by-hand")
    for name in ("full-a", "lora-b"):
        speechgap.evaluate(str(tiny_zoo / name), str(pairs), root / name / "eval", **EVAL)
        speechgap.analyze(str(tiny_zoo / name), str(pairs), root / name / "analyze", eval_dir=root / name / "eval",
                          figures=False)  # fmt: skip
    return root


def _zoo_spec(tmp_path, tiny_zoo, pairs):
    steps = [{"verb": "eval", "settings": EVAL}, {"verb": "analyze", "settings": {"figures": False}}]
    return _write_spec(tmp_path, [{"zoo": str(tiny_zoo)}], pairs, steps)


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_sweep_writes_what_the_verbs_write_by_hand_and_reruns_nothing(
    engine, tiny_zoo, pairs, by_hand, tmp_path, request
):
    if engine == "ray":
        request.getfixturevalue("ray_instance")
    spec = _zoo_spec(tmp_path, tiny_zoo, pairs)
    out = tmp_path / "out"
    result = run_sweep(spec, out, engine=engine, workers=2, progress=False)
    assert result.counts()["done"] == 4 and not result.failed
    for name in ("full-a", "lora-b"):
        assert_same_eval(out / "jobs" / name / "qs" / "eval", by_hand / name / "eval")
        assert_same_analysis(out / "jobs" / name / "qs" / "analyze", by_hand / name / "analyze")

    record = json.loads((out / "sweep.json").read_text())
    assert record["engine"]["engine"] == engine
    assert record["provenance"]["speechgap_version"] == speechgap.__version__
    for job in record["jobs"]:
        assert job["status"] == "done" and job["host"] and job["duration_s"] > 0
        assert len(job["attempts"]) == 1 and job["attempts"][0]["pid"] != os.getpid()
        assert job["records"] == (14 if job["verb"] == "eval" else 7)
        assert job["call"].startswith(
            "speechgap.evaluate(" if job["verb"] == "eval" else "speechgap.analyze("
        )
    # one host, one pid per job: the engine ran each job in a worker, not in this process
    table = result.to_frame()
    assert list(table["job"]) == [
        "full-a/qs/eval",
        "full-a/qs/analyze",
        "lora-b/qs/eval",
        "lora-b/qs/analyze",
    ]
    hand = speechgap.EvalResult.load(by_hand / "lora-b" / "eval")
    row = table.set_index("job").loc["lora-b/qs/eval"]
    assert row["speech_accuracy"] == pytest.approx(hand.speech_accuracy)
    assert row["gap"] == pytest.approx(hand.gap)
    # the study across the jobs: one point per checkpoint, no fit from two points (and it says so)
    study = json.loads((out / "study" / "qs" / "study.json").read_text())
    assert [p["name"] for p in study["points"]] == ["full-a", "lora-b"]
    assert study["points"][1]["gap"] == pytest.approx(hand.gap)
    assert study["regressions"]["all"]["aps_cos"]["r2"] is None
    page = (out / "report.html").read_text()
    for name in ("full-a", "lora-b"):
        # every job's own page with the sample explorer, linked from the sweep's page
        for step in ("eval", "analyze"):
            assert f'href="jobs/{name}/qs/{step}/report.html"' in page
            job_page = (out / "jobs" / name / "qs" / step / "report.html").read_text()
            assert job_page.count("<tr class=sgx-row ") == 7

    # the same sweep again: every job is reused, none is started
    again = run_sweep(spec, out, engine=engine, workers=2, progress=False)
    assert all(job.reused for job in again.jobs)
    assert all(len(read_attempts(out, job.id)) == 1 for job in again.jobs)
    # a changed setting is a new job: that step runs again (and the verb refuses the old folder)
    changed = json.loads(spec.read_text())
    changed["steps"][0]["settings"] = {**EVAL, "max_new_tokens": 5}
    spec.write_text(json.dumps(changed))
    third = run_sweep(spec, out, engine=engine, workers=2, progress=False)
    evals = [job for job in third.jobs if job.verb == "eval"]
    assert all(job.status == "failed" and "different settings" in job.error for job in evals)
    assert all(
        job.status == "skipped" and "which failed" in job.error for job in third.jobs if job.verb == "analyze"
    )


def test_a_failing_job_is_reported_once_and_the_others_go_on(tiny_zoo, pairs, tmp_path, ray_instance, capsys):
    bogus = tmp_path / "not-a-model"
    bogus.mkdir()
    steps = [{"verb": "eval", "settings": EVAL}, {"verb": "analyze", "settings": {"figures": False}}]
    spec = _write_spec(tmp_path, [str(bogus), str(tiny_zoo / "full-a")], pairs, steps)
    code = main(["sweep", str(spec), "--out", str(tmp_path / "out"), "--engine", "ray"])
    captured = capsys.readouterr()
    assert code == 1
    record = json.loads((tmp_path / "out" / "sweep.json").read_text())
    status = {job["id"]: job for job in record["jobs"]}
    failed = status["not-a-model/qs/eval"]
    assert failed["status"] == "failed" and str(bogus) in failed["error"]
    assert len(failed["attempts"]) == 1  # a deterministic failure is not retried
    assert status["not-a-model/qs/analyze"]["status"] == "skipped"
    assert status["full-a/qs/eval"]["status"] == "done" and status["full-a/qs/analyze"]["status"] == "done"
    assert captured.err.count("failed not-a-model/qs/eval") == 1
    assert "1 failed" in captured.out and "not-a-model/qs/eval" in captured.out


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_worker_killed_mid_job_is_run_again_and_every_record_is_written_once(
    engine, tiny_zoo, tmp_path, request
):
    if engine == "ray":
        request.getfixturevalue("ray_instance")
    # long enough that results are committed (at most 1 s apart) well before the job ends
    pairs = write_pairs(tmp_path / "long", 48, seed=3)
    settings = {"max_new_tokens": 24, "batch_size": 1}
    spec = _write_spec(tmp_path, [str(tiny_zoo / "full-a")], pairs, [{"verb": "eval", "settings": settings}])
    out = tmp_path / "out"
    results = out / "jobs" / "full-a" / "qs" / "eval" / "results.jsonl"
    killed = []

    def kill_when_half_way():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            lines = results.read_text().count("\n") if results.is_file() else 0
            attempts = read_attempts(out, "full-a/qs/eval")
            if 2 <= lines < 90 and attempts:
                os.kill(attempts[-1]["pid"], signal.SIGKILL)
                killed.append((attempts[-1]["pid"], lines))
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=kill_when_half_way)
    watcher.start()
    result = run_sweep(load_spec(spec), out, engine=engine, workers=1, progress=False)
    watcher.join()
    assert killed, "the job ended before the worker could be killed"
    job = result.job("full-a/qs/eval")
    assert job.status == "done"
    pids = [attempt["pid"] for attempt in job.attempts]
    assert len(pids) == 2 and pids[0] == killed[0][0] and pids[1] != pids[0]
    records = _records(results)
    keys = [(r["id"], r["modality"]) for r in records]
    assert len(keys) == len(set(keys)) == 2 * 48
    hand = tmp_path / "hand"
    speechgap.evaluate(str(tiny_zoo / "full-a"), str(pairs), hand, **settings)
    by_key = {(r["id"], r["modality"]): r for r in _records(hand / "results.jsonl")}
    assert {(r["id"], r["modality"]): r for r in records} == by_key
    assert _without_provenance(results.parent / "summary.json") == _without_provenance(hand / "summary.json")


def _assert_close(got, expected, path="summary"):
    """Equal JSON, floats to 1e-9 (sums of a merged accumulator differ from one pass in the last bits)."""
    if isinstance(expected, float) and isinstance(got, float):
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-12), path
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys(), path
        for key in expected:
            _assert_close(got[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), path
        for k, (a, b) in enumerate(zip(got, expected, strict=True)):
            _assert_close(a, b, f"{path}[{k}]")
    else:
        assert got == expected, path


def test_sharded_steps_merge_into_exactly_the_unsharded_runs(
    tiny_zoo, pairs, by_hand, tmp_path, ray_instance
):
    # one sample per capture pass: shards batch other samples together than the whole run, and batches
    # equal one at a time only within float rounding (tests/analysis/test_analyze_batch.py)
    steps = [
        {"verb": "eval", "settings": EVAL, "shards": 3},
        {"verb": "analyze", "settings": {"figures": False, "batch_size": 1}, "shards": 2},
    ]
    spec = _write_spec(tmp_path, [str(tiny_zoo / "full-a")], pairs, steps)
    hand = tmp_path / "hand"
    speechgap.analyze(str(tiny_zoo / "full-a"), str(pairs), hand, eval_dir=by_hand / "full-a" / "eval",
                      figures=False, batch_size=1)  # fmt: skip
    out = tmp_path / "out"
    result = run_sweep(spec, out, engine="ray", progress=False)
    assert result.counts()["done"] == 3 + 1 + 2 + 1 and not result.failed
    shard_jobs = [job for job in result.jobs if job.shard is not None]
    assert sorted(job.records for job in shard_jobs if job.verb == "eval") == [4, 4, 6]  # 7 samples: 3+2+2
    merged = out / "jobs" / "full-a" / "qs"
    # eval: every record exactly once, in the unsharded run's order, and the same summary
    assert_same_eval(merged / "eval", by_hand / "full-a" / "eval")
    # analyze: the same samples and tables, the CKA merged from the shards' sums to 1e-9
    assert _records(merged / "analyze" / "samples.jsonl") == _records(hand / "samples.jsonl")
    got = pq.read_table(merged / "analyze" / "per_sample.parquet").to_pandas()
    expected = pq.read_table(hand / "per_sample.parquet").to_pandas()
    assert got.equals(expected)
    np.testing.assert_allclose(
        np.load(merged / "analyze" / "cka.npy"), np.load(hand / "cka.npy"), rtol=0, atol=1e-9
    )
    _assert_close(
        _without_provenance(merged / "analyze" / "summary.json"), _without_provenance(hand / "summary.json")
    )
    # the merged eval folder is a finished unsharded run: the verb run by hand into it has nothing to do
    again = speechgap.evaluate(str(tiny_zoo / "full-a"), str(pairs), merged / "eval", **EVAL)
    assert again.written == 0


class _Judge:
    """An OpenAI-compatible judge on 127.0.0.1: a score from the answer's length (so any run gets the same
    verdicts); bounded in time."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                outer.requests += 1
                score = 1 + len(body["messages"][-1]["content"]) % 5
                data = json.dumps(
                    {"choices": [{"index": 0, "message": {"role": "assistant", "content": str(score)}}]}
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data.encode())

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_judged_shards_merge_their_verdicts_without_asking_the_judge_again(tiny_zoo, tmp_path):
    from speechgap.scoring import Judge, JudgeConfig

    folder = tmp_path / "open"
    (folder / "audio").mkdir(parents=True)
    rng = np.random.default_rng(5)
    with open(folder / "manifest.jsonl", "w") as handle:
        for i in range(5):
            import soundfile as sf

            sf.write(folder / "audio" / f"o{i}.wav", 0.2 * rng.standard_normal(7000 + 500 * i), 16000)
            handle.write(json.dumps({"id": f"o{i}", "text": f"Tell me about {i} rivers.", "audio": f"audio/o{i}.wav",
                                     "subset": "alpacaeval"}) + "\n")  # fmt: skip
    judge = _Judge()
    try:
        config = {"url": judge.url, "model": "judge", "timeout_s": 10.0}
        settings = {**EVAL, "judge": config}
        steps = [{"verb": "eval", "settings": settings, "shards": 2}]
        spec = _write_spec(tmp_path, [str(tiny_zoo / "full-a")], folder / "manifest.jsonl", steps)
        result = run_sweep(spec, tmp_path / "out", workers=2, progress=False)
        assert not result.failed
        asked = judge.requests
        assert asked == 2 * 5  # each shard judged its own answers once, the merge asked nothing
        hand = tmp_path / "hand"
        speechgap.evaluate(str(tiny_zoo / "full-a"), str(folder / "manifest.jsonl"), hand, **EVAL,
                           judge=Judge(JudgeConfig(**config)))  # fmt: skip
        merged = tmp_path / "out" / "jobs" / "full-a" / "qs" / "eval"
        records = _records(merged / "results.jsonl")
        assert all(r["rule"] != "not_judged" and r["score"] is not None for r in records)
        assert_same_eval(merged, hand)
    finally:
        judge.close()


@pytest.mark.parametrize("engine", ["local", "ray"])
def test_a_job_asking_for_a_gpu_the_machine_lacks_fails_at_once_instead_of_waiting(
    engine, tiny_zoo, pairs, tmp_path, request
):
    if engine == "ray":
        request.getfixturevalue("ray_instance")
    steps = [{"verb": "eval", "settings": EVAL, "resources": {"gpus": 1}}, {"verb": "analyze", "eval": False}]
    spec = _write_spec(tmp_path, [str(tiny_zoo / "full-a")], pairs, steps)
    result = run_sweep(spec, tmp_path / "out", engine=engine, workers=1, progress=False)
    job = result.job("full-a/qs/eval")
    assert job.status == "failed" and "asks for 1 GPU" in job.error and job.attempts == []
    assert result.job("full-a/qs/analyze").status == "done"  # the other job ran
