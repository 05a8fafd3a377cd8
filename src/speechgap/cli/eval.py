"""``speechgap eval``: speech vs text accuracy of a model on a paired dataset, with paired statistics."""

from __future__ import annotations

import argparse

from speechgap.cli.common import add_model_arguments, add_prompt_arguments
from speechgap.cli.judging import JUDGE_ARGUMENT_FLAGS, add_judge_arguments, make_judge

ARGUMENT_FLAGS: dict[str, str] = {}  # filled below, after the judge's flags


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="speech LLM: a save_pretrained folder or a Hub id")
    parser.add_argument("--data", required=True, help="paired data: manifest.jsonl or a spec (docs/data.md)")
    parser.add_argument(
        "--out", default=None, help="results folder; rerunning the same command resumes it (required to run)"
    )
    parser.add_argument("--modality", default="speech,text", help="speech, text or speech,text (default)")
    parser.add_argument("--limit", type=int, default=None, help="first N samples only (a quick check)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="generation budget (default 256)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="samples per forward pass (default 32, speechgap.evaluation.run.DEFAULT_BATCH_SIZE; left-padded, "
        "the answers equal one at a time)",
    )
    parser.add_argument(
        "--answer-mode",
        choices=("generate", "loglik"),
        default="generate",
        help="generate (default) or loglik: option letters' log-probabilities (multiple choice only)",
    )
    parser.add_argument(
        "--scoring-mode", default=None, help="force a scoring mode (default: from the subset)"
    )
    parser.add_argument(
        "--mcq-protocol",
        choices=("speechgap", "speechmmlu", "voicebench"),
        default="speechgap",
        help="multiple-choice answer extraction (default speechgap: unparseable = wrong)",
    )
    parser.add_argument(
        "--voicebench-compat",
        action="store_true",
        help="same as --mcq-protocol voicebench: the leaderboard's protocol incl. its seeded random fallback",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and the compat fallback")
    parser.add_argument("--base-model", default=None, help="the base text LLM, for the gap decomposition")
    add_prompt_arguments(parser)
    parser.add_argument(
        "--show-prompt",
        nargs="?",
        const="",
        default=None,
        metavar="ID",
        help="print the speech-run and text-run prompts of sample ID (default: the first) and exit, "
        "without loading the weights or running the model",
    )
    add_model_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_judge_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import warnings

    from speechgap.api import evaluate
    from speechgap.cli.common import print_warnings
    from speechgap.errors import ConfigError

    if args.show_prompt is not None:
        return _show_prompt(args)
    if args.out is None:
        raise ConfigError("--out is required (the results folder), unless --show-prompt is given")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _evaluate(args, evaluate)
    print_warnings("eval", caught)
    print(f"{result.written} new records, {result.skipped} already done -> {args.out}/results.jsonl")
    print(result.format())
    return 0


def _show_prompt(args: argparse.Namespace) -> int:
    from speechgap.api import show_prompts

    preview = show_prompts(
        args.model,
        args.data,
        sample_id=args.show_prompt or None,
        protocol=args.protocol,
        instruction=args.instruction,
        system_prompt=args.system_prompt,
        trust_remote_code=args.trust_remote_code,
    )
    print(preview.format())
    return 0


def _evaluate(args: argparse.Namespace, evaluate):
    return evaluate(
        args.model,
        args.data,
        args.out,
        modality=args.modality,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        **({} if args.batch_size is None else {"batch_size": args.batch_size}),
        answer_mode=args.answer_mode,
        scoring_mode=args.scoring_mode,
        mcq_protocol=args.mcq_protocol,
        voicebench_compat=args.voicebench_compat,
        seed=args.seed,
        base_model=args.base_model,
        judge=make_judge(args),
        protocol=args.protocol,
        instruction=args.instruction,
        system_prompt=args.system_prompt,
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
        progress=not args.no_progress,
    )


ARGUMENT_FLAGS.update(
    {
        "out_dir": "--out",
        "modalities": "--modality",
        "source": "--data",
        "sample_id": "--show-prompt",
        **JUDGE_ARGUMENT_FLAGS,
        # the prompt protocol's argument; the judge's own 'protocol' (--judge-protocol) is checked by argparse
        "protocol": "--protocol",
    }
)
