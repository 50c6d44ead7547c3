"""The partner-name guard: a typo in --partner-id that is another partner's real ID must cost one write, not 10,000.

The first write of a `link` run for each partner ID goes alone; the link read back names the partner
(`partnerName`). The name is announced before any other write for that ID starts. When the run expects a name
(`--partner-name`, or the name an earlier run of the journal recorded for that ID) and the service gives another,
the run stops there (exit 3, the service's name in the message): at most one write for a wrong ID.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from .models import IdentityFailure, SharedCause, Status

KIND = "partner_name_mismatch"


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


class NameGuard:
    """Serialises the first write per partner ID and checks the name the service gives it."""

    def __init__(self, expected: dict[str, str], announce: Callable[[str], None] = lambda text: None) -> None:
        self._expected = {k.strip().lower(): v for k, v in expected.items() if v}
        self._announce = announce
        self._lock = asyncio.Lock()
        self._seen: dict[str, str | None] = {}
        self._refused: dict[str, SharedCause] = {}

    def _check(self, key: str) -> None:
        cause = self._refused.get(key)
        if cause is not None:
            raise IdentityFailure(Status.FAILED, "PartnerNameMismatch",
                                  f"not written: partner ID {cause.subject} is {cause.code!r} according to the service",
                                  cause=cause)

    @asynccontextmanager
    async def writing(self, partner_id: str) -> AsyncIterator[bool]:
        """Enter before a PUT/PATCH; yields True for the write that goes alone (the first for this ID)."""
        key = partner_id.strip().lower()
        self._check(key)
        if key in self._seen:
            yield False
            return
        async with self._lock:
            self._check(key)
            yield key not in self._seen

    async def confirm(self, partner_id: str, name: str | None) -> SharedCause | None:
        """Record the name the first write's read-back gave; returns the stop cause when it is not the expected
        one (every later write for this ID is then refused before it is sent)."""
        key = partner_id.strip().lower()
        if key in self._seen:
            return None
        self._seen[key] = name
        expected = self._expected.get(key)
        if not name:
            self._announce(f"partner ID {partner_id}: the service did not name the partner"
                           + (f" (expected {expected!r}); the name cannot be checked" if expected else ""))
            return None
        self._announce(f"partner ID {partner_id} is {name!r}, as named by the service's answer to the first link")
        if expected and not _same(name, expected):
            cause = SharedCause(KIND, partner_id, name)
            self._refused[key] = cause
            return cause
        return None
