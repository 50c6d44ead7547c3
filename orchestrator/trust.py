"""Where the operator's tokens may go: only to vaults the run was configured to trust.

The orchestrator reads secrets as the operator, so every vault a row names receives the operator's Key Vault token.
An inventory is data, not configuration: a row must not be able to send that token to a host of its choosing.

- public and sovereign clouds: the cloud's vault suffix (`*.vault.azure.net` …), enforced by the inventory;
- `--cloud custom` (an emulator, Azure Stack): the origins (scheme, host, port) of the configured endpoints
  (`--authority-host`, `--arm-endpoint`, `--key-vault`) and the host suffixes given with `--vault-host-suffix`.
A row naming any other origin is `skipped` before the run, with the fix. The operator credential handed to Key
Vault also refuses to mint a token for anything but a Key Vault resource, so a challenge naming the ARM audience
(challenge-resource verification must be off for custom clouds) gets nothing: `is_vault_scope` here, applied by
credentials.VaultOnlyCredential (an SDK type, kept with the other credentials).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from .inventory import Inventory
from .inventory.vaults import split_secret_uri
from .models import Cloud, Identity, Problem, SkippedRow


def origin(url: str) -> str:
    """`https://host:port` of a URL (port 443 left out), lower-cased."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    port = parts.port
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port not in (None, 443) else "")


@dataclass(frozen=True, slots=True)
class VaultTrust:
    """The vault origins and host suffixes a custom-cloud run trusts."""

    origins: frozenset[str]
    suffixes: tuple[str, ...]

    @classmethod
    def configured(cls, endpoints: Iterable[str | None], suffixes: Iterable[str]) -> VaultTrust:
        found = frozenset(origin(u) for u in endpoints if u and u.lower().startswith("https://"))
        clean = tuple("." + s.strip().lstrip(".").lower() for s in suffixes if s.strip().strip("."))
        return cls(found, clean)

    def allows(self, url: str) -> bool:
        where = origin(url)
        if where in self.origins:
            return True
        host = (urlsplit(url).hostname or "").lower()
        return url.lower().startswith("https://") and any(host.endswith(s) for s in self.suffixes)


def restrict_vaults(inventory: Inventory, trust: VaultTrust) -> Inventory:
    """Custom-cloud rows whose secret lives at an untrusted origin become `skipped`, with the fix."""
    kept: list[Identity] = []
    problems = list(inventory.problems)
    for identity in inventory.identities:
        if identity.cloud is not Cloud.CUSTOM or identity.secret_uri is None:
            kept.append(identity)
            continue
        vault = split_secret_uri(identity.secret_uri)[0]
        if trust.allows(vault):
            kept.append(identity)
            continue
        row = SkippedRow(identity.customer, identity.tenant_id, identity.client_id, identity.partner_id,
                         identity.extra, identity.source, identity.line)
        problems.append(Problem(
            identity.source, identity.line, "secret_uri",
            f"{origin(vault)} is not a vault this run trusts: the operator's token is only sent to the origins of "
            "--authority-host, --arm-endpoint and --key-vault",
            "pass --vault-host-suffix .YOUR-VAULT-DOMAIN (or --key-vault URL) to trust it, or correct the row",
            row,
        ))
    if len(kept) == len(inventory.identities):
        return inventory
    return replace(inventory, identities=tuple(kept), problems=tuple(problems))


def is_vault_scope(scope: str, arm_audience: str) -> bool:
    """A Key Vault resource (`https://vault.<cloud>` or `https://vault.<stack-domain>`), never ARM's audience."""
    resource = scope.removesuffix("/.default").rstrip("/").lower()
    if resource == arm_audience.rstrip("/").lower():
        return False
    host = (urlsplit(resource).hostname or "").lower()
    return resource.startswith("https://") and (host.startswith("vault.") or ".vault." in host)
