"""`write_reports`: one run of the journal → the five report files, through the view and each output."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..journal import Journal
from .files import check_report_dir, private_output
from .html import render_html
from .tables import write_csv, write_summary_json
from .view import build_view
from .xlsx import write_xlsx


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_reports` put each file."""

    identities_csv: Path
    customers_csv: Path
    summary_json: Path
    xlsx: Path
    html: Path


def write_reports(
    journal: Journal,
    run_id: str,
    report_dir: str | Path,
    *,
    expiry_warning_days: int = 120,
    now: datetime | None = None,
) -> ReportPaths:
    """Render every report file of one run into `report_dir` (each 0600, replaced atomically).

    `now` is the reference time for "expiring within `expiry_warning_days`" (default: the current time).
    """
    directory = Path(report_dir)
    check_report_dir(directory)
    paths = ReportPaths(
        identities_csv=directory / "identities.csv",
        customers_csv=directory / "customers.csv",
        summary_json=directory / "summary.json",
        xlsx=directory / "coverage.xlsx",
        html=directory / "coverage.html",
    )
    view = build_view(journal, run_id, expiry_warning_days=expiry_warning_days, now=now)
    for table in view.tables:
        if table.csv_name:
            with private_output(directory / table.csv_name) as tmp:
                write_csv(table, tmp)
    with private_output(paths.summary_json) as tmp:
        write_summary_json(view, tmp)
    with private_output(paths.xlsx) as tmp:
        write_xlsx(view, tmp, tmpdir=directory)
    with private_output(paths.html) as tmp:
        tmp.write_text(render_html(view), encoding="utf-8")
    return paths
