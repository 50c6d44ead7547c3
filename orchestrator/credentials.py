"""Key Vault → in-memory credential material → one sign-in per identity.

Secrets and private keys live only in these objects (never on disk, never in a repr or message). Certificate
keys are parsed once per identity and signed with directly (no PEM re-parse per signature, the stock
CertificateCredential's main CPU cost). Every HTTP call goes through the shared transport and the caller's
retry layer; the SDK's own retries are off.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import jwt
from asn1crypto import pkcs12 as asn1_pkcs12
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import (
    SansIOHTTPPolicy,
)
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.identity.aio import (
    AzureCliCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    DefaultAzureCredential,
    EnvironmentCredential,
    ManagedIdentityCredential,
)
from azure.keyvault.secrets import __version__ as _keyvault_version
from azure.keyvault.secrets.aio import SecretClient
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from .errors import UsageError
from .inventory.vaults import split_secret_uri as split_secret_uri  # re-exported: callers read it from here
from .models import CredentialType, Identity, IdentityFailure, SharedCause, Status
from .pipeline import lean_policies
from .settings import Endpoints
from .transport import SharedTransport
from .trust import is_vault_scope

PKCS12 = "application/x-pkcs12"
PEM = "application/x-pem-file"


@dataclass(frozen=True, slots=True)
class SecretMaterial:
    """A client secret read from Key Vault."""

    secret: str = field(repr=False)
    expires_on: datetime | None = None


@dataclass(frozen=True, slots=True)
class CertificateMaterial:
    """A certificate's private key, parsed once, and what the token endpoint needs to identify it."""

    key: rsa.RSAPrivateKey = field(repr=False)
    x5t: str  # base64url SHA-1 thumbprint of the DER certificate
    expires_on: datetime | None = None


Material = SecretMaterial | CertificateMaterial


_KEYVAULT_MONIKER = f"keyvault-secrets/{_keyvault_version}"

try:  # the SDK's own challenge policy (it verifies the challenge's resource); not re-exported publicly
    from azure.keyvault.secrets._shared import AsyncChallengeAuthPolicy as _KeyVaultChallenge
except ImportError:  # a layout this build does not know: the SecretClient keeps its stock pipeline
    _KeyVaultChallenge = None  # type: ignore[assignment,misc]


# -- the operator's Key Vault access ---------------------------------------------------------------


def operator_credential(mode: str, *, endpoints: Endpoints, transport: SharedTransport) -> AsyncTokenCredential:
    """How the orchestrator itself signs in to read Key Vault (`--operator-auth`)."""
    kwargs = transport.client_kwargs()
    authority = os.environ.get("AZURE_AUTHORITY_HOST") or endpoints.authority_host
    if mode == "env":
        return EnvironmentCredential(authority=authority, **kwargs)
    if mode == "cli":
        return AzureCliCredential()
    if mode == "managed-identity":
        return ManagedIdentityCredential(client_id=os.environ.get("AZURE_CLIENT_ID"), **kwargs)
    if mode == "default":
        return DefaultAzureCredential(authority=authority, **kwargs)
    raise UsageError(f"--operator-auth {mode!r}: use default, env, cli or managed-identity")


class VaultReader:
    """Reads identities' credentials through one SecretClient per vault, as the operator."""

    def __init__(
        self, credential: AsyncTokenCredential, transport: SharedTransport, *, verify_challenge_resource: bool
    ) -> None:
        self._credential = credential
        self._transport = transport
        self._verify = verify_challenge_resource
        self._clients: dict[str, SecretClient] = {}

    def client(self, vault_url: str) -> SecretClient:
        found = self._clients.get(vault_url)
        if found is None:
            kwargs = self._transport.client_kwargs()
            if _KeyVaultChallenge is not None:
                challenge = _KeyVaultChallenge(self._credential, verify_challenge_resource=self._verify)
                kwargs["policies"] = lean_policies(_KEYVAULT_MONIKER, challenge, arm=False, keyvault=True)
            found = SecretClient(vault_url, self._credential, verify_challenge_resource=self._verify, **kwargs)
            self._clients[vault_url] = found
        return found

    async def get(self, secret_uri: str) -> tuple[str, str | None, dict[str, Any]]:
        """(value, content type, attributes) of a secret; raises SDK errors for the retry layer."""
        vault, name, version = split_secret_uri(secret_uri)
        secret = await self.client(vault).get_secret(name, version)
        props = secret.properties
        attrs = {"enabled": props.enabled, "expires_on": props.expires_on, "not_before": props.not_before}
        return secret.value or "", props.content_type, attrs

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        close = getattr(self._credential, "close", None)
        if close is not None:
            await close()


def keyvault_failure(exc: HttpResponseError, vault_url: str) -> IdentityFailure:
    failure = _keyvault_failure(exc, vault_url)
    failure.ids = support_ids(exc)
    return failure


def _keyvault_failure(exc: HttpResponseError, vault_url: str) -> IdentityFailure:
    """Map a Key Vault refusal to the outcome vocabulary (404 missing, 401/403 forbidden or disabled).

    401/403 carry a shared cause: the operator's access to that vault, the same for every secret in it.
    """
    code, inner, message = error_fields(exc)
    if isinstance(exc, ResourceNotFoundError) or exc.status_code == 404:
        return IdentityFailure(Status.CREDENTIAL_MISSING, code or "SecretNotFound", message or "secret not found")
    if exc.status_code == 403:
        disabled = inner == "SecretDisabled" or "disabled" in (message or "").lower()
        if disabled:
            return IdentityFailure(Status.CREDENTIAL_DISABLED, inner or code or "SecretDisabled", message)
        return IdentityFailure(Status.CREDENTIAL_FORBIDDEN, code or "Forbidden", message or "access denied",
                               cause=SharedCause("vault_forbidden", vault_url, code or "Forbidden"))
    if exc.status_code == 401:  # the operator's token was refused after the challenge
        return IdentityFailure(Status.CREDENTIAL_FORBIDDEN, code or "Unauthorized", message or "unauthorized",
                               cause=SharedCause("vault_forbidden", vault_url, code or "Unauthorized"))
    return IdentityFailure(Status.FAILED, code or f"HTTP{exc.status_code}", message or str(exc.reason))


def error_fields(exc: HttpResponseError) -> tuple[str | None, str | None, str]:
    """(code, innererror code, message) from an ARM/KV error body, tolerant of odd shapes."""
    body: Any = None
    try:
        if exc.response is not None:
            body = json.loads(exc.response.text())
    except (ValueError, TypeError, AttributeError):
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = body if isinstance(body, dict) else {}
    inner = error.get("innererror")
    inner_code = inner.get("code") if isinstance(inner, dict) else None
    code = error.get("code") or (exc.error.code if exc.error else None)
    message = error.get("message") or (exc.error.message if exc.error else None) or str(exc.reason or "")
    return (str(code) if code else None), (str(inner_code) if inner_code else None), one_line(str(message))


_TRACE = re.compile(r"Trace ID:\s*([0-9A-Fa-f-]{36})")
_CORRELATION = re.compile(r"Correlation ID:\s*([0-9A-Fa-f-]{36})")


def support_ids(exc: BaseException) -> tuple[str | None, str | None]:
    """(trace ID, correlation ID) that Microsoft support asks for: Entra writes them in its error description,
    ARM and Key Vault send `x-ms-request-id` and `x-ms-correlation-request-id`. Kept whatever the message length."""
    text = str(getattr(exc, "message", None) or exc)
    trace = _TRACE.search(text)
    correlation = _CORRELATION.search(text)
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    return (
        trace.group(1) if trace else headers.get("x-ms-request-id"),
        correlation.group(1) if correlation else headers.get("x-ms-correlation-request-id"),
    )


def one_line(text: str, limit: int = 300) -> str:
    """Messages in outcomes are one line, bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# -- material ------------------------------------------------------------------------------------------


def material_from_secret(
    identity: Identity, value: str, content_type: str | None, attrs: dict[str, Any], *, now: datetime
) -> Material:
    """Turn a Key Vault secret into credential material, checking what Key Vault does not enforce."""
    if attrs.get("enabled") is False:
        raise IdentityFailure(Status.CREDENTIAL_DISABLED, "SecretDisabled", "the secret is disabled in Key Vault")
    not_before: datetime | None = attrs.get("not_before")
    if not_before is not None and not_before > now:
        raise IdentityFailure(
            Status.CREDENTIAL_INVALID, "SecretNotYetValid", f"the secret is not valid before {not_before:%Y-%m-%d}"
        )
    kv_exp: datetime | None = attrs.get("expires_on")
    if kv_exp is not None and kv_exp <= now:
        raise IdentityFailure(
            Status.CREDENTIAL_EXPIRED, "SecretExpired", f"the secret expired in Key Vault on {kv_exp:%Y-%m-%d}"
        )
    kind = identity.credential_type
    ctype = (content_type or "").lower()
    if kind is None:
        kind = CredentialType.CERTIFICATE if ctype in (PKCS12, PEM) else CredentialType.SECRET
    if kind is CredentialType.SECRET:
        if not value:
            raise IdentityFailure(Status.CREDENTIAL_INVALID, "EmptySecret", "the secret in Key Vault is empty")
        return SecretMaterial(value, kv_exp)
    cert = parse_certificate(value, ctype)
    expires = cert.expires_on if kv_exp is None or (cert.expires_on and cert.expires_on < kv_exp) else kv_exp
    if cert.expires_on is not None and cert.expires_on <= now:
        raise IdentityFailure(
            Status.CREDENTIAL_EXPIRED,
            "CertificateExpired",
            f"the certificate expired on {cert.expires_on:%Y-%m-%d}",
        )
    return CertificateMaterial(cert.key, cert.x5t, expires)


def parse_certificate(value: str, content_type: str) -> CertificateMaterial:
    """Parse a PEM (key + certificate) or base64 PFX secret once. Errors never include the material."""
    try:
        if content_type == PEM or "-----BEGIN" in value:
            data = value.encode()
            # The key comes from the operator's own vault: skip the costly RSA consistency check (~34 ms).
            key = serialization.load_pem_private_key(data, None, unsafe_skip_rsa_key_validation=True)
            cert = x509.load_pem_x509_certificate(data)
        else:
            der = base64.b64decode(value)
            fast = _read_plain_pfx(der)
            if fast is not None:
                key, cert = fast
            else:  # encrypted bags: cryptography's loader, which always validates the key (~40 ms)
                key_any, cert_any, _ = pkcs12.load_key_and_certificates(der, None)
                if key_any is None or cert_any is None:
                    raise ValueError("no key or certificate in the PFX")
                key, cert = key_any, cert_any
    except Exception as exc:  # noqa: BLE001 - any parse error of untrusted bytes is "unreadable"
        raise IdentityFailure(
            Status.CREDENTIAL_INVALID,
            "CertificateUnreadable",
            f"the certificate in Key Vault cannot be read as {'PEM' if content_type == PEM else 'PFX/PEM'}: "
            f"{type(exc).__name__}",
        ) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise IdentityFailure(Status.CREDENTIAL_INVALID, "UnsupportedKey", "only RSA certificate keys are supported")
    der = cert.public_bytes(serialization.Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).decode().rstrip("=")  # noqa: S324 - x5t is SHA-1
    return CertificateMaterial(key, x5t, cert.not_valid_after_utc)


def _read_plain_pfx(der: bytes) -> tuple[Any, x509.Certificate] | None:
    """Key and leaf certificate of a password-less PFX whose bags are not encrypted (what Key Vault stores).

    cryptography's PKCS#12 loader always runs the RSA consistency check (~40 ms, most of a PFX identity's CPU).
    Reading the plain bags with asn1crypto and loading the key with the check skipped costs well under 1 ms;
    the key must match the certificate's public key. Anything else (encrypted bags) returns None → fallback.
    The PFX MAC is not verified here: the bytes come straight from Key Vault over TLS.
    """
    try:
        pfx = asn1_pkcs12.Pfx.load(der)
        keys: list[bytes] = []
        certs: list[bytes] = []
        for info in pfx.authenticated_safe:
            if info["content_type"].native != "data":
                return None
            for bag in asn1_pkcs12.SafeContents.load(info["content"].native):
                kind = bag["bag_id"].native
                if kind == "key_bag":
                    keys.append(bag["bag_value"].untag().dump())
                elif kind == "cert_bag" and bag["bag_value"]["cert_id"].native == "x509":
                    certs.append(bag["bag_value"]["cert_value"].parsed.dump())
                elif kind == "pkcs8_shrouded_key_bag":
                    return None
        if len(keys) != 1 or not certs:
            return None
        key = serialization.load_der_private_key(keys[0], None, unsafe_skip_rsa_key_validation=True)
        if not isinstance(key, rsa.RSAPrivateKey):
            return None
        public = key.public_key().public_numbers()
        for cert_der in certs:
            cert = x509.load_der_x509_certificate(cert_der)
            cert_key = cert.public_key()
            if isinstance(cert_key, rsa.RSAPublicKey) and cert_key.public_numbers() == public:
                return key, cert
    except (ValueError, TypeError, KeyError):
        return None
    return None


# -- sign-in ---------------------------------------------------------------------------------------------


def client_assertion(material: CertificateMaterial, *, client_id: str, token_url: str) -> Callable[[], str]:
    """A signer for the JWT client assertion (RS256 + x5t, as MSAL sends), using the already-parsed key."""

    def sign() -> str:
        now = int(time.time())
        claims = {
            "aud": token_url,
            "iss": client_id,
            "sub": client_id,
            "jti": str(uuid.uuid4()),
            "nbf": now,
            "iat": now,
            "exp": now + 600,
        }
        return jwt.encode(claims, material.key, algorithm="RS256", headers={"x5t": material.x5t})

    return sign


def identity_credential(
    identity: Identity, material: Material | None, *, endpoints: Endpoints, transport: SharedTransport
) -> AsyncTokenCredential:
    """A fresh credential for one sign-in attempt (azure-identity caches failures per credential object)."""
    kwargs = transport.token_kwargs()
    authority = endpoints.authority_host
    if isinstance(material, SecretMaterial):
        return ClientSecretCredential(
            identity.tenant_id, identity.client_id, material.secret, authority=authority, **kwargs
        )
    if isinstance(material, CertificateMaterial):
        token_url = f"{authority}/{identity.tenant_id}/oauth2/v2.0/token"
        return ClientAssertionCredential(
            identity.tenant_id,
            identity.client_id,
            client_assertion(material, client_id=identity.client_id, token_url=token_url),
            authority=authority,
            **kwargs,
        )
    raise IdentityFailure(Status.FAILED, "NoCredential", "no credential material for this identity")


#: The access token of the identity being reconciled on the current asyncio task.
current_token: ContextVar[str | None] = ContextVar("pal_identity_token", default=None)


class TaskTokenPolicy(SansIOHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """Authorizes each request with the token of the identity this asyncio task is reconciling.

    It lets one management client (one pipeline) serve every identity of a run: building a client per identity
    cost more CPU than its requests. The token is set by the linker on the worker's own task, so concurrent
    identities never see each other's token, and it is never cached here.
    """

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        if not request.http_request.url.lower().startswith("https://"):
            raise ServiceRequestError("a bearer token is only ever sent over https")
        token = current_token.get()
        if not token:
            raise RuntimeError("no identity token is set for this task")
        request.http_request.headers["Authorization"] = f"Bearer {token}"


class _NoCredential(AsyncTokenCredential):
    """Satisfies clients that require a credential; TaskTokenPolicy does the real authorization."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise RuntimeError("tokens come from TaskTokenPolicy")

    async def close(self) -> None:
        return None

    async def __aexit__(self, *args: Any) -> None:
        return None


def shared_client_kwargs(
    transport: SharedTransport, endpoints: Endpoints, sdk_moniker: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for a run-wide management client: our transport, our retries, per-task tokens.

    With `sdk_moniker` (as the client's own configuration names itself, e.g. "mgmt-managementpartner/1.0.1") the
    client gets the lean pipeline (`lean_policies`); without it, the SDK's stock pipeline."""
    kwargs: dict[str, Any] = {
        "credential": _NoCredential(),
        "base_url": endpoints.arm_endpoint,
        "credential_scopes": [endpoints.arm_audience + ".default"],
        **transport.client_kwargs(),
    }
    if sdk_moniker is None:
        kwargs["authentication_policy"] = TaskTokenPolicy()
    else:
        kwargs["policies"] = lean_policies(sdk_moniker, TaskTokenPolicy(), arm=True)
    return kwargs


def token_claims(token: str) -> dict[str, Any]:
    """The (unverified) claims of an access token: who we signed in as. Never logged."""
    try:
        payload = token.split(".")[1]
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}



class VaultOnlyCredential(AsyncTokenCredential):
    """The operator's credential as Key Vault clients see it: tokens for Key Vault resources only."""

    def __init__(self, inner: AsyncTokenCredential, arm_audience: str) -> None:
        self._inner = inner
        self._arm_audience = arm_audience

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        for scope in scopes:
            if not is_vault_scope(scope, self._arm_audience):
                raise ClientAuthenticationError(
                    f"refused to send the operator's token for {scope!r} to a vault: not a Key Vault resource")
        return await self._inner.get_token(*scopes, **kwargs)

    async def close(self) -> None:
        await self._inner.close()

    async def __aexit__(self, *args: Any) -> None:
        await self.close()


__all__ = [
    "CertificateMaterial",
    "IdentityFailure",
    "Material",
    "SecretMaterial",
    "VaultOnlyCredential",
    "VaultReader",
]
