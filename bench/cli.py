"""The command line of `python -m bench` (`make bench`): parse arguments, run, write bench.json, print the table.

`--child KIND` is internal: the scale checks re-run this module as a child process (see `bench.scale`).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import bench

from .run import STEP_GROUPS, run, say
from .scale import CHILDREN
from .table import render_table, write_json


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def _names(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = sorted(set(names) - set(STEP_GROUPS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown step(s) {unknown}; use {','.join(STEP_GROUPS)}")
    return names


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=(bench.__doc__ or "").splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="identities in the main link step")
    p.add_argument("--out", default="reports/bench.json", help="where bench.json goes")
    p.add_argument("--latency-ms", type=float, default=50.0, help="latency the emulator adds to each request")
    p.add_argument("--sequential-n", type=int, default=200)
    p.add_argument("--split-n", type=int, default=300, help="identities per credential-type batch")
    p.add_argument("--seeds-n", type=int, default=20)
    p.add_argument("--sweep-n", type=int, default=2000)
    p.add_argument("--sweep", type=_ints, default=[16, 32, 64, 128],
                   help="concurrency values, comma-separated")
    p.add_argument("--link-concurrency", type=int, default=128,
                   help="--concurrency of the link and re-run steps (and the workers step); at 50 ms the client is "
                        "CPU-bound above 128, so more only halves the ideal")
    p.add_argument("--workers-n", type=int, default=4000,
                   help="identities per run of the workers step (1 and 2 workers, shared and under a CPU quota)")
    p.add_argument("--quota-per-worker", type=float, default=0.5,
                   help="CPUs per worker in the workers step's quota runs (the emulator keeps the rest)")
    p.add_argument("--scale-rows", type=int, default=100_000)
    p.add_argument("--scale-link-n", type=int, default=100_000,
                   help="identities linked with every default (concurrency, workers) in the scale-link step, for the "
                        "memory of the whole process tree (0 skips it; ~10 minutes at 50 ms)")
    p.add_argument("--scale-link-concurrency", type=int, default=None,
                   help="the scale-link step's --concurrency (default: the build's default, which the 300 MB target "
                        "is about); e.g. 512 for what a higher default would cost at 100,000")
    p.add_argument("--realistic-n", type=int, default=10_000,
                   help="identities linked under real-world latencies (the realistic step; 0 skips the link)")
    p.add_argument("--realistic-sweep", type=_ints, default=[128, 256, 512, 1024],
                   help="concurrency values of the realistic sweep, comma-separated")
    p.add_argument("--realistic-sweep-n", type=int, default=2000)
    p.add_argument("--lighthouse-n", type=int, default=1000,
                   help="delegated subscriptions in the lighthouse step (0: skip it)")
    p.add_argument("--floor-n", type=int, default=3000,
                   help="requests of each kind in the floor step (the SDK stack against aiohttp alone; 0 skips it)")
    p.add_argument("--floor-rounds", type=int, default=3, help="alternated rounds of the floor step")
    p.add_argument("--only", type=_names, default=list(STEP_GROUPS),
                   help=f"run only these steps, comma-separated: {','.join(STEP_GROUPS)} (default: all)")
    p.add_argument("--no-seeds", action="store_true", help="skip the Azure CLI comparison")
    p.add_argument("--azcli-venv", default=".venv-azcli", help="virtualenv for the Azure CLI (created on first use)")
    p.add_argument("--profile", action="store_true", help="also run a link under pyinstrument (dev extra)")
    p.add_argument("--profile-n", type=int, default=2000)
    p.add_argument("--workdir", default=None, help="work directory (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (journals, logs, profile)")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    # internal: the child processes of the scale checks
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--path", default=None, help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        return CHILDREN[args.child](args)
    if args.n < 1:
        raise SystemExit("--n must be at least 1")
    doc = run(args)
    out = Path(args.out)
    write_json(doc, out)
    if not args.quiet:
        render_table(doc)
    say(f"wrote {out}")
    return 0
