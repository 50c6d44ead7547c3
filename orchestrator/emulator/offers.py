"""Azure Lighthouse offers in the emulator's world: which customer subscriptions are delegated to whom.

A `lighthouse:` entry of the world file is one offer (registration definition) accepted by one customer for
some of its subscriptions. Its principals live in the managing tenant (default: the operator's). Parsed here,
served by `managedservices` (registration assignments) and `rbac` (the delegated subscriptions in
`GET /subscriptions`). This module imports nothing from world.py; world.py calls `parse_offers`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class OfferError(ValueError):
    """A `lighthouse:` entry is invalid; the message names it."""


@dataclass(frozen=True, slots=True)
class OfferGrant:
    """One authorization of an offer: a managing-tenant principal and a role definition GUID."""

    principal_id: str
    role_definition_id: str
    display_name: str = ""


@dataclass(slots=True)
class LighthouseOffer:
    """An offer (registration definition) delegated by one customer tenant for some of its subscriptions."""

    name: str
    customer_tenant: str
    managing_tenant: str
    subscriptions: list[str] = field(default_factory=list)
    authorizations: list[OfferGrant] = field(default_factory=list)
    eligible: list[OfferGrant] = field(default_factory=list)
    plan: dict[str, str] | None = None  # a Marketplace offer
    unreadable: bool = False  # reading its subscriptions' assignments answers 403

    @property
    def definition_id(self) -> str:
        """The registration definition's GUID, stable for an offer name in a managing tenant."""
        return str(uuid.uuid5(uuid.UUID(self.managing_tenant), self.name))

    def principals(self) -> set[str]:
        """Object IDs of every principal the offer names (permanent and just-in-time)."""
        return {g.principal_id for g in (*self.authorizations, *self.eligible)}


#: A role name or GUID → role definition GUID (world.role_definition_id).
RoleResolver = Callable[[str], str]
#: (managing tenant, client_id) → the service principal's object ID, for grants that name a client_id.
PrincipalResolver = Callable[[str, str], str]


def _plan(value: Any, name: str) -> dict[str, str] | None:
    if not value:
        return None
    if isinstance(value, Mapping):
        return {k: str(v) for k, v in value.items()}
    return {"name": str(value), "publisher": "partner", "product": name.lower().replace(" ", "-"), "version": "1.0.0"}


def _grants(entries: Any, where: str, managing: str, role: RoleResolver, principal: PrincipalResolver) -> list[
        OfferGrant]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise OfferError(f"{where} must be a list")
    out: list[OfferGrant] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or "role" not in entry:
            raise OfferError(f"{where}[{i}]: needs role and principal_id (or client_id)")
        if entry.get("principal_id"):
            pid = str(entry["principal_id"]).lower()
        elif entry.get("client_id"):
            pid = principal(managing, str(entry["client_id"]))
        else:
            raise OfferError(f"{where}[{i}]: needs principal_id (or client_id of a managing-tenant app)")
        try:
            rd = role(str(entry["role"]))
        except ValueError as exc:
            raise OfferError(f"{where}[{i}]: {exc}") from None
        out.append(OfferGrant(pid, rd, str(entry.get("principal_display_name", ""))))
    return out


def parse_offers(
    data: Any, *, default_managing: str, role: RoleResolver, principal: PrincipalResolver
) -> list[LighthouseOffer]:
    """The world file's `lighthouse:` list as offers (see README.md for the format)."""
    if data is None:
        return []
    if not isinstance(data, list):
        raise OfferError("lighthouse must be a list")
    offers: list[LighthouseOffer] = []
    for i, e in enumerate(data):
        where = f"lighthouse[{i}]"
        if not isinstance(e, Mapping) or not e.get("customer_tenant"):
            raise OfferError(f"{where}: needs customer_tenant")
        managing = str(e.get("managing_tenant") or default_managing).lower()
        name = str(e.get("offer") or f"Managed services {i + 1}")
        subs = [str(s["subscription_id"] if isinstance(s, Mapping) else s).lower()
                for s in (e.get("subscriptions") or [])]
        offers.append(LighthouseOffer(
            name=name, customer_tenant=str(e["customer_tenant"]).lower(), managing_tenant=managing,
            subscriptions=subs,
            authorizations=_grants(e.get("authorizations"), f"{where}.authorizations", managing, role, principal),
            eligible=_grants(e.get("eligible_authorizations"), f"{where}.eligible_authorizations", managing, role,
                             principal),
            plan=_plan(e.get("marketplace_plan"), name), unreadable=bool(e.get("unreadable", False)),
        ))
    return offers
