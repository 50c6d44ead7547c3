"""Shared emulator fixtures (a pytest plugin registered by conftest.py) and SDK client helpers.

`emulator` is a fresh in-thread emulator per test with a small world (DEFAULT_WORLD); `emulator_factory`
builds one from any world dict or World. Helpers build real SDK clients that trust the emulator's CA
with `connection_verify=emulator.ca_path` and `retry_total=0`, so SDK retries never hide behaviour.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.emulator import Emulator, IdentityRecord, World

OPERATOR_TENANT = "0e0e0e0e-0000-4000-8000-000000000001"
TENANT_A = "aaaaaaaa-0000-4000-8000-00000000000a"
TENANT_B = "bbbbbbbb-0000-4000-8000-00000000000b"
TENANT_DEACTIVATED = "dddddddd-0000-4000-8000-00000000000d"
PARTNER_ID = "1234567"
OTHER_PARTNER_ID = "7654321"
PAST = "2020-01-01T00:00:00Z"

#: The default world: one identity per credential kind and per failure the engine must classify.
DEFAULT_WORLD: dict[str, Any] = {
    "operator": {"tenant": OPERATOR_TENANT},
    "tenants": [
        {"tenant_id": TENANT_A, "domains": ["contoso.example"]},
        {"tenant_id": TENANT_B},
        {"tenant_id": TENANT_DEACTIVATED, "deactivated": True},
    ],
    "vaults": [{"name": "pal-vault"}, {"name": "other-vault", "readers": [], "include_operator": False}],
    "partners": [{"partner_id": PARTNER_ID, "name": "Contoso Partner"},
                 {"partner_id": OTHER_PARTNER_ID, "name": "Fabrikam Partner"}],
    "identities": [
        {"tenant": TENANT_A, "credential": "secret", "secret_name": "sp-secret"},
        {"tenant": TENANT_A, "credential": "certificate-pem", "secret_name": "sp-pem"},
        {"tenant": TENANT_B, "credential": "certificate-pfx", "secret_name": "sp-pfx"},
        {"tenant": TENANT_B, "credential": "secret", "secret_name": "sp-linked", "linked_to": PARTNER_ID},
        {"tenant": TENANT_A, "credential": "secret", "secret_name": "sp-app-secret-expired",
         "secret_expires": PAST},
        {"tenant": TENANT_A, "credential": "secret", "secret_name": "sp-unregistered-secret", "registered": False},
        {"tenant": TENANT_A, "credential": "certificate-pem", "secret_name": "sp-unregistered-cert",
         "registered": False},
        {"tenant": TENANT_A, "credential": "certificate-pem", "secret_name": "sp-cert-expired",
         "cert_not_after": PAST},
        {"tenant": TENANT_A, "credential": "secret", "secret_name": "sp-not-in-tenant", "in_tenant": False},
        {"tenant": TENANT_A, "credential": "secret", "secret_name": "sp-app-disabled", "enabled": False},
        {"tenant": TENANT_A, "credential": "secret", "secret_name": "sp-kv-disabled", "kv_enabled": False},
        {"tenant": TENANT_A, "credential": "secret", "secret_name": "sp-kv-expired", "kv_exp": PAST},
        {"tenant": TENANT_DEACTIVATED, "credential": "secret", "secret_name": "sp-deactivated"},
        {"tenant": TENANT_A, "credential": "secret", "secret_name": "sp-other-vault", "vault": "other-vault"},
    ],
}


@pytest.fixture
def emulator_factory(tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    """Start emulators from a world dict, a World or None; all are stopped after the test."""
    started: list[Emulator] = []

    def make(world: World | Mapping[str, Any] | None = None, **options: Any) -> Emulator:
        em = Emulator(world if world is not None else DEFAULT_WORLD, **options)
        em.start()
        started.append(em)
        return em

    yield make
    for em in started:
        em.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., Emulator]) -> Emulator:
    """A running emulator with DEFAULT_WORLD."""
    return emulator_factory(DEFAULT_WORLD)


# --- helpers -----------------------------------------------------------------------------------------


def identity(em: Emulator, secret_name: str) -> IdentityRecord:
    """The identity whose Key Vault secret is `secret_name`."""
    for record in em.world.identities:
        if record.secret_name == secret_name:
            return record
    raise KeyError(secret_name)


def vault_value(em: Emulator, secret_name: str, vault: str = "pal-vault") -> str:
    """A secret's current value straight from the world (no HTTP)."""
    return em.world.vaults[vault].secrets[secret_name.lower()][-1].value


def operator_credential(em: Emulator, *, aio: bool = False) -> Any:
    """The operator's ClientSecretCredential (sync or aio) against the emulator."""
    op = em.operator
    if aio:
        from azure.identity.aio import ClientSecretCredential as AioClientSecretCredential

        return AioClientSecretCredential(op.tenant_id, op.client_id, op.secret, authority=em.authority_host,
                                         connection_verify=em.ca_path, retry_total=0)
    from azure.identity import ClientSecretCredential

    return ClientSecretCredential(op.tenant_id, op.client_id, op.secret, authority=em.authority_host,
                                  disable_instance_discovery=True, connection_verify=em.ca_path, retry_total=0)


def secret_client(em: Emulator, vault: str = "pal-vault", *, credential: Any = None, aio: bool = False) -> Any:
    """A SecretClient (sync or aio) for an emulator vault, as the orchestrator builds it."""
    cred = credential or operator_credential(em, aio=aio)
    if aio:
        from azure.keyvault.secrets.aio import SecretClient as AioSecretClient

        return AioSecretClient(em.vault_url(vault), cred, verify_challenge_resource=False,
                               connection_verify=em.ca_path, retry_total=0)
    from azure.keyvault.secrets import SecretClient

    return SecretClient(em.vault_url(vault), cred, verify_challenge_resource=False,
                        connection_verify=em.ca_path, retry_total=0)


def identity_credential(em: Emulator, record: IdentityRecord, *, aio: bool = False, **kwargs: Any) -> Any:
    """The credential for an identity from its Key Vault secret (read from the world, not over HTTP)."""
    value = vault_value(em, record.secret_name, record.vault)
    common: dict[str, Any] = {"authority": em.authority_host, "connection_verify": em.ca_path, "retry_total": 0,
                              **kwargs}
    if not aio:
        common["disable_instance_discovery"] = True
    if record.credential == "secret":
        if aio:
            from azure.identity.aio import ClientSecretCredential as AioClientSecretCredential

            return AioClientSecretCredential(record.tenant_id, record.client_id, value, **common)
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(record.tenant_id, record.client_id, value, **common)
    data = value.encode() if record.credential == "certificate-pem" else base64.b64decode(value)
    if aio:
        from azure.identity.aio import CertificateCredential as AioCertificateCredential

        return AioCertificateCredential(record.tenant_id, record.client_id, certificate_data=data, **common)
    from azure.identity import CertificateCredential

    return CertificateCredential(record.tenant_id, record.client_id, certificate_data=data, **common)


def pal_client(em: Emulator, credential: Any, *, aio: bool = False, **kwargs: Any) -> Any:
    """ACEProvisioningManagementPartnerAPI (sync or aio) against the emulator's ARM endpoint."""
    options: dict[str, Any] = {"base_url": em.arm_endpoint, "connection_verify": em.ca_path, "retry_total": 0,
                               **kwargs}
    if aio:
        from azure.mgmt.managementpartner.aio import ACEProvisioningManagementPartnerAPI as AioApi

        return AioApi(credential, **options)
    from azure.mgmt.managementpartner import ACEProvisioningManagementPartnerAPI

    return ACEProvisioningManagementPartnerAPI(credential, **options)
