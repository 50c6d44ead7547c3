"""The output: bench.json on disk and the figures as rich tables on stdout (the run itself prints nothing)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.settings import DEFAULT_CONCURRENCY

from .figures import STEP_KEYS

if TYPE_CHECKING:
    from rich.table import Table

_COLUMNS = ("step", "N", "wall s", "id/s", "CPU ms/id", "peak RSS MB", "req/id", "emulator CPU s", "CPU-bound id/s",
            "tree RSS MB", "load 1m")


def write_json(doc: dict[str, Any], out: Path) -> None:
    """bench.json: the whole document, indented, parent directories created."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def _step_rows(steps: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, step) for every row of the steps table, in the order they ran."""
    rows: list[tuple[str, dict[str, Any]]] = [
        (f"link (c={steps['link'].get('concurrency')}, default --workers)", steps["link"]),
        ("re-run (read-only)", steps["rerun"]),
        ("link, --workers 1", steps.get("link_one_process") or {}),
        ("sequential (c=1)", steps["sequential"]),
    ]
    rows += [(f"cpu: {k}", v) for k, v in steps["cpu_by_credential"].items()]
    rows += [(f"sweep c={c}", v) for c, v in steps["concurrency_sweep"].items()]
    workers = steps.get("workers") or {}
    for mode in ("shared", "quota"):
        rows += [(f"workers {mode} w={w}" + (f" ({s['cpu_quota_cores']:g} CPU)" if mode == "quota" else ""), s)
                 for w, s in (workers.get(mode) or {}).items()]
    if (steps.get("scale_link") or {}).get("wall_s"):
        scale = steps["scale_link"]
        every_default = scale.get("concurrency") in (None, DEFAULT_CONCURRENCY)
        rows.append(("link at scale (every default)" if every_default else f"link at scale (c={scale['concurrency']})",
                     scale))
    if "profile" in steps:
        rows.append(("profiled link", steps["profile"]))
    rows += [("seeds' way (az)", steps["seeds_way"]), ("inventory 100k", steps["inventory_scale"]),
             ("reports 100k", steps["report_scale"])]
    real = steps.get("realistic") or {}
    if "link" in real:
        rows.append((f"realistic link (c={real['link'].get('concurrency')})", real["link"]))
    rows += [(f"realistic sweep c={c}", v) for c, v in (real.get("sweep") or {}).items()]
    if "lighthouse" in steps:  # n = delegated subscriptions; "identities/s" reads as subscriptions/s
        rows.append((f"lighthouse {steps['lighthouse'].get('subscriptions', 0):,} subs", steps["lighthouse"]))
    return rows


def _steps_table(doc: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table(title=f"pal-orchestrator bench — {doc['meta']['latency_ms']:.0f} ms per request")
    for col in _COLUMNS:
        table.add_column(col, justify="left" if col == "step" else "right")
    for label, s in _step_rows(doc["steps"]):
        load = s.get("loadavg_1m")
        table.add_row(label, *(_fmt(s.get(k)) for k in STEP_KEYS), _fmt(s.get("cpu_bound_identities_per_s")),
                      _fmt(s.get("tree_rss_mb")), "→".join(f"{x:.1f}" for x in load) if load else "—")
    return table


def _targets_table(doc: dict[str, Any]) -> Table:
    from rich.table import Table

    t = Table(title="targets")
    for col in ("target", "goal", "measured", "met"):
        t.add_column(col)
    for row in doc["targets"]:
        met = {True: "yes", False: "NO", None: "—"}[row["met"]]
        t.add_row(row["target"], f"{row['rule']} {_fmt(row['goal'])}", _fmt(row["measured"]), met)
    return t


def _summary_lines(doc: dict[str, Any]) -> list[str]:
    """The lines between the two tables: skipped seeds, ratios, marginal CPU, the recommendation."""
    steps, r = doc["steps"], doc["ratios"]
    lines = [f"seeds' way: {steps['seeds_way']['why']}"] if steps["seeds_way"].get("skipped") else []
    lines.append(
        f"link ÷ seeds' way: {_fmt(r['link_vs_seeds_throughput'])}×  ·  link ÷ sequential: "
        f"{_fmt(r['link_vs_sequential_throughput'])}×  ·  latency-bound ideal {_fmt(r['latency_bound_ideal_s'])} s "
        f"vs measured {_fmt(r['link_measured_s'])} s"
    )
    marginal = {k: v.get("marginal_cpu_ms_per_identity") for k, v in steps["cpu_by_credential"].items()
                if k != "baseline"}
    lines.append("marginal client CPU ms per identity: " + ", ".join(f"{k} {_fmt(v)}" for k, v in marginal.items()))
    workers = steps.get("workers") or {}
    if workers:
        lines.append(f"workers 2 ÷ 1 (c={workers['concurrency']}): shared machine "
                     f"{_fmt(workers.get('shared_ratio_2_vs_1'))}×  ·  client under a CPU quota of "
                     f"{workers['per_worker_cores']:g} CPU per worker, the emulator on its own core: "
                     f"{_fmt(workers.get('quota_ratio_2_vs_1'))}×")
    lines.append(f"link share of the latency-bound ideal: {_fmt(steps['link'].get('ideal_share'))}")
    rec = doc["recommended_concurrency"]
    lines.append(f"recommended --concurrency: {rec['value']} ({rec['why']})")
    real = steps.get("realistic") or {}
    for label, step in [("link", real.get("link")), *((f"c={c}", v) for c, v in (real.get("sweep") or {}).items())]:
        if step:
            lines.append(f"realistic {label}: {_fmt(step['wall_s'])} s, latency-bound ideal "
                         f"{_fmt(step.get('latency_bound_ideal_s'))} s ({_fmt(step.get('ideal_share'))} of ideal)")
    if real.get("within_5pct_of_best"):
        best = real["within_5pct_of_best"]
        lines.append(f"realistic: concurrency within 5 % of the best: {best['value']} ({best['why']})")
    lines += _floor_lines(steps.get("floor"))
    return lines


def _floor_lines(floor: dict[str, Any] | None) -> list[str]:
    """The floor step in one line: each kind SDK / raw, and a new link's six requests (bench/floor.py)."""
    if not floor:
        return []
    kinds = ", ".join(f"{k} {v['sdk_us']}/{v['raw_us']} µs" for k, v in floor["kinds"].items())
    share = floor["sdk_share_of_new_link"]
    return [f"floor, CPU per request through the SDK stack / with aiohttp alone: {kinds}; a new link's six "
            f"requests {_fmt(floor['new_link_sdk_ms'])} / {_fmt(floor['new_link_raw_ms'])} ms "
            f"({'—' if share is None else f'{share:.0%}'} of it the SDK stack's)"]


def render_table(doc: dict[str, Any]) -> None:
    """The figures as rich tables on stdout (the CLI's output; the library functions print nothing)."""
    from rich.console import Console

    console = Console(width=None if sys.stdout.isatty() else 150)
    console.print(_steps_table(doc))
    for line in _summary_lines(doc):
        console.print(line)
    console.print(_targets_table(doc))
