"""``speechgap data``: inspect a paired dataset and check that every sample loads.

    speechgap data --data voicebench:/data/voicebench?subset=sd-qa&split=usa --limit 50

Prints the source, the sample count, counts per subset, how many samples are multiple choice, and audio
duration statistics (seconds): :meth:`speechgap.data.types.PairedDataset.summarize`, which decodes every
sample's audio on the way. The first sample that fails is reported on stderr with its position and id, and
the command exits with status 2.
"""

from __future__ import annotations

import argparse
import json

ARGUMENT_FLAGS = {"source": "--data"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        required=True,
        help="data spec: [LOADER:]SOURCE[?subset=..&split=..&limit=..], e.g. "
        "voicebench:/data/voicebench?subset=sd-qa&split=usa (see docs/data.md)",
    )
    parser.add_argument("--limit", type=int, default=None, help="check only the first N samples")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")


def run(args: argparse.Namespace) -> int:
    from speechgap.data.load import load_pairs
    from speechgap.data.types import SampleLoadError
    from speechgap.errors import ConfigError, DataError

    if args.limit is not None and args.limit < 0:
        raise ConfigError(f"--limit must be >= 0, got {args.limit}")
    dataset = load_pairs(args.data, limit=args.limit)
    try:
        summary = dataset.summarize()
    except SampleLoadError as err:
        # reported like every other error: on stderr, "speechgap data: error: ...", exit status 2
        raise DataError(f"{err} (checked {err.position} of {len(dataset)} samples before this one)") from None
    if args.json:
        print(json.dumps(summary.to_json(), ensure_ascii=False))
    else:
        print(summary.format())
    return 0
