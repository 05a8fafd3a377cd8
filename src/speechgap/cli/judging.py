"""The LLM judge's flags, shared by ``speechgap eval`` and ``speechgap score``."""

from __future__ import annotations

import argparse

JUDGE_ARGUMENT_FLAGS = {
    "url": "--judge-url",
    "model": "--judge-model",
    "api_key_env": "--judge-api-key-env",
    "timeout_s": "--judge-timeout",
    "retries": "--judge-retries",
    "follow_redirects": "--judge-follow-redirects",
    "protocol": "--judge-protocol",
}


def add_judge_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "LLM judge (open-ended subsets: alpacaeval, commoneval, ...; sd-qa with --judge-protocol yesno)"
    )
    group.add_argument(
        "--judge-url", default=None, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1"
    )
    group.add_argument("--judge-model", default=None, help="the judge model's name at that endpoint")
    group.add_argument(
        "--judge-protocol",
        choices=("score", "yesno"),
        default="score",
        help="score: rate open-ended answers 1-5 (alpacaeval, commoneval, wildvoice, mtbench; default); "
        "yesno: judge sd-qa answers against the reference, VoiceBench's way (3 samples at temperature 0.5, "
        "majority vote; a tie is wrong and counted as a parse failure)",
    )
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
            protocol=args.judge_protocol,
            follow_redirects=args.judge_follow_redirects,
            **{name: value for name, value in limits.items() if value is not None},
        )
    )
