"""Arguments that several subcommands share, declared once so that their names and help never drift."""

from __future__ import annotations

import argparse


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
