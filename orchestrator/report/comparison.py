"""Run against run: what changed between two runs of an inventory, and the list of runs with their coverage.

Reads the journal directly (one light `_State` per identity, no pandas), so `pal-orchestrator report --compare`
and `runs` stay fast; `changes` and the view reuse its per-identity states and coverage figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import JournalError
from ..journal import Journal, RunRecord
from ..lighthouse import CustomerVerdict, roll_up
from ..models import Recognition, Status
from .lighthouse import LIGHTHOUSE_COMMAND, latest_run
from .rules import FAILURE_STATUSES, NOT_LINKED_STATUSES, is_covered, iso_utc, linked_after, percent


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
    # Lighthouse customers (tenant_id, customer, before/after_status = verdicts) between the partner's last two
    # lighthouse runs (`lighthouse_changes`); appended, so the fields above keep their order.
    lighthouse_lost: list[Change] = field(default_factory=list)
    lighthouse_gained: list[Change] = field(default_factory=list)
    lighthouse_run_a: str | None = None
    lighthouse_run_b: str | None = None

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
                self.lighthouse_lost,
                self.lighthouse_gained,
            )
        )


@dataclass(frozen=True, slots=True)
class _State:
    customer: str
    tenant_id: str
    client_id: str
    status: Status
    target: str
    linked: str | None
    error_code: str | None
    eligible: bool = False  # the recognition check found a permanent PEC-eligible role

    @property
    def covered(self) -> bool:
        return is_covered(self.status, self.target, self.linked)


def iter_states(journal: Journal, run_id: str) -> Iterator[tuple[str, _State]]:
    """(key, light state) of each identity of one run, as the journal reads them (a JournalError for an unknown
    run): a caller that needs only some of them does not hold all of a 100k-identity run."""
    journal.run(run_id)
    for o in journal.iter_outcomes(run_id):
        yield o.key, _State(
            o.customer,
            o.tenant_id,
            o.client_id,
            o.status,
            o.target_partner_id,
            linked_after(o.status, o.linked_partner_id),
            o.error_code,
            o.recognition is not None and o.recognition.recognition is Recognition.ELIGIBLE,
        )


def _states(journal: Journal, run_id: str) -> dict[str, _State]:
    return dict(iter_states(journal, run_id))


def _customer_coverage(states: dict[str, _State]) -> dict[str, bool]:
    result: dict[str, bool] = {}
    for s in states.values():
        result[s.customer] = result.get(s.customer, False) or s.covered
    return result


def coverage_percent(journal: Journal, run_id: str) -> float:
    """Customer coverage % of one run (for the coverage-per-run history), one identity's state at a time."""
    coverage: dict[str, bool] = {}
    for _, s in iter_states(journal, run_id):  # keys are unique within a run: each identity counts once
        coverage[s.customer] = coverage.get(s.customer, False) or s.covered
    return percent(sum(coverage.values()), len(coverage))


def headline(found: dict[str, _State]) -> dict[str, Any]:
    """Customers, covered, recognised and their percentages, from one run's states (a baseline's figures)."""
    covered: dict[str, bool] = {}
    recognised: dict[str, bool] = {}
    for s in found.values():
        covered[s.customer] = covered.get(s.customer, False) or s.covered
        recognised[s.customer] = recognised.get(s.customer, False) or (s.covered and s.eligible)
    total, n_cov, n_rec = len(covered), sum(covered.values()), sum(recognised.values())
    return {"customers": total, "covered": n_cov, "coverage_percent": percent(n_cov, total),
            "recognised": n_rec, "recognition_percent": percent(n_rec, total)}


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
        run_a, run_b, newly_linked, links_lost, partner_changes, new_failures, fixed_failures, gained, lost,
        *lighthouse_changes(journal, run_a, run_b),
    )


def _lighthouse_runs(journal: Journal, run_a: str, run_b: str) -> tuple[RunRecord, RunRecord] | None:
    """The two lighthouse runs to compare: A and B themselves when both are lighthouse runs; else the latest
    finished one for B's partner IDs (the one B's coverage report shows) and the one before it for that partner."""
    a, b = journal.run(run_a), journal.run(run_b)
    if a.command == b.command == LIGHTHOUSE_COMMAND:
        return a, b
    after = b if b.command == LIGHTHOUSE_COMMAND else latest_run(journal, b.partner_ids)
    if after is None:
        return None
    wanted = {p.strip().lower() for p in after.partner_ids}
    earlier = [r for r in journal.runs() if r.command == LIGHTHOUSE_COMMAND and r.finished
               and wanted & {p.strip().lower() for p in r.partner_ids}]
    ids = [r.run_id for r in earlier]
    at = ids.index(after.run_id) if after.run_id in ids else len(ids)
    return (earlier[at - 1], after) if at > 0 else None


def _lighthouse_change(tenant: str, before: CustomerVerdict | None, after: CustomerVerdict | None) -> Change:
    name = (after.customer_name if after else "") or (before.customer_name if before else "")
    return Change(tenant, name, tenant, "", before.verdict.value if before else None,
                  after.verdict.value if after else None, None, None)


def lighthouse_changes(journal: Journal, run_a: str, run_b: str) -> tuple[list[Change], list[Change], str | None,
                                                                            str | None]:
    """(lost, gained, lighthouse run A, lighthouse run B): Lighthouse customers recognised (or Marketplace) in
    one lighthouse run and not in the next (a customer no longer delegating has lost it), and the reverse."""
    pair = _lighthouse_runs(journal, run_a, run_b)
    if pair is None:
        return [], [], None, None
    before, after = ({c.customer_tenant_id: c for c in roll_up(journal.lighthouse_rows(r.run_id))} for r in pair)
    lost: list[Change] = []
    gained: list[Change] = []
    for tenant in sorted(before.keys() | after.keys()):
        was, now = before.get(tenant), after.get(tenant)
        was_ok, now_ok = bool(was and was.recognised), bool(now and now.recognised)
        if was_ok != now_ok:
            (gained if now_ok else lost).append(_lighthouse_change(tenant, was, now))
    return lost, gained, pair[0].run_id, pair[1].run_id


def default_comparison(journal: Journal, inventory_path: str | None = None) -> tuple[str, str]:
    """The latest run and its baseline (`Journal.baseline`: by identity, whatever the inventory is called), or
    the last two runs of one inventory path when `inventory_path` is given or the latest run has no baseline."""
    if inventory_path is None:
        every = [r for r in journal.runs() if r.command != "lighthouse"]  # lighthouse runs record no identities
        if not every:
            raise JournalError(f"the journal {journal.path} holds no runs to compare")
        baseline = journal.baseline(every[-1].run_id)
        if baseline is not None:
            return baseline.run_id, every[-1].run_id
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

#: Columns of `change_rows` (the "Changes since previous run" table).
CHANGE_COLUMNS = (
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


def change_rows(c: Comparison) -> list[tuple[Any, ...]]:
    """The comparison as table rows (`CHANGE_COLUMNS`): identity changes, then customer-level ones."""
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
    for label, changes in (("lost", c.lighthouse_lost), ("gained", c.lighthouse_gained)):
        if c.lighthouse_run_a:
            lines.append("")
            lines.append(f"Lighthouse customers that {label} recognition ({len(changes)}) — lighthouse run "
                         f"{c.lighthouse_run_a} → {c.lighthouse_run_b}")
            lines.extend(f"  {ch.customer}  tenant {ch.tenant_id}: {ch.before_status or 'absent'} → "
                         f"{ch.after_status or 'absent'}" for ch in changes)
    return "\n".join(lines) + "\n"


def runs_table(journal: Journal) -> list[dict[str, Any]]:
    """Every run, oldest first, with its counts, customer coverage and baseline (for `pal-orchestrator runs`)."""
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
                "coverage_percent": percent(covered, len(coverage)),
                "exit_code": run.exit_code,
                "baseline": baseline.run_id if (baseline := journal.baseline(run.run_id)) else None,
            }
        )
    return result
