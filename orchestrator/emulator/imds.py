"""Emulated managed identity: `GET /metadata/identity/oauth2/token`, IMDS style and App Service style.

IMDS callers send `Metadata: true`; App Service callers send `X-IDENTITY-HEADER` with the emulator's secret
header value. Apps with `managed_identity: true` answer; without `client_id`/`object_id` the first one does.
"""

from __future__ import annotations

import time

from aiohttp import web

from .common import Match
from .core import Core
from .model import App, Tenant

IMDS_PATH = "/metadata/identity/oauth2/token"


def _invalid(description: str) -> web.Response:
    return web.json_response({"error": "invalid_request", "error_description": description}, status=400)


class Imds:
    """The managed identity token endpoint of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def match(self, request: web.Request) -> Match | None:
        """(the requested client_id, handler) for the token path."""
        if request.path.lower() != IMDS_PATH:
            return None
        return request.query.get("client_id"), self.token

    def _find(self, client_id: str, object_id: str) -> tuple[Tenant, App] | None:
        for tenant in self.core.world.tenants.values():
            for app in tenant.apps.values():
                if not app.managed_identity:
                    continue
                if (client_id and app.client_id != client_id) or (object_id and app.object_id != object_id):
                    continue
                return tenant, app
        return None

    async def token(self, request: web.Request) -> web.Response:
        if "X-IDENTITY-HEADER" in request.headers:
            if request.headers["X-IDENTITY-HEADER"] != self.core.identity_header:
                return web.json_response({"error": {"code": "Unauthorized", "message": "Bad X-IDENTITY-HEADER"}},
                                         status=401)
        elif request.headers.get("Metadata", "").lower() != "true":
            return _invalid("Required metadata header not specified")
        resource = request.query.get("resource", "")
        if not resource:
            return _invalid("Required audience parameter not specified")
        client_id = (request.query.get("client_id") or "").lower()
        object_id = (request.query.get("object_id") or request.query.get("principal_id") or "").lower()
        found = self._find(client_id, object_id)
        if found is None:
            return _invalid("Identity not found")
        tenant, app = found
        if tenant.deactivated or not app.enabled:
            return _invalid("Identity is disabled")
        token, expires_in = self.core.issue_token(tenant.tenant_id, app, resource,
                                                  lifetime_s=self.core.world.mi_token_lifetime_s)
        now = int(time.time())
        body = {
            "access_token": token, "client_id": app.client_id, "expires_in": str(expires_in),
            "expires_on": str(now + expires_in), "ext_expires_in": str(expires_in), "not_before": str(now),
            "resource": resource, "token_type": "Bearer",
        }
        return web.json_response(body)
