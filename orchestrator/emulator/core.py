"""The state every emulated service reads: the world, faults, address, logs, and the token authority.

`Core` issues and verifies the emulator's access tokens (one RS256 key per process), so Entra and IMDS mint
what ARM and Key Vault check. The dispatcher (`server.EmulatorServer`) is a `Core`; each service gets it.
"""

from __future__ import annotations

import secrets as _secrets
import threading
import time
import uuid
from collections import Counter, deque
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from .common import Caller, RequestRecord, norm_aud
from .crypto import JwtError, jwt_parts, key_id, sign_rs256, verify_signature
from .faults import FaultState
from .model import App
from .wire import Wire
from .world import World

TOKEN_LIFETIME_S = 3600
_TOKEN_KEY: rsa.RSAPrivateKey | None = None
_TOKEN_KEY_LOCK = threading.Lock()


def token_signing_key() -> rsa.RSAPrivateKey:
    """The RSA key access tokens are signed with; generated once per process, at the first start."""
    global _TOKEN_KEY
    with _TOKEN_KEY_LOCK:
        if _TOKEN_KEY is None:
            _TOKEN_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _TOKEN_KEY


class Core:
    """World, faults, address, request log and counters, and the token authority of one emulator."""

    def __init__(self, world: World, faults: FaultState, *, max_log: int = 1_000_000) -> None:
        self.world = world
        self.faults = faults
        self.url = ""
        self.port = 0
        self.identity_header = _secrets.token_urlsafe(16)
        self.requests: deque[RequestRecord] = deque(maxlen=max_log)
        self.counters: Counter[tuple[str, int]] = Counter()
        self.link_writes: Counter[tuple[str, str]] = Counter()
        self._key = token_signing_key()
        self._kid = key_id(self._key.public_key())
        self._verified: dict[str, dict[str, Any]] = {}
        self._issued: dict[tuple[str, str, str, int], tuple[float, str]] = {}
        self._started = time.monotonic()
        #: the wire variants served now; replaced whole (never mutated), so a request sees one consistent set
        self.wire = Wire().updated(world.wire)

    @property
    def signing_key(self) -> rsa.RSAPrivateKey:
        return self._key

    @property
    def kid(self) -> str:
        return self._kid

    def stats(self) -> dict[str, Any]:
        """Counters, writes, links and the process CPU seconds, as /_emulator/stats returns them."""
        counters: dict[str, dict[str, int]] = {}
        for (service, status), n in list(self.counters.items()):
            counters.setdefault(service, {})[str(status)] = n
        return {
            "url": self.url,
            "requests": sum(self.counters.values()),
            "counters": counters,
            "links": len(self.world.links),
            "writes": {f"{t}|{o}": n for (t, o), n in list(self.link_writes.items())},
            "writes_total": sum(self.link_writes.values()),
            "cpu_s": time.process_time(),
            "uptime_s": time.monotonic() - self._started,
        }

    # -- tokens ------------------------------------------------------------------------------------
    def issue_token(
        self, tenant_id: str, app: App, resource: str, *, lifetime_s: int = TOKEN_LIFETIME_S
    ) -> tuple[str, int]:
        """An access token for `app` in `tenant_id` with aud = resource; reused for 5 minutes or half its life (CPU)."""
        key = (tenant_id, app.client_id, resource, lifetime_s)
        now = time.time()
        cached = self._issued.get(key)
        if cached is not None and now - cached[0] < min(300, lifetime_s / 2):
            return cached[1], int(cached[0] + lifetime_s - now)
        iat = int(now)
        claims = {
            "aud": resource, "iss": f"{self.url}/{tenant_id}/v2.0", "iat": iat, "nbf": iat,
            "exp": iat + lifetime_s, "tid": tenant_id, "oid": app.object_id, "sub": app.object_id,
            "appid": app.client_id, "azp": app.client_id, "idtyp": "app", "ver": "1.0",
            "uti": uuid.uuid4().hex[:22],
        }
        token = sign_rs256(self._key, claims, {"kid": self._kid})
        if len(self._issued) > 200_000:
            self._issued.clear()
        self._issued[key] = (now, token)
        return token, lifetime_s

    def claims(self, token: str) -> dict[str, Any] | None:
        """Verified claims of a token this emulator issued (signature only; cached)."""
        claims = self._verified.get(token)
        if claims is not None:
            return claims
        try:
            header, claims, signing_input, signature = jwt_parts(token)
            if header.get("kid") != self._kid:
                return None
            verify_signature("RS256", self._key.public_key(), signing_input, signature)
        except JwtError:
            return None
        if len(self._verified) > 200_000:
            self._verified.clear()
        self._verified[token] = claims
        return claims

    @staticmethod
    def bearer(request: web.Request) -> str | None:
        """The bearer token of a request, if any."""
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    def peek_caller(self, request: web.Request) -> dict[str, Any] | None:
        """The claims of a request's token when it is one of ours (no expiry or audience check)."""
        token = self.bearer(request)
        return self.claims(token) if token else None

    def caller(self, request: web.Request, audiences: frozenset[str]) -> tuple[Caller | None, str]:
        """The verified caller, or None and why (`missing`, `invalid`, `expired`, `audience`)."""
        token = self.bearer(request)
        if not token:
            return None, "missing"
        claims = self.claims(token)
        if claims is None:
            return None, "invalid"
        if float(claims.get("exp", 0)) < time.time():
            return None, "expired"
        aud = norm_aud(str(claims.get("aud", "")))
        if aud not in audiences and aud != norm_aud(self.url):
            return None, "audience"
        return Caller(str(claims["tid"]), str(claims["oid"]), str(claims.get("appid", "")), aud), ""
