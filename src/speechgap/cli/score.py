"""``speechgap score DIR``: re-score an evaluation's responses without running the model."""

from __future__ import annotations

import argparse

from speechgap.cli.judging import JUDGE_ARGUMENT_FLAGS, add_judge_arguments, make_judge

ARGUMENT_FLAGS = {"out_dir": "DIR", **JUDGE_ARGUMENT_FLAGS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dir", help="an evaluation folder written by `speechgap eval`")
    parser.add_argument(
        "--mcq-protocol",
        choices=("speechgap", "speechmmlu", "voicebench"),
        default=None,
        help="override the run's scoring protocol (despite the name it applies to every mode: speechmmlu "
        "changes multiple choice only, voicebench reproduces VoiceBench's evaluators where deterministic)",
    )
    parser.add_argument(
        "--voicebench-compat",
        action="store_true",
        help="same as --mcq-protocol voicebench: VoiceBench's mcq, bbh, refusal, ifeval and judge rules "
        "(compatibility only; sd-qa's PEDANT is not available)",
    )
    parser.add_argument("--seed", type=int, default=None, help="override the run's seed")
    add_judge_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from speechgap.api import score

    result = score(
        args.dir,
        mcq_protocol=args.mcq_protocol,
        voicebench_compat=args.voicebench_compat,
        seed=args.seed,
        judge=make_judge(args),
    )
    print(result.format())
    print(f"-> {args.dir}/summary.json")
    return 0
