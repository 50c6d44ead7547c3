"""Coverage reports rendered from the run journal: CSV, JSON, XLSX and HTML, plus run comparison.

Reports are always built from the journal (never from memory), so any run can be re-rendered and a crash
mid-run still leaves a reportable journal. Data flows one way through the package:

    rules        the judgements about one outcome: covered?, its fix, its colour, safe text (no I/O)
    files        the report directory: safety checks, one run's set swapped in whole  (no report knowledge)
    comparison   journal → what changed between two runs; the list of runs            (uses rules)
    lighthouse   journal → lighthouse.csv/json of a lighthouse run; rows and keys for the view (rules, files)
    view         journal → ReportView: every figure and Table; the only pandas importer (rules, comparison,
                 lighthouse)
    tables       ReportView → identities.csv, customers.csv, summary.json             (uses view)
    xlsx         ReportView → coverage.xlsx                                           (uses view)
    html         ReportView → coverage.html                                           (uses view)
    write        write_reports: view → every output → files                           (uses all of the above)
    synthetic    a synthetic run and its render timing, for the benchmark             (uses write)

No module imports one that sits below it in this list, so there is no import circle; outputs take the view
and import nothing back. This `__init__` only re-exports the public names.

User-supplied text (customer names, inventory extra columns, error messages) is treated as hostile:
CSV cells that would start a formula get a leading `'`, XLSX cells are written as strings only, HTML
is escaped. The file format is documented in docs/reports.md; column order is part of the contract.
"""

from __future__ import annotations

from ..errors import ReportWriteError
from .comparison import Change, Comparison, compare_runs, default_comparison, render_comparison, runs_table
from .files import check_report_dir
from .html import HTML_ROW_CAP, render_html
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
from .synthetic import bench_render, synthetic_run
from .view import (
    CUSTOMER_COLUMNS,
    DATETIME_COLUMNS,
    HISTORY_RUNS,
    IDENTITY_COLUMNS,
    SCHEMA_VERSION,
    ReportView,
    Table,
    build_view,
    summary,
)
from .write import ReportPaths, write_reports
from .xlsx import EXCEL_MAX_DATA_ROWS, sheet_names, write_xlsx

__all__ = [
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
    "NOT_LINKED_STATUSES",
    "RECOGNITION_FIX",
    "REDACTED",
    "SCHEMA_VERSION",
    "Change",
    "Comparison",
    "ReportPaths",
    "ReportView",
    "ReportWriteError",
    "Table",
    "bench_render",
    "build_view",
    "check_report_dir",
    "compare_runs",
    "csv_safe",
    "default_comparison",
    "entra_ids",
    "fix_for",
    "is_covered",
    "iso_utc",
    "render_comparison",
    "render_html",
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
