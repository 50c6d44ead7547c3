"""Emulated ARM reads for recognition: subscriptions, role assignments and role definitions.

A principal sees the subscriptions it holds a role in (`role_assignments` in the world); reading role
assignments of a subscription it has none in, or with `role_read_forbidden`, answers 403 AuthorizationFailed.
"""

from __future__ import annotations

import csv
import importlib.resources
import re
import uuid
from typing import Any

from aiohttp import web

from .common import Caller, arm_error, is_guid
from .core import Core
from .managedservices import paged, visible_subscriptions
from .model import App
from .world import BUILTIN_ROLES

RE_SUBS = re.compile(r"^/subscriptions/?$", re.IGNORECASE)
RE_SUB = re.compile(r"^/subscriptions/([^/]+)/?$", re.IGNORECASE)
RE_ROLE_ASSIGNMENTS = re.compile(
    r"^/subscriptions/([^/]+)/providers/microsoft\.authorization/roleassignments/?$", re.IGNORECASE
)
RE_ROLE_DEFINITION = re.compile(
    r"^(/subscriptions/[^/]+)?/providers/microsoft\.authorization/roledefinitions/([^/]+)/?$", re.IGNORECASE
)
RE_ROLE_DEFINITIONS = re.compile(
    r"^(/subscriptions/[^/]+)?/providers/microsoft\.authorization/roledefinitions/?$", re.IGNORECASE
)
_RE_ROLE_NAME = re.compile(r"roleName\s+eq\s+'([^']*)'", re.IGNORECASE)
_RE_ASSIGNED_TO = re.compile(r"assignedTo\('([^']+)'\)", re.IGNORECASE)


def role_names() -> dict[str, str]:
    """Role definition GUID → role name, from BUILTIN_ROLES and the packaged pec-roles.csv."""
    names = {v: k for k, v in BUILTIN_ROLES.items()}
    try:
        text = importlib.resources.files("orchestrator").joinpath("data/pec-roles.csv").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return names
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    for row in rows:
        if row.get("role_definition_id") and row.get("role_name"):
            names.setdefault(row["role_definition_id"].lower(), row["role_name"])
    return names


class Rbac:
    """Subscriptions and Microsoft.Authorization reads of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.role_names = role_names()

    def get(self, request: web.Request, caller: Caller) -> web.Response | None:
        """The answer to a GET this module serves, or None when the path is not one of its routes."""
        path = request.path
        if RE_SUBS.match(path):
            return self.subscriptions(request, caller)
        m = RE_SUB.match(path)
        if m:
            return self.subscription(caller, m.group(1).lower())
        m = RE_ROLE_ASSIGNMENTS.match(path)
        if m:
            return self.role_assignments(request, caller, m.group(1).lower())
        m = RE_ROLE_DEFINITION.match(path)
        if m:
            return self.role_definition(m.group(1), m.group(2).lower())
        m = RE_ROLE_DEFINITIONS.match(path)
        if m:
            return self.role_definitions(m.group(1), request.query.get("$filter", ""))
        return None

    def _caller_app(self, caller: Caller) -> App | None:
        return self.core.world.app_by_object_id(caller.tenant_id, caller.object_id)

    def _sub_body(self, sub_id: str, managed_by: str | None = None) -> dict[str, Any]:
        sub = self.core.world.subscriptions.get(sub_id)
        tenant = sub.tenant_id if sub else ""
        return {
            "id": f"/subscriptions/{sub_id}", "subscriptionId": sub_id, "tenantId": tenant,
            "displayName": sub.display_name if sub else sub_id, "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"},
            "authorizationSource": "RoleBased", "managedByTenants": [{"tenantId": managed_by}] if managed_by else [],
        }

    def subscriptions(self, request: web.Request, caller: Caller) -> web.Response:
        """The caller's own subscriptions, then those delegated to it through Lighthouse; paged by page_size."""
        app = self._caller_app(caller)
        own = sorted(s for s, roles in (app.role_assignments.items() if app else ()) if roles)
        values = [self._sub_body(s) for s in own]
        delegated = visible_subscriptions(self.core.world, caller)
        values += [self._sub_body(s, managed_by=t) for s, t in sorted(delegated.items()) if s not in own]
        return paged(request, self.core.url, values, self.core.world.page_size)

    def subscription(self, caller: Caller, sub_id: str) -> web.Response:
        app = self._caller_app(caller)
        if app is None or not app.role_assignments.get(sub_id):
            return arm_error(404, "SubscriptionNotFound", f"The subscription '{sub_id}' could not be found.")
        return web.json_response(self._sub_body(sub_id))

    def role_assignments(self, request: web.Request, caller: Caller, sub_id: str) -> web.Response:
        app = self._caller_app(caller)
        if app is not None and app.role_read_forbidden:
            return arm_error(
                403, "AuthorizationFailed",
                f"The client '{caller.object_id}' with object id '{caller.object_id}' does not have authorization "
                "to perform action 'Microsoft.Authorization/roleAssignments/read' over scope "
                f"'/subscriptions/{sub_id}' or the scope is invalid. If access was recently granted, please "
                "refresh your credentials.",
            )
        if app is None or not app.role_assignments.get(sub_id):
            return arm_error(
                403, "AuthorizationFailed",
                f"The client '{caller.object_id}' with object id '{caller.object_id}' does not have authorization "
                f"to perform action 'Microsoft.Authorization/roleAssignments/read' over scope '/subscriptions/"
                f"{sub_id}' or the scope is invalid.",
            )
        m = _RE_ASSIGNED_TO.search(request.query.get("$filter", ""))
        principal = (m.group(1) if m else caller.object_id).lower()
        target = self.core.world.app_by_object_id(caller.tenant_id, principal) if principal != app.object_id else app
        values = []
        for rd in (target.role_assignments.get(sub_id, []) if target else []):
            ra_id = str(uuid.uuid5(uuid.UUID(sub_id) if is_guid(sub_id) else uuid.NAMESPACE_URL,
                                   f"{principal}/{rd}"))
            scope = f"/subscriptions/{sub_id}"
            values.append({
                "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{ra_id}",
                "name": ra_id,
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{rd}",
                    "principalId": principal, "principalType": "ServicePrincipal", "scope": scope,
                    "condition": None, "conditionVersion": None,
                    "createdOn": "2024-01-01T00:00:00.0000000Z", "updatedOn": "2024-01-01T00:00:00.0000000Z",
                },
            })
        return web.json_response({"value": values})

    def role_definition(self, scope: str | None, rd: str) -> web.Response:
        name = self.role_names.get(rd)
        if name is None:
            return arm_error(404, "RoleDefinitionDoesNotExist",
                             f"The specified role definition with ID '{rd}' does not exist.")
        return web.json_response(self._definition_body(scope or "", rd, name))

    def role_definitions(self, scope: str | None, flt: str) -> web.Response:
        """The built-in role definitions, optionally `$filter=roleName eq 'NAME'` (case-insensitive)."""
        m = _RE_ROLE_NAME.search(flt)
        wanted = m.group(1).lower() if m else None
        values = [self._definition_body(scope or "", rd, name) for rd, name in sorted(self.role_names.items())
                  if wanted is None or name.lower() == wanted]
        return web.json_response({"value": values})

    @staticmethod
    def _definition_body(prefix: str, rd: str, name: str) -> dict[str, Any]:
        return {
            "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{rd}",
            "name": rd,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": name, "type": "BuiltInRole", "description": f"{name} (emulated built-in role)",
                "assignableScopes": ["/"],
                "permissions": [{"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}],
            },
        }
