"""Key Vault locations: a vault URL or bare vault name, or a full secret identifier, checked for one cloud.

The rules (https only, the cloud's vault host, Azure's vault-name shape, a path prefix only for `custom`) are
documented in docs/inventory.md under "Key Vault locations".
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import SplitResult, urlsplit

from ..models import Cloud
from ..settings import CLOUD_ENDPOINTS
from .schema import Fault
from .text import show

VAULT_NAME: Final = re.compile(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]")
SECRET_NAME_FORMAT: Final = re.compile(r"[0-9a-zA-Z-]{1,127}")
NAME_RULE: Final = "secret names are 1–127 characters: letters, digits and hyphens"
_VAULT_NAME_RULE: Final = (
    "vault names are 3–24 letters, digits and hyphens, start with a letter, end with a letter or digit, "
    "and have no '--'"
)
_URI_FORM: Final = "write https://VAULT.<vault host>/secrets/NAME[/VERSION]"
_MARKER: Final = "/secrets/"


class Vaults:
    """Checks vault and secret locations, remembering each vault's verdict (thousands of rows share a vault)."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, Cloud], str | Fault] = {}

    def vault(self, raw: str, cloud: Cloud) -> str | Fault:
        """A vault URL or bare name → the normalised vault URL, or what is wrong with it."""
        key = (raw, cloud)
        verdict = self._seen.get(key)
        if verdict is None:
            verdict = self._seen[key] = vault_url(raw, cloud)
        return verdict

    def secret_uri(self, raw: str, cloud: Cloud) -> str | Fault:
        """A full secret identifier → normalised, or what is wrong with it."""
        shown = show(raw)
        parts = _https_parts(raw, shown)
        if isinstance(parts, Fault):
            return parts
        if parts.query or parts.fragment:
            return Fault(f"{shown} has a query or fragment", "remove everything after ? or #")
        path = parts.path.rstrip("/")
        # With cloud custom the vault URL may itself have a path (an emulator's /vaults/NAME): split at the
        # LAST /secrets/. Azure vault URLs have no path, so there the path must start with /secrets/.
        at = path.rfind(_MARKER) if cloud is Cloud.CUSTOM else (0 if path.startswith(_MARKER) else -1)
        if at < 0:
            return Fault(f"{shown} has no /secrets/NAME part", _URI_FORM)
        name, _, version = path[at + len(_MARKER) :].partition("/")
        if not SECRET_NAME_FORMAT.fullmatch(name):
            return Fault(f"{shown} does not end in a valid secret name", NAME_RULE)
        if version and not SECRET_NAME_FORMAT.fullmatch(version):
            return Fault(
                f"{shown} has an invalid version after the secret name",
                "use /secrets/NAME or /secrets/NAME/VERSION (a 32-character hex version)",
            )
        vault = self.vault(f"https://{parts.netloc}{path[:at]}", cloud)
        if isinstance(vault, Fault):
            return Fault(f"{shown}: {vault.message}", vault.fix)
        return f"{vault}{_MARKER}{name}" + (f"/{version}" if version else "")


def _https_parts(raw: str, shown: str) -> SplitResult | Fault:
    """A secret identifier split into URL parts, if it is an https URL at all."""
    low = raw.lower()
    if low.startswith("http://"):
        return Fault(f"{shown} uses http", "Key Vault is https only: write https://…")
    if not low.startswith("https://"):
        return Fault(f"{shown} is not an https URL", f"{_URI_FORM}, or use key_vault + secret_name")
    try:
        return urlsplit(raw)
    except ValueError:
        return Fault(f"{shown} is not a valid URL", _URI_FORM)


def vault_url(raw: str, cloud: Cloud) -> str | Fault:
    """Validate a vault URL or bare vault name for `cloud`; see docs/inventory.md for the rules."""
    suffix = CLOUD_ENDPOINTS[cloud].vault_suffix if cloud is not Cloud.CUSTOM else None
    if raw.lower().startswith("http://") or "://" in raw:
        return _vault_from_url(raw, cloud, suffix)
    shown = show(raw)
    if suffix is None:
        return Fault(
            f"{shown} is a vault name, but with cloud custom key_vault must be a URL",
            "write the vault's full https URL, e.g. https://127.0.0.1:8443/vaults/ops",
        )
    if not VAULT_NAME.fullmatch(raw) or "--" in raw:
        fix = (
            f"write only the vault name or the full URL https://NAME.{suffix}"
            if "." in raw or "/" in raw
            else _VAULT_NAME_RULE
        )
        return Fault(f"{shown} is not a valid vault name or URL", fix)
    return f"https://{raw.lower()}.{suffix}"


def _vault_from_url(raw: str, cloud: Cloud, suffix: str | None) -> str | Fault:
    """A vault given as a URL: https, no credentials, query or fragment; for Azure clouds host-only."""
    shown = show(raw)
    example = f"https://NAME.{suffix}" if suffix else "https://HOST[:PORT][/PATH]"
    low = raw.lower()
    if low.startswith("http://"):
        return Fault(f"{shown} uses http", f"Key Vault is https only: write {example}")
    if not low.startswith("https://"):
        return Fault(f"{shown} is not an https URL", f"write {example}")
    try:
        parts = urlsplit(raw)
        host, port = parts.hostname, parts.port
    except ValueError:
        return Fault(f"{shown} is not a valid URL", f"write {example}")
    if not host or parts.username is not None or parts.password is not None:
        return Fault(f"{shown} is not a valid vault URL", f"write {example}")
    if parts.query or parts.fragment:
        return Fault(f"{shown} has a query or fragment", f"write {example}")
    path = parts.path.rstrip("/")
    if suffix is None:  # custom cloud: any https URL is a vault URL, path prefix included
        return f"https://{parts.netloc.lower()}{path}"
    if path:
        fix = "put the full secret URI in secret_uri" if "/secrets/" in path else f"write {example}"
        return Fault(f"{shown} has a path; a vault URL is only https://NAME.{suffix}", fix)
    if port not in (None, 443):
        return Fault(f"{shown} has a port; a vault URL is only https://NAME.{suffix}", f"write {example}")
    if not host.endswith("." + suffix):
        return Fault(
            f"{shown} is not a Key Vault host of the {cloud} cloud (*.{suffix})",
            f"write {example}, or set the row's cloud to the vault's cloud (custom for an emulator)",
        )
    name = host[: -len(suffix) - 1]
    if not VAULT_NAME.fullmatch(name) or "--" in name:
        return Fault(f"{shown}: {name!r} is not a valid vault name", _VAULT_NAME_RULE)
    return f"https://{host}"

def split_secret_uri(uri: str) -> tuple[str, str, str | None]:
    """`…/secrets/NAME[/VERSION]` → (vault URL, name, version); the vault URL may carry a path prefix."""
    vault, sep, rest = uri.rstrip("/").rpartition("/secrets/")
    if not sep or not vault or not rest:
        raise ValueError(f"not a Key Vault secret identifier: {uri}")
    name, _, version = rest.partition("/")
    return vault, name, version or None
