"""Ending a run on Ctrl-C or SIGTERM cleanly: the event loop's tasks are cancelled, never interrupted mid-step.

A signal handler that raises KeyboardInterrupt can fire inside any task's step; the task then ends holding the
exception and asyncio prints its traceback at shutdown ("Task exception was never retrieved"). Instead, as
`asyncio.run` does for Ctrl-C, SIGTERM cancels the main task; the coroutine unwinds (workers cancelled, outcomes
so far journaled) and KeyboardInterrupt is raised only after the loop is closed, where the caller handles it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_interruptible(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coro)`, with SIGTERM handled like Ctrl-C: KeyboardInterrupt once the loop has closed."""
    interrupted = False
    previous = signal.getsignal(signal.SIGTERM)

    async def main() -> T | None:
        nonlocal interrupted
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def stop() -> None:
            nonlocal interrupted
            if not interrupted and task is not None:
                interrupted = True
                task.cancel()

        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread: as is
            loop.add_signal_handler(signal.SIGTERM, stop)
        try:
            return await coro
        except asyncio.CancelledError:
            if interrupted:
                return None
            raise

    try:
        result = asyncio.run(main())
    finally:
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)  # the loop left SIG_DFL behind
    if interrupted:
        raise KeyboardInterrupt
    return result  # type: ignore[return-value]  # None only when interrupted
