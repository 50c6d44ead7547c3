"""lighthouse.csv and lighthouse.json, written from the journal (never from memory) for one lighthouse run.

lighthouse.csv: one row per delegated subscription × offer (LIGHTHOUSE_COLUMNS; CSV conventions as the other
reports: UTF-8, CRLF, formula triggers neutralised). lighthouse.json: the run's figures, including the keys
`lighthouse_customers` and `lighthouse_recognised` meant for summary.json, and the per-customer roll-up.
Both are swapped in together, 0600, like the coverage reports (see report.files).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

from .journal import Journal
from .lighthouse import roll_up
from .models import LighthouseRow
from .report.files import check_report_dir, clean_stale, private_file, staging_dir, swap_in
from .report.rules import csv_safe, iso_utc

LIGHTHOUSE_CSV, LIGHTHOUSE_JSON = "lighthouse.csv", "lighthouse.json"

#: Column order is part of the report format.
LIGHTHOUSE_COLUMNS = (
    "customer_tenant_id", "customer", "subscription_id", "subscription_name", "offer", "verdict", "reason",
    "principal_ids", "roles", "fix", "error_code", "checked_at",
)


def row_values(row: LighthouseRow) -> list[Any]:
    """One CSV/XLSX row in LIGHTHOUSE_COLUMNS order (lists joined with "; ")."""
    return [row.customer_tenant_id, row.customer_name, row.subscription_id, row.subscription_name, row.offer,
            row.verdict.value, row.reason, "; ".join(row.principal_ids), "; ".join(row.roles), row.fix,
            row.error_code or "", iso_utc(row.checked_at) or ""]


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


def write_lighthouse_reports(journal: Journal, run_id: str, report_dir: str | Path) -> tuple[Path, Path]:
    """Write lighthouse.csv and lighthouse.json of one run into `report_dir`; returns their paths."""
    directory = Path(report_dir)
    check_report_dir(directory)
    rows = journal.lighthouse_rows(run_id)
    summary = lighthouse_summary(journal, run_id)
    clean_stale(directory)
    with staging_dir(directory, run_id) as stage:
        with private_file(stage / LIGHTHOUSE_CSV).open("w", encoding="utf-8", newline="") as f:
            writer = csv.writer(f, lineterminator="\r\n")
            writer.writerow(LIGHTHOUSE_COLUMNS)
            writer.writerows([csv_safe(v) if isinstance(v, str) else v for v in row_values(r)] for r in rows)
        private_file(stage / LIGHTHOUSE_JSON).write_text(
            json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        swap_in(stage, directory, (LIGHTHOUSE_CSV, LIGHTHOUSE_JSON))
    return directory / LIGHTHOUSE_CSV, directory / LIGHTHOUSE_JSON
