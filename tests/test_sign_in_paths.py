"""Every sign-in path from the guides: managed identity, workload identity federation, and `--self`."""

from __future__ import annotations

import csv
import socket
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import OPERATOR_TENANT, PARTNER_ID
from test_link import Cli

from orchestrator.emulator import Emulator, mint_federated_assertion
from orchestrator.journal import Journal

TENANT = "eeeeeeee-0000-4000-8000-00000000000e"
MI_CLIENT = "11111111-0000-4000-8000-000000000001"
PIPELINE_CLIENT = "22222222-0000-4000-8000-000000000002"
ISSUER = "https://token.actions.example/"
SUBJECT = "repo:contoso/pal:ref:refs/heads/main"

WORLD: dict[str, Any] = {
    "operator": {"tenant": OPERATOR_TENANT},
    "vaults": [{"name": "pal-vault"}],
    "partners": [{"partner_id": PARTNER_ID, "name": "Contoso Partner"}],
    "federated_issuers": [ISSUER],
    "tenants": [{
        "tenant_id": TENANT,
        "apps": [
            {"client_id": MI_CLIENT, "managed_identity": True},
            {"client_id": PIPELINE_CLIENT, "federated_credentials": [{"issuer": ISSUER, "subject": SUBJECT}]},
        ],
    }],
}


@pytest.fixture
def setup(emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Cli, Emulator]:
    em = emulator_factory(WORLD)
    return Cli(em, tmp_path, monkeypatch), em


def _inventory(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["customer", "tenant_id", "client_id", "credential_type", "token_file"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _statuses(cli: Cli) -> dict[str, tuple[str, str | None]]:
    with Journal(cli.journal) as j:
        return {o.client_id: (o.status.value, o.error_code) for o in j.outcomes(j.runs()[-1].run_id)}


def test_managed_identity_row_links_then_reruns_read_only(
    setup: tuple[Cli, Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A managed_identity row signs in through the (emulated) identity endpoint, links, and re-runs read-only."""
    cli, em = setup
    monkeypatch.setenv("IDENTITY_ENDPOINT", em.imds_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", em.identity_header)
    inv = _inventory(tmp_path / "mi.csv", [{"customer": "Home tenant", "tenant_id": TENANT, "client_id": MI_CLIENT,
                                            "credential_type": "managed_identity", "token_file": ""}])
    result = cli("link", inv)
    assert result.exit_code == 0, result.output
    assert _statuses(cli)[MI_CLIENT][0] == "linked"
    assert not [r for r in em.requests if r.service == "keyvault"]  # no Key Vault read for this kind
    assert cli("link", inv).exit_code == 0
    assert _statuses(cli)[MI_CLIENT][0] == "already_linked"


def test_managed_identity_without_an_endpoint_fails_cleanly(
    setup: tuple[Cli, Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An identity endpoint that does not answer makes the row fail with a code; the run still completes."""
    cli, _ = setup
    with socket.socket() as s:  # a loopback port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("IDENTITY_ENDPOINT", f"https://127.0.0.1:{port}/metadata/identity/oauth2/token")
    monkeypatch.setenv("IDENTITY_HEADER", "x")
    inv = _inventory(tmp_path / "mi.csv", [{"customer": "Home", "tenant_id": TENANT, "client_id": MI_CLIENT,
                                            "credential_type": "managed_identity", "token_file": ""}])
    result = cli("link", inv, "--max-attempts", "2")
    assert result.exit_code == 1, result.output
    status, code = _statuses(cli)[MI_CLIENT]
    assert status in ("sign_in_failed", "failed") and code


def test_federated_row_links_with_a_token_file_and_reruns_read_only(
    setup: tuple[Cli, Emulator], tmp_path: Path
) -> None:
    """A federated row signs in with the assertion from its token file (no stored secret), links, re-runs read-only."""
    cli, em = setup
    token_file = tmp_path / "oidc.jwt"
    token_file.write_text(mint_federated_assertion(em, ISSUER, SUBJECT))
    inv = _inventory(tmp_path / "fed.csv", [{"customer": "Pipeline", "tenant_id": TENANT,
                                             "client_id": PIPELINE_CLIENT, "credential_type": "federated",
                                             "token_file": str(token_file)}])
    result = cli("link", inv)
    assert result.exit_code == 0, result.output
    assert _statuses(cli)[PIPELINE_CLIENT][0] == "linked"
    writes = sum(1 for r in em.requests if r.method in ("PUT", "PATCH", "DELETE"))
    assert cli("link", inv).exit_code == 0  # the re-run reads only
    assert _statuses(cli)[PIPELINE_CLIENT][0] == "already_linked"
    assert sum(1 for r in em.requests if r.method in ("PUT", "PATCH", "DELETE")) == writes


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({"audience": "api://wrong"}, "sign_in_failed", "AADSTS700211"),
        ({"lifetime_s": -60, "issued_at": 1_000_000_000}, "credential_expired", "AADSTS700024"),
    ],
)
def test_federated_assertion_refusals_are_clean_outcomes(
    setup: tuple[Cli, Emulator], tmp_path: Path, kwargs: dict[str, Any], status: str, code: str
) -> None:
    """A wrong audience or an expired assertion ends as a clear outcome with the AADSTS code."""
    cli, em = setup
    token_file = tmp_path / "oidc.jwt"
    token_file.write_text(mint_federated_assertion(em, ISSUER, SUBJECT, **kwargs))
    inv = _inventory(tmp_path / "fed.csv", [{"customer": "Pipeline", "tenant_id": TENANT,
                                             "client_id": PIPELINE_CLIENT, "credential_type": "federated",
                                             "token_file": str(token_file)}])
    assert cli("link", inv).exit_code == 1
    assert _statuses(cli)[PIPELINE_CLIENT] == (status, code)


def test_self_links_the_signed_in_identity(setup: tuple[Cli, Emulator], tmp_path: Path) -> None:
    """link --self links the operator's own identity, says who it is, and re-runs read-only."""
    cli, em = setup
    first = cli.run_self("link")
    assert first.exit_code == 0, first.output
    assert em.operator.client_id in first.output and OPERATOR_TENANT in first.output
    with Journal(cli.journal) as j:
        outcomes = j.outcomes(j.runs()[-1].run_id)
    assert [o.status.value for o in outcomes] == ["linked"]
    second = cli.run_self("link")
    assert second.exit_code == 0
    assert "already_linked" in second.output
    audit = cli.run_self("audit")
    assert audit.exit_code == 0
