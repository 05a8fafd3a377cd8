"""The ``speechgap`` command: a thin shell over the Python API.

Each subcommand lives in ``speechgap/cli/<name>.py`` with two functions:
``add_arguments(parser)`` declares its arguments and ``run(args) -> int`` does the work through the
Python API. Modules import their heavy dependencies inside ``run`` so that ``speechgap --help`` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys

from speechgap.errors import SpeechgapError
from speechgap.version import __version__

# name -> one-line help. Order is the order `speechgap --help` lists them.
COMMANDS: dict[str, str] = {
    "demo": "run the main job end to end on the embedded default",
    "synthesize": "turn text items into paired speech/text samples with multi-speaker TTS",
    "data": "inspect a paired dataset: count, subsets, durations (checks every sample loads)",
    "eval": "speech vs text accuracy of a model on paired data, with paired statistics",
    "score": "re-score an evaluation's responses without the model; write summary.json",
    "capture": "write the hidden states of a whole dataset to safetensors shards (resumable)",
    "analyze": "every gap measure over a dataset: per-layer/per-sample tables, CKA, summary, figures",
    "report": "the report page with the sample explorer, for an eval / analyze folder",
    "study": "across a zoo of checkpoints, regress the gap on cosine, Euclidean distance and APS",
    "sweep": "many models x datasets x steps as one resumable run, on worker processes or a Ray cluster",
    "intervene": "accuracy with and without a training-free intervention (angle, length, calibration, ...)",
    "compress": "merge speech tokens (Affinity Pooling, oracle, ToMe): FLOPs, TTFT, memory vs accuracy",
    "mini": "train the embedded mini speech LLM zoo, or print where the shipped default is",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speechgap",
        description="Measure, explain and narrow the modality gap of speech LLMs.",
    )
    parser.add_argument("--version", action="version", version=f"speechgap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        module = importlib.import_module(f"speechgap.cli.{name}")
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run, _parser=command_parser)
    return parser


_ARGUMENT = re.compile(r"argument '([A-Za-z_][A-Za-z0-9_]*)'")


def flag_names(parser: argparse.ArgumentParser, aliases: dict[str, str] | None = None) -> dict[str, str]:
    """Python argument name -> the subcommand's flag: each option's ``dest`` and its long name with ``_``
    (``max_new_tokens`` -> ``--max-new-tokens``), plus the command's own ``ARGUMENT_FLAGS`` for arguments
    named differently in Python (``out_dir`` -> ``--out``)."""
    names: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):  # e.g. `speechgap mini train`
            for child in action.choices.values():
                for name, flag in flag_names(child).items():
                    names.setdefault(name, flag)
            continue
        long = [option for option in action.option_strings if option.startswith("--")]
        if long:
            names.setdefault(action.dest, long[0])
            for option in long:
                names.setdefault(option[2:].replace("-", "_"), option)
        elif not action.option_strings and action.dest not in ("help",):
            names.setdefault(action.dest, action.metavar or action.dest.upper())
    names.update(aliases or {})
    return names


def translate_error(message: str, names: dict[str, str]) -> str:
    """A library message in the command's words: ``argument 'k'`` becomes ``--k`` where the command has
    that flag; other argument names stay as they are."""
    return _ARGUMENT.sub(lambda match: names.get(match.group(1), match.group(0)), message)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except SpeechgapError as err:
        module = importlib.import_module(f"speechgap.cli.{args.command}")
        names = flag_names(args._parser, getattr(module, "ARGUMENT_FLAGS", None))
        print(f"speechgap {args.command}: error: {translate_error(str(err), names)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"speechgap {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
