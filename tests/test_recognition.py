"""Recognition: a linked identity earns credit only through PEC-eligible role assignments; we classify them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import OPERATOR_TENANT, PARTNER_ID
from test_link import Cli, write_inventory

from orchestrator.emulator import Emulator
from orchestrator.journal import Journal
from orchestrator.models import RoleGrant
from orchestrator.recognition import classify_grants, grant_for, pec_roles

TENANT = "cccccccc-0000-4000-8000-00000000000c"
SUB = "5ab5ab00-0000-4000-8000-000000000001"
CUSTOM_ROLE = "0badc0de-0000-4000-8000-000000000001"

WORLD: dict[str, Any] = {
    "operator": {"tenant": OPERATOR_TENANT},
    "vaults": [{"name": "pal-vault"}],
    "partners": [{"partner_id": PARTNER_ID, "name": "Contoso Partner"}],
    "identities": [
        {"tenant": TENANT, "secret_name": "eligible", "roles": {SUB: ["Support Request Contributor"]}},
        {"tenant": TENANT, "secret_name": "reader-only", "roles": {SUB: ["Reader"]}},
        {"tenant": TENANT, "secret_name": "no-roles"},
        {"tenant": TENANT, "secret_name": "custom-only", "roles": {SUB: [CUSTOM_ROLE]}},
        {"tenant": TENANT, "secret_name": "forbidden", "roles": {SUB: ["Owner"]}, "role_read_forbidden": True},
        {"tenant": TENANT, "secret_name": "mixed", "roles": {SUB: ["Reader", "Contributor"]}},
    ],
}


@pytest.fixture
def world_cli(emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Cli, Emulator]:
    em = emulator_factory(WORLD)
    return Cli(em, tmp_path, monkeypatch), em


def _recognition(cli: Cli, em: Emulator) -> dict[str, tuple[str, int, list[str]]]:
    names = {r.client_id: r.secret_name for r in em.world.identities}
    with Journal(cli.journal) as j:
        run = j.runs()[-1]
        out: dict[str, tuple[str, int, list[str]]] = {}
        for o in j.outcomes(run.run_id):
            rec = o.recognition
            assert rec is not None, o
            out[names[o.client_id]] = (
                rec.recognition.value, rec.subscriptions, [g.role_name for g in rec.grants if g.eligibility == "yes"]
            )
        return out


def test_each_recognition_value_comes_from_the_wire(world_cli: tuple[Cli, Emulator], tmp_path: Path) -> None:
    """eligible / not_eligible / no_roles / unknown (custom role, 403 on the role read) per identity."""
    cli, em = world_cli
    inv = write_inventory(tmp_path / "inv.csv", em, em.world.identities)
    result = cli("link", inv)
    assert result.exit_code == 0, result.output
    got = _recognition(cli, em)
    assert got["eligible"] == ("eligible", 1, ["Support Request Contributor"])
    assert got["reader-only"][0] == "not_eligible"
    assert got["no-roles"] == ("no_roles", 0, [])
    assert got["custom-only"][0] == "unknown"
    assert got["forbidden"][0] == "unknown"
    assert got["mixed"] == ("eligible", 1, ["Contributor"])


def test_forbidden_role_read_is_unknown_and_the_run_goes_on(world_cli: tuple[Cli, Emulator], tmp_path: Path) -> None:
    """A 403 on role assignments makes recognition unknown with its code; the link itself still succeeds."""
    cli, em = world_cli
    records = [r for r in em.world.identities if r.secret_name in ("forbidden", "eligible")]
    inv = write_inventory(tmp_path / "inv.csv", em, records)
    assert cli("link", inv).exit_code == 0
    with Journal(cli.journal) as j:
        outcomes = {o.client_id: o for o in j.outcomes(j.runs()[-1].run_id)}
    forbidden = next(r for r in records if r.secret_name == "forbidden")
    o = outcomes[forbidden.client_id]
    assert o.status.value == "linked"
    assert o.recognition is not None and o.recognition.error_code == "AuthorizationFailed"


def test_covered_but_not_recognised_customer_in_summary(world_cli: tuple[Cli, Emulator], tmp_path: Path) -> None:
    """A customer linked only through a Reader identity is covered but not recognised in summary.json."""
    cli, em = world_cli
    reader = next(r for r in em.world.identities if r.secret_name == "reader-only")
    eligible = next(r for r in em.world.identities if r.secret_name == "eligible")
    inv = write_inventory(
        tmp_path / "inv.csv", em, [reader, eligible],
        **{"reader-only": {"customer": "Reader Co"}, "eligible": {"customer": "Eligible Co"}},
    )
    assert cli("link", inv).exit_code == 0
    summary = json.loads((cli.reports / "latest" / "summary.json").read_text())
    assert summary["customers"] == {"total": 2, "covered": 2}
    assert summary["recognition"]["recognised"] == 1


def test_no_recognition_skips_the_extra_reads(world_cli: tuple[Cli, Emulator], tmp_path: Path) -> None:
    """--no-recognition sends no subscription or role-assignment request."""
    cli, em = world_cli
    inv = write_inventory(tmp_path / "inv.csv", em, em.world.identities[:2])
    assert cli("link", inv, "--no-recognition").exit_code == 0
    assert not [r for r in em.requests if "subscriptions" in r.path.lower()]


def test_classification_matches_on_guid_not_name() -> None:
    """Role definitions are matched by GUID from pec-roles.csv; names are only for display."""
    table = pec_roles()
    assert table["b24988ac-6180-42a0-ab88-20f7382dd24c"] == ("Contributor", "yes")
    assert table["acdd72a7-3385-48ef-bd42-f606fba81ae7"] == ("Reader", "no")
    grant = grant_for("/subscriptions/x", "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/"
                      "B24988AC-6180-42A0-AB88-20F7382DD24C")
    assert grant.eligibility == "yes" and grant.role_name == "Contributor"
    assert classify_grants([], 0).recognition.value == "no_roles"
    unknown = RoleGrant("/s", CUSTOM_ROLE, "custom", "unknown")
    no = RoleGrant("/s", "r", "Reader", "no")
    assert classify_grants([unknown, no], 1).recognition.value == "unknown"
    assert classify_grants([no], 1).recognition.value == "not_eligible"
