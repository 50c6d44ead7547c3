"""Zero secrets: customer tenants linked through one multi-tenant app that trusts a managed identity.

Real azure-identity over HTTPS against the emulator (loopback only): the managed identity is found through
IDENTITY_ENDPOINT/IDENTITY_HEADER (App Service style), its token is the app's client assertion in each tenant.
"""

from __future__ import annotations

import asyncio
import csv
import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import OPERATOR_TENANT, PARTNER_ID
from test_link import Cli
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.emulator import Emulator
from orchestrator.errors import OperatorAuthError
from orchestrator.federation import FederationTokens
from orchestrator.journal import Journal
from orchestrator.retrying import CallStats, Retrier
from orchestrator.settings import DEFAULT_RETRY
from orchestrator.transport import SharedTransport

HOME = "0f0f0f0f-0000-4000-8000-00000000000f"  # the partner's tenant: the identity and the app live here
MI_CLIENT = "3a3a3a3a-0000-4000-8000-000000000001"
MI_OBJECT = "3b3b3b3b-0000-4000-8000-000000000001"
APP = "4a4a4a4a-0000-4000-8000-000000000001"
ISSUER = "{authority}/" + HOME + "/v2.0"  # the emulator's authority URL, filled in when it listens
EXCHANGE = "api://AzureADTokenExchange"
SPARE = "5c5c5c5c-0000-4000-8000-00000000ffff"  # a customer tenant that never consented the app


def customer(n: int) -> str:
    return f"c0c0c0c0-0000-4000-8000-{n:012d}"


def _app(client_id: str, tenants: list[str], *, issuer: str = ISSUER, subject: str = MI_OBJECT,
         audiences: tuple[str, ...] = (EXCHANGE,)) -> dict[str, Any]:
    return {"client_id": client_id, "multi_tenant": True, "consented_in": tenants,
            "federated_credentials": [{"issuer": issuer, "subject": subject, "audiences": list(audiences)}]}


def world(customers: int, *, apps: tuple[dict[str, Any], ...] = (), **extra: Any) -> dict[str, Any]:
    tenants = [customer(n) for n in range(customers)]
    return {
        "operator": {"tenant": OPERATOR_TENANT},
        "partners": [{"partner_id": PARTNER_ID, "name": "Contoso Partner"}],
        "tenants": [{"tenant_id": HOME, "apps": [_app(APP, tenants), *apps]},
                    *({"tenant_id": t} for t in [*tenants, SPARE])],
        "managed_identities": [{"tenant": HOME, "client_id": MI_CLIENT, "object_id": MI_OBJECT}],
        **extra,
    }


def inventory(path: Path, rows: list[tuple[str, str]], *, column: bool = False) -> Path:
    """(tenant, app) rows of credential_type mi_federation; with `column`, each names the identity itself."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer", "tenant_id", "client_id", "credential_type", "federation_identity"])
        for n, (tenant, client) in enumerate(rows):
            writer.writerow([f"Customer {n}", tenant, client, "mi_federation", MI_CLIENT if column else ""])
    return path


@pytest.fixture
def found(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point azure-identity's own discovery at an emulator's identity endpoint (App Service style)."""

    def point(em: Emulator) -> Emulator:
        monkeypatch.setenv("IDENTITY_ENDPOINT", em.imds_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", em.identity_header)
        return em

    return point


def _outcomes(cli: Cli) -> dict[str, Any]:
    with Journal(cli.journal) as j:
        return {o.tenant_id: o for o in j.outcomes(j.runs()[-1].run_id)}


def _mi_requests(em: Emulator) -> int:
    return sum(1 for r in em.requests if r.service == "imds")


def test_200_customers_link_through_one_managed_identity_token(
    emulator_factory: Any, found: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """200 customer tenants link as the app's per-tenant service principal with one managed-identity token request,
    no Key Vault request, each link keyed by that tenant's own object ID; a re-run only reads."""
    em = found(emulator_factory(world(200)))
    cli = Cli(em, tmp_path, monkeypatch)
    inv = inventory(tmp_path / "fed.csv", [(customer(n), APP) for n in range(200)])
    result = cli("link", inv, "--federation-identity", MI_CLIENT, "--concurrency", "32", "--no-recognition")
    assert result.exit_code == 0, result.output
    outcomes = _outcomes(cli)
    assert {o.status.value for o in outcomes.values()} == {"linked"}
    assert {o.credential_type for o in outcomes.values()} == {"managed_identity_federation"}
    assert _mi_requests(em) == 1
    assert not [r for r in em.requests if r.service == "keyvault"]
    object_ids = {o.object_id for o in outcomes.values()}
    assert len(object_ids) == 200  # one service principal per consented tenant
    for n in (0, 199):
        sp = em.world.app(customer(n), APP)
        assert sp is not None and em.link(customer(n), sp.object_id) is not None
    writes = sum(1 for r in em.requests if r.method in ("PUT", "PATCH", "DELETE"))
    assert cli("link", inv, "--federation-identity", MI_CLIENT, "--no-recognition").exit_code == 0
    assert {o.status.value for o in _outcomes(cli).values()} == {"already_linked"}
    assert sum(1 for r in em.requests if r.method in ("PUT", "PATCH", "DELETE")) == writes


def test_concurrent_rows_wait_for_one_fetch_and_refresh_before_expiry(emulator_factory: Any, found: Any) -> None:
    """Fifty rows asking at once share one fetch; the token is fetched again only once past its refresh time
    (half of a short life), never per row."""
    em = found(emulator_factory(world(1, mi_token_lifetime_s=120)))
    now = [time.time()]

    async def scenario() -> list[int]:
        async with SharedTransport(ca_bundle=str(em.ca_path), limit=8, timeout_s=5) as transport:
            tokens = FederationTokens(transport, Retrier(DEFAULT_RETRY), clock=lambda: now[0])
            seen = []
            first = await asyncio.gather(*(tokens.token(MI_CLIENT, EXCHANGE, CallStats()) for _ in range(50)))
            assert len({t.token for t in first}) == 1
            seen.append(_mi_requests(em))
            now[0] = first[0].expires_on - 70  # before the half-life mark: the same token
            await tokens.token(MI_CLIENT, EXCHANGE, CallStats())
            seen.append(_mi_requests(em))
            now[0] = first[0].expires_on - 50  # past it: one refresh, shared again
            await asyncio.gather(*(tokens.token(MI_CLIENT, EXCHANGE, CallStats()) for _ in range(10)))
            seen.append(_mi_requests(em))
            return seen

    assert asyncio.run(scenario()) == [1, 1, 2]


def test_a_short_lived_token_is_refreshed_during_a_run(
    emulator_factory: Any, found: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the emulator's managed-identity tokens living 2 s, a run that outlasts them refreshes the token (a few
    requests, not one per row) and every row still links."""
    em = found(emulator_factory(world(40, mi_token_lifetime_s=2), latency_s=0.02))
    cli = Cli(em, tmp_path, monkeypatch)
    inv = inventory(tmp_path / "fed.csv", [(customer(n), APP) for n in range(40)], column=True)
    result = cli("link", inv, "--concurrency", "4", "--no-recognition")
    assert result.exit_code == 0, result.output
    assert {o.status.value for o in _outcomes(cli).values()} == {"linked"}
    assert 2 <= _mi_requests(em) < 40


BAD_ISSUER, BAD_SUBJECT, BAD_AUDIENCE = (f"4a4a4a4a-0000-4000-8000-00000000000{n}" for n in (2, 3, 4))


def test_each_refusal_has_its_outcome_and_the_fix(
    emulator_factory: Any, found: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A federated credential with the wrong issuer, subject or audience is credential_invalid naming what it must
    trust (from the identity's own token); a tenant that never consented the app is sign_in_failed with the
    admin-consent link; the good row still links."""
    t = [customer(n) for n in range(4)]
    apps = (_app(BAD_ISSUER, [t[1]], issuer="https://sts.windows.net/" + HOME + "/"),
            _app(BAD_SUBJECT, [t[2]], subject="not-the-identity"),
            _app(BAD_AUDIENCE, [t[3]], audiences=("api://AzureADTokenExchangeUSGov",)))
    em = found(emulator_factory(world(4, apps=apps)))
    cli = Cli(em, tmp_path, monkeypatch)
    inv = inventory(tmp_path / "fed.csv", [(t[0], APP), (t[1], BAD_ISSUER), (t[2], BAD_SUBJECT),
                                           (t[3], BAD_AUDIENCE), (SPARE, APP)])
    result = cli("link", inv, "--federation-identity", MI_CLIENT, "--no-recognition")
    assert result.exit_code == 1, result.output
    out = _outcomes(cli)
    assert out[t[0]].status.value == "linked"
    trust = f"issuer {em.authority_host}/{HOME}/v2.0 subject {MI_OBJECT} audience {EXCHANGE}"
    for tenant, code in ((t[1], "AADSTS700211"), (t[2], "AADSTS700213"), (t[3], "AADSTS700212")):
        assert (out[tenant].status.value, out[tenant].error_code) == ("credential_invalid", code)
        assert f"the app's federated credential must trust {trust}" in out[tenant].error_message
    spare = out[SPARE]
    assert (spare.status.value, spare.error_code) == ("sign_in_failed", "AADSTS700016")
    assert spare.error_message == (f"an admin of this customer must consent the app: "
                                   f"{em.authority_host}/{SPARE}/adminconsent?client_id={APP}")


@pytest.mark.parametrize("where", ["closed port", "unknown identity"])
def test_no_managed_identity_is_a_run_level_error_before_any_row(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """Without a reachable managed identity (nothing listening, or an identity not attached here) the run stops
    before any row with one message and the fix; no customer tenant is asked for a token."""
    em = emulator_factory(world(2))
    cli = Cli(em, tmp_path, monkeypatch)
    if where == "closed port":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"https://127.0.0.1:{port}/metadata/identity/oauth2/token")
        monkeypatch.setenv("IDENTITY_HEADER", "x")
        identity = MI_CLIENT
    else:
        monkeypatch.setenv("IDENTITY_ENDPOINT", em.imds_endpoint)
        monkeypatch.setenv("IDENTITY_HEADER", em.identity_header)
        identity = "9e9e9e9e-0000-4000-8000-000000000009"
    inv = inventory(tmp_path / "fed.csv", [(customer(0), APP), (customer(1), APP)])
    result = cli("link", inv, "--federation-identity", identity, "--max-attempts", "2")
    assert result.exit_code == OperatorAuthError.exit_code, result.output
    assert "no managed identity here: run where the identity is attached" in result.output
    assert identity in result.output
    with Journal(cli.journal) as j:
        assert j.outcomes(j.runs()[-1].run_id) == []
    assert not [r for r in em.requests if r.service == "entra" and customer(0) in r.path]


def test_secrets_certificates_and_federation_in_one_run(
    emulator_factory: Any, found: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One inventory mixing Key Vault secrets, certificates and federation rows links them all; only the secret
    and certificate rows read Key Vault."""
    mixed = world(3, identities=[
        {"tenant": customer(0), "credential": "secret", "secret_name": "sp-secret"},
        {"tenant": customer(1), "credential": "certificate-pem", "secret_name": "sp-pem"},
        {"tenant": customer(2), "credential": "certificate-pfx", "secret_name": "sp-pfx"},
    ])
    em = found(emulator_factory(mixed))
    cli = Cli(em, tmp_path, monkeypatch)
    path = tmp_path / "mixed.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer", "tenant_id", "client_id", "secret_uri", "credential_type", "federation_identity"])
        for rec in em.world.identities:
            writer.writerow([f"Vault {rec.secret_name}", rec.tenant_id, rec.client_id,
                             f"{em.vault_url(rec.vault)}/secrets/{rec.secret_name}", "", ""])
        for n in range(3):
            writer.writerow([f"Fed {n}", customer(n), APP, "", "federated_managed_identity", MI_CLIENT])
    result = cli("link", path, "--no-recognition")
    assert result.exit_code == 0, result.output
    with Journal(cli.journal) as j:
        outcomes = j.outcomes(j.runs()[-1].run_id)
    kinds = sorted((o.credential_type or "", o.status.value) for o in outcomes)
    assert kinds == [("certificate", "linked")] * 2 + [("managed_identity_federation", "linked")] * 3 + [
        ("secret", "linked")]
    vault_paths = [r.path for r in em.requests if r.service == "keyvault"]
    assert vault_paths and all("/secrets/sp-" in p for p in vault_paths)
    assert _mi_requests(em) == 1
    # the report: nothing to rotate for federation
    with (cli.reports / "latest" / "identities.csv").open(newline="") as fh:
        expiry = {row["customer"]: row["credential_expires_on"] for row in csv.DictReader(fh)}
    assert [expiry[f"Fed {n}"] for n in range(3)] == ["no secret"] * 3
    assert expiry["Vault sp-pem"] not in ("", "no secret")


def test_federation_check_prints_what_the_credential_must_trust(emulator_factory: Any, found: Any) -> None:
    """federation-check reads the identity's own token and prints issuer, subject and audience — never the token."""
    em = found(emulator_factory(world(1)))
    argv = ["federation-check", "--federation-identity", MI_CLIENT, "--client-id", APP,
            "--ca-bundle", str(em.ca_path)]
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"issuer    {em.authority_host}/{HOME}/v2.0" in result.output
    assert f"subject   {MI_OBJECT}" in result.output
    assert f"audience  {EXCHANGE}" in result.output
    assert f"az ad app federated-credential create --id {APP}" in result.output
    assert "eyJ" not in result.output  # no JWT
    as_json = CliRunner().invoke(app, [*argv, "--output", "json"], catch_exceptions=False)
    assert json.loads(as_json.output)["subject"] == MI_OBJECT


# -- the inventory -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["managed_identity_federation", "mi_federation", "managed-identity-federation",
                                      "federated_managed_identity", "MI Federation"])
def test_every_obvious_spelling_is_a_federation_row(tmp_path: Path, spelling: str) -> None:
    """The credential type is read in its common spellings; the option supplies the identity."""
    from orchestrator.inventory import InventoryDefaults, load_inventory
    from orchestrator.models import CredentialType

    path = tmp_path / "inv.csv"
    path.write_text(f"customer,tenant_id,client_id,credential_type,partner_id\nA,{customer(1)},{APP},{spelling},"
                    f"{PARTNER_ID}\n")
    inv = load_inventory(path, defaults=InventoryDefaults(federation_identity=MI_CLIENT.upper()))
    assert not inv.problems
    (row,) = inv.identities
    assert row.credential_type is CredentialType.MANAGED_IDENTITY_FEDERATION
    assert (row.federation_identity, row.secret_uri) == (MI_CLIENT, None)


def test_a_federation_row_without_an_identity_names_file_line_and_fix(tmp_path: Path) -> None:
    """Neither the column nor the option: the row is skipped with FILE:LINE and how to fix it; a federation_identity
    on a secret row is refused too; the option (here as the loader's default) mends the first row."""
    path = tmp_path / "inv.csv"
    path.write_text("customer,tenant_id,client_id,credential_type,federation_identity,secret_name,partner_id\n"
                    f"A,{customer(1)},{APP},mi_federation,,,{PARTNER_ID}\n"
                    f"B,{customer(2)},{APP},secret,{MI_CLIENT},sp-b,{PARTNER_ID}\n"
                    f"C,{customer(3)},{APP},mi_federation,not-a-guid,,{PARTNER_ID}\n")
    result = CliRunner().invoke(app, ["validate", str(path), "--key-vault", "my-vault"])
    assert result.exit_code == 2
    assert (f"{path}:2: federation_identity: no managed identity to federate from — pass --federation-identity "
            "CLIENT_ID or fill federation_identity") in result.output
    assert f"{path}:3: federation_identity: is only used with credential_type managed_identity_federation" in (
        result.output)
    assert f"{path}:4: federation_identity: 'not-a-guid' is not a managed identity's client ID" in result.output
    from orchestrator.inventory import InventoryDefaults, load_inventory

    fixed = load_inventory(path, defaults=InventoryDefaults(key_vault="my-vault", federation_identity=MI_CLIENT))
    assert [(p.line, p.column) for p in fixed.problems] == [(3, "federation_identity"), (4, "federation_identity")]


def test_yaml_defaults_and_customer_entries_carry_the_identity(tmp_path: Path) -> None:
    """A top-level `federation_identity:` is every row's default; a customer entry's own value is inherited by its
    identities and wins over the default."""
    from orchestrator.inventory import load_inventory

    other = "3a3a3a3a-0000-4000-8000-000000000002"
    path = tmp_path / "inv.yaml"
    path.write_text(f"""partner_id: "{PARTNER_ID}"
federation_identity: {MI_CLIENT}
customers:
  - customer: Relecloud
    tenant_id: {customer(1)}
    credential_type: mi_federation
    identities: [{{client_id: {APP}}}]
  - customer: VanArsdel
    tenant_id: {customer(2)}
    credential_type: managed_identity_federation
    federation_identity: {other}
    identities: [{{client_id: {APP}}}]
""")
    inv = load_inventory(path)
    assert not inv.problems
    assert [(i.customer, i.federation_identity) for i in inv.identities] == [("Relecloud", MI_CLIENT),
                                                                              ("VanArsdel", other)]


# -- the emulator's token exchange ---------------------------------------------------------------------------


def _exchange(em: Emulator, tenant: str, assertion: str) -> tuple[int, dict[str, Any]]:
    """One client-credentials request as APP in `tenant` with `assertion`, over HTTPS trusting the emulator's CA."""
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    form = urllib.parse.urlencode({
        "grant_type": "client_credentials", "client_id": APP, "scope": "https://management.azure.com/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }).encode()
    url = f"{em.authority_host}/{tenant}/oauth2/v2.0/token"
    request = urllib.request.Request(url, data=form)  # noqa: S310 - an https URL of the loopback emulator
    context = ssl.create_default_context(cafile=str(em.ca_path))
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310 - https only
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_emulator_checks_the_managed_identity_tokens_signature_and_expiry(emulator_factory: Any) -> None:
    """The exchange accepts the emulator's own managed-identity token; the same claims signed by another key are
    refused (50013), an expired token too (700024)."""
    from orchestrator.emulator.crypto import jwt_parts, pool_key, sign_rs256

    em = emulator_factory(world(1))
    mi = em.world.app(HOME, MI_CLIENT)
    assert mi is not None
    good, _ = em._server.issue_token(HOME, mi, EXCHANGE)
    status, body = _exchange(em, customer(0), good)
    assert status == 200 and body["access_token"]
    header, claims, _, _ = jwt_parts(good)
    assert (claims["iss"], claims["sub"], claims["aud"]) == (f"{em.authority_host}/{HOME}/v2.0", MI_OBJECT, EXCHANGE)
    forged = sign_rs256(pool_key(0), claims, {"kid": header["kid"]})
    assert _exchange(em, customer(0), forged)[1]["error_codes"] == [50013]
    expired = sign_rs256(em._server.signing_key, {**claims, "exp": 1_000_000_000}, {"kid": header["kid"]})
    assert _exchange(em, customer(0), expired)[1]["error_codes"] == [700024]


def test_an_imds_host_is_found_the_same_way(emulator_factory: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a VM (IMDS, no IDENTITY_* variables) azure-identity's own discovery finds the identity too: one request."""
    em = emulator_factory(world(1))
    monkeypatch.delenv("IDENTITY_ENDPOINT", raising=False)
    monkeypatch.delenv("IDENTITY_HEADER", raising=False)
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", em.authority_host)  # where IMDS is, on loopback
    result = CliRunner().invoke(app, ["federation-check", "--federation-identity", MI_CLIENT, "--client-id", APP,
                                      "--ca-bundle", str(em.ca_path), "--output", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["issuer"] == f"{em.authority_host}/{HOME}/v2.0"
    assert [(r.service, r.status) for r in em.requests] == [("imds", 200)]


def test_an_interrupted_federation_run_resumes(
    emulator_factory: Any, found: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A federation run cut short resumes like any other: the rows left are linked in the same run, the finished
    ones are not touched, and the resumed process fetches the managed identity's token once more."""
    em = found(emulator_factory(world(6)))
    cli = Cli(em, tmp_path, monkeypatch)
    inv = inventory(tmp_path / "fed.csv", [(customer(n), APP) for n in range(6)])
    assert cli("link", inv, "--federation-identity", MI_CLIENT, "--no-recognition").exit_code == 0
    left = [customer(n) for n in (4, 5)]
    for tenant in left:  # as if the run died before these two: no outcome, no intent, no link
        cli.sql("DELETE FROM outcomes WHERE tenant_id=?", tenant)
        cli.sql("DELETE FROM intents WHERE key=?", f"{tenant}|{APP}")
        sp = em.world.app(tenant, APP)
        assert sp is not None
        em.world.links.pop((tenant, sp.object_id), None)
    cli.sql("UPDATE runs SET finished_at=NULL, exit_code=NULL")
    em.reset_log()
    result = cli("link", inv, "--federation-identity", MI_CLIENT, "--no-recognition", "--resume")
    assert result.exit_code == 0, result.output
    outcomes = _outcomes(cli)
    assert len(outcomes) == 6 and {o.status.value for o in outcomes.values()} == {"linked"}
    assert _mi_requests(em) == 1
    assert {r.tenant for r in em.requests if r.service == "entra"} == set(left)
