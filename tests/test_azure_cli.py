"""The real Azure CLI (azure-cli from PyPI) against the emulator: the rehearsal commands of README.md, as written.

Slow (`make test-all`): the first run installs azure-cli into `<repo>/.venv-azcli` (ignored by git) the way
`make bench` does, and skips with the reason when pip cannot. Every `az` runs with its own AZURE_CONFIG_DIR
under tmp_path, REQUESTS_CA_BUNDLE = the emulator's CA (verification stays on), and proxies pointing at a
dead loopback port, so nothing but 127.0.0.1 is reachable.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.measure import clean_env
from bench.seeds import ensure_azure_cli
from orchestrator.emulator import Emulator

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
AZ_VENV = ROOT / ".venv-azcli"
#: The world of `make run` and of README.md's rehearsal; Contoso is its identity with a secret and a role.
DEMO_WORLD = ROOT / "inventory" / "demo-world.yaml"
TENANT = "1a2b3c4d-0001-4000-8000-000000000001"
CLIENT = "a0000001-0000-4000-8000-000000000001"
SUBSCRIPTION = "c0000001-0000-4000-8000-000000000001"
PARTNER_ID = "4812345"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


class Az:
    """`az` with an isolated config directory, trusting the emulator's CA, unable to reach anything else."""

    def __init__(self, az: Path, ca_path: str, config_dir: Path) -> None:
        self.az = az
        self.env = clean_env({
            "AZURE_CONFIG_DIR": str(config_dir), "REQUESTS_CA_BUNDLE": ca_path,
            "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_SURVEY_MESSAGE": "false",
            "AZURE_CORE_NO_COLOR": "true", "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no",
        })

    def run(self, *args: str) -> str:
        """Run `az ARGS`; its stdout. Fails the test on a non-zero exit, a traceback or an ERROR line."""
        done = subprocess.run([str(self.az), *args], env=self.env, capture_output=True, text=True,
                              timeout=120, check=False)
        shown = " ".join(a if not a.startswith("--password") else "--password=***" for a in args[:4])
        assert done.returncode == 0, f"az {shown} exited {done.returncode}: {done.stderr[-2000:]}"
        assert "Traceback" not in done.stderr and "ERROR" not in done.stderr, f"az {shown}: {done.stderr[-2000:]}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-o", "json"))


@pytest.fixture(scope="module")
def az_path() -> Path:
    """The Azure CLI from PyPI in `.venv-azcli` (installed on first use), or a skip saying why not."""
    az, why = ensure_azure_cli(AZ_VENV)
    if az is None:
        pytest.skip(f"the Azure CLI is not available: {why}")
    return az


@pytest.mark.timeout(2400)  # the first run installs azure-cli from PyPI
def test_azure_cli_rehearsal(az_path: Path, emulator_factory: Any, tmp_path: Path) -> None:
    """The README's rehearsal, command for command: cloud register with endpoint discovery, service principal
    login, `keyvault secret show --id` on the root vault, the partner link by `az rest` (put/get/delete),
    role assignments by assignee (appId or object ID), and logout/account clear, against an emulator on
    127.0.0.1 serving the demo world."""
    em: Emulator = emulator_factory(DEMO_WORLD)
    url, op = em.url, em.operator
    record = next(r for r in em.world.identities if r.client_id == CLIENT)
    az = Az(az_path, em.ca_path, tmp_path / "azure-config")

    az.run("config", "set", "core.instance_discovery=false")
    az.run("cloud", "register", "--name", "PalEmulator", "--endpoint-resource-manager", f"{url}/")
    az.run("cloud", "set", "--name", "PalEmulator")
    cloud = az.json("cloud", "show")
    assert cloud["endpoints"]["activeDirectory"] == f"{url}/" and cloud["endpoints"]["resourceManager"] == f"{url}/"
    assert cloud["suffixes"]["keyvaultDns"] == ".vault.azure.net"

    az.run("login", "--service-principal", "-u", op.client_id, f"--password={op.secret}", "--tenant", op.tenant_id,
           "--allow-no-subscriptions", "-o", "none")
    secret = az.json("keyvault", "secret", "show", "--id", f"{url}/secrets/contoso-pal")
    assert secret["value"] == em.world.vaults["pal-demo"].secrets["contoso-pal"][-1].value
    assert secret["id"].startswith(f"{url}/secrets/contoso-pal/")
    assert az.json("keyvault", "secret", "show", "--id", secret["id"])["value"] == secret["value"]

    (account,) = az.json("login", "--service-principal", "-u", CLIENT, f"--password={secret['value']}",
                         "--tenant", TENANT)
    assert account["id"] == SUBSCRIPTION and account["tenantId"] == TENANT
    link = f"{url}/providers/Microsoft.ManagementPartner/partners/{PARTNER_ID}?api-version=2018-02-01"
    created = az.json("rest", "--method", "put", "--url", link)
    assert created["properties"]["partnerId"] == PARTNER_ID
    assert created["properties"]["objectId"] == record.object_id
    assert az.json("rest", "--method", "get", "--url", link)["properties"]["state"] == "Active"
    assert em.link(TENANT, record.object_id) is not None

    roles = az.json("role", "assignment", "list", "--assignee", CLIENT, "--all")
    assert [(r["roleDefinitionName"], r["principalId"]) for r in roles] == [("Contributor", record.object_id)]
    assert roles[0]["principalName"] == CLIENT  # Graph (servicePrincipals, getByIds) resolved the appId
    assert az.json("role", "assignment", "list", "--assignee", record.object_id, "--all") == roles
    assert roles[0]["roleDefinitionId"].endswith(CONTRIBUTOR)

    az.run("rest", "--method", "delete", "--url", link)
    assert em.link(TENANT, record.object_id) is None
    az.run("logout")
    az.run("account", "clear")
    assert az.json("account", "list") == []
