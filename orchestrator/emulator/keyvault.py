"""Emulated Key Vault secrets: `GET /vaults/{vault}/secrets/{name}[/{version}]` with challenge auth.

The first call without a token gets 401 and a `WWW-Authenticate` challenge naming the vault's tenant, as the
real service does; the token must come from that tenant, and the caller must be one of the vault's readers.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .common import KV_AUDIENCES, KV_RESOURCE, Match, epoch
from .core import Core

_RE_KV = re.compile(r"^/vaults/([^/]+)/secrets/([^/]+)(?:/([^/]*))?/?$", re.IGNORECASE)
_AUTH_MESSAGES = {
    "missing": "AKV10000: Request is missing a Bearer or PoP token.",
    "invalid": "AKV10022: Invalid token.",
    "expired": "AKV10020: Token expired.",
    "audience": "AKV10022: Invalid audience.",
}


def kv_error(status: int, code: str, message: str, *, inner: str | None = None) -> web.Response:
    """A Key Vault error body, with an `innererror` code when given."""
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return web.json_response({"error": error}, status=status)


class KeyVault:
    """The Key Vault routes of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def match(self, request: web.Request) -> Match | None:
        """(vault name, handler) for a secret path; None for anything else."""
        m = _RE_KV.match(request.path)
        return (m.group(1).lower(), self.get_secret) if m else None

    async def get_secret(self, request: web.Request) -> web.Response:
        m = _RE_KV.match(request.path)
        assert m is not None
        vault_name, name, version = m.group(1), m.group(2), m.group(3) or None
        vault = self.core.world.vaults.get(vault_name.lower())
        if vault is None:
            return web.json_response({"error": {"code": "VaultNotFound",
                                                "message": f"Vault '{vault_name}' does not exist."}}, status=404)
        if request.method != "GET":
            return kv_error(405, "BadRequest", f"Method {request.method} is not supported here.")
        challenge = {
            "WWW-Authenticate": f'Bearer authorization="{self.core.url}/{vault.tenant_id}", resource="{KV_RESOURCE}"'
        }
        caller, why = self.core.caller(request, KV_AUDIENCES)
        if caller is None:
            return web.json_response({"error": {"code": "Unauthorized", "message": _AUTH_MESSAGES[why]}},
                                     status=401, headers=challenge)
        if caller.tenant_id != vault.tenant_id:
            return web.json_response(
                {"error": {"code": "Unauthorized",
                           "message": f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/"
                                      f"{vault.tenant_id}/, found https://sts.windows.net/{caller.tenant_id}/."}},
                status=401, headers=challenge)
        if caller.client_id not in vault.readers:
            return kv_error(
                403, "Forbidden",
                f"The user, group or application 'appid={caller.client_id};oid={caller.object_id};"
                f"iss=https://sts.windows.net/{caller.tenant_id}/' does not have secrets get permission on key "
                f"vault '{vault.name};location=emulator'. For help resolving this issue, please see "
                "https://go.microsoft.com/fwlink/?linkid=2125287",
                inner="AccessDenied",
            )
        return self._secret(vault_name.lower(), name, version)

    def _secret(self, vault_key: str, name: str, version: str | None) -> web.Response:
        vault = self.core.world.vaults[vault_key]
        versions = vault.secrets.get(name.lower())
        found = None
        if versions:
            found = next((v for v in versions if v.version == version.lower()), None) if version else versions[-1]
        if found is None:
            shown = f"{name}/{version}" if version else name
            return kv_error(404, "SecretNotFound",
                            f"A secret with (name/id) {shown} was not found in this key vault. If you "
                            "recently deleted this secret you may be able to recover it using the correct "
                            "recovery command. For help resolving this issue, please see "
                            "https://go.microsoft.com/fwlink/?linkid=2125182")
        if not found.enabled:
            return kv_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                            inner="SecretDisabled")
        display = vault.secret_names.get(name.lower(), name)
        attributes: dict[str, Any] = {
            "enabled": found.enabled, "created": epoch(found.created), "updated": epoch(found.updated),
            "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90,
        }
        if found.exp:
            attributes["exp"] = epoch(found.exp)
        if found.nbf:
            attributes["nbf"] = epoch(found.nbf)
        body: dict[str, Any] = {
            "value": found.value,
            # SecretClient parses ids as https://HOST/secrets/NAME/VERSION only, so the /vaults/NAME prefix
            # of the emulator's vault URLs cannot appear here (KeyVaultSecretIdentifier would raise).
            "id": f"{self.core.url}/secrets/{display}/{found.version}",
            "attributes": attributes,
            "tags": {},
        }
        if found.content_type:
            body["contentType"] = found.content_type
        return web.json_response(body)
