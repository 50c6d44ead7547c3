"""Suite-wide guards: a clean environment and loopback-only networking.

A developer's shell (AZURE_*, proxies, CA variables) must not change results, and no test may send a
packet anywhere but 127.0.0.1 — not to Azure, not to IMDS at 169.254.169.254.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ["emulator_fixtures"]

_STRIPPED_PREFIXES = ("AZURE_", "MSI_", "IDENTITY_", "IMDS_", "PAL_")
_STRIPPED = {
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE", "MSAL_FORCE_REGION",
}


class NonLoopbackConnection(AssertionError):
    """A test tried to reach an address other than loopback."""


def _check_address(address: Any) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError as exc:  # a hostname reaching connect() unresolved: refuse, it is not loopback
            raise NonLoopbackConnection(f"connection to non-literal host {host!r} refused in tests") from exc
        if not ip.is_loopback:
            raise NonLoopbackConnection(f"connection to {host} refused: tests talk to 127.0.0.1 only")


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect_ex(self, address)


_real_getaddrinfo = socket.getaddrinfo
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    """Name lookups are traffic too: only loopback literals and localhost may be resolved."""
    if host is not None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name.lower() not in _LOOPBACK_NAMES:
            try:
                if not ipaddress.ip_address(name).is_loopback:
                    raise NonLoopbackConnection(f"lookup of {name} refused: tests talk to 127.0.0.1 only")
            except ValueError as exc:
                raise NonLoopbackConnection(f"DNS lookup of {name!r} refused: tests talk to 127.0.0.1 only") from exc
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Strip Azure, proxy and CA variables so the shell cannot redirect or authenticate a test."""
    for name in list(os.environ):
        if name in _STRIPPED or name.startswith(_STRIPPED_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    yield


def forget_keyvault_challenges() -> None:
    """Empty azure-keyvault's process-wide challenge cache (keyed by host:port, never by world).

    Emulators bind port 0, and the OS hands a port back to a later test whose world has another vault tenant:
    the cached challenge then names the old tenant and the read fails with "the current credential is not
    configured to acquire tokens for tenant …" (the flaky CI of issue 20). Each test starts with no challenge.
    """
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()


@pytest.fixture(autouse=True)
def fresh_keyvault_challenges() -> Iterator[None]:
    """No Key Vault challenge survives from one test into the next."""
    forget_keyvault_challenges()
    yield
    forget_keyvault_challenges()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every socket connect in the test process must target loopback (asyncio uses the same method)."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    yield
