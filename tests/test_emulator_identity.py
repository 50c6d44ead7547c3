"""Managed identity (IMDS / App Service style), federated assertions and recognition reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientAssertionCredential, ClientSecretCredential, ManagedIdentityCredential
from azure.identity.aio import ClientAssertionCredential as AioClientAssertionCredential
from azure.identity.aio import ManagedIdentityCredential as AioManagedIdentityCredential
from emulator_fixtures import PARTNER_ID, pal_client, vault_value

from orchestrator.emulator import Emulator, FederatedCredential, World, mint_federated_assertion

TENANT = "44444444-0000-4000-8000-000000000004"
MI_CLIENT = "55555555-0000-4000-8000-000000000005"
FED_CLIENT = "66666666-0000-4000-8000-000000000006"
SUB = "77777777-0000-4000-8000-000000000007"
ISSUER = "https://issuer.test/pal"
SUBJECT = "system:serviceaccount:pal:orchestrator"
ARM_SCOPE = "https://management.azure.com/.default"


def _world() -> World:
    world = World.from_dict({
        "tenants": [{"tenant_id": TENANT, "apps": [
            {"client_id": MI_CLIENT, "managed_identity": True},
            {"client_id": FED_CLIENT, "federated_credentials": [{"issuer": ISSUER, "subject": SUBJECT}]},
        ]}],
        "federated_issuers": [ISSUER],
        "identities": [
            {"tenant": TENANT, "secret_name": "sp-owner", "roles": {SUB: ["Owner", "Reader"]}},
            {"tenant": TENANT, "secret_name": "sp-forbidden", "roles": {SUB: ["Contributor"]},
             "role_read_forbidden": True},
        ],
    })
    return world


@pytest.fixture
def em(emulator_factory: Any) -> Emulator:
    """An emulator with a managed identity, a federated app and identities holding roles."""
    return emulator_factory(_world())


def test_imds_pod_identity_env_sync_and_aio(em: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """AZURE_POD_IDENTITY_AUTHORITY_HOST=<emulator url> points ManagedIdentityCredential (sync+aio) at IMDS."""
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", em.url)
    sync = ManagedIdentityCredential(connection_verify=em.ca_path).get_token(ARM_SCOPE)

    async def run() -> Any:
        async with AioManagedIdentityCredential(client_id=MI_CLIENT, connection_verify=em.ca_path) as cred:
            return await cred.get_token(ARM_SCOPE)

    aio = asyncio.run(run())
    assert sync.token and aio.token
    imds = [r for r in em.requests if r.service == "imds"]
    assert [r.status for r in imds] == [200, 200]
    # the token is good for ARM: the managed identity can read its (absent) link
    api = pal_client(em, ManagedIdentityCredential(connection_verify=em.ca_path))
    with pytest.raises(HttpResponseError) as excinfo:
        api.partner.get(PARTNER_ID)
    assert excinfo.value.status_code == 404


def test_imds_app_service_env(em: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """IDENTITY_ENDPOINT + IDENTITY_HEADER (App Service style) also reach the emulator over https."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", em.imds_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", em.identity_header)
    token = ManagedIdentityCredential(client_id=MI_CLIENT, connection_verify=em.ca_path).get_token(ARM_SCOPE)
    assert token.token
    assert em.requests[-1].path.startswith("/metadata/identity/oauth2/token?api-version=2019-08-01")


def test_imds_needs_metadata_header(em: Emulator) -> None:
    """Without `Metadata: true` IMDS answers 400 invalid_request."""
    import json
    import ssl
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(  # noqa: S310
            f"{em.imds_endpoint}?api-version=2018-02-01&resource=https://management.azure.com",
            context=ssl.create_default_context(cafile=em.ca_path),
        )
    assert excinfo.value.code == 400
    assert json.loads(excinfo.value.read())["error"] == "invalid_request"


def test_imds_unknown_client_id_unavailable(em: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A client_id with no managed identity is 400 at IMDS; azure-identity reports it unavailable."""
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", em.url)
    cred = ManagedIdentityCredential(client_id=FED_CLIENT, connection_verify=em.ca_path)
    with pytest.raises(ClientAuthenticationError):
        cred.get_token(ARM_SCOPE)
    assert em.requests[-1].status == 400


def test_federated_assertion_sync_and_aio(em: Emulator) -> None:
    """A federated assertion from a trusted issuer signs in with ClientAssertionCredential (sync and aio)."""
    assertion = mint_federated_assertion(em, ISSUER, SUBJECT)
    sync = ClientAssertionCredential(TENANT, FED_CLIENT, lambda: assertion, authority=em.authority_host,
                                     connection_verify=em.ca_path)
    assert sync.get_token(ARM_SCOPE).token

    async def run() -> Any:
        async with AioClientAssertionCredential(TENANT, FED_CLIENT, lambda: assertion,
                                                authority=em.authority_host, connection_verify=em.ca_path) as c:
            return await c.get_token(ARM_SCOPE)

    assert asyncio.run(run()).token


@pytest.mark.parametrize(
    ("issuer", "subject", "audience"),
    [
        (ISSUER, "system:serviceaccount:other:sa", "api://AzureADTokenExchange"),
        (ISSUER, SUBJECT, "api://SomethingElse"),
    ],
)
def test_federated_no_match_is_700211(em: Emulator, issuer: str, subject: str, audience: str) -> None:
    """A wrong subject or audience matches no federated credential: AADSTS700211."""
    assertion = mint_federated_assertion(em, issuer, subject, audience=audience)
    cred = ClientAssertionCredential(TENANT, FED_CLIENT, lambda: assertion, authority=em.authority_host,
                                     connection_verify=em.ca_path)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700211"):
        cred.get_token(ARM_SCOPE)


def test_federated_unknown_issuer_is_700211(em: Emulator) -> None:
    """An issuer the world does not trust (even with a matching record) is AADSTS700211."""
    em.world.add_federated_issuer("https://rogue.test", key_index=1)
    app = em.world.app(TENANT, FED_CLIENT)
    assert app is not None
    assertion = mint_federated_assertion(em, "https://rogue.test", SUBJECT)
    cred = ClientAssertionCredential(TENANT, FED_CLIENT, lambda: assertion, authority=em.authority_host,
                                     connection_verify=em.ca_path)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700211"):
        cred.get_token(ARM_SCOPE)
    app.federated.append(FederatedCredential("https://rogue.test", SUBJECT))
    assert cred.get_token(ARM_SCOPE).token  # once registered on the app, it works


def test_federated_expired_is_700024(em: Emulator) -> None:
    """An expired federated assertion is AADSTS700024."""
    assertion = mint_federated_assertion(em, ISSUER, SUBJECT, lifetime_s=-3600)
    cred = ClientAssertionCredential(TENANT, FED_CLIENT, lambda: assertion, authority=em.authority_host,
                                     connection_verify=em.ca_path)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700024"):
        cred.get_token(ARM_SCOPE)


def _secret_cred(em: Emulator, name: str) -> tuple[Any, str]:
    record = next(r for r in em.world.identities if r.secret_name == name)
    cred = ClientSecretCredential(record.tenant_id, record.client_id, vault_value(em, name),
                                  authority=em.authority_host, disable_instance_discovery=True,
                                  connection_verify=em.ca_path)
    return cred, record.object_id


def test_recognition_reads(em: Emulator) -> None:
    """SubscriptionClient lists the caller's subscriptions; AuthorizationManagementClient lists its roles."""
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.resource.subscriptions import SubscriptionClient

    cred, oid = _secret_cred(em, "sp-owner")
    opts: dict[str, Any] = {"base_url": em.arm_endpoint, "connection_verify": em.ca_path, "retry_total": 0}
    subs = list(SubscriptionClient(cred, **opts).subscriptions.list())
    assert [s.subscription_id for s in subs] == [SUB] and subs[0].tenant_id == TENANT
    auth = AuthorizationManagementClient(cred, SUB, **opts)
    assignments = list(auth.role_assignments.list_for_subscription(filter=f"assignedTo('{oid}')"))
    assert all(a.principal_id == oid for a in assignments)
    names = {auth.role_definitions.get_by_id(a.role_definition_id).role_name for a in assignments}
    assert names == {"Owner", "Reader"}


def test_role_assignment_read_forbidden(em: Emulator) -> None:
    """The world flag makes the identity's role-assignment read answer 403 AuthorizationFailed."""
    from azure.mgmt.authorization import AuthorizationManagementClient

    cred, oid = _secret_cred(em, "sp-forbidden")
    auth = AuthorizationManagementClient(cred, SUB, base_url=em.arm_endpoint, connection_verify=em.ca_path,
                                         retry_total=0)
    with pytest.raises(HttpResponseError) as excinfo:
        list(auth.role_assignments.list_for_subscription(filter=f"assignedTo('{oid}')"))
    assert excinfo.value.status_code == 403
    assert excinfo.value.error is not None and excinfo.value.error.code == "AuthorizationFailed"
