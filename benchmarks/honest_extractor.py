"""How honestly each multiple-choice protocol reads a hand-labelled corpus of realistic answers.

Usage:
    .venv/bin/python benchmarks/honest_extractor.py [--seed 0] [--held-out]

The corpus lives in ``tests/scoring/honest_answers.py`` (imported by path; it is test data, not part of
the package). For each protocol the script prints, overall and per category:

- wrong: a letter different from the label, or any letter where the label is None (a careful reader
  sees no single answer);
- unread: no letter, among answers that state a letter clearly;
- hedge/refusal letters: any letter read from a hedge ("B or D") or a refusal ("I'm not sure").

``speechmmlu`` and ``voicebench`` are the published protocols, for comparison. VoiceBench's random
fallback is counted as a letter read (that is what enters its accuracy), with one seeded generator drawn
in corpus order; its own failures are shown separately as ``fallback``.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

from speechgap.scoring.choice import extract_choice_voicebench, parse_choice

CORPUS_PATH = Path(__file__).resolve().parent.parent / "tests" / "scoring" / "honest_answers.py"


def load_corpus(held_out: bool):
    spec = importlib.util.spec_from_file_location("honest_answers", CORPUS_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["honest_answers"] = module
    spec.loader.exec_module(module)
    return module, (module.HELD_OUT if held_out else module.CORPUS)


def read_all(corpus, protocol: str, seed: int) -> list[tuple[str | None, bool]]:
    """(letter, fallback) per answer; fallback marks VoiceBench's random draw."""
    rng = random.Random(seed)
    reads = []
    for item in corpus:
        if protocol == "voicebench":
            parse = extract_choice_voicebench(item.response, rng=rng)
            reads.append((parse.letter, not parse.parsed))
        else:
            parse = parse_choice(
                item.response, n_choices=item.n_choices, choices=item.choices, protocol=protocol
            )
            reads.append((parse.letter, False))
    return reads


def tally(corpus, reads, no_letter_categories) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for item, (letter, fallback) in zip(corpus, reads, strict=True):
        for key in ("all", item.category):
            row = counts[key]
            row["n"] += 1
            row["wrong"] += letter is not None and letter != item.expected
            row["clear"] += item.carries_letter
            row["unread"] += item.carries_letter and letter is None
            row["no_letter"] += item.category in no_letter_categories
            row["no_letter_read"] += item.category in no_letter_categories and letter is not None
            row["fallback"] += fallback
    return counts


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def report(name: str, counts, categories) -> None:
    print(f"\nprotocol = {name}")
    print(
        f"{'category':<22}{'n':>5}{'wrong':>14}{'unread/clear':>20}{'hedge+refusal read':>22}{'fallback':>10}"
    )
    for key in ("all", *categories):
        row = counts.get(key)
        if not row:
            continue
        wrong = f"{row['wrong']:>3} {percent(row['wrong'], row['n'])}"
        unread = f"{row['unread']:>3}/{row['clear']:<3} {percent(row['unread'], row['clear'])}"
        hedge = f"{row['no_letter_read']:>3}/{row['no_letter']:<3}" if row["no_letter"] else "-"
        print(f"{key:<22}{row['n']:>5}{wrong:>14}{unread:>20}{hedge:>22}{row['fallback']:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of VoiceBench's random fallback")
    parser.add_argument("--held-out", action="store_true", help="use the held-out paraphrases instead")
    args = parser.parse_args()
    module, corpus = load_corpus(args.held_out)
    print(
        f"corpus: {'HELD_OUT' if args.held_out else 'CORPUS'}, {len(corpus)} answers, from {CORPUS_PATH.name}"
    )
    for protocol in ("speechgap", "speechmmlu", "voicebench"):
        reads = read_all(corpus, protocol, args.seed)
        report(protocol, tally(corpus, reads, module.NO_LETTER_CATEGORIES), module.CATEGORIES)
    start = time.perf_counter()
    repeats = 20
    for _ in range(repeats):
        read_all(corpus, "speechgap", args.seed)
    per_answer = (time.perf_counter() - start) / (repeats * len(corpus))
    print(f"\nspeechgap extractor: {1e6 * per_answer:.0f} µs per answer")


if __name__ == "__main__":
    main()
