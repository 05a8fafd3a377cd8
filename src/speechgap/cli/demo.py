"""``speechgap demo --out DIR``: the main job end to end on the embedded default (docs/demo.md)."""

from __future__ import annotations

import argparse

ARGUMENT_FLAGS = {
    "out_dir": "--out",
    "n_questions": "--questions",
    "analysis_limit": "--analysis-limit",
    "limit": "--analysis-limit",
    "source": "--data",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    parser.add_argument(
        "--questions", type=int, default=258, help="held-out test questions (default: all 258)"
    )
    parser.add_argument("--analysis-limit", type=int, default=None, help="analyse the first N samples only")
    parser.add_argument("--model", default=None, help="another speech LLM (default: the shipped mini model)")
    parser.add_argument("--base-model", default=None, help="its base text LM, for the split of the gap")
    parser.add_argument("--data", default=None, help="other paired data (default: the mini held-out set)")
    parser.add_argument("--max-new-tokens", type=int, default=8, help="generation budget per answer")
    parser.add_argument(
        "--no-diagnostics", action="store_true", help="skip paper 3's diagnostics (lens, probes, attention)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from speechgap.demo import DemoSettings, run_demo

    data = None
    if args.data is not None:
        from speechgap.data.load import load_pairs

        data = load_pairs(args.data)
    settings = DemoSettings(
        n_questions=args.questions,
        max_new_tokens=args.max_new_tokens,
        analysis_limit=args.analysis_limit,
        diagnostics=not args.no_diagnostics,
    )
    run_demo(
        args.out,
        settings,
        model_path=args.model,
        base_model_path=args.base_model,
        data=data,
        progress=not args.no_progress,
    )
    return 0
