"""Azure Lighthouse results from the journal: lighthouse.csv, lighthouse.json, and what the coverage report shows.

lighthouse.csv: one row per delegated subscription × offer (LIGHTHOUSE_COLUMNS; CSV conventions as the other
reports: UTF-8, CRLF, formula triggers neutralised). lighthouse.json: the run's figures, with the per-customer
roll-up. Both are written by a `lighthouse` run (or `report RUN_ID` of one) into `<report dir>/<run_id>/` and,
for the journal's last finished lighthouse run, into `latest/` too, swapped in together, 0600, like the coverage
set (see `files`), whose files they never touch. For the coverage report of a link run, `latest_run` finds
the latest finished lighthouse run for the same partner ID: `view` adds its keys to summary.json
(`lighthouse_customers`, `lighthouse_recognised`, `lighthouse_run_id`) and its two tables (an XLSX sheet and an
HTML section each). Imports nothing from `view`, so `view` may import it.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

from ..journal import Journal, RunRecord
from ..lighthouse import CustomerVerdict, roll_up
from ..models import LighthouseRow
from .files import LATEST, check_report_dir, clean_stale, private_file, publish, staging_dir
from .rules import csv_safe, iso_utc

LIGHTHOUSE_CSV, LIGHTHOUSE_JSON = "lighthouse.csv", "lighthouse.json"
#: The command a lighthouse run is recorded under.
LIGHTHOUSE_COMMAND = "lighthouse"

#: Column order is part of the report format.
LIGHTHOUSE_COLUMNS = (
    "customer_tenant_id", "customer", "subscription_id", "subscription_name", "offer", "verdict", "reason",
    "principal_ids", "roles", "fix", "error_code", "checked_at",
)
#: The per-customer roll-up, as the coverage report's "Lighthouse customers" table shows it.
LIGHTHOUSE_CUSTOMER_COLUMNS = ("customer_tenant_id", "customer", "verdict", "subscriptions", "offers", "reason", "fix")


def row_values(row: LighthouseRow) -> tuple[Any, ...]:
    """One row in LIGHTHOUSE_COLUMNS order (lists joined with "; "; checked_at an aware datetime)."""
    return (row.customer_tenant_id, row.customer_name, row.subscription_id, row.subscription_name, row.offer,
            row.verdict.value, row.reason, "; ".join(row.principal_ids), "; ".join(row.roles), row.fix,
            row.error_code or "", row.checked_at)


def customer_values(c: CustomerVerdict) -> tuple[Any, ...]:
    """One customer in LIGHTHOUSE_CUSTOMER_COLUMNS order."""
    return (c.customer_tenant_id, c.customer_name, c.verdict.value, c.subscriptions, "; ".join(c.offers), c.reason,
            c.fix)


def latest_run(journal: Journal, partner_ids: tuple[str, ...]) -> RunRecord | None:
    """The latest finished lighthouse run for one of `partner_ids` (case-insensitive), if the journal has one."""
    wanted = {p.strip().lower() for p in partner_ids}
    runs = [r for r in journal.runs() if r.command == LIGHTHOUSE_COMMAND and r.finished
            and wanted & {p.strip().lower() for p in r.partner_ids}]
    return runs[-1] if runs else None


def summary_keys(journal: Journal, run: RunRecord) -> dict[str, Any]:
    """summary.json's Lighthouse keys for a coverage run, from the latest lighthouse run for its partner IDs; none
    when the journal holds no such run (summary.json of a partner without Lighthouse keeps its exact keys)."""
    lighthouse = latest_run(journal, run.partner_ids)
    if lighthouse is None:
        return {}
    customers = roll_up(journal.lighthouse_rows(lighthouse.run_id))
    return {
        "lighthouse_run_id": lighthouse.run_id,
        "lighthouse_customers": len(customers),
        "lighthouse_recognised": sum(1 for c in customers if c.recognised),
    }


def lighthouse_summary(journal: Journal, run_id: str) -> dict[str, Any]:
    """The run's figures and per-customer verdicts, as lighthouse.json holds them."""
    run = journal.run(run_id)
    rows = journal.lighthouse_rows(run_id)
    customers = roll_up(rows)
    return {
        "run_id": run_id,
        "command": run.command,
        "partner_ids": list(run.partner_ids),
        "started_at": iso_utc(run.started_at),
        "finished_at": iso_utc(run.finished_at),
        "exit_code": run.exit_code,
        "lighthouse_customers": len(customers),
        "lighthouse_recognised": sum(1 for c in customers if c.recognised),
        "lighthouse_subscriptions": len({r.subscription_id for r in rows}),
        "verdicts": dict(sorted(Counter(r.verdict.value for r in rows).items())),
        "customer_verdicts": dict(sorted(Counter(c.verdict.value for c in customers).items())),
        "customers": [
            {"customer_tenant_id": c.customer_tenant_id, "customer": c.customer_name, "verdict": c.verdict.value,
             "subscriptions": c.subscriptions, "offers": list(c.offers), "reason": c.reason, "fix": c.fix}
            for c in customers
        ],
    }


def _csv_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    return csv_safe(value) if isinstance(value, str) else value


def _write_set(journal: Journal, run_id: str, stage: Path) -> None:
    """lighthouse.csv and lighthouse.json of one run into `stage`."""
    with private_file(stage / LIGHTHOUSE_CSV).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(LIGHTHOUSE_COLUMNS)
        writer.writerows([_csv_cell(v) for v in row_values(r)] for r in journal.lighthouse_rows(run_id))
    private_file(stage / LIGHTHOUSE_JSON).write_text(
        json.dumps(lighthouse_summary(journal, run_id), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def is_last_lighthouse_run(journal: Journal, run_id: str) -> bool:
    """The run is the journal's last finished lighthouse run (whatever its partner ID, as `latest/` is for coverage)."""
    finished = [r.run_id for r in journal.runs() if r.command == LIGHTHOUSE_COMMAND and r.finished]
    return bool(finished) and finished[-1] == run_id


def write_lighthouse_reports(journal: Journal, run_id: str, report_dir: str | Path, *,
                             latest: bool | None = None) -> tuple[Path, Path]:
    """Write lighthouse.csv and lighthouse.json of one run into `report_dir/<run_id>/`, and a copy into
    `report_dir/latest/` (beside the coverage set, which it leaves alone) when it is the last finished lighthouse
    run (`latest` forces or forbids that); returns the paths in the run's folder."""
    parent = Path(report_dir)
    check_report_dir(parent)
    run_dir = parent / run_id
    check_report_dir(run_dir)
    clean_stale(parent)
    clean_stale(run_dir)
    names = (LIGHTHOUSE_CSV, LIGHTHOUSE_JSON)
    if latest is None:
        latest = is_last_lighthouse_run(journal, run_id)
    latest_dir = parent / LATEST if latest else None
    with staging_dir(run_dir, run_id) as stage:
        _write_set(journal, run_id, stage)
        publish(stage, run_dir, names, run_id, latest_dir)
    return run_dir / LIGHTHOUSE_CSV, run_dir / LIGHTHOUSE_JSON
