"""Coverage reports rendered from the run journal: CSV, JSON, XLSX and HTML, plus run comparison.

Reports are always built from the journal (never from memory), so any run can be re-rendered and a crash
mid-run still leaves a reportable journal. Data flows one way through the package:

    rules        the judgements about one outcome: covered?, its fix, its colour, safe text (no I/O)
    rows         a run's columns kept small (Coded: pandas categorical codes) and ColumnRows: rows made on demand
    files        the report directory: safety checks, one run's set swapped in whole  (no report knowledge)
    comparison   journal → what changed between two runs; the list of runs            (uses rules)
    changes      journal → each identity's change since the baseline run              (uses rules, comparison)
    lighthouse   journal → lighthouse.csv/json of a lighthouse run; rows and keys for the view (rules, files)
    load         journal → one run's columns, read once                               (uses rows, rules)
    customers    a run's columns → per-customer figures and the Customers rows        (uses load, rows)
    view         journal → ReportView: every figure and Table (rules, comparison, changes, lighthouse,
                 load, customers)
    tables       ReportView → identities.csv, customers.csv, changes.csv, summary.json (uses view)
    xlsx         ReportView → coverage.xlsx                                           (uses view)
    html         ReportView → coverage.html                                           (uses view)
    summary_page ReportView → summary.html, the page for management                  (uses view, html's chart)
    markdown     summary.json → a Markdown summary for a CI job page                 (uses changes' labels)
    write        write_reports: view → every output → <run_id>/ and latest/           (uses all of the above)
    synthetic    a synthetic run and its render timing, for the benchmark             (uses write)

No module imports one that sits below it in this list, so there is no import circle; outputs take the view
and import nothing back. This `__init__` only re-exports the public names.

User-supplied text (customer names, inventory extra columns, error messages) is treated as hostile:
CSV cells that would start a formula get a leading `'`, XLSX cells are written as strings only, HTML
is escaped. The file format is documented in docs/reports.md; column order is part of the contract.
"""

from __future__ import annotations

from ..errors import ReportWriteError
from .changes import CHANGE_KINDS, CHANGE_LABELS, CHANGES_COLUMNS, Changes, changes_since, pick_baseline
from .comparison import Change, Comparison, compare_runs, default_comparison, render_comparison, runs_table
from .files import check_report_dir
from .html import HTML_ROW_CAP, render_html
from .markdown import publish_markdown, render_markdown
from .rules import (
    FAILURE_STATUSES,
    FIX_BY_ERROR_CODE,
    FIX_BY_RECOGNITION,
    FIX_BY_STATUS,
    FORMULA_TRIGGERS,
    NOT_LINKED_STATUSES,
    RECOGNITION_FIX,
    REDACTED,
    csv_safe,
    entra_ids,
    fix_for,
    is_covered,
    iso_utc,
    scrub,
    status_colours,
    vault_and_secret,
)
from .summary_page import render_summary_page
from .synthetic import bench_render, synthetic_run
from .view import (
    CUSTOMER_COLUMNS,
    DATETIME_COLUMNS,
    HISTORY_RUNS,
    IDENTITY_COLUMNS,
    REPORT_FILES,
    SCHEMA_VERSION,
    ReportView,
    Table,
    build_view,
    summary,
)
from .write import LATEST, ReportPaths, write_reports
from .xlsx import EXCEL_MAX_DATA_ROWS, sheet_names, write_xlsx

__all__ = [
    "CHANGES_COLUMNS",
    "CHANGE_KINDS",
    "CHANGE_LABELS",
    "CUSTOMER_COLUMNS",
    "DATETIME_COLUMNS",
    "EXCEL_MAX_DATA_ROWS",
    "FAILURE_STATUSES",
    "FIX_BY_ERROR_CODE",
    "FIX_BY_RECOGNITION",
    "FIX_BY_STATUS",
    "FORMULA_TRIGGERS",
    "HISTORY_RUNS",
    "HTML_ROW_CAP",
    "IDENTITY_COLUMNS",
    "LATEST",
    "NOT_LINKED_STATUSES",
    "RECOGNITION_FIX",
    "REDACTED",
    "REPORT_FILES",
    "SCHEMA_VERSION",
    "Change",
    "Changes",
    "Comparison",
    "ReportPaths",
    "ReportView",
    "ReportWriteError",
    "Table",
    "bench_render",
    "build_view",
    "changes_since",
    "check_report_dir",
    "compare_runs",
    "csv_safe",
    "default_comparison",
    "entra_ids",
    "fix_for",
    "is_covered",
    "iso_utc",
    "pick_baseline",
    "publish_markdown",
    "render_comparison",
    "render_html",
    "render_markdown",
    "render_summary_page",
    "runs_table",
    "scrub",
    "sheet_names",
    "status_colours",
    "summary",
    "synthetic_run",
    "vault_and_secret",
    "write_reports",
    "write_xlsx",
]
