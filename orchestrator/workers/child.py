"""One worker process: build the run's session once, reconcile each identity the parent sends, answer Done.

Every decision that spans identities is the parent's: the worker's hooks (intent, principal claim, the partner-name
guard) send a Request and wait for the Reply, so a write is sent only after the parent has made its intent
durable. The parent owns cancellation: SIGINT and SIGTERM are ignored here, and the end of the pipe (the parent
closed it, or died, even by SIGKILL) ends the worker at once — whatever was in flight either has no intent yet
(nothing written) or has its intent in the journal, which `--resume` reads first.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ..errors import PalError
from ..fanout import Hooks, RecognizerFactory, session
from ..gctuning import tune_for_batch
from ..linker import LinkContext, reconcile
from ..logs import configure_logging
from ..models import IdentityFailure, SharedCause
from .wire import Channel, Done, Failure, Fatal, Init, Ready, Reply, Request, Start

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class HookError(RuntimeError):
    """A hook failed in the parent (the journal could not take an intent, say): this identity fails, unwritten."""


class Calls:
    """Requests to the parent, each answered by the Reply with its req_id."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._next = 0
        self._waiting: dict[int, asyncio.Future[Any]] = {}

    async def ask(self, kind: str, *args: Any) -> Any:
        self._next += 1
        req_id = self._next
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[req_id] = answer
        self._channel.send(Request(req_id, kind, args))
        try:
            return await answer
        finally:
            self._waiting.pop(req_id, None)

    def tell(self, kind: str, *args: Any) -> None:
        """A request that needs no answer."""
        self._channel.send(Request(0, kind, args))

    def answer(self, reply: Reply) -> None:
        waiting = self._waiting.get(reply.req_id)
        if waiting is None or waiting.done():
            return
        if reply.error is None:
            waiting.set_result(reply.value)
        else:
            waiting.set_exception(_raised(reply.error))

    async def intent(self, key: str, action: str, partner_id: str) -> None:
        await self.ask("intent", key, action, partner_id)


def _raised(failure: Failure) -> Exception:
    if failure.status is not None:
        return IdentityFailure(failure.status, failure.code, failure.message, cause=failure.cause)
    return HookError(failure.message)


class RemotePrincipals:
    """The parent's first-row-wins table of principals."""

    def __init__(self, calls: Calls) -> None:
        self._calls = calls

    async def claim(self, object_id: str, key: str, location: str) -> tuple[str, str]:
        first: tuple[str, str] = await self._calls.ask("claim", object_id, key, location)
        return first


class RemoteGuard:
    """The parent's partner-name guard: entered there (the first write per partner ID goes alone, run-wide).

    Once the parent has seen a partner ID's name its answers for that ID never change (NameGuard: a write no
    longer goes alone and is not refused, a later confirm returns None), so they are remembered here and the
    writes after the first cost no round trip."""

    def __init__(self, calls: Calls) -> None:
        self._calls = calls
        self._open: set[str] = set()  # partner IDs whose writes go without the guard now
        self._named: set[str] = set()  # partner IDs whose name the parent has recorded

    @asynccontextmanager
    async def writing(self, partner_id: str) -> AsyncIterator[bool]:
        key = partner_id.strip().lower()
        if key in self._open:
            yield False
            return
        token, alone = await self._calls.ask("guard_enter", partner_id)
        if not alone:
            self._open.add(key)
        try:
            yield bool(alone)
        finally:
            self._calls.tell("guard_exit", token)

    async def confirm(self, partner_id: str, name: str | None) -> SharedCause | None:
        key = partner_id.strip().lower()
        if key in self._named:
            return None
        cause: SharedCause | None = await self._calls.ask("confirm", partner_id, name)
        self._named.add(key)
        return cause


def _die_with_parent() -> None:
    """A second guard besides the pipe: Linux kills this process when the parent dies (prctl PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _exit_now(code: int) -> None:
    """End the process without unwinding: nothing here is durable, and in-flight work must not go on."""
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    os._exit(code)


def _recognizer(init: Init) -> RecognizerFactory | None:
    if not init.options.recognition:
        return None
    from ..recognition import recognizer_factory  # as the CLI does for --recognition

    return recognizer_factory


async def serve(sock: socket.socket) -> int:
    """Take Init, build the session, say Ready, then reconcile every Start until the pipe closes."""
    channel = await Channel.over(sock)
    init = await channel.receive()
    if not isinstance(init, Init):
        return 2
    configure_logging(init.debug)
    calls = Calls(channel)
    ready: asyncio.Future[LinkContext] = asyncio.get_running_loop().create_future()
    tasks: set[asyncio.Task[None]] = set()

    async def one(start: Start) -> None:
        outcome = await reconcile(start.identity, await ready)
        channel.send(Done(start.seq, outcome))

    async def read() -> None:
        while True:
            message = await channel.receive()
            if message is None:
                _exit_now(0)  # the parent closed the pipe or died: stop everything now
            elif isinstance(message, Reply):
                calls.answer(message)
            elif isinstance(message, Start):
                task = asyncio.create_task(one(message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

    reader = asyncio.create_task(read())
    hooks = Hooks(calls.intent, init.prior_intents, RemotePrincipals(calls), RemoteGuard(calls) if init.guard else None)
    try:
        async with session(init.options, init.needs, hooks, recognizer_factory=_recognizer(init)) as ctx:
            ready.set_result(ctx)
            channel.send(Ready())
            await reader
    except PalError as exc:
        channel.send(Fatal(type(exc).__name__, str(exc)))
        await channel.drain()
        return 2
    return 0


def main(argv: list[str]) -> int:
    """Entry point: argv is the inherited socket's file descriptor."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent owns cancellation (Ctrl-C reaches the whole group)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[0]))
    tune_for_batch()  # as the CLI does: the imports are done, the identities' short-lived objects come next
    try:
        return asyncio.run(serve(sock))
    except Exception as exc:  # noqa: BLE001 - an unexpected failure is the parent's to report, by its class name
        log.error("worker failed: %s", type(exc).__name__)
        return 1
