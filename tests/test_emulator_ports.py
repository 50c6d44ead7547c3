"""Emulators never reuse a port within a process (Key Vault challenges are cached per host:port)."""

from __future__ import annotations

import socket
from typing import Any, ClassVar

import pytest

from orchestrator.emulator import Emulator, ports


def test_twenty_emulators_started_one_after_another_get_twenty_ports() -> None:
    """Start/stop 20 emulators on port 0: every port differs from every earlier one."""
    seen: list[int] = []
    for _ in range(20):
        with Emulator() as em:
            seen.append(em.port)
    assert len(set(seen)) == len(seen) == 20


def test_an_explicit_port_is_never_handed_out_later() -> None:
    """A port an emulator bound explicitly counts as used: port 0 never returns it afterwards."""
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with Emulator(port=port) as em:
        assert em.port == port
    for _ in range(5):
        with Emulator() as em:
            assert em.port != port


class _FakeSocket:
    """A socket whose bind(0) yields the next port of a fixed sequence (the kernel's choice, scripted)."""

    sequence: ClassVar[list[int]] = []
    closed: ClassVar[list[int]] = []

    def __init__(self, *args: Any) -> None:
        self.port = 0

    def bind(self, address: tuple[str, int]) -> None:
        self.port = self.sequence.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def close(self) -> None:
        self.closed.append(self.port)


def test_a_seen_port_is_held_while_binding_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the kernel offers a port seen before, that socket stays bound until a new port is found."""
    ports.remember(40001)
    ports.remember(40002)
    _FakeSocket.sequence = [40001, 40002, 40003]
    _FakeSocket.closed = []
    monkeypatch.setattr(ports.socket, "socket", _FakeSocket)
    sock = ports.fresh_socket()
    assert sock.getsockname()[1] == 40003
    assert _FakeSocket.closed == [40001, 40002]  # both held until the end, then released
    ports.remember(40003)
