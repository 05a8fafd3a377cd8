"""``speechgap compress`` end to end on a tiny model: files, figures consistent with the runs, resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from speechgap.cli import main
from speechgap.io import read_jsonl


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, speech_samples):
    root = tmp_path_factory.mktemp("compress_data")
    (root / "audio").mkdir()
    rng = np.random.default_rng(0)
    with open(root / "manifest.jsonl", "w") as handle:
        for i in range(4):
            seconds = 1.2 + 0.4 * i
            sf.write(root / "audio" / f"q{i}.wav", 0.2 * rng.standard_normal(int(16000 * seconds)), 16000)
            words = [[f"w{k}", 0.3 * k, 0.3 * k + 0.25] for k in range(int(seconds / 0.3))]
            item = {
                "id": f"q{i}",
                "text": f"Which colour {i}?\nA. red\nB. blue\nC. green\nD. black",
                "audio": f"audio/q{i}.wav",
                "choices": ["red", "blue", "green", "black"],
                "answer": "ABCD"[i % 4],
                "word_times": words,
            }
            handle.write(json.dumps(item) + "\n")
    return root / "manifest.jsonl"


def _run(tiny_dir, manifest, out, *extra):
    argv = ["compress", "--model", str(tiny_dir), "--data", str(manifest), "--out", str(out), "--no-progress"]
    return main([*argv, "--timing-samples", "1", "--repeats", "1", *extra])


def test_dap_sweep_writes_consistent_results_and_resumes(tiny_dir, manifest, tmp_path, capsys):
    from speechgap.compression.flops import DecoderShape, prefill_flops
    from speechgap.models import load_model

    out = tmp_path / "run"
    assert _run(tiny_dir, manifest, out, "--method", "dap", "--deep-tau", "0.8", "--sweep-tau", "1.5,-1") == 0
    result = json.loads((out / "compression.json").read_text())
    assert result["model"]["name_or_path"] == str(tiny_dir)
    no_merge, all_merge = result["variants"]
    # --deep-tau equal to --tau: the deep tau follows the swept tau at offset 0
    assert no_merge["spec"]["deep_tau"] == pytest.approx(1.5) and no_merge["spec"]["deep_layer"] == 3
    assert all_merge["spec"]["tau"] == all_merge["spec"]["deep_tau"] == -1.0
    # tau 1.5 merges nothing: same answers, retention 1, FLOPs ratio 1
    assert no_merge["lengths"]["retention"] == 1.0 and no_merge["lengths"]["prefill_flops_ratio"] == 1.0
    assert no_merge["accuracy"]["changed"] == [] and no_merge["accuracy"]["delta"] == 0.0
    # tau -1 merges each span into one token; the FLOPs follow from lengths.jsonl
    records = [r for _, r in read_jsonl(out / all_merge["name"] / "lengths.jsonl")]
    assert sorted(r["id"] for r in records) == ["q0", "q1", "q2", "q3"]
    assert all(r["speech_lengths"] == [1, 1, 1, 1] for r in records)
    shape = DecoderShape.from_config(load_model(tiny_dir).text_config)
    merged = sum(prefill_flops(shape, r["seq_lengths"]) for r in records)
    base = sum(prefill_flops(shape, [r["prompt_tokens"]] * 4) for r in records)
    assert all_merge["lengths"]["prefill_flops_ratio"] == pytest.approx(merged / base)
    assert all_merge["speed"]["kv_cache_ratio"] < 1.0 and all_merge["speed"]["ttft_baseline_s"] > 0
    curve = json.loads((out / "curve.json").read_text())
    assert [p["retention"] for p in curve["points"]] == [1.0, all_merge["lengths"]["retention"]]
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "prefill FLOPs" in capsys.readouterr().out
    # rerunning the same command adds no record
    before = (out / all_merge["name"] / "results.jsonl").read_text()
    assert _run(tiny_dir, manifest, out, "--method", "dap", "--deep-tau", "0.8", "--sweep-tau", "1.5,-1") == 0
    assert (out / all_merge["name"] / "results.jsonl").read_text() == before


def test_oracle_and_bad_arguments(tiny_dir, manifest, tmp_path, capsys):
    out = tmp_path / "oracle"
    assert (
        _run(tiny_dir, manifest, out, "--method", "oracle-merge", "--layer", "2", "--retention", "0.5") == 0
    )
    variant = json.loads((out / "compression.json").read_text())["variants"][0]
    assert 0.3 < variant["lengths"]["retention"] < 0.7
    assert _run(tiny_dir, manifest, tmp_path / "x", "--method", "fastv") == 2
    assert "--method must be one of" in capsys.readouterr().err
    assert _run(tiny_dir, manifest, tmp_path / "y", "--method", "tome", "--layer", "9") == 2
    assert "--layer must be in 0..3 for this model of 4 blocks" in capsys.readouterr().err
    argv = ["--method", "dap", "--deep-layer", "4"]
    assert _run(tiny_dir, manifest, tmp_path / "z", *argv) == 2
    assert "--deep-layer must be in 1..3" in capsys.readouterr().err
    assert main(["intervene", "--model", str(tiny_dir), "--data", str(manifest), "--out", str(tmp_path / "i"),
                 "--method", "oracle-merge", "--layer", "7", "--no-progress"]) == 2  # fmt: skip
    assert "--layer must be in 0..3" in capsys.readouterr().err


def test_intervene_runs_oracle_compression_through_the_same_engine(tiny_dir, manifest, tmp_path):
    argv = [
        "intervene",
        "--model",
        str(tiny_dir),
        "--data",
        str(manifest),
        "--no-progress",
        "--answer-mode",
        "loglik",
        "--protocol",
        "instructed",
    ]
    out = tmp_path / "via_intervene"
    assert (
        main([*argv, "--out", str(out), "--method", "oracle-uniform", "--layer", "2", "--retention", "0.5"])
        == 0
    )
    direct = tmp_path / "via_compress"
    assert (
        _run(tiny_dir, manifest, direct, "--method", "oracle-uniform", "--layer", "2", "--retention", "0.5")
        == 0
    )
    a = json.loads((out / "compression.json").read_text())["variants"][0]
    b = json.loads((direct / "compression.json").read_text())["variants"][0]
    assert a["name"] == b["name"] and a["lengths"]["retention"] == b["lengths"]["retention"]
    assert a["accuracy"]["treated_accuracy"] == b["accuracy"]["treated_accuracy"]
