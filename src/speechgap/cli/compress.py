"""``speechgap compress``: speech-token merging (Affinity Pooling, oracle, ToMe) against the unmerged model."""

from __future__ import annotations

import argparse
import warnings

from speechgap.cli.common import add_model_arguments, print_warnings
from speechgap.errors import ConfigError, SpeechgapWarning


def _floats(text: str | None, flag: str) -> list[float]:
    if not text:
        return []
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated numbers, got {text!r}") from None


def _ints(text: str | None, flag: str) -> list[int]:
    if not text:
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{flag} takes comma-separated integers, got {text!r}") from None


ARGUMENT_FLAGS = {"out_dir": "--out", "modalities": "--modality", "source": "--data", "specs": "--method"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="speech LLM: a save_pretrained folder or a Hub id")
    parser.add_argument("--data", required=True, help="paired data: manifest.jsonl or a spec (docs/data.md)")
    parser.add_argument("--out", required=True, help="results folder; rerunning the same command resumes it")
    parser.add_argument(
        "--method",
        default="dap",
        help="ap-input, ap-deep, dap (default), oracle-random, oracle-uniform, oracle-merge, tome, kv-merge",
    )
    ap = parser.add_argument_group(
        "Affinity Pooling (paper 2's Qwen2-Audio settings are the defaults; a flag the method does not read "
        "is refused)"
    )
    ap.add_argument("--tau", type=float, default=None, help="input AP threshold (default 0.8)")
    ap.add_argument("--omega", type=int, default=None, help="input AP look-back window (default 1)")
    ap.add_argument(
        "--deep-layer", type=int, default=None, help="deep AP layer (default: 29 of 32 mapped proportionally)"
    )
    ap.add_argument("--deep-tau", type=float, default=None, help="deep AP threshold (default 0.7)")
    ap.add_argument("--deep-omega", type=int, default=None, help="deep AP look-back window (default 3)")
    ap.add_argument("--rule", default=None, help="max (window max, default) or mean (window mean)")
    ap.add_argument(
        "--position", default=None, help="position id a merged token keeps: first (default), mean, compact"
    )
    ap.add_argument(
        "--sweep-tau", default=None, help="comma-separated taus: one variant each (dap: input tau)"
    )
    kv = parser.add_argument_group("KV token merging (kv-merge; paper 3, appendix C)")
    kv.add_argument("--kv-tau", type=float, default=None, help="key cosine threshold (default 0.90)")
    kv.add_argument(
        "--kv-ratio", type=float, default=None, help="largest share merged away per layer (default 0.25)"
    )
    oracle = parser.add_argument_group("oracle compression and ToMe")
    oracle.add_argument("--layer", type=int, default=None, help="layer to shorten (default: the deep layer)")
    oracle.add_argument(
        "--retention", type=float, default=None, help="fraction of tokens kept (default 0.25)"
    )
    oracle.add_argument("--sweep-retention", default=None, help="comma-separated retention budgets")
    oracle.add_argument("--sweep-layers", default=None, help="comma-separated layers")
    run = parser.add_argument_group("evaluation and timing")
    run.add_argument("--answer-mode", default="loglik", help="loglik (default, multiple choice) or generate")
    run.add_argument("--max-new-tokens", type=int, default=32, help="generation budget (default 32)")
    run.add_argument("--limit", type=int, default=None, help="first N samples only")
    run.add_argument(
        "--timing-samples", type=int, default=4, help="samples timed for TTFT/memory (default 4)"
    )
    run.add_argument("--repeats", type=int, default=3, help="timed prefills per sample and model (default 3)")
    run.add_argument("--seed", type=int, default=0, help="seed of the bootstrap and of the random drop")
    add_model_arguments(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from speechgap.api import compress
    from speechgap.compression.experiment import check_timing
    from speechgap.io import RunLock, prepare_out_dir

    # Refuse what can be refused before the model loads (minutes): timing settings, an unusable or busy
    # output folder. The merge settings are checked by CompressionSpec, also before loading.
    check_timing(args.timing_samples, args.repeats)
    out_dir = prepare_out_dir(args.out, argument="out_dir")
    with RunLock(out_dir, command="compress"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SpeechgapWarning)
        result = compress(
            args.model,
            args.data,
            out_dir,
            method=args.method,
            tau=args.tau,
            omega=args.omega,
            deep_layer=args.deep_layer,
            deep_tau=args.deep_tau,
            deep_omega=args.deep_omega,
            rule=args.rule,
            position=args.position,
            layer=args.layer,
            retention=args.retention,
            kv_tau=args.kv_tau,
            kv_ratio=args.kv_ratio,
            sweep_tau=_floats(args.sweep_tau, "--sweep-tau"),
            sweep_retention=_floats(args.sweep_retention, "--sweep-retention"),
            sweep_layers=_ints(args.sweep_layers, "--sweep-layers"),
            answer_mode=args.answer_mode,
            max_new_tokens=args.max_new_tokens,
            limit=args.limit,
            timing_samples=args.timing_samples,
            repeats=args.repeats,
            seed=args.seed,
            device=args.device,
            dtype=args.dtype,
            trust_remote_code=args.trust_remote_code,
            progress=not args.no_progress,
        )
    print_warnings("compress", caught)
    print(result.format())
    print(f"-> {args.out}/compression.json")
    return 0
