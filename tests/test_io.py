"""Crash-safe result files: torn lines are repaired, resumed runs neither lose nor duplicate records."""

import json
import os

import pytest

from speechgap.errors import DataError
from speechgap.io import JsonlAppender, atomic_write_json, read_jsonl


def _key(record):
    return record["id"]


def test_appender_resumes_without_duplicates(tmp_path):
    path = tmp_path / "results.jsonl"
    with JsonlAppender(path, key=_key) as sink:
        sink.write({"id": "a", "v": 1})
        sink.write({"id": "b", "v": 2})
    with JsonlAppender(path, key=_key) as sink:
        assert sink.done("a") and sink.done("b") and not sink.done("c")
        with pytest.raises(ValueError, match="already"):
            sink.write({"id": "a", "v": 3})
        sink.write({"id": "c", "v": 3})
    ids = [r["id"] for _, r in read_jsonl(path)]
    assert ids == ["a", "b", "c"]


def test_torn_last_line_is_cut_and_redone(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"id": "a"}) + "\n" + '{"id": "b", "v"', encoding="utf-8")
    # A reader skips the torn record; an appender cuts it so the rerun writes it once, whole.
    assert [r["id"] for _, r in read_jsonl(path)] == ["a"]
    with JsonlAppender(path, key=_key) as sink:
        assert not sink.done("b")
        sink.write({"id": "b", "v": 2})
    assert [r for _, r in read_jsonl(path)] == [{"id": "a"}, {"id": "b", "v": 2}]


def test_bad_line_in_the_middle_names_file_and_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text('{"id": "a"}\nnot json\n{"id": "c"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"results\.jsonl:2"):
        list(read_jsonl(path))


def test_atomic_write_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "sub" / "summary.json"
    atomic_write_json(target, {"x": 1})
    atomic_write_json(target, {"x": 2})
    assert json.loads(target.read_text()) == {"x": 2}
    assert os.listdir(target.parent) == ["summary.json"]


def _lines(path):
    return path.read_text().splitlines() if path.exists() else []


def test_lines_are_committed_in_groups_on_commit_and_on_close(tmp_path):
    path = tmp_path / "r.jsonl"
    with JsonlAppender(path, key=lambda r: r["id"], commit_interval_s=3600) as sink:
        for i in range(5):
            sink.write({"id": i})
        assert _lines(path) == [] and sink.done(4)  # written, known as done, not yet in the file
        sink.commit()
        assert [json.loads(line)["id"] for line in _lines(path)] == [0, 1, 2, 3, 4]
        sink.write({"id": 5})
    assert [json.loads(line)["id"] for line in _lines(path)] == list(range(6))
    # interval 0: every line is in the file as soon as it is written
    with JsonlAppender(path, key=lambda r: r["id"], commit_interval_s=0) as sink:
        sink.write({"id": 6})
        assert len(_lines(path)) == 7
    with pytest.raises(ValueError, match="commit_interval_s"):
        JsonlAppender(tmp_path / "x.jsonl", key=lambda r: r["id"], commit_interval_s=-1)


def test_an_error_inside_the_block_still_commits_the_lines_written(tmp_path):
    path = tmp_path / "r.jsonl"
    with (
        pytest.raises(RuntimeError),
        JsonlAppender(path, key=lambda r: r["id"], commit_interval_s=3600) as sink,
    ):
        sink.write({"id": "a"})
        raise RuntimeError("the model failed")
    assert [json.loads(line)["id"] for line in _lines(path)] == ["a"]


WRITER = """
import sys
from speechgap.io import JsonlAppender
path, n = sys.argv[1], int(sys.argv[2])
with JsonlAppender(path, key=lambda r: r["id"], commit_interval_s=0.002) as sink:
    for i in range(n):
        if not sink.done(i):
            sink.write({"id": i, "payload": "x" * 200})
"""


@pytest.mark.parametrize("after_s", [0.0, 0.01, 0.03])
def test_a_writer_killed_between_commits_resumes_with_every_record_exactly_once(tmp_path, after_s):
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "r.jsonl"
    n = 50_000
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)])
    deadline = time.monotonic() + 30
    while not (path.exists() and path.stat().st_size > 0) and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(after_s)
    writer.send_signal(signal.SIGKILL)
    writer.wait(timeout=10)
    # the next open cuts a torn tail and knows the committed records; finishing writes the rest
    with JsonlAppender(path, key=lambda r: r["id"], commit_interval_s=3600) as sink:
        kept = len(sink.done_keys)
        assert 0 < kept < n, "the writer must be killed mid-run"
        assert sink.done_keys == set(range(kept))  # the committed lines are a prefix: nothing in between lost
        for i in range(n):
            if not sink.done(i):
                sink.write({"id": i, "payload": "x" * 200})
    ids = [json.loads(line)["id"] for line in _lines(path)]
    assert ids == list(range(n))
