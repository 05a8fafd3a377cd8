"""``speechgap mini``: the embedded mini speech LLM zoo (train it, or show where the shipped one is)."""

from __future__ import annotations

import argparse

ARGUMENT_FLAGS = {"out_dir": "--out"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mini_command", metavar="ACTION", required=True)
    train = sub.add_parser("train", help="train the base LM and the speech LLM zoo from scratch")
    train.add_argument("--out", required=True, help="output folder (a rerun resumes finished stages)")
    train.add_argument("--seed", type=int, default=0, help="seed of questions, TTS rates, init, data order")
    train.add_argument(
        "--text-steps",
        type=int,
        default=None,
        help="base LM steps at most (default 2500; stops early at 96%% dev accuracy)",
    )
    train.add_argument(
        "--encoder-steps",
        type=int,
        default=None,
        help="CTC pretraining steps of the audio encoder (default 1000; 0 = start from a random encoder)",
    )
    train.add_argument(
        "--speech-steps", type=int, default=None, help="speech LLM steps per variant (default 3000)"
    )
    train.add_argument("--checkpoints", type=int, default=None, help="checkpoints per variant (default 4)")
    train.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: fastest on a shared 2-core CPU)"
    )
    ship = sub.add_parser("ship", help="copy a trained zoo into the package (float16 safetensors)")
    ship.add_argument(
        "--from", dest="run_dir", required=True, help="a finished `speechgap mini train` folder"
    )
    ship.add_argument("--default-only", action="store_true", help="ship only the default checkpoint")
    sub.add_parser("path", help="print the folder of the shipped default speech LLM")


def run(args: argparse.Namespace) -> int:
    from speechgap.mini import default_model_path

    if args.mini_command == "path":
        print(default_model_path())
        return 0
    if args.mini_command == "ship":
        from speechgap.mini.ship import ship_zoo

        sizes = ship_zoo(args.run_dir, whole_zoo=not args.default_only)
        print(", ".join(f"{name}: {mb} MB" for name, mb in sizes.items()))
        return 0
    from speechgap.mini.encoder import EncoderSettings
    from speechgap.mini.train import TrainSettings, train_zoo

    # unset options keep the defaults; TrainSettings refuses bad values, naming the argument (-> its flag)
    chosen = {name: getattr(args, name) for name in ("text_steps", "speech_steps", "checkpoints")}
    overrides: dict = {name: value for name, value in chosen.items() if value is not None}
    if args.encoder_steps is not None:
        overrides["encoder"] = EncoderSettings(steps=args.encoder_steps)
    settings = TrainSettings(seed=args.seed, threads=args.threads, **overrides)
    zoo = train_zoo(args.out, settings)
    print(f"{'checkpoint':<16} {'text acc':>9} {'speech acc':>11}")
    for checkpoint in zoo.checkpoints:
        speech = checkpoint.speech_accuracy
        speech_text = "-" if speech is None else f"{speech:.3f}"
        print(f"{checkpoint.name:<16} {checkpoint.text_accuracy:>9.3f} {speech_text:>11}")
    if zoo.encoder is not None:
        rates = zoo.encoder["word_error_rate"]
        print(f"encoder (CTC) word error rate: dev {rates['dev']:.3f}, test {rates['test']:.3f}")
    print(f"zoo written to {args.out} in {zoo.total_seconds:.0f} s")
    return 0
