"""The emulator's Key Vault secrets API, driven by the real SecretClient (sync and aio)."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12
from emulator_fixtures import operator_credential, secret_client

from orchestrator.emulator import Emulator, issue_token_for


def test_challenge_then_secret_sync(emulator: Emulator) -> None:
    """The first GET gets 401 + WWW-Authenticate naming the vault tenant; the client signs in and reads."""
    secret = secret_client(emulator).get_secret("sp-secret")
    assert secret.value and secret.properties.name == "sp-secret"
    kv = [r for r in emulator.requests if r.service == "keyvault"]
    assert [r.status for r in kv] == [401, 200]
    token_calls = [r for r in emulator.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert token_calls[0].tenant == emulator.operator.tenant_id


def test_challenge_header_shape(emulator: Emulator) -> None:
    """The 401 carries Bearer authorization="URL/{vault tenant}", resource="https://vault.azure.net"."""
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=emulator.ca_path)
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(  # noqa: S310
            f"{emulator.vault_url('pal-vault')}/secrets/sp-secret?api-version=7.5", context=ctx
        )
    assert excinfo.value.code == 401
    assert excinfo.value.headers["WWW-Authenticate"] == (
        f'Bearer authorization="{emulator.url}/{emulator.operator.tenant_id}", resource="https://vault.azure.net"'
    )


def test_secret_aio_and_versions(emulator: Emulator) -> None:
    """aio SecretClient reads the current version and an older one by version id."""
    old = emulator.world.vaults["pal-vault"].secrets["sp-secret"][-1]
    emulator.world.put_secret("pal-vault", "sp-secret", "rotated-value")

    async def run() -> tuple[Any, Any]:
        cred = operator_credential(emulator, aio=True)
        client = secret_client(emulator, credential=cred, aio=True)
        async with cred, client:
            return await client.get_secret("sp-secret"), await client.get_secret("sp-secret", old.version)

    current, previous = asyncio.run(run())
    assert current.value == "rotated-value"
    assert previous.value == old.value and previous.properties.version == old.version


def test_content_types(emulator: Emulator) -> None:
    """Certificate-backed secrets come as application/x-pem-file (key+cert) and application/x-pkcs12 (PFX)."""
    client = secret_client(emulator)
    pem = client.get_secret("sp-pem")
    pfx = client.get_secret("sp-pfx")
    assert pem.properties.content_type == "application/x-pem-file"
    assert load_pem_private_key(pem.value.encode(), None) is not None
    assert "-----BEGIN CERTIFICATE-----" in pem.value
    assert pfx.properties.content_type == "application/x-pkcs12"
    key, cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(pfx.value), None)
    assert key is not None and cert is not None


def test_expired_secret_still_returned_with_attributes(emulator: Emulator) -> None:
    """An expired secret is returned; `expires_on` is informational (epoch ints on the wire)."""
    secret = secret_client(emulator).get_secret("sp-kv-expired")
    assert secret.value
    assert secret.properties.expires_on is not None and secret.properties.expires_on.year == 2020
    assert secret.properties.enabled is True and secret.properties.created_on is not None


def test_not_found(emulator: Emulator) -> None:
    """A missing secret is 404 SecretNotFound."""
    with pytest.raises(ResourceNotFoundError) as excinfo:
        secret_client(emulator).get_secret("no-such-secret")
    assert excinfo.value.error is not None and excinfo.value.error.code == "SecretNotFound"


def test_disabled_secret_forbidden(emulator: Emulator) -> None:
    """A disabled secret is 403 Forbidden / SecretDisabled with Key Vault's message."""
    with pytest.raises(HttpResponseError) as excinfo:
        secret_client(emulator).get_secret("sp-kv-disabled")
    assert excinfo.value.status_code == 403
    assert excinfo.value.error is not None and excinfo.value.error.code == "Forbidden"
    assert "Operation get is not allowed on a disabled secret." in str(excinfo.value)
    assert excinfo.value.response.json()["error"]["innererror"]["code"] == "SecretDisabled"


def test_caller_not_reader_forbidden(emulator: Emulator) -> None:
    """A caller not in the vault's readers gets 403 Forbidden / AccessDenied."""
    with pytest.raises(HttpResponseError) as excinfo:
        secret_client(emulator, "other-vault").get_secret("sp-other-vault")
    assert excinfo.value.status_code == 403
    assert excinfo.value.response.json()["error"]["innererror"]["code"] == "AccessDenied"


def test_wrong_audience_token_rejected(emulator: Emulator) -> None:
    """A token for ARM is refused by Key Vault with 401 and a fresh challenge."""
    import ssl
    import urllib.error
    import urllib.request

    op = emulator.operator
    token = issue_token_for(emulator, op.tenant_id, op.client_id, "https://management.azure.com/")
    req = urllib.request.Request(  # noqa: S310
        f"{emulator.vault_url('pal-vault')}/secrets/sp-secret?api-version=7.5",
        headers={"Authorization": f"Bearer {token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(req, context=ssl.create_default_context(cafile=emulator.ca_path))  # noqa: S310
    assert excinfo.value.code == 401
    assert "WWW-Authenticate" in excinfo.value.headers


# --- the root vault: what clients that keep only scheme and host can reach -----------------------------


def _root_client(em: Emulator, origin: str | None = None) -> Any:
    """A SecretClient on the bare host, as `KeyVaultSecretIdentifier(id).vault_url` and `az --id` build it."""
    from azure.keyvault.secrets import SecretClient

    return SecretClient(origin or em.url, operator_credential(em), verify_challenge_resource=False,
                        connection_verify=em.ca_path, retry_total=0)


def test_root_vault_serves_the_first_vault_and_its_ids_are_answerable(emulator: Emulator) -> None:
    """The world's first vault also answers at /secrets/… on the host root; the id a read returns (via
    /vaults/NAME or the root) parses with KeyVaultSecretIdentifier, and a client built from it reads it back."""
    from azure.keyvault.secrets import KeyVaultSecretIdentifier

    via_vault = secret_client(emulator).get_secret("sp-secret")
    via_root = _root_client(emulator).get_secret("sp-secret")
    assert via_root.value == via_vault.value and via_root.id == via_vault.id
    assert via_root.id == f"{emulator.url}/secrets/sp-secret/{via_root.properties.version}"
    ident = KeyVaultSecretIdentifier(via_vault.id)
    assert ident.vault_url == emulator.url == via_root.properties.vault_url
    followed = _root_client(emulator, ident.vault_url).get_secret(ident.name, ident.version)
    assert followed.value == via_vault.value
    with pytest.raises(ResourceNotFoundError):
        _root_client(emulator).get_secret("no-such-secret")
    assert {r.tenant for r in emulator.requests if r.service == "keyvault"} == {"pal-vault"}


def test_versioned_root_id_leads_to_the_vault_that_holds_it(emulator_factory: Any) -> None:
    """Two vaults with a same-named secret: the root without a version is the first vault; an id from the
    second vault (versions are unique) reads the second vault's value, not the first's."""
    em = emulator_factory({"operator": {"tenant": "0e0e0e0e-0000-4000-8000-000000000001"}, "vaults": [
        {"name": "first", "secrets": [{"name": "shared", "value": "from-first"}]},
        {"name": "second", "secrets": [{"name": "shared", "value": "from-second"}, {"name": "only", "value": "x"}]},
    ]})
    second = secret_client(em, "second").get_secret("shared")
    assert second.value == "from-second" and second.id.startswith(f"{em.url}/secrets/shared/")
    root = _root_client(em)
    assert root.get_secret("shared").value == "from-first"
    assert root.get_secret("shared", second.properties.version).value == "from-second"
    assert root.get_secret("only", secret_client(em, "second").get_secret("only").properties.version).value == "x"
    with pytest.raises(ResourceNotFoundError):
        root.get_secret("only")  # unversioned: the first vault only


def test_secret_id_follows_the_host_the_client_used(emulator: Emulator) -> None:
    """A client on https://localhost:PORT gets ids on localhost (answerable there), not on 127.0.0.1."""
    origin = f"https://localhost:{emulator.port}"
    secret = _root_client(emulator, origin).get_secret("sp-secret")
    assert secret.id == f"{origin}/secrets/sp-secret/{secret.properties.version}"
    assert secret.properties.vault_url == origin
