"""Bad input at the Python verbs' edge and in ``speechgap score`` / ``speechgap demo``: clear errors that name
the argument (or flag), raised before anything is loaded or written."""

from __future__ import annotations

import json

import pytest

import speechgap
from speechgap.api import _model
from speechgap.cli import main
from speechgap.demo import DemoSettings
from speechgap.errors import ConfigError, DataError
from speechgap.io import prepare_out_dir


@pytest.mark.parametrize("value", [None, "", "   "])
def test_a_missing_output_folder_is_named(value):
    with pytest.raises(ConfigError, match="argument 'out_dir' is required"):
        prepare_out_dir(value)


def test_an_output_folder_of_the_wrong_type_is_named():
    with pytest.raises(ConfigError, match="argument 'out_dir' must be a folder path, got int"):
        prepare_out_dir(3)


def test_prompt_text_that_cannot_be_encoded_is_refused_before_loading(tmp_path):
    with pytest.raises(ConfigError, match=r"argument 'instruction' is not valid text: surrogates"):
        _model(tmp_path / "no-model-here", instruction="Answer \ud800 now")
    with pytest.raises(ConfigError, match=r"argument 'system_prompt' must be a string, got int"):
        _model(tmp_path / "no-model-here", system_prompt=7)


def test_score_refuses_an_empty_results_file_and_a_negative_seed(tmp_path, capsys):
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(DataError, match="results.jsonl.*holds no record to score"):
        speechgap.score(tmp_path)
    assert main(["score", str(tmp_path)]) == 2
    assert "holds no record" in capsys.readouterr().err
    record = {
        "id": "q0",
        "modality": "text",
        "response": "A",
        "reference": {"scoring_mode": "mcq", "answer": "A"},
    }
    (tmp_path / "results.jsonl").write_text(json.dumps(record) + "\n")
    with pytest.raises(ConfigError, match="argument 'seed' must be a whole number >= 0, got -1"):
        speechgap.score(tmp_path, seed=-1)
    assert main(["score", str(tmp_path), "--seed", "-1"]) == 2
    error = capsys.readouterr().err
    assert "--seed must be a whole number >= 0" in error and "Traceback" not in error
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"n_questions": 0}, "n_questions"),
        ({"analysis_limit": 0}, "analysis_limit"),
        ({"batch_size": -1}, "batch_size"),
    ],
)
def test_demo_settings_are_checked(settings, name):
    with pytest.raises(ConfigError, match=f"argument '{name}'"):
        DemoSettings(**settings)


def test_demo_cli_names_its_flags(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--questions", "0", "--no-progress"]) == 2
    assert "--questions must be a whole number >= 1, got 0" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()
