"""``speechgap eval``: speech vs text accuracy of a model on a paired dataset, with paired statistics."""

from __future__ import annotations

import argparse

from speechgap.cli.common import add_model_arguments

ARGUMENT_FLAGS: dict[str, str] = {}  # filled below, after the judge's flags


JUDGE_ARGUMENT_FLAGS = {
    "url": "--judge-url",
    "model": "--judge-model",
    "api_key_env": "--judge-api-key-env",
    "timeout_s": "--judge-timeout",
    "retries": "--judge-retries",
    "follow_redirects": "--judge-follow-redirects",
}


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LLM judge (open-ended subsets: alpacaeval, commoneval, ...)")
    group.add_argument(
        "--judge-url", default=None, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"
    )
    group.add_argument("--judge-model", default=None, help="the judge model's name at that endpoint")
    group.add_argument(
        "--judge-api-key-env", default=None, metavar="VAR", help="environment variable holding the API key"
    )
    # None: JudgeConfig's defaults (60 s, 3 retries), so the documented bound has one source
    group.add_argument(
        "--judge-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wall-clock limit of one judge request in all: connect, send, whole reply (default 60); "
        "one sample's judging ends within (retries + 1) x timeout plus waits of 1, 2, 4 ... s "
        "(247 s with the defaults)",
    )
    group.add_argument(
        "--judge-retries",
        type=int,
        default=None,
        metavar="N",
        help="extra attempts after a timeout, connection error or HTTP 5xx/429 (default 3)",
    )
    group.add_argument(
        "--judge-follow-redirects",
        action="store_true",
        help="follow the judge server's HTTP redirects (default: a redirect is an error); the API key is "
        "still sent only to the --judge-url's own scheme, host and port",
    )


def make_judge(args: argparse.Namespace):
    if args.judge_url is None and args.judge_model is None:
        return None
    from speechgap.errors import ConfigError
    from speechgap.scoring import Judge, JudgeConfig

    if not (args.judge_url and args.judge_model):
        raise ConfigError("give both --judge-url and --judge-model")
    limits = {"timeout_s": args.judge_timeout, "retries": args.judge_retries}
    return Judge(
        JudgeConfig(
            url=args.judge_url,
            model=args.judge_model,
            api_key_env=args.judge_api_key_env,
            follow_redirects=args.judge_follow_redirects,
            **{name: value for name, value in limits.items() if value is not None},
        )
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="speech LLM: a save_pretrained folder or a Hub id")
    parser.add_argument("--data", required=True, help="paired data: manifest.jsonl or a spec (docs/data.md)")
    parser.add_argument("--out", required=True, help="results folder; rerunning the same command resumes it")
    parser.add_argument("--modality", default="speech,text", help="speech, text or speech,text (default)")
    parser.add_argument("--limit", type=int, default=None, help="first N samples only (a quick check)")
    parser.add_argument("--max-new-tokens", type=int, default=256, help="generation budget (default 256)")
    parser.add_argument("--batch-size", type=int, default=1, help="samples per forward pass (default 1)")
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
    parser.add_argument("--instruction", default=None, help="the instruction after the question (both runs)")
    parser.add_argument("--system-prompt", default=None, help="the system prompt (both runs)")
    add_model_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_judge_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import warnings

    from speechgap.api import evaluate
    from speechgap.cli.common import print_warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _evaluate(args, evaluate)
    print_warnings("eval", caught)
    print(f"{result.written} new records, {result.skipped} already done -> {args.out}/results.jsonl")
    print(result.format())
    return 0


def _evaluate(args: argparse.Namespace, evaluate):
    return evaluate(
        args.model,
        args.data,
        args.out,
        modality=args.modality,
        limit=args.limit,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        answer_mode=args.answer_mode,
        scoring_mode=args.scoring_mode,
        mcq_protocol=args.mcq_protocol,
        voicebench_compat=args.voicebench_compat,
        seed=args.seed,
        base_model=args.base_model,
        judge=make_judge(args),
        instruction=args.instruction,
        system_prompt=args.system_prompt,
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
        progress=not args.no_progress,
    )


ARGUMENT_FLAGS.update(
    {"out_dir": "--out", "modalities": "--modality", "source": "--data", **JUDGE_ARGUMENT_FLAGS}
)
