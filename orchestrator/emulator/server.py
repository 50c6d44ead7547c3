"""The emulator's HTTPS server: one aiohttp app on one port that dispatches to the emulated services.

Entra ID (`entra`), Key Vault (`keyvault`), ARM (`arm`: ManagementPartner in `partner`, recognition reads in
`rbac`), managed identity (`imds`) and the admin endpoints (`admin`) each live in their own module; this one
checks the Host, routes by path, applies faults and records every request. It speaks the wire protocols the
unmodified Azure SDKs use, so tests exercise TLS, challenge auth, error mapping and Retry-After for real.
`EmulatorServer` is the asyncio core; `inprocess.Emulator` runs it on its own loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web

from . import ports
from .admin import Admin
from .arm import METADATA_PATH, Arm
from .common import Handler, Match, Reply, RequestRecord, arm_error
from .core import Core, token_signing_key
from .entra import Entra, aad_error
from .faults import Decision, FaultState
from .graph import Graph
from .imds import IMDS_PATH, Imds
from .keyvault import KeyVault
from .tls import prepare_tls
from .world import World, load_world

__all__ = [
    "EmulatorServer",
    "RequestRecord",
    "build_fault_state",
    "coerce_world",
    "prepare_tls",
    "token_signing_key",
]

_LOG_QUERY_KEYS = frozenset({"api-version", "resource", "client_id", "$filter", "object_id", "maxresults"})


class EmulatorServer(Core):
    """The asyncio core: one aiohttp app serving every emulated service."""

    def __init__(self, world: World, faults: FaultState, *, max_log: int = 1_000_000) -> None:
        super().__init__(world, faults, max_log=max_log)
        self._runner: web.AppRunner | None = None
        self.entra = Entra(self)
        self.keyvault = KeyVault(self)
        self.graph = Graph(self)
        self.arm = Arm(self)
        self.imds = Imds(self)
        self.admin = Admin(self)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self, ssl_context: ssl.SSLContext, port: int = 0) -> None:
        """Bind 127.0.0.1 only and serve."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site: web.BaseSite
        if port == 0:
            # Never a port an earlier emulator of this process had: see ports.py (Key Vault challenge cache).
            site = web.SockSite(self._runner, ports.fresh_socket(), ssl_context=ssl_context, backlog=1024)
        else:
            site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=ssl_context, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        ports.remember(self.port)
        self.url = f"https://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- dispatch ----------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Check Host, route, apply faults, answer, and record the request."""
        host = (request.host or "").rsplit(":", 1)[0] if not (request.host or "").startswith("[") else ""
        path = request.path
        if host not in ("127.0.0.1", "localhost"):
            return self._record(request, "other", None, None, web.json_response(
                {"error": {"code": "MisdirectedRequest", "message": "This emulator answers only for 127.0.0.1."}},
                status=421))
        if path.startswith("/_emulator/"):
            return await self.admin.handle(request)
        route = self._route(request)
        if route is None:
            return self._record(request, "other", None, None, web.json_response(
                {"error": {"code": "NotFound", "message": f"No emulated service at {path}"}}, status=404))
        service, tenant, handler = route
        decision = self.faults.decide(service, tenant, request.method)
        if decision.latency_s > 0:
            await asyncio.sleep(decision.latency_s)
        if decision.kind in ("drop", "hang"):
            # Recorded first: a client that gives up on a hang cancels this handler.
            self._record(request, service, tenant, decision, None, status=0)
            if decision.kind == "hang":
                await asyncio.sleep(decision.hang_s)
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=500)
        if decision.kind in ("429", "500", "503"):
            response = self._fault_response(service, decision)
        else:
            try:
                response = await handler(request)
            except Reply as reply:
                response = reply.response
        if service == "arm":
            self.arm.stamp(request, response, tenant)
        return self._record(request, service, tenant, decision, response)

    async def _arm(self, request: web.Request) -> web.Response:
        """The ARM entry point; an attribute looked up per request, so a test may wrap it."""
        return await self.arm.handle(request)

    def _route(self, request: web.Request) -> tuple[str, str | None, Handler] | None:
        low = request.path.lower()
        hit: Match | None
        if low.startswith(("/vaults/", "/secrets/")):
            service, hit = "keyvault", self.keyvault.match(request)
        elif low.startswith(("/providers/", "/subscriptions")):
            tenant, _ = self.arm.match(request)
            service, hit = "arm", (tenant, self._arm)
        elif "/" + low.lstrip("/") == METADATA_PATH:  # `az cloud register` with a trailing-slash URL sends //
            service, hit = "arm", (None, self.arm.metadata)
        elif low.startswith("/v1.0/"):
            service, hit = "graph", self.graph.match(request)
        elif low == IMDS_PATH:
            service, hit = "imds", self.imds.match(request)
        else:
            service, hit = "entra", self.entra.match(request)
        return (service, hit[0], hit[1]) if hit is not None else None

    def _record(
        self,
        request: web.Request,
        service: str,
        tenant: str | None,
        decision: Decision | None,
        response: web.Response | None,
        *,
        status: int | None = None,
    ) -> web.Response:
        path = request.path + _logged_query(request.query_string)
        code = status if status is not None else (response.status if response is not None else 0)
        self.requests.append(RequestRecord(
            time.time(), service, request.method, path, tenant, code,
            decision.label if decision else None, decision.retry_after if decision else None,
        ))
        self.counters[(service, code)] += 1
        return response if response is not None else web.Response(status=500)

    def _fault_response(self, service: str, decision: Decision) -> web.Response:
        status = int(decision.kind)
        headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after is not None else {}
        if service in ("entra", "imds"):
            code, error, text = {
                429: (50196, "temporarily_unavailable", "The server is temporarily throttling requests."),
                500: (90055, "server_error", "An internal server error occurred."),
                503: (90055, "temporarily_unavailable", "The service is temporarily unavailable."),
            }[status]
            return aad_error(self.url, status, error, code, text, headers=headers)
        message = {429: "Too many requests. Please retry after the time in Retry-After.",
                   500: "The server encountered an internal error.", 503: "The service is unavailable."}[status]
        if service == "keyvault":
            kv_code = {429: "Throttled", 500: "InternalServerError", 503: "ServiceUnavailable"}[status]
            return web.json_response({"error": {"code": kv_code, "message": message}}, status=status, headers=headers)
        arm_code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}[status]
        return arm_error(status, arm_code, message, headers)


@functools.lru_cache(maxsize=4096)
def _logged_query(query_string: str) -> str:
    """`?…` with the logged keys of a query string, or "" (most requests repeat a few query strings: cached)."""
    query = [(k, v) for k, v in parse_qsl(query_string, keep_blank_values=True) if k in _LOG_QUERY_KEYS]
    return "?" + urlencode(query) if query else ""


def build_fault_state(
    world: World, *, faults: Mapping[str, Any] | None, latency_s: float, seed: int
) -> FaultState:
    """Faults from the world file, then the faults option, then the latency option (each wins over the last)."""
    state = FaultState()
    state.configure({**(world.faults or {}), "seed": seed})
    if faults:
        state.configure(faults, replace=False)
    if latency_s or world.latency_s:
        state.latency_s = latency_s or world.latency_s
    return state


def coerce_world(world: World | Mapping[str, Any] | str | Path | None) -> World:
    """A World from a World, a world mapping, a YAML path, or None (a minimal world with an operator)."""
    if isinstance(world, World):
        return world
    if world is None:
        return World.from_dict({})
    if isinstance(world, str | Path):
        return load_world(world)
    return World.from_dict(world)
