"""The emulator's Microsoft.ManagementPartner API, driven by ACEProvisioningManagementPartnerAPI."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from emulator_fixtures import OTHER_PARTNER_ID, PARTNER_ID, identity, identity_credential, pal_client

from orchestrator.emulator import Emulator, issue_token_for


def test_sync_create_get_update_delete(emulator: Emulator) -> None:
    """PUT creates, GET reads, PATCH switches (createdTime kept, version up), DELETE removes — sync client."""
    record = identity(emulator, "sp-secret")
    api = pal_client(emulator, identity_credential(emulator, record))
    with pytest.raises(ResourceNotFoundError) as excinfo:
        api.partner.get(PARTNER_ID)
    assert excinfo.value.error is not None and excinfo.value.error.code == "ManagementPartnerNotFound"

    created = api.partner.create(PARTNER_ID)
    assert created.partner_id == PARTNER_ID and created.partner_name == "Contoso Partner"
    assert created.object_id == record.object_id and created.tenant_id == record.tenant_id
    assert created.id == f"/providers/microsoft.managementpartner/partners/{PARTNER_ID}"
    assert created.state == "Active" and created.version == 1 and created.etag == 1
    assert api.partner.get(PARTNER_ID).version == 1
    assert api.partners.get().partner_id == PARTNER_ID

    switched = api.partner.update(OTHER_PARTNER_ID)
    assert switched.partner_id == OTHER_PARTNER_ID and switched.version == 2
    assert switched.created_time == created.created_time
    with pytest.raises(ResourceNotFoundError):
        api.partner.get(PARTNER_ID)  # an ID other than the linked one is 404 too

    api.partner.delete(OTHER_PARTNER_ID)
    assert emulator.link(record.tenant_id, record.object_id) is None
    api.partner.delete(OTHER_PARTNER_ID)  # nothing linked: still 200
    assert emulator.writes(record.tenant_id, record.object_id) == 4


def test_put_same_id_is_idempotent_write(emulator: Emulator) -> None:
    """PUT of the already linked ID answers 200 with the link and bumps the version (it is a write)."""
    record = identity(emulator, "sp-linked")
    api = pal_client(emulator, identity_credential(emulator, record))
    before = emulator.link(record.tenant_id, record.object_id)
    assert before is not None and before.version == 1
    again = api.partner.create(PARTNER_ID)
    assert again.partner_id == PARTNER_ID and again.version == 2
    assert emulator.writes(record.tenant_id, record.object_id) == 1


def test_put_over_other_id_conflicts(emulator: Emulator) -> None:
    """PUT over a link to another ID is 409 Conflict, never success; the link is unchanged."""
    record = identity(emulator, "sp-linked")
    api = pal_client(emulator, identity_credential(emulator, record))
    with pytest.raises(HttpResponseError) as excinfo:
        api.partner.create(OTHER_PARTNER_ID)
    assert excinfo.value.status_code == 409
    assert excinfo.value.error is not None and excinfo.value.error.code == "Conflict"
    link = emulator.link(record.tenant_id, record.object_id)
    assert link is not None and link.partner_id == PARTNER_ID


def test_invalid_partner_id(emulator: Emulator) -> None:
    """PUT of an ID the world does not list is 400 PartnerIdInvalid."""
    api = pal_client(emulator, identity_credential(emulator, identity(emulator, "sp-secret")))
    with pytest.raises(HttpResponseError) as excinfo:
        api.partner.create("99999999")
    assert excinfo.value.status_code == 400
    assert excinfo.value.error is not None and excinfo.value.error.code == "PartnerIdInvalid"


def test_any_6_to_10_digits_valid_without_partner_list(emulator_factory: Any) -> None:
    """With no partners listed, any 6–10 digit ID links and others are invalid."""
    em = emulator_factory({"identities": [{"tenant": "12345678-0000-4000-8000-000000000001"}]})
    record = em.world.identities[0]
    api = pal_client(em, identity_credential(em, record))
    assert api.partner.create("123456").partner_name == "Partner 123456"
    api.partner.delete("123456")
    with pytest.raises(HttpResponseError, match="PartnerIdInvalid"):
        api.partner.create("12345")


def test_patch_when_not_linked_is_404(emulator: Emulator) -> None:
    """PATCH with nothing linked is 404."""
    api = pal_client(emulator, identity_credential(emulator, identity(emulator, "sp-secret")))
    with pytest.raises(ResourceNotFoundError):
        api.partner.update(PARTNER_ID)


def test_aio_flow_and_operations(emulator: Emulator) -> None:
    """The aio client creates, lists, reads operations and deletes, with a PFX certificate sign-in."""
    record = identity(emulator, "sp-pfx")

    async def run() -> tuple[Any, Any, list[Any]]:
        cred = identity_credential(emulator, record, aio=True)
        async with cred, pal_client(emulator, cred, aio=True) as api:
            created = await api.partner.create(PARTNER_ID)
            listed = await api.partners.get()
            ops = [op async for op in api.operation.list()]
            await api.partner.delete(PARTNER_ID)
            return created, listed, ops

    created, listed, ops = asyncio.run(run())
    assert created.partner_id == listed.partner_id == PARTNER_ID
    assert any(op.name == "Microsoft.ManagementPartner/partners/write" for op in ops)
    assert emulator.link(record.tenant_id, record.object_id) is None


def test_one_link_per_principal(emulator: Emulator) -> None:
    """Links are keyed on (tid, oid) of the caller: another principal sees its own (absent) link."""
    api_a = pal_client(emulator, identity_credential(emulator, identity(emulator, "sp-secret")))
    api_b = pal_client(emulator, identity_credential(emulator, identity(emulator, "sp-pem")))
    api_a.partner.create(PARTNER_ID)
    with pytest.raises(ResourceNotFoundError):
        api_b.partners.get()


def test_wrong_audience_token_is_invalid_authentication(emulator: Emulator) -> None:
    """A Key Vault token is refused by ARM with 401 InvalidAuthenticationToken."""
    from azure.core.credentials import AccessToken

    record = identity(emulator, "sp-secret")
    token = issue_token_for(emulator, record.tenant_id, record.client_id, "https://vault.azure.net/")

    class Fixed:
        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return AccessToken(token, 2**31)

    api = pal_client(emulator, Fixed())
    with pytest.raises((HttpResponseError, ClientAuthenticationError)) as excinfo:
        api.partner.get(PARTNER_ID)
    assert excinfo.value.status_code == 401
    assert excinfo.value.error is not None and excinfo.value.error.code == "InvalidAuthenticationToken"


def test_no_token_is_401_and_provider_path_case_insensitive(emulator: Emulator) -> None:
    """No bearer → 401 InvalidAuthenticationToken, error repeated at top level; path case does not matter."""
    import json
    import ssl
    import urllib.error
    import urllib.request

    url = f"{emulator.url}/PROVIDERS/microsoft.managementpartner/Partners/{PARTNER_ID}?api-version=2018-02-01"
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(url, context=ssl.create_default_context(cafile=emulator.ca_path))  # noqa: S310
    assert excinfo.value.code == 401
    body = json.loads(excinfo.value.read())
    assert body["error"]["code"] == body["code"] == "InvalidAuthenticationToken"
