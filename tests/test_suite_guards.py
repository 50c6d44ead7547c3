"""The suite's own guards: why a Key Vault challenge must not outlive its emulator (the flaky CI of issue 20)."""

from __future__ import annotations

import copy
import socket
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError
from conftest import forget_keyvault_challenges
from emulator_fixtures import DEFAULT_WORLD, secret_client


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_stale_challenge_from_an_earlier_emulator_breaks_the_next_and_forgetting_it_mends_it(
    emulator_factory: Any,
) -> None:
    """Two emulators on one port with different vault tenants: the SDK's cached challenge names the old tenant."""
    port = _free_port()
    first = emulator_factory(DEFAULT_WORLD, port=port)
    assert secret_client(first).get_secret("sp-secret").value
    first.stop()

    other_world = copy.deepcopy(DEFAULT_WORLD)
    other_world["operator"] = {"tenant": "0b8e8c2a-0000-4000-8000-0000000000ff"}
    second = emulator_factory(other_world, port=port)
    with pytest.raises(ClientAuthenticationError, match="not configured to acquire tokens for tenant"):
        secret_client(second).get_secret("sp-secret")

    forget_keyvault_challenges()  # what the autouse fixture does between tests
    assert secret_client(second).get_secret("sp-secret").value
