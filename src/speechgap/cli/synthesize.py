"""``speechgap synthesize INPUT.jsonl --out DIR``: paired speech/text samples from text items."""

from __future__ import annotations

import argparse

ARGUMENT_FLAGS = {
    "out_dir": "--out",
    "items_or_path": "INPUT",
    "part": "--speaker-split",
    "speaker_split": "--speaker-split",
    "n": "--voices",
    "text": "--split-fractions",
    "spec": "--asr-filter",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "input", help="JSONL file, one item per line: id, text, optional choices/answer/subset"
    )
    parser.add_argument("--out", required=True, help="output folder (an earlier run there is resumed)")
    parser.add_argument("--voices", type=int, default=None, help="number of speakers to use (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="chooses the speakers and who speaks which item")
    parser.add_argument(
        "--speaker-split",
        default=None,
        metavar="PART",
        help="use only the speakers of this part of a disjoint split (e.g. test)",
    )
    parser.add_argument(
        "--split-fractions",
        default="train=0.8,test=0.2",
        help="the split's parts and shares (default: train=0.8,test=0.2)",
    )
    parser.add_argument(
        "--split-seed", type=int, default=0, help="seed of the split; keep it equal across the parts' runs"
    )
    parser.add_argument(
        "--split-by",
        choices=("voice", "speaker"),
        default="voice",
        help="voice: all rates/pitches of an engine voice stay in one part (default); speaker: split speakers",
    )
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core, max 8)")
    parser.add_argument(
        "--asr-filter",
        default=None,
        metavar="MODULE:FUNCTION",
        help="drop clips whose ASR word error rate exceeds --max-wer; FUNCTION(audio, sample_rate) -> text",
    )
    parser.add_argument("--max-wer", type=float, default=0.1, help="largest WER kept by --asr-filter (0.1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from speechgap.api import synthesize
    from speechgap.synthesis.quality import asr_wer_filter, load_transcriber

    quality_filter = None
    if args.asr_filter is not None:
        quality_filter = asr_wer_filter(load_transcriber(args.asr_filter), max_wer=args.max_wer)
    result = synthesize(
        args.input,
        args.out,
        voices=args.voices,
        seed=args.seed,
        speaker_split=args.speaker_split,
        split_fractions=args.split_fractions,
        split_seed=args.split_seed,
        split_by=args.split_by,
        workers=args.workers,
        quality_filter=quality_filter,
        progress=not args.no_progress,
    )
    print(f"{result.manifest}: {result.num_samples} items, {len(result.speakers)} speakers")
    return 0
