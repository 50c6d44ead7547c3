"""The pipe between the parent and one worker: length-prefixed pickles over a Unix socketpair, and the messages.

The peer is always our own child process started with `python -m orchestrator.workers` and handed one end of a
`socket.socketpair()`: never a network socket, so unpickling its messages trusts nothing a third party wrote.
Secrets never cross the pipe: a worker reads its own secrets from Key Vault; the messages carry the run's options
(no secret is ever an option), identities, outcomes and the answers of the parent's hooks.

    parent → worker   Init, Start, Reply
    worker → parent   Ready, Request, Done, Fatal
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from dataclasses import dataclass
from typing import Any

from ..fanout import Needs
from ..models import Identity, Outcome, SharedCause, Status
from ..run_options import RunOptions

_LENGTH = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Init:
    """The run a worker serves: its options (concurrency: this worker's share), what to warm up, and the
    intents the run's earlier attempt announced (a resume)."""

    options: RunOptions
    needs: Needs
    prior_intents: dict[str, tuple[str, str]]
    debug: bool
    guard: bool  # link runs: writes go through the parent's partner-name guard


@dataclass(frozen=True, slots=True)
class Start:
    """Reconcile this identity; answer with Done(seq)."""

    seq: int
    identity: Identity


@dataclass(frozen=True, slots=True)
class Failure:
    """An error a hook raised in the parent, as the worker re-raises it (an IdentityFailure when status is set)."""

    message: str
    status: Status | None = None
    code: str | None = None
    cause: SharedCause | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """The parent's answer to Request(req_id)."""

    req_id: int
    value: Any = None
    error: Failure | None = None


@dataclass(frozen=True, slots=True)
class Ready:
    """The worker's session is built (probed, warmed): it takes identities now."""


@dataclass(frozen=True, slots=True)
class Request:
    """A hook call the parent decides: kind is intent, claim, guard_enter, guard_exit or confirm."""

    req_id: int
    kind: str
    args: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Done:
    """The outcome of Start(seq)."""

    seq: int
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Fatal:
    """A run-level error in the worker (its warm-up failed): the PalError class name and its message."""

    error: str
    message: str


class Channel:
    """One end of the pipe: send and receive whole messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def over(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=1 << 20)
        return cls(reader, writer)

    def send(self, message: object) -> None:
        """Queue a message (the transport writes it without blocking the loop); a closed pipe drops it."""
        if self._writer.is_closing():
            return
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_LENGTH.pack(len(data)) + data)

    async def receive(self) -> object | None:
        """The next message, or None once the other end has closed (or died)."""
        try:
            size = _LENGTH.unpack(await self._reader.readexactly(_LENGTH.size))[0]
            message: object = pickle.loads(await self._reader.readexactly(size))  # noqa: S301 - our own child
            return message
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def drain(self) -> None:
        try:
            await self._writer.drain()
        except ConnectionError:
            return

    def close(self) -> None:
        self._writer.close()
