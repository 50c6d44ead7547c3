"""The emulator's HTTPS server: Entra ID, Key Vault, ManagementPartner (ARM), IMDS, and admin endpoints.

One aiohttp application on one port, routed by path (see README.md). It speaks the wire protocols the
unmodified Azure SDKs use, so tests exercise TLS, challenge auth, error mapping and Retry-After for real.
`EmulatorServer` is the asyncio core; `Emulator` runs it on its own loop in a daemon thread.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import importlib.resources
import logging
import re
import secrets as _secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from .crypto import (
    JwtError,
    jwk,
    jwt_parts,
    key_id,
    make_tls_material,
    sign_rs256,
    utcnow,
    verify_signature,
)
from .faults import Decision, FaultSpec, FaultState
from .world import BUILTIN_ROLES, FEDERATED_AUDIENCE, App, Link, Operator, Tenant, World, load_world

log = logging.getLogger("orchestrator.emulator")

PAL_API_VERSION = "2018-02-01"
KV_RESOURCE = "https://vault.azure.net"
KV_AUDIENCES = frozenset({"https://vault.azure.net", "https://vault.azure.cn", "https://vault.usgovcloudapi.net"})
ARM_AUDIENCES = frozenset({
    "https://management.azure.com", "https://management.core.windows.net",
    "https://management.chinacloudapi.cn", "https://management.usgovcloudapi.net",
})
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_LIFETIME_S = 3600
_LOG_QUERY_KEYS = frozenset({"api-version", "resource", "client_id", "$filter", "object_id", "maxresults"})
_TOKEN_KEY: rsa.RSAPrivateKey | None = None
_TOKEN_KEY_LOCK = threading.Lock()

_RE_TOKEN = re.compile(r"^/([^/]+)/oauth2/(?:v2\.0/)?token$")
_RE_OIDC = re.compile(r"^/([^/]+)/(?:v2\.0/)?\.well-known/openid-configuration$")
_RE_KEYS = re.compile(r"^/([^/]+)/discovery/(?:v2\.0/)?keys$")
_RE_KV = re.compile(r"^/vaults/([^/]+)/secrets/([^/]+)(?:/([^/]*))?/?$", re.IGNORECASE)
_RE_PARTNER = re.compile(r"^/providers/microsoft\.managementpartner/partners(?:/([^/]+))?/?$", re.IGNORECASE)
_RE_OPERATIONS = re.compile(r"^/providers/microsoft\.managementpartner/operations/?$", re.IGNORECASE)
_RE_SUBS = re.compile(r"^/subscriptions/?$", re.IGNORECASE)
_RE_SUB = re.compile(r"^/subscriptions/([^/]+)/?$", re.IGNORECASE)
_RE_ROLE_ASSIGNMENTS = re.compile(
    r"^/subscriptions/([^/]+)/providers/microsoft\.authorization/roleassignments/?$", re.IGNORECASE
)
_RE_ROLE_DEFINITION = re.compile(
    r"^(/subscriptions/[^/]+)?/providers/microsoft\.authorization/roledefinitions/([^/]+)/?$", re.IGNORECASE
)
_RE_ASSIGNED_TO = re.compile(r"assignedTo\('([^']+)'\)", re.IGNORECASE)


def token_signing_key() -> rsa.RSAPrivateKey:
    """The RSA key access tokens are signed with; generated once per process, at the first start."""
    global _TOKEN_KEY
    with _TOKEN_KEY_LOCK:
        if _TOKEN_KEY is None:
            _TOKEN_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return _TOKEN_KEY


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _epoch(value: dt.datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def _norm_aud(aud: str) -> str:
    return aud.rstrip("/").lower()


def _role_names() -> dict[str, str]:
    """Role definition GUID → role name, from BUILTIN_ROLES and the packaged pec-roles.csv."""
    names = {v: k for k, v in BUILTIN_ROLES.items()}
    try:
        text = importlib.resources.files("orchestrator").joinpath("data/pec-roles.csv").read_text("utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return names
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    for row in rows:
        if row.get("role_definition_id") and row.get("role_name"):
            names.setdefault(row["role_definition_id"].lower(), row["role_name"])
    return names


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One line of the request log. Never holds a secret, a token or a secret value."""

    time: float
    service: str
    method: str
    path: str
    tenant: str | None
    status: int
    fault: str | None = None
    retry_after: int | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a verified bearer token says the caller is."""

    tenant_id: str
    object_id: str
    client_id: str
    audience: str


class _Reply(Exception):
    """Raised inside handlers to answer at once with `response`."""

    def __init__(self, response: web.Response) -> None:
        super().__init__("reply")
        self.response = response


class EmulatorServer:
    """The asyncio core: one aiohttp app serving every emulated service."""

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
        self._issued: dict[tuple[str, str, str], tuple[float, str]] = {}
        self._runner: web.AppRunner | None = None
        self._role_names = _role_names()
        self._started = time.monotonic()

    # -- lifecycle ---------------------------------------------------------------------------------
    async def start(self, ssl_context: ssl.SSLContext, port: int = 0) -> None:
        """Bind 127.0.0.1 only and serve."""
        app = web.Application(client_max_size=1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=ssl_context, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None and isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- inspection --------------------------------------------------------------------------------
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
            return await self._admin(request)
        route = self._route(request)
        if route is None:
            return self._record(request, "other", None, None, web.json_response(
                {"error": {"code": "NotFound", "message": f"No emulated service at {path}"}}, status=404))
        service, tenant, handler = route
        decision = self.faults.decide(service, tenant)
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
            return self._record(request, service, tenant, decision, self._fault_response(service, decision))
        try:
            response = await handler(request)
        except _Reply as reply:
            response = reply.response
        return self._record(request, service, tenant, decision, response)

    def _route(
        self, request: web.Request
    ) -> tuple[str, str | None, Callable[[web.Request], Awaitable[web.Response]]] | None:
        path = request.path
        low = path.lower()
        if low.startswith("/vaults/"):
            m = _RE_KV.match(path)
            if m:
                return "keyvault", m.group(1).lower(), self._keyvault
            return None
        if low.startswith(("/providers/", "/subscriptions")):
            caller = self._peek_caller(request)
            tid = caller.get("tid") if caller else None
            return "arm", str(tid) if tid else None, self._arm
        if low == "/metadata/identity/oauth2/token":
            return "imds", request.query.get("client_id"), self._imds
        if low == "/common/discovery/instance":
            return "entra", "common", self._instance_discovery
        for regex, handler in ((_RE_TOKEN, self._token), (_RE_OIDC, self._openid), (_RE_KEYS, self._keys)):
            m = regex.match(path)
            if m:
                tenant = self.world.resolve_tenant(m.group(1))
                return "entra", tenant.tenant_id if tenant else m.group(1).lower(), handler
        return None

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
        query = [(k, v) for k, v in parse_qsl(request.query_string, keep_blank_values=True) if k in _LOG_QUERY_KEYS]
        path = request.path + ("?" + urlencode(query) if query else "")
        code = status if status is not None else (response.status if response is not None else 0)
        self.requests.append(RequestRecord(
            time.time(), service, request.method, path, tenant, code,
            decision.label if decision else None, decision.retry_after if decision and decision.kind == "429" else None,
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
            return self._aad_error(status, error, code, text, headers=headers)
        arm_code = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}[status]
        message = {429: "Too many requests. Please retry after the time in Retry-After.",
                   500: "The server encountered an internal error.", 503: "The service is unavailable."}[status]
        if service == "keyvault":
            kv_code = {429: "Throttled", 500: "InternalServerError", 503: "ServiceUnavailable"}[status]
            return web.json_response({"error": {"code": kv_code, "message": message}}, status=status, headers=headers)
        return web.json_response({"error": {"code": arm_code, "message": message}, "code": arm_code,
                                  "message": message}, status=status, headers=headers)

    # -- admin -------------------------------------------------------------------------------------
    async def _admin(self, request: web.Request) -> web.Response:
        path = request.path
        if path == "/_emulator/stats" and request.method == "GET":
            return web.json_response(self.stats())
        if path == "/_emulator/requests" and request.method == "GET":
            return web.json_response([asdict(r) for r in list(self.requests)])
        if path == "/_emulator/faults" and request.method == "POST":
            try:
                body = await request.json()
                replace = bool(body.pop("replace", True)) if isinstance(body, dict) else True
                self.faults.configure(body, replace=replace)
            except (ValueError, TypeError, AttributeError) as exc:
                return web.json_response({"error": {"code": "BadFaults", "message": str(exc)}}, status=400)
            return web.json_response({"ok": True})
        if path == "/_emulator/reset" and request.method == "POST":
            self.requests.clear()
            self.counters.clear()
            return web.json_response({"ok": True})
        return web.json_response({"error": {"code": "NotFound", "message": path}}, status=404)

    # -- Entra ID ----------------------------------------------------------------------------------
    def _aad_error(
        self, status: int, error: str, code: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        ts = utcnow().strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}",
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": f"{self.url}/error?code={code}",
        }
        return web.json_response(body, status=status, headers=headers)

    def _unknown_tenant(self, name: str) -> web.Response:
        return self._aad_error(
            400, "invalid_request", 90002,
            f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing "
            "into the correct cloud. Check with your subscription administrator, this may happen if there "
            "are no active subscriptions for the tenant.",
        )

    def _tenant_or_reply(self, name: str) -> Tenant:
        tenant = self.world.resolve_tenant(name)
        if tenant is None:
            raise _Reply(self._unknown_tenant(name))
        if tenant.deactivated:
            raise _Reply(self._aad_error(
                400, "invalid_request", 5000224, "We are sorry, this resource is not available.",
            ))
        return tenant

    async def _instance_discovery(self, request: web.Request) -> web.Response:
        host = f"127.0.0.1:{self.port}"
        endpoint = request.query.get("authorization_endpoint", "")
        m = re.match(r"^https://[^/]+/([^/]+)/", endpoint)
        tenant = m.group(1) if m else "common"
        return web.json_response({
            "tenant_discovery_endpoint": f"{self.url}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host, "localhost"]}],
        })

    async def _openid(self, request: web.Request) -> web.Response:
        name = request.match_info["tail"].split("/", 1)[0]
        tenant = self.world.resolve_tenant(name)
        if tenant is None:
            return self._unknown_tenant(name)
        tid = tenant.tenant_id
        base = f"{self.url}/{tid}"
        return web.json_response({
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{base}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU",
            "cloud_instance_name": "127.0.0.1",
        })

    async def _keys(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk(self._key.public_key(), self._kid)]})

    async def _token(self, request: web.Request) -> web.Response:
        name = request.match_info["tail"].split("/", 1)[0]
        if request.method != "POST":
            return self._aad_error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
        form = await request.post()
        tenant = self._tenant_or_reply(name)
        grant = str(form.get("grant_type", ""))
        if grant != "client_credentials":
            return self._aad_error(400, "unsupported_grant_type", 70003,
                                   f"The app requested an unsupported grant type '{grant}'.")
        client_id = str(form.get("client_id", "")).lower()
        scope = str(form.get("scope", ""))
        assertion = form.get("client_assertion")
        if not client_id and isinstance(assertion, str):
            try:
                client_id = str(jwt_parts(assertion)[1].get("sub", "")).lower()
            except JwtError:
                client_id = ""
        app = tenant.apps.get(client_id)
        if app is None:
            return self._aad_error(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant.tenant_id}'. "
                "This can happen if the application has not been installed by the administrator of the tenant "
                "or consented to by any user in the tenant. You may have sent your authentication request to "
                "the wrong tenant.",
            )
        if not app.enabled:
            return self._aad_error(400, "unauthorized_client", 7000112,
                                   f"Application '{app.client_id}'({app.display_name}) is disabled.")
        secret = form.get("client_secret")
        if isinstance(secret, str) and secret:
            self._check_secret(app, secret)
        elif isinstance(assertion, str) and assertion:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return self._aad_error(400, "invalid_request", 50027, "Invalid client_assertion_type.")
            self._check_assertion(tenant, app, assertion, request)
        else:
            return self._aad_error(
                401, "invalid_client", 7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        resource = self._resource(scope)
        if resource is None:
            return self._aad_error(400, "invalid_scope", 1002012,
                                   f"The provided value for scope {scope} is not valid. Client credential flows "
                                   "must have a scope value with /.default suffixed to the resource identifier.")
        token, expires_in = self.issue_token(tenant.tenant_id, app, resource)
        return web.json_response({
            "token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": token,
        })

    @staticmethod
    def _resource(scope: str) -> str | None:
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return None
        return scopes[0][: -len(".default")]

    def _check_secret(self, app: App, secret: str) -> None:
        now = utcnow()
        for registered in app.secrets:
            if _secrets.compare_digest(registered.value.encode(), secret.encode()):
                if registered.expires is not None and registered.expires <= now:
                    raise _Reply(self._aad_error(
                        401, "invalid_client", 7000222,
                        f"The provided client secret keys for app '{app.client_id}' are expired. Visit the Azure "
                        "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider "
                        "using certificate credentials for added security: https://aka.ms/certCreds.",
                    ))
                return
        raise _Reply(self._aad_error(
            401, "invalid_client", 7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{app.client_id}'.",
        ))

    def _check_assertion(self, tenant: Tenant, app: App, assertion: str, request: web.Request) -> None:
        def bad(code: int, message: str, status: int = 401) -> _Reply:
            return _Reply(self._aad_error(status, "invalid_client", code, message))

        try:
            header, claims, signing_input, signature = jwt_parts(assertion)
        except JwtError:
            raise bad(50027, "JWT token is invalid or malformed.", 400) from None
        alg = str(header.get("alg", ""))
        now = time.time()
        iss = str(claims.get("iss", ""))
        if iss.lower() != app.client_id:
            self._check_federated(app, header, claims, signing_input, signature, now)
            return
        x5t_256 = header.get("x5t#S256")
        x5t = header.get("x5t")
        cert = None
        for candidate in app.certificates:
            if (x5t_256 and candidate.sha256_b64 == str(x5t_256).rstrip("=")) or (
                x5t and candidate.sha1_b64 == str(x5t).rstrip("=")
            ):
                cert = candidate
                break
        if cert is None:
            thumb = x5t_256 or x5t or "none"
            raise bad(700027, "The certificate with identifier used to sign the client assertion is not "
                              f"registered on application. [Reason - The key was not found., Thumbprint of key "
                              f"used by client: '{thumb}', Please visit the Azure Portal, Graph Explorer or "
                              "directly use MS Graph to see configured keys for app Id "
                              f"'{app.client_id}'.]")
        try:
            verify_signature(alg, cert.certificate.public_key(), signing_input, signature)
        except JwtError:
            raise bad(700027, "Client assertion failed signature validation. [Reason - The provided "
                              "signature value did not match the expected signature value.]") from None
        if cert.not_after.timestamp() < now:
            raise bad(700027, "Client assertion contains an invalid signature. [Reason - The key used is "
                              f"expired., Thumbprint of key used by client: '{cert.sha1_hex}']")
        self._check_times(claims, now, federated=False)
        aud = str(claims.get("aud", ""))
        m = re.match(r"^https://(?:127\.0\.0\.1|localhost):(\d+)/([^/]+)/oauth2/(?:v2\.0/)?token/?$", aud)
        aud_tenant = self.world.resolve_tenant(m.group(2)) if m else None
        if m is None or int(m.group(1)) != self.port or aud_tenant is not tenant:
            raise bad(700027, "Client assertion contains an invalid audience claim. [Reason - The audience "
                              "must be the token endpoint of this tenant.]")

    def _check_times(self, claims: Mapping[str, Any], now: float, *, federated: bool) -> None:
        try:
            exp = float(claims["exp"])
            nbf = float(claims.get("nbf", 0))
        except (KeyError, TypeError, ValueError):
            raise _Reply(self._aad_error(400 if federated else 401, "invalid_client", 50027,
                                         "JWT token is invalid or malformed (exp).")) from None
        if exp < now - 300 or nbf > now + 300:
            when = dt.datetime.fromtimestamp(now, dt.UTC)
            raise _Reply(self._aad_error(
                400 if federated else 401, "invalid_client", 700024,
                f"Client assertion is not within its valid time range. Current time: {_iso(when)}, "
                f"assertion valid from {_iso(dt.datetime.fromtimestamp(nbf, dt.UTC))}, "
                f"expiry time of assertion {_iso(dt.datetime.fromtimestamp(exp, dt.UTC))}.",
            ))

    def _check_federated(
        self, app: App, header: Mapping[str, Any], claims: Mapping[str, Any], signing_input: bytes,
        signature: bytes, now: float,
    ) -> None:
        iss = str(claims.get("iss", ""))
        sub = str(claims.get("sub", ""))
        aud = claims.get("aud", "")
        auds = {str(a) for a in aud} if isinstance(aud, list) else {str(aud)}
        issuer = self.world.issuers.get(iss)
        match = [f for f in app.federated if f.issuer == iss and f.subject == sub and f.audience in auds]
        if issuer is None or not match:
            raise _Reply(self._aad_error(
                400, "invalid_client", 700211,
                f"No matching federated identity record found for presented assertion issuer '{iss}'. Please "
                "check your federated identity credential Subject, Audience and Issuer against the presented "
                "assertion.",
            ))
        try:
            verify_signature(str(header.get("alg", "")), issuer.key.public_key(), signing_input, signature)
        except JwtError:
            raise _Reply(self._aad_error(400, "invalid_client", 50013,
                                         "Assertion failed signature validation.")) from None
        self._check_times(claims, now, federated=True)

    def issue_token(self, tenant_id: str, app: App, resource: str) -> tuple[str, int]:
        """An access token for `app` in `tenant_id` with aud = resource; reused for 5 minutes (CPU)."""
        key = (tenant_id, app.client_id, resource)
        now = time.time()
        cached = self._issued.get(key)
        if cached is not None and now - cached[0] < 300:
            return cached[1], int(cached[0] + TOKEN_LIFETIME_S - now)
        iat = int(now)
        claims = {
            "aud": resource, "iss": f"{self.url}/{tenant_id}/v2.0", "iat": iat, "nbf": iat,
            "exp": iat + TOKEN_LIFETIME_S, "tid": tenant_id, "oid": app.object_id, "sub": app.object_id,
            "appid": app.client_id, "azp": app.client_id, "idtyp": "app", "ver": "1.0",
            "uti": uuid.uuid4().hex[:22],
        }
        token = sign_rs256(self._key, claims, {"kid": self._kid})
        if len(self._issued) > 200_000:
            self._issued.clear()
        self._issued[key] = (now, token)
        return token, TOKEN_LIFETIME_S

    # -- bearer tokens -----------------------------------------------------------------------------
    def _claims(self, token: str) -> dict[str, Any] | None:
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
    def _bearer(request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            return auth[7:].strip()
        return None

    def _peek_caller(self, request: web.Request) -> dict[str, Any] | None:
        token = self._bearer(request)
        return self._claims(token) if token else None

    def _caller(self, request: web.Request, audiences: frozenset[str]) -> tuple[Caller | None, str]:
        """The verified caller, or None and why."""
        token = self._bearer(request)
        if not token:
            return None, "missing"
        claims = self._claims(token)
        if claims is None:
            return None, "invalid"
        if float(claims.get("exp", 0)) < time.time():
            return None, "expired"
        aud = _norm_aud(str(claims.get("aud", "")))
        if aud not in audiences and aud != _norm_aud(self.url):
            return None, "audience"
        return Caller(str(claims["tid"]), str(claims["oid"]), str(claims.get("appid", "")), aud), ""

    # -- Key Vault ---------------------------------------------------------------------------------
    async def _keyvault(self, request: web.Request) -> web.Response:
        m = _RE_KV.match(request.path)
        assert m is not None
        vault_name, name, version = m.group(1), m.group(2), m.group(3) or None
        vault = self.world.vaults.get(vault_name.lower())
        if vault is None:
            return web.json_response({"error": {"code": "VaultNotFound",
                                                "message": f"Vault '{vault_name}' does not exist."}}, status=404)
        if request.method != "GET":
            return self._kv_error(405, "BadRequest", f"Method {request.method} is not supported here.")
        challenge = {
            "WWW-Authenticate": f'Bearer authorization="{self.url}/{vault.tenant_id}", resource="{KV_RESOURCE}"'
        }
        caller, why = self._caller(request, KV_AUDIENCES)
        if caller is None:
            message = {
                "missing": "AKV10000: Request is missing a Bearer or PoP token.",
                "invalid": "AKV10022: Invalid token.",
                "expired": "AKV10020: Token expired.",
                "audience": "AKV10022: Invalid audience.",
            }[why]
            return web.json_response({"error": {"code": "Unauthorized", "message": message}}, status=401,
                                     headers=challenge)
        if caller.tenant_id != vault.tenant_id:
            return web.json_response(
                {"error": {"code": "Unauthorized",
                           "message": f"AKV10032: Invalid issuer. Expected one of https://sts.windows.net/"
                                      f"{vault.tenant_id}/, found https://sts.windows.net/{caller.tenant_id}/."}},
                status=401, headers=challenge)
        if caller.client_id not in vault.readers:
            return self._kv_error(
                403, "Forbidden",
                f"The user, group or application 'appid={caller.client_id};oid={caller.object_id};"
                f"iss=https://sts.windows.net/{caller.tenant_id}/' does not have secrets get permission on key "
                f"vault '{vault.name};location=emulator'. For help resolving this issue, please see "
                "https://go.microsoft.com/fwlink/?linkid=2125287",
                inner="AccessDenied",
            )
        versions = vault.secrets.get(name.lower())
        found = None
        if versions:
            found = next((v for v in versions if v.version == version.lower()), None) if version else versions[-1]
        if found is None:
            shown = f"{name}/{version}" if version else name
            return self._kv_error(404, "SecretNotFound",
                                  f"A secret with (name/id) {shown} was not found in this key vault. If you "
                                  "recently deleted this secret you may be able to recover it using the correct "
                                  "recovery command. For help resolving this issue, please see "
                                  "https://go.microsoft.com/fwlink/?linkid=2125182")
        if not found.enabled:
            return self._kv_error(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                                  inner="SecretDisabled")
        display = vault.secret_names.get(name.lower(), name)
        attributes: dict[str, Any] = {
            "enabled": found.enabled, "created": _epoch(found.created), "updated": _epoch(found.updated),
            "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90,
        }
        if found.exp:
            attributes["exp"] = _epoch(found.exp)
        if found.nbf:
            attributes["nbf"] = _epoch(found.nbf)
        body: dict[str, Any] = {
            "value": found.value,
            # SecretClient parses ids as https://HOST/secrets/NAME/VERSION only, so the /vaults/NAME prefix
            # of the emulator's vault URLs cannot appear here (KeyVaultSecretIdentifier would raise).
            "id": f"{self.url}/secrets/{display}/{found.version}",
            "attributes": attributes,
            "tags": {},
        }
        if found.content_type:
            body["contentType"] = found.content_type
        return web.json_response(body)

    @staticmethod
    def _kv_error(status: int, code: str, message: str, *, inner: str | None = None) -> web.Response:
        error: dict[str, Any] = {"code": code, "message": message}
        if inner:
            error["innererror"] = {"code": inner}
        return web.json_response({"error": error}, status=status)

    # -- ARM ---------------------------------------------------------------------------------------
    @staticmethod
    def _arm_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
        return web.json_response({"error": {"code": code, "message": message}, "code": code, "message": message},
                                 status=status, headers=headers)

    async def _arm(self, request: web.Request) -> web.Response:
        caller, why = self._caller(request, ARM_AUDIENCES)
        if caller is None:
            message = {
                "missing": "Authentication failed. The 'Authorization' header is missing.",
                "invalid": "The access token is invalid.",
                "expired": "The access token has expired.",
                "audience": "The access token has an invalid audience for this resource.",
            }[why]
            return self._arm_error(401, "InvalidAuthenticationToken", message, {
                "WWW-Authenticate": f'Bearer authorization_uri="{self.url}/", error="invalid_token", '
                                    f'error_description="{message}"'})
        path = request.path
        api_version = request.query.get("api-version")
        if not api_version:
            return self._arm_error(400, "MissingApiVersionParameter",
                                   "The api-version query parameter (?api-version=) is required for all requests.")
        m = _RE_PARTNER.match(path)
        if m:
            if api_version != PAL_API_VERSION:
                return self._bad_api_version(api_version, "Microsoft.ManagementPartner", [PAL_API_VERSION])
            return self._partner(request, caller, m.group(1))
        if _RE_OPERATIONS.match(path):
            if api_version != PAL_API_VERSION:
                return self._bad_api_version(api_version, "Microsoft.ManagementPartner", [PAL_API_VERSION])
            return self._operations()
        if request.method == "GET":
            if _RE_SUBS.match(path):
                return self._subscriptions(caller)
            m = _RE_SUB.match(path)
            if m:
                return self._subscription(caller, m.group(1).lower())
            m = _RE_ROLE_ASSIGNMENTS.match(path)
            if m:
                return self._role_assignments(request, caller, m.group(1).lower())
            m = _RE_ROLE_DEFINITION.match(path)
            if m:
                return self._role_definition(m.group(1), m.group(2).lower())
        return self._arm_error(404, "InvalidResourceType", f"The resource type could not be found for {path}.")

    def _bad_api_version(self, version: str, namespace: str, supported: list[str]) -> web.Response:
        return self._arm_error(
            400, "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions for '{namespace}' are "
            f"'{', '.join(supported)}'.",
        )

    def _partner_body(self, link: Link) -> dict[str, Any]:
        return {
            "id": f"/providers/microsoft.managementpartner/partners/{link.partner_id}".lower(),
            "name": link.partner_id,
            "type": "Microsoft.ManagementPartner/partners",
            "etag": link.version,
            "properties": {
                "partnerId": link.partner_id, "partnerName": link.partner_name, "tenantId": link.tenant_id,
                "objectId": link.object_id, "version": link.version, "createdTime": _iso(link.created),
                "updatedTime": _iso(link.updated), "state": "Active",
            },
        }

    def _not_linked(self) -> web.Response:
        return self._arm_error(404, "ManagementPartnerNotFound",
                               "This user or service principal is not linked with a Partner ID")

    def _partner(self, request: web.Request, caller: Caller, partner_id: str | None) -> web.Response:
        key = (caller.tenant_id, caller.object_id)
        method = request.method
        with self.world.lock:
            link = self.world.links.get(key)
            if partner_id is None:
                if method != "GET":
                    return self._arm_error(405, "MethodNotAllowed", f"{method} needs a partner ID in the path.")
                return web.json_response(self._partner_body(link)) if link else self._not_linked()
            if method == "GET":
                if link is None or link.partner_id.lower() != partner_id.lower():
                    return self._not_linked()
                return web.json_response(self._partner_body(link))
            if method == "DELETE":
                self.link_writes[key] += 1
                self.world.links.pop(key, None)
                return web.Response(status=200)
            if method not in ("PUT", "PATCH"):
                return self._arm_error(405, "MethodNotAllowed", f"{method} is not supported.")
            if method == "PATCH" and link is None:
                return self._not_linked()
            if not self.world.partner_id_valid(partner_id):
                return self._arm_error(400, "PartnerIdInvalid", "The Partner ID is not valid")
            if method == "PUT" and link is not None and link.partner_id.lower() != partner_id.lower():
                return self._arm_error(
                    409, "Conflict",
                    f"This user or service principal is already linked with Partner ID {link.partner_id}. "
                    "Use PATCH to change it or DELETE it first.",
                )
            self.link_writes[key] += 1
            now = utcnow()
            if link is None:
                link = Link(partner_id, self.world.partner_name(partner_id), caller.tenant_id, caller.object_id,
                            1, now, now)
                self.world.links[key] = link
            else:
                link.version += 1
                link.partner_id = partner_id
                link.partner_name = self.world.partner_name(partner_id)
                link.updated = now
            return web.json_response(self._partner_body(link))

    def _operations(self) -> web.Response:
        ops = []
        for verb, text in (("read", "Read"), ("write", "Create or update"), ("delete", "Delete")):
            ops.append({
                "name": f"Microsoft.ManagementPartner/partners/{verb}",
                "display": {"provider": "Microsoft ManagementPartner", "resource": "Management Partner",
                            "operation": f"{text} All ManagementPartner",
                            "description": f"{text} All ManagementPartner"},
                "origin": "user,system",
            })
        return web.json_response({"value": ops, "nextLink": None})

    # -- ARM: subscriptions and role assignments (recognition) -------------------------------------
    def _caller_app(self, caller: Caller) -> App | None:
        return self.world.app_by_object_id(caller.tenant_id, caller.object_id)

    def _sub_body(self, sub_id: str) -> dict[str, Any]:
        sub = self.world.subscriptions.get(sub_id)
        tenant = sub.tenant_id if sub else ""
        return {
            "id": f"/subscriptions/{sub_id}", "subscriptionId": sub_id, "tenantId": tenant,
            "displayName": sub.display_name if sub else sub_id, "state": "Enabled",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"},
            "authorizationSource": "RoleBased", "managedByTenants": [],
        }

    def _subscriptions(self, caller: Caller) -> web.Response:
        app = self._caller_app(caller)
        subs = sorted(app.role_assignments) if app else []
        return web.json_response({"value": [self._sub_body(s) for s in subs if app and app.role_assignments[s]]})

    def _subscription(self, caller: Caller, sub_id: str) -> web.Response:
        app = self._caller_app(caller)
        if app is None or not app.role_assignments.get(sub_id):
            return self._arm_error(404, "SubscriptionNotFound", f"The subscription '{sub_id}' could not be found.")
        return web.json_response(self._sub_body(sub_id))

    def _role_assignments(self, request: web.Request, caller: Caller, sub_id: str) -> web.Response:
        app = self._caller_app(caller)
        if app is not None and app.role_read_forbidden:
            return self._arm_error(
                403, "AuthorizationFailed",
                f"The client '{caller.object_id}' with object id '{caller.object_id}' does not have authorization "
                "to perform action 'Microsoft.Authorization/roleAssignments/read' over scope "
                f"'/subscriptions/{sub_id}' or the scope is invalid. If access was recently granted, please "
                "refresh your credentials.",
            )
        if app is None or not app.role_assignments.get(sub_id):
            return self._arm_error(
                403, "AuthorizationFailed",
                f"The client '{caller.object_id}' with object id '{caller.object_id}' does not have authorization "
                f"to perform action 'Microsoft.Authorization/roleAssignments/read' over scope '/subscriptions/"
                f"{sub_id}' or the scope is invalid.",
            )
        flt = request.query.get("$filter", "")
        m = _RE_ASSIGNED_TO.search(flt)
        principal = (m.group(1) if m else caller.object_id).lower()
        target = self.world.app_by_object_id(caller.tenant_id, principal) if principal != app.object_id else app
        values = []
        for rd in (target.role_assignments.get(sub_id, []) if target else []):
            ra_id = str(uuid.uuid5(uuid.UUID(sub_id) if _is_guid(sub_id) else uuid.NAMESPACE_URL,
                                   f"{principal}/{rd}"))
            scope = f"/subscriptions/{sub_id}"
            values.append({
                "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{ra_id}",
                "name": ra_id,
                "type": "Microsoft.Authorization/roleAssignments",
                "properties": {
                    "roleDefinitionId": f"{scope}/providers/Microsoft.Authorization/roleDefinitions/{rd}",
                    "principalId": principal, "principalType": "ServicePrincipal", "scope": scope,
                    "condition": None, "conditionVersion": None,
                    "createdOn": "2024-01-01T00:00:00.0000000Z", "updatedOn": "2024-01-01T00:00:00.0000000Z",
                },
            })
        return web.json_response({"value": values})

    def _role_definition(self, scope: str | None, rd: str) -> web.Response:
        name = self._role_names.get(rd)
        prefix = scope or ""
        if name is None:
            return self._arm_error(404, "RoleDefinitionDoesNotExist",
                                   f"The specified role definition with ID '{rd}' does not exist.")
        return web.json_response({
            "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{rd}",
            "name": rd,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {
                "roleName": name, "type": "BuiltInRole", "description": f"{name} (emulated built-in role)",
                "assignableScopes": ["/"],
                "permissions": [{"actions": ["*"], "notActions": [], "dataActions": [], "notDataActions": []}],
            },
        })

    # -- IMDS --------------------------------------------------------------------------------------
    async def _imds(self, request: web.Request) -> web.Response:
        app_service = "X-IDENTITY-HEADER" in request.headers
        if app_service:
            if request.headers["X-IDENTITY-HEADER"] != self.identity_header:
                return web.json_response({"error": {"code": "Unauthorized", "message": "Bad X-IDENTITY-HEADER"}},
                                         status=401)
        elif request.headers.get("Metadata", "").lower() != "true":
            return web.json_response({"error": "invalid_request",
                                      "error_description": "Required metadata header not specified"}, status=400)
        resource = request.query.get("resource", "")
        if not resource:
            return web.json_response({"error": "invalid_request",
                                      "error_description": "Required audience parameter not specified"}, status=400)
        client_id = (request.query.get("client_id") or "").lower()
        object_id = (request.query.get("object_id") or request.query.get("principal_id") or "").lower()
        found: tuple[Tenant, App] | None = None
        for tenant in self.world.tenants.values():
            for app in tenant.apps.values():
                if not app.managed_identity:
                    continue
                if (client_id and app.client_id != client_id) or (object_id and app.object_id != object_id):
                    continue
                found = (tenant, app)
                break
            if found:
                break
        if found is None:
            return web.json_response({"error": "invalid_request", "error_description": "Identity not found"},
                                     status=400)
        tenant, app = found
        if tenant.deactivated or not app.enabled:
            return web.json_response({"error": "invalid_request", "error_description": "Identity is disabled"},
                                     status=400)
        token, expires_in = self.issue_token(tenant.tenant_id, app, resource)
        now = int(time.time())
        body = {
            "access_token": token, "client_id": app.client_id, "expires_in": str(expires_in),
            "expires_on": str(now + expires_in), "ext_expires_in": str(expires_in), "not_before": str(now),
            "resource": resource, "token_type": "Bearer",
        }
        return web.json_response(body)


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _server_ssl_context(cert_pem: bytes, key_pem: bytes, directory: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert_file = directory / "server.pem"
    key_file = directory / "server.key"
    cert_file.write_bytes(cert_pem)
    key_file.touch(mode=0o600)
    key_file.write_bytes(key_pem)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    finally:
        key_file.unlink(missing_ok=True)
    return ctx


def prepare_tls(
    ca_dir: Path | None,
) -> tuple[str, ssl.SSLContext, tempfile.TemporaryDirectory[str] | None]:
    """Generate the CA and server certificate, write ca.pem (to `ca_dir` or a temp dir), build the context."""
    material = make_tls_material()
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if ca_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="pal-emulator-")
        directory = Path(tmp.name)
    else:
        directory = ca_dir
        directory.mkdir(parents=True, exist_ok=True)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(material.ca_pem)
    return str(ca_file), _server_ssl_context(material.cert_pem, material.key_pem, directory), tmp


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
    ) -> None:
        self.world = coerce_world(world)
        self._faults = build_fault_state(self.world, faults=faults, latency_s=latency_s, seed=seed)
        self._port = port
        self._ca_dir = Path(ca_dir) if ca_dir else None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server = EmulatorServer(self.world, self._faults)
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
