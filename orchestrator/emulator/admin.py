"""The emulator's own endpoints under `/_emulator/`: stats, the request log, faults, reset. Loopback only."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from .core import Core


class Admin:
    """`GET /_emulator/stats|requests|wire`, `POST /_emulator/faults|wire|reset`."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path
        if path == "/_emulator/stats" and request.method == "GET":
            return web.json_response(self.core.stats())
        if path == "/_emulator/requests" and request.method == "GET":
            return web.json_response([asdict(r) for r in list(self.core.requests)])
        if path == "/_emulator/faults" and request.method == "POST":
            try:
                body = await request.json()
                replace = bool(body.pop("replace", True)) if isinstance(body, dict) else True
                self.core.faults.configure(body, replace=replace)
            except (ValueError, TypeError, AttributeError) as exc:
                return web.json_response({"error": {"code": "BadFaults", "message": str(exc)}}, status=400)
            return web.json_response({"ok": True})
        if path == "/_emulator/wire":
            return await self._wire(request)
        if path == "/_emulator/reset" and request.method == "POST":
            self.core.requests.clear()
            self.core.counters.clear()
            return web.json_response({"ok": True})
        return web.json_response({"error": {"code": "NotFound", "message": path}}, status=404)

    async def _wire(self, request: web.Request) -> web.Response:
        """GET: the wire variants served; POST `{name: value}`: change those (others stay)."""
        if request.method == "POST":
            try:
                body = await request.json()
                self.core.wire = self.core.wire.updated(body)
            except ValueError as exc:  # WireError, or a body that is not JSON
                return web.json_response({"error": {"code": "BadWire", "message": str(exc)}}, status=400)
        return web.json_response(self.core.wire.as_dict())
