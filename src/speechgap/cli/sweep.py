"""``speechgap sweep SPEC --out DIR``: every job of a sweep spec, locally or on a Ray cluster (docs/scale.md)."""

from __future__ import annotations

import argparse

ARGUMENT_FLAGS = {"out_dir": "--out", "spec": "SPEC"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="the sweep spec: a YAML or JSON file (docs/scale.md)")
    parser.add_argument(
        "--out", required=True, help="sweep folder; rerunning the same sweep skips finished jobs"
    )
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: worker processes on this machine (default); ray: tasks on a Ray cluster",
    )
    parser.add_argument(
        "--address",
        default=None,
        help="ray: the cluster to join (auto, HOST:6379, ray://HOST:10001); default: start a local Ray instance",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="local: CPU slots (default: the cores); ray without --address: CPUs of the local instance",
    )
    parser.add_argument("--plan", action="store_true", help="list the jobs the spec expands to and exit")
    parser.add_argument("--no-progress", action="store_true", help="print only the final table")


def run(args: argparse.Namespace) -> int:
    from speechgap.sweep import expand, load_spec, run_sweep

    spec = load_spec(args.spec)
    if args.plan:
        for job in expand(spec, args.out):
            resources = ", ".join(f"{k} {v:g}" for k, v in job.resources.items() if k != "memory" and v)
            after = f"  after {', '.join(job.after)}" if job.after else ""
            print(f"{job.id:<48} {job.kind:<5} {resources}{after}")
        return 0
    result = run_sweep(
        spec, args.out, engine=args.engine, workers=args.workers, address=args.address,
        progress=not args.no_progress,
    )  # fmt: skip
    print(result.format())
    print(f"-> {args.out}/sweep.json, {args.out}/table.csv, {args.out}/report.html")
    return 0 if not result.failed else 1
