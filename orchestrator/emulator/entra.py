"""Emulated Microsoft Entra ID: the token endpoint, openid discovery, signing keys, instance discovery.

Client credentials only: a client secret, a certificate assertion (RS256+`x5t` or PS256+`x5t#S256`) or a
federated assertion from an issuer the world trusts. Errors carry the AADSTS codes the SDKs classify.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets as _secrets
import time
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .common import Match, Reply, iso
from .core import Core
from .crypto import JwtError, jwk, jwt_parts, utcnow, verify_signature
from .model import App, Tenant

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

#: The multi-tenant aliases Entra serves discovery documents for, and the tenant their issuer names.
MULTI_TENANT = {"common": "{tenantid}", "organizations": "{tenantid}",
                "consumers": "9188040d-6c67-4c5b-b112-36a304b66dad"}
_RE_TOKEN = re.compile(r"^/([^/]+)/oauth2/(?:v2\.0/)?token$")
_RE_OIDC = re.compile(r"^/([^/]+)/(?:v2\.0/)?\.well-known/openid-configuration$")
_RE_KEYS = re.compile(r"^/([^/]+)/discovery/(?:v2\.0/)?keys$")


def aad_error(
    url: str, status: int, error: str, code: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    """An Entra error body: `error`, `error_description` starting `AADSTS<code>:`, `error_codes`, trace IDs."""
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    ts = utcnow().strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {corr} Timestamp: {ts}",
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": corr,
        "error_uri": f"{url}/error?code={code}",
    }
    return web.json_response(body, status=status, headers=headers)


class Entra:
    """The Entra ID routes of one emulator."""

    def __init__(self, core: Core) -> None:
        self.core = core

    def match(self, request: web.Request) -> Match | None:
        """(tenant GUID or the path's tenant name, handler) for an Entra path, else None."""
        path = request.path
        if path.lower() == "/common/discovery/instance":
            return "common", self.instance_discovery
        for regex, handler in ((_RE_TOKEN, self.token), (_RE_OIDC, self.openid), (_RE_KEYS, self.keys)):
            m = regex.match(path)
            if m:
                tenant = self.core.world.resolve_tenant(m.group(1))
                return (tenant.tenant_id if tenant else m.group(1).lower()), handler
        return None

    def error(
        self, status: int, error: str, code: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        return aad_error(self.core.url, status, error, code, message, headers=headers)

    def _unknown_tenant(self, name: str) -> web.Response:
        return self.error(
            400, "invalid_request", 90002,
            f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are signing "
            "into the correct cloud. Check with your subscription administrator, this may happen if there "
            "are no active subscriptions for the tenant.",
        )

    def _tenant_or_reply(self, name: str) -> Tenant:
        tenant = self.core.world.resolve_tenant(name)
        if tenant is None:
            raise Reply(self._unknown_tenant(name))
        if tenant.deactivated:
            raise Reply(self.error(400, "invalid_request", 5000224, "We are sorry, this resource is not available."))
        return tenant

    # -- discovery ---------------------------------------------------------------------------------
    async def instance_discovery(self, request: web.Request) -> web.Response:
        host = f"127.0.0.1:{self.core.port}"
        endpoint = request.query.get("authorization_endpoint", "")
        m = re.match(r"^https://[^/]+/([^/]+)/", endpoint)
        tenant = m.group(1) if m else "common"
        return web.json_response({
            "tenant_discovery_endpoint": f"{self.core.url}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host, "localhost"]}],
        })

    async def openid(self, request: web.Request) -> web.Response:
        name = request.match_info["tail"].split("/", 1)[0]
        if name.lower() in MULTI_TENANT:
            # As Entra: the endpoints name the alias; the issuer is a template (or the consumers tenant).
            return web.json_response(self._openid_doc(name.lower(), MULTI_TENANT[name.lower()]))
        tenant = self.core.world.resolve_tenant(name)
        if tenant is None:
            return self._unknown_tenant(name)
        return web.json_response(self._openid_doc(tenant.tenant_id, tenant.tenant_id))

    def _openid_doc(self, path_tenant: str, issuer_tenant: str) -> dict[str, Any]:
        base = f"{self.core.url}/{path_tenant}"
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self.core.url}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "tenant_region_scope": "EU" if path_tenant not in MULTI_TENANT else None,
            "cloud_instance_name": "127.0.0.1",
        }

    async def keys(self, request: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk(self.core.signing_key.public_key(), self.core.kid)]})

    # -- token endpoint ----------------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.Response:
        name = request.match_info["tail"].split("/", 1)[0]
        if request.method != "POST":
            return self.error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.")
        form = await request.post()
        tenant = self._tenant_or_reply(name)
        grant = str(form.get("grant_type", ""))
        if grant != "client_credentials":
            return self.error(400, "unsupported_grant_type", 70003,
                              f"The app requested an unsupported grant type '{grant}'.")
        client_id = str(form.get("client_id", "")).lower()
        scope = str(form.get("scope", ""))
        assertion = form.get("client_assertion")
        if not client_id and isinstance(assertion, str):
            try:
                client_id = str(jwt_parts(assertion)[1].get("sub", "")).lower()
            except JwtError:
                client_id = ""
        app = self._app_or_reply(tenant, client_id)
        secret = form.get("client_secret")
        if isinstance(secret, str) and secret:
            self._check_secret(app, secret)
        elif isinstance(assertion, str) and assertion:
            if form.get("client_assertion_type") != ASSERTION_TYPE:
                return self.error(400, "invalid_request", 50027, "Invalid client_assertion_type.")
            self._check_assertion(tenant, app, assertion)
        else:
            return self.error(
                401, "invalid_client", 7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if "/v2.0/" not in request.path:
            return self._v1_token(tenant, app, str(form.get("resource", "")))
        resource = self._resource(scope)
        if resource is None:
            return self.error(400, "invalid_scope", 1002012,
                              f"The provided value for scope {scope} is not valid. Client credential flows "
                              "must have a scope value with /.default suffixed to the resource identifier.")
        token, expires_in = self.core.issue_token(tenant.tenant_id, app, resource)
        return web.json_response({
            "token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in, "access_token": token,
        })

    def _v1_token(self, tenant: Tenant, app: App, resource: str) -> web.Response:
        """The v1 endpoint (`/oauth2/token`): `resource=` instead of a scope; times as strings, as Entra v1 does."""
        if not resource:
            return self.error(400, "invalid_request", 900144,
                              "The request body must contain the following parameter: 'resource'.")
        token, expires_in = self.core.issue_token(tenant.tenant_id, app, resource)
        now = int(time.time())
        return web.json_response({
            "token_type": "Bearer", "expires_in": str(expires_in), "ext_expires_in": str(expires_in),
            "expires_on": str(now + expires_in), "not_before": str(now), "resource": resource, "access_token": token,
        })

    def _app_or_reply(self, tenant: Tenant, client_id: str) -> App:
        app = tenant.apps.get(client_id)
        if app is None:
            raise Reply(self.error(
                400, "unauthorized_client", 700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant.tenant_id}'. "
                "This can happen if the application has not been installed by the administrator of the tenant "
                "or consented to by any user in the tenant. You may have sent your authentication request to "
                "the wrong tenant.",
            ))
        if not app.enabled:
            raise Reply(self.error(400, "unauthorized_client", 7000112,
                                   f"Application '{app.client_id}'({app.display_name}) is disabled."))
        return app

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
                    raise Reply(self.error(
                        401, "invalid_client", 7000222,
                        f"The provided client secret keys for app '{app.client_id}' are expired. Visit the Azure "
                        "portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider "
                        "using certificate credentials for added security: https://aka.ms/certCreds.",
                    ))
                return
        raise Reply(self.error(
            401, "invalid_client", 7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{app.client_id}'.",
        ))

    def _check_assertion(self, tenant: Tenant, app: App, assertion: str) -> None:
        def bad(code: int, message: str, status: int = 401) -> Reply:
            return Reply(self.error(status, "invalid_client", code, message))

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
        aud_tenant = self.core.world.resolve_tenant(m.group(2)) if m else None
        if m is None or int(m.group(1)) != self.core.port or aud_tenant is not tenant:
            raise bad(700027, "Client assertion contains an invalid audience claim. [Reason - The audience "
                              "must be the token endpoint of this tenant.]")

    def _check_times(self, claims: Mapping[str, Any], now: float, *, federated: bool) -> None:
        try:
            exp = float(claims["exp"])
            nbf = float(claims.get("nbf", 0))
        except (KeyError, TypeError, ValueError):
            raise Reply(self.error(400 if federated else 401, "invalid_client", 50027,
                                   "JWT token is invalid or malformed (exp).")) from None
        if exp < now - 300 or nbf > now + 300:
            when = dt.datetime.fromtimestamp(now, dt.UTC)
            raise Reply(self.error(
                400 if federated else 401, "invalid_client", 700024,
                f"Client assertion is not within its valid time range. Current time: {iso(when)}, "
                f"assertion valid from {iso(dt.datetime.fromtimestamp(nbf, dt.UTC))}, "
                f"expiry time of assertion {iso(dt.datetime.fromtimestamp(exp, dt.UTC))}.",
            ))

    def _check_federated(
        self, app: App, header: Mapping[str, Any], claims: Mapping[str, Any], signing_input: bytes,
        signature: bytes, now: float,
    ) -> None:
        iss = str(claims.get("iss", ""))
        sub = str(claims.get("sub", ""))
        aud = claims.get("aud", "")
        auds = {str(a) for a in aud} if isinstance(aud, list) else {str(aud)}
        if header.get("kid") == self.core.kid:  # a managed identity's token, signed by this emulator
            self._check_exchange(app, claims, signing_input, signature, now)
            return
        issuer = self.core.world.issuers.get(iss)
        match = [f for f in app.federated if f.issuer == iss and f.subject == sub and f.audience in auds]
        if issuer is None or not match:
            raise Reply(self.error(
                400, "invalid_client", 700211,
                f"No matching federated identity record found for presented assertion issuer '{iss}'. Please "
                "check your federated identity credential Subject, Audience and Issuer against the presented "
                "assertion.",
            ))
        try:
            verify_signature(str(header.get("alg", "")), issuer.key.public_key(), signing_input, signature)
        except JwtError:
            raise Reply(self.error(400, "invalid_client", 50013, "Assertion failed signature validation.")) from None
        self._check_times(claims, now, federated=True)

    def _check_exchange(
        self, app: App, claims: Mapping[str, Any], signing_input: bytes, signature: bytes, now: float
    ) -> None:
        """A managed identity's token as the client assertion of a (multi-tenant) app: signature, then the app's
        federated credentials by issuer (700211), subject (700213) and audience (700212), then its times."""
        try:
            verify_signature("RS256", self.core.signing_key.public_key(), signing_input, signature)
        except JwtError:
            raise Reply(self.error(400, "invalid_client", 50013, "Assertion failed signature validation.")) from None
        iss, sub = str(claims.get("iss", "")), str(claims.get("sub", ""))
        aud = claims.get("aud", "")
        auds = {str(a) for a in aud} if isinstance(aud, list) else {str(aud)}
        # a world names this emulator's own authority as `{authority}` (its URL is known only once it listens)
        by_issuer = [f for f in app.federated if f.issuer.replace("{authority}", self.core.url) == iss]
        by_subject = [f for f in by_issuer if f.subject == sub]
        if not by_issuer:
            code, what = 700211, f"No matching federated identity record found for presented assertion issuer '{iss}'."
        elif not by_subject:
            code, what = 700213, f"No matching federated identity record found for presented assertion subject '{sub}'."
        elif not any(f.audience in auds for f in by_subject):
            code, what = 700212, ("No matching federated identity record found for presented assertion audience "
                                  f"'{', '.join(sorted(auds))}'.")
        else:
            self._check_times(claims, now, federated=True)
            return
        raise Reply(self.error(400, "invalid_client", code, f"{what} Please check your federated identity "
                                                            "credential Subject, Audience and Issuer against the "
                                                            "presented assertion."))
