"""The worker pool: N processes reconcile a run's identities; this process keeps every cross-identity decision.

The parent starts each worker (`python -m orchestrator.workers FD`, a fresh interpreter: never fork, the parent
has threads and an open SQLite journal), sends it Init and waits for Ready: each worker probes ARM and warms its
own Key Vault and federation tokens, so a run of N workers signs the operator in N times. Then it dispatches one
identity at a time (workers never hold the inventory) to the least-loaded worker, within the breaker's window for
the whole run (probation is global) and an equal share of --concurrency per worker. It serves the workers' hooks
with the run's one IntentCommitter (the Reply comes only once the intent is durable), principal table and
partner-name guard, and journals each Done outcome as it arrives, exactly as an in-process run does.

A worker that dies stops new starts; the others finish what they hold and the run stays unfinished
(WorkerDiedError, exit 2): `--resume` continues it, reading first wherever an intent was announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .. import errors
from ..breaker import Breaker
from ..errors import PalError, WorkerDiedError, WorkerError
from ..guard import NameGuard
from ..hooks import FirstRows
from ..models import Identity, IdentityFailure, Outcome, hand_out
from ..needs import Needs
from ..run_options import RunOptions
from .wire import Channel, Done, Failure, Fatal, Init, Ready, Reply, Request, Start

log = logging.getLogger(__name__)

#: How long a worker may take to exit once its pipe is closed before it is killed.
EXIT_GRACE_S = 5.0


@dataclass(frozen=True, slots=True)
class ParentHooks:
    """The run's only instances of the cross-identity decisions, served to every worker."""

    record_intent: Callable[[str, str, str], Awaitable[None] | None]
    principals: FirstRows
    guard: NameGuard | None
    prior_intents: dict[str, tuple[str, str]]


@dataclass(eq=False)
class _Worker:
    index: int
    proc: subprocess.Popen[bytes]
    channel: Channel
    in_flight: set[int] = field(default_factory=set)
    holds: dict[int, asyncio.Event] = field(default_factory=dict)  # guard entries, by token
    closed: bool = False

    def name(self) -> str:
        return f"worker {self.index} (pid {self.proc.pid})"


def worker_count(options: RunOptions, todo: int, *, injected: bool = False) -> int:
    """How many worker processes a run uses; 1 means none (this process alone, exactly the in-process path).

    --workers N asks for N (never more than identities left). Unset, a run of fewer than 2,000 identities stays in
    this process, a larger one gets one worker per 1,000 identities up to one per core; so does a run whose `sleep`
    or recognizer a test injected into `execute` (they cannot cross to another process). --self is one identity.
    `runner.check_options` has refused --workers below 1 before any work.
    """
    if options.self_link or todo < 2:
        return 1
    if options.workers is not None:
        return min(options.workers, todo)
    if injected:
        return 1
    return max(1, min(_cores(), todo // 1000))


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _spawn(index: int) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """A fresh interpreter running this very package, holding one end of a socketpair."""
    mine, theirs = socket.socketpair()
    package_root = str(Path(__file__).resolve().parents[2])  # the same orchestrator code as this process
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.Popen(  # noqa: S603 - this interpreter, this package, a descriptor: no input
            [sys.executable, "-m", "orchestrator.workers", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
    finally:
        theirs.close()
    return proc, mine


class WorkerPool:
    """Dispatch identities to N worker processes; see the module docstring."""

    def __init__(self, count: int, options: RunOptions, hooks: ParentHooks, breaker: Breaker,
                 on_outcome: Callable[[Outcome], None]) -> None:
        self._count = count
        self._options = options
        self._hooks = hooks
        self._breaker = breaker
        self._on_outcome = on_outcome
        self._per_worker = math.ceil(options.concurrency / count)
        self._workers: list[_Worker] = []
        self._queue: Iterator[Identity] = iter(())
        self._seq = 0
        self._exhausted = False
        self._idle: asyncio.Future[None] | None = None
        self._died: _Worker | None = None
        self._error: BaseException | None = None
        self._tokens = itertools.count(1)
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, identities: list[Identity]) -> None:
        """Every identity reconciled by some worker (or left for --resume when the run stops or a worker dies);
        `identities` is emptied as they are sent."""
        try:
            await self._start(Needs.of(identities, self._options))
            self._queue = hand_out(identities)  # each released once sent
            self._idle = asyncio.get_running_loop().create_future()
            readers = [asyncio.create_task(self._read(w)) for w in self._workers]
            self._pump()
            await self._idle
            for reader in readers:
                reader.cancel()
            if self._error is not None:
                raise self._error
            if self._died is not None:
                raise _died_error(self._died, self._options)
        finally:
            await self._shut_down()

    # -- start-up ---------------------------------------------------------------------------------------

    async def _start(self, needs: Needs) -> None:
        share = replace(self._options, concurrency=self._per_worker)
        init = Init(share, needs, self._hooks.prior_intents, logging.getLogger().isEnabledFor(logging.DEBUG),
                    guard=self._hooks.guard is not None)
        for index in range(1, self._count + 1):
            proc, sock = _spawn(index)
            worker = _Worker(index, proc, await Channel.over(sock))
            self._workers.append(worker)
            worker.channel.send(init)
        waits = [asyncio.create_task(self._ready(w)) for w in self._workers]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # the first worker that could not start: its error is the run's
        finally:
            for task in waits:
                task.cancel()

    async def _ready(self, worker: _Worker) -> None:
        message = await worker.channel.receive()
        if isinstance(message, Ready):
            return
        if isinstance(message, Fatal):
            raise _pal_error(message, worker)
        worker.closed = True
        raise _died_error(worker, self._options, starting=True)

    # -- dispatch -------------------------------------------------------------------------------------

    def _stopping(self) -> bool:
        return self._breaker.tripped is not None or self._died is not None or self._error is not None

    def _in_flight(self) -> int:
        return sum(len(w.in_flight) for w in self._workers)

    def _free(self) -> _Worker | None:
        """The least-loaded live worker with room, if the run's window has room."""
        if self._in_flight() >= self._breaker.window:
            return None
        live = [w for w in self._workers if not w.closed and len(w.in_flight) < self._per_worker]
        return min(live, key=lambda w: len(w.in_flight), default=None)

    def _settled(self) -> bool:
        return all(w.closed or not w.in_flight for w in self._workers)

    def _pump(self) -> None:
        """Start identities while the run's window and a worker's share have room (called whenever a Done or a
        death frees room); `_idle` resolves once nothing more will start and nothing is in flight."""
        while not self._exhausted and not self._stopping():
            worker = self._free()
            if worker is None:
                break
            identity = next(self._queue, None)
            if identity is None:
                self._exhausted = True
                break
            self._seq += 1
            worker.in_flight.add(self._seq)
            worker.channel.send(Start(self._seq, identity))
        idle = self._idle
        if idle is not None and not idle.done() and (self._exhausted or self._stopping()) and self._settled():
            idle.set_result(None)

    # -- each worker's messages --------------------------------------------------------------------------

    async def _read(self, worker: _Worker) -> None:
        while True:
            message = await worker.channel.receive()
            if message is None:
                self._lost(worker)
                return
            if isinstance(message, Done):
                try:
                    self._on_outcome(message.outcome)
                except BaseException as exc:  # noqa: BLE001 - the journal failed: the run ends with it
                    self._error = self._error or exc
                worker.in_flight.discard(message.seq)
                self._pump()
            elif isinstance(message, Request):
                self._serve(worker, message)

    def _lost(self, worker: _Worker) -> None:
        """The pipe closed without us closing it: the worker died (crash, OOM kill, a signal)."""
        worker.closed = True
        worker.channel.close()
        for release in worker.holds.values():
            release.set()
        self._died = self._died or worker  # the first to die is the one the error names
        worker.in_flight.clear()  # no outcome will come: --resume runs them again
        self._pump()

    def _serve(self, worker: _Worker, request: Request) -> None:
        """Answer one hook call: at once when the answer is known now (a principal claim, a guard's exit), once
        the intent is durable (never before: the worker sends its write on this Reply), or from a task for the
        guard (held there until the worker says its write is over) and its confirm."""
        kind, args = request.kind, request.args
        if kind == "guard_exit":
            release = worker.holds.get(args[0])
            if release is not None:
                release.set()
        elif kind == "claim":
            worker.channel.send(Reply(request.req_id, self._hooks.principals.first(*args)))
        elif kind == "intent":
            try:
                pending = self._hooks.record_intent(*args)
            except Exception as exc:  # noqa: BLE001 - that identity fails unwritten
                worker.channel.send(Reply(request.req_id, error=_failure(kind, exc)))
                return
            if pending is None:
                worker.channel.send(Reply(request.req_id))
            else:
                durable = asyncio.ensure_future(pending)
                durable.add_done_callback(lambda done: _answer(worker, request, done))
        else:
            task = asyncio.create_task(self._serve_later(worker, request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve_later(self, worker: _Worker, request: Request) -> None:
        try:
            if request.kind == "guard_enter":
                await self._enter_guard(worker, request)
                return
            value: Any = None
            if request.kind == "confirm" and self._hooks.guard is not None:
                value = await self._hooks.guard.confirm(*request.args)
            worker.channel.send(Reply(request.req_id, value))
        except Exception as exc:  # noqa: BLE001 - that identity fails unwritten; the worker says so in its outcome
            worker.channel.send(Reply(request.req_id, error=_failure(request.kind, exc)))

    async def _enter_guard(self, worker: _Worker, request: Request) -> None:
        assert self._hooks.guard is not None
        token = next(self._tokens)
        release = worker.holds[token] = asyncio.Event()
        if worker.closed:
            release.set()
        try:
            async with self._hooks.guard.writing(request.args[0]) as alone:
                worker.channel.send(Reply(request.req_id, (token, alone)))
                await release.wait()
        finally:
            worker.holds.pop(token, None)

    # -- shut-down ------------------------------------------------------------------------------------------

    async def _shut_down(self) -> None:
        """Close every pipe (a worker ends at once when its pipe closes); kill whoever is still there after the
        grace period."""
        for task in list(self._tasks):
            task.cancel()
        for worker in self._workers:
            worker.closed = True
            worker.channel.close()
            for release in worker.holds.values():
                release.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EXIT_GRACE_S
        while any(w.proc.poll() is None for w in self._workers) and loop.time() < deadline:
            await asyncio.sleep(0.02)
        for worker in self._workers:
            if worker.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.proc.kill()
                worker.proc.wait()


def _answer(worker: _Worker, request: Request, durable: asyncio.Future[Any]) -> None:
    """The Reply to an intent once the journal has it on disk (or could not take it: that identity fails)."""
    if durable.cancelled():
        return  # the run is stopping: the worker's write must not go
    exc = durable.exception()
    error = None if exc is None else _failure(request.kind, exc)
    worker.channel.send(Reply(request.req_id, error=error))


def _failure(kind: str, exc: BaseException) -> Failure:
    if isinstance(exc, IdentityFailure):
        return Failure(exc.message, exc.status, exc.code, exc.cause)
    return Failure(f"{kind} failed: {type(exc).__name__}")


def _pal_error(fatal: Fatal, worker: _Worker) -> PalError:
    """The worker's run-level error as the same PalError class the in-process run would raise."""
    kind = getattr(errors, fatal.error, None)
    if isinstance(kind, type) and issubclass(kind, PalError):
        return kind(fatal.message)
    return WorkerError(f"{worker.name()} failed while starting ({fatal.error})")


def _status(proc: subprocess.Popen[bytes]) -> str:
    try:
        code = proc.wait(1.0)
    except subprocess.TimeoutExpired:
        return "still running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def _died_error(worker: _Worker, options: RunOptions, *, starting: bool = False) -> WorkerDiedError:
    when = "while starting" if starting else "mid-run"
    return WorkerDiedError(
        f"{worker.name()} died {when} ({_status(worker.proc)}); the run is unfinished and its journal intact: "
        f"`pal-orchestrator {options.command.value} … --resume` continues it (identities that worker had in "
        "flight are read again before any write)")
