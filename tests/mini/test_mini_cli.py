"""``speechgap mini``: bad step counts are refused before anything is trained or written."""

from __future__ import annotations

import pytest

from speechgap.cli import main


@pytest.mark.parametrize(
    "flag, value",
    [("--encoder-steps", "-1"), ("--speech-steps", "0"), ("--text-steps", "0"), ("--checkpoints", "0")],
)
def test_bad_step_counts_name_the_option(flag, value, tmp_path, capsys):
    out = tmp_path / "zoo"
    assert main(["mini", "train", "--out", str(out), flag, value]) == 2
    assert flag in capsys.readouterr().err
    assert not out.exists()


def test_path_prints_the_shipped_default(capsys):
    from speechgap.mini import default_model_path

    assert main(["mini", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(default_model_path())
