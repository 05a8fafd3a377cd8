"""Arguments that several subcommands share, declared once so that their names and help never drift."""

from __future__ import annotations

import argparse
import sys
import warnings


def add_model_arguments(parser: argparse.ArgumentParser, *, dtype_flag: str | None = "--dtype") -> None:
    """``--device``, the model's dtype (``dtype_flag``; None = no such option) and ``--trust-remote-code``."""
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default cpu)")
    if dtype_flag is not None:
        parser.add_argument(
            dtype_flag, default=None, help="dtype to run the model in: float32 (default), float16, bfloat16"
        )
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model's own code (only for a model you trust)",
    )


def add_prompt_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--protocol``, and ``--instruction`` / ``--system-prompt`` that replace the protocol's parts.

    The protocol's name is checked by the library (``speechgap.models.base.PROTOCOLS``), not here: the
    models package imports torch, which every command would then pay for at start-up."""
    parser.add_argument(
        "--protocol",
        default=None,
        metavar="{voicebench,official,instructed}",
        help="prompt protocol (default voicebench: the audio alone / the question alone, as the VoiceBench "
        "leaderboard; official: the family's own example; instructed: question, newline, instruction); "
        "see docs/evaluation.md",
    )
    parser.add_argument(
        "--instruction",
        default=None,
        help="replaces the protocol's instruction after the question (both runs)",
    )
    parser.add_argument(
        "--system-prompt", default=None, help="replaces the protocol's system prompt (both runs)"
    )


def print_warnings(command: str, caught: list[warnings.WarningMessage]) -> None:
    """Print the warnings a command's run raised: speechgap's own (:class:`~speechgap.errors.SpeechgapWarning`,
    e.g. :class:`~speechgap.io.ResumeWarning`) as ``speechgap COMMAND: warning: ...`` lines, any other as
    Python would."""
    from speechgap.errors import SpeechgapWarning

    for warning in caught:
        if issubclass(warning.category, SpeechgapWarning):
            print(f"speechgap {command}: warning: {warning.message}", file=sys.stderr)
        else:
            warnings.showwarning(
                warning.message,
                warning.category,
                warning.filename,
                warning.lineno,
                warning.file,
                warning.line,
            )
