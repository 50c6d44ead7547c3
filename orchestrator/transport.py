"""The run's one HTTPS transport: one aiohttp session, one verified SSLContext, behind every SDK client.

Every SDK client of a process (tokens, Key Vault, ARM) sends through the same connection pool, with our
timeouts and without the SDK's retries (the Retrier owns every re-send). Its TLS connections read in
`TLS_READ_BYTES` chunks: asyncio's default read buffer is 256 KiB per connection, allocated and zeroed when the
connection opens, so a pool of 64 connections held 16 MB for answers of a few KB (docs/performance.md).
"""

from __future__ import annotations

import ssl
from asyncio import sslproto
from typing import Any

import aiohttp
from azure.core.pipeline.transport import AioHttpTransport
from azure.identity import __version__ as _identity_version

from .errors import UsageError
from .pipeline import SINGLE_USE_CACHE, lean_policies, settle_tracing

#: Bytes a TLS connection reads at a time (two full TLS records); asyncio's own is 256 KiB.
TLS_READ_BYTES = 32 * 1024

_IDENTITY_MONIKER = f"identity/{_identity_version}"


def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """The system roots, plus the given CA bundle (e.g. the emulator's CA). Verification always on."""
    ctx = ssl.create_default_context()
    if ca_bundle:
        try:
            ctx.load_verify_locations(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"--ca-bundle {ca_bundle}: cannot load it as PEM certificates ({exc})") from exc
    return ctx


def small_tls_reads() -> None:
    """Read TLS in `TLS_READ_BYTES` chunks from now on, in this process.

    `SSLProtocol.max_size` is asyncio's public class attribute for the size it reads; each connection allocates
    a buffer that large when it opens. An answer bigger than a chunk is read in several: there is no size limit."""
    if sslproto.SSLProtocol.max_size > TLS_READ_BYTES:
        sslproto.SSLProtocol.max_size = TLS_READ_BYTES


class SharedTransport:
    """One aiohttp session (one connection pool, one SSLContext) behind every SDK client of a run."""

    def __init__(self, *, ca_bundle: str | None, limit: int, timeout_s: float) -> None:
        self._ctx = ssl_context(ca_bundle)
        self._limit = limit
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._token_policies: list[Any] | None = None

    async def __aenter__(self) -> SharedTransport:
        settle_tracing()
        small_tls_reads()
        connector = aiohttp.TCPConnector(ssl=self._ctx, limit=self._limit, limit_per_host=self._limit)
        self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        # aiohttp silently re-sends an idempotent request once when a reused connection drops, which would let
        # one counted attempt put two requests on the wire. Our retry layer owns every re-send; there is no
        # public switch, so turn the private one off where it exists.
        if hasattr(self._session, "_retry_connection"):
            self._session._retry_connection = False
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        """The run's one aiohttp session, for the benchmark's floor step (raw requests beside the SDKs' on the same
        pool). The SDK clients share it: a caller sends through it, and never changes or closes it."""
        assert self._session is not None, "use SharedTransport as an async context manager"
        return self._session

    def new(self) -> AioHttpTransport:
        """A transport for one SDK client; closing it leaves the shared session open.

        Its connect timeout is ours; it has no read timeout: every call runs inside one of the Retrier's attempts,
        whose timeout (as long, started before the request is sent) fires first. aiohttp's per-socket read
        timeout (300 s by default: a client's own timeout options do not reach a transport it is given) re-armed
        a timer on each chunk received and each request sent, for nothing."""
        assert self._session is not None, "use SharedTransport as an async context manager"
        return AioHttpTransport(session=self._session, session_owner=False, connection_timeout=self._timeout_s,
                                read_timeout=None)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments every SDK client gets: our transport (and its timeouts), SDK retries off."""
        return {"transport": self.new(), "retry_total": 0}

    def token_kwargs(self) -> dict[str, Any]:
        """`client_kwargs` for an identity's token credential, with the lean pipeline (`lean_policies`) and no
        token cache (`pipeline.SingleUseCache`)."""
        if self._token_policies is None:
            self._token_policies = lean_policies(_IDENTITY_MONIKER, None, arm=False)
        return {**self.client_kwargs(), "policies": self._token_policies, "cache": SINGLE_USE_CACHE}
