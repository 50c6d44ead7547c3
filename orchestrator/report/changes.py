"""What changed since the baseline, per identity: the quarter-to-quarter view of a run.

The baseline is the latest finished `link` or `audit` run that covered any of the same identities (tenant +
client ID), whatever the inventory file was called (`Journal.baseline`), or the run the caller names. Each
identity present in either run gets at most one change, the most telling one (see `CHANGE_KINDS`); an identity
whose state is the same in both runs is not listed. Reads the journal directly (no pandas), like `comparison`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import JournalError
from ..journal import Journal, RunRecord
from .comparison import _State, headline, iter_states
from .rules import FAILURE_STATUSES, NOT_LINKED_STATUSES, iso_utc

#: The kinds of change, in the order they are listed (and in which one is chosen when several apply).
CHANGE_KINDS: tuple[str, ...] = (
    "lost",  # linked to the target before; now known not to be (not linked, linked elsewhere, unlinked)
    "newly_failing",  # failing now, was not (the link's state is unknown)
    "newly_linked",  # linked to the target now, was not (or its state was unknown)
    "changed_partner",  # linked to a different partner ID than before (neither of them the target)
    "recovered",  # failed before, does not now
    "added",  # not in the baseline: new in the inventory
    "removed",  # in the baseline, not in this run: taken out of the inventory
)

#: Words for each kind (the HTML, the management page, the Markdown summary).
CHANGE_LABELS: dict[str, str] = {
    "lost": "Link lost",
    "newly_failing": "Newly failing",
    "newly_linked": "Newly linked",
    "changed_partner": "Partner ID changed",
    "recovered": "Recovered",
    "added": "Added to the inventory",
    "removed": "Removed from the inventory",
}

#: changes.csv columns (and the "Changes" sheet's). Never reorder: append.
CHANGES_COLUMNS: tuple[str, ...] = (
    "customer",
    "tenant_id",
    "client_id",
    "before",
    "after",
    "change",
    "before_partner_id",
    "after_partner_id",
    "error_code",
)


@dataclass(frozen=True)
class Changes:
    """The run's changes since its baseline (`baseline` None: there is nothing to compare with)."""

    baseline: RunRecord | None
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # CHANGES_COLUMNS values
    removed_known: bool = True  # False for an unfinished run: identities it did not reach are not "removed"
    before: dict[str, Any] = field(default_factory=dict)  # the baseline's headline figures (`comparison.headline`)

    def counts(self) -> dict[str, int]:
        """Identities per kind of change, every kind present (0 when none)."""
        found = dict.fromkeys(CHANGE_KINDS, 0)
        for row in self.rows:
            found[row[5]] += 1
        return found

    def summary(self) -> dict[str, Any]:
        """The `baseline` entry of summary.json."""
        if self.baseline is None:
            return {}
        b = self.baseline
        return {"run_id": b.run_id, "command": b.command, "started_at": iso_utc(b.started_at),
                "finished_at": iso_utc(b.finished_at), "inventory": b.inventory_path, **self.before}


def kind_of(a: _State | None, b: _State | None) -> str | None:
    """The one change from state `a` (baseline) to `b` (this run), or None when nothing that matters changed."""
    if a is None:
        return "added" if b is not None else None
    if b is None:
        return "removed"
    if a.covered and not b.covered and b.status in NOT_LINKED_STATUSES:
        return "lost"
    if b.status in FAILURE_STATUSES and a.status not in FAILURE_STATUSES:
        return "newly_failing"
    if b.covered and not a.covered:
        return "newly_linked"
    if a.linked and b.linked and a.linked.strip().lower() != b.linked.strip().lower():
        return "changed_partner"
    if a.status in FAILURE_STATUSES and b.status not in FAILURE_STATUSES:
        return "recovered"
    return None


def _row(kind: str, a: _State | None, b: _State | None) -> tuple[Any, ...]:
    who = b or a
    assert who is not None
    return (
        who.customer,
        who.tenant_id,
        who.client_id,
        a.status.value if a else None,
        b.status.value if b else None,
        kind,
        a.linked if a else None,
        b.linked if b else None,
        (b.error_code if b else None) or None,
    )


def pick_baseline(journal: Journal, run: RunRecord, baseline_id: str | None = None) -> RunRecord | None:
    """The named baseline run (`Journal.baseline_run`: a finished `link` or `audit` run), else the journal's."""
    if baseline_id is None:
        return journal.baseline(run.run_id)
    if baseline_id == run.run_id:
        raise JournalError(f"run {baseline_id} cannot be its own baseline; `pal-orchestrator runs` lists the others")
    return journal.baseline_run(baseline_id)


def _identity(key: str, s: _State) -> str:
    """Tenant + client ID, so a row skipped as invalid still meets its identity of the baseline (else the key)."""
    if s.tenant_id.strip() and s.client_id.strip():
        ident = f"{s.tenant_id.strip().lower()}|{s.client_id.strip().lower()}"
        return key if ident == key else ident  # usually the key itself: kept, not a copy
    return key


def _by_identity(found: Iterable[tuple[str, _State]]) -> dict[str, _State]:
    """Identity → its state; a second row of one identity is not a second identity (the first one counts)."""
    result: dict[str, _State] = {}
    for key, s in found:
        result.setdefault(_identity(key, s), s)
    return result


def changes_since(journal: Journal, run: RunRecord, baseline: RunRecord | None) -> Changes:
    """Every identity's change from `baseline` to `run`, ordered by kind, then customer.

    Only the baseline's states are held: this run's are read one at a time, each taking its baseline state out,
    and what is left of the baseline was removed (a 100k-identity run's states cost ~50 MB).
    """
    if baseline is None:
        return Changes(None)
    before = _by_identity(iter_states(journal, baseline.run_id))
    figures = headline(before)
    removed_known = run.finished
    rows: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    for key, b in iter_states(journal, run.run_id):
        ident = _identity(key, b)
        if ident in seen:
            continue
        seen.add(ident)
        a = before.pop(ident, None)
        kind = kind_of(a, b)
        if kind is not None:
            rows.append(_row(kind, a, b))
    if removed_known:
        rows.extend(_row("removed", a, None) for a in before.values())
    order = {k: i for i, k in enumerate(CHANGE_KINDS)}
    rows.sort(key=lambda r: (order[r[5]], r[0].casefold()))
    return Changes(baseline, rows, removed_known, figures)
