"""The report's view model: one run of the journal → every figure and table the outputs show.

The journal is iterated once into one pandas DataFrame; every table is a view of it, handed on as a plain
`Table` (Python values, one kind per column) inside a `ReportView`. This is the only module of the package
that imports pandas; the output modules (`tables`, `xlsx`, `html`) take the `ReportView` and know nothing
of the journal.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..journal import Journal, RunRecord
from ..lighthouse import roll_up
from ..models import Outcome, Recognition, Status
from .changes import CHANGES_COLUMNS, Changes, changes_since, pick_baseline
from .comparison import coverage_percent
from .lighthouse import (
    LIGHTHOUSE_COLUMNS,
    LIGHTHOUSE_CUSTOMER_COLUMNS,
    customer_values,
    latest_run,
    row_values,
    summary_keys,
)
from .rows import ColumnRows
from .rules import (
    FIX_BY_RECOGNITION,
    REDACTED,
    entra_ids,
    fix_for,
    is_covered,
    iso_utc,
    linked_after,
    percent,
    scrub,
    secret_like,
    vault_and_secret,
)

SCHEMA_VERSION = 1

#: identities.csv columns before the recognition and inventory extra columns. Never reorder: append.
IDENTITY_COLUMNS: tuple[str, ...] = (
    "run_id",
    "customer",
    "tenant_id",
    "client_id",
    "credential_type",
    "target_partner_id",
    "status",
    "linked_partner_id",
    "partner_name",
    "object_id",
    "error_code",
    "error_message",
    "attempts",
    "credential_expires_on",
    "checked_at",
    "recognition",
    "subscriptions",
    "qualifying_roles",
    "source",
    "line",
    "key_vault",
    "secret_name",
    "trace_id",
    "correlation_id",
)

#: customers.csv columns.
CUSTOMER_COLUMNS: tuple[str, ...] = ("customer", "identities", "covered", "recognised", "statuses", "actions_needed")

#: Columns holding timestamps (UTC ISO-8601 text in CSV/HTML, naive UTC datetimes in XLSX).
DATETIME_COLUMNS = frozenset({"credential_expires_on", "checked_at"})

#: What the expiry column says for identities that sign in without a stored secret (nothing to rotate).
NO_SECRET = "no secret"  # noqa: S105 - a label, not a password
SECRETLESS_TYPES = frozenset({"managed_identity", "federated", "managed_identity_federation"})

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


# -- loading the journal ---------------------------------------------------------------------------


@dataclass(slots=True)  # one per customer: tens of thousands at 100,000 identities
class _CustomerAgg:
    identities: set[str] = field(default_factory=set)  # identity keys: a duplicate row is not a second identity
    covered: bool = False
    recognised: bool = False
    statuses: Counter[str] = field(default_factory=Counter)
    fixes: dict[str, bool] = field(default_factory=dict)  # fix text → is it the recognition fix (add a role)?

    def actions(self) -> str:
        """The distinct fixes, first seen first; a recognised customer needs no role added."""
        return "; ".join(text for text, add_role in self.fixes.items() if not (add_role and self.recognised))


@dataclass
class _RunData:
    """One run loaded once: the identities frame (plus helper columns) and per-customer aggregates."""

    run: RunRecord
    frame: pd.DataFrame
    extra_columns: list[str]
    customers: dict[str, _CustomerAgg]
    status_counts: dict[str, int]
    recognition_counts: dict[str, int]


_HELPER_COLUMNS = ("_covered", "_fix", "_recognition_fix", "_key")


def _qualifying_roles(outcome: Outcome) -> str | None:
    rec = outcome.recognition
    if rec is None:
        return None
    names = dict.fromkeys(g.role_name for g in rec.grants if g.eligibility == "yes")
    return "; ".join(names)


def _trace_of(o: Outcome) -> tuple[str | None, str | None, str | None, str | None]:
    """(key_vault, secret_name, trace_id, correlation_id) of one outcome; journals written before these were
    recorded still give the Entra IDs their stored message quotes."""
    vault, secret_name = vault_and_secret(o.secret_uri)
    trace, correlation = o.trace_id, o.correlation_id
    if not (trace and correlation):
        parsed = entra_ids(o.error_message)
        trace, correlation = trace or parsed[0], correlation or parsed[1]
    return vault, secret_name, trace, correlation


def _row_of(o: Outcome, run: RunRecord) -> tuple[Any, ...]:
    """One outcome as the values of `IDENTITY_COLUMNS` followed by `_HELPER_COLUMNS`."""
    covered = is_covered(o.status, o.target_partner_id, o.linked_partner_id)
    linked = linked_after(o.status, o.linked_partner_id)
    rec = o.recognition
    rec_fix = FIX_BY_RECOGNITION.get(rec.recognition, "") if (covered and rec is not None) else ""
    return (
        run.run_id,
        o.customer,
        o.tenant_id,
        o.client_id,
        o.credential_type,
        o.target_partner_id,
        o.status.value,
        linked,
        None if o.status is Status.UNLINKED else o.partner_name,
        o.object_id,
        o.error_code,
        scrub(o.error_message),
        o.attempts,
        o.credential_expires_on or (NO_SECRET if o.credential_type in SECRETLESS_TYPES else None),
        o.checked_at,
        rec.recognition.value if rec else None,
        rec.subscriptions if rec else None,
        _qualifying_roles(o),
        o.source or None,
        o.line or None,
        *_trace_of(o),
        covered,
        fix_for(o.status, o.error_code, run.command),
        rec_fix,
        o.key,
    )


def _add_extras(extras: dict[str, list[Any]], o: Outcome, n: int) -> None:
    """Append row `n`'s inventory extras (secret-named ones redacted); columns first seen later are padded."""
    for name, value in o.extra:
        values = extras.get(name)
        if values is None:
            values = extras[name] = [None] * (n - 1)
        values.append(REDACTED if (value and secret_like(name)) else value)
    for values in extras.values():
        if len(values) < n:
            values.append(None)


def _identity_of(o: Outcome) -> str:
    """The identity a row stands for: tenant + client ID (as the inventory matches duplicates), else the row.

    Usually that is the outcome's own key: then the key itself is kept (it is in the frame already), not a copy.
    """
    if o.tenant_id.strip() and o.client_id.strip():
        identity = f"{o.tenant_id.strip().lower()}|{o.client_id.strip().lower()}"
        return o.key if identity == o.key else identity
    return o.key


def _tally(agg: _CustomerAgg, o: Outcome, covered: bool, fix: str, recognition_fix: str) -> None:
    agg.identities.add(_identity_of(o))
    agg.statuses[o.status.value] += 1
    if covered:
        agg.covered = True
        if o.recognition is not None and o.recognition.recognition is Recognition.ELIGIBLE:
            agg.recognised = True
    if fix:
        agg.fixes.setdefault(fix, False)
    if recognition_fix:
        agg.fixes.setdefault(recognition_fix, True)


def _extra_names(extras: dict[str, list[Any]], taken: set[str]) -> list[str]:
    """Column names for the extras: one named like one of ours keeps its data under `extra_<name>`."""
    names: list[str] = []
    for name in extras:
        unique = name
        while unique in taken:
            unique = f"extra_{unique}"
        taken.add(unique)
        names.append(unique)
    return names


def _load(journal: Journal, run_id: str) -> _RunData:
    """Iterate the run's outcomes once into column lists, then build the DataFrame once."""
    run = journal.run(run_id)
    cols: dict[str, list[Any]] = {c: [] for c in (*IDENTITY_COLUMNS, *_HELPER_COLUMNS)}
    extras: dict[str, list[Any]] = {}
    customers: dict[str, _CustomerAgg] = {}
    statuses: Counter[str] = Counter()
    recognitions: Counter[str] = Counter()
    columns = list(cols.values())
    covered_at = len(IDENTITY_COLUMNS)
    for n, o in enumerate(journal.iter_outcomes(run_id), start=1):
        row = _row_of(o, run)
        for column, value in zip(columns, row, strict=True):
            column.append(value)
        _add_extras(extras, o, n)
        statuses[o.status.value] += 1
        if o.recognition is not None:
            recognitions[o.recognition.recognition.value] += 1
        agg = customers.get(o.customer)
        if agg is None:
            agg = customers[o.customer] = _CustomerAgg()
        _tally(agg, o, *row[covered_at : covered_at + 3])

    extra_names = _extra_names(extras, set(cols) | _WORK_LIST_COLUMNS)
    for unique, values in zip(extra_names, extras.values(), strict=True):
        cols[unique] = values
    del columns, extras  # `_frame` empties `cols` as it goes: nothing else may keep a list alive
    frame = _frame(cols)
    status_counts = {s.value: statuses[s.value] for s in Status if statuses[s.value]}
    recognition_counts = {r.value: recognitions[r.value] for r in Recognition}
    return _RunData(run, frame, extra_names, customers, status_counts, recognition_counts)


def _frame(cols: dict[str, list[Any]]) -> pd.DataFrame:
    """The frame of `cols`, emptying `cols`: each list becomes an array and is let go before the next one, so the
    lists, the arrays and the frame's own block are never all held at once (a 100k-row report's memory peak)."""
    arrays: dict[str, Any] = {}
    for name in list(cols):
        values = cols.pop(name)
        arrays[name] = np.fromiter(values, dtype=object, count=len(values))
        del values
    return pd.DataFrame(arrays, dtype=object, copy=False)


def _completeness(data: _RunData) -> dict[str, Any]:
    """An unfinished run says so, and its identity coverage is over the whole inventory, not what it reached."""
    run = data.run
    recorded = len(data.frame)
    covered = int(data.frame["_covered"].sum()) if recorded else 0
    inventory = max(run.inventory_rows, recorded)
    text = "complete" if run.finished else f"incomplete: {recorded:,} of {inventory:,} identities"
    return {
        "complete": run.finished,
        "headline": text,
        "identities": {"recorded": recorded, "inventory": inventory, "covered": covered,
                       "coverage_percent": percent(covered, inventory)},
    }


def _action_rows(frame: pd.DataFrame) -> dict[str, Any]:
    rows = _fix_rows(frame, "_fix", ("customer", "tenant_id", "client_id", "status", "error_code", "fix"))
    keys = ("customer", "tenant_id", "client_id", "status", "error_code", "fix")
    return {"total": len(rows), "rows": [dict(zip(keys, r, strict=True)) for r in rows[:SUMMARY_ACTION_ROWS]]}


def _summary_of(data: _RunData, changes: Changes | None = None) -> dict[str, Any]:
    run = data.run
    total = len(data.customers)
    covered = sum(1 for a in data.customers.values() if a.covered)
    recognised = sum(1 for a in data.customers.values() if a.recognised)
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
        "action_needed": _action_rows(data.frame),
        "files": list(REPORT_FILES),
    }


def summary(journal: Journal, run_id: str, *, baseline_id: str | None = None) -> dict[str, Any]:
    """The content of summary.json for one run."""
    data = _load(journal, run_id)
    changes = changes_since(journal, data.run, pick_baseline(journal, data.run, baseline_id))
    return {**_summary_of(data, changes), **summary_keys(journal, data.run)}


# -- tables ----------------------------------------------------------------------------------------


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> Sequence[tuple[Any, ...]]:
    """Plain Python rows (None for missing) of some columns, made on demand from the frame's own columns.

    Neither `frame.loc[:, columns]` nor a list of tuples: both would hold another copy of a 100k-row table at the
    report's memory peak.
    """
    if frame.empty:
        return []
    # The frame is built with dtype=object from Python values, so cells are already plain (None, not NaN).
    return ColumnRows([frame[c].to_numpy() for c in columns])


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


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


def _customer_rows(data: _RunData) -> list[tuple[Any, ...]]:
    order = {s.value: i for i, s in enumerate(Status)}
    return [
        (
            name,
            len(agg.identities),
            "yes" if agg.covered else "no",
            "yes" if agg.recognised else "no",
            "; ".join(f"{s}: {n}" for s, n in sorted(agg.statuses.items(), key=lambda kv: order[kv[0]])),
            agg.actions(),
        )
        for name, agg in data.customers.items()
    ]


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


def _fix_rows(frame: pd.DataFrame, fix_column: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """The rows whose `fix_column` holds a fix, with it shown as `fix`."""
    if frame.empty:
        return []
    chosen = (frame[fix_column] != "").to_numpy()  # picked column by column: no copy of the whole frame's rows
    picked = (frame[fix_column if c == "fix" else c].to_numpy()[chosen] for c in columns)
    return list(zip(*picked, strict=True))


def _expiring(frame: pd.DataFrame, extras: Sequence[str], now: datetime, days: int) -> list[tuple[Any, ...]]:
    """Credentials expiring before `now + days` (already expired ones included), soonest first.

    Rows are `_EXPIRY_COLUMNS` followed by the inventory `extras`.
    """
    limit = now + timedelta(days=days)
    found: list[tuple[Any, ...]] = []
    if frame.empty:
        return found
    columns = ["customer", "tenant_id", "client_id", "credential_type", "credential_expires_on", "status", *extras]
    picked = frame.loc[frame["credential_expires_on"].notna(), columns]
    for customer, tenant_id, client_id, ctype, expires, status, *extra in picked.itertuples(index=False, name=None):
        if not isinstance(expires, datetime) or expires > limit:  # "no secret" expires never
            continue
        left = int((expires - now).total_seconds() / 86_400)  # whole days, towards zero: -5 = expired 5 days ago
        fix = "expired — rotate it now" if left < 0 else "rotate it before it expires"
        found.append((customer, tenant_id, client_id, _plain(ctype), expires, left, status, fix, *extra))
    found.sort(key=lambda r: r[4])
    return found


def when(value: datetime | None) -> str:
    """A run's date and time as the charts label it: `2025-03-01 09:00` (UTC)."""
    return (iso_utc(value) or "")[:16].replace("T", " ")


def _history(journal: Journal, current: _RunData) -> list[tuple[str, str, float]]:
    """Coverage % of each earlier `link`/`audit` run that covered any of these identities, then this run."""
    points = [(r.run_id, when(r.started_at), coverage_percent(journal, r.run_id))
              for r in journal.family_runs(current.run.run_id)[-(HISTORY_RUNS - 1):]]
    covered = sum(1 for a in current.customers.values() if a.covered)
    points.append((current.run.run_id, when(current.run.started_at), percent(covered, len(current.customers))))
    return points if len(points) >= 2 else []


def _actions(data: _RunData) -> list[tuple[str, list[str]]]:
    """Each fix in words with the customers that need it, the fix most customers need first."""
    groups: dict[str, list[str]] = {}
    for name, agg in data.customers.items():
        for fix, add_role in agg.fixes.items():
            if not (add_role and agg.recognised):
                groups.setdefault(fix, []).append(name)
    return sorted(groups.items(), key=lambda kv: -len(kv[1]))


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


def _tables(journal: Journal, data: _RunData, changes: Changes, now: datetime, days: int) -> list[Table]:
    """Every table of the report; the work lists end with the inventory's extra columns, as identities do."""
    frame, extras = data.frame, data.extra_columns
    ident_cols = [*IDENTITY_COLUMNS, *extras]
    action_cols = [*_ACTION_COLUMNS, *extras]
    recognition_cols = [*_RECOGNITION_COLUMNS, *extras]
    return [
        _table("Customers", CUSTOMER_COLUMNS, _customer_rows(data), csv_name="customers.csv"),
        _table("Identities", ident_cols, _rows(frame, ident_cols), csv_name="identities.csv"),
        _table(
            "Action needed",
            action_cols,
            _fix_rows(frame, "_fix", action_cols),
            note="Every identity that needs a person to act, with the fix in words.",
        ),
        _table(
            "Expiring credentials",
            [*_EXPIRY_COLUMNS, *extras],
            _expiring(frame, extras, now, days),
            note=f"Credentials that expire within {days} days of {iso_utc(now)} "
            "(before the next quarterly run), expired ones included.",
        ),
        _changes_table(changes),
        _table(
            "Linked but not recognised",
            recognition_cols,
            _fix_rows(frame, "_recognition_fix", recognition_cols),
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
    data = _load(journal, run_id)
    changes = changes_since(journal, data.run, pick_baseline(journal, data.run, baseline_id))
    s = {**_summary_of(data, changes), **summary_keys(journal, data.run)}
    notes: list[str] = []
    if not data.run.finished:
        notes.append(f"This run has not finished (still running, or interrupted) — {s['headline']}: customer "
                     "figures cover what it recorded; identity coverage is over the whole inventory.")
    return ReportView(
        summary=s,
        figures=_figures(s),
        status_counts=list(data.status_counts.items()),
        history=_history(journal, data),
        tables=_tables(journal, data, changes, now, expiry_warning_days),
        notes=notes,
        changes=changes,
        actions=_actions(data),
    )
