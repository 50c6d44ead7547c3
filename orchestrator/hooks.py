"""The run's cross-identity decisions, as protocols the linker calls: who owns a principal, which write goes alone.

Each identity's reconcile is independent except for these: the first row that signs in as a principal owns it
(a later row is a duplicate), and the first write per partner ID goes alone and names the partner (guard.py).
In one process they are local objects; with worker processes (workers/) the parent owns the only instances and
each worker holds proxies that ask the parent, so the decisions stay run-wide whatever process an identity is in.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from .models import SharedCause


class Principals(Protocol):
    """One principal, one write per run: the first row that signs in as an object ID owns it."""

    async def claim(self, object_id: str, key: str, location: str) -> tuple[str, str]:
        """(key, FILE:LINE) of the row that owns `object_id`: this row's own when it is the first."""
        ...


class Guard(Protocol):
    """The partner-name guard (guard.NameGuard, or a worker's proxy of the parent's)."""

    def writing(self, partner_id: str) -> AbstractAsyncContextManager[bool]:
        """Enter before a write; yields True for the write that goes alone (the first for this partner ID)."""
        ...

    async def confirm(self, partner_id: str, name: str | None) -> SharedCause | None:
        """Record the name the first write's read-back gave; the stop cause when it is not the expected one."""
        ...


class FirstRows:
    """The local Principals: a dict of object ID → (key, FILE:LINE), first row wins."""

    def __init__(self, known: dict[str, tuple[str, str]] | None = None) -> None:
        self._first = known if known is not None else {}

    async def claim(self, object_id: str, key: str, location: str) -> tuple[str, str]:
        return self.first(object_id, key, location)

    def first(self, object_id: str, key: str, location: str) -> tuple[str, str]:
        """claim, answered at once (the worker pool's parent serves it without a task)."""
        return self._first.setdefault(object_id.lower(), (key, location))
