"""``speechgap intervene``: accuracy with and without a training-free intervention on the same samples."""

from __future__ import annotations

import argparse
import warnings

from speechgap.cli.common import add_model_arguments, add_prompt_arguments, print_warnings
from speechgap.errors import SpeechgapWarning

ARGUMENT_FLAGS = {
    "out_dir": "--out",
    "baseline_text": "--no-baseline-text",
    "source": "--data",
    "fraction": "--calibration-fraction",
    "positions": "--calibration-positions",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="speech LLM: a save_pretrained folder or a Hub id")
    parser.add_argument("--data", required=True, help="paired data: manifest.jsonl or a spec (docs/data.md)")
    parser.add_argument("--out", required=True, help="output folder; rerunning the same command resumes it")
    parser.add_argument(
        "--method",
        required=True,
        help="angle, length, calibration, redundancy, or a speech-token merging method: oracle-random, "
        "oracle-uniform, oracle-merge, ap-input, ap-deep, dap, tome (and methods registered with "
        "speechgap.evaluation.methods.register_method)",
    )
    oracle = parser.add_argument_group("oracle compression (paper 2; runs as speechgap compress does)")
    oracle.add_argument("--layer", type=int, default=None, help="layer to shorten (default: the deep layer)")
    oracle.add_argument("--retention", type=float, default=None, help="fraction of speech tokens kept (0.25)")
    oracle.add_argument("--sweep-layers", default=None, help="comma-separated layers (a sweep over layers)")
    rep = parser.add_argument_group("angle projection / length normalization (paper 1)")
    rep.add_argument(
        "--critical",
        choices=("bottom-k", "all"),
        default=None,
        help="critical tokens (default bottom-k)",
    )
    rep.add_argument("--k", type=int, default=None, help="frames kept by bottom-k (default 3)")
    rep.add_argument(
        "--path", choices=("argmax", "dtw"), default=None, help="alignment path (default argmax)"
    )
    rep.add_argument(
        "--path-layer", type=int, default=None, help="layer of the alignment path (default 0: input)"
    )
    rep.add_argument("--apply-layer", type=int, default=None, help="layer edited (default 0: decoder input)")
    cal = parser.add_argument_group("statistical calibration (paper 3)")
    cal.add_argument("--calibration", default=None, metavar="DATA_SPEC", help="separate calibration data")
    cal.add_argument(
        "--calibration-fraction",
        type=float,
        default=None,
        metavar="F",
        help="draw this share of --data as the calibration split (seeded by --split-seed)",
    )
    cal.add_argument("--split-seed", type=int, default=None, help="seed of the calibration split (default 0)")
    cal.add_argument("--calibration-stats", default=None, metavar="FILE", help="reuse saved statistics")
    cal.add_argument(
        "--calibration-layer", default=None, help="input (default), output, or a layer index 0..L"
    )
    cal.add_argument(
        "--calibration-positions",
        choices=("span", "all"),
        default=None,
        help="edit the speech span (default) or every position incl. generated tokens",
    )
    red = parser.add_argument_group("text redundancy test (paper 3)")
    red.add_argument("--repeats", default=None, help="repeat counts (default 1,2,4,8)")
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
    add_prompt_arguments(ev)
    add_model_arguments(ev)
    ev.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from speechgap.api import intervene
    from speechgap.errors import ConfigError
    from speechgap.io import RunLock, prepare_out_dir

    # every method flag defaults to None: a flag given to a method that does not read it is refused by
    # the method (naming the flags it reads), not silently ignored
    named = {
        "repeats": args.repeats,
        "retention": args.retention,
        "layer": args.layer,
        "critical": args.critical,
        "k": args.k,
        "path": args.path,
        "path_layer": args.path_layer,
        "apply_layer": args.apply_layer,
        "calibration_layer": args.calibration_layer,
        "calibration_positions": args.calibration_positions,
        "calibration_fraction": args.calibration_fraction,
        "split_seed": args.split_seed,
        "calibration_stats": args.calibration_stats,
    }
    settings = {name: value for name, value in named.items() if value is not None}
    try:
        sweep_layers = [int(x) for x in (args.sweep_layers or "").split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--sweep-layers takes comma-separated integers, got {args.sweep_layers!r}"
        ) from None
    # an unusable or busy output folder is refused before the model loads (minutes)
    out_dir = prepare_out_dir(args.out, argument="out_dir")
    with RunLock(out_dir, command="intervene"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpeechgapWarning)
        result = intervene(
            args.model,
            args.data,
            args.method,
            out_dir,
            limit=args.limit,
            answer_mode=args.answer_mode,
            max_new_tokens=args.max_new_tokens,
            scoring_mode=args.scoring_mode,
            seed=args.seed,
            baseline_text=not args.no_baseline_text,
            calibration=args.calibration,
            sweep_layers=sweep_layers,
            protocol=args.protocol,
            instruction=args.instruction,
            system_prompt=args.system_prompt,
            device=args.device,
            dtype=args.dtype,
            trust_remote_code=args.trust_remote_code,
            progress=not args.no_progress,
            **settings,
        )
    print_warnings("intervene", caught)
    print(result.format())
    written = "compression.json" if result.compression is not None else "comparison.json"
    print(f"-> {result.out_dir / written}")
    return 0
