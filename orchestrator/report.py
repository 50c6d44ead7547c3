"""Coverage reports rendered from the run journal: CSV, JSON, XLSX and HTML, plus run comparison.

Reports are always built from the journal (never from memory), so any run can be re-rendered and a crash
mid-run still leaves a reportable journal. The journal is iterated once into one pandas DataFrame; every
table is a view of it. This is the only module that imports pandas: the XLSX and HTML writers
(`report_xlsx`, `report_html`) receive plain `Table` values, so they stay small and testable.

User-supplied text (customer names, inventory extra columns, error messages) is treated as hostile:
CSV cells that would start a formula get a leading `'`, XLSX cells are written as strings only, HTML
is escaped. The file format is documented in docs/reports.md; column order is part of the contract.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import resource
import stat
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from . import report_html, report_xlsx
from .errors import JournalError, ReportError
from .journal import Journal, RunRecord
from .models import COVERED_STATUSES, Command, Outcome, Recognition, RecognitionResult, Status

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
)

#: customers.csv columns.
CUSTOMER_COLUMNS: tuple[str, ...] = ("customer", "identities", "covered", "recognised", "statuses", "actions_needed")

#: Columns holding timestamps (UTC ISO-8601 text in CSV/HTML, naive UTC datetimes in XLSX).
DATETIME_COLUMNS = frozenset({"credential_expires_on", "checked_at"})

#: Statuses that mean something is broken and a person has to act (as opposed to "not linked yet").
FAILURE_STATUSES = frozenset(
    {
        Status.CREDENTIAL_MISSING,
        Status.CREDENTIAL_FORBIDDEN,
        Status.CREDENTIAL_DISABLED,
        Status.CREDENTIAL_EXPIRED,
        Status.CREDENTIAL_INVALID,
        Status.SIGN_IN_FAILED,
        Status.PARTNER_ID_INVALID,
        Status.FAILED,
        Status.SKIPPED,
    }
)

#: Statuses that say, from a successful read, that the identity is *not* linked to its target now.
NOT_LINKED_STATUSES = frozenset(
    {Status.NOT_LINKED, Status.WOULD_LINK, Status.WOULD_RELINK, Status.LINKED_ELSEWHERE, Status.UNLINKED}
)

#: The fix, in words, for each status that needs one. Error codes below take precedence.
FIX_BY_STATUS: dict[Status, str] = {
    Status.LINKED_ELSEWHERE: "linked to a different partner ID — confirm with the customer, then relink it "
    "to the target partner ID",
    Status.WOULD_LINK: "not linked yet — run `pal-orchestrator link`",
    Status.WOULD_RELINK: "linked to a different partner ID — run `pal-orchestrator link` to relink it",
    Status.NOT_LINKED: "not linked — run `pal-orchestrator link`",
    Status.CREDENTIAL_MISSING: "secret not found in Key Vault — store it, or correct the secret name in the inventory",
    Status.CREDENTIAL_FORBIDDEN: "Key Vault refused to read the secret — grant the operator "
    "Key Vault Secrets User on the vault",
    Status.CREDENTIAL_DISABLED: "secret disabled in Key Vault — enable it or store a new version",
    Status.CREDENTIAL_EXPIRED: "secret expired in Key Vault — rotate it",
    Status.CREDENTIAL_INVALID: "secret in Key Vault is not a usable credential — store the client secret, "
    "PFX or PEM again",
    Status.SIGN_IN_FAILED: "sign-in to the customer tenant failed — check the credential and the app "
    "registration (see error_message)",
    Status.PARTNER_ID_INVALID: "partner ID rejected by Microsoft — use the partner location ID (PLA) "
    "from Partner Center",
    Status.FAILED: "unexpected failure — read error_message, fix the cause and re-run",
    Status.SKIPPED: "invalid inventory row — correct it as error_message says, then re-run",
}

#: More precise fixes for known error codes (matched case-insensitively; bare digits mean AADSTS).
FIX_BY_ERROR_CODE: dict[str, str] = {
    "invalid_row": FIX_BY_STATUS[Status.SKIPPED],
    "AADSTS7000215": "client secret rejected by Entra ID — rotate it and store the new value in Key Vault",
    "AADSTS7000222": "client secret expired in Entra ID — create a new one and store it in Key Vault",
    "AADSTS700027": "certificate not registered on the app — upload it to the app registration",
    "AADSTS700016": "app not found in the customer tenant — check tenant_id and client_id, or consent the app there",
    "AADSTS90002": "tenant not found — check tenant_id and the cloud",
    "AADSTS7000112": "app disabled in the customer tenant — re-enable the service principal",
    "AADSTS53003": "sign-in blocked by Conditional Access — exclude the service principal from the policy",
    "AADSTS5000224": "customer tenant deactivated — remove the row from the inventory",
    "PartnerIdInvalid": FIX_BY_STATUS[Status.PARTNER_ID_INVALID],
}
_FIX_BY_CODE_LOWER = {k.lower(): v for k, v in FIX_BY_ERROR_CODE.items()}

RECOGNITION_FIX = "assign Support Request Contributor at subscription scope, permanently"
#: The fix for a covered identity whose recognition is not `eligible`.
FIX_BY_RECOGNITION: dict[Recognition, str] = {
    Recognition.NOT_ELIGIBLE: RECOGNITION_FIX,
    Recognition.NO_ROLES: RECOGNITION_FIX,
    Recognition.UNKNOWN: "recognition could not be checked — make sure the identity holds Support Request "
    "Contributor at subscription scope, permanently",
}

#: Characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

#: How many earlier runs the coverage-per-run chart shows.
HISTORY_RUNS = 20

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL)
_SECRET_NAME = re.compile(r"secret|password|passwd|pwd|token|private.?key|api.?key|credential", re.IGNORECASE)
_SAFE_SECRET_NAME = re.compile(r"(_|\b)(uri|url|name|id|type|expires?(_on)?)$", re.IGNORECASE)
REDACTED = "[redacted]"


# -- public value types ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportPaths:
    """Where `write_reports` put each file."""

    identities_csv: Path
    customers_csv: Path
    summary_json: Path
    xlsx: Path
    html: Path


@dataclass(frozen=True, slots=True)
class Change:
    """One identity whose state differs between two runs (`before_*` is None when absent from run A)."""

    key: str
    customer: str
    tenant_id: str
    client_id: str
    before_status: str | None
    after_status: str | None
    before_partner_id: str | None
    after_partner_id: str | None
    error_code: str | None = None


@dataclass(frozen=True)
class Comparison:
    """What changed from run A to run B, matched on the identity `key`."""

    run_a: str
    run_b: str
    newly_linked: list[Change] = field(default_factory=list)
    links_lost: list[Change] = field(default_factory=list)
    partner_id_changes: list[Change] = field(default_factory=list)
    new_failures: list[Change] = field(default_factory=list)
    fixed_failures: list[Change] = field(default_factory=list)
    customers_gained: list[str] = field(default_factory=list)
    customers_lost: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when nothing changed."""
        return not any(
            (
                self.newly_linked,
                self.links_lost,
                self.partner_id_changes,
                self.new_failures,
                self.fixed_failures,
                self.customers_gained,
                self.customers_lost,
            )
        )


@dataclass(frozen=True)
class Table:
    """A rendered table handed to the XLSX/HTML writers: plain Python values, one kind per column.

    Kinds: `text`, `id` (text that must not wrap), `int`, `datetime` (aware UTC), `status` and `yesno`
    (coloured).
    `csv_name` points the HTML note at the file holding every row.
    """

    name: str
    columns: tuple[str, ...]
    kinds: tuple[str, ...]
    rows: Sequence[Sequence[Any]]
    note: str = ""
    csv_name: str = ""


@dataclass(frozen=True)
class ReportView:
    """Everything the XLSX and HTML writers show, already computed."""

    summary: dict[str, Any]
    figures: list[tuple[str, str]]
    status_counts: list[tuple[str, int]]
    history: list[tuple[str, str, float]]  # run_id, started (UTC text), coverage %
    tables: list[Table]
    notes: list[str]


# -- small helpers ---------------------------------------------------------------------------------


def iso_utc(value: datetime | None) -> str | None:
    """UTC ISO-8601 with a `Z`, to the second: the one timestamp format of every report."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def csv_safe(value: str) -> str:
    """Neutralise a text cell that a spreadsheet would run as a formula (prefix `'`, per OWASP)."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def scrub(text: str | None) -> str | None:
    """Defence in depth: drop anything shaped like a token or a private key from free text."""
    if not text:
        return text
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    if "PRIVATE KEY" in text:
        text = _PEM.sub(REDACTED, text)
    return text


def _secret_like(column: str) -> bool:
    """An inventory extra column whose name says it holds a secret (values are redacted)."""
    return bool(_SECRET_NAME.search(column)) and not _SAFE_SECRET_NAME.search(column)


def fix_for(status: Status | str, error_code: str | None = None, command: str | None = None) -> str:
    """The fix in words for one outcome, or "" when nothing needs doing."""
    status = Status(status)
    if command == Command.UNLINK and status in (Status.UNLINKED, Status.NOT_LINKED):
        return ""
    if status not in FIX_BY_STATUS:
        return ""
    if error_code:
        code = error_code.strip()
        if code.isdigit():
            code = "AADSTS" + code
        known = _FIX_BY_CODE_LOWER.get(code.lower())
        if known:
            return known
    return FIX_BY_STATUS[status]


def is_covered(status: Status | str, target_partner_id: str, linked_partner_id: str | None) -> bool:
    """Linked to its *target* partner ID after the run (a contradicting linked ID is not covered)."""
    if Status(status) not in COVERED_STATUSES:
        return False
    return linked_partner_id is None or linked_partner_id.strip().lower() == target_partner_id.strip().lower()


def _percent(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def check_report_dir(path: Path) -> None:
    """Create the report directory 0700 if new; refuse one others can write to (they could swap files)."""
    path = Path(path)
    try:
        if not path.exists():
            path.mkdir(parents=True, mode=0o700)
            os.chmod(path, 0o700)
        st = path.stat()
    except OSError as exc:
        raise ReportError(f"cannot create the report directory {path}: {exc}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise ReportError(f"the report directory {path} is not a directory; choose another --report-dir")
    mode = stat.S_IMODE(st.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ReportError(
            f"the report directory {path} is group- or world-writable (mode {mode:04o}); "
            f"run `chmod go-w {path}` or choose another --report-dir"
        )


@contextmanager
def _private_output(path: Path) -> Iterator[Path]:
    """Yield a 0600 temporary path beside `path`; on success it atomically replaces `path`."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.fchmod(fd, 0o600)
        os.close(fd)
        yield tmp
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportError(f"cannot write the report {path}: {exc}") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- loading the journal ---------------------------------------------------------------------------


@dataclass
class _CustomerAgg:
    identities: int = 0
    covered: bool = False
    recognised: bool = False
    statuses: Counter[str] = field(default_factory=Counter)
    fixes: dict[str, None] = field(default_factory=dict)


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


def _load(journal: Journal, run_id: str) -> _RunData:
    """Iterate the run's outcomes once into column lists, then build the DataFrame once."""
    run = journal.run(run_id)
    cols: dict[str, list[Any]] = {c: [] for c in (*IDENTITY_COLUMNS, *_HELPER_COLUMNS)}
    extras: dict[str, list[Any]] = {}
    customers: dict[str, _CustomerAgg] = {}
    statuses: Counter[str] = Counter()
    recognitions: Counter[str] = Counter()
    for n, o in enumerate(journal.iter_outcomes(run_id), start=1):
        status = o.status
        covered = is_covered(status, o.target_partner_id, o.linked_partner_id)
        rec = o.recognition
        fix = fix_for(status, o.error_code, run.command)
        rec_fix = FIX_BY_RECOGNITION.get(rec.recognition, "") if (covered and rec is not None) else ""
        row = (
            run_id,
            o.customer,
            o.tenant_id,
            o.client_id,
            o.credential_type,
            o.target_partner_id,
            status.value,
            o.linked_partner_id,
            o.partner_name,
            o.object_id,
            o.error_code,
            scrub(o.error_message),
            o.attempts,
            o.credential_expires_on,
            o.checked_at,
            rec.recognition.value if rec else None,
            rec.subscriptions if rec else None,
            _qualifying_roles(o),
            covered,
            fix,
            rec_fix,
            o.key,
        )
        for column, value in zip(cols.values(), row, strict=True):
            column.append(value)
        for name, value in o.extra:
            values = extras.get(name)
            if values is None:
                values = extras[name] = [None] * (n - 1)
            values.append(REDACTED if (_secret_like(name) and value) else value)
        for values in extras.values():
            if len(values) < n:
                values.append(None)

        statuses[status.value] += 1
        if rec is not None:
            recognitions[rec.recognition.value] += 1
        agg = customers.get(o.customer)
        if agg is None:
            agg = customers[o.customer] = _CustomerAgg()
        agg.identities += 1
        agg.statuses[status.value] += 1
        if covered:
            agg.covered = True
            if rec is not None and rec.recognition is Recognition.ELIGIBLE:
                agg.recognised = True
        for text in (fix, rec_fix):
            if text:
                agg.fixes[text] = None

    extra_names: list[str] = []
    taken = set(cols)
    for name in extras:
        unique = name
        while unique in taken:  # an inventory column named like one of ours keeps its data under a new name
            unique = f"extra_{unique}"
        taken.add(unique)
        extra_names.append(unique)
        cols[unique] = extras[name]
    frame = pd.DataFrame(cols, dtype=object)
    status_counts = {s.value: statuses[s.value] for s in Status if statuses[s.value]}
    recognition_counts = {r.value: recognitions[r.value] for r in Recognition}
    return _RunData(run, frame, extra_names, customers, status_counts, recognition_counts)


def _summary_of(data: _RunData) -> dict[str, Any]:
    run = data.run
    total = len(data.customers)
    covered = sum(1 for a in data.customers.values() if a.covered)
    recognised = sum(1 for a in data.customers.values() if a.recognised)
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
        "coverage_percent": _percent(covered, total),
        "exit_code": run.exit_code,
        "recognition": {
            "recognised": recognised,
            "recognition_percent": _percent(recognised, total),
            **data.recognition_counts,
        },
    }


def summary(journal: Journal, run_id: str) -> dict[str, Any]:
    """The content of summary.json for one run."""
    return _summary_of(_load(journal, run_id))


# -- comparison ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    customer: str
    tenant_id: str
    client_id: str
    status: Status
    target: str
    linked: str | None
    error_code: str | None

    @property
    def covered(self) -> bool:
        return is_covered(self.status, self.target, self.linked)


def _states(journal: Journal, run_id: str) -> dict[str, _State]:
    journal.run(run_id)  # a clear JournalError for an unknown run
    return {
        o.key: _State(
            o.customer, o.tenant_id, o.client_id, o.status, o.target_partner_id, o.linked_partner_id, o.error_code
        )
        for o in journal.iter_outcomes(run_id)
    }


def _customer_coverage(states: dict[str, _State]) -> dict[str, bool]:
    result: dict[str, bool] = {}
    for s in states.values():
        result[s.customer] = result.get(s.customer, False) or s.covered
    return result


def compare_runs(journal: Journal, run_a: str, run_b: str) -> Comparison:
    """What changed from run A (before) to run B (after): the status of the same `key` in both."""
    before, after = _states(journal, run_a), _states(journal, run_b)
    newly_linked: list[Change] = []
    links_lost: list[Change] = []
    partner_changes: list[Change] = []
    new_failures: list[Change] = []
    fixed_failures: list[Change] = []
    for key, b in after.items():
        a = before.get(key)
        change = Change(
            key,
            b.customer,
            b.tenant_id,
            b.client_id,
            a.status.value if a else None,
            b.status.value,
            a.linked if a else None,
            b.linked,
            b.error_code,
        )
        if b.covered and not (a and a.covered):
            newly_linked.append(change)
        if a and a.covered and b.status in NOT_LINKED_STATUSES:
            links_lost.append(change)
        if a and a.linked and b.linked and a.linked.strip().lower() != b.linked.strip().lower():
            partner_changes.append(change)
        if b.status in FAILURE_STATUSES and not (a and a.status in FAILURE_STATUSES):
            new_failures.append(change)
        if a and a.status in FAILURE_STATUSES and b.status not in FAILURE_STATUSES:
            fixed_failures.append(change)
    cov_a, cov_b = _customer_coverage(before), _customer_coverage(after)
    gained = [c for c, ok in cov_b.items() if ok and not cov_a.get(c, False)]
    lost = [c for c, ok in cov_b.items() if not ok and cov_a.get(c, False)]
    return Comparison(
        run_a, run_b, newly_linked, links_lost, partner_changes, new_failures, fixed_failures, gained, lost
    )


def default_comparison(journal: Journal, inventory_path: str | None = None) -> tuple[str, str]:
    """The last two runs of one inventory (default: the inventory of the latest run), oldest first."""
    if inventory_path is None:
        every = journal.runs()
        if not every:
            raise JournalError(f"the journal {journal.path} holds no runs to compare")
        inventory_path = every[-1].inventory_path
    runs = journal.runs(inventory_path=inventory_path)
    if len(runs) < 2:
        raise JournalError(
            f"the journal {journal.path} holds {len(runs)} run(s) of {inventory_path}; "
            "comparing needs two — name the runs explicitly (`pal-orchestrator runs` lists them)"
        )
    return runs[-2].run_id, runs[-1].run_id


_COMPARISON_SECTIONS = (
    ("newly_linked", "Newly linked"),
    ("links_lost", "Links lost"),
    ("partner_id_changes", "Partner ID changes"),
    ("new_failures", "New failures"),
    ("fixed_failures", "Fixed failures"),
)


def _change_rows(c: Comparison) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = []
    for attr, label in _COMPARISON_SECTIONS:
        for ch in getattr(c, attr):
            rows.append(
                (
                    label,
                    ch.customer,
                    ch.tenant_id,
                    ch.client_id,
                    ch.before_status,
                    ch.after_status,
                    ch.before_partner_id,
                    ch.after_partner_id,
                    ch.error_code,
                )
            )
    for customer in c.customers_gained:
        rows.append(("Customer gained coverage", customer, None, None, None, None, None, None, None))
    for customer in c.customers_lost:
        rows.append(("Customer lost coverage", customer, None, None, None, None, None, None, None))
    return rows


def render_comparison(c: Comparison) -> str:
    """Plain text for the terminal: one block per kind of change."""
    lines = [f"Changes from run {c.run_a} to run {c.run_b}"]
    if c.empty:
        lines.append("No changes.")
        return "\n".join(lines) + "\n"
    for attr, label in _COMPARISON_SECTIONS:
        changes: list[Change] = getattr(c, attr)
        lines.append("")
        lines.append(f"{label} ({len(changes)})")
        for ch in changes:
            before = ch.before_status or "absent"
            if attr == "partner_id_changes":
                detail = f"{ch.before_partner_id} → {ch.after_partner_id}"
            else:
                detail = f"{before} → {ch.after_status}"
                if ch.error_code and attr == "new_failures":
                    detail += f" ({ch.error_code})"
            lines.append(f"  {ch.customer}  tenant {ch.tenant_id}  client {ch.client_id}: {detail}")
    for label, customers in (
        ("Customers that gained coverage", c.customers_gained),
        ("Customers that lost coverage", c.customers_lost),
    ):
        lines.append("")
        lines.append(f"{label} ({len(customers)})")
        lines.extend(f"  {name}" for name in customers)
    return "\n".join(lines) + "\n"


def runs_table(journal: Journal) -> list[dict[str, Any]]:
    """Every run, oldest first, with its counts and customer coverage (for `pal-orchestrator runs`)."""
    result: list[dict[str, Any]] = []
    for run in journal.runs():
        states = _states(journal, run.run_id)
        coverage = _customer_coverage(states)
        covered = sum(coverage.values())
        counts = Counter(s.status for s in states.values())
        result.append(
            {
                "run_id": run.run_id,
                "started_at": iso_utc(run.started_at),
                "finished_at": iso_utc(run.finished_at),
                "command": run.command,
                "inventory": run.inventory_path,
                "identities": len(states),
                "linked": sum(1 for s in states.values() if s.covered),
                "failed": sum(n for s, n in counts.items() if s in FAILURE_STATUSES and s is not Status.SKIPPED),
                "skipped": counts.get(Status.SKIPPED, 0),
                "customers": len(coverage),
                "covered": covered,
                "coverage_percent": _percent(covered, len(coverage)),
                "exit_code": run.exit_code,
            }
        )
    return result


# -- tables ----------------------------------------------------------------------------------------


def _rows(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    """Plain Python rows (None for missing) of some columns."""
    if frame.empty:
        return []
    # The frame is built with dtype=object from Python values, so cells are already plain (None, not NaN).
    return list(frame.loc[:, list(columns)].itertuples(index=False, name=None))


def _plain(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


_ID_COLUMNS = frozenset(
    {"run_id", "tenant_id", "client_id", "object_id", "target_partner_id", "linked_partner_id"}
    | {"before_partner_id", "after_partner_id"}
)


def _kind(column: str) -> str:
    if column in DATETIME_COLUMNS:
        return "datetime"
    if column in ("attempts", "subscriptions", "identities", "days_left"):
        return "int"
    if column in ("status", "before_status", "after_status"):
        return "status"
    if column in ("covered", "recognised"):
        return "yesno"
    if column in _ID_COLUMNS:
        return "id"
    return "text"


def _table(name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], **kw: Any) -> Table:
    return Table(name, tuple(columns), tuple(_kind(c) for c in columns), rows, **kw)


def _customers_frame(data: _RunData) -> pd.DataFrame:
    order = {s.value: i for i, s in enumerate(Status)}
    records = [
        (
            name,
            agg.identities,
            "yes" if agg.covered else "no",
            "yes" if agg.recognised else "no",
            "; ".join(f"{s}: {n}" for s, n in sorted(agg.statuses.items(), key=lambda kv: order[kv[0]])),
            "; ".join(agg.fixes),
        )
        for name, agg in data.customers.items()
    ]
    return pd.DataFrame.from_records(records, columns=list(CUSTOMER_COLUMNS)).astype(object)


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
_CHANGE_COLUMNS = (
    "change",
    "customer",
    "tenant_id",
    "client_id",
    "before_status",
    "after_status",
    "before_partner_id",
    "after_partner_id",
    "error_code",
)


def _expiring(frame: pd.DataFrame, now: datetime, days: int) -> list[tuple[Any, ...]]:
    """Credentials expiring before `now + days` (already expired ones included), soonest first."""
    limit = now + timedelta(days=days)
    found: list[tuple[Any, ...]] = []
    if frame.empty:
        return found
    picked = frame.loc[frame["credential_expires_on"].notna(), [c for c in _EXPIRY_COLUMNS if c in frame]]
    for row in picked.itertuples(index=False):
        expires = row.credential_expires_on
        assert isinstance(expires, datetime)
        if expires > limit:
            continue
        left = int((expires - now).total_seconds() / 86_400)  # whole days, towards zero: -5 = expired 5 days ago
        fix = "expired — rotate it now" if left < 0 else "rotate it before it expires"
        found.append(
            (row.customer, row.tenant_id, row.client_id, _plain(row.credential_type), expires, left, row.status, fix)
        )
    found.sort(key=lambda r: r[4])
    return found


def _previous_run(journal: Journal, run: RunRecord) -> tuple[RunRecord | None, list[RunRecord]]:
    """The run of the same inventory just before `run`, and the history up to `run` (capped)."""
    same = journal.runs(inventory_path=run.inventory_path)
    upto = [r for r in same if (r.started_at, r.run_id) <= (run.started_at, run.run_id)]
    previous = upto[-2] if len(upto) >= 2 else None
    return previous, upto[-HISTORY_RUNS:]


def _history(journal: Journal, runs: list[RunRecord], current: _RunData) -> list[tuple[str, str, float]]:
    points: list[tuple[str, str, float]] = []
    for r in runs:
        if r.run_id == current.run.run_id:
            covered = sum(1 for a in current.customers.values() if a.covered)
            pct = _percent(covered, len(current.customers))
        else:
            coverage = _customer_coverage(_states(journal, r.run_id))
            pct = _percent(sum(coverage.values()), len(coverage))
        points.append((r.run_id, iso_utc(r.started_at) or "", pct))
    return points


def _figures(s: dict[str, Any]) -> list[tuple[str, str]]:
    inv = s["inventory"]
    rec = s["recognition"]
    return [
        ("Run ID", s["run_id"]),
        ("Command", s["command"]),
        ("Tool version", s["tool_version"]),
        ("Inventory", inv["path"]),
        ("Inventory SHA-256", inv["sha256"]),
        ("Inventory rows", str(inv["rows"])),
        ("Skipped rows", str(inv["skipped"])),
        ("Partner IDs", ", ".join(s["partner_ids"])),
        ("Started (UTC)", s["started_at"] or ""),
        ("Finished (UTC)", s["finished_at"] or "not finished"),
        ("Exit code", "" if s["exit_code"] is None else str(s["exit_code"])),
        ("Customers", str(s["customers"]["total"])),
        ("Customers covered", str(s["customers"]["covered"])),
        ("Coverage %", f"{s['coverage_percent']:.1f}"),
        ("Customers recognised", str(rec["recognised"])),
        ("Recognition %", f"{rec['recognition_percent']:.1f}"),
    ]


def _write_csv(frame: pd.DataFrame, columns: Sequence[str], path: Path) -> None:
    """CSV with formula triggers neutralised in every text cell and header; UTF-8, CRLF (RFC 4180).

    CRLF also makes the writer quote a cell holding a bare CR, which `\\n` line ends would leave bare.
    """
    out = pd.DataFrame(
        {
            csv_safe(name): [_csv_cell(v) for v in frame[name].tolist()] if not frame.empty else []
            for name in columns
        },
        dtype=object,
    )
    with _private_output(path) as tmp:
        out.to_csv(tmp, index=False, lineterminator="\r\n", encoding="utf-8")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return csv_safe(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def build_view(
    journal: Journal, run_id: str, *, expiry_warning_days: int = 120, now: datetime | None = None
) -> tuple[ReportView, _RunData, pd.DataFrame]:
    """Compute every table and figure of one run's report (no files written)."""
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware (UTC)")
    data = _load(journal, run_id)
    s = _summary_of(data)
    frame = data.frame
    ident_cols = [*IDENTITY_COLUMNS, *data.extra_columns]

    customers = _customers_frame(data)
    if frame.empty:
        actions: list[tuple[Any, ...]] = []
        unrecognised: list[tuple[Any, ...]] = []
    else:
        act = frame.loc[frame["_fix"] != ""].rename(columns={"_fix": "fix"})
        actions = _rows(act, _ACTION_COLUMNS)
        unrec = frame.loc[frame["_recognition_fix"] != ""].rename(columns={"_recognition_fix": "fix"})
        unrecognised = _rows(unrec, _RECOGNITION_COLUMNS)

    previous, history_runs = _previous_run(journal, data.run)
    notes: list[str] = []
    if previous is None:
        change_rows: list[tuple[Any, ...]] = []
        change_note = "No earlier run of this inventory is in the journal, so there is nothing to compare."
    else:
        change_rows = _change_rows(compare_runs(journal, previous.run_id, run_id))
        change_note = f"Changes from run {previous.run_id} ({iso_utc(previous.started_at)}) to this run."
    if data.run.finished_at is None:
        notes.append("This run has not finished (still running, or interrupted): figures cover what it recorded.")

    tables = [
        _table("Customers", CUSTOMER_COLUMNS, _rows(customers, CUSTOMER_COLUMNS), csv_name="customers.csv"),
        _table("Identities", ident_cols, _rows(frame, ident_cols), csv_name="identities.csv"),
        _table(
            "Action needed",
            _ACTION_COLUMNS,
            actions,
            note="Every identity that needs a person to act, with the fix in words.",
        ),
        _table(
            "Expiring credentials",
            _EXPIRY_COLUMNS,
            _expiring(frame, now, expiry_warning_days),
            note=f"Credentials that expire within {expiry_warning_days} days of {iso_utc(now)} "
            "(before the next quarterly run), expired ones included.",
        ),
        _table("Changes since previous run", _CHANGE_COLUMNS, change_rows, note=change_note),
        _table(
            "Linked but not recognised",
            _RECOGNITION_COLUMNS,
            unrecognised,
            note="Linked to the target partner ID, but without a permanent PEC-eligible role, "
            "so no partner earned credit is recognised.",
        ),
    ]
    view = ReportView(
        summary=s,
        figures=_figures(s),
        status_counts=list(data.status_counts.items()),
        history=_history(journal, history_runs, data) if len(history_runs) >= 2 else [],
        tables=tables,
        notes=notes,
    )
    return view, data, customers


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
    view, data, customers = build_view(journal, run_id, expiry_warning_days=expiry_warning_days, now=now)
    _write_csv(data.frame, [*IDENTITY_COLUMNS, *data.extra_columns], paths.identities_csv)
    _write_csv(customers, CUSTOMER_COLUMNS, paths.customers_csv)
    del data, customers  # the frames are no longer needed: the writers use the view's rows
    with _private_output(paths.summary_json) as tmp:
        tmp.write_text(json.dumps(view.summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    with _private_output(paths.xlsx) as tmp:
        report_xlsx.write_xlsx(view, tmp, tmpdir=directory)
    with _private_output(paths.html) as tmp:
        tmp.write_text(report_html.render_html(view), encoding="utf-8")
    return paths


def synthetic_run(journal: Journal, n: int, *, customers: int | None = None, seed: int = 7) -> str:
    """Record a finished run of `n` varied identities (for the benchmark and scale checks)."""
    rng = random.Random(seed)
    customers = customers or max(1, n // 3)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    statuses = [Status.LINKED] * 6 + [Status.ALREADY_LINKED] * 6 + [
        Status.CREDENTIAL_EXPIRED,
        Status.SIGN_IN_FAILED,
        Status.LINKED_ELSEWHERE,
        Status.SKIPPED,
    ]
    run_id = journal.start_run(
        command=Command.LINK.value,
        inventory_path="synthetic.csv",
        inventory_sha256="0" * 64,
        inventory_rows=n,
        skipped=0,
        partner_ids=["1234567"],
        options={"expiry_warning_days": 120},
        tool_version="bench",
        operator="bench",
        started_at=start,
    )
    for i in range(n):
        status = rng.choice(statuses)
        covered = status in COVERED_STATUSES
        journal.record_outcome(
            run_id,
            Outcome(
                key=f"{i:08x}-0000-4000-8000-000000000000|{i:08x}-1111-4000-8000-000000000000",
                customer=f"Customer {rng.randrange(customers):06d}",
                tenant_id=f"{i:08x}-0000-4000-8000-000000000000",
                client_id=f"{i:08x}-1111-4000-8000-000000000000",
                target_partner_id="1234567",
                status=status,
                credential_type="secret",
                linked_partner_id="1234567" if covered else None,
                partner_name="Contoso Partner" if covered else None,
                error_code="AADSTS7000215" if status is Status.SIGN_IN_FAILED else None,
                error_message="AADSTS7000215: Invalid client secret provided."
                if status is Status.SIGN_IN_FAILED
                else None,
                attempts=1,
                credential_expires_on=start + timedelta(days=rng.randrange(-30, 400)),
                checked_at=start + timedelta(seconds=i),
                recognition=RecognitionResult(Recognition.ELIGIBLE if i % 5 else Recognition.NO_ROLES, 2)
                if covered
                else None,
                extra=(("region", "emea"), ("owner", f"owner{i % 97}@example.com")),
            ),
        )
    journal.finish_run(run_id, 1, finished_at=start + timedelta(hours=1))
    return run_id


def bench_render(n: int, workdir: str | Path) -> dict[str, float]:
    """Time rendering every format of an `n`-identity run; returns seconds and peak RSS (MiB).

    Called by the project benchmark (`orchestrator.bench`): reports must render 100,000 identities in
    under 30 s and 1 GiB. The journal is built first and not timed.
    """
    work = Path(workdir)
    check_report_dir(work)
    with Journal(work / "bench-journal.sqlite") as journal:
        run_id = synthetic_run(journal, n)
        started = time.perf_counter()
        write_reports(journal, run_id, work / "reports", now=datetime(2025, 1, 2, tzinfo=UTC))
        elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"identities": float(n), "render_s": round(elapsed, 2), "peak_rss_mib": round(peak_mib, 1)}
