"""load_pairs dispatch, the --data spec syntax, and the `speechgap data` command."""

from __future__ import annotations

import json

import pytest

import speechgap
from speechgap.cli import data as data_command
from speechgap.data.load import DataSpec, detect_loader, load_pairs, parse_data_spec
from speechgap.errors import ConfigError, DataError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("runs/manifest.jsonl", DataSpec(source="runs/manifest.jsonl")),
        ("manifest:m.jsonl?subset=math&limit=3", DataSpec(source="m.jsonl", loader="manifest", subset="math", limit=3)),
        ("voicebench:/data/vb?subset=sd-qa&split=usa", DataSpec(source="/data/vb", loader="voicebench", subset="sd-qa", split="usa")),
        ("speechmmlu:/data/smmlu?subject=astronomy", DataSpec(source="/data/smmlu", loader="speechmmlu", subset="astronomy")),
        ("hlt-lab/voicebench?subset=openbookqa", DataSpec(source="hlt-lab/voicebench", subset="openbookqa")),
        ("C:/data/m.jsonl", DataSpec(source="C:/data/m.jsonl")),
    ],
)  # fmt: skip
def test_parse_data_spec(spec, expected):
    assert parse_data_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("", "empty data spec"),
        ("vb?subsett=x", "unknown key 'subsett'; allowed keys: subset, split, limit, subject"),
        ("vb?subset=a&subset=b", "key 'subset' given twice"),
        ("vb?limit=ten", "limit must be an integer"),
        ("vb?limit=-1", "limit must be >= 0"),
        ("vb?subset=a&subject=b", "'subset' or 'subject', not both"),
        ("vb?split=", "key 'split' has no value"),
        ("voicebench:?subset=a", "no file, folder or dataset name"),
    ],
)
def test_bad_specs(spec, pattern):
    with pytest.raises(ConfigError, match=pattern) as raised:
        parse_data_spec(spec)
    assert "argument 'spec'" in str(raised.value)


def test_bad_spec_through_load_pairs_names_its_argument():
    with pytest.raises(
        ConfigError, match=r"argument 'source' \(data spec 'vb\?bogus=1'\): unknown key 'bogus'"
    ):
        load_pairs("vb?bogus=1")
    with pytest.raises(ConfigError, match="argument 'limit' must be a non-negative integer, got -1"):
        load_pairs("m.jsonl", limit=-1)


def test_load_pairs_dispatches_and_records_the_source(manifest_dir, voicebench_dir, speechmmlu_dir):
    manifest = speechgap.load_pairs(manifest_dir / "manifest.jsonl", limit=2)
    assert manifest.ids == ["a", "b"]
    assert {k: manifest.source[k] for k in ("loader", "subset", "split", "limit")} == {
        "loader": "manifest", "subset": None, "split": None, "limit": 2,
    }  # fmt: skip
    vb = load_pairs(voicebench_dir, subset="sd-qa", split="usa")
    assert vb.source["loader"] == "voicebench" and vb.source["limit"] is None and len(vb) == 5
    smmlu = load_pairs(f"{speechmmlu_dir}?subject=virology&limit=1")
    assert smmlu.source["loader"] == "speechmmlu" and smmlu.source["subset"] == "virology"
    assert smmlu.ids == ["virology_0"] and smmlu.source["limit"] == 1
    prefixed = load_pairs(f"voicebench:{voicebench_dir}?subset=mmsu&split=law")
    assert prefixed.describe()["num_samples"] == 3 and prefixed.source["path"] == str(
        voicebench_dir.resolve()
    )


def test_detect_loader_and_errors(tmp_path, voicebench_dir, speechmmlu_dir):
    assert detect_loader(voicebench_dir) == "voicebench"
    assert detect_loader(voicebench_dir / "sd-qa") == "voicebench"
    assert detect_loader(speechmmlu_dir) == "speechmmlu"
    assert detect_loader("hlt-lab/voicebench") == "voicebench"
    assert detect_loader("XiaomiMiMo/SpeechMMLU") == "speechmmlu"
    with pytest.raises(DataError, match="no such file or folder, and not a known Hub dataset"):
        load_pairs(tmp_path / "nothing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="prefix the loader"):
        load_pairs(tmp_path / "plain")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="not a manifest"):
        load_pairs(tmp_path / "x.csv")
    with pytest.raises(
        ConfigError, match="argument 'loader' must be one of manifest, voicebench, speechmmlu, got 'vb'"
    ):
        load_pairs(voicebench_dir, loader="vb")
    with pytest.raises(ConfigError, match="loader 'voicebench' takes no argument 'check_audio'"):
        load_pairs(voicebench_dir, subset="sd-qa", check_audio=False)
    with pytest.raises(ConfigError, match="argument 'split' must be None for a manifest"):
        load_pairs(tmp_path / "m.jsonl", loader="manifest", split="test")


def main(argv: list[str]) -> int:
    """`speechgap data ...` through the command's own parser (the full CLI imports every command)."""
    import argparse

    parser = argparse.ArgumentParser(prog="speechgap data")
    data_command.add_arguments(parser)
    return data_command.run(parser.parse_args(argv[1:]))


def test_cli_data_summarises_and_checks_every_sample(manifest_dir, capsys):
    assert main(["data", "--data", str(manifest_dir / "manifest.jsonl"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_samples"] == 4 and summary["multiple_choice"] == 1
    assert summary["subsets"] == {"(none)": 1, "math": 2, "science": 1}
    assert summary["duration_s"]["total"] == pytest.approx(1.0, abs=0.01)
    assert main(["data", "--data", f"{manifest_dir / 'manifest.jsonl'}?subset=math", "--limit", "1"]) == 0
    out = capsys.readouterr().out
    assert "samples:  1 (all decode" in out and "subset:   math" in out


def test_cli_data_reports_the_first_bad_sample(manifest_dir, capsys):
    (manifest_dir / "audio" / "b.flac").write_bytes(b"fLaC broken")
    from speechgap.cli import main as cli_main

    assert cli_main(["data", "--data", str(manifest_dir / "manifest.jsonl")]) == 2
    captured = capsys.readouterr()
    err = captured.err
    assert captured.out == "" and err.startswith("speechgap data: error: ")
    assert "sample 1 (id 'b') does not load" in err and "b.flac" in err and "checked 1 of 4" in err


def test_cli_data_bad_spec_is_a_speechgap_error():
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        main(["data", "--data", "vb?bogus=1"])
    with pytest.raises(ConfigError, match="--limit must be >= 0"):
        main(["data", "--data", "m.jsonl", "--limit", "-2"])
