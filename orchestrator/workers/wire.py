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
import copyreg
import io
import pickle
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

from ..models import Identity, Outcome, RecognitionResult, RoleGrant, SharedCause, Status
from ..needs import Needs
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


class _Pipe(asyncio.Protocol):
    """The socket's protocol: whole frames parsed from each chunk the loop reads (one read for many messages)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.inbox: deque[object] = deque()
        self.closed = False
        self._buffer = bytearray()
        self._need = 0  # bytes the incomplete frame in _buffer needs before it can be parsed
        self._waiter: asyncio.Future[None] | None = None
        self._writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._buffer:  # the rest of a frame: gather it until whole (a big Init comes in many chunks)
            self._buffer += data
            if len(self._buffer) < self._need:
                return
            data, self._buffer = bytes(self._buffer), bytearray()
        end = _frames(data, self.inbox)
        if end < len(data):
            self._buffer = bytearray(data[end:])
            self._need = _LENGTH.size + (_LENGTH.unpack_from(data, end)[0] if len(data) - end >= _LENGTH.size else 0)
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._wake()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    async def wait_data(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def wait_writable(self) -> None:
        if self._writable is not None:
            await asyncio.shield(self._writable)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


def _by_fields(cls: type) -> Callable[[Any], tuple[type, tuple[Any, ...]]]:
    """Pickle an object of the dataclass `cls` as the call `cls(*field values)`.

    A frozen slotted dataclass pickles its state through `dataclasses.fields()`, looked up again for every object
    on both ends: the six messages of an identity cost ~120 µs to pickle and unpickle, ~88 µs this way. Only for
    classes whose every field is a positional `__init__` argument, or `cls(*values)` would not rebuild them."""
    assert all(f.init and not f.kw_only for f in fields(cls)) and not hasattr(cls, "__post_init__"), cls
    names = tuple(f.name for f in fields(cls))

    def reduce(obj: Any) -> tuple[type, tuple[Any, ...]]:
        return cls, tuple([getattr(obj, name) for name in names])

    return reduce


#: The classes that cross the pipe once per identity or more, reduced by `_by_fields`; the rest pickle as usual.
_PER_IDENTITY = (Start, Done, Request, Reply, Failure, Identity, Outcome, RecognitionResult, RoleGrant, SharedCause)


_DISPATCH: dict[Any, Any] = {**copyreg.dispatch_table, **{cls: _by_fields(cls) for cls in _PER_IDENTITY}}


class _Pickler(pickle.Pickler):
    """pickle's own, with `_by_fields` for the per-identity classes (a table of its own: nothing else changes)."""

    dispatch_table = _DISPATCH


def _dumps(message: object) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
    return buffer.getvalue()


def _frames(data: bytes, into: deque[object]) -> int:
    """Unpickle every whole frame at the start of `data` into `into`; the offset where the rest begins."""
    pos, size = 0, len(data)
    while size - pos >= _LENGTH.size:
        length = _LENGTH.unpack_from(data, pos)[0]
        end = pos + _LENGTH.size + length
        if end > size:
            break
        into.append(pickle.loads(data[pos + _LENGTH.size:end]))  # noqa: S301 - our own child or parent
        pos = end
    return pos


class Channel:
    """One end of the pipe: send and receive whole messages.

    Messages sent in one turn of the event loop leave in one write (a Done and the next Start, the replies to
    several workers' requests), and each read takes every frame the socket holds: per message, no system call and
    no await of its own, which is most of what a pipe costs the parent's loop."""

    def __init__(self, pipe: _Pipe) -> None:
        self._pipe = pipe
        self._out: list[bytes] = []
        self._flushing = False

    @classmethod
    async def over(cls, sock: socket.socket) -> Channel:
        _, pipe = await asyncio.get_running_loop().create_unix_connection(_Pipe, sock=sock)
        return cls(pipe)

    def send(self, message: object) -> None:
        """Queue a message; it leaves with the others of this loop turn. A closed pipe drops it."""
        if self._closing():
            return
        data = _dumps(message)
        self._out.append(_LENGTH.pack(len(data)))
        self._out.append(data)
        if not self._flushing:
            self._flushing = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flushing = False
        out, self._out = self._out, []
        if out and not self._closing():
            assert self._pipe.transport is not None
            self._pipe.transport.write(b"".join(out))

    def _closing(self) -> bool:
        transport = self._pipe.transport
        return transport is None or transport.is_closing()

    async def receive(self) -> object | None:
        """The next message, or None once the other end has closed (or died)."""
        pipe = self._pipe
        while not pipe.inbox:
            if pipe.closed:
                return None
            await pipe.wait_data()
        return pipe.inbox.popleft()

    async def drain(self) -> None:
        """Send what is queued now and wait until the socket has taken it."""
        self._flush()
        await self._pipe.wait_writable()

    def close(self) -> None:
        self._flush()
        if self._pipe.transport is not None:
            self._pipe.transport.close()
