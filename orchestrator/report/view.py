"""The report's view model: one run of the journal → every figure and table the outputs show.

The journal is read once into the run's columns (`load`); every table is a view of them, handed on as a plain
`Table` (rows of Python values made as they are read, one kind per column) inside a `ReportView`; the customers'
figures come from the same columns (`customers`). The output modules (`tables`, `xlsx`, `html`) take the
`ReportView` and know nothing of the journal. A 100,000-identity report's memory is its columns': coded
(pandas' categorical codes) where values repeat.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..journal import Journal, RunRecord
from ..lighthouse import roll_up
from .changes import CHANGES_COLUMNS, Changes, changes_since, pick_baseline
from .comparison import coverage_percent
from .customers import Customers
from .lighthouse import (
    LIGHTHOUSE_COLUMNS,
    LIGHTHOUSE_CUSTOMER_COLUMNS,
    customer_values,
    latest_run,
    row_values,
    summary_keys,
)
from .load import IDENTITY_COLUMNS, NO_SECRET, SECRETLESS_TYPES, RunData, load_run
from .rows import Coded, Column, ColumnRows, Picked
from .rules import iso_utc, percent

__all__ = ["IDENTITY_COLUMNS", "NO_SECRET", "SECRETLESS_TYPES"]  # still importable from here

SCHEMA_VERSION = 1

#: customers.csv columns.
CUSTOMER_COLUMNS: tuple[str, ...] = ("customer", "identities", "covered", "recognised", "statuses", "actions_needed")

#: Columns holding timestamps (UTC ISO-8601 text in CSV/HTML, naive UTC datetimes in XLSX).
DATETIME_COLUMNS = frozenset({"credential_expires_on", "checked_at"})

#: A Summary figure: text, a count (int) or a percentage (float, shown with one decimal).
Figure = str | int | float

#: How many earlier runs the coverage-per-run chart shows.
HISTORY_RUNS = 20

#: The files of one run's set, in the order they are swapped in (summary.json, the run's name tag, last).
REPORT_FILES = ("identities.csv", "customers.csv", "changes.csv", "coverage.xlsx", "coverage.html",
                "summary.html", "summary.json")

#: The name of the Lighthouse roll-up table (coverage.html charts it; an XLSX sheet of that name holds it).
LIGHTHOUSE_CUSTOMERS = "Lighthouse customers"

#: summary.json lists at most this many "action needed" rows (the CSV/XLSX hold all of them).
SUMMARY_ACTION_ROWS = 100


@dataclass(frozen=True)
class Table:
    """A rendered table handed to the outputs: plain Python values, one kind per column.

    Kinds: `text`, `id` (text that must not wrap), `int`, `datetime` (aware UTC), `status` and `yesno`
    (coloured).
    `csv_name` names the CSV file holding every row (the HTML note points at it; `tables` writes it).
    """

    name: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    note: str = ""
    csv_name: str = ""


@dataclass(frozen=True)
class ReportView:
    """Everything the outputs show, already computed."""

    summary: dict[str, Any]
    figures: list[tuple[str, Figure]]  # numbers stay numbers, so a spreadsheet can add them
    status_counts: list[tuple[str, int]]
    history: list[tuple[str, str, float]]  # run_id, started (UTC text), coverage %
    tables: list[Table]
    notes: list[str]
    changes: Changes = field(default_factory=lambda: Changes(None))
    actions: list[tuple[str, list[str]]] = field(default_factory=list)  # fix → the customers that need it


def _completeness(data: RunData) -> dict[str, Any]:
    """An unfinished run says so, and its identity coverage is over the whole inventory, not what it reached."""
    run = data.run
    recorded = data.rows
    covered = _count(data.columns["_covered"], True)
    inventory = max(run.inventory_rows, recorded)
    text = "complete" if run.finished else f"incomplete: {recorded:,} of {inventory:,} identities"
    return {
        "complete": run.finished,
        "headline": text,
        "identities": {"recorded": recorded, "inventory": inventory, "covered": covered,
                       "coverage_percent": percent(covered, inventory)},
    }


def _count(column: Column, value: Any) -> int:
    """How many rows of `column` hold `value` (a coded column counts its codes, not its rows one by one)."""
    if isinstance(column, Coded):
        return sum(int(n) for v, n in zip(column.values, column.counts(), strict=True) if v == value)
    return column.count(value)


def _action_rows(data: RunData) -> dict[str, Any]:
    keys = ("customer", "tenant_id", "client_id", "status", "error_code", "fix")
    rows = _fix_rows(data, "_fix", keys)
    return {"total": len(rows), "rows": [dict(zip(keys, r, strict=True)) for r in rows[:SUMMARY_ACTION_ROWS]]}


def _summary_of(data: RunData, customers: Customers, changes: Changes | None = None) -> dict[str, Any]:
    run = data.run
    total = len(customers.names)
    covered = int(customers.covered.sum())
    recognised = int(customers.recognised.sum())
    changes = changes or Changes(None)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run.run_id,
        "tool_version": run.tool_version,
        "command": run.command,
        "inventory": {
            "path": run.inventory_path,
            "sha256": run.inventory_sha256,
            "rows": run.inventory_rows,
            "skipped": run.skipped,
        },
        "partner_ids": list(run.partner_ids),
        "started_at": iso_utc(run.started_at),
        "finished_at": iso_utc(run.finished_at),
        "status_counts": dict(data.status_counts),
        "customers": {"total": total, "covered": covered},
        "coverage_percent": percent(covered, total),
        "exit_code": run.exit_code,
        "recognition": {
            "recognised": recognised,
            "recognition_percent": percent(recognised, total),
            **data.recognition_counts,
        },
        **_completeness(data),
        "baseline_run_id": changes.baseline.run_id if changes.baseline else None,
        "baseline": changes.summary(),
        "changes": changes.counts(),
        "action_needed": _action_rows(data),
        "files": list(REPORT_FILES),
    }


def summary(journal: Journal, run_id: str, *, baseline_id: str | None = None) -> dict[str, Any]:
    """The content of summary.json for one run."""
    run = journal.run(run_id)
    changes = changes_since(journal, run, pick_baseline(journal, run, baseline_id))
    data = _load(journal, run)
    return {**_summary_of(data, Customers(data), changes), **summary_keys(journal, run)}


def _load(journal: Journal, run: RunRecord) -> RunData:
    return load_run(journal, run, _WORK_LIST_COLUMNS)


# -- tables ----------------------------------------------------------------------------------------


def _rows(data: RunData, columns: Sequence[str],
          picked: Picked | Sequence[int] | None = None) -> Sequence[tuple[Any, ...]]:
    """Rows of some columns (a work list's `fix` is its fix column), made on demand from the run's own columns:
    a list of tuples would hold another copy of a 100k-row table at the report's memory peak."""
    if not data.rows:
        return []
    return ColumnRows([data.columns[c] for c in columns], picked=picked)


_ID_COLUMNS = frozenset(
    {"run_id", "tenant_id", "client_id", "object_id", "target_partner_id", "linked_partner_id"}
    | {"before_partner_id", "after_partner_id", "trace_id", "correlation_id"}
)


def _kind(column: str) -> str:
    if column in DATETIME_COLUMNS:
        return "datetime"
    if column in ("attempts", "subscriptions", "identities", "days_left", "line"):
        return "int"
    if column in ("status", "before_status", "after_status", "before", "after"):
        return "status"
    if column in ("covered", "recognised"):
        return "yesno"
    if column in _ID_COLUMNS:
        return "id"
    return "text"


def _table(name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], **kw: Any) -> Table:
    return Table(name, tuple(columns), tuple(_kind(c) for c in columns), rows, **kw)


_ACTION_COLUMNS = ("customer", "tenant_id", "client_id", "status", "error_code", "error_message", "fix")
_EXPIRY_COLUMNS = (
    "customer",
    "tenant_id",
    "client_id",
    "credential_type",
    "credential_expires_on",
    "days_left",
    "status",
    "fix",
)
_RECOGNITION_COLUMNS = (
    "customer",
    "tenant_id",
    "client_id",
    "linked_partner_id",
    "recognition",
    "subscriptions",
    "qualifying_roles",
    "fix",
)


#: Names an inventory extra column cannot keep: the work lists below carry the extras after their own columns.
_WORK_LIST_COLUMNS = frozenset({*_ACTION_COLUMNS, *_EXPIRY_COLUMNS, *_RECOGNITION_COLUMNS})


def _fix_rows(data: RunData, fix_column: str, columns: Sequence[str]) -> Sequence[tuple[Any, ...]]:
    """The rows whose `fix_column` holds a fix, with it shown as `fix`: row numbers, not copies of the rows."""
    fixes = data.columns[fix_column]
    assert isinstance(fixes, Coded)
    if not data.rows:
        return []
    return _rows(data, [fix_column if c == "fix" else c for c in columns], fixes.rows_where(lambda fix: fix != ""))


def _expiring(data: RunData, extras: Sequence[str], now: datetime, days: int) -> list[tuple[Any, ...]]:
    """Credentials expiring before `now + days` (already expired ones included), soonest first.

    Rows are `_EXPIRY_COLUMNS` followed by the inventory `extras`.
    """
    limit = now + timedelta(days=days)
    found: list[tuple[Any, ...]] = []
    expiries = data.columns["credential_expires_on"]
    assert isinstance(expiries, list)
    expiring = [row for row, expires in enumerate(expiries)
                if isinstance(expires, datetime) and expires <= limit]  # "no secret" expires never
    columns = ["customer", "tenant_id", "client_id", "credential_type", "credential_expires_on", "status", *extras]
    for customer, tenant_id, client_id, ctype, expires, status, *extra in _rows(data, columns, expiring):
        left = int((expires - now).total_seconds() / 86_400)  # whole days, towards zero: -5 = expired 5 days ago
        fix = "expired — rotate it now" if left < 0 else "rotate it before it expires"
        found.append((customer, tenant_id, client_id, ctype, expires, left, status, fix, *extra))
    found.sort(key=lambda r: r[4])
    return found


def when(value: datetime | None) -> str:
    """A run's date and time as the charts label it: `2025-03-01 09:00` (UTC)."""
    return (iso_utc(value) or "")[:16].replace("T", " ")


def _earlier_coverage(journal: Journal, run: RunRecord) -> list[tuple[str, str, float]]:
    """Coverage % of each earlier `link`/`audit` run that covered any of these identities (read before this run's
    columns are, so each earlier run's states and this run's columns are not held at once)."""
    return [(r.run_id, when(r.started_at), coverage_percent(journal, r.run_id))
            for r in journal.family_runs(run.run_id)[-(HISTORY_RUNS - 1):]]


def _history(earlier: list[tuple[str, str, float]], run: RunRecord,
             customers: Customers) -> list[tuple[str, str, float]]:
    """The earlier runs' coverage %, then this run's."""
    points = [*earlier, (run.run_id, when(run.started_at), percent(int(customers.covered.sum()), len(customers.names)))]
    return points if len(points) >= 2 else []


def _actions(customers: Customers) -> list[tuple[str, list[str]]]:
    """Each fix in words with the customers that need it, the fix most customers need first."""
    return sorted(customers.actions.items(), key=lambda kv: -len(kv[1]))


def _figures(s: dict[str, Any]) -> list[tuple[str, Figure]]:
    inv = s["inventory"]
    rec = s["recognition"]
    return [
        ("Run ID", s["run_id"]),
        ("Command", s["command"]),
        ("Tool version", s["tool_version"]),
        ("Inventory", inv["path"]),
        ("Inventory SHA-256", inv["sha256"]),
        ("Inventory rows", inv["rows"]),
        ("Skipped rows", inv["skipped"]),
        ("Partner IDs", ", ".join(s["partner_ids"])),
        ("Started (UTC)", s["started_at"] or ""),
        ("Finished (UTC)", s["finished_at"] or "not finished"),
        ("Exit code", "" if s["exit_code"] is None else s["exit_code"]),
        ("Completeness", s["headline"]),
        ("Baseline run", s["baseline_run_id"] or "none"),
        ("Customers", s["customers"]["total"]),
        ("Customers covered", s["customers"]["covered"]),
        ("Coverage %", s["coverage_percent"]),
        ("Customers recognised", rec["recognised"]),
        ("Recognition %", rec["recognition_percent"]),
        *([("Lighthouse customers", s["lighthouse_customers"]),
           ("Lighthouse customers recognised", s["lighthouse_recognised"])] if "lighthouse_customers" in s else []),
    ]


def _changes_table(changes: Changes) -> Table:
    base = changes.baseline
    if base is None:
        note = ("No earlier finished link or audit run of these identities is in the journal, "
                "so there is nothing to compare.")
    else:
        note = f"Changes since the baseline, {base.command} run {base.run_id} ({iso_utc(base.started_at)})."
        if not changes.removed_known:
            note += " This run did not finish, so identities it did not reach are not listed as removed."
    return _table("Changes", CHANGES_COLUMNS, changes.rows, note=note, csv_name="changes.csv")


def _tables(journal: Journal, data: RunData, customers: Customers, changes: Changes, now: datetime,
            days: int) -> list[Table]:
    """Every table of the report; the work lists end with the inventory's extra columns, as identities do."""
    extras = data.extra_columns
    ident_cols = [*IDENTITY_COLUMNS, *extras]
    action_cols = [*_ACTION_COLUMNS, *extras]
    recognition_cols = [*_RECOGNITION_COLUMNS, *extras]
    return [
        _table("Customers", CUSTOMER_COLUMNS, customers.table_rows(), csv_name="customers.csv"),
        _table("Identities", ident_cols, _rows(data, ident_cols), csv_name="identities.csv"),
        _table(
            "Action needed",
            action_cols,
            _fix_rows(data, "_fix", action_cols),
            note="Every identity that needs a person to act, with the fix in words.",
        ),
        _table(
            "Expiring credentials",
            [*_EXPIRY_COLUMNS, *extras],
            _expiring(data, extras, now, days),
            note=f"Credentials that expire within {days} days of {iso_utc(now)} "
            "(before the next quarterly run), expired ones included.",
        ),
        _changes_table(changes),
        _table(
            "Linked but not recognised",
            recognition_cols,
            _fix_rows(data, "_recognition_fix", recognition_cols),
            note="Linked to the target partner ID, but without a permanent PEC-eligible role, "
            "so no partner earned credit is recognised.",
        ),
        *_lighthouse_tables(journal, data.run),
    ]


def _lighthouse_tables(journal: Journal, run: RunRecord) -> list[Table]:
    """The latest lighthouse run for this run's partner IDs as two tables; none when the journal has no such run."""
    lighthouse = latest_run(journal, run.partner_ids)
    if lighthouse is None:
        return []
    rows = journal.lighthouse_rows(lighthouse.run_id)
    source = f"From lighthouse run {lighthouse.run_id} ({iso_utc(lighthouse.started_at)}); lighthouse.csv holds it."
    return [
        _table(LIGHTHOUSE_CUSTOMERS, LIGHTHOUSE_CUSTOMER_COLUMNS, [customer_values(c) for c in roll_up(rows)],
               note="Customers delegating subscriptions through Azure Lighthouse: the best verdict of each. " + source),
        _table("Lighthouse subscriptions", LIGHTHOUSE_COLUMNS, [row_values(r) for r in rows],
               note="One row per delegated subscription × offer, with the reason and the fix. " + source),
    ]


def build_view(
    journal: Journal,
    run_id: str,
    *,
    expiry_warning_days: int = 120,
    now: datetime | None = None,
    baseline_id: str | None = None,
) -> ReportView:
    """Compute every table and figure of one run's report (no files written).

    `now` is the reference time for "expiring within `expiry_warning_days`" (default: the current time);
    `baseline_id` the run to compare with (default: `Journal.baseline`).
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (UTC)")
    run = journal.run(run_id)
    changes = changes_since(journal, run, pick_baseline(journal, run, baseline_id))
    earlier = _earlier_coverage(journal, run)  # before this run's columns, like the changes: the peaks do not add up
    data = _load(journal, run)
    customers = Customers(data)
    s = {**_summary_of(data, customers, changes), **summary_keys(journal, run)}
    notes: list[str] = []
    if not run.finished:
        notes.append(f"This run has not finished (still running, or interrupted) — {s['headline']}: customer "
                     "figures cover what it recorded; identity coverage is over the whole inventory.")
    return ReportView(
        summary=s,
        figures=_figures(s),
        status_counts=list(data.status_counts.items()),
        history=_history(earlier, run, customers),
        tables=_tables(journal, data, customers, changes, now, expiry_warning_days),
        notes=notes,
        changes=changes,
        actions=_actions(customers),
    )
