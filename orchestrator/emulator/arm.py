"""Emulated Azure Resource Manager front door: bearer check, api-version, then ManagementPartner or RBAC.

ARM answers 401 `InvalidAuthenticationToken` with a `WWW-Authenticate` header before it looks at the path,
so an unauthenticated probe of any ARM route (e.g. `…/operations`) gets the same answer as the real one.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from aiohttp import web

from .common import ARM_AUDIENCES, PAL_API_VERSION, Match, arm_error
from .core import Core
from .managedservices import ManagedServices
from .partner import RE_OPERATIONS, RE_PARTNER, Partners
from .rbac import Rbac
from .wire import Wire

_AUTH_MESSAGES = {
    "missing": "Authentication failed. The 'Authorization' header is missing.",
    "invalid": "The access token is invalid.",
    "expired": "The access token has expired.",
    "audience": "The access token has an invalid audience for this resource.",
}


#: ARM audiences listed in the cloud metadata besides the emulator's own URL.
_ARM_AUDIENCE_URLS = ("https://management.core.windows.net/", "https://management.azure.com/")
METADATA_PATH = "/metadata/endpoints"

#: ARM's per-principal-per-tenant token buckets (capacity, refill per second), as documented.
READ_BUCKET = (250.0, 25.0)
WRITE_BUCKET = (200.0, 10.0)


class _Buckets:
    """Remaining reads/writes per tenant for the x-ms-ratelimit-remaining-tenant-* headers (never enforced)."""

    def __init__(self) -> None:
        self._state: dict[tuple[str, bool], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, tenant: str, write: bool) -> int:
        capacity, rate = WRITE_BUCKET if write else READ_BUCKET
        now = time.monotonic()
        with self._lock:
            tokens, last = self._state.get((tenant, write), (capacity, now))
            tokens = max(0.0, min(capacity, tokens + (now - last) * rate) - 1)
            self._state[(tenant, write)] = (tokens, now)
        return int(tokens)


class Arm:
    """The ARM routes of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self._buckets = _Buckets()
        self.partners = Partners(core)
        self.rbac = Rbac(core)
        self.managed_services = ManagedServices(core)

    def stamp(self, request: web.Request, response: web.StreamResponse, tenant: str | None) -> None:
        """The headers ARM puts on every answer it gives (a proxy's html page is not ARM's, so none there)."""
        if response.content_type == "text/html":
            return
        request_id = str(uuid.uuid4())
        write = request.method not in ("GET", "HEAD")
        kind = "writes" if write else "reads"
        response.headers.update({
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4()),
            "x-ms-routing-request-id": f"WESTEUROPE:{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}:{request_id}",
            f"x-ms-ratelimit-remaining-tenant-{kind}": str(self._buckets.take(tenant or "", write)),
            "Cache-Control": "no-cache",
            "Expires": "-1",
        })

    def match(self, request: web.Request) -> Match:
        """(the token's tenant when it is one of ours, handler): every ARM path is ours to answer."""
        claims = self.core.peek_caller(request)
        tid = claims.get("tid") if claims else None
        return (str(tid) if tid else None), self.handle

    async def metadata(self, request: web.Request) -> web.Response:
        """`GET /metadata/endpoints`: the cloud's endpoints, unauthenticated, as ARM serves them.

        Before 2019-05-01 the legacy endpoint object; 2019-05-01 up to 2022-09-01 a list of clouds (this one);
        2022-09-01 on the one cloud this ARM belongs to, which `az cloud register` (2.70+) reads.
        """
        url = self.core.url
        if request.method != "GET":
            return arm_error(405, "MethodNotAllowed", f"{request.method} is not supported.")
        version = request.query.get("api-version", "")
        if version < "2019-05-01":
            return web.json_response({
                "galleryEndpoint": f"{url}/", "graphEndpoint": f"{url}/", "portalEndpoint": f"{url}/",
                "authentication": {"loginEndpoint": f"{url}/", "audiences": [f"{url}/", *_ARM_AUDIENCE_URLS]},
            })
        cloud = self._cloud(url)
        return web.json_response(cloud if version >= "2022-09-01" else [cloud])

    @staticmethod
    def _cloud(url: str) -> dict[str, Any]:
        """This emulator as one cloud of the metadata endpoint."""
        return {
            "name": "PalEmulator",
            "portal": f"{url}/",
            "resourceManager": f"{url}/",
            "authentication": {"loginEndpoint": f"{url}/", "audiences": [f"{url}/", *_ARM_AUDIENCE_URLS],
                               "tenant": "common", "identityProvider": "AAD"},
            "graph": f"{url}/", "graphAudience": f"{url}/", "microsoftGraphResourceId": f"{url}/",
            "activeDirectoryDataLake": "https://datalake.azure.net/", "batch": "https://batch.core.windows.net/",
            "media": "https://rest.media.azure.net", "sqlManagement": "https://management.core.windows.net:8443/",
            "gallery": f"{url}/", "vmImageAliasDoc": "",
            "suffixes": {"keyVaultDns": "vault.azure.net", "mhsmDns": "managedhsm.azure.net",
                         "storage": "core.windows.net", "sqlServerHostname": "database.windows.net",
                         "acrLoginServer": "azurecr.io", "azureDataLakeStoreFileSystem": "azuredatalakestore.net",
                         "azureDataLakeAnalyticsCatalogAndJob": "azuredatalakeanalytics.net"},
        }

    def _proxy_page(self, request: web.Request) -> web.Response | None:
        """An html page instead of ARM's JSON (`partners_route: html`, `operations: html|404`), or None."""
        wire = self.core.wire
        if wire.partners_route == "html" and RE_PARTNER.match(request.path):
            return _html(*_Proxy.NOT_FOUND)
        if RE_OPERATIONS.match(request.path):
            if wire.operations == "html":
                return _html(*_Proxy.SIGN_IN)
            if wire.operations == "404":
                return _html(*_Proxy.NOT_FOUND)
        return None

    async def handle(self, request: web.Request) -> web.Response:
        proxied = self._proxy_page(request)
        if proxied is not None:
            return proxied
        caller, why = self.core.caller(request, ARM_AUDIENCES)
        if caller is None:
            message = _AUTH_MESSAGES[why]
            return arm_error(401, "InvalidAuthenticationToken", message, {
                "WWW-Authenticate": f'Bearer authorization_uri="{self.core.url}/", error="invalid_token", '
                                    f'error_description="{message}"'})
        path = request.path
        api_version = request.query.get("api-version")
        if not api_version:
            return arm_error(400, "MissingApiVersionParameter",
                             "The api-version query parameter (?api-version=) is required for all requests.")
        m = RE_PARTNER.match(path)
        if m:
            unrouted = _unrouted(self.core.wire)
            if unrouted is not None:
                return unrouted
            if api_version != PAL_API_VERSION:
                return bad_api_version(api_version, "Microsoft.ManagementPartner", [PAL_API_VERSION])
            return self.partners.handle(request, caller, m.group(1))
        if RE_OPERATIONS.match(path):
            if api_version != PAL_API_VERSION:
                return bad_api_version(api_version, "Microsoft.ManagementPartner", [PAL_API_VERSION])
            return self.partners.operations()
        if request.method == "GET":
            answer = self.rbac.get(request, caller) or self.managed_services.get(request, caller)
            if answer is not None:
                return answer
        return arm_error(404, "InvalidResourceType", f"The resource type could not be found for {path}.")


class _Proxy:
    """Pages a proxy in front of ARM answers with (no JSON), before ARM sees the request."""

    NOT_FOUND = (404, "404 - File or directory not found.",
                 "The resource you are looking for might have been removed, had its name changed, or is "
                 "temporarily unavailable.")
    SIGN_IN = (200, "Sign in to continue", "Your organization's proxy requires you to sign in to reach this site.")


def _html(status: int, title: str, text: str) -> web.Response:
    page = (f"<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>"
            "</body></html>")
    return web.Response(status=status, text=page, content_type="text/html", charset="utf-8")


def _unrouted(wire: Wire) -> web.Response | None:
    """`partners_route`: ARM no longer routes `…/partners` to the RP (after the bearer check), or None."""
    if wire.partners_route == "invalid_resource_type":
        return arm_error(404, "InvalidResourceType",
                         "The resource type 'partners' could not be found in the namespace "
                         f"'Microsoft.ManagementPartner' for api version '{PAL_API_VERSION}'.")
    if wire.partners_route == "no_registered_provider":
        return arm_error(404, "NoRegisteredProviderFound",
                         f"No registered resource provider found for location 'global' and API version "
                         f"'{PAL_API_VERSION}' for type 'partners'.")
    return None


def bad_api_version(version: str, namespace: str, supported: list[str]) -> web.Response:
    return arm_error(
        400, "InvalidApiVersionParameter",
        f"The api-version '{version}' is invalid. The supported versions for '{namespace}' are "
        f"'{', '.join(supported)}'.",
    )
