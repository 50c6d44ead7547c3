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
and import nothing back. This `__init__` only re-exports the public names,
lazily (PEP 562): a run imports `check_report_dir` before any work and must not load pandas for it.

User-supplied text (customer names, inventory extra columns, error messages) is treated as hostile:
CSV cells that would start a formula get a leading `'`, XLSX cells are written as strings only, HTML
is escaped. The file format is documented in docs/reports.md; column order is part of the contract.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the names for type checkers; at run time `__getattr__` imports a name's module on first use
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

_SUBMODULES = frozenset({
    "rules", "rows", "files", "comparison", "changes", "lighthouse", "view", "tables", "xlsx", "html",
    "summary_page", "markdown", "write", "synthetic",
})

#: public name → the module that defines it (relative to this package)
_HOMES: dict[str, str] = {
    "ReportWriteError": "..errors",
    "CHANGE_KINDS": ".changes",
    "CHANGE_LABELS": ".changes",
    "CHANGES_COLUMNS": ".changes",
    "Changes": ".changes",
    "changes_since": ".changes",
    "pick_baseline": ".changes",
    "Change": ".comparison",
    "Comparison": ".comparison",
    "compare_runs": ".comparison",
    "default_comparison": ".comparison",
    "render_comparison": ".comparison",
    "runs_table": ".comparison",
    "check_report_dir": ".files",
    "HTML_ROW_CAP": ".html",
    "render_html": ".html",
    "publish_markdown": ".markdown",
    "render_markdown": ".markdown",
    "FAILURE_STATUSES": ".rules",
    "FIX_BY_ERROR_CODE": ".rules",
    "FIX_BY_RECOGNITION": ".rules",
    "FIX_BY_STATUS": ".rules",
    "FORMULA_TRIGGERS": ".rules",
    "NOT_LINKED_STATUSES": ".rules",
    "RECOGNITION_FIX": ".rules",
    "REDACTED": ".rules",
    "csv_safe": ".rules",
    "entra_ids": ".rules",
    "fix_for": ".rules",
    "is_covered": ".rules",
    "iso_utc": ".rules",
    "scrub": ".rules",
    "status_colours": ".rules",
    "vault_and_secret": ".rules",
    "render_summary_page": ".summary_page",
    "bench_render": ".synthetic",
    "synthetic_run": ".synthetic",
    "CUSTOMER_COLUMNS": ".view",
    "DATETIME_COLUMNS": ".view",
    "HISTORY_RUNS": ".view",
    "IDENTITY_COLUMNS": ".view",
    "REPORT_FILES": ".view",
    "SCHEMA_VERSION": ".view",
    "ReportView": ".view",
    "Table": ".view",
    "build_view": ".view",
    "summary": ".view",
    "LATEST": ".write",
    "ReportPaths": ".write",
    "write_reports": ".write",
    "EXCEL_MAX_DATA_ROWS": ".xlsx",
    "sheet_names": ".xlsx",
    "write_xlsx": ".xlsx",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (pandas only with the views that need it)."""
    if name in _SUBMODULES:  # `report.write` as an attribute, as the eager imports used to leave it
        return importlib.import_module(f".{name}", __name__)
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value


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
