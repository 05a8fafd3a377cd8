"""``speechgap capture``: hidden states of a whole dataset, written to safetensors shards.

    speechgap capture --model ./qwen2-audio --data pairs.jsonl --out captures/qa --layers 0,8,16,32 \\
        --dtype float16

Writes ``OUT/capture.json`` (provenance), ``OUT/index.jsonl`` (one line per sample) and
``OUT/shards/shard-*.safetensors``; rerunning the same command resumes where it stopped. Read the result
with ``speechgap.models.capture.CaptureStore(OUT)``. See ``docs/models.md``.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from speechgap.cli.common import add_model_arguments, print_warnings

ARGUMENT_FLAGS = {
    "out_dir": "--out",
    "storage_dtype": "--dtype",
    "dtype": "--model-dtype",
    "dataset": "--data",
    "source": "--data",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="local model folder (save_pretrained) or Hub id")
    parser.add_argument("--data", required=True, help="data spec or manifest .jsonl (see docs/data.md)")
    parser.add_argument("--out", required=True, help="output folder (rerun the same command to resume)")
    parser.add_argument("--layers", default="all", help="comma-separated layer indices 0..L, or 'all'")
    parser.add_argument(
        "--dtype", default="float32", choices=["float32", "float16", "bfloat16"], help="storage dtype on disk"
    )
    add_model_arguments(parser, dtype_flag="--model-dtype")
    parser.add_argument(
        "--modalities", default="speech,text", help="runs to capture per sample: speech,text (default both)"
    )
    parser.add_argument("--post-norm", action="store_true", help="also store the final-norm state")
    parser.add_argument("--batch-size", type=int, default=1, help="samples per forward pass")
    parser.add_argument("--shard-samples", type=int, default=32, help="samples per shard (bounds memory)")
    parser.add_argument("--limit", type=int, default=None, help="capture only the first N samples")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def parse_layers(text: str) -> list[int] | None:
    """``"all"`` -> None; ``"0,4,8"`` -> [0, 4, 8]."""
    from speechgap.errors import ConfigError

    if text.strip().lower() == "all":
        return None
    try:
        layers = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--layers must be 'all' or comma-separated integers, got {text!r}") from None
    if not layers or min(layers) < 0:
        raise ConfigError(f"--layers must be 'all' or layer indices 0..L, got {text!r}")
    return layers


def run(args: argparse.Namespace) -> int:
    from speechgap.data.load import load_pairs
    from speechgap.errors import ConfigError
    from speechgap.io import RunLock, prepare_out_dir
    from speechgap.models import load_model
    from speechgap.models.base import check_device
    from speechgap.models.capture import capture_dataset, check_capture_settings

    # every flag is checked before the data or the model is loaded
    layers = parse_layers(args.layers)
    modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
    check_capture_settings(
        modalities=modalities,
        storage_dtype=args.dtype,
        batch_size=args.batch_size,
        shard_samples=args.shard_samples,
    )
    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"argument 'limit' must be >= 1, got {args.limit}")
    check_device(args.device)
    out_dir = prepare_out_dir(args.out)
    with RunLock(out_dir, command="capture"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = load_pairs(args.data, limit=args.limit)
            adapter = load_model(
                args.model,
                device=args.device,
                dtype=args.model_dtype,
                trust_remote_code=args.trust_remote_code,
            )
            store = capture_dataset(
                adapter,
                dataset,
                out_dir,
                layers=layers,
                modalities=modalities,
                storage_dtype=args.dtype,
                post_norm=args.post_norm,
                batch_size=args.batch_size,
                shard_samples=args.shard_samples,
                progress=not args.no_progress,
                command=list(sys.argv),
            )
        finally:
            print_warnings("capture", caught)
    print(f"captured {len(store)} samples into {args.out}", end="")
    print(f"; skipped {len(store.skipped)} (see index.jsonl)" if store.skipped else "")
    return 0
