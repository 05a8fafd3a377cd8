"""Every ``speechgap`` subcommand is a module ``speechgap.cli.<name>`` with ``add_arguments`` and ``run``."""

from __future__ import annotations

import importlib

import pytest

from speechgap.cli import COMMANDS, main


@pytest.mark.parametrize("name", list(COMMANDS))
def test_subcommand_module_has_add_arguments_and_run(name):
    module = importlib.import_module(f"speechgap.cli.{name}")
    assert callable(getattr(module, "add_arguments", None))
    assert callable(getattr(module, "run", None))


@pytest.mark.parametrize("name", list(COMMANDS))
def test_subcommand_help_exits_cleanly(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"usage: speechgap {name}")
    assert COMMANDS[name] in " ".join(printed.split())


def test_no_subcommand_prints_the_list_and_fails(capsys):
    assert main([]) == 1
    printed = capsys.readouterr().out
    assert all(name in printed for name in COMMANDS)
