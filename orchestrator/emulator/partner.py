"""Emulated Microsoft.ManagementPartner (Partner Admin Link), api-version 2018-02-01.

One link per caller (tenantId, objectId of the bearer token). PUT creates, PATCH switches in place, DELETE
removes; every write counts in `Core.link_writes`.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .common import Caller, arm_error, iso
from .core import Core
from .crypto import utcnow
from .model import Link

RE_PARTNER = re.compile(r"^/providers/microsoft\.managementpartner/partners(?:/([^/]+))?/?$", re.IGNORECASE)
RE_OPERATIONS = re.compile(r"^/providers/microsoft\.managementpartner/operations/?$", re.IGNORECASE)


def partner_body(link: Link) -> dict[str, Any]:
    """A PartnerResponse for a link (the service lower-cases the id)."""
    return {
        "id": f"/providers/microsoft.managementpartner/partners/{link.partner_id}".lower(),
        "name": link.partner_id,
        "type": "Microsoft.ManagementPartner/partners",
        "etag": link.version,
        "properties": {
            "partnerId": link.partner_id, "partnerName": link.partner_name, "tenantId": link.tenant_id,
            "objectId": link.object_id, "version": link.version, "createdTime": iso(link.created),
            "updatedTime": iso(link.updated), "state": "Active",
        },
    }


def not_linked() -> web.Response:
    return arm_error(404, "ManagementPartnerNotFound", "This user or service principal is not linked with a Partner ID")


class Partners:
    """The ManagementPartner routes of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def handle(self, request: web.Request, caller: Caller, partner_id: str | None) -> web.Response:
        """GET/PUT/PATCH/DELETE on the caller's link (`partner_id` None: the ID-less `…/partners`)."""
        world = self.core.world
        key = (caller.tenant_id, caller.object_id)
        method = request.method
        with world.lock:
            link = world.links.get(key)
            if partner_id is None:
                if method != "GET":
                    return arm_error(405, "MethodNotAllowed", f"{method} needs a partner ID in the path.")
                return web.json_response(partner_body(link)) if link else not_linked()
            if method == "GET":
                if link is None or link.partner_id.lower() != partner_id.lower():
                    return not_linked()
                return web.json_response(partner_body(link))
            if method == "DELETE":
                self.core.link_writes[key] += 1
                world.links.pop(key, None)
                return web.Response(status=200)
            if method not in ("PUT", "PATCH"):
                return arm_error(405, "MethodNotAllowed", f"{method} is not supported.")
            if method == "PATCH" and link is None:
                return not_linked()
            if not world.partner_id_valid(partner_id):
                return arm_error(400, "PartnerIdInvalid", "The Partner ID is not valid")
            if method == "PUT" and link is not None and link.partner_id.lower() != partner_id.lower():
                return arm_error(
                    409, "Conflict",
                    f"This user or service principal is already linked with Partner ID {link.partner_id}. "
                    "Use PATCH to change it or DELETE it first.",
                )
            return web.json_response(partner_body(self._write(caller, link, partner_id)))

    def _write(self, caller: Caller, link: Link | None, partner_id: str) -> Link:
        world = self.core.world
        key = (caller.tenant_id, caller.object_id)
        self.core.link_writes[key] += 1
        now = utcnow()
        if link is None:
            link = Link(partner_id, world.partner_name(partner_id), caller.tenant_id, caller.object_id, 1, now, now)
            world.links[key] = link
        else:
            link.version += 1
            link.partner_id = partner_id
            link.partner_name = world.partner_name(partner_id)
            link.updated = now
        return link

    def operations(self) -> web.Response:
        """The RP's operation list (what `az provider operation show` reads)."""
        ops = []
        for verb, text in (("read", "Read"), ("write", "Create or update"), ("delete", "Delete")):
            ops.append({
                "name": f"Microsoft.ManagementPartner/partners/{verb}",
                "display": {"provider": "Microsoft ManagementPartner", "resource": "Management Partner",
                            "operation": f"{text} All ManagementPartner",
                            "description": f"{text} All ManagementPartner"},
                "origin": "user,system",
            })
        return web.json_response({"value": ops, "nextLink": None})
