"""The one retry layer: attempts are bounded and counted, Retry-After honoured and capped, permanent errors final."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from orchestrator.retrying import (
    AttemptTimeout,
    CallStats,
    Retrier,
    RetryAfterTooLong,
    classify,
    parse_retry_after,
)
from orchestrator.settings import RetrySettings


class _Response:
    """The minimum an azure-core error reads from a response: a status, headers and a body."""

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: str = "") -> None:
        self.status_code = status
        self.headers = headers or {}
        self.reason = "reason"
        self._body = body

    def text(self) -> str:
        return self._body


def _http(status: int, headers: dict[str, str] | None = None) -> HttpResponseError:
    return HttpResponseError(message=f"status {status}", response=_Response(status, headers))  # type: ignore[arg-type]


class Recorder:
    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


def _retrier(rec: Recorder, **kw: float) -> Retrier:
    return Retrier(RetrySettings(**kw), sleep=rec, rng=random.Random(7))  # type: ignore[arg-type]


def _run(retrier: Retrier, outcomes: list[BaseException | str]) -> tuple[object, CallStats, int]:
    calls = 0
    stats = CallStats()

    async def op() -> str:
        nonlocal calls
        item = outcomes[min(calls, len(outcomes) - 1)]
        calls += 1
        if isinstance(item, BaseException):
            raise item
        return item

    async def main() -> object:
        try:
            return await retrier.call(op, stats)
        except BaseException as exc:  # noqa: BLE001 - the test inspects what escaped
            return exc

    return asyncio.run(main()), stats, calls


def test_persistent_503_makes_exactly_the_configured_attempts() -> None:
    """A call that keeps failing transiently is sent exactly `attempts` times, then the error surfaces."""
    rec = Recorder()
    result, stats, calls = _run(_retrier(rec, attempts=4), [_http(503)])
    assert isinstance(result, HttpResponseError)
    assert calls == 4 and stats.attempts == 4
    assert len(rec.sleeps) == 3


def test_success_on_the_last_allowed_attempt_counts_every_attempt() -> None:
    """'Fail until the last attempt, then succeed' is a success with its attempt count recorded."""
    rec = Recorder()
    result, stats, calls = _run(_retrier(rec, attempts=3), [_http(429), _http(500), "ok"])
    assert result == "ok"
    assert calls == 3 and stats.attempts == 3


def test_permanent_errors_are_never_retried() -> None:
    """A 400/403/404 is final on the first attempt, with no sleep."""
    for status in (400, 401, 403, 404, 409):
        rec = Recorder()
        result, _, calls = _run(_retrier(rec), [_http(status)])
        assert isinstance(result, HttpResponseError)
        assert calls == 1 and rec.sleeps == [], status


def test_retry_after_is_honoured_never_earlier() -> None:
    """The wait before a retry is at least the server's Retry-After."""
    rec = Recorder()
    result, _, _ = _run(_retrier(rec, attempts=3), [_http(429, {"Retry-After": "7"}), "ok"])
    assert result == "ok"
    assert len(rec.sleeps) == 1 and 7 <= rec.sleeps[0] <= 8


def test_retry_after_beyond_the_cap_fails_at_once_with_the_wait_recorded() -> None:
    """A Retry-After of a day is not slept: the call ends with RetryAfterTooLong carrying the wait."""
    rec = Recorder()
    result, stats, calls = _run(_retrier(rec, retry_after_cap_s=120), [_http(429, {"Retry-After": "86400"})])
    assert isinstance(result, RetryAfterTooLong)
    assert result.wait_s == 86400
    assert rec.sleeps == [] and calls == 1
    assert stats.refused_wait_s == 86400


def test_backoff_is_jittered_and_bounded() -> None:
    """Without Retry-After, waits are full-jitter within base·2^n and never above max_delay."""
    rec = Recorder()
    _run(_retrier(rec, attempts=8, base_delay_s=0.5, max_delay_s=3.0), [ServiceRequestError("dropped")])
    assert len(rec.sleeps) == 7
    assert all(0 <= s <= 3.0 for s in rec.sleeps)
    assert len(set(rec.sleeps)) > 1


def test_hanging_call_is_cut_by_the_attempt_timeout() -> None:
    """A call that never answers costs at most timeout × attempts (here with a tiny timeout)."""
    rec = Recorder()
    retrier = Retrier(RetrySettings(attempts=2, timeout_s=0.05), sleep=rec)
    stats = CallStats()

    async def hang() -> str:
        await asyncio.sleep(3600)
        return "never"

    async def main() -> BaseException | None:
        try:
            await retrier.call(hang, stats)
        except AttemptTimeout as exc:
            return exc
        return None

    assert isinstance(asyncio.run(main()), AttemptTimeout)
    assert stats.attempts == 2


def test_entra_throttling_codes_are_transient_but_bad_secrets_are_not() -> None:
    """AADSTS50196 (throttled) is retried; AADSTS7000215 (invalid secret) is final."""
    throttled = ClientAuthenticationError(message="AADSTS50196: The server terminated an operation", response=None)
    bad = ClientAuthenticationError(message="AADSTS7000215: Invalid client secret provided.",
                                    response=_Response(401))  # type: ignore[arg-type]
    assert classify(throttled).transient
    assert not classify(bad).transient


def test_retry_after_parses_seconds_ms_and_http_dates() -> None:
    """Retry-After in seconds, milliseconds headers and an HTTP date all become seconds."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after({"Retry-After": "5"}) == 5
    assert parse_retry_after({"retry-after-ms": "1500"}) == 1.5
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now=now) == pytest.approx(30)
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_a_single_attempt_policy_never_sleeps() -> None:
    """attempts=1 sends once and surfaces the transient error without a wait."""
    rec = Recorder()
    result, stats, calls = _run(_retrier(rec, attempts=1), [_http(503), "ok"])
    assert isinstance(result, HttpResponseError)
    assert calls == 1 and stats.attempts == 1 and rec.sleeps == []


def test_an_unavailable_credential_is_not_retried() -> None:
    """'Not configured' (CredentialUnavailableError) is final; only a connection failure behind it is transient."""
    from azure.identity import CredentialUnavailableError

    assert not classify(CredentialUnavailableError("EnvironmentCredential is not configured")).transient
    try:
        raise CredentialUnavailableError("no response from the IMDS endpoint") from ServiceRequestError("refused")
    except CredentialUnavailableError as exc:
        assert classify(exc).transient
    assert issubclass(AttemptTimeout, TimeoutError)
