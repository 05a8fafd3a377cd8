"""``speechgap report DIR``: the report page with the sample explorer, for any eval / analyze folder."""

from __future__ import annotations

import argparse

ARGUMENT_FLAGS = {"folder": "DIR", "out": "--out", "data": "--data"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "folder",
        metavar="DIR",
        help="a `speechgap eval` folder, a `speechgap analyze` folder, or a folder with eval/ and analysis/",
    )
    parser.add_argument("--out", default=None, help="the page to write (default DIR/report.html)")
    parser.add_argument(
        "--data", default=None, help="the paired data, when the run's recorded data moved (for the audio)"
    )
    parser.add_argument(
        "--fix",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="answers under a fix to show per sample (an intervention's or merge variant's eval folder); repeatable",
    )
    parser.add_argument("--no-audio", action="store_true", help="leave the audio out of the page")


def run(args: argparse.Namespace) -> int:
    from speechgap.errors import ConfigError
    from speechgap.explore import build_report

    fixes = {}
    for item in args.fix:
        label, sep, folder = item.partition("=")
        if not sep or not label or not folder:
            raise ConfigError(f"--fix takes LABEL=DIR, got {item!r}")
        fixes[label] = folder
    page = build_report(args.folder, out=args.out, data=args.data, fixes=fixes, audio=not args.no_audio)
    size = page.stat().st_size / 1e6
    print(f"-> {page} ({size:.1f} MB)")
    return 0
