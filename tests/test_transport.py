"""The shared transport: verified TLS to the given CA, read in small chunks, whatever the size of the answer."""

from __future__ import annotations

import asyncio
import hashlib
from asyncio import sslproto
from pathlib import Path

import pytest
from aiohttp import web
from azure.core.rest import HttpRequest

from orchestrator.emulator.tls import prepare_tls
from orchestrator.transport import TLS_READ_BYTES, SharedTransport

BIG = bytes(range(256)) * 3000  # 768,000 bytes: 23 read chunks


async def _big_answer(_: web.Request) -> web.Response:
    return web.Response(body=BIG, content_type="application/octet-stream")


async def _fetch_through_sdk_transport(ca_dir: Path) -> tuple[int, bytes]:
    ca_file, server_ctx, _ = prepare_tls(ca_dir)
    app = web.Application()
    app.router.add_get("/big", _big_answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_ctx)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with SharedTransport(ca_bundle=ca_file, limit=4, timeout_s=5) as transport:
            sdk = transport.new()
            async with sdk:
                response = await sdk.send(HttpRequest("GET", f"https://127.0.0.1:{port}/big"))
                await response.read()
                return response.status_code, response.content
    finally:
        await runner.cleanup()


def test_tls_is_read_in_small_chunks_and_a_big_answer_still_arrives_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the run's transport is open, each TLS connection reads 32 KiB at a time (asyncio's default buffer,
    256 KiB per connection, was 16 MB for a pool of 64), and an answer of 768,000 bytes comes through the SDK's
    transport byte for byte."""
    status, body = asyncio.run(_fetch_through_sdk_transport(tmp_path))
    assert sslproto.SSLProtocol.max_size == TLS_READ_BYTES == 32 * 1024
    assert status == 200
    assert len(body) == len(BIG) > 20 * TLS_READ_BYTES
    assert hashlib.sha256(body).digest() == hashlib.sha256(BIG).digest()
