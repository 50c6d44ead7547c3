"""Azure Lighthouse: does a delegated customer subscription earn recognition for the partner? (judgement, no I/O)

With Lighthouse, PAL is made once per principal in the partner's own (managing) tenant; a customer's delegated
subscription earns recognition when the offer it accepted gives a PEC-eligible role, in its permanent
`authorizations`, to a principal linked to the partner ID. Just-in-time (`eligibleAuthorizations`) roles count
only while activated; Reader alone earns nothing; Marketplace offers are recognised without PAL.

What we know about a principal comes from the journal (its latest outcome, by object ID): we never sign in as
the offer's principals here. A principal the journal does not know — a group (groups cannot be linked; each
member must be), a user, or a service principal outside the inventory — is "unchecked": ARM's authorizations
carry no principal type, and telling a group from an unlisted principal would need Microsoft Graph, which the
operator may not be allowed to read. The fix we give covers both cases.

`lighthouse_run` reads ARM and feeds `judge`; `report.lighthouse` writes the results from the journal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from .models import COVERED_STATUSES, LighthouseRow, LighthouseVerdict, Outcome, Status
from .pec_roles import SUGGESTED_ROLE, pec_roles

V = LighthouseVerdict

#: Best first: a customer (or subscription) takes the best verdict of its subscriptions × offers.
VERDICT_ORDER: tuple[LighthouseVerdict, ...] = (
    V.RECOGNISED, V.MARKETPLACE, V.ELIGIBLE_ONLY, V.PRINCIPAL_NOT_LINKED, V.PRINCIPAL_UNCHECKED, V.NO_PEC_ROLE,
    V.UNREADABLE,
)
_RANK = {v: i for i, v in enumerate(VERDICT_ORDER)}

#: Verdicts under which a customer earns recognition.
RECOGNISED_VERDICTS = frozenset({V.RECOGNISED, V.MARKETPLACE})

#: What the operator needs to read a delegated subscription's Lighthouse assignments.
READ_ROLE = "Reader (Microsoft.ManagedServices/registrationAssignments/read)"


class PrincipalState(StrEnum):
    """What the journal says about one principal an offer names."""

    LINKED = "linked"  # linked to the target partner ID
    ELSEWHERE = "linked_elsewhere"  # linked to another partner ID
    NOT_LINKED = "not_linked"  # in the journal (or inventory) and not linked: its last outcome says why
    UNKNOWN = "unknown"  # neither in the inventory nor in the journal: a group, a user, an unlisted principal


@dataclass(frozen=True, slots=True)
class Principal:
    state: PrincipalState
    detail: str = ""  # e.g. "linked to 5123456", "last outcome credential_expired"


@dataclass(frozen=True, slots=True)
class Grant:
    """One authorization of an offer: principal, role definition GUID, permanent or just-in-time."""

    principal_id: str
    display_name: str
    role_definition_id: str
    just_in_time: bool = False

    @property
    def who(self) -> str:
        return f"{self.display_name} ({self.principal_id})" if self.display_name else self.principal_id

    @property
    def role_name(self) -> str:
        return pec_roles().get(self.role_definition_id.lower(), ("custom or unlisted role", "unknown"))[0]

    @property
    def pec_eligible(self) -> bool:
        return pec_roles().get(self.role_definition_id.lower(), ("", "unknown"))[1] == "yes"

    def describe(self) -> str:
        return f"{self.role_name} ({'just-in-time' if self.just_in_time else 'permanent'}): {self.who}"


@dataclass(frozen=True, slots=True)
class Offer:
    """One registration assignment of a delegated subscription, with its expanded definition."""

    customer_tenant_id: str
    subscription_id: str
    subscription_name: str
    name: str
    definition_id: str
    grants: tuple[Grant, ...]
    marketplace_plan: str | None = None
    customer_name: str = ""


@dataclass(frozen=True, slots=True)
class CustomerVerdict:
    """A customer tenant's roll-up: the best verdict of its delegated subscriptions × offers."""

    customer_tenant_id: str
    customer_name: str
    verdict: LighthouseVerdict
    subscriptions: int
    offers: tuple[str, ...]
    reason: str
    fix: str

    @property
    def recognised(self) -> bool:
        return self.verdict in RECOGNISED_VERDICTS


def principal_states(latest: Mapping[str, Outcome], partner_id: str) -> dict[str, Principal]:
    """object ID → what its latest journal outcome says about its link to `partner_id`."""
    target = partner_id.strip().lower()
    states: dict[str, Principal] = {}
    for object_id, o in latest.items():
        linked_to = (o.linked_partner_id or (o.target_partner_id if o.status in COVERED_STATUSES else "")).lower()
        if o.status in COVERED_STATUSES or o.status in (Status.LINKED_ELSEWHERE, Status.WOULD_RELINK):
            if linked_to == target and o.status in COVERED_STATUSES:
                states[object_id] = Principal(PrincipalState.LINKED, f"linked to {linked_to}")
            else:
                states[object_id] = Principal(PrincipalState.ELSEWHERE, f"linked to partner ID {linked_to or '?'}")
        else:
            states[object_id] = Principal(PrincipalState.NOT_LINKED, f"last outcome {o.status.value}")
    return states


def _row(offer: Offer, verdict: LighthouseVerdict, reason: str, fix: str, about: Iterable[Grant]) -> LighthouseRow:
    return LighthouseRow(
        customer_tenant_id=offer.customer_tenant_id, subscription_id=offer.subscription_id, offer=offer.name,
        definition_id=offer.definition_id, verdict=verdict, reason=reason, fix=fix,
        subscription_name=offer.subscription_name, customer_name=offer.customer_name,
        principal_ids=tuple(dict.fromkeys(g.principal_id for g in about)),
        roles=tuple(g.describe() for g in offer.grants),
    )


def _link_fix(grants: list[Grant], principals: Mapping[str, Principal], partner_id: str) -> str:
    names = ", ".join(g.who for g in grants)
    if any(_state(g, principals) is PrincipalState.ELSEWHERE for g in grants):
        return (f"switch the link of {names} to partner ID {partner_id} (`pal-orchestrator link MANAGING.csv "
                f"--partner-id {partner_id} --overwrite`, rows in your own tenant)")
    return (f"link {names} to partner ID {partner_id} in your own tenant (`pal-orchestrator lighthouse "
            f"MANAGING.csv --partner-id {partner_id}`), then fix what its last outcome names")


def _state(grant: Grant, principals: Mapping[str, Principal]) -> PrincipalState:
    return principals.get(grant.principal_id.lower(), Principal(PrincipalState.UNKNOWN)).state


def _explain(grants: list[Grant], principals: Mapping[str, Principal]) -> str:
    parts = []
    for g in grants:
        found = principals.get(g.principal_id.lower())
        parts.append(f"{g.role_name} for {g.who}: {found.detail if found else 'not in the inventory or journal'}")
    return "; ".join(parts)


def judge(offer: Offer, principals: Mapping[str, Principal], partner_id: str) -> LighthouseRow:
    """The verdict for one delegated subscription × offer (best first, see VERDICT_ORDER)."""
    if offer.marketplace_plan:
        return _row(offer, V.MARKETPLACE, f"Marketplace offer ({offer.marketplace_plan}): recognised without PAL",
                    "", ())
    permanent = [g for g in offer.grants if g.pec_eligible and not g.just_in_time]
    linked = [g for g in permanent if _state(g, principals) is PrincipalState.LINKED]
    if linked:
        return _row(offer, V.RECOGNISED, "permanent PEC-eligible role held by a linked principal: "
                    + _explain(linked, principals), "", linked)
    jit = [g for g in offer.grants if g.pec_eligible and g.just_in_time]
    if jit:
        return _row(offer, V.ELIGIBLE_ONLY,
                    "the PEC-eligible role is only just-in-time (earns only while activated): "
                    + _explain(jit, principals),
                    f"add {SUGGESTED_ROLE} to the offer's permanent authorizations for a linked principal "
                    "(a new offer version the customer accepts)", jit)
    known = [g for g in permanent if _state(g, principals) in (PrincipalState.NOT_LINKED, PrincipalState.ELSEWHERE)]
    if known:
        return _row(offer, V.PRINCIPAL_NOT_LINKED, "PEC-eligible role held by a principal not linked to "
                    f"{partner_id}: " + _explain(known, principals), _link_fix(known, principals, partner_id), known)
    if permanent:
        return _row(offer, V.PRINCIPAL_UNCHECKED,
                    "PEC-eligible role held only by principals the journal does not know (a group, a user, or a "
                    "service principal outside the inventory): " + _explain(permanent, principals),
                    "add it to the inventory (a service principal of your tenant) and run `pal-orchestrator "
                    "lighthouse INVENTORY`; if it is a group, link each member", permanent)
    unlisted = any(g.role_name == "custom or unlisted role" for g in offer.grants)
    return _row(offer, V.NO_PEC_ROLE,
                "no PEC-eligible role in the offer" + (" (custom or unlisted roles are of unknown eligibility)"
                                                       if unlisted else " (e.g. Reader alone earns nothing)"),
                f"add {SUGGESTED_ROLE} to the offer's permanent authorizations for a linked principal", ())


def unreadable(customer_tenant_id: str, subscription_id: str, subscription_name: str, code: str,
               message: str = "") -> LighthouseRow:
    """A subscription whose Lighthouse assignments could not be read (403, or errors outlasting the retries)."""
    forbidden = code in ("AuthorizationFailed", "HTTP403", "Forbidden") or "403" in code
    fix = (f"give the identity this runs as {READ_ROLE} on the delegated subscription through the offer, or run "
           "as a principal the offer authorizes" if forbidden else "run `pal-orchestrator lighthouse` again later")
    reason = f"the subscription's Lighthouse assignments could not be read ({code})" + (
        f": {message}" if message else "")
    return LighthouseRow(customer_tenant_id, subscription_id, "", "", V.UNREADABLE, reason, fix,
                         subscription_name=subscription_name, error_code=code)


def best(rows: Iterable[LighthouseRow]) -> LighthouseRow | None:
    """The row with the best verdict (the first one among equals)."""
    return min(rows, key=lambda r: _RANK[r.verdict], default=None)


def roll_up(rows: Iterable[LighthouseRow]) -> list[CustomerVerdict]:
    """One verdict per customer tenant: its best subscription × offer, with that row's reason and fix."""
    by_customer: dict[str, list[LighthouseRow]] = {}
    for row in rows:
        by_customer.setdefault(row.customer_tenant_id, []).append(row)
    out: list[CustomerVerdict] = []
    for tenant, group in sorted(by_customer.items()):
        top = best(group)
        assert top is not None
        out.append(CustomerVerdict(
            customer_tenant_id=tenant, customer_name=next((r.customer_name for r in group if r.customer_name), ""),
            verdict=top.verdict, subscriptions=len({r.subscription_id for r in group}),
            offers=tuple(sorted({r.offer for r in group if r.offer})), reason=top.reason, fix=top.fix,
        ))
    return out
