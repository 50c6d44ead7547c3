"""The one retry layer (tenacity). Every SDK client is built with `retry_total=0`, so what is sent is what we count.

Per call, the worst case is exactly `RetrySettings.attempts` HTTP requests; each attempt is bounded by
`timeout_s`. Transient = 408/429/5xx, dropped connections, timeouts, Entra's throttling codes. Permanent errors
are never retried. `Retry-After` is honoured (never retried earlier) and capped: a server asking for longer
than the cap ends the call at once with the wait recorded, rather than stalling a worker.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import re
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import aiohttp
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from .settings import RetrySettings

T = TypeVar("T")

Sleep = Callable[[float], Awaitable[None]]

#: Entra error codes that mean "try again later" (throttling, service busy).
TRANSIENT_AADSTS = frozenset({"50196", "90055", "50058"})
TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})

_AADSTS = re.compile(r"AADSTS(\d+)")


class AttemptTimeout(TimeoutError):
    """One attempt took longer than `RetrySettings.timeout_s`."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """How the retry layer sees one exception."""

    transient: bool
    retry_after: float | None = None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status behind an SDK exception, when it has one."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    return int(status) if isinstance(status, int) else None


def aadsts_code(exc: BaseException) -> str | None:
    """The AADSTS number in an Entra error message, e.g. "7000215"."""
    match = _AADSTS.search(str(getattr(exc, "message", None) or exc))
    return match.group(1) if match else None


def parse_retry_after(headers: Any, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, `x-ms-retry-after-ms` or `Retry-After` (seconds or HTTP date)."""
    if headers is None:
        return None
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) / 1000.0)
            except ValueError:
                pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and what it wraps (azure-core keeps the transport's error as `inner_exception`)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 8:
        seen.append(current)
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else (current.__cause__ or current.__context__)
    return seen


def network_failure(exc: BaseException) -> str | None:
    """"DnsFailure" or "TlsFailure" when no retry can help: a name that does not resolve (a typo, no network)
    or a certificate that is not trusted. Retrying them only spends the budget (measured: 2 min per identity)."""
    for item in _chain(exc):
        if isinstance(item, socket.gaierror | aiohttp.ClientConnectorDNSError):
            return "DnsFailure"
        if isinstance(item, ssl.SSLError | ssl.CertificateError | aiohttp.ClientSSLError):
            return "TlsFailure"
    return None


def classify(exc: BaseException) -> Verdict:
    """Transient or permanent; bugs (anything not from the wire) are permanent and surface as `failed`."""
    if network_failure(exc) is not None:
        return Verdict(False)
    if isinstance(exc, AttemptTimeout | asyncio.TimeoutError | ServiceRequestError | ServiceResponseError):
        return Verdict(True)
    if isinstance(exc, CredentialUnavailableError):
        # "not configured", "no identity endpoint": permanent, unless a connection failure caused it
        return Verdict(isinstance(exc.__cause__, ServiceRequestError | ServiceResponseError))
    if isinstance(exc, HttpResponseError):  # includes ClientAuthenticationError with a response
        status = status_of(exc)
        response = getattr(exc, "response", None)
        retry_after = parse_retry_after(getattr(response, "headers", None))
        if status in TRANSIENT_STATUS:
            return Verdict(True, retry_after)
        if isinstance(exc, ClientAuthenticationError):
            code = aadsts_code(exc)
            text = str(exc)
            if code in TRANSIENT_AADSTS or "temporarily_unavailable" in text:
                return Verdict(True, retry_after)
            if status is None and code is None:
                # azure-identity wraps a dropped connection in ClientAuthenticationError without a response.
                return Verdict(True, retry_after)
        return Verdict(False)
    return Verdict(False)


@dataclass
class CallStats:
    """What the retry layer did for one identity: attempts across its calls, and a refused wait."""

    attempts: int = 0
    refused_wait_s: float | None = None


class RetryAfterTooLong(Exception):
    """The server asked for a wait longer than the cap; the call is given up with the wait recorded."""

    def __init__(self, wait_s: float, cause: BaseException) -> None:
        super().__init__(f"server asked to retry after {wait_s:.0f} s, more than the cap")
        self.wait_s = wait_s
        self.cause = cause


async def _real_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


class Retrier:
    """Runs one call with the project's retry policy. `sleep` and `rng` are injectable so tests never wait."""

    def __init__(
        self,
        settings: RetrySettings,
        *,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep or _real_sleep
        self._rng = rng or random.Random()

    def _delay(self, exc: BaseException | None, attempt_number: int) -> float:
        """Full jitter backoff, but never earlier than the server's Retry-After (plus a little jitter)."""
        s = self.settings
        retry_after = classify(exc).retry_after if exc else None
        if retry_after is not None:
            return retry_after + self._rng.uniform(0, min(1.0, s.base_delay_s))
        return self._rng.uniform(0, min(s.max_delay_s, s.base_delay_s * 2 ** (attempt_number - 1)))

    def _should_retry(self, exc: BaseException) -> bool:
        verdict = classify(exc)
        if not verdict.transient:
            return False
        return not (verdict.retry_after is not None and verdict.retry_after > self.settings.retry_after_cap_s)

    def _final(self, exc: BaseException, stats: CallStats) -> BaseException:
        """The exception a caller sees once retrying is over: a too-long Retry-After becomes RetryAfterTooLong."""
        verdict = classify(exc)
        cap = self.settings.retry_after_cap_s
        if verdict.transient and verdict.retry_after is not None and verdict.retry_after > cap:
            stats.refused_wait_s = verdict.retry_after
            return RetryAfterTooLong(verdict.retry_after, exc)
        return exc

    async def _once(self, op: Callable[[], Awaitable[T]], stats: CallStats) -> T:
        """One counted attempt, bounded by the timeout."""
        stats.attempts += 1
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                return await op()
        except TimeoutError as exc:
            if isinstance(exc, AttemptTimeout):
                raise
            raise AttemptTimeout(f"no answer within {self.settings.timeout_s:g} s") from exc

    async def write(
        self, op: Callable[[], Awaitable[object]], landed: Callable[[], Awaitable[bool]], stats: CallStats
    ) -> None:
        """A write is never re-sent blindly: after a transient failure (the answer may be lost while the write
        took effect), `landed()` — a read, itself retried — decides; only a write that did not land is sent
        again. Worst case: `attempts` writes, each failed one followed by one checked read.
        """
        for number in range(1, self.settings.attempts + 1):
            try:
                await self._once(op, stats)
                return
            except BaseException as exc:  # classified here; cancellation is never retried
                if number == self.settings.attempts or not self._should_retry(exc):
                    final = self._final(exc, stats)
                    if final is exc:
                        raise
                    raise final from exc
                await self._sleep(self._delay(exc, number))
            if await landed():
                return

    async def call(self, op: Callable[[], Awaitable[T]], stats: CallStats) -> T:
        """Run `op` until it succeeds, fails permanently, or `attempts` are spent; count attempts in `stats`.

        Raises the last exception; a Retry-After beyond the cap raises `RetryAfterTooLong`. The first attempt
        runs without tenacity's machinery (most calls succeed at once); retries go through tenacity.
        """

        async def attempt() -> T:
            return await self._once(op, stats)

        try:
            return await attempt()
        except BaseException as exc:  # classified below; cancellation is never retried
            if self.settings.attempts <= 1 or not self._should_retry(exc):
                final = self._final(exc, stats)
                if final is exc:
                    raise
                raise final from exc
            first = exc
        await self._sleep(self._delay(first, 1))

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return self._delay(exc, state.attempt_number + 1)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.settings.attempts - 1),
            wait=wait,
            retry=retry_if_exception(self._should_retry),
            sleep=self._sleep,
            reraise=True,
        )
        try:
            return await retrying(attempt)
        except BaseException as exc:
            final = self._final(exc, stats)
            if final is exc:
                raise
            raise final from exc
