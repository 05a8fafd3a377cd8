"""``speechgap analyze`` on the command line: outputs on success, a clear message and status 2 on bad input."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from speechgap.cli import main


def test_cli_writes_the_outputs(capture_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(
        [
            "analyze",
            "--captures",
            str(capture_dir),
            "--out",
            str(out),
            "--limit",
            "3",
            "--no-figures",
            "--include-layer0",
            "--cka-pairing",
            "uniform",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_samples"] == 3
    assert summary["settings"]["include_layer0"] is True and summary["cka"]["pairing"] == "uniform"
    assert pq.read_table(out / "per_sample.parquet").num_rows == 3
    assert "analysed 3 samples" in capsys.readouterr().out


def test_cli_bad_input_exits_2_with_a_message(capture_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert main(["analyze", "--captures", str(tmp_path / "missing"), "--out", out]) == 2
    assert "captures folder not found" in capsys.readouterr().err
    assert main(["analyze", "--captures", str(capture_dir), "--model", "m", "--out", out]) == 2
    assert "exactly one source" in capsys.readouterr().err
    assert main(["analyze", "--captures", str(capture_dir), "--out", out, "--base-layer", "40"]) == 2
    assert "--base-layer" in capsys.readouterr().err
    assert main(["analyze", "--captures", str(capture_dir), "--out", out, "--batch-size", "0"]) == 2
    assert "--batch-size" in capsys.readouterr().err
