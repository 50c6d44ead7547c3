"""Emulated Microsoft Graph: the two directory reads the Azure CLI makes around role assignments.

`az role assignment list --assignee X` resolves X with `GET /v1.0/servicePrincipals?$filter=
servicePrincipalNames/any(c:c eq 'X')` (an appId or a name), and names principals with `POST
/v1.0/directoryObjects/getByIds`. Without them az warns and treats X as an object ID, so an appId finds
nothing. Only the caller's own tenant is visible, as in Graph; the token's audience is Graph or this emulator
(the registered cloud's `microsoftGraphResourceId`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from .common import Match
from .core import Core
from .model import App

GRAPH_AUDIENCES = frozenset({"https://graph.microsoft.com", "https://graph.windows.net"})
_SP_PATH = "/v1.0/serviceprincipals"
_BY_IDS_PATH = "/v1.0/directoryobjects/getbyids"
#: `$filter`s az sends (by name) and scripts use (by appId); both name the appId here.
_RE_FILTER = re.compile(
    r"^\s*(?:servicePrincipalNames/any\(\s*\w+\s*:\s*\w+\s+eq\s+'([^']*)'\s*\)|appId\s+eq\s+'([^']*)')\s*$",
    re.IGNORECASE,
)
_SP_TYPE = "#microsoft.graph.servicePrincipal"


def graph_error(status: int, code: str, message: str) -> web.Response:
    """Graph's error body."""
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class Graph:
    """The Microsoft Graph routes of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def match(self, request: web.Request) -> Match | None:
        """(the token's tenant when it is one of ours, handler) for a Graph path this emulator serves."""
        path = request.path.lower().rstrip("/")
        if path not in (_SP_PATH, _BY_IDS_PATH):
            return None
        claims = self.core.peek_caller(request)
        return (str(claims["tid"]) if claims and claims.get("tid") else None), self.handle

    async def handle(self, request: web.Request) -> web.Response:
        caller, why = self.core.caller(request, GRAPH_AUDIENCES)
        if caller is None:
            return graph_error(401, "InvalidAuthenticationToken",
                               "Access token is empty." if why == "missing" else f"Access token is {why}.")
        tenant = self.core.world.resolve_tenant(caller.tenant_id)
        apps = list(tenant.apps.values()) if tenant else []
        if request.path.lower().rstrip("/") == _SP_PATH:
            if request.method != "GET":
                return graph_error(405, "Request_BadRequest", f"{request.method} is not supported here.")
            flt = request.query.get("$filter")
            m = _RE_FILTER.match(flt or "")
            if flt is not None and m is None:
                return graph_error(400, "Request_UnsupportedQuery", f"Unsupported query: {flt}")
            name = (m.group(1) or m.group(2) or "").lower() if m else None
            found = [a for a in apps if name is None or name == a.client_id]
            return self._values("servicePrincipals", found, caller.tenant_id)
        if request.method != "POST":
            return graph_error(405, "Request_BadRequest", f"{request.method} is not supported here.")
        try:
            body = json.loads(await request.read() or b"{}")
            ids = {str(i).lower() for i in body.get("ids", [])}
        except (ValueError, AttributeError, TypeError):
            return graph_error(400, "Request_BadRequest", "Invalid request body: expected {\"ids\": [...]}.")
        return self._values("directoryObjects", [a for a in apps if a.object_id in ids], caller.tenant_id)

    def _values(self, collection: str, apps: list[App], tenant_id: str) -> web.Response:
        return web.json_response({
            "@odata.context": f"{self.core.url}/v1.0/$metadata#{collection}",
            "value": [_service_principal(app, tenant_id) for app in apps],
        })


def _service_principal(app: App, tenant_id: str) -> dict[str, Any]:
    """A service principal as Graph v1.0 lists it (the fields az reads, and a few it shows)."""
    return {
        "@odata.type": _SP_TYPE, "id": app.object_id, "appId": app.client_id,
        "displayName": app.display_name or app.client_id, "servicePrincipalNames": [app.client_id],
        "servicePrincipalType": "Application", "accountEnabled": app.enabled, "appOwnerOrganizationId": tenant_id,
    }
