"""`make run`: the main job rehearsed against the built-in emulator, exactly as a user would run it.

The emulator starts on 127.0.0.1 (port 0, its own CA), the operator's sign-in is given through the standard
AZURE_* variables, and the real `link` command runs over the demo inventory with `--cloud custom`. Nothing
leaves the machine.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError

DEMO_PARTNER_ID = "4812345"
DEMO_VAULT = "pal-demo"


_RELATIVE = re.compile(r"^([+-])(\d+)d$")


def resolve_relative_times(value: Any, now: datetime) -> Any:
    """Turn "+45d" / "-12d" strings of a world file into times from `now`, so the demo never ages."""
    if isinstance(value, dict):
        return {k: resolve_relative_times(v, now) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_relative_times(v, now) for v in value]
    if isinstance(value, str) and (m := _RELATIVE.match(value)):
        days = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
        return now + timedelta(days=days)
    return value


def load_demo_world(path: Path) -> Any:
    """Read a world YAML whose times may be relative to now."""
    from .emulator import World

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return World.from_dict(resolve_relative_times(data, datetime.now(UTC)))


@contextmanager
def _operator_env(values: dict[str, str]) -> Iterator[None]:
    """Set the operator's AZURE_* variables for the run only, then restore the environment."""
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
    """Start the emulator with `world`, run `link` over `inventory`, return link's exit code."""
    from .emulator import Emulator

    if not inventory.is_file() or not world.is_file():
        raise UsageError(f"the demo needs {inventory} and {world}; run it from the repository root")
    with Emulator(load_demo_world(world)) as emu:
        op = emu.operator
        env = {
            "AZURE_TENANT_ID": op.tenant_id,
            "AZURE_CLIENT_ID": op.client_id,
            "AZURE_CLIENT_SECRET": op.secret,
            "AZURE_AUTHORITY_HOST": emu.authority_host,
        }
        argv = [
            "link", str(inventory),
            "--partner-id", DEMO_PARTNER_ID,
            "--cloud", "custom",
            "--authority-host", emu.authority_host,
            "--arm-endpoint", emu.arm_endpoint,
            "--key-vault", emu.vault_url(DEMO_VAULT),
            "--ca-bundle", str(emu.ca_path),
            "--operator-auth", "env",
            "--journal", str(journal),
            "--report-dir", str(report_dir),
        ]
        with _operator_env(env):
            code = run(argv)
    return 0 if code in (0, 1) else code
