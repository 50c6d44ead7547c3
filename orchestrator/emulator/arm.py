"""Emulated Azure Resource Manager front door: bearer check, api-version, then ManagementPartner or RBAC.

ARM answers 401 `InvalidAuthenticationToken` with a `WWW-Authenticate` header before it looks at the path,
so an unauthenticated probe of any ARM route (e.g. `…/operations`) gets the same answer as the real one.
"""

from __future__ import annotations

from aiohttp import web

from .common import ARM_AUDIENCES, PAL_API_VERSION, Match, arm_error
from .core import Core
from .partner import RE_OPERATIONS, RE_PARTNER, Partners
from .rbac import Rbac

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

    def match(self, request: web.Request) -> Match:
        """(the token's tenant when it is one of ours, handler): every ARM path is ours to answer."""
        claims = self.core.peek_caller(request)
        tid = claims.get("tid") if claims else None
        return (str(tid) if tid else None), self.handle

    async def handle(self, request: web.Request) -> web.Response:
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
            if api_version != PAL_API_VERSION:
                return bad_api_version(api_version, "Microsoft.ManagementPartner", [PAL_API_VERSION])
            return self.partners.handle(request, caller, m.group(1))
        if RE_OPERATIONS.match(path):
            if api_version != PAL_API_VERSION:
                return bad_api_version(api_version, "Microsoft.ManagementPartner", [PAL_API_VERSION])
            return self.partners.operations()
        if request.method == "GET":
            answer = self.rbac.get(request, caller)
            if answer is not None:
                return answer
        return arm_error(404, "InvalidResourceType", f"The resource type could not be found for {path}.")


def bad_api_version(version: str, namespace: str, supported: list[str]) -> web.Response:
    return arm_error(
        400, "InvalidApiVersionParameter",
        f"The api-version '{version}' is invalid. The supported versions for '{namespace}' are "
        f"'{', '.join(supported)}'.",
    )
