"""The emulator's Entra ID token endpoint, driven by the real azure-identity and MSAL clients."""

from __future__ import annotations

import asyncio
from typing import Any

import jwt
import msal
import pytest
from azure.core.exceptions import ClientAuthenticationError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from emulator_fixtures import (
    TENANT_A,
    identity,
    identity_credential,
    vault_value,
)

from orchestrator.emulator import Emulator

ARM_SCOPE = "https://management.azure.com/.default"


def _claims(em: Emulator, token: str, audience: str) -> dict[str, Any]:
    """Verify a token with the emulator's published key (via its JWKS document)."""
    import json
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=em.ca_path)
    with urllib.request.urlopen(f"{em.url}/{TENANT_A}/discovery/v2.0/keys", context=ctx) as resp:  # noqa: S310
        keys = json.load(resp)["keys"]
    key = jwt.PyJWK(keys[0]).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience)


def _aad_error(excinfo: pytest.ExceptionInfo[ClientAuthenticationError]) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize("name", ["sp-secret", "sp-pem", "sp-pfx"])
def test_sync_credentials_get_tokens_with_claims(emulator: Emulator, name: str) -> None:
    """Sync ClientSecretCredential/CertificateCredential (PEM and PFX, via MSAL) get a signed token with tid/oid."""
    record = identity(emulator, name)
    token = identity_credential(emulator, record).get_token(ARM_SCOPE)
    claims = _claims(emulator, token.token, "https://management.azure.com/")
    assert claims["tid"] == record.tenant_id
    assert claims["oid"] == record.object_id
    assert claims["appid"] == record.client_id
    assert claims["exp"] > claims["iat"] and claims["nbf"] <= claims["iat"]
    assert claims["iss"] == f"{emulator.url}/{record.tenant_id}/v2.0"


@pytest.mark.parametrize("name", ["sp-secret", "sp-pem", "sp-pfx"])
def test_aio_credentials_get_tokens(emulator: Emulator, name: str) -> None:
    """aio credentials (PS256 + x5t#S256 assertions for certificates) get tokens for the requested resource."""
    record = identity(emulator, name)

    async def run() -> Any:
        cred = identity_credential(emulator, record, aio=True)
        async with cred:
            return await cred.get_token("https://vault.azure.net/.default")

    token = asyncio.run(run())
    claims = _claims(emulator, token.token, "https://vault.azure.net/")
    assert claims["oid"] == record.object_id


def test_rs256_x5t_assertion_accepted(emulator: Emulator) -> None:
    """An MSAL assertion in the RS256 + x5t (SHA-1 thumbprint) form is verified against the registered cert."""
    record = identity(emulator, "sp-pem")
    pem = vault_value(emulator, "sp-pem")
    cert = x509.load_pem_x509_certificate(pem[pem.index("-----BEGIN CERTIFICATE-----"):].encode())
    thumb = cert.fingerprint(hashes.SHA1()).hex()  # noqa: S303
    http = __import__("requests").Session()
    http.verify = emulator.ca_path
    app = msal.ConfidentialClientApplication(
        record.client_id, client_credential={"private_key": pem, "thumbprint": thumb},
        authority=f"{emulator.url}/{record.tenant_id}", instance_discovery=False, http_client=http,
    )
    result = app.acquire_token_for_client([ARM_SCOPE])
    assert "access_token" in result, result.get("error_description")
    log = [r for r in emulator.requests if r.path.endswith("/token")]
    assert log[-1].status == 200


def test_domain_name_tenant_accepted(emulator: Emulator) -> None:
    """A verified domain works in place of the tenant GUID."""
    record = identity(emulator, "sp-secret")
    from azure.identity import ClientSecretCredential

    cred = ClientSecretCredential("contoso.example", record.client_id, vault_value(emulator, "sp-secret"),
                                  authority=emulator.authority_host, disable_instance_discovery=True,
                                  connection_verify=emulator.ca_path)
    claims = _claims(emulator, cred.get_token(ARM_SCOPE).token, "https://management.azure.com/")
    assert claims["tid"] == TENANT_A


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("sp-app-secret-expired", "AADSTS7000222"),
        ("sp-unregistered-secret", "AADSTS7000215"),
        ("sp-unregistered-cert", "AADSTS700027"),
        ("sp-cert-expired", "AADSTS700027"),
        ("sp-not-in-tenant", "AADSTS700016"),
        ("sp-app-disabled", "AADSTS7000112"),
    ],
)
def test_sync_sign_in_errors(emulator: Emulator, name: str, code: str) -> None:
    """Each permanent sign-in failure surfaces through sync azure-identity with its AADSTS code."""
    with pytest.raises(ClientAuthenticationError) as excinfo:
        identity_credential(emulator, identity(emulator, name)).get_token(ARM_SCOPE)
    assert code in _aad_error(excinfo)


@pytest.mark.parametrize(
    ("name", "code", "status"),
    [
        ("sp-app-secret-expired", "AADSTS7000222", 401),
        ("sp-unregistered-secret", "AADSTS7000215", 401),
        ("sp-unregistered-cert", "AADSTS700027", 401),
        ("sp-not-in-tenant", "AADSTS700016", 400),
        ("sp-app-disabled", "AADSTS7000112", 400),
        ("sp-deactivated", "AADSTS5000224", 400),
    ],
)
def test_aio_sign_in_errors_keep_status(emulator: Emulator, name: str, code: str, status: int) -> None:
    """aio credentials see the Entra status (400/401) and the AADSTS code in the error JSON."""
    record = identity(emulator, name)

    async def run() -> None:
        cred = identity_credential(emulator, record, aio=True)
        async with cred:
            await cred.get_token(ARM_SCOPE)

    with pytest.raises(ClientAuthenticationError) as excinfo:
        asyncio.run(run())
    assert code in str(excinfo.value)
    assert excinfo.value.response is not None and excinfo.value.response.status_code == status


def test_unknown_tenant_is_90002(emulator: Emulator) -> None:
    """An unknown tenant answers 400 AADSTS90002 with the real error JSON shape."""
    import json
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    body = urllib.parse.urlencode({"grant_type": "client_credentials", "client_id": "x", "client_secret": "y",
                                   "scope": ARM_SCOPE}).encode()
    ctx = ssl.create_default_context(cafile=emulator.ca_path)
    req = urllib.request.Request(f"{emulator.url}/nosuch.example/oauth2/v2.0/token", data=body)  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(req, context=ctx)  # noqa: S310
    assert excinfo.value.code == 400
    err = json.loads(excinfo.value.read())
    assert err["error_codes"] == [90002]
    assert err["error_description"].startswith("AADSTS90002: ")
    for part in ("Trace ID: ", "Correlation ID: ", "Timestamp: "):
        assert part in err["error_description"]


def test_unknown_tenant_via_sync_and_aio_sdk(emulator: Emulator) -> None:
    """Both SDK flavours fail sign-in for an unknown tenant (sync: at MSAL's discovery, aio: at the token call)."""
    from azure.identity import ClientSecretCredential
    from azure.identity.aio import ClientSecretCredential as AioCred

    tenant = "99999999-0000-4000-8000-000000000099"
    sync = ClientSecretCredential(tenant, "c", "s", authority=emulator.authority_host,
                                  disable_instance_discovery=True, connection_verify=emulator.ca_path)
    with pytest.raises(ClientAuthenticationError, match="Unable to get authority configuration"):
        sync.get_token(ARM_SCOPE)

    async def run() -> None:
        async with AioCred(tenant, "c", "s", authority=emulator.authority_host,
                           connection_verify=emulator.ca_path) as cred:
            await cred.get_token(ARM_SCOPE)

    with pytest.raises(ClientAuthenticationError, match="AADSTS90002"):
        asyncio.run(run())


def test_bad_assertion_signature_is_700027(emulator: Emulator) -> None:
    """An assertion naming a registered thumbprint but signed with another key fails with AADSTS700027."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    record = identity(emulator, "sp-pem")
    pem = vault_value(emulator, "sp-pem")
    cert_pem = pem[pem.index("-----BEGIN CERTIFICATE-----"):]
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
    from azure.identity import CertificateCredential

    forged = (other_pem + cert_pem).encode()
    cred = CertificateCredential(record.tenant_id, record.client_id, certificate_data=forged,
                                 authority=emulator.authority_host, disable_instance_discovery=True,
                                 connection_verify=emulator.ca_path)
    with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
        cred.get_token(ARM_SCOPE)


def test_discovery_documents(emulator: Emulator) -> None:
    """openid-configuration and instance discovery point MSAL back at the emulator."""
    import json
    import ssl
    import urllib.request

    ctx = ssl.create_default_context(cafile=emulator.ca_path)
    with urllib.request.urlopen(  # noqa: S310
        f"{emulator.url}/contoso.example/v2.0/.well-known/openid-configuration", context=ctx
    ) as resp:
        oidc = json.load(resp)
    assert oidc["token_endpoint"] == f"{emulator.url}/{TENANT_A}/oauth2/v2.0/token"
    with urllib.request.urlopen(  # noqa: S310
        f"{emulator.url}/common/discovery/instance?api-version=1.1&authorization_endpoint="
        f"{emulator.url}/{TENANT_A}/oauth2/v2.0/authorize", context=ctx
    ) as resp:
        inst = json.load(resp)
    assert inst["tenant_discovery_endpoint"].startswith(emulator.url)
