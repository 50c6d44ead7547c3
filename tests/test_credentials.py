"""Credential material: certificates are parsed once, fast, and unreadable material never leaks into messages."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from orchestrator.credentials import (
    IdentityFailure,
    VaultReader,
    _NoCredential,
    parse_certificate,
)
from orchestrator.emulator.crypto import make_client_certificate, pool_key
from orchestrator.models import Status
from orchestrator.pipeline import Chain, ClientRequestId, fixed_user_agent, lean_policies
from orchestrator.transport import SharedTransport


def test_plain_pfx_fast_path_matches_cryptography_loader() -> None:
    """A password-less PFX read from its plain bags gives the same key and thumbprint as cryptography's loader."""
    cert = make_client_certificate("fast", key_index=1)
    fast = parse_certificate(cert.pfx_b64(), "application/x-pkcs12")
    key, x509_cert, _ = pkcs12.load_key_and_certificates(base64.b64decode(cert.pfx_b64()), None)
    assert key is not None and x509_cert is not None
    assert fast.key.private_numbers() == key.private_numbers()  # type: ignore[union-attr]
    assert fast.expires_on == x509_cert.not_valid_after_utc
    pem = parse_certificate(cert.pem_bundle(), "application/x-pem-file")
    assert pem.x5t == fast.x5t


def test_encrypted_pfx_falls_back_to_the_full_loader() -> None:
    """A PFX with encrypted bags (here: a password we do not have) ends as credential_invalid, nothing leaked."""
    cert = make_client_certificate("enc", key_index=2)
    pfx = pkcs12.serialize_key_and_certificates(
        b"x", pool_key(2), cert.certificate, None, serialization.BestAvailableEncryption(b"pw")
    )
    value = base64.b64encode(pfx).decode()
    with pytest.raises(IdentityFailure) as info:
        parse_certificate(value, "application/x-pkcs12")
    assert info.value.status is Status.CREDENTIAL_INVALID
    assert value[:40] not in info.value.message


def test_garbage_is_credential_invalid_without_echoing_it() -> None:
    """Bytes that are neither PEM nor PFX are credential_invalid; the message names the type, never the bytes."""
    secret_like = "not-a-certificate-" + "A" * 64
    with pytest.raises(IdentityFailure) as info:
        parse_certificate(secret_like, "application/x-pkcs12")
    assert info.value.status is Status.CREDENTIAL_INVALID
    assert secret_like not in info.value.message


def _policy_types(client: Any) -> list[str]:
    """The policies of a client's pipeline, those run as one Chain listed one by one."""
    names: list[str] = []
    for runner in client._client._client._pipeline._impl_policies:
        policy = getattr(runner, "_policy", runner)
        names += [type(p).__name__ for p in policy.policies] if isinstance(policy, Chain) else [type(policy).__name__]
    return names


@pytest.mark.parametrize("verify", [True, False])
def test_vault_client_is_lean_and_keeps_the_challenge_policy(verify: bool) -> None:
    """The Key Vault client runs the SDK's own challenge policy (verifying the challenge's resource as asked)
    and none of the policies that do nothing here (retry, redirect, tracing, …, and JSON decoding: its operations
    parse the body themselves); no HTTP log policy while the HTTP log is off."""
    from azure.keyvault.secrets._shared import AsyncChallengeAuthPolicy

    async def build() -> None:
        async with SharedTransport(ca_bundle=None, limit=4, timeout_s=5) as transport:
            reader = VaultReader(_NoCredential(), transport, verify_challenge_resource=verify)
            client = reader.client("https://vault.example")
            assert _policy_types(client) == ["ClientRequestId", "UserAgentPolicy", "CallOptions",
                                             "AsyncChallengeAuthPolicy"]
            challenge = [p for p in client._client._client._pipeline._impl_policies
                         if isinstance(p, AsyncChallengeAuthPolicy)]
            assert challenge[0]._verify_challenge_resource is verify
            await reader.close()

    asyncio.run(build())


def test_debug_keeps_the_redacting_http_log() -> None:
    """With the HTTP log on (`--debug`), every lean pipeline ends in the SDK's redacting HttpLoggingPolicy."""
    http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    level = http_log.level

    async def build() -> None:
        async with SharedTransport(ca_bundle=None, limit=4, timeout_s=5) as transport:
            reader = VaultReader(_NoCredential(), transport, verify_challenge_resource=True)
            assert _policy_types(reader.client("https://vault.example"))[-1] == "HttpLoggingPolicy"
            await reader.close()

    http_log.setLevel(logging.INFO)
    try:
        asyncio.run(build())
        assert type(lean_policies("x/1", None, arm=True)[-1]).__name__ == "ARMHttpLoggingPolicy"
    finally:
        http_log.setLevel(level)
    assert all(type(p).__name__ != "HttpLoggingPolicy" for p in lean_policies("x/1", None, arm=False))


def test_identity_token_credentials_keep_no_token() -> None:
    """An identity's credential gets one token in its life: its cache neither finds nor keeps one."""
    from msal import TokenCache

    async def kwargs() -> dict[str, Any]:
        async with SharedTransport(ca_bundle=None, limit=4, timeout_s=5) as transport:
            return transport.token_kwargs()

    cache = asyncio.run(kwargs())["cache"]
    cache.add({"client_id": "c", "scope": ["s"], "token_endpoint": "https://login.example/t/oauth2/v2.0/token",
               "response": {"access_token": "secret-token", "expires_in": 3600, "token_type": "Bearer"}})
    assert list(cache.search(TokenCache.CredentialType.ACCESS_TOKEN, target=["s"])) == []


def test_chain_runs_its_policies_as_the_pipeline_would() -> None:
    """One hop, same order: requests through the policies in order, responses and exceptions in reverse."""
    from azure.core.pipeline import PipelineContext, PipelineRequest, PipelineResponse
    from azure.core.pipeline.policies import SansIOHTTPPolicy
    from azure.core.rest import HttpRequest

    seen: list[str] = []

    class Step(SansIOHTTPPolicy[Any, Any]):
        def __init__(self, name: str) -> None:
            self.name = name

        def on_request(self, request: Any) -> None:
            seen.append(f"req {self.name}")

        def on_response(self, request: Any, response: Any) -> None:
            seen.append(f"resp {self.name}")

        def on_exception(self, request: Any) -> None:
            seen.append(f"exc {self.name}")

    chain = Chain(Step("a"), Step("b"))
    request = PipelineRequest(HttpRequest("GET", "https://x.example/"), PipelineContext(None))
    chain.on_request(request)
    chain.on_response(request, PipelineResponse(request.http_request, None, request.context))  # type: ignore[arg-type]
    chain.on_exception(request)
    assert seen == ["req a", "req b", "resp b", "resp a", "exc b", "exc a"]


def test_utf8_json_bodies_skip_the_charset_parse_only_when_declared() -> None:
    """`application/json; charset=utf-8` is decoded as UTF-8 without parsing the header; anything else is left
    to azure-core's own detection."""
    from types import SimpleNamespace

    from orchestrator.pipeline import CallOptions

    for content_type, expected in (("application/json; charset=utf-8", "utf-8"), ("application/json", None),
                                   ('application/json; charset="latin-1"', None), ("text/html", None)):
        http = SimpleNamespace(headers={"Content-Type": content_type}, encoding=None)
        CallOptions().on_response(None, SimpleNamespace(http_response=http))  # type: ignore[arg-type]
        assert http.encoding == expected


def _sent_headers(policy: Any, **options: Any) -> dict[str, str]:
    from azure.core.pipeline import PipelineContext, PipelineRequest
    from azure.core.rest import HttpRequest

    request = PipelineRequest(HttpRequest("GET", "https://127.0.0.1/x"), PipelineContext(None, **options))
    policy.on_request(request)
    return dict(request.http_request.headers)


def test_client_request_id_is_a_fresh_guid_and_honours_a_given_one() -> None:
    """Each request gets its own random GUID as x-ms-client-request-id (what support asks for); a per-call
    `request_id` wins, as with azure-core's policy."""
    import uuid

    policy = ClientRequestId()
    first, second = (_sent_headers(policy)["x-ms-client-request-id"] for _ in range(2))
    assert first != second and uuid.UUID(first).version == 4
    assert _sent_headers(policy, request_id="mine")["x-ms-client-request-id"] == "mine"


def test_fixed_user_agent_names_the_sdk_and_reads_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The User-Agent names the SDK as the stock policy does, AZURE_HTTP_USER_AGENT included when the pipeline is
    built."""
    monkeypatch.setenv("AZURE_HTTP_USER_AGENT", "pal-test")
    policy = fixed_user_agent("keyvault-secrets/1.0")
    monkeypatch.delenv("AZURE_HTTP_USER_AGENT")
    agent = _sent_headers(policy)["User-Agent"]
    assert agent.startswith("azsdk-python-keyvault-secrets/1.0 Python/") and agent.endswith(" pal-test")


def test_transport_times_connects_and_leaves_reads_to_the_attempt_timeout() -> None:
    """Each SDK client's transport connects within the run's timeout and arms no read timeout of its own: every
    call runs inside a Retrier attempt of that length (the SDK client's own timeout options never reach a
    transport it is given)."""

    async def build() -> None:
        async with SharedTransport(ca_bundle=None, limit=4, timeout_s=7) as transport:
            config = transport.new().connection_config
            assert (config.timeout, config.read_timeout) == (7, None)
            assert set(transport.client_kwargs()) == {"transport", "retry_total"}

    asyncio.run(build())
