"""The per-column validator table (orchestrator.inventory.columns) on its own, without a file around it."""

from __future__ import annotations

from orchestrator.inventory.columns import VALIDATORS, Cells, validate
from orchestrator.inventory.defaults import NO_DEFAULTS, InventoryDefaults, Scope
from orchestrator.inventory.schema import COLUMNS, Fault
from orchestrator.inventory.vaults import Vaults
from orchestrator.models import Cloud, CredentialType

T1 = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
C1 = "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b"


def cells(defaults: InventoryDefaults = NO_DEFAULTS, **text: str) -> Cells:
    return Cells(text, Scope.of_options(defaults), Vaults())


def test_every_column_has_one_validator() -> None:
    """The table holds exactly one validator per known column."""
    assert sorted(VALIDATORS) == sorted(COLUMNS)


def test_validators_return_clean_values() -> None:
    """A valid row comes back as clean values: GUIDs lower-cased without braces, a vault URL built from a name."""
    row = cells(
        customer=" Contoso ",
        tenant_id="{" + T1.upper() + "}",
        client_id=C1,
        key_vault="kv-ops",
        secret_name="sp-a",
        partner_id="1234567",
    )
    assert validate(row) == []
    assert row.clean["tenant_id"] == T1
    assert row.clean["key_vault"] == "https://kv-ops.vault.azure.net"
    assert row.clean["cloud"] is Cloud.PUBLIC and row.clean["credential_type"] is None


def test_a_fault_says_what_and_how_and_may_name_another_column() -> None:
    """Each fault carries its fix; a location conflict is reported on the column to clear."""
    row = cells(
        customer="A", tenant_id=T1, client_id=C1, partner_id="1234567", credential_type="managed identity",
        secret_name="sp-a",
    )
    ((column, fault),) = validate(row)
    assert column == "secret_name"
    assert fault == Fault(
        "credential_type managed_identity reads no Key Vault secret",
        "clear secret_uri/secret_name, or set credential_type to secret or certificate",
        column="secret_name",
    )
    assert row.clean["credential_type"] is CredentialType.MANAGED_IDENTITY
