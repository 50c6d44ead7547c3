"""The emulator's world: tenants, apps, vaults, secrets, links and partner IDs.

A `World` is both the builder (tests call `add_*`) and the live state the server reads and writes, so a
test can change it between runs. `World.from_dict`/`load_world` read the YAML format documented in
README.md; the `identities:` section creates an app *and* its Key Vault credential in one entry.
"""

from __future__ import annotations

import datetime as dt
import random
import re
import secrets as _secrets
import threading
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509

from .crypto import CertificateInfo, certificate_info, make_client_certificate, pool_key, utcnow
from .model import (
    FEDERATED_AUDIENCE,
    App,
    AppSecret,
    FederatedCredential,
    FederatedIssuer,
    IdentityRecord,
    Link,
    Operator,
    SecretVersion,
    Subscription,
    Tenant,
    Vault,
)
from .offers import LighthouseOffer, OfferError, parse_offers
from .wire import WireError, check_wire

#: Built-in role names the world accepts in place of role definition GUIDs.
BUILTIN_ROLES: dict[str, str] = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "User Access Administrator": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Support Request Contributor": "cfd33db0-3dd1-45e3-aa9d-cdbdf3b6f24e",
}

CREDENTIAL_KINDS = ("secret", "certificate-pem", "certificate-pfx")
CONTENT_TYPES = {"certificate-pem": "application/x-pem-file", "certificate-pfx": "application/x-pkcs12"}
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class WorldError(ValueError):
    """The world file or a builder call is invalid; the message names the entry."""


def default_object_id(tenant_id: str, client_id: str) -> str:
    """The service principal's object ID when the world gives none: uuid5(tenant, client_id)."""
    return str(uuid.uuid5(uuid.UUID(tenant_id), client_id.lower()))


def role_definition_id(role: str) -> str:
    """A role name from BUILTIN_ROLES or a GUID, as a role definition GUID."""
    if _GUID.match(role):
        return role.lower()
    try:
        return BUILTIN_ROLES[role]
    except KeyError:
        raise WorldError(f"unknown role {role!r}: use a GUID or one of {sorted(BUILTIN_ROLES)}") from None


_RELATIVE = re.compile(r"^([+-])(\d+)d$")


def _time(value: Any, what: str) -> dt.datetime | None:
    """Parse a world timestamp (datetime, ISO string, "+Nd"/"-Nd" from now, or epoch seconds); naive is UTC."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        out = value
    elif isinstance(value, dt.date):
        out = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float):
        out = dt.datetime.fromtimestamp(value, dt.UTC)
    elif isinstance(value, str) and (rel := _RELATIVE.match(value.strip())):
        # "+45d" / "-12d": relative to now, so demo and rehearsal worlds never age.
        days = int(rel.group(2)) * (1 if rel.group(1) == "+" else -1)
        out = dt.datetime.now(dt.UTC) + dt.timedelta(days=days)
    elif isinstance(value, str):
        try:
            out = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise WorldError(f"{what}: {value!r} is not an ISO-8601 time") from exc
    else:
        raise WorldError(f"{what}: {value!r} is not a time")
    return out if out.tzinfo else out.replace(tzinfo=dt.UTC)


def _operator_clash(client_id: str, tenant_id: str) -> str:
    return (f"operator client_id {client_id} is also an app in tenant {tenant_id}: the operator (the "
            "orchestrator's own sign-in) must be an app of its own, not one of the identities it links")


def _as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise WorldError(f"{what} must be a list")
    return value


class World:
    """Live emulator state and its builder. Thread-safe enough for a test mutating it between runs."""

    def __init__(self, *, seed: int = 0) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.domains: dict[str, str] = {}  # domain lower → tenant id
        self.vaults: dict[str, Vault] = {}  # name lower
        self.links: dict[tuple[str, str], Link] = {}
        #: links DELETE removed, kept so a re-created link keeps its createdTime and version counter
        self.deleted_links: dict[tuple[str, str], Link] = {}
        self.partners: dict[str, str] = {}  # partner id → partner name
        self.subscriptions: dict[str, Subscription] = {}
        self.identities: list[IdentityRecord] = []
        self.issuers: dict[str, FederatedIssuer] = {}
        self.operator: Operator | None = None
        self.faults: dict[str, Any] = {}
        #: wire variants (names and values in wire.WIRE_OPTIONS); the emulator's defaults where absent
        self.wire: dict[str, str] = {}
        self.latency_s: float = 0.0
        #: Azure Lighthouse offers (see offers.py) and the page size of list answers (0: one page)
        self.lighthouse: list[LighthouseOffer] = []
        self.page_size = 0
        self.lock = threading.RLock()
        self._rng = random.Random(seed)
        self._cert_counter = 0

    # -- ids --------------------------------------------------------------------------------------
    def new_guid(self) -> str:
        """A GUID from the world's seeded randomness (reproducible worlds)."""
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def resolve_tenant(self, name: str) -> Tenant | None:
        """A tenant by GUID or verified domain (case-insensitive)."""
        key = name.lower()
        tenant = self.tenants.get(key)
        if tenant is None and key in self.domains:
            tenant = self.tenants.get(self.domains[key])
        return tenant

    def app(self, tenant_id: str, client_id: str) -> App | None:
        """The app `client_id` in `tenant_id`, if it is there."""
        tenant = self.resolve_tenant(tenant_id)
        return tenant.apps.get(client_id.lower()) if tenant else None

    def app_by_object_id(self, tenant_id: str, object_id: str) -> App | None:
        """The app whose service principal object ID is `object_id` in `tenant_id`."""
        tenant = self.resolve_tenant(tenant_id)
        if tenant is None:
            return None
        for app in tenant.apps.values():
            if app.object_id == object_id.lower():
                return app
        return None

    # -- builder ----------------------------------------------------------------------------------
    def add_tenant(
        self,
        tenant_id: str | None = None,
        *,
        domains: Iterable[str] = (),
        deactivated: bool = False,
        display_name: str = "",
    ) -> Tenant:
        """Add (or return the existing) tenant; a default `<id8>.onmicrosoft.com` domain is added."""
        tid = (tenant_id or self.new_guid()).lower()
        if not _GUID.match(tid):
            raise WorldError(f"tenant id {tenant_id!r} is not a GUID")
        with self.lock:
            tenant = self.tenants.get(tid)
            if tenant is None:
                tenant = Tenant(tid, display_name=display_name or f"Tenant {tid[:8]}")
                self.tenants[tid] = tenant
                domains = [*domains, f"t{tid[:8]}.onmicrosoft.com"]
            tenant.deactivated = deactivated or tenant.deactivated
            for domain in domains:
                if domain.lower() not in self.domains:
                    tenant.domains.append(domain)
                    self.domains[domain.lower()] = tid
            return tenant

    def add_app(
        self,
        tenant_id: str,
        client_id: str | None = None,
        *,
        object_id: str | None = None,
        display_name: str = "",
        enabled: bool = True,
        secret: str | None = None,
        secret_expires: dt.datetime | None = None,
        certificates: Iterable[CertificateInfo | x509.Certificate] = (),
        federated: Iterable[FederatedCredential] = (),
        roles: Mapping[str, Iterable[str]] | None = None,
        role_read_forbidden: bool = False,
        managed_identity: bool = False,
    ) -> App:
        """Register an app (service principal) in a tenant; the tenant is created when missing."""
        tenant = self.add_tenant(tenant_id)
        cid = (client_id or self.new_guid()).lower()
        if self.operator is not None and cid == self.operator.client_id:
            raise WorldError(_operator_clash(cid, tenant.tenant_id))
        app = App(
            client_id=cid,
            object_id=(object_id or default_object_id(tenant.tenant_id, cid)).lower(),
            display_name=display_name or f"app-{cid[:8]}",
            enabled=enabled,
            role_read_forbidden=role_read_forbidden,
            managed_identity=managed_identity,
        )
        if secret is not None:
            app.secrets.append(AppSecret(secret, secret_expires))
        for cert in certificates:
            app.certificates.append(cert if isinstance(cert, CertificateInfo) else certificate_info(cert))
        app.federated.extend(federated)
        for sub, role_list in (roles or {}).items():
            self.add_role_assignments(tenant.tenant_id, cid, sub, role_list, _app=app)
        with self.lock:
            tenant.apps[cid] = app
        return app

    def add_role_assignments(
        self, tenant_id: str, client_id: str, subscription_id: str, roles: Iterable[str], *, _app: App | None = None
    ) -> None:
        """Give an app roles at subscription scope (the subscription is created when missing)."""
        app = _app or self.app(tenant_id, client_id)
        if app is None:
            raise WorldError(f"no app {client_id} in tenant {tenant_id}")
        sub = subscription_id.lower()
        self.subscriptions.setdefault(sub, Subscription(sub, tenant_id.lower(), f"Subscription {sub[:8]}"))
        app.role_assignments.setdefault(sub, []).extend(role_definition_id(r) for r in roles)

    def add_subscription(self, subscription_id: str, tenant_id: str, display_name: str = "") -> Subscription:
        """Declare a subscription in a tenant."""
        name = display_name or f"Subscription {subscription_id[:8]}"
        sub = Subscription(subscription_id.lower(), tenant_id.lower(), name)
        self.subscriptions[sub.subscription_id] = sub
        return sub

    def add_vault(self, name: str, *, tenant_id: str | None = None, readers: Iterable[str] | None = None) -> Vault:
        """Add a Key Vault; readers default to the operator app."""
        if not re.match(r"^[A-Za-z0-9-]{1,64}$", name):
            raise WorldError(f"vault name {name!r}: letters, digits and '-' only")
        tid = tenant_id or (self.operator.tenant_id if self.operator else None)
        if tid is None:
            raise WorldError(f"vault {name!r} needs a tenant (or define the operator first)")
        self.add_tenant(tid)
        if readers is None:
            readers = [self.operator.client_id] if self.operator else []
        vault = Vault(name, tid.lower(), {r.lower() for r in readers})
        with self.lock:
            self.vaults[name.lower()] = vault
        return vault

    def put_secret(
        self,
        vault: str,
        name: str,
        value: str,
        *,
        content_type: str | None = None,
        enabled: bool = True,
        exp: dt.datetime | None = None,
        nbf: dt.datetime | None = None,
        version: str | None = None,
    ) -> SecretVersion:
        """Add a new current version of a secret (older versions stay readable by version)."""
        v = self.vaults.get(vault.lower())
        if v is None:
            raise WorldError(f"no vault {vault!r}")
        if not re.match(r"^[0-9a-zA-Z-]{1,127}$", name):
            raise WorldError(f"secret name {name!r}: letters, digits and '-' only")
        sv = SecretVersion(
            version=version or uuid.UUID(int=self._rng.getrandbits(128)).hex,
            value=value,
            content_type=content_type,
            enabled=enabled,
            exp=exp,
            nbf=nbf,
        )
        with self.lock:
            v.secrets.setdefault(name.lower(), []).append(sv)
            v.secret_names.setdefault(name.lower(), name)
        return sv

    def set_operator(
        self, tenant_id: str | None = None, client_id: str | None = None, secret: str | None = None
    ) -> Operator:
        """Create the operator app (the orchestrator's own sign-in for Key Vault)."""
        tenant = self.add_tenant(tenant_id, display_name="Operator tenant")
        op = Operator(tenant.tenant_id, (client_id or self.new_guid()).lower(), secret or _secrets.token_urlsafe(32))
        again = self.operator is not None and self.operator.client_id == op.client_id  # re-set: its own app
        for other in self.tenants.values():
            if op.client_id in other.apps and not again:
                raise WorldError(_operator_clash(op.client_id, other.tenant_id))
        self.operator = None  # add_app refuses the operator's client_id while one is set
        self.add_app(op.tenant_id, op.client_id, secret=op.secret, display_name="pal-orchestrator operator")
        for vault in self.vaults.values():
            vault.readers.add(op.client_id)
        self.operator = op
        return op

    def add_partner(self, partner_id: str, name: str | None = None) -> None:
        """Make a partner ID known (once any is known, PUT accepts only known IDs)."""
        self.partners[str(partner_id)] = name or f"Partner {partner_id}"

    def partner_name(self, partner_id: str) -> str:
        return self.partners.get(partner_id, f"Partner {partner_id}")

    def partner_id_valid(self, partner_id: str) -> bool:
        """Known IDs when the world lists any; otherwise any ID of 6–10 digits."""
        if self.partners:
            return partner_id in self.partners
        return bool(re.fullmatch(r"\d{6,10}", partner_id))

    def set_link(self, tenant_id: str, object_id: str, partner_id: str, *, version: int = 1) -> Link:
        """Make a principal already linked (as if linked before the run)."""
        now = utcnow()
        link = Link(str(partner_id), self.partner_name(str(partner_id)), tenant_id.lower(), object_id.lower(),
                    version, now, now)
        with self.lock:
            self.links[(tenant_id.lower(), object_id.lower())] = link
            self.deleted_links.pop((tenant_id.lower(), object_id.lower()), None)
        return link

    def add_federated_issuer(self, issuer: str, *, key_index: int = 3) -> FederatedIssuer:
        """Trust a test issuer for federated assertions; its key comes from the pool."""
        from .crypto import key_id

        key = pool_key(key_index)
        fi = FederatedIssuer(issuer, key, key_id(key.public_key()))
        self.issuers[issuer] = fi
        return fi

    def add_identity(
        self,
        tenant_id: str,
        credential: str = "secret",
        *,
        client_id: str | None = None,
        object_id: str | None = None,
        vault: str | None = None,
        secret_name: str | None = None,
        kv_enabled: bool = True,
        kv_exp: dt.datetime | None = None,
        kv_nbf: dt.datetime | None = None,
        kv_missing: bool = False,
        cert_not_after: dt.datetime | None = None,
        secret_expires: dt.datetime | None = None,
        registered: bool = True,
        in_tenant: bool = True,
        enabled: bool = True,
        linked_to: str | None = None,
        partner_id: str | None = None,
        roles: Mapping[str, Iterable[str]] | None = None,
        role_read_forbidden: bool = False,
        display_name: str = "",
    ) -> IdentityRecord:
        """Create an app in a tenant AND its credential in a vault, in one stroke."""
        if credential not in CREDENTIAL_KINDS:
            raise WorldError(f"credential {credential!r}: use one of {', '.join(CREDENTIAL_KINDS)}")
        if vault is None:
            if not self.vaults:
                raise WorldError("identities need a vault: add one first")
            vault = next(iter(self.vaults.values())).name
        elif vault.lower() not in self.vaults:
            raise WorldError(f"identity refers to unknown vault {vault!r}")
        tenant = self.add_tenant(tenant_id)
        cid = (client_id or self.new_guid()).lower()
        oid = (object_id or default_object_id(tenant.tenant_id, cid)).lower()
        name = secret_name or f"sp-{cid}"
        if credential == "secret":
            value = _secrets.token_urlsafe(32)
            app_secret = value if registered else _secrets.token_urlsafe(32)
            certs: list[CertificateInfo] = []
            content_type: str | None = None
        else:
            self._cert_counter += 1
            cert = make_client_certificate(f"{cid}", key_index=self._cert_counter, not_after=cert_not_after)
            value = cert.pem_bundle() if credential == "certificate-pem" else cert.pfx_b64()
            app_secret = None
            certs = [cert] if registered else []
            content_type = CONTENT_TYPES[credential]
        if in_tenant:
            self.add_app(
                tenant.tenant_id, cid, object_id=oid, enabled=enabled, secret=app_secret,
                secret_expires=secret_expires, certificates=certs, roles=roles,
                role_read_forbidden=role_read_forbidden, display_name=display_name,
            )
        if not kv_missing:
            self.put_secret(vault, name, value, content_type=content_type, enabled=kv_enabled, exp=kv_exp, nbf=kv_nbf)
        if linked_to:
            self.set_link(tenant.tenant_id, oid, str(linked_to))
        record = IdentityRecord(tenant.tenant_id, cid, oid, credential, self.vaults[vault.lower()].name, name,
                                str(linked_to) if linked_to else None, str(partner_id) if partner_id else None)
        self.identities.append(record)
        return record

    # -- loading ----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> World:
        """Build a world from the YAML structure (see README.md)."""
        if not isinstance(data, Mapping):
            raise WorldError("a world is a mapping")
        world = cls(seed=int(data.get("seed", 0)))
        world.latency_s = float(data.get("latency_ms", 0)) / 1000.0
        world.faults = dict(data.get("faults") or {})
        try:
            world.wire = check_wire(data.get("wire"), where="wire")
        except WireError as exc:
            raise WorldError(str(exc)) from None
        for i, t in enumerate(_as_list(data.get("tenants"), "tenants")):
            world._load_tenant(t, f"tenants[{i}]")
        op = data.get("operator") or {}
        world.set_operator(op.get("tenant") or op.get("tenant_id"), op.get("client_id"), op.get("secret"))
        for i, v in enumerate(_as_list(data.get("vaults"), "vaults")):
            world._load_vault(v, f"vaults[{i}]")
        if not world.vaults:
            world.add_vault("pal-vault")
        for p in _as_list(data.get("partners"), "partners"):
            if isinstance(p, Mapping):
                world.add_partner(str(p["partner_id"]), p.get("name"))
            else:
                world.add_partner(str(p))
        for i, s in enumerate(_as_list(data.get("subscriptions"), "subscriptions")):
            try:
                world.add_subscription(s["subscription_id"], s["tenant"], s.get("display_name", ""))
            except KeyError as exc:
                raise WorldError(f"subscriptions[{i}]: missing {exc}") from None
        for i, f in enumerate(_as_list(data.get("federated_issuers"), "federated_issuers")):
            world.add_federated_issuer(f["issuer"] if isinstance(f, Mapping) else str(f), key_index=3 + i)
        for i, ident in enumerate(_as_list(data.get("identities"), "identities")):
            world._load_identity(ident, f"identities[{i}]")
        for i, link in enumerate(_as_list(data.get("links"), "links")):
            where = f"links[{i}]"
            tid = str(link.get("tenant", ""))
            oid = link.get("object_id")
            if oid is None and link.get("client_id"):
                app = world.app(tid, str(link["client_id"]))
                oid = app.object_id if app else default_object_id(tid, str(link["client_id"]))
            if not tid or not oid or not link.get("partner_id"):
                raise WorldError(f"{where}: needs tenant, client_id or object_id, and partner_id")
            world.set_link(tid, str(oid), str(link["partner_id"]), version=int(link.get("version", 1)))
        world.page_size = int(data.get("page_size") or 0)
        world.add_offers(data.get("lighthouse"))
        return world

    def add_offers(self, entries: Any) -> list[LighthouseOffer]:
        """Add Lighthouse offers (the `lighthouse:` format); their subscriptions are created in the customer tenant."""
        assert self.operator is not None, "define the operator first"

        def principal(tenant_id: str, client_id: str) -> str:
            app = self.app(tenant_id, client_id)
            return app.object_id if app else default_object_id(tenant_id, client_id)

        try:
            offers = parse_offers(entries, default_managing=self.operator.tenant_id, role=role_definition_id,
                                  principal=principal)
        except OfferError as exc:
            raise WorldError(str(exc)) from None
        for offer in offers:
            for sub in offer.subscriptions:
                self.subscriptions.setdefault(sub, Subscription(sub, offer.customer_tenant, f"Subscription {sub[:8]}"))
        with self.lock:
            self.lighthouse.extend(offers)
        return offers

    def _load_tenant(self, t: Mapping[str, Any], where: str) -> None:
        try:
            tenant = self.add_tenant(
                t.get("tenant_id") or t.get("id"), domains=t.get("domains") or [],
                deactivated=bool(t.get("deactivated", False)), display_name=t.get("display_name", ""),
            )
            for j, a in enumerate(_as_list(t.get("apps"), f"{where}.apps")):
                self._load_app(tenant.tenant_id, a, f"{where}.apps[{j}]")
        except WorldError as exc:
            raise WorldError(f"{where}: {exc}") from None

    def _load_app(self, tenant_id: str, a: Mapping[str, Any], where: str) -> None:
        certs: list[CertificateInfo] = []
        for c in _as_list(a.get("certificates"), f"{where}.certificates"):
            pem = c["pem"] if isinstance(c, Mapping) else str(c)
            certs.append(certificate_info(x509.load_pem_x509_certificate(pem.encode())))
        fed = [
            FederatedCredential(f["issuer"], f["subject"], f.get("audience", FEDERATED_AUDIENCE))
            for f in _as_list(a.get("federated_credentials"), f"{where}.federated_credentials")
        ]
        app = self.add_app(
            tenant_id, a.get("client_id"), object_id=a.get("object_id"), display_name=a.get("display_name", ""),
            enabled=bool(a.get("enabled", True)), certificates=certs, federated=fed,
            roles=a.get("role_assignments") or a.get("roles"),
            role_read_forbidden=bool(a.get("role_read_forbidden", False)),
            managed_identity=bool(a.get("managed_identity", False)),
        )
        for s in _as_list(a.get("secrets"), f"{where}.secrets"):
            if isinstance(s, Mapping):
                app.secrets.append(AppSecret(str(s["value"]), _time(s.get("expires"), f"{where}.secrets")))
            else:
                app.secrets.append(AppSecret(str(s)))

    def _load_vault(self, v: Mapping[str, Any], where: str) -> None:
        try:
            vault = self.add_vault(v["name"], tenant_id=v.get("tenant"), readers=v.get("readers"))
            if self.operator and v.get("readers") is not None and v.get("include_operator", True):
                vault.readers.add(self.operator.client_id)
            for j, s in enumerate(_as_list(v.get("secrets"), f"{where}.secrets")):
                w = f"{where}.secrets[{j}]"
                for old in _as_list(s.get("versions"), f"{w}.versions"):
                    self._put(vault.name, s["name"], old, w)
                self._put(vault.name, s["name"], s, w)
        except KeyError as exc:
            raise WorldError(f"{where}: missing {exc}") from None

    def _put(self, vault: str, name: str, s: Mapping[str, Any], where: str) -> None:
        self.put_secret(
            vault, name, str(s["value"]), content_type=s.get("content_type"), enabled=bool(s.get("enabled", True)),
            exp=_time(s.get("exp"), f"{where}.exp"), nbf=_time(s.get("nbf"), f"{where}.nbf"), version=s.get("version"),
        )

    def _load_identity(self, e: Mapping[str, Any], where: str) -> None:
        if "tenant" not in e:
            raise WorldError(f"{where}: missing tenant")
        try:
            self.add_identity(
                str(e["tenant"]), str(e.get("credential", "secret")), client_id=e.get("client_id"),
                object_id=e.get("object_id"), vault=e.get("vault"), secret_name=e.get("secret_name"),
                kv_enabled=bool(e.get("kv_enabled", True)), kv_exp=_time(e.get("kv_exp"), f"{where}.kv_exp"),
                kv_nbf=_time(e.get("kv_nbf"), f"{where}.kv_nbf"), kv_missing=bool(e.get("kv_missing", False)),
                cert_not_after=_time(e.get("cert_not_after"), f"{where}.cert_not_after"),
                secret_expires=_time(e.get("secret_expires"), f"{where}.secret_expires"),
                registered=bool(e.get("registered", True)), in_tenant=bool(e.get("in_tenant", True)),
                enabled=bool(e.get("enabled", True)),
                linked_to=str(e["linked_to"]) if e.get("linked_to") is not None else None,
                partner_id=str(e["partner_id"]) if e.get("partner_id") is not None else None,
                roles=e.get("roles"), role_read_forbidden=bool(e.get("role_read_forbidden", False)),
                display_name=e.get("display_name", ""),
            )
        except WorldError as exc:
            raise WorldError(f"{where}: {exc}") from None


def load_world(path: str | Path) -> World:
    """Read a world YAML file."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        # libyaml's safe loader when present: a 10,000-identity world parses ~10x faster.
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}  # noqa: S506
    except yaml.YAMLError as exc:
        raise WorldError(f"{path}: not valid YAML: {exc}") from None
    try:
        return World.from_dict(data)
    except WorldError as exc:
        raise WorldError(f"{path}: {exc}") from None
