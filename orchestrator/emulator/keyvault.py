"""Emulated Key Vault secrets: `GET /vaults/{vault}/secrets/{name}[/{version}]` with challenge auth.

The first call without a token gets 401 and a `WWW-Authenticate` challenge naming the vault's tenant, as the
real service does; the token must come from that tenant, and the caller must be one of the vault's readers.

Clients that take only scheme and host of a vault URL (the Azure CLI's `--id`, `KeyVaultSecretIdentifier`)
cannot reach `/vaults/{vault}`, and `*.localhost` names do not resolve without DNS. So the *root vault* (the
world's first) also answers at `GET /secrets/{name}[/{version}]` on the host root, and a versioned root path
names the vault that holds that version when the root vault does not: every secret `id` returned
(`https://HOST/secrets/NAME/VERSION`, the one form the SDK parses) is itself answerable.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .common import KV_AUDIENCES, KV_RESOURCE, Match, epoch
from .core import Core
from .model import SecretVersion

_RE_KV = re.compile(r"^/vaults/([^/]+)/secrets/([^/]+)(?:/([^/]*))?/?$", re.IGNORECASE)
_RE_ROOT = re.compile(r"^/secrets/([^/]+)(?:/([^/]*))?/?$", re.IGNORECASE)
#: Where a secret request goes: (vault key, secret name, version or None).
_Address = tuple[str, str, str | None]
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
        address = self.address(request.path)
        return (address[0], self.get_secret) if address else None

    def address(self, path: str) -> _Address | None:
        """The vault, secret name and version a path asks for: `/vaults/V/secrets/…`, or `/secrets/…` at the root."""
        m = _RE_KV.match(path)
        if m:
            return m.group(1).lower(), m.group(2), m.group(3) or None
        m = _RE_ROOT.match(path)
        if m:
            name, version = m.group(1), m.group(2) or None
            return self.root_vault(name, version), name, version
        return None

    def root_vault(self, name: str, version: str | None) -> str:
        """The vault a host-root path means: the world's first, unless only another holds this exact version.

        Versions are unique GUIDs, so a versioned id handed out by any vault leads back to that vault.
        """
        vaults = self.core.world.vaults
        first = next(iter(vaults), "")
        if version is None or _holds(vaults[first].secrets if first else {}, name, version):
            return first
        return next((key for key, v in vaults.items() if _holds(v.secrets, name, version)), first)

    async def get_secret(self, request: web.Request) -> web.Response:
        address = self.address(request.path)
        assert address is not None
        vault_name, name, version = address
        vault = self.core.world.vaults.get(vault_name)
        if vault is None:
            shown = vault_name or "(the host root)"
            return web.json_response({"error": {"code": "VaultNotFound",
                                                "message": f"Vault '{shown}' does not exist."}}, status=404)
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
        return self._secret(request, vault_name, name, version)

    def _secret(self, request: web.Request, vault_key: str, name: str, version: str | None) -> web.Response:
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
            # cannot appear here (KeyVaultSecretIdentifier would raise); the host is the one the client used,
            # and the root path answers this id whichever vault it came from (see root_vault).
            "id": f"{_origin(request, self.core.url)}/secrets/{display}/{found.version}",
            "attributes": attributes,
            "tags": {},
        }
        if found.content_type:
            body["contentType"] = found.content_type
        return web.json_response(body)


def _holds(secrets: Mapping[str, list[SecretVersion]], name: str, version: str) -> bool:
    """Whether a vault's secrets hold this version of this secret."""
    return any(v.version == version.lower() for v in secrets.get(name.lower(), ()))


def _origin(request: web.Request, fallback: str) -> str:
    """`https://HOST[:PORT]` as the client addressed this emulator (the Host was checked by the server)."""
    return f"https://{request.host}" if request.host else fallback
