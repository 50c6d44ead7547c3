"""The whole run: every step in order, against one emulator process; returns the bench.json document."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from orchestrator.settings import DEFAULT_CONCURRENCY

from .figures import add_marginal_cpu, ratios, recommend, skipped, targets
from .floor import floor_step
from .lighthouse import lighthouse_step
from .measure import BenchError
from .realistic import realistic_steps
from .scale import scale_steps
from .seeds import ensure_azure_cli, seeds_step
from .steps import Bench, EmulatorProcess
from .workers import workers_steps
from .worlds import CREDENTIAL_KINDS, Plan, write_world

T = TypeVar("T")

#: The steps `--only` can choose (all by default); those not run are recorded as skipped.
STEP_GROUPS = ("link", "rerun", "sequential", "cpu", "sweep", "workers", "seeds", "scale", "scale-link", "realistic",
               "lighthouse", "floor")
_EMULATOR_GROUPS = ("link", "rerun", "sequential", "cpu", "sweep", "workers", "seeds", "scale-link")


def say(text: str) -> None:
    """Progress on stderr (stdout is the table)."""
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


def _step(label: str, fn: Callable[[], T]) -> T:
    say(f"step: {label} …")
    started = time.perf_counter()
    result = fn()
    say(f"step: {label} done in {time.perf_counter() - started:.1f}s")
    return result


def plan_from(args: argparse.Namespace) -> Plan:
    """The sizes of every step from the command line, identity sets built."""
    plan = Plan(
        n=args.n, sequential_n=args.sequential_n, split_n=args.split_n, seeds_n=args.seeds_n,
        sweep_n=args.sweep_n, sweep=tuple(args.sweep), scale_rows=args.scale_rows,
        profile_n=args.profile_n if args.profile else 0,
        workers_n=args.workers_n if "workers" in args.only else 0,
        scale_link_n=args.scale_link_n if "scale-link" in args.only else 0,
    )
    plan.build()
    return plan


def _meta(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    return {
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "latency_ms": args.latency_ms, "default_concurrency": DEFAULT_CONCURRENCY,
        "credential_mix": {"secret": 0.5, "certificate-pem": 0.3, "certificate-pfx": 0.2},
        "workdir": str(workdir),
    }


def _cpu_by_credential(bench: Bench) -> dict[str, Any]:
    """A 1-identity baseline (the fixed cost), then one batch per credential kind, with marginal CPU."""
    by_kind: dict[str, Any] = {"baseline": _step("cpu baseline (1 identity)",
                                                 lambda: bench.link_step("baseline", "baseline"))}
    for kind in CREDENTIAL_KINDS:
        by_kind[kind] = _step(f"cpu {kind}", partial(bench.link_step, kind, f"split-{kind}"))
    add_marginal_cpu(by_kind, CREDENTIAL_KINDS)
    return by_kind


def _seeds_way(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """The Azure CLI comparison, or a skipped step saying why (the other figures stand without it)."""
    seeds_n = bench.plan.seeds_n
    if args.no_seeds or seeds_n == 0:
        return skipped(seeds_n, "skipped (--no-seeds)")
    az, why = ensure_azure_cli(Path(args.azcli_venv))
    if az is None:
        return skipped(seeds_n, why)
    try:
        return _step("seeds' way", lambda: seeds_step(bench, az))
    except BenchError as exc:  # the Azure CLI would not set up: say so, keep the other figures
        return skipped(seeds_n, f"the Azure CLI failed: {exc}")


def _emulator_steps(bench: Bench, args: argparse.Namespace, steps: dict[str, Any]) -> None:
    """Every step that needs the main emulator, in order, into `steps` (those `--only` leaves out: skipped)."""
    only = set(args.only)
    main_journal = bench.workdir / "link" / "journal.sqlite"
    for name, group, run_it in (
        ("link", "link", lambda: bench.link_step("link", "link", journal=main_journal,
                                                 concurrency=args.link_concurrency)),
        ("rerun", "rerun", lambda: bench.link_step("rerun", "link", journal=main_journal,
                                                   concurrency=args.link_concurrency)),
        # the same link in one process: the client's own CPU per identity, without the workers' overhead
        ("link_one_process", "link", lambda: bench.link_step(
            "link-one", "link-one", extra=["--workers", "1"], concurrency=args.link_concurrency)),
        ("sequential", "sequential", lambda: bench.link_step("sequential", "sequential", concurrency=1)),
    ):
        steps[name] = _step(name, run_it) if group in only else skipped(0, "not in --only")
    steps["cpu_by_credential"] = _cpu_by_credential(bench) if "cpu" in only else {}
    steps["concurrency_sweep"] = {
        str(c): _step(f"sweep c={c}", partial(bench.link_step, f"sweep-{c}", f"sweep-{c}", concurrency=c))
        for c in bench.plan.sweep
    } if "sweep" in only else {}
    steps["workers"] = _step("workers 1 vs 2", lambda: workers_steps(
        bench, concurrency=args.link_concurrency, per_worker_cores=args.quota_per_worker, say=say,
    )) if "workers" in only and bench.plan.workers_n else {}
    # the run an ops team starts on its whole estate: every default (workers; concurrency unless
    # --scale-link-concurrency), the tree's memory
    steps["scale_link"] = _step(f"scale link ({bench.plan.scale_link_n:,} identities)", lambda: bench.link_step(
        "scale-link", "scale-link", concurrency=args.scale_link_concurrency,
    )) if bench.plan.scale_link_n else skipped(0, "not in --only")
    if args.profile:
        steps["profile"] = _step("profile", bench.profile_step)
    steps["seeds_way"] = _seeds_way(bench, args) if "seeds" in only else skipped(0, "not in --only")


def _main_emulator(bench: Bench, args: argparse.Namespace, meta: dict[str, Any], steps: dict[str, Any]) -> None:
    """The main world (flat `--latency-ms`) in its own emulator process, and the steps that use it."""
    t = time.perf_counter()
    world_path = bench.workdir / "world.yaml"
    meta["world_identities"] = write_world(world_path, bench.plan.all_entries(), bench.operator_secret)
    meta["world_write_s"] = round(time.perf_counter() - t, 2)
    say(f"world: {meta['world_identities']} identities written; starting the emulator")
    bench.emulator = EmulatorProcess(world_path, latency_ms=args.latency_ms)
    try:
        bench.emulator.start()
        meta["emulator"] = bench.emulator.command
        meta["emulator_startup_s"] = round(bench.emulator.startup_s, 2)
        say(f"emulator ready in {bench.emulator.startup_s:.1f}s at {bench.emulator.url}")
        _emulator_steps(bench, args, steps)
    finally:
        bench.emulator.stop()


def _emulator_steps_skipped(steps: dict[str, Any]) -> None:
    for name in ("link", "rerun", "link_one_process", "sequential", "seeds_way", "scale_link"):
        steps[name] = skipped(0, "not in --only")
    steps["cpu_by_credential"], steps["concurrency_sweep"], steps["workers"] = {}, {}, {}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every step in order (or those `--only` names); returns the bench.json document."""
    plan = plan_from(args)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pal-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o700)
    bench = Bench(plan, workdir, args.latency_ms)
    doc: dict[str, Any] = {"meta": _meta(args, workdir), "steps": {}}
    meta: dict[str, Any] = doc["meta"]
    steps: dict[str, Any] = doc["steps"]
    if set(args.only) & set(_EMULATOR_GROUPS):
        _main_emulator(bench, args, meta, steps)
    else:
        _emulator_steps_skipped(steps)
    if "scale" in args.only:
        steps.update(_step("scale", lambda: scale_steps(plan.scale_rows, workdir)))
    else:
        steps.update({"inventory_scale": skipped(plan.scale_rows, "not in --only"),
                      "report_scale": skipped(plan.scale_rows, "not in --only")})
    if "realistic" in args.only and (args.realistic_n or args.realistic_sweep):
        steps["realistic"] = _step("realistic", lambda: realistic_steps(
            args.realistic_n, tuple(args.realistic_sweep), args.realistic_sweep_n, workdir, say))
    if "lighthouse" in args.only and args.lighthouse_n:
        steps["lighthouse"] = _step(f"lighthouse ({args.lighthouse_n} delegated subscriptions)",
                                    lambda: lighthouse_step(args.lighthouse_n, workdir, args.latency_ms))
    if "floor" in args.only and args.floor_n:
        steps["floor"] = _step(f"floor ({args.floor_n:,} requests of each kind, both ways, {args.floor_rounds} rounds)",
                               lambda: floor_step(args.floor_n, args.floor_rounds, workdir))
    doc["ratios"] = ratios(steps, args.latency_ms)
    pick, why = recommend(steps["concurrency_sweep"])
    doc["recommended_concurrency"] = {"value": pick, "why": why}
    doc["targets"] = targets(steps, doc["ratios"])
    meta["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return doc
