"""Emulated Microsoft.ManagementPartner (Partner Admin Link), api-version 2018-02-01, in every wire variant.

One link per caller (tenantId, objectId of the bearer token). PUT creates, PATCH switches in place, DELETE
removes; every write counts in `Core.link_writes`. As in the recordings, a DELETE bumps the version and a
re-created link keeps its createdTime and version counter (PUT → 57, DELETE → 58, PUT → 59). Where the real
answers are unrecorded, `Core.wire` (see wire.py) picks which plausible one is served.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .common import Caller, arm_error, iso
from .core import Core
from .crypto import utcnow
from .model import Link
from .wire import Wire

RE_PARTNER = re.compile(r"^/providers/microsoft\.managementpartner/partners(?:/([^/]+))?/?$", re.IGNORECASE)
RE_OPERATIONS = re.compile(r"^/providers/microsoft\.managementpartner/operations/?$", re.IGNORECASE)
NOT_LINKED_MESSAGE = "This user or service principal is not linked with a Partner ID"
ALREADY_LINKED_MESSAGE = "This user or service principal is already linked with a Partner ID"

Key = tuple[str, str]


def partner_body(link: Link, wire: Wire, *, state: str = "Active", read: bool = False) -> dict[str, Any]:
    """A PartnerResponse for a link (the service lower-cases the id), shaped by the wire variants."""
    body: dict[str, Any] = {
        "id": f"/providers/microsoft.managementpartner/partners/{link.partner_id}".lower(),
        "name": link.partner_id,
        "type": "Microsoft.ManagementPartner/partners",
    }
    if read and wire.read_body == "no_properties":
        return body
    version: int | str = str(link.version) if wire.version_type == "string" else link.version
    properties: dict[str, Any] = {
        "partnerId": link.partner_id, "partnerName": link.partner_name, "tenantId": link.tenant_id,
        "objectId": link.object_id, "version": version, "createdTime": iso(link.created),
        "updatedTime": iso(link.updated), "state": state,
    }
    if wire.partner_name == "absent":
        del properties["partnerName"]
    return {**body, "etag": version, "properties": properties}


def not_linked(wire: Wire) -> web.Response:
    """The 404 of GET/PATCH when the caller is not linked (to that ID), in the `not_linked` variant."""
    if wire.not_linked == "generic":
        return web.json_response({"error": {"code": "NotFound", "message": "The requested resource was not found."}},
                                 status=404)
    if wire.not_linked == "flat":
        return web.json_response({"code": "ManagementPartnerNotFound", "message": NOT_LINKED_MESSAGE}, status=404)
    if wire.not_linked == "empty":
        return web.Response(status=404)
    return arm_error(404, "ManagementPartnerNotFound", NOT_LINKED_MESSAGE)


def _same(link: Link | None, partner_id: str) -> bool:
    return link is not None and link.partner_id.lower() == partner_id.lower()


class Partners:
    """The ManagementPartner routes of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def handle(self, request: web.Request, caller: Caller, partner_id: str | None) -> web.Response:
        """GET/PUT/PATCH/DELETE on the caller's link (`partner_id` None: the ID-less `…/partners`)."""
        wire = self.core.wire
        key = (caller.tenant_id, caller.object_id)
        method = request.method
        with self.core.world.lock:
            if partner_id is None:
                return self._list(method, key, wire)
            if method == "GET":
                return self._read(key, partner_id, wire)
            if method == "DELETE":
                return self._delete(key, wire)
            if method not in ("PUT", "PATCH"):
                return arm_error(405, "MethodNotAllowed", f"{method} is not supported.")
            return self._write(method, caller, partner_id, wire)

    def _list(self, method: str, key: Key, wire: Wire) -> web.Response:
        if method != "GET":
            return arm_error(405, "MethodNotAllowed", f"{method} needs a partner ID in the path.")
        if wire.list_get == "404":
            return arm_error(404, "InvalidResourceType",
                             "The resource type could not be found in the namespace 'Microsoft.ManagementPartner' "
                             "for api version '2018-02-01'.")
        if wire.list_get == "405":
            return arm_error(405, "MethodNotAllowed", "The requested resource does not support http method 'GET'.")
        link = self.core.world.links.get(key)
        if link is not None:
            return web.json_response(partner_body(link, wire, read=True))
        return self._deleted_or_not_linked(key, None, wire)

    def _read(self, key: Key, partner_id: str, wire: Wire) -> web.Response:
        link = self.core.world.links.get(key)
        if link is not None and _same(link, partner_id):
            return web.json_response(partner_body(link, wire, read=True))
        if link is not None:
            return not_linked(wire)  # an ID other than the linked one
        return self._deleted_or_not_linked(key, partner_id, wire)

    def _deleted_or_not_linked(self, key: Key, partner_id: str | None, wire: Wire) -> web.Response:
        """`after_delete: deleted_state`: the deleted link reads back with state Deleted until a new PUT."""
        gone = self.core.world.deleted_links.get(key)
        shown = gone is not None and (partner_id is None or _same(gone, partner_id))
        if wire.after_delete == "deleted_state" and gone is not None and shown:
            return web.json_response(partner_body(gone, wire, state="Deleted", read=True))
        return not_linked(wire)

    def _delete(self, key: Key, wire: Wire) -> web.Response:
        world = self.core.world
        self.core.link_writes[key] += 1
        link = world.links.pop(key, None)
        if link is not None:
            link.version += 1
            link.updated = utcnow()
            world.deleted_links[key] = link
        return web.Response(status=int(wire.delete_status))

    def _write(self, method: str, caller: Caller, partner_id: str, wire: Wire) -> web.Response:
        world = self.core.world
        link = world.links.get((caller.tenant_id, caller.object_id))
        if method == "PATCH" and link is None:
            return not_linked(wire)
        if not world.partner_id_valid(partner_id):
            return arm_error(400, "PartnerIdInvalid", "The Partner ID is not valid")
        if method == "PUT" and link is not None and not _same(link, partner_id):
            refused = self._put_over_link(link, wire)
            if refused is not None:
                return refused
        status = 200 if link is not None else int(wire.create_status)
        return web.json_response(partner_body(self._store(caller, link, partner_id), wire), status=status)

    @staticmethod
    def _put_over_link(link: Link, wire: Wire) -> web.Response | None:
        """A PUT for another partner while linked: refused in the `put_over_link` variant, or None (`switch`)."""
        if wire.put_over_link == "already_linked_400":
            return arm_error(400, "PartnerIdAlreadyLinked", ALREADY_LINKED_MESSAGE)
        if wire.put_over_link == "already_linked_409":
            return arm_error(409, "PartnerIdAlreadyLinked", ALREADY_LINKED_MESSAGE)
        if wire.put_over_link == "conflict":
            return arm_error(
                409, "Conflict",
                f"This user or service principal is already linked with Partner ID {link.partner_id}. "
                "Use PATCH to change it or DELETE it first.",
            )
        return None

    def _store(self, caller: Caller, link: Link | None, partner_id: str) -> Link:
        """Create the link (from its deleted self when there is one) or switch it in place; one write."""
        world = self.core.world
        key = (caller.tenant_id, caller.object_id)
        self.core.link_writes[key] += 1
        now = utcnow()
        if link is None:
            gone = world.deleted_links.pop(key, None)
            created, version = (gone.created, gone.version + 1) if gone is not None else (now, 1)
            link = Link(partner_id, world.partner_name(partner_id), caller.tenant_id, caller.object_id,
                        version, created, now)
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
