"""Ports never reused within a process: each emulator asked for port 0 gets one no emulator had before.

azure-keyvault-secrets caches Key Vault auth challenges process-wide keyed by host:port. An emulator that got
a port an earlier one (with another world and tenant) used would be answered from the stale challenge
("credential is not configured to acquire tokens for tenant …"), a flaky-test cause. So port 0 is resolved
here: bind, and while the kernel hands out a port seen before, keep that socket open and bind again.
"""

from __future__ import annotations

import socket
import threading

_SEEN: set[int] = set()
_LOCK = threading.Lock()
_MAX_TRIES = 1000


def remember(port: int) -> None:
    """Record a port an emulator bound explicitly, so port 0 never hands it out later."""
    with _LOCK:
        _SEEN.add(port)


def fresh_socket(host: str = "127.0.0.1") -> socket.socket:
    """A TCP socket bound to `host` on a port no emulator of this process has used (not yet listening)."""
    held: list[socket.socket] = []
    try:
        with _LOCK:
            for _ in range(_MAX_TRIES):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind((host, 0))
                except OSError:
                    sock.close()
                    raise
                port = sock.getsockname()[1]
                if port not in _SEEN:
                    _SEEN.add(port)
                    return sock
                held.append(sock)  # kept bound so the next bind cannot get the same port again
        raise OSError(f"no unused port found on {host} after {_MAX_TRIES} tries")
    finally:
        for sock in held:
            sock.close()
