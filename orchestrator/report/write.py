"""`write_reports`: one run of the journal → its report folder, through the view and each output.

Layout under the report directory (`--report-dir`, the parent):

    <run_id>/   that run's full set (`REPORT_FILES`), re-rendered in place by `pal-orchestrator report RUN_ID`
    latest/     a copy of the set of the last finished `link` or `audit` run (what a dashboard or a person opens)
                (`report.lighthouse` adds the last finished lighthouse run's lighthouse.csv/json; neither touches
                the other's files)

Each set is written into a temporary directory and swapped in (see `files`), so a folder always holds one run's
whole set and `summary.json` names that run (`run_id`). `plan` and `unlink` runs, unfinished runs and re-renders
of older runs never replace `latest/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..journal import Journal
from .files import LATEST, check_report_dir, clean_stale, private_file, publish, staging_dir
from .html import render_html
from .summary_page import render_summary_page
from .tables import write_csv, write_summary_json
from .view import REPORT_FILES, ReportView, build_view
from .xlsx import write_xlsx

__all__ = ["LATEST", "ReportPaths", "write_reports"]


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_reports` put each file (in the run's folder), and the `latest/` folder when it was replaced."""

    identities_csv: Path
    customers_csv: Path
    summary_json: Path
    xlsx: Path
    html: Path
    changes_csv: Path | None = None
    summary_html: Path | None = None
    latest: Path | None = None

    @property
    def directory(self) -> Path:
        """The run's report folder."""
        return self.summary_json.parent


IDENTITIES_CSV, CUSTOMERS_CSV, CHANGES_CSV = "identities.csv", "customers.csv", "changes.csv"
SUMMARY_JSON, XLSX, HTML, SUMMARY_HTML = "summary.json", "coverage.xlsx", "coverage.html", "summary.html"
#: The files of one run's set, in the order they are swapped in (summary.json, the run's name tag, last).
FILE_NAMES = REPORT_FILES


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
    private_file(stage / SUMMARY_HTML).write_text(render_summary_page(view), encoding="utf-8")


def _is_latest(journal: Journal, run_id: str) -> bool:
    last = journal.latest_finished()
    return last is not None and last.run_id == run_id


def write_reports(
    journal: Journal,
    run_id: str,
    report_dir: str | Path,
    *,
    expiry_warning_days: int = 120,
    now: datetime | None = None,
    baseline_id: str | None = None,
    latest: bool | None = None,
) -> ReportPaths:
    """Render every report file of one run into `report_dir/<run_id>/` (each 0600; the set replaced as a whole),
    and the same set into `report_dir/latest/` when the run is the last finished link/audit run.

    `now` is the reference time for "expiring within `expiry_warning_days`" (default: the current time);
    `baseline_id` the run to compare with (default: the journal's baseline of the run); `latest` forces
    (True) or forbids (False) replacing `latest/`. Raises ReportError for an unsafe directory,
    ReportWriteError when it cannot be written.
    """
    parent = Path(report_dir)
    check_report_dir(parent)
    view = build_view(journal, run_id, expiry_warning_days=expiry_warning_days, now=now, baseline_id=baseline_id)
    run_dir = parent / run_id
    check_report_dir(run_dir)
    clean_stale(parent)
    clean_stale(run_dir)
    latest_dir = parent / LATEST if (latest if latest is not None else _is_latest(journal, run_id)) else None
    with staging_dir(run_dir, run_id) as stage:
        _write_all(view, stage)
        publish(stage, run_dir, FILE_NAMES, run_id, latest_dir)
    return ReportPaths(
        identities_csv=run_dir / IDENTITIES_CSV,
        customers_csv=run_dir / CUSTOMERS_CSV,
        summary_json=run_dir / SUMMARY_JSON,
        xlsx=run_dir / XLSX,
        html=run_dir / HTML,
        changes_csv=run_dir / CHANGES_CSV,
        summary_html=run_dir / SUMMARY_HTML,
        latest=latest_dir,
    )
