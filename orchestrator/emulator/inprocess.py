"""The emulator in-process: `Emulator` runs the HTTPS server on its own event loop in a daemon thread.

Tests and the demo use it as a context manager; `.world` is live state, `set_faults`/`script` change faults
at run time. `issue_token_for` and `mint_federated_assertion` mint tokens without a sign-in.
"""

from __future__ import annotations

import asyncio
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .common import RequestRecord
from .crypto import sign_rs256
from .faults import FaultSpec
from .model import FEDERATED_AUDIENCE, Link, Operator
from .server import EmulatorServer, build_fault_state, coerce_world
from .tls import prepare_tls
from .wire import Wire
from .world import World


class Emulator:
    """The emulator in-process: the aiohttp server on its own event loop in a daemon thread.

    Use as a context manager (or `.start()`/`.stop()`); `.world` is live state a test may change
    between runs.
    """

    def __init__(
        self,
        world: World | Mapping[str, Any] | str | Path | None = None,
        *,
        port: int = 0,
        latency_s: float = 0.0,
        faults: Mapping[str, Any] | None = None,
        seed: int = 0,
        ca_dir: str | Path | None = None,
        wire: Mapping[str, Any] | None = None,
    ) -> None:
        self.world = coerce_world(world)
        self._faults = build_fault_state(self.world, faults=faults, latency_s=latency_s, seed=seed)
        self._port = port
        self._ca_dir = Path(ca_dir) if ca_dir else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server = EmulatorServer(self.world, self._faults)
        self.set_wire(wire)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.ca_path = ""

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> Emulator:
        """Start serving; returns once the port is bound."""
        if self._thread is not None:
            return self
        self.ca_path, ctx, self._tmp = prepare_tls(self._ca_dir)
        ready = threading.Event()
        errors: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._server.start(ctx, self._port))
            except BaseException as exc:  # noqa: BLE001 - handed to the starting thread, which re-raises
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name="pal-emulator", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop serving and remove the temporary CA directory."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """`https://127.0.0.1:PORT` (no trailing slash)."""
        return self._server.url

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def authority_host(self) -> str:
        """What azure-identity takes as `authority`."""
        return self._server.url

    @property
    def arm_endpoint(self) -> str:
        """The ARM base URL (with a trailing slash), for `base_url=`."""
        return self._server.url + "/"

    @property
    def imds_endpoint(self) -> str:
        """The managed identity token endpoint (IMDS and App Service style)."""
        return self._server.url + "/metadata/identity/oauth2/token"

    @property
    def identity_header(self) -> str:
        """The value IDENTITY_HEADER must carry for App Service style managed identity."""
        return self._server.identity_header

    def vault_url(self, name: str) -> str:
        """`https://127.0.0.1:PORT/vaults/NAME`, the `vault_url` for SecretClient."""
        return f"{self._server.url}/vaults/{name}"

    def secret_uri(self, vault: str, name: str, version: str | None = None) -> str:
        """A secret's full identifier under the emulator's vault URL."""
        return f"{self.vault_url(vault)}/secrets/{name}" + (f"/{version}" if version else "")

    @property
    def operator(self) -> Operator:
        """The operator app's tenant_id, client_id and secret."""
        assert self.world.operator is not None
        return self.world.operator

    # -- inspection --------------------------------------------------------------------------------
    @property
    def requests(self) -> list[RequestRecord]:
        """The request log so far (oldest first)."""
        return list(self._server.requests)

    def counters(self) -> dict[tuple[str, int], int]:
        """Requests per (service, status); status 0 = connection dropped."""
        return dict(self._server.counters)

    def writes(self, tenant_id: str, object_id: str) -> int:
        """PUT/PATCH/DELETE count on one principal's link."""
        return self._server.link_writes.get((tenant_id.lower(), object_id.lower()), 0)

    def link(self, tenant_id: str, object_id: str) -> Link | None:
        """The current link of a principal, if any."""
        return self.world.links.get((tenant_id.lower(), object_id.lower()))

    def stats(self) -> dict[str, Any]:
        """The same JSON as GET /_emulator/stats."""
        return self._server.stats()

    def reset_log(self) -> None:
        """Clear the request log and counters (links and writes stay)."""
        self._server.requests.clear()
        self._server.counters.clear()

    # -- faults ------------------------------------------------------------------------------------
    def set_faults(
        self,
        service: str | None = None,
        tenant: str | None = None,
        *,
        spec: FaultSpec | None = None,
        latency_s: float | None = None,
        config: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        """Change faults at run time: `set_faults("arm", rate_429=0.5, retry_after=2)`, a per-tenant
        spec, a global `latency_s`, or a whole faults `config` mapping (as in faults.yaml)."""
        if config is not None:
            self._faults.configure(config, replace=True)
        if latency_s is not None:
            self._faults.latency_s = latency_s
        if service is not None:
            self._faults.set(service, tenant, spec, **options)

    # -- wire variants -----------------------------------------------------------------------------
    @property
    def wire(self) -> Wire:
        """The ManagementPartner wire variants served now (see wire.py / README.md)."""
        return self._server.wire

    def set_wire(self, changes: Mapping[str, Any] | None = None, /, **names: Any) -> Wire:
        """Change wire variants live: `em.set_wire(not_linked="flat", create_status=201)`; others stay.

        Raises WireError for an unknown name or value. Returns the variants now served.
        """
        self._server.wire = self._server.wire.updated({**(changes or {}), **names})
        return self._server.wire

    def reset_wire(self) -> Wire:
        """Back to the world file's variants (defaults where it names none)."""
        self._server.wire = Wire().updated(self.world.wire)
        return self._server.wire

    def clear_faults(self) -> None:
        """Remove all faults, scripts and the global latency."""
        self._faults.clear()

    def script(self, service: str, tenant: str | None, steps: list[str]) -> None:
        """Queue scripted answers for (service, tenant): e.g. `["429", "429", "ok"]`; tenant None = any."""
        self._faults.script(service, tenant, steps)


def issue_token_for(emulator: Emulator, tenant_id: str, client_id: str, resource: str) -> str:
    """Mint an access token directly (for tests that need a token without a sign-in)."""
    app = emulator.world.app(tenant_id, client_id)
    if app is None:
        raise KeyError(f"no app {client_id} in {tenant_id}")
    return emulator._server.issue_token(tenant_id.lower(), app, resource)[0]


def mint_federated_assertion(
    world: World | Emulator,
    issuer: str,
    subject: str,
    *,
    audience: str = FEDERATED_AUDIENCE,
    lifetime_s: int = 600,
    issued_at: float | None = None,
) -> str:
    """An RS256 assertion from a test issuer the world trusts (see World.add_federated_issuer).

    Pass a negative `lifetime_s` (or an old `issued_at`) to make an expired one (→ AADSTS700024).
    """
    w = world.world if isinstance(world, Emulator) else world
    fi = w.issuers.get(issuer)
    if fi is None:
        raise KeyError(f"issuer {issuer!r} is not registered in the world")
    iat = int(issued_at if issued_at is not None else time.time())
    claims = {"iss": issuer, "sub": subject, "aud": audience, "iat": iat, "nbf": iat, "exp": iat + lifetime_s,
              "jti": uuid.uuid4().hex}
    return sign_rs256(fi.key, claims, {"kid": fi.kid})
