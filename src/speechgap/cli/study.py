"""``speechgap study --zoo DIR --data D --out OUT``: regress the gap on the representation measures, one
point per checkpoint (paper 1)."""

from __future__ import annotations

import argparse

ARGUMENT_FLAGS = {"out_dir": "--out", "zoo_dir": "--zoo", "source": "--data"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--zoo", required=True, help="a folder with zoo.json (e.g. from `speechgap mini train`)"
    )
    parser.add_argument(
        "--data", required=True, help="paired test data: manifest.jsonl or a spec (docs/data.md)"
    )
    parser.add_argument("--out", required=True, help="output folder; rerunning resumes every checkpoint")
    parser.add_argument("--answer-mode", choices=("generate", "loglik"), default="generate")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--eval-limit", type=int, default=None, help="evaluate the first N samples")
    parser.add_argument("--analysis-limit", type=int, default=None, help="analyse the first N samples")
    parser.add_argument("--include-layer0", action="store_true", help="layer 0 enters layer means and APS")
    parser.add_argument("--instruction", default=None, help="instruction of both runs")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from speechgap.api import study

    result = study(
        args.zoo,
        args.data,
        args.out,
        answer_mode=args.answer_mode,
        max_new_tokens=args.max_new_tokens,
        eval_limit=args.eval_limit,
        analysis_limit=args.analysis_limit,
        include_layer0=args.include_layer0,
        instruction=args.instruction,
        progress=not args.no_progress,
    )
    print(result.format())
    print(f"-> {args.out}/study.json, {args.out}/figures/")
    return 0
