"""ARM response headers, cloud metadata, multi-tenant discovery, the v1 token endpoint, role definition lists,
Graph service principal lookups, and the operator/app clash: what the emulator serves besides the main flows."""

from __future__ import annotations

import http.client
import json
import ssl
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from emulator_fixtures import PARTNER_ID, TENANT_A, identity, identity_credential, vault_value

from orchestrator.emulator import Emulator, World, WorldError, issue_token_for

PARTNERS = "/providers/Microsoft.ManagementPartner/partners"
Q = "?api-version=2018-02-01"


def _call(em: Emulator, method: str, path: str, *, headers: dict[str, str] | None = None,
          body: str | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", em.port, context=ssl.create_default_context(cafile=em.ca_path),
                                       timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def _arm_token(em: Emulator, name: str = "sp-secret") -> dict[str, str]:
    r = identity(em, name)
    return {"Authorization": "Bearer " + issue_token_for(em, r.tenant_id, r.client_id, "https://management.azure.com/")}


# --- ARM headers -----------------------------------------------------------------------------------------


def _assert_arm_headers(headers: http.client.HTTPMessage, kind: str) -> None:
    for name in ("x-ms-request-id", "x-ms-correlation-request-id"):
        uuid.UUID(headers[name])
    region, stamp, routed = headers["x-ms-routing-request-id"].split(":")
    assert region == "WESTEUROPE" and stamp.endswith("Z") and routed == headers["x-ms-request-id"]
    assert int(headers[f"x-ms-ratelimit-remaining-tenant-{kind}"]) >= 0
    assert headers["Cache-Control"] == "no-cache" and headers["Expires"] == "-1"


def test_every_arm_answer_carries_arm_headers(emulator: Emulator) -> None:
    """200, 404, 401, a 429 fault, a PUT and a role read: all carry request/correlation/routing IDs, the
    tenant's remaining reads (GET) or writes (PUT), no-cache and Expires: -1; Key Vault answers do not."""
    auth = _arm_token(emulator)
    answers = [
        (_call(emulator, "GET", f"{PARTNERS}/{PARTNER_ID}{Q}", headers=auth), 404, "reads"),
        (_call(emulator, "PUT", f"{PARTNERS}/{PARTNER_ID}{Q}", headers=auth), 200, "writes"),
        (_call(emulator, "GET", f"{PARTNERS}{Q}", headers=auth), 200, "reads"),
        (_call(emulator, "GET", f"{PARTNERS}{Q}"), 401, "reads"),
    ]
    emulator.script("arm", None, ["429:3"])
    answers.append((_call(emulator, "GET", f"{PARTNERS}{Q}", headers=auth), 429, "reads"))
    for (status, headers, _), expected, kind in answers:
        assert status == expected
        _assert_arm_headers(headers, kind)
    reads = [int(h["x-ms-ratelimit-remaining-tenant-reads"]) for (_, h, _), _, k in answers[:3] if k == "reads"]
    assert reads[0] > reads[1]  # the same tenant's bucket goes down
    kv_status, kv_headers, _ = _call(emulator, "GET", "/vaults/pal-vault/secrets/sp-secret?api-version=7.4")
    assert kv_status == 401 and "x-ms-routing-request-id" not in kv_headers


def test_correlation_id_echoed_when_sent_else_fresh(emulator: Emulator) -> None:
    """x-ms-correlation-request-id echoes the client's; otherwise each answer gets a new GUID."""
    auth = _arm_token(emulator)
    mine = str(uuid.uuid4())
    _, echoed, _ = _call(emulator, "GET", f"{PARTNERS}{Q}", headers={**auth, "x-ms-correlation-request-id": mine})
    assert echoed["x-ms-correlation-request-id"] == mine
    _, one, _ = _call(emulator, "GET", f"{PARTNERS}{Q}", headers=auth)
    _, two, _ = _call(emulator, "GET", f"{PARTNERS}{Q}", headers=auth)
    assert len({one["x-ms-correlation-request-id"], two["x-ms-correlation-request-id"], mine}) == 3
    assert one["x-ms-request-id"] != two["x-ms-request-id"]


def test_proxy_html_pages_carry_no_arm_headers(emulator: Emulator) -> None:
    """A proxy's html page (wire `operations: html`) is not ARM's answer: no ARM headers."""
    emulator.set_wire(operations="html")
    status, headers, _ = _call(emulator, "GET", f"/providers/Microsoft.ManagementPartner/operations{Q}")
    assert status == 200 and "x-ms-request-id" not in headers


# --- cloud metadata and discovery ------------------------------------------------------------------------


def test_cloud_metadata_endpoints(emulator: Emulator) -> None:
    """GET /metadata/endpoints (no token): this one cloud from 2022-09-01 on (what `az cloud register` reads),
    a list of clouds from 2019-05-01, the legacy object before; `//metadata/endpoints` answers too."""
    status, headers, raw = _call(emulator, "GET", "/metadata/endpoints?api-version=2022-09-01")
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    cloud = json.loads(raw)
    assert _call(emulator, "GET", "//metadata/endpoints?api-version=2022-09-01")[2] == raw
    assert json.loads(_call(emulator, "GET", "/metadata/endpoints?api-version=2019-05-01")[2]) == [cloud]
    assert cloud["resourceManager"] == emulator.arm_endpoint
    assert cloud["authentication"]["loginEndpoint"] == emulator.authority_host + "/"
    assert "https://management.azure.com/" in cloud["authentication"]["audiences"]
    assert cloud["suffixes"]["keyVaultDns"] == "vault.azure.net" and cloud["suffixes"]["mhsmDns"]
    status, _, raw = _call(emulator, "GET", "/metadata/endpoints?api-version=2015-01-01")
    legacy = json.loads(raw)
    assert status == 200 and legacy["authentication"]["loginEndpoint"] == emulator.authority_host + "/"


@pytest.mark.parametrize(("alias", "issuer_tenant"), [("organizations", "{tenantid}"), ("common", "{tenantid}"),
                                                      ("consumers", "9188040d-6c67-4c5b-b112-36a304b66dad")])
def test_multi_tenant_openid_documents(emulator: Emulator, alias: str, issuer_tenant: str) -> None:
    """/organizations, /common and /consumers serve v2.0 discovery documents, as Entra does."""
    status, _, raw = _call(emulator, "GET", f"/{alias}/v2.0/.well-known/openid-configuration")
    doc = json.loads(raw)
    assert status == 200
    assert doc["token_endpoint"] == f"{emulator.url}/{alias}/oauth2/v2.0/token"
    assert doc["issuer"] == f"{emulator.url}/{issuer_tenant}/v2.0"


# --- v1 token endpoint -----------------------------------------------------------------------------------


def test_v1_token_endpoint_with_resource(emulator: Emulator) -> None:
    """POST /{tenant}/oauth2/token with resource=: a v1 answer whose token ARM accepts; no resource is 400."""
    r = identity(emulator, "sp-secret")
    form = {"grant_type": "client_credentials", "client_id": r.client_id,
            "client_secret": vault_value(emulator, "sp-secret"), "resource": "https://management.core.windows.net/"}
    ctype = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, raw = _call(emulator, "POST", f"/{TENANT_A}/oauth2/token", headers=ctype, body=urlencode(form))
    answer = json.loads(raw)
    assert status == 200 and answer["resource"] == "https://management.core.windows.net/"
    assert answer["expires_in"] == "3600" and int(answer["expires_on"]) > int(answer["not_before"])
    arm_status, _, arm_raw = _call(emulator, "GET", f"{PARTNERS}{Q}",
                                   headers={"Authorization": f"Bearer {answer['access_token']}"})
    assert arm_status == 404 and json.loads(arm_raw)["code"] == "ManagementPartnerNotFound"
    del form["resource"]
    status, _, raw = _call(emulator, "POST", f"/{TENANT_A}/oauth2/token", headers=ctype, body=urlencode(form))
    assert status == 400 and json.loads(raw)["error_codes"] == [900144]


# --- role definitions ------------------------------------------------------------------------------------


def test_role_definitions_list_with_the_sdk(emulator: Emulator) -> None:
    """AuthorizationManagementClient lists role definitions at a scope, and filters by roleName."""
    from azure.mgmt.authorization import AuthorizationManagementClient

    sub = "5ab5ab5a-0000-4000-8000-000000000005"
    cred = identity_credential(emulator, identity(emulator, "sp-secret"))
    client = AuthorizationManagementClient(cred, sub, base_url=emulator.arm_endpoint,
                                           connection_verify=emulator.ca_path, retry_total=0)
    every = list(client.role_definitions.list(f"/subscriptions/{sub}"))
    assert {"Owner", "Reader", "Contributor"} <= {d.role_name for d in every}
    (owner,) = client.role_definitions.list(f"/subscriptions/{sub}", filter="roleName eq 'Owner'")
    assert owner.name == "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
    assert owner.id == f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{owner.name}"


# --- Microsoft Graph (what `az role assignment list --assignee` reads) ------------------------------------


def test_graph_service_principal_lookups(emulator: Emulator) -> None:
    """servicePrincipals by name (appId) and directoryObjects/getByIds answer the caller's tenant only; a
    token is required; an unsupported $filter is 400, not a silent full list."""
    r = identity(emulator, "sp-secret")
    other = identity(emulator, "sp-pfx")  # another tenant: invisible
    auth = {"Authorization": "Bearer " + issue_token_for(emulator, r.tenant_id, r.client_id, emulator.url + "/")}
    spn = "servicePrincipalNames/any(c:c eq '{}')"
    q = "/v1.0/servicePrincipals?" + urlencode({"$filter": spn.format(r.client_id)})
    status, _, raw = _call(emulator, "GET", q, headers=auth)
    (sp,) = json.loads(raw)["value"]
    assert status == 200 and (sp["id"], sp["appId"]) == (r.object_id, r.client_id)
    assert sp["@odata.type"] == "#microsoft.graph.servicePrincipal"
    q_other = "/v1.0/servicePrincipals?" + urlencode({"$filter": spn.format(other.client_id)})
    assert json.loads(_call(emulator, "GET", q_other, headers=auth)[2])["value"] == []
    body = json.dumps({"ids": [r.object_id, other.object_id], "types": ["servicePrincipal"]})
    status, _, raw = _call(emulator, "POST", "/v1.0/directoryObjects/getByIds",
                           headers={**auth, "Content-Type": "application/json"}, body=body)
    assert status == 200 and [o["id"] for o in json.loads(raw)["value"]] == [r.object_id]
    assert _call(emulator, "GET", q)[0] == 401
    bad = "/v1.0/servicePrincipals?" + urlencode({"$filter": "displayName eq 'x'"})
    assert _call(emulator, "GET", bad, headers=auth)[0] == 400


# --- operator / app clash --------------------------------------------------------------------------------

OP_TENANT = "0e0e0e0e-0000-4000-8000-000000000001"
OP_CLIENT = "0e0e0e0e-0000-4000-8000-0000000000c1"


@pytest.mark.parametrize("world", [
    {"operator": {"tenant": OP_TENANT, "client_id": OP_CLIENT},
     "tenants": [{"tenant_id": TENANT_A, "apps": [{"client_id": OP_CLIENT}]}]},
    {"operator": {"tenant": OP_TENANT, "client_id": OP_CLIENT},
     "identities": [{"tenant": TENANT_A, "client_id": OP_CLIENT}]},
])
def test_operator_client_id_equal_to_an_app_is_refused(world: dict[str, Any]) -> None:
    """An operator whose client ID is also an app (in tenants, or an identity) is a WorldError that says why."""
    with pytest.raises(WorldError, match=rf"operator client_id {OP_CLIENT} is also an app in tenant {TENANT_A}"):
        World.from_dict(world)


def test_operator_may_be_set_again() -> None:
    """Setting the same operator again is not a clash with itself."""
    world = World.from_dict({"operator": {"tenant": OP_TENANT, "client_id": OP_CLIENT}})
    assert world.set_operator(OP_TENANT, OP_CLIENT).client_id == OP_CLIENT
