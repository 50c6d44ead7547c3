"""Group commit of intents: each write to Azure waits until its own intent is durable, without blocking the loop.

A synchronous `PRAGMA synchronous=FULL` commit per intent held the event loop for one fsync each (~1 ms, more on a
busy disk). Here each intent is committed on the loop without waiting for the disk (a WAL append), then one fsync of
the journal's WAL in a thread makes every intent committed before it durable at once; the writers whose intents it
covers are released together. An intent committed while an fsync is under way waits for the next one, so no write
is ever sent before its own intent is on disk. A journal that is not in WAL mode commits each intent with FULL.
"""

from __future__ import annotations

import asyncio

from .journal import Journal


class IntentCommitter:
    """`await committer.record(key, action, partner_id)` returns once that intent is durable."""

    def __init__(self, journal: Journal, run_id: str) -> None:
        self._journal = journal
        self._run_id = run_id
        self._waiting: list[asyncio.Future[None]] = []
        self._syncing: asyncio.Task[None] | None = None
        self.syncs = 0  # fsyncs made (the group-commit ratio is intents ÷ syncs)

    async def record(self, key: str, action: str, partner_id: str) -> None:
        await self.submit(key, action, partner_id)

    def submit(self, key: str, action: str, partner_id: str) -> asyncio.Future[None]:
        """record without a coroutine: the future is done once the intent is durable (the worker pool's parent
        answers from its callback, no task per intent)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._journal.wal:
            try:
                self._journal.record_intent(self._run_id, key, action, partner_id)
            except Exception as exc:  # noqa: BLE001 - raised to the one who awaits it, as record did
                done.set_exception(exc)
            else:
                done.set_result(None)
            return done
        self._journal.write_intent(self._run_id, key, action, partner_id)
        self._waiting.append(done)
        if self._syncing is None:
            self._syncing = asyncio.create_task(self._sync_all())
        return done

    async def _sync_all(self) -> None:
        """fsync until nobody waits: each round covers the intents committed before it started."""
        batch: list[asyncio.Future[None]] = []
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await asyncio.to_thread(self._journal.sync)
                except Exception as exc:  # noqa: BLE001 - each waiter fails its own identity; nothing is sent
                    _settle(batch, exc)
                else:
                    self.syncs += 1
                    _settle(batch, None)
        finally:
            self._syncing = None
            # cancelled mid-fsync (the run is stopping): nobody whose intent is not known durable may write
            _settle(batch + self._waiting, asyncio.CancelledError())
            self._waiting = []


def _settle(batch: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    for done in batch:
        if done.done():
            continue
        if exc is None:
            done.set_result(None)
        elif isinstance(exc, asyncio.CancelledError):
            done.cancel()
        else:
            done.set_exception(exc)
