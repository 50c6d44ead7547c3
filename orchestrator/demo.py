"""`make run`: the main job rehearsed against the built-in emulator, exactly as a user would run it.

The emulator starts on 127.0.0.1 (port 0, its own CA), the operator's sign-in is given through the standard
AZURE_* variables, and the real `link` command runs over the demo inventory with `--cloud custom`. First, when
`demo-lighthouse.csv` sits beside the inventory, the real `lighthouse` command links the partner's own principals
in its managing tenant and judges the customers that delegated subscriptions through Azure Lighthouse
(lighthouse.csv, lighthouse.json in its run folder and latest/), so the coverage report of the link run that
follows shows them too. Nothing leaves the machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UsageError

DEMO_PARTNER_ID = "4812345"
DEMO_VAULT = "pal-demo"
#: The managing tenant's own principals (Azure Lighthouse), beside the demo inventory.
LIGHTHOUSE_INVENTORY = "demo-lighthouse.csv"
#: The user-assigned managed identity the demo's managed_identity_federation rows sign in through.
DEMO_FEDERATION_IDENTITY = "f1000001-0000-4000-8000-000000000001"


@contextmanager
def _operator_env(values: dict[str, str]) -> Iterator[None]:
    """Set the operator's AZURE_* (and the managed identity's IDENTITY_*) variables for the run only, then restore
    the environment."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def run_demo(
    *,
    inventory: Path,
    world: Path,
    report_dir: Path,
    journal: Path,
    run: Callable[[list[str]], int],
) -> int:
    """Start the emulator with `world`, run `lighthouse` (when there is its inventory), then `link` over `inventory`.

    Returns link's exit code (0 when it completed, failures included), or lighthouse's when it could not run.
    """
    from .emulator import Emulator, load_world

    if not inventory.is_file() or not world.is_file():
        raise UsageError(f"the demo needs {inventory} and {world}; run it from the repository root")
    with Emulator(load_world(world)) as emu:
        op = emu.operator
        env = {
            "AZURE_TENANT_ID": op.tenant_id,
            "AZURE_CLIENT_ID": op.client_id,
            "AZURE_CLIENT_SECRET": op.secret,
            "AZURE_AUTHORITY_HOST": emu.authority_host,
            # the managed identity, as App Service / Container Apps expose it (azure-identity finds it there)
            "IDENTITY_ENDPOINT": emu.imds_endpoint,
            "IDENTITY_HEADER": emu.identity_header,
        }
        options = [
            "--partner-id", DEMO_PARTNER_ID,
            "--cloud", "custom",
            "--authority-host", emu.authority_host,
            "--arm-endpoint", emu.arm_endpoint,
            "--key-vault", emu.vault_url(DEMO_VAULT),
            "--federation-identity", DEMO_FEDERATION_IDENTITY,
            "--ca-bundle", str(emu.ca_path),
            "--operator-auth", "env",
            "--journal", str(journal),
            "--report-dir", str(report_dir),
        ]
        lighthouse = inventory.with_name(LIGHTHOUSE_INVENTORY)
        with _operator_env(env):
            if lighthouse.is_file():
                code = run(["lighthouse", str(lighthouse), *options])
                if code not in (0, 1):
                    return code
            code = run(["link", str(inventory), *options])
    return 0 if code in (0, 1) else code
