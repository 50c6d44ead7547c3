"""Emulated Microsoft.ManagedServices (Azure Lighthouse): registration assignments of delegated subscriptions.

`GET /subscriptions/{id}/providers/Microsoft.ManagedServices/registrationAssignments` answers the offers
(`world.lighthouse`, see offers.py) accepted for that subscription, with their registration definitions when
`$expandRegistrationDefinition=true` (the shape in /work/shared/context/lighthouse-facts.md). Who may read:
a principal of the offer's managing tenant that the offer names, the operator app (as if through a group),
or a principal of the customer's tenant holding a role on the subscription; others, and any subscription of
an offer marked `unreadable`, get 403 AuthorizationFailed. Lists are paged by `world.page_size` with a
`nextLink` carrying `$skiptoken`. `visible_subscriptions` is what `rbac` adds to `GET /subscriptions`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .common import Caller, arm_error
from .core import Core
from .offers import LighthouseOffer
from .world import World

RE_ASSIGNMENTS = re.compile(
    r"^/subscriptions/([^/]+)/providers/microsoft\.managedservices/registrationassignments/?$", re.IGNORECASE
)
API_VERSIONS = ("2019-06-01", "2019-09-01", "2020-02-01-preview", "2022-01-01-preview", "2022-10-01")


def _is_operator(world: World, caller: Caller) -> bool:
    op = world.operator
    return op is not None and caller.tenant_id == op.tenant_id and caller.client_id.lower() == op.client_id


def _authorizes(world: World, offer: LighthouseOffer, caller: Caller) -> bool:
    """Whether `caller` acts in the offer's managing tenant as a principal it names (or as the operator)."""
    if offer.managing_tenant != caller.tenant_id.lower():
        return False
    return _is_operator(world, caller) or caller.object_id.lower() in offer.principals()


def visible_subscriptions(world: World, caller: Caller) -> dict[str, str]:
    """Delegated subscription ID → managing tenant, for the subscriptions `caller` sees through Lighthouse."""
    seen: dict[str, str] = {}
    for offer in list(world.lighthouse):
        if _authorizes(world, offer, caller):
            for sub in offer.subscriptions:
                seen.setdefault(sub, offer.managing_tenant)
    return seen


def paged(request: web.Request, base_url: str, values: list[dict[str, Any]], size: int) -> web.Response:
    """One page of `values` (all of them when `size` is 0), with a `nextLink` when more follow."""
    if size <= 0:
        return web.json_response({"value": values})
    token = request.query.get("$skiptoken", "0")
    if not token.isdigit():
        return arm_error(400, "InvalidSkipToken", f"The skip token '{token}' is not valid.")
    start = int(token)
    body: dict[str, Any] = {"value": values[start:start + size]}
    if start + size < len(values):
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = str(start + size)
        body["nextLink"] = f"{base_url}{request.path}?{urlencode(query)}"
    return web.json_response(body)


class ManagedServices:
    """The Microsoft.ManagedServices routes of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._index: tuple[int, dict[str, list[LighthouseOffer]]] = (-1, {})

    def _offers(self, sub_id: str) -> list[LighthouseOffer]:
        """The offers accepted for a subscription (indexed; rebuilt when offers are added)."""
        offers = self.core.world.lighthouse
        if self._index[0] != len(offers):
            index: dict[str, list[LighthouseOffer]] = {}
            for offer in list(offers):
                for sub in offer.subscriptions:
                    index.setdefault(sub, []).append(offer)
            self._index = (len(offers), index)
        return self._index[1].get(sub_id, [])

    def get(self, request: web.Request, caller: Caller) -> web.Response | None:
        """The answer to a GET this module serves, or None when the path is not one of its routes."""
        m = RE_ASSIGNMENTS.match(request.path)
        if m is None:
            return None
        version = request.query.get("api-version", "")
        if version not in API_VERSIONS:
            return arm_error(400, "InvalidApiVersionParameter",
                             f"The api-version '{version}' is invalid. The supported versions for "
                             f"'Microsoft.ManagedServices' are '{', '.join(API_VERSIONS)}'.")
        sub_id = m.group(1).lower()
        offers = self._offers(sub_id)
        if not self._may_read(caller, sub_id, offers):
            return arm_error(
                403, "AuthorizationFailed",
                f"The client '{caller.object_id}' with object id '{caller.object_id}' does not have authorization "
                "to perform action 'Microsoft.ManagedServices/registrationAssignments/read' over scope "
                f"'/subscriptions/{sub_id}' or the scope is invalid. If access was recently granted, please "
                "refresh your credentials.",
            )
        expand = request.query.get("$expandRegistrationDefinition", "").lower() == "true"
        values = [self._assignment(sub_id, offer, expand) for offer in offers]
        return paged(request, self.core.url, values, self.core.world.page_size)

    def _may_read(self, caller: Caller, sub_id: str, offers: list[LighthouseOffer]) -> bool:
        if any(offer.unreadable for offer in offers):
            return False
        if any(_authorizes(self.core.world, offer, caller) for offer in offers):
            return True
        app = self.core.world.app_by_object_id(caller.tenant_id, caller.object_id)
        return app is not None and bool(app.role_assignments.get(sub_id))

    def _assignment(self, sub_id: str, offer: LighthouseOffer, expand: bool) -> dict[str, Any]:
        scope = f"/subscriptions/{sub_id}/providers/Microsoft.ManagedServices"
        definition = offer.definition_id
        props: dict[str, Any] = {
            "registrationDefinitionId": f"{scope}/registrationDefinitions/{definition}",
            "provisioningState": "Succeeded",
        }
        if expand:
            props["registrationDefinition"] = self._definition(scope, offer)
        assignment = _assignment_guid(sub_id, definition)
        return {"id": f"{scope}/registrationAssignments/{assignment}", "type":
                "Microsoft.ManagedServices/registrationAssignments", "name": assignment, "properties": props}

    def _definition(self, scope: str, offer: LighthouseOffer) -> dict[str, Any]:
        tenant = self.core.world.resolve_tenant(offer.managing_tenant)
        body: dict[str, Any] = {
            "id": f"{scope}/registrationDefinitions/{offer.definition_id}",
            "type": "Microsoft.ManagedServices/registrationDefinitions", "name": offer.definition_id,
            "properties": {
                "registrationDefinitionName": offer.name, "description": f"{offer.name} (emulated)",
                "provisioningState": "Succeeded", "manageeTenantId": offer.customer_tenant,
                "manageeTenantName": _tenant_name(self.core.world, offer.customer_tenant),
                "managedByTenantId": offer.managing_tenant,
                "managedByTenantName": tenant.display_name if tenant else "",
                "authorizations": [
                    {"principalId": g.principal_id, "principalIdDisplayName": g.display_name or None,
                     "roleDefinitionId": g.role_definition_id} for g in offer.authorizations],
                "eligibleAuthorizations": [
                    {"principalId": g.principal_id, "principalIdDisplayName": g.display_name or None,
                     "roleDefinitionId": g.role_definition_id,
                     "justInTimeAccessPolicy": {"multiFactorAuthProvider": "Azure",
                                                "maximumActivationDuration": "PT8H"}} for g in offer.eligible],
            },
        }
        if offer.plan is not None:
            body["plan"] = offer.plan
        return body


def _assignment_guid(sub_id: str, definition: str) -> str:
    return str(uuid.uuid5(uuid.UUID(definition), sub_id))


def _tenant_name(world: World, tenant_id: str) -> str:
    tenant = world.resolve_tenant(tenant_id)
    return tenant.display_name if tenant else ""
