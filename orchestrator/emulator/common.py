"""What every emulated service shares: the request log record, the caller, early replies, ARM error bodies.

The service modules (entra, keyvault, partner, rbac, imds, admin) import from here and from `core`, never
from `server`, so the dispatcher can import them all without an import circle.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

PAL_API_VERSION = "2018-02-01"
KV_RESOURCE = "https://vault.azure.net"
KV_AUDIENCES = frozenset({"https://vault.azure.net", "https://vault.azure.cn", "https://vault.usgovcloudapi.net"})
ARM_AUDIENCES = frozenset({
    "https://management.azure.com", "https://management.core.windows.net",
    "https://management.chinacloudapi.cn", "https://management.usgovcloudapi.net",
})

#: An aiohttp handler of one emulated route.
Handler = Callable[[web.Request], Awaitable[web.Response]]
#: What a service's `match` returns for a request it serves: (tenant for faults/log, handler).
Match = tuple[str | None, Handler]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One line of the request log. Never holds a secret, a token or a secret value."""

    time: float
    service: str
    method: str
    path: str
    tenant: str | None
    status: int
    fault: str | None = None
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a verified bearer token says the caller is."""

    tenant_id: str
    object_id: str
    client_id: str
    audience: str


class Reply(Exception):
    """Raised inside handlers to answer at once with `response`."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("reply")
        self.response = response


def iso(value: dt.datetime) -> str:
    """UTC ISO-8601 with a `Z`, as Azure writes times."""
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def epoch(value: dt.datetime | None) -> int | None:
    """Seconds since the epoch (Key Vault attributes), or None."""
    return int(value.timestamp()) if value else None


def norm_aud(aud: str) -> str:
    """An audience compared without case or trailing slash."""
    return aud.rstrip("/").lower()


def is_guid(text: str) -> bool:
    """Whether `text` parses as a GUID."""
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def arm_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """An ARM error: `{"error": {code, message}}`, repeated at top level as the ManagementPartner RP does."""
    body: dict[str, Any] = {"error": {"code": code, "message": message}, "code": code, "message": message}
    return web.json_response(body, status=status, headers=headers)
