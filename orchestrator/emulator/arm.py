"""Emulated Azure Resource Manager front door: bearer check, api-version, then ManagementPartner or RBAC.

ARM answers 401 `InvalidAuthenticationToken` with a `WWW-Authenticate` header before it looks at the path,
so an unauthenticated probe of any ARM route (e.g. `…/operations`) gets the same answer as the real one.
"""

from __future__ import annotations

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


class Arm:
    """The ARM routes of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.partners = Partners(core)
        self.rbac = Rbac(core)
        self.managed_services = ManagedServices(core)

    def match(self, request: web.Request) -> Match:
        """(the token's tenant when it is one of ours, handler): every ARM path is ours to answer."""
        claims = self.core.peek_caller(request)
        tid = claims.get("tid") if claims else None
        return (str(tid) if tid else None), self.handle

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
