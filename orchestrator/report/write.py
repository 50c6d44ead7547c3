"""`write_reports`: one run of the journal → the five report files, through the view and each output.

The files are written into a temporary directory and swapped in together (see `files`), so the report
directory always holds one run's set; `summary.json` names that run (`run_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..journal import Journal
from .files import check_report_dir, clean_stale, private_file, staging_dir, swap_in
from .html import render_html
from .tables import write_csv, write_summary_json
from .view import ReportView, build_view
from .xlsx import write_xlsx


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_reports` put each file."""

    identities_csv: Path
    customers_csv: Path
    summary_json: Path
    xlsx: Path
    html: Path


IDENTITIES_CSV, CUSTOMERS_CSV = "identities.csv", "customers.csv"
SUMMARY_JSON, XLSX, HTML = "summary.json", "coverage.xlsx", "coverage.html"
#: The files of one run's set, in the order they are swapped in (summary.json, the run's name tag, last).
FILE_NAMES = (IDENTITIES_CSV, CUSTOMERS_CSV, XLSX, HTML, SUMMARY_JSON)


def _write_all(view: ReportView, stage: Path) -> None:
    """Every file of the set into `stage` (xlsxwriter's scratch files in a subdirectory of it)."""
    for table in view.tables:
        if table.csv_name:
            write_csv(table, private_file(stage / table.csv_name))
    write_summary_json(view, private_file(stage / SUMMARY_JSON))
    scratch = stage / "xlsxwriter"
    scratch.mkdir(mode=0o700)
    write_xlsx(view, private_file(stage / XLSX), tmpdir=scratch)
    private_file(stage / HTML).write_text(render_html(view), encoding="utf-8")


def write_reports(
    journal: Journal,
    run_id: str,
    report_dir: str | Path,
    *,
    expiry_warning_days: int = 120,
    now: datetime | None = None,
) -> ReportPaths:
    """Render every report file of one run into `report_dir` (each 0600; the set replaced as a whole).

    `now` is the reference time for "expiring within `expiry_warning_days`" (default: the current time).
    Raises ReportError for an unsafe directory, ReportWriteError when it cannot be written.
    """
    directory = Path(report_dir)
    check_report_dir(directory)
    view = build_view(journal, run_id, expiry_warning_days=expiry_warning_days, now=now)
    clean_stale(directory)
    with staging_dir(directory, run_id) as stage:
        _write_all(view, stage)
        swap_in(stage, directory, FILE_NAMES)
    return ReportPaths(
        identities_csv=directory / IDENTITIES_CSV,
        customers_csv=directory / CUSTOMERS_CSV,
        summary_json=directory / SUMMARY_JSON,
        xlsx=directory / XLSX,
        html=directory / HTML,
    )
