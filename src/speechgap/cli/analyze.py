"""``speechgap analyze``: every gap measure over a dataset, from captures or by running the model.

    speechgap analyze --captures captures/qa --out analysis/qa --eval runs/eval-qa
    speechgap analyze --model ./qwen2-audio --data pairs.jsonl --out analysis/qa --cka-pairing words

Writes ``per_layer.parquet``, ``per_sample.parquet``, ``cka.npy``, ``summary.json`` and ``figures/*.png``
into OUT; rerun the same command to resume. See ``docs/analysis.md``.
"""

from __future__ import annotations

import argparse
import sys

from speechgap.cli.common import add_model_arguments

ARGUMENT_FLAGS = {"out_dir": "--out", "eval_dir": "--eval", "dtype": "--model-dtype", "source": "--data"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("source (one of)")
    source.add_argument("--captures", default=None, help="capture folder written by `speechgap capture`")
    source.add_argument("--model", default=None, help="model folder: capture sample by sample (with --data)")
    parser.add_argument(
        "--data",
        default=None,
        help="data spec or manifest .jsonl: the samples to run with --model; with --captures, where the word "
        "timings come from (default: the capture's own manifest, if it still exists)",
    )
    parser.add_argument("--out", required=True, help="output folder (rerun the same command to resume)")
    parser.add_argument("--eval", default=None, help="`speechgap eval` output folder: correctness per sample")
    parser.add_argument("--layers", default="all", help="comma-separated layer indices, or 'all' (default)")
    layer0 = parser.add_mutually_exclusive_group()
    layer0.add_argument(
        "--include-layer0", dest="include_layer0", action="store_true", help="analyse layer 0 (embeddings)"
    )
    layer0.add_argument(
        "--exclude-layer0",
        dest="include_layer0",
        action="store_false",
        help="analyse decoder-block outputs only (default)",
    )
    parser.set_defaults(include_layer0=False)
    parser.add_argument(
        "--cka-pairing",
        default="dtw",
        choices=["dtw", "argmax", "words", "uniform"],
        help="how speech frames pair with text tokens for cross-layer CKA (default dtw)",
    )
    parser.add_argument(
        "--base-layer",
        type=int,
        default=None,
        help="layer of the DTW/argmax pairing and path figures (default 5, or the middle of a shallower model)",
    )
    parser.add_argument("--path-samples", default=None, help="comma-separated ids to draw paths for")
    parser.add_argument("--limit", type=int, default=None, help="analyse only the first N samples")
    parser.add_argument("--debiased", action="store_true", help="debiased (unbiased HSIC) CKA")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="samples per capture pass with --model (default: from the model's size, 16 at most; same "
        "measures as one at a time, and a run resumes under another batch size)",
    )
    parser.add_argument(
        "--band-tolerance", type=float, default=0.05, help="CKA band tolerance (default 0.05)"
    )
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument(
        "--diagnostics",
        nargs="?",
        const="all",
        default=None,
        choices=("all",),
        help="also run paper 3's diagnostics (logit lens, probes, attention dispersion, update vectors, path "
        "stability) with --model; see docs/analysis.md",
    )
    parser.add_argument(
        "--protocol",
        default=None,
        metavar="{voicebench,official,instructed}",
        help="prompt protocol of the model's runs (default voicebench; see docs/evaluation.md)",
    )
    add_model_arguments(parser, dtype_flag="--model-dtype")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    from speechgap.api import analyze
    from speechgap.cli.capture import parse_layers

    path_samples = None
    if args.path_samples is not None:
        path_samples = [part.strip() for part in args.path_samples.split(",") if part.strip()]
    result = analyze(
        args.model,
        args.data,
        args.out,
        captures=args.captures,
        eval_dir=args.eval,
        layers=parse_layers(args.layers),
        include_layer0=args.include_layer0,
        cka_pairing=args.cka_pairing,
        base_layer=args.base_layer,
        path_samples=path_samples,
        limit=args.limit,
        debiased=args.debiased,
        batch_size=args.batch_size,
        band_tolerance=args.band_tolerance,
        figures=not args.no_figures,
        diagnostics=args.diagnostics is not None,
        protocol=args.protocol,
        device=args.device,
        dtype=args.model_dtype,
        trust_remote_code=args.trust_remote_code,
        progress=not args.no_progress,
        command=list(sys.argv),
    )
    summary = result.summary
    layer0 = "included" if args.include_layer0 else "excluded"
    print(
        f"analysed {result.n_samples} samples ({result.n_new} new, {len(result.skipped)} skipped), "
        f"layers {summary['settings']['layers']} (layer 0 {layer0}); mean APS (cos) {result.aps_cos:.4f}; "
        f"outputs in {args.out}"
    )
    if result.diagnostics:
        print(result.format().split("\n", 1)[1])
    if summary["cka"]["error"]:
        print(f"cross-layer CKA not computed: {summary['cka']['error']}", file=sys.stderr)
    duplicates = summary.get("duplicate_records") or {}
    if duplicates:
        shown = ", ".join(repr(sample_id) for sample_id in list(duplicates)[:5])
        print(
            f"note: {args.out}/samples.jsonl repeats {len(duplicates)} sample id(s) ({shown}); the first line "
            "of each was used",
            file=sys.stderr,
        )
    return 0
