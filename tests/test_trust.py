"""The operator's tokens go only to vaults the run was configured to trust (issue 18, item 1)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from test_reliability_faults import make_world, never_sleep, operator_env, options, outcomes, write_rows

from orchestrator.credentials import VaultOnlyCredential
from orchestrator.runner import execute
from orchestrator.trust import VaultTrust


def _two_cas(tmp_path: Path, *ems: Any) -> str:
    bundle = tmp_path / "ca-bundle.pem"
    bundle.write_text("".join(Path(em.ca_path).read_text() for em in ems))
    return str(bundle)


def test_a_row_naming_another_https_host_gets_no_token_and_is_skipped_with_the_fix(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second HTTPS server on 127.0.0.1 (trusted by --ca-bundle) named by one row's secret_uri receives no
    request at all — not the warm-up, not the read — and that row is skipped naming --vault-host-suffix."""
    em = emulator_factory(make_world(3))
    other = emulator_factory(make_world(1))
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    text = inv.read_text().splitlines()
    text[1] = text[1].replace(em.url, other.url)
    inv.write_text("\n".join(text) + "\n")
    other.reset_log()

    result = execute(options(em, inv, tmp_path, ca_bundle=_two_cas(tmp_path, em, other)), sleep=never_sleep())
    assert other.requests == []
    assert result.counts == {"linked": 2, "skipped": 1}
    skipped = next(o for o in outcomes(result) if o.status.value == "skipped")
    assert "--vault-host-suffix" in (skipped.error_message or "") and skipped.line == 2


def test_a_vault_given_with_key_vault_is_trusted(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The origins of --key-vault (and --authority-host, --arm-endpoint) are trusted."""
    em = emulator_factory(make_world(2))
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    result = execute(options(em, inv, tmp_path, key_vault=em.vault_url("pal-vault")), sleep=never_sleep())
    assert result.counts == {"linked": 2}


def test_trust_by_origin_and_host_suffix() -> None:
    """Scheme, host and port must match an origin; a suffix matches on a dot boundary and https only."""
    trust = VaultTrust.configured(["https://127.0.0.1:8443/", None], ["vault.local.azurestack.external"])
    assert trust.allows("https://127.0.0.1:8443/vaults/ops")
    assert not trust.allows("https://127.0.0.1:9443/vaults/ops")
    assert trust.allows("https://ops.vault.local.azurestack.external")
    assert not trust.allows("https://evilvault.local.azurestack.external")
    assert not trust.allows("http://ops.vault.local.azurestack.external")


class _Inner:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("operator-token", 0)

    async def close(self) -> None:
        return None


def test_the_operator_credential_for_vaults_never_mints_an_arm_token() -> None:
    """A challenge naming the ARM audience (verification off for custom clouds) gets no operator token."""
    credential = VaultOnlyCredential(_Inner(), "https://127.0.0.1:8443/")  # type: ignore[arg-type]
    assert asyncio.run(credential.get_token("https://vault.azure.net/.default")).token == "operator-token"
    for scope in ("https://127.0.0.1:8443/.default", "https://management.azure.com/.default"):
        with pytest.raises(ClientAuthenticationError, match="not a Key Vault resource"):
            asyncio.run(credential.get_token(scope))
