"""The lean azure-core pipeline of the run-wide clients and of each identity's token credential.

azure-core's async pipeline costs a coroutine frame and an awaitable check per policy, per request, each way; the
SDKs' stock pipelines hold ~13 policies, most of which do nothing here. `lean_policies` keeps what matters (see
its docstring); `SingleUseCache` spares a credential that gets one token the MSAL cache it never uses.
"""

from __future__ import annotations

import logging
import os
import uuid
from typing import Any

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import (
    AsyncHTTPPolicy,
    ContentDecodePolicy,
    HttpLoggingPolicy,
    RequestIdPolicy,
    SansIOHTTPPolicy,
    UserAgentPolicy,
)
from azure.core.rest import AsyncHttpResponse, HttpRequest
from azure.core.settings import settings
from azure.mgmt.core.policies import ARMHttpLoggingPolicy
from msal import TokenCache


def lean_policies(
    sdk_moniker: str, authentication: SansIOHTTPPolicy[Any, Any] | AsyncHTTPPolicy[Any, Any] | None, *, arm: bool,
    keyvault: bool = False,
) -> list[Any]:
    """The pipeline of a run-wide client (ARM, Key Vault) or an identity's token credential, without the policies
    that do nothing here but cost CPU on every request (~10 policy hops per request, 6 requests per identity).

    Kept: the client request ID and user agent (what Microsoft support and service logs see), JSON decoding (not for
    Key Vault: its generated operations parse the body themselves with `response.json()`, so the policy only parsed
    every secret twice), the authorization (Key Vault: the SDK's own challenge policy), and the redacting
    HttpLoggingPolicy when its log is on (`--debug`; the logging is configured before any client is built). Dropped:
    headers/proxy/custom-hook policies (nothing configured), the SDK's retry policy (off: `retry_total=0`, our
    Retrier owns retries), the tracing and network-trace policies (off), redirects (the transport never follows one,
    so a bearer token never leaves for another host; a 3xx is an error), and ARM's auto resource-provider
    registration (a POST to the customer's subscription that the tool must never send). The SansIO policies run as
    one `Chain` (one hop); every policy here but the Key Vault challenge policy may be shared; that one belongs to
    one client.
    """
    chained: list[SansIOHTTPPolicy[Any, Any]] = [ClientRequestId(), fixed_user_agent(sdk_moniker)]
    if not keyvault:
        chained.append(ContentDecodePolicy())
    chained.append(CallOptions())
    if isinstance(authentication, SansIOHTTPPolicy):
        chained.append(authentication)
    policies: list[Any] = [Chain(*chained)]
    if isinstance(authentication, AsyncHTTPPolicy):
        policies.append(authentication)
    if logging.getLogger(_HTTP_LOG).isEnabledFor(logging.INFO):
        logging_policy = ARMHttpLoggingPolicy() if arm else HttpLoggingPolicy()
        if keyvault:  # what the SecretClient's own logging policy lets through
            logging_policy.allowed_header_names.update(
                {"x-ms-keyvault-network-info", "x-ms-keyvault-region", "x-ms-keyvault-service-version"})
        policies.append(logging_policy)
    return policies


#: The logger of azure-core's HttpLoggingPolicy (and ARM's): `--debug` sets the `azure` loggers to INFO.
_HTTP_LOG = "azure.core.pipeline.policies.http_logging_policy"


class ClientRequestId(RequestIdPolicy):  # type: ignore[misc]  # azure-core types it for both request kinds
    """RequestIdPolicy whose automatic ID is a random GUID (uuid4) rather than azure-core's uuid1: libuuid's
    time-based generator cost ~35 µs per request here (its clock file), 6 requests per identity. A per-call
    `request_id` and a header already set are honoured as azure-core does."""

    def on_request(self, request: PipelineRequest[Any]) -> None:
        if "request_id" in request.context.options:
            super().on_request(request)
            return
        headers = request.http_request.headers
        if _REQUEST_ID not in headers:
            headers[_REQUEST_ID] = str(uuid.uuid4())


_REQUEST_ID = "x-ms-client-request-id"


def fixed_user_agent(sdk_moniker: str) -> UserAgentPolicy:
    """The SDK's User-Agent, with AZURE_HTTP_USER_AGENT read once when the pipeline is built instead of from the
    environment on every request (the stock policy's `user_agent` property)."""
    stock: UserAgentPolicy = UserAgentPolicy(sdk_moniker=sdk_moniker)
    return UserAgentPolicy(base_user_agent=stock.user_agent, user_agent_use_env=False)


def settle_tracing() -> None:
    """Tracing is off in the lean pipelines (no tracing policy); unless the environment or the code configured
    it, say so once: every SDK operation's tracing decorator otherwise looks both settings up in the
    environment on each call."""
    if "AZURE_TRACING_ENABLED" not in os.environ and settings.tracing_implementation() is None:
        settings.tracing_enabled = False


class CallOptions(SansIOHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """Stands where the SDK's headers, retry and redirect policies were: applies per-call `headers` and consumes
    the per-call retry/redirect options the SDK passes (azure-identity sends `retry_on_methods`), which would
    otherwise reach aiohttp as unknown arguments. Our Retrier owns retries and the timeout of each attempt."""

    _CONSUMED = ("retry_total", "retry_connect", "retry_read", "retry_status", "retry_backoff_factor",
                 "retry_backoff_max", "retry_on_methods", "retry_mode", "timeout", "permit_redirects", "redirect_max")

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        options = request.context.options
        headers = options.pop("headers", None)
        if headers:
            request.http_request.headers.update(headers)
        for name in self._CONSUMED:
            options.pop(name, None)

    def on_response(self, request: PipelineRequest[HttpRequest], response: Any) -> None:
        """Runs before ContentDecodePolicy decodes the body: a body declared `charset=utf-8` is UTF-8, which is
        what azure-core would find by parsing the header with `email.message` (~20 µs per response)."""
        http = response.http_response
        if http.headers.get("Content-Type", "").lower().replace(" ", "") == _UTF8_JSON:
            http.encoding = "utf-8"


_UTF8_JSON = "application/json;charset=utf-8"


class Chain(SansIOHTTPPolicy[HttpRequest, AsyncHttpResponse]):
    """Synchronous SansIO policies run as one pipeline hop, in the order the pipeline would run them: each hop of
    azure-core's async pipeline costs a coroutine frame and an awaitable check per request, each way."""

    def __init__(self, *policies: SansIOHTTPPolicy[Any, Any]) -> None:
        self.policies = policies
        self._unwind = tuple(reversed(policies))

    def on_request(self, request: PipelineRequest[HttpRequest]) -> None:
        for policy in self.policies:
            policy.on_request(request)

    def on_response(self, request: PipelineRequest[HttpRequest], response: Any) -> None:
        for policy in self._unwind:
            policy.on_response(request, response)

    def on_exception(self, request: PipelineRequest[HttpRequest]) -> None:
        for policy in self._unwind:
            policy.on_exception(request)


class SingleUseCache(TokenCache):  # type: ignore[misc]  # msal is untyped
    """The token cache of an identity's credential, which gets one token in its life (a fresh credential per
    sign-in attempt): nothing to find, nothing worth keeping. azure-identity's default, an MSAL TokenCache per
    credential, searched before and filled after each request, cost ~0.08 ms per sign-in, and kept the token."""

    def search(self, credential_type: Any, target: Any = None, query: Any = None, *, now: Any = None) -> Any:
        return iter(())

    def add(self, event: Any, now: Any = None) -> None:
        return None


SINGLE_USE_CACHE = SingleUseCache()
