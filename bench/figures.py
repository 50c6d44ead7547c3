"""The figures of bench.json: per-step figures, ratios, the issue's targets and the recommended concurrency.

Pure functions of measurements and dicts (no processes, no I/O), so the arithmetic is testable on its own.
"""

from __future__ import annotations

from typing import Any

from .measure import Measured

#: Keys every step in bench.json carries (null where a figure does not apply).
STEP_KEYS = (
    "n", "wall_s", "identities_per_s", "cpu_ms_per_identity", "peak_rss_mb", "requests_per_identity",
    "emulator_cpu_s",
)

#: The issue's targets (the compass, not a test).
TARGETS = {
    "link_identities_per_s": 150.0,
    "cpu_ms_per_secret_or_pem_identity": 5.0,
    "link_vs_seeds_per_identity": 100.0,
    "scale_peak_rss_mb": 300.0,
    "inventory_100k_s": 5.0,
    "reports_100k_s": 30.0,
    # issue 17
    "link_cpu_ms_per_identity": 5.0,
    "link_share_of_latency_bound_ideal": 0.5,
    "workers_2_vs_1_emulator_own_core": 1.8,
    "scale_link_tree_rss_mb": 300.0,
}


def step_figures(n: int, m: Measured, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """The common figures of a step (every key of STEP_KEYS, plus the raw CPU split)."""
    requests = None
    emulator_cpu = None
    if before is not None and after is not None:
        requests = int(after["requests"]) - int(before["requests"])
        emulator_cpu = round(float(after["cpu_s"]) - float(before["cpu_s"]), 2)
    return {
        "n": n,
        "wall_s": round(m.wall_s, 3),
        "identities_per_s": round(n / m.wall_s, 2) if m.wall_s else None,
        "cpu_ms_per_identity": round(m.cpu_s * 1000 / n, 2) if n else None,
        "peak_rss_mb": round(m.peak_rss_mb, 1),
        "tree_rss_mb": round(m.tree_rss_mb, 1),  # the sum over the process tree (worker processes included)
        "requests_per_identity": round(requests / n, 2) if requests is not None and n else None,
        "emulator_cpu_s": emulator_cpu,
        "requests": requests,
        # What one core could do if this process had it to itself (the event loop is single-threaded):
        # a figure that a busy machine does not distort, unlike identities_per_s.
        "cpu_bound_identities_per_s": round(n / m.cpu_s, 1) if m.cpu_s else None,
        "user_cpu_s": round(m.user_s, 2),
        "sys_cpu_s": round(m.sys_s, 2),
    }


def skipped(n: int, why: str) -> dict[str, Any]:
    """A step that did not run: every STEP_KEYS figure null, and why."""
    return {**{k: None for k in STEP_KEYS}, "n": n, "skipped": True, "why": why}


def latency_bound_s(n: int, requests_per_identity: float | None, latency_ms: float, concurrency: int) -> float | None:
    """The ideal when only latency bounds the run: requests per identity × latency ÷ concurrency, × N."""
    if not requests_per_identity:
        return None
    return round(n * requests_per_identity * latency_ms / 1000.0 / concurrency, 2)


def add_marginal_cpu(by_kind: dict[str, Any], kinds: tuple[str, ...]) -> None:
    """Per credential kind: CPU above the 1-identity baseline's fixed cost, per identity after the first."""
    base = by_kind["baseline"]
    fixed_cpu = base["user_cpu_s"] + base["sys_cpu_s"]
    for kind in kinds:
        k = by_kind[kind]
        k["fixed_cpu_s"] = round(fixed_cpu, 2)
        k["marginal_cpu_ms_per_identity"] = round(
            (k["user_cpu_s"] + k["sys_cpu_s"] - fixed_cpu) * 1000 / max(k["n"] - 1, 1), 2)


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 1) if a and b else None


def ratios(steps: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    """Link throughput against the seeds' way and the sequential baseline; the latency-bound ideal."""
    link, seq, seeds = steps["link"], steps["sequential"], steps.get("seeds_way", {})
    return {
        "link_vs_seeds_throughput": _ratio(link.get("identities_per_s"), seeds.get("identities_per_s")),
        "seeds_vs_link_cpu_per_identity": _ratio(seeds.get("cpu_ms_per_identity"), link.get("cpu_ms_per_identity")),
        "link_vs_sequential_throughput": _ratio(link.get("identities_per_s"), seq.get("identities_per_s")),
        "latency_bound_ideal_s": link.get("latency_bound_ideal_s"),
        "link_measured_s": link.get("wall_s"),
        "measured_vs_ideal": link.get("measured_vs_ideal"),
        "latency_ms": latency_ms,
        "concurrency": link.get("concurrency"),
    }


def targets(steps: dict[str, Any], r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the measured figure and whether it is met (None: not measured)."""
    by_kind = steps.get("cpu_by_credential", {})
    cpu = [by_kind[k].get("marginal_cpu_ms_per_identity") for k in ("secret", "certificate-pem") if k in by_kind]
    inv, rep = steps.get("inventory_scale", {}), steps.get("report_scale", {})
    rows: list[tuple[str, float, float | None, bool]] = [
        ("link_identities_per_s", TARGETS["link_identities_per_s"], steps["link"].get("identities_per_s"), True),
        ("cpu_ms_per_secret_or_pem_identity", TARGETS["cpu_ms_per_secret_or_pem_identity"],
         max(cpu) if cpu and None not in cpu else None, False),
        ("link_vs_seeds_per_identity", TARGETS["link_vs_seeds_per_identity"], r.get("link_vs_seeds_throughput"),
         True),
        ("scale_peak_rss_mb", TARGETS["scale_peak_rss_mb"],
         max(inv.get("peak_rss_mb") or 0, rep.get("peak_rss_mb") or 0) or None, False),
        ("inventory_100k_s", TARGETS["inventory_100k_s"], inv.get("load_s"), False),
        ("reports_100k_s", TARGETS["reports_100k_s"], rep.get("render_s"), False),
        ("link_cpu_ms_per_identity", TARGETS["link_cpu_ms_per_identity"],
         (steps.get("link_one_process") or {}).get("cpu_ms_per_identity"), False),
        ("link_share_of_latency_bound_ideal", TARGETS["link_share_of_latency_bound_ideal"],
         steps["link"].get("ideal_share"), True),
        ("workers_2_vs_1_emulator_own_core", TARGETS["workers_2_vs_1_emulator_own_core"],
         (steps.get("workers") or {}).get("quota_ratio_2_vs_1"), True),
        ("scale_link_tree_rss_mb", TARGETS["scale_link_tree_rss_mb"],
         (steps.get("scale_link") or {}).get("tree_rss_mb"), False),
    ]
    return [
        {"target": name, "goal": goal, "measured": got,
         "met": None if got is None else (got >= goal if higher else got <= goal),
         "rule": "≥" if higher else "≤"}
        for name, goal, got, higher in rows
    ]


def recommend(sweep: dict[str, dict[str, Any]]) -> tuple[int | None, str]:
    """The smallest concurrency within 5 % of the best throughput (fewer sockets and tokens in flight)."""
    rated = {int(c): s["identities_per_s"] for c, s in sweep.items() if s.get("identities_per_s")}
    if not rated:
        return None, "no sweep figures"
    best = max(rated.values())
    pick = min(c for c, r in rated.items() if r >= 0.95 * best)
    return pick, f"smallest concurrency within 5 % of the best sweep throughput ({best:.0f} identities/s)"
