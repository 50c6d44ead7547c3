"""The emulator's records: tenants, apps, credentials, vaults, secrets, links (plain dataclasses).

`world.World` builds and holds them; the service modules read and write them under `World.lock`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric import rsa

from .crypto import CertificateInfo, utcnow

FEDERATED_AUDIENCE = "api://AzureADTokenExchange"


@dataclass(slots=True)
class AppSecret:
    """A client secret registered on an app; `expires` in the past → AADSTS7000222."""

    value: str
    expires: dt.datetime | None = None

    def __repr__(self) -> str:
        return f"AppSecret(value=***, expires={self.expires})"


@dataclass(slots=True)
class FederatedCredential:
    """A federated identity credential on an app (workload identity federation)."""

    issuer: str
    subject: str
    audience: str = FEDERATED_AUDIENCE


@dataclass(slots=True)
class App:
    """A service principal in one tenant."""

    client_id: str
    object_id: str
    display_name: str = ""
    enabled: bool = True
    secrets: list[AppSecret] = field(default_factory=list)
    certificates: list[CertificateInfo] = field(default_factory=list)
    federated: list[FederatedCredential] = field(default_factory=list)
    #: subscription ID → role definition GUIDs held by this principal there
    role_assignments: dict[str, list[str]] = field(default_factory=dict)
    #: reading this principal's role assignments answers 403 AuthorizationFailed
    role_read_forbidden: bool = False
    #: this app answers IMDS/managed-identity token requests (user-assigned when not the tenant default)
    managed_identity: bool = False


@dataclass(slots=True)
class Tenant:
    """An Entra ID tenant."""

    tenant_id: str
    domains: list[str] = field(default_factory=list)
    deactivated: bool = False
    display_name: str = ""
    apps: dict[str, App] = field(default_factory=dict)  # key: client_id lower-cased


@dataclass(slots=True)
class SecretVersion:
    """One version of a Key Vault secret."""

    version: str
    value: str
    content_type: str | None = None
    enabled: bool = True
    exp: dt.datetime | None = None
    nbf: dt.datetime | None = None
    created: dt.datetime = field(default_factory=utcnow)
    updated: dt.datetime = field(default_factory=utcnow)

    def __repr__(self) -> str:
        return f"SecretVersion(version={self.version!r}, value=***, content_type={self.content_type!r})"


@dataclass(slots=True)
class Vault:
    """A Key Vault; `readers` are the client IDs allowed to get secrets."""

    name: str
    tenant_id: str
    readers: set[str] = field(default_factory=set)
    secrets: dict[str, list[SecretVersion]] = field(default_factory=dict)  # key: name lower; last = current
    secret_names: dict[str, str] = field(default_factory=dict)  # lower → name as created


@dataclass(slots=True)
class Link:
    """A Partner Admin Link of one principal (tenant_id, object_id)."""

    partner_id: str
    partner_name: str
    tenant_id: str
    object_id: str
    version: int
    created: dt.datetime
    updated: dt.datetime


@dataclass(slots=True)
class Subscription:
    """An Azure subscription in a tenant (for recognition checks)."""

    subscription_id: str
    tenant_id: str
    display_name: str = ""


@dataclass(frozen=True, slots=True)
class Operator:
    """The orchestrator's own app: it reads the vaults."""

    tenant_id: str
    client_id: str
    secret: str

    def __repr__(self) -> str:
        return f"Operator(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, secret=***)"


@dataclass(frozen=True, slots=True)
class IdentityRecord:
    """What an `identities:` entry created: enough to write an inventory row for it."""

    tenant_id: str
    client_id: str
    object_id: str
    credential: str
    vault: str
    secret_name: str
    linked_to: str | None = None
    partner_id: str | None = None


@dataclass(slots=True)
class FederatedIssuer:
    """A test token issuer whose key the world trusts for federated assertions."""

    issuer: str
    key: rsa.RSAPrivateKey
    kid: str
