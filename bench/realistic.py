"""The `realistic` step: real-world latencies per service instead of a flat 50 ms, a link and a concurrency sweep.

Its own emulator process serves its own identities with the emulator's `latency:` spec (a log-normal per class:
tokens, Key Vault reads, ARM reads, partner writes). The latency-bound ideal is the sum of the mean latency of every
request the step made (counted per service by the emulator, ARM split into reads and writes) ÷ concurrency.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from orchestrator.settings import DEFAULT_CONCURRENCY

from .figures import recommend
from .steps import Bench, EmulatorProcess
from .worlds import Plan, identity_set, write_world

#: Per latency class, median and p99 in ms: Entra tokens 100–300 ms, Key Vault reads 20–80 ms, ARM reads
#: 100–250 ms, partner writes median ~2 s with a p99 of ~15 s.
REALISTIC_LATENCY: dict[str, dict[str, float]] = {
    "entra": {"median_ms": 150, "p99_ms": 300},
    "keyvault": {"median_ms": 35, "p99_ms": 80},
    "arm_read": {"median_ms": 150, "p99_ms": 250},
    "arm_write": {"median_ms": 2000, "p99_ms": 15000},
}


def mean_latency_s() -> dict[str, float]:
    """The mean of each class's log-normal: median × exp(σ² / 2)."""
    from orchestrator.emulator.faults import parse_latency  # lazily: the scale children must not load the emulator

    return {name: d.median_s * math.exp(d.sigma ** 2 / 2) for name, d in parse_latency(REALISTIC_LATENCY).items()}


def ideal_s(before: dict[str, Any], after: dict[str, Any], concurrency: int) -> float | None:
    """Σ mean latency of the step's requests ÷ concurrency: the time if only latency bounded the run."""
    means = mean_latency_s()

    def count(service: str) -> int:
        got = sum((after.get("counters", {}).get(service) or {}).values())
        return int(got) - int(sum((before.get("counters", {}).get(service) or {}).values()))

    writes = int(after.get("writes_total", 0)) - int(before.get("writes_total", 0))
    arm = count("arm")
    total = (count("entra") * means["entra"] + count("keyvault") * means["keyvault"]
             + max(arm - writes, 0) * means["arm_read"] + writes * means["arm_write"])
    return round(total / concurrency, 2) if total else None


def realistic_plan(n: int, sweep: tuple[int, ...], sweep_n: int) -> Plan:
    """Identity sets of their own (prefixes 0x70…), disjoint from the main world's."""
    plan = Plan(n=n, sweep=sweep, sweep_n=sweep_n)
    if n:
        plan.sets["real-link"] = identity_set("real", 0x70, n)
    for j, c in enumerate(sweep):
        plan.sets[f"real-sweep-{c}"] = identity_set(f"realsw{j}", 0x71 + j, sweep_n)
    return plan


def realistic_steps(n: int, sweep: tuple[int, ...], sweep_n: int, workdir: Path,
                    say: Callable[[str], None]) -> dict[str, Any]:
    """A link of `n` at the default concurrency and a sweep of `sweep_n` per concurrency, under real latencies."""
    plan = realistic_plan(n, sweep, sweep_n)
    work = workdir / "realistic"
    work.mkdir(exist_ok=True, mode=0o700)
    bench = Bench(plan, work, latency_ms=0.0)
    faults = work / "faults.yaml"
    faults.write_text(yaml.safe_dump({"latency": REALISTIC_LATENCY}), encoding="utf-8")
    write_world(work / "world.yaml", plan.all_entries(), bench.operator_secret)
    bench.emulator = EmulatorProcess(work / "world.yaml", latency_ms=0.0, faults=faults).start()
    out: dict[str, Any] = {"latency": REALISTIC_LATENCY, "mean_latency_ms": {
        k: round(v * 1000, 1) for k, v in mean_latency_s().items()}}
    try:
        if n:
            say(f"realistic: link {n} at c={DEFAULT_CONCURRENCY}")
            out["link"] = _measured(bench, "real-link", None)
        out["sweep"] = {}
        for c in sweep:
            say(f"realistic: sweep c={c} ({sweep_n})")
            out["sweep"][str(c)] = _measured(bench, f"real-sweep-{c}", c)
    finally:
        bench.emulator.stop()
    pick, why = recommend(out["sweep"])
    out["within_5pct_of_best"] = {"value": pick, "why": why}
    return out


def _measured(bench: Bench, set_name: str, concurrency: int | None) -> dict[str, Any]:
    """One link step, its ideal recomputed from the real latencies of the requests it made."""
    before = bench.em.stats()
    result = bench.link_step(set_name, set_name, concurrency=concurrency)
    after = bench.em.stats()
    ideal = ideal_s(before, after, concurrency or DEFAULT_CONCURRENCY)
    result["latency_bound_ideal_s"] = ideal
    result["measured_vs_ideal"] = round(result["wall_s"] / ideal, 2) if ideal else None
    result["ideal_share"] = round(ideal / result["wall_s"], 2) if ideal and result["wall_s"] else None
    return result
