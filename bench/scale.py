"""The scale checks: a 100,000-row inventory validated and reports for 100,000 identities rendered.

Each runs in its own child process (`python -m bench --child KIND`), so its peak RSS is its own and no import of
the parent (pandas, the emulator) inflates it. The children import orchestrator lazily for the same reason.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .figures import step_figures
from .measure import BenchError, Measured, bench_env, run_capture


def _child_inventory(args: argparse.Namespace) -> int:
    from orchestrator.inventory import load_inventory

    started = time.perf_counter()
    inv = load_inventory(args.path)
    seconds = time.perf_counter() - started
    json.dump({"seconds": seconds, "identities": len(inv.identities), "problems": len(inv.problems)}, sys.stdout)
    return 0


def _child_report_build(args: argparse.Namespace) -> int:
    from orchestrator.journal import Journal
    from orchestrator.report import synthetic_run

    with Journal(args.path) as journal:
        run_id = synthetic_run(journal, args.rows)
    json.dump({"run_id": run_id}, sys.stdout)
    return 0


def _child_report_render(args: argparse.Namespace) -> int:
    from orchestrator.journal import Journal
    from orchestrator.report import write_reports

    with Journal(args.path) as journal:
        run_id = journal.runs()[-1].run_id
        started = time.perf_counter()
        write_reports(journal, run_id, Path(args.workdir), now=dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
        seconds = time.perf_counter() - started
    json.dump({"seconds": seconds}, sys.stdout)
    return 0


#: `--child KIND` → the function that child process runs (it prints one JSON object on stdout).
CHILDREN: dict[str, Callable[[argparse.Namespace], int]] = {
    "inventory-scale": _child_inventory,
    "report-build": _child_report_build,
    "report-render": _child_report_render,
}


def _child(kind: str, *options: str) -> tuple[Measured, dict[str, Any]]:
    m, out = run_capture([sys.executable, "-m", "bench", "--child", kind, *options], env=bench_env(), timeout_s=1800)
    if m.exit_code != 0:
        raise BenchError(f"child {kind} exited {m.exit_code}")
    data: dict[str, Any] = json.loads(out)
    return m, data


def scale_steps(rows: int, workdir: Path) -> dict[str, Any]:
    """Validate a `rows`-row inventory; render reports for a `rows`-identity journal (time and peak RSS)."""
    from orchestrator.inventory import write_sample_inventory

    work = workdir / "scale"
    work.mkdir(exist_ok=True, mode=0o700)
    inventory = write_sample_inventory(work / f"inventory-{rows}.csv", rows)
    m, data = _child("inventory-scale", "--path", str(inventory))
    inv = {**step_figures(rows, m, None, None), "load_s": round(data["seconds"], 3),
           "identities": data["identities"], "problems": data["problems"]}
    journal = work / "journal.sqlite"
    mb, _ = _child("report-build", "--path", str(journal), "--rows", str(rows))
    mr, data = _child("report-render", "--path", str(journal), "--workdir", str(work / "reports"))
    rep = {**step_figures(rows, mr, None, None), "render_s": round(data["seconds"], 3),
           "journal_build_s": round(mb.wall_s, 2), "journal_build_peak_rss_mb": round(mb.peak_rss_mb, 1)}
    return {"inventory_scale": inv, "report_scale": rep}
