"""One run of the journal → its identity columns, read once: what every table of the report is made from.

Each column is held once and small (see `rows`): a list where values differ on every row, a `Coded` column where
they repeat. The customer column is coded in first-seen order, so its codes are the customer of each row and
`customers` groups rows by them without a per-customer object. Nothing here knows about the outputs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..journal import Journal, RunRecord
from ..models import Outcome, Recognition, Status
from .rows import FLUSH_ROWS, Coded, Column
from .rules import (
    FIX_BY_RECOGNITION,
    REDACTED,
    entra_ids,
    fix_for,
    is_covered,
    linked_after,
    scrub,
    secret_like,
    vault_and_secret,
)

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

#: Columns after the identity ones, for the view only: covered?, the fix, the recognition fix, and the row's key
#: where its tenant and client ID do not name the identity (None elsewhere: the key is not kept twice).
HELPER_COLUMNS = ("_covered", "_fix", "_recognition_fix", "_key")

#: Columns whose values differ on (almost) every row (the tenant, client and object IDs among them): plain lists.
#: Every other column is `Coded`.
_UNIQUE_COLUMNS = frozenset({"tenant_id", "client_id", "object_id", "credential_expires_on", "checked_at", "line",
                             "secret_name", "trace_id", "correlation_id", "_key"})

#: What the expiry column says for identities that sign in without a stored secret (nothing to rotate).
NO_SECRET = "no secret"  # noqa: S105 - a label, not a password
SECRETLESS_TYPES = frozenset({"managed_identity", "federated", "managed_identity_federation"})


@dataclass
class RunData:
    """One run loaded once: its columns (identity, helper and extra ones, each `rows` long) and its counts."""

    run: RunRecord
    columns: dict[str, Column]
    rows: int
    extra_columns: list[str]
    status_counts: dict[str, int]
    recognition_counts: dict[str, int]


def _qualifying_roles(outcome: Outcome) -> str | None:
    rec = outcome.recognition
    if rec is None:
        return None
    names = dict.fromkeys(g.role_name for g in rec.grants if g.eligibility == "yes")
    return "; ".join(names)


class _Shared(dict[str, str]):
    """One copy of each repeated text made per row (a vault URL parsed out of every secret URI)."""

    def same(self, value: str | None) -> str | None:
        return value if value is None else self.setdefault(value, value)


def _trace_of(o: Outcome, shared: _Shared) -> tuple[str | None, str | None, str | None, str | None]:
    """(key_vault, secret_name, trace_id, correlation_id) of one outcome; journals written before these were
    recorded still give the Entra IDs their stored message quotes."""
    vault, secret_name = vault_and_secret(o.secret_uri)
    trace, correlation = o.trace_id, o.correlation_id
    if not (trace and correlation):
        parsed = entra_ids(o.error_message)
        trace, correlation = trace or parsed[0], correlation or parsed[1]
    return shared.same(vault), secret_name, trace, correlation


def identity_of(tenant_id: str, client_id: str, key: str | None) -> str:
    """The identity a row stands for: tenant + client ID (as the inventory matches duplicates), else its key."""
    if tenant_id.strip() and client_id.strip():
        return f"{tenant_id.strip().lower()}|{client_id.strip().lower()}"
    return key or ""


def _row_of(o: Outcome, run: RunRecord, shared: _Shared) -> tuple[Any, ...]:
    """One outcome as the values of `IDENTITY_COLUMNS` followed by `HELPER_COLUMNS`."""
    covered = is_covered(o.status, o.target_partner_id, o.linked_partner_id)
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
        linked_after(o.status, o.linked_partner_id),
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
        *_trace_of(o, shared),
        covered,
        fix_for(o.status, o.error_code, run.command),
        rec_fix,
        None if (o.tenant_id.strip() and o.client_id.strip()) else o.key,
    )


def _add_extras(extras: dict[str, Coded], o: Outcome, n: int) -> None:
    """Append row `n`'s inventory extras (secret-named ones redacted); columns first seen later are padded."""
    for name, value in o.extra:
        values = extras.get(name)
        if values is None:
            values = extras[name] = Coded(n - 1)
        values.append(REDACTED if (value and secret_like(name)) else value)
    for values in extras.values():
        if len(values) < n:
            values.append(None)


def _extra_names(extras: Iterable[str], taken: set[str]) -> list[str]:
    """Column names for the extras: one named like one of ours keeps its data under `extra_<name>`."""
    names: list[str] = []
    for name in extras:
        unique = name
        while unique in taken:
            unique = f"extra_{unique}"
        taken.add(unique)
        names.append(unique)
    return names


def _column(name: str) -> Column:
    return [] if name in _UNIQUE_COLUMNS else Coded()


def _tally(column: Column) -> dict[Any, int]:
    """value → how many rows hold it, of a coded column (counted on its codes)."""
    assert isinstance(column, Coded)
    return dict(zip(column.values, column.counts().tolist(), strict=True))


def load_run(journal: Journal, run: RunRecord, reserved: frozenset[str]) -> RunData:
    """Iterate the run's outcomes once into its columns; extra columns named like one of ours or `reserved` are
    renamed (`_extra_names`)."""
    names = (*IDENTITY_COLUMNS, *HELPER_COLUMNS)
    cols: dict[str, Column] = {c: _column(c) for c in names}
    extras: dict[str, Coded] = {}
    appends = [column.append for column in cols.values()]
    shared = _Shared()
    n = 0
    for n, o in enumerate(journal.iter_outcomes(run.run_id), start=1):
        for append, value in zip(appends, _row_of(o, run, shared), strict=True):
            append(value)
        _add_extras(extras, o, n)
        if not n % FLUSH_ROWS:
            for column in (*cols.values(), *extras.values()):
                if isinstance(column, Coded):
                    column.flush()
    extra_names = _extra_names(extras, set(cols) | reserved)
    cols.update(zip(extra_names, extras.values(), strict=True))
    for column in cols.values():
        if isinstance(column, Coded):
            column.close()
    statuses, recognitions = _tally(cols["status"]), _tally(cols["recognition"])
    return RunData(
        run, cols, n, extra_names,
        status_counts={s.value: statuses[s.value] for s in Status if statuses.get(s.value)},
        recognition_counts={r.value: recognitions.get(r.value, 0) for r in Recognition},
    )
