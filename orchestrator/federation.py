"""Zero secrets: one multi-tenant app signs in to every customer tenant with a managed identity's token.

    managed identity ──token for api://AzureADTokenExchange──► FederationTokens (one per run, shared by all rows)
    FederationTokens ──the same token as client assertion──► ClientAssertionCredential(customer tenant, app), per row

The app registration (in the partner's tenant) holds a federated credential that trusts the user-assigned managed
identity; the app is consented in each customer tenant, where its service principal has its own object ID (so each
tenant gets its own link). The managed identity's token is fetched once per (identity, audience) through
azure-identity's own endpoint discovery (IMDS, App Service, Arc…), shared until it nears its expiry, and a lock
makes concurrent rows wait for that one fetch. Its claims (iss, sub, aud) are exactly what the app's federated
credential must trust: they turn Entra's AADSTS7002xx refusals into a fix, and `federation-check` prints them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.exceptions import AzureError
from azure.identity.aio import ClientAssertionCredential, ManagedIdentityCredential

from .credentials import token_claims
from .errors import OperatorAuthError
from .models import Cloud, Identity, IdentityFailure, Status
from .needs import is_federation as is_federation
from .retrying import CallStats, Retrier, RetryAfterTooLong
from .settings import DEFAULT_RETRY, TOKEN_RENEW_MARGIN_S, Endpoints, RetrySettings
from .transport import SharedTransport

#: The audience a managed identity's token must carry to be exchanged, per cloud (cross-cloud does not work).
EXCHANGE_AUDIENCES: dict[Cloud, str] = {
    Cloud.PUBLIC: "api://AzureADTokenExchange",
    Cloud.USGOV: "api://AzureADTokenExchangeUSGov",
    Cloud.CHINA: "api://AzureADTokenExchangeChina",
}

#: Entra's "the federated credential does not match": issuer, audience (both codes are seen), subject.
AADSTS_TRUST = frozenset({"700211", "700212", "7002121", "700213"})
#: The app has no service principal in the customer tenant: an admin there has not consented it.
AADSTS_NOT_CONSENTED = "700016"

NO_IDENTITY_FIX = "no managed identity here: run where the identity is attached"


def exchange_audience(cloud: Cloud) -> str:
    """The token-exchange audience of `cloud` (custom clouds use the public one)."""
    return EXCHANGE_AUDIENCES.get(cloud, EXCHANGE_AUDIENCES[Cloud.PUBLIC])


@dataclass(frozen=True, slots=True)
class MiToken:
    """A managed identity's exchange token and what its claims say (the token itself never printed)."""

    token: str = field(repr=False)
    expires_on: int
    refresh_at: float
    issuer: str
    subject: str
    audience: str

    def trust(self) -> str:
        """The federated credential that accepts this token, in words."""
        return f"issuer {self.issuer} subject {self.subject} audience {self.audience}"


class FederationTokens:
    """The run's managed-identity tokens, one per (identity, audience), fetched once and refreshed before expiry."""

    def __init__(self, transport: SharedTransport, retrier: Retrier, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._transport = transport
        self._retrier = retrier
        self._clock = clock
        self._tokens: dict[tuple[str, str], MiToken] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}

    async def token(self, client_id: str, audience: str, stats: CallStats) -> MiToken:
        """The current token; the first caller past its refresh time fetches, the others wait for that fetch."""
        key = (client_id.lower(), audience)
        found = self._tokens.get(key)
        if found is not None and self._clock() < found.refresh_at:
            return found
        async with self._locks.setdefault(key, asyncio.Lock()):
            found = self._tokens.get(key)
            if found is None or self._clock() >= found.refresh_at:
                found = self._tokens[key] = await self._fetch(client_id, audience, stats)
            return found

    async def _fetch(self, client_id: str, audience: str, stats: CallStats) -> MiToken:
        async def attempt() -> AccessToken:
            # a new credential per attempt: azure-identity may cache a failure per credential object
            credential = ManagedIdentityCredential(client_id=client_id, **self._transport.client_kwargs())
            try:
                token: AccessToken = await credential.get_token(audience + "/.default")
                return token
            finally:
                await credential.close()

        token = await self._retrier.call(attempt, stats)
        claims = token_claims(token.token)
        lifetime = max(0.0, token.expires_on - self._clock())
        aud = claims.get("aud", audience)
        return MiToken(
            token=token.token, expires_on=token.expires_on,
            refresh_at=token.expires_on - min(TOKEN_RENEW_MARGIN_S, lifetime / 2),  # or half-way through a short life
            issuer=str(claims.get("iss", "")), subject=str(claims.get("sub", "")),
            audience=str(aud[0] if isinstance(aud, list) and aud else aud),
        )

    async def prepare(self, identity: Identity, endpoints: Endpoints, stats: CallStats) -> MiToken:
        """The token the row's next sign-in presents (fetched or refreshed here, outside the sign-in's retries)."""
        assert identity.federation_identity, "validated by the inventory"
        return await self.token(identity.federation_identity, exchange_audience(identity.cloud), stats)

    def cached(self, identity: Identity) -> MiToken | None:
        key = ((identity.federation_identity or "").lower(), exchange_audience(identity.cloud))
        return self._tokens.get(key)

    def credential(self, identity: Identity, endpoints: Endpoints) -> ClientAssertionCredential:
        """A fresh credential for one sign-in attempt as the app's service principal in the customer tenant."""
        mine = self.cached(identity)
        if mine is None:
            raise IdentityFailure(Status.FAILED, "NoFederationToken", "the managed identity's token was not fetched")
        assertion = mine.token
        return ClientAssertionCredential(identity.tenant_id, identity.client_id, lambda: assertion,
                                         authority=endpoints.authority_host, **self._transport.client_kwargs())

    def failure(self, identity: Identity, endpoints: Endpoints, code: str | None, message: str,
                ids: tuple[str | None, str | None]) -> IdentityFailure | None:
        """Entra's refusals of a federation sign-in, with the fix in words; None for the generic mapping."""
        if code in AADSTS_TRUST:
            mine = self.cached(identity)
            want = mine.trust() if mine else f"the managed identity {identity.federation_identity}"
            return IdentityFailure(
                Status.CREDENTIAL_INVALID, f"AADSTS{code}",
                f"the app's federated credential must trust {want} (Entra: {message})", ids=ids)
        if code == AADSTS_NOT_CONSENTED:
            url = admin_consent_url(endpoints, identity.tenant_id, identity.client_id)
            return IdentityFailure(
                Status.SIGN_IN_FAILED, f"AADSTS{code}",
                f"an admin of this customer must consent the app: {url}", ids=ids)
        return None

    async def warm(self, identities: Iterable[Identity]) -> None:
        """Fetch each federation identity's token before any row: no managed identity is a run-level error."""
        seen: set[tuple[str, Cloud]] = set()
        for identity in identities:
            if not is_federation(identity) or not identity.federation_identity:
                continue
            key = (identity.federation_identity.lower(), identity.cloud)
            if key in seen:
                continue
            seen.add(key)
            await fetch_or_explain(self, identity.federation_identity, exchange_audience(identity.cloud))


async def fetch_or_explain(tokens: FederationTokens, client_id: str, audience: str) -> MiToken:
    """The managed identity's token, or an OperatorAuthError naming the identity and the fix."""
    try:
        return await tokens.token(client_id, audience, CallStats())
    except (AzureError, aiohttp.ClientError, OSError, TimeoutError, RetryAfterTooLong) as exc:
        detail = str(getattr(exc, "message", None) or exc or type(exc).__name__).splitlines()[0][:300]
        raise OperatorAuthError(
            f"the managed identity {client_id} gave no token for {audience} ({detail}) — {NO_IDENTITY_FIX}"
        ) from None


def admin_consent_url(endpoints: Endpoints, tenant_id: str, client_id: str) -> str:
    """The link a customer's admin opens to provision (consent) the app in their tenant."""
    return f"{endpoints.authority_host.rstrip('/')}/{tenant_id}/adminconsent?client_id={client_id}"


def federation_check(client_id: str, *, cloud: Cloud = Cloud.PUBLIC, ca_bundle: str | None = None,
                     retry: RetrySettings = DEFAULT_RETRY) -> MiToken:
    """The managed identity's own exchange token (claims only matter): what the app's credential must trust."""

    async def fetch() -> MiToken:
        async with SharedTransport(ca_bundle=ca_bundle, limit=2, timeout_s=retry.timeout_s) as transport:
            return await fetch_or_explain(FederationTokens(transport, Retrier(retry)), client_id,
                                          exchange_audience(cloud))

    return asyncio.run(fetch())
