"""``speechgap intervene``: accuracy with and without a training-free intervention on the same samples."""

from __future__ import annotations

import argparse

from speechgap.cli.common import add_model_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="speech LLM: a save_pretrained folder or a Hub id")
    parser.add_argument("--data", required=True, help="paired data: manifest.jsonl or a spec (docs/data.md)")
    parser.add_argument("--out", required=True, help="output folder; rerunning the same command resumes it")
    parser.add_argument(
        "--method",
        required=True,
        help="angle, length, calibration, redundancy, or paper 2's oracle compression: oracle-random, "
        "oracle-uniform, oracle-merge (and methods other packages register)",
    )
    oracle = parser.add_argument_group("oracle compression (paper 2; runs through speechgap compress)")
    oracle.add_argument("--layer", type=int, default=None, help="layer to shorten (default: the deep layer)")
    oracle.add_argument("--retention", type=float, default=0.25, help="fraction of speech tokens kept (0.25)")
    oracle.add_argument("--sweep-layers", default=None, help="comma-separated layers (a sweep over layers)")
    rep = parser.add_argument_group("angle projection / length normalization (paper 1)")
    rep.add_argument(
        "--critical",
        choices=("bottom-k", "all"),
        default="bottom-k",
        help="critical tokens (default bottom-k)",
    )
    rep.add_argument("--k", type=int, default=3, help="frames kept by bottom-k (default 3)")
    rep.add_argument(
        "--path", choices=("argmax", "dtw"), default="argmax", help="alignment path (default argmax)"
    )
    rep.add_argument(
        "--path-layer", type=int, default=0, help="layer of the alignment path (default 0: input)"
    )
    rep.add_argument("--apply-layer", type=int, default=0, help="layer edited (default 0: decoder input)")
    cal = parser.add_argument_group("statistical calibration (paper 3)")
    cal.add_argument("--calibration", default=None, metavar="DATA_SPEC", help="separate calibration data")
    cal.add_argument(
        "--calibration-fraction",
        type=float,
        default=None,
        metavar="F",
        help="draw this share of --data as the calibration split (seeded by --split-seed)",
    )
    cal.add_argument("--split-seed", type=int, default=0, help="seed of the calibration split (default 0)")
    cal.add_argument("--calibration-stats", default=None, metavar="FILE", help="reuse saved statistics")
    cal.add_argument(
        "--calibration-layer", default="input", help="input (default), output, or a layer index 0..L"
    )
    cal.add_argument(
        "--calibration-positions",
        choices=("span", "all"),
        default="span",
        help="edit the speech span (default) or every position incl. generated tokens",
    )
    red = parser.add_argument_group("text redundancy test (paper 3)")
    red.add_argument("--repeats", default="1,2,4,8", help="repeat counts (default 1,2,4,8)")
    ev = parser.add_argument_group("evaluation")
    ev.add_argument("--limit", type=int, default=None, help="first N evaluation samples only")
    ev.add_argument(
        "--answer-mode",
        choices=("generate", "loglik"),
        default="generate",
        help="generate (default) or loglik (multiple choice: option letters' log-probabilities)",
    )
    ev.add_argument("--max-new-tokens", type=int, default=256, help="generation budget (default 256)")
    ev.add_argument("--scoring-mode", default=None, help="force a scoring mode (default: from the subset)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    ev.add_argument("--no-baseline-text", action="store_true", help="skip the text run of the baseline")
    ev.add_argument("--instruction", default=None, help="the instruction after the question (both runs)")
    ev.add_argument("--system-prompt", default=None, help="the system prompt (both runs)")
    add_model_arguments(ev)
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")


ORACLE_METHODS = ("oracle-random", "oracle-uniform", "oracle-merge")


def _run_oracle(args: argparse.Namespace) -> int:
    """Oracle compression shortens the sequence mid-network: it runs through ``speechgap compress``."""
    from speechgap.cli import compress

    argv = ["--model", args.model, "--data", args.data, "--out", args.out, "--method", args.method]
    argv += ["--retention", str(args.retention), "--answer-mode", args.answer_mode]
    argv += ["--max-new-tokens", str(args.max_new_tokens), "--seed", str(args.seed)]
    for flag, value in (
        ("--layer", args.layer),
        ("--sweep-layers", args.sweep_layers),
        ("--limit", args.limit),
    ):
        if value is not None:
            argv += [flag, str(value)]
    for flag, value in (("--device", args.device), ("--dtype", args.dtype)):
        if value is not None:
            argv += [flag, value]
    if args.no_progress:
        argv.append("--no-progress")
    parser = argparse.ArgumentParser(prog="speechgap intervene")
    compress.add_arguments(parser)
    return compress.run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    from speechgap.data.load import load_pairs
    from speechgap.errors import ConfigError
    from speechgap.evaluation.run import EvalSettings
    from speechgap.interventions.run import InterventionSettings, available_methods, run_intervention
    from speechgap.models import load_model

    if args.method in ORACLE_METHODS:
        return _run_oracle(args)
    if args.method not in available_methods():
        raise ConfigError(f"--method must be one of {', '.join(available_methods())}, got {args.method!r}")
    given = [args.calibration, args.calibration_fraction, args.calibration_stats]
    if sum(value is not None for value in given) > 1:
        raise ConfigError("give only one of --calibration, --calibration-fraction, --calibration-stats")
    settings = InterventionSettings(
        critical=args.critical,
        k=args.k,
        path=args.path,
        path_layer=args.path_layer,
        apply_layer=args.apply_layer,
        calibration_layer=args.calibration_layer,
        calibration_positions=args.calibration_positions,
        calibration_fraction=args.calibration_fraction,
        split_seed=args.split_seed,
        calibration_stats=args.calibration_stats,
        repeats=args.repeats,
        baseline_text=not args.no_baseline_text,
    )
    eval_settings = EvalSettings(
        answer_mode=args.answer_mode,
        max_new_tokens=args.max_new_tokens,
        scoring_mode=args.scoring_mode,
        seed=args.seed,
        limit=args.limit,
    )
    prompts = {
        key: value
        for key, value in (("instruction", args.instruction), ("system_prompt", args.system_prompt))
        if value is not None
    }
    data = load_pairs(args.data)
    calibration = load_pairs(args.calibration) if args.calibration is not None else None
    model = load_model(
        args.model, device=args.device, dtype=args.dtype, trust_remote_code=args.trust_remote_code, **prompts
    )
    report = run_intervention(
        model,
        data,
        args.method,
        args.out,
        settings,
        eval_settings,
        calibration=calibration,
        progress=not args.no_progress,
    )
    print(report.format())
    print(f"-> {report.out_dir / 'comparison.json'}")
    return 0
