"""The stop rule: a run whose identities all fail for one shared cause stops early (exit 3).

Some causes do not depend on the identity: a rejected partner ID, a vault the operator cannot read, an endpoint
that cannot be reached or does not serve the API, ARM refusing every token. Sending the same doomed request to
10,000 customer tenants helps nobody, so the runner asks this breaker before starting each identity:

- until the first identity gets through (any answer that shows the chain works), at most `probation` identities
  are in flight: a wrong partner ID touches a few dozen tenants at most, whatever the inventory size;
- `stop_after` consecutive outcomes with the same shared cause trip the breaker: no new identity starts, the ones
  in flight finish and are journaled, the run stays resumable;
- failures that belong to one identity (a missing secret, an app not in its tenant, throttling the retries
  absorbed) neither count nor reset the streak: 40 missing secrets followed by 360 good rows never stop a run.
"""

from __future__ import annotations

from dataclasses import dataclass

from .models import Command, Outcome, SharedCause, Status

STOP_AFTER = 10
PROBATION = 10
#: Causes that stop the run at the first occurrence (a wrong partner's name: one write is already too many).
IMMEDIATE = frozenset({"partner_name_mismatch"})
#: Below this many identities a run is never stopped: there is nothing left to spare.
SMALLEST_STOPPABLE = 3

#: Statuses that prove sign-in and the link read work: they reset the streak and end the probation.
_THROUGH = frozenset({
    Status.LINKED, Status.ALREADY_LINKED, Status.RELINKED, Status.LINKED_ELSEWHERE, Status.WOULD_LINK,
    Status.WOULD_RELINK, Status.NOT_LINKED, Status.UNLINKED,
})


@dataclass(frozen=True, slots=True)
class Stop:
    """Why a run stopped: the shared cause and how many identities in a row it failed."""

    cause: SharedCause
    count: int

    def message(self, command: Command) -> str:
        """One line: the cause, and the fix."""
        c, n = self.cause, self.count
        again = f"then `pal-orchestrator {command.value} … --resume`"
        if command in (Command.LINK, Command.UNLINK):
            again += " (add --force when the fix changes an option)"
        else:
            again = f"then run `pal-orchestrator {command.value}` again"
        texts = {
            "partner_id_rejected": (
                f"partner ID {c.subject} was rejected for the first {n} identities ({c.code}) — use your partner "
                f"*location* ID (PLA, 6–10 digits), not the global one (PGA), with --partner-id; {again}"),
            "refused_unexplained": (
                f"the service refused to link partner ID {c.subject} for {n} identities in a row ({c.code}) although "
                f"none of them showed a link — check --partner-id and --arm-endpoint; {again}"),
            "vault_forbidden": (
                f"the orchestrator cannot read secrets in Key Vault {c.subject} ({c.code}, {n} identities in a row) "
                f"— grant the operator identity 'Key Vault Secrets User' on that vault, or check --operator-auth; "
                f"{again}"),
            "unreachable": (
                f"{c.subject} could not be reached ({c.code}) for {n} identities in a row — check the endpoint "
                f"options (--cloud, --authority-host, --arm-endpoint, --key-vault), the network and --ca-bundle; "
                f"{again}"),
            "token_rejected": (
                f"{c.subject} refused the token of {n} identities in a row ({c.code}) — the token is for another "
                f"cloud or audience: check --cloud and --arm-endpoint; {again}"),
            "partner_name_mismatch": (
                f"partner ID {c.subject} belongs to {c.code!r} according to the service, not the partner this run "
                f"expects (--partner-name, or the name an earlier run recorded): check --partner-id (your partner "
                f"location ID); at most one identity was linked to it — unlink it with `pal-orchestrator unlink`; "
                f"{again}"),
            "not_partner_api": (
                f"{c.subject} does not serve Microsoft.ManagementPartner ({c.code}, {n} identities in a row) — "
                f"check --arm-endpoint and --cloud; {again}"),
        }
        return texts.get(c.kind, f"{c.kind} {c.subject} ({c.code}) failed {n} identities in a row; {again}")


class Breaker:
    """Counts shared-cause failures in completion order; see the module docstring for the rule."""

    def __init__(self, total: int, concurrency: int, *, stop_after: int = STOP_AFTER,
                 probation: int = PROBATION) -> None:
        self._concurrency = concurrency
        self._probation = min(probation, concurrency)
        self._stop_after = max(SMALLEST_STOPPABLE, min(stop_after, total))
        self._stoppable = total >= SMALLEST_STOPPABLE
        self._through = False
        self._streak: SharedCause | None = None
        self._count = 0
        self.tripped: Stop | None = None

    @property
    def window(self) -> int:
        """How many identities may be in flight now."""
        if self.tripped is not None:
            return 0
        return self._concurrency if self._through else self._probation

    def observe(self, outcome: Outcome) -> None:
        cause = outcome.shared_cause
        if cause is not None and cause.kind in IMMEDIATE:
            self.tripped = self.tripped or Stop(cause, 1)
            return
        if outcome.status in _THROUGH:
            self._through = True
            self._streak, self._count = None, 0
            return
        if cause is None:
            return  # this identity's own problem: neither counts nor resets
        key = (cause.kind, cause.subject.lower())
        if self._streak is not None and (self._streak.kind, self._streak.subject.lower()) == key:
            self._count += 1
        else:
            self._streak, self._count = cause, 1
        if self._stoppable and self._count >= self._stop_after and self.tripped is None:
            self.tripped = Stop(cause, self._count)
