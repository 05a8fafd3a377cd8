import argparse
import json

import pytest

from speechgap.cli import synthesize as cli
from speechgap.errors import ConfigError
from speechgap.io import read_jsonl


def _run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


@pytest.fixture
def input_file(tmp_path):
    path = tmp_path / "in.jsonl"
    items = [{"id": f"q{i}", "text": f"What is {i} plus {i}?"} for i in range(6)]
    path.write_text("".join(json.dumps(item) + "\n" for item in items))
    return path


def _speakers(out) -> set[str]:
    return {record["speaker"] for _, record in read_jsonl(out / "manifest.jsonl")}


def test_train_and_test_runs_use_disjoint_voices(tmp_path, input_file, capsys):
    common = [
        "--split-fractions",
        "train=0.5,test=0.5",
        "--split-seed",
        "4",
        "--workers",
        "1",
        "--no-progress",
    ]
    assert (
        _run(
            [
                str(input_file),
                "--out",
                str(tmp_path / "train"),
                "--speaker-split",
                "train",
                "--seed",
                "1",
                *common,
            ]
        )
        == 0
    )
    assert (
        _run(
            [
                str(input_file),
                "--out",
                str(tmp_path / "test"),
                "--speaker-split",
                "test",
                "--voices",
                "3",
                *common,
            ]
        )
        == 0
    )
    assert "6 items, 3 speakers" in capsys.readouterr().out
    train, test = _speakers(tmp_path / "train"), _speakers(tmp_path / "test")
    assert len(test) <= 3
    assert not {s.split("_")[0] for s in train} & {s.split("_")[0] for s in test}
    settings = json.loads((tmp_path / "test" / "synthesis.json").read_text())["settings"]
    assert settings["voice_bank"]["split"]["part"] == "test" and len(settings["speakers"]) == 3


def test_asr_filter_option_loads_the_users_function(tmp_path, input_file):
    asr = tmp_path / "my_asr.py"
    asr.write_text("def transcribe(audio, sample_rate):\n    return 'what is'\n")
    out = tmp_path / "out"
    assert (
        _run([str(input_file), "--out", str(out), "--asr-filter", f"{asr}:transcribe", "--no-progress"]) == 0
    )
    dropped = [record for _, record in read_jsonl(out / "dropped.jsonl")]
    assert len(dropped) == 6 and all(record["wer"] == pytest.approx(0.6) for record in dropped)
    assert (out / "manifest.jsonl").read_text() == ""


def test_bad_split_fractions_is_a_config_error(tmp_path, input_file):
    with pytest.raises(ConfigError, match="NAME=SHARE,NAME=SHARE.*got '0.8'"):
        _run(
            [
                str(input_file),
                "--out",
                str(tmp_path / "o"),
                "--speaker-split",
                "test",
                "--split-fractions",
                "0.8",
            ]
        )
