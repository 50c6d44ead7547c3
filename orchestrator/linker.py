"""Reconcile one identity's Partner Admin Link: read first, write only what is missing, verify every write.

    Key Vault read → sign in as the identity in its tenant → GET its link → decide → (intent, write, read back)

Every failure of one identity ends here as an `Outcome` value with a reason code; nothing escapes a run
except cancellation. Each HTTP call is retried on its own (measured better than retrying the whole chain).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity.aio import ClientAssertionCredential, ManagedIdentityCredential
from azure.mgmt.managementpartner import __version__ as _partner_version
from azure.mgmt.managementpartner.aio import ACEProvisioningManagementPartnerAPI

from .credentials import (
    Material,
    SecretMaterial,
    VaultReader,
    current_token,
    error_fields,
    identity_credential,
    keyvault_failure,
    material_from_secret,
    one_line,
    shared_client_kwargs,
    split_secret_uri,
    support_ids,
    token_claims,
)
from .federation import FederationTokens, is_federation
from .hooks import FirstRows, Guard, Principals
from .logs import log_as
from .models import Command, CredentialType, Identity, IdentityFailure, LinkState, Outcome, SharedCause, Status
from .partner import Answer, LinkRead, PartnerApi
from .recognition import Recognizer
from .retrying import CallStats, Retrier, RetryAfterTooLong, classify, network_failure
from .retrying import aadsts_code as aadsts_code_of
from .settings import TOKEN_RENEW_MARGIN_S, Endpoints
from .transport import SharedTransport

log = logging.getLogger(__name__)

#: Entra codes that mean the credential itself is bad or expired (the fix is rotating it).
AADSTS_EXPIRED = frozenset({"7000222", "700024"})
AADSTS_INVALID = frozenset({"7000215", "700027", "700023"})

#: Records an intent; an awaitable result (IntentCommitter.record) is awaited: the write waits until it is durable.
IntentSink = Callable[[str, str, str], Awaitable[None] | None]


class ArmClients:
    """Run-wide management clients, one per ARM endpoint; identities differ only by their per-task token."""

    def __init__(self, transport: SharedTransport) -> None:
        self._transport = transport
        self._partner: dict[str, PartnerApi] = {}

    def partner_api(self, endpoints: Endpoints) -> PartnerApi:
        found = self._partner.get(endpoints.arm_endpoint)
        if found is None:
            client = ACEProvisioningManagementPartnerAPI(
                **shared_client_kwargs(self._transport, endpoints, f"mgmt-managementpartner/{_partner_version}"))
            found = PartnerApi(client, endpoints.arm_endpoint)
            self._partner[endpoints.arm_endpoint] = found
        return found

    async def close(self) -> None:
        for api in self._partner.values():
            await api.client.close()


@dataclass(frozen=True, slots=True)
class LinkContext:
    """Everything `reconcile` needs besides the identity; built once per run."""

    command: Command
    transport: SharedTransport
    retrier: Retrier
    endpoints: Callable[[Identity], Endpoints]
    vault: VaultReader | None
    record_intent: IntentSink
    clients: ArmClients
    overwrite: bool = False
    prior_intents: dict[str, tuple[str, str]] = field(default_factory=dict)
    recognizer: Recognizer | None = None
    self_credential: AsyncTokenCredential | None = None
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    #: object ID → (key, FILE:LINE) of the first row that signed in as it: one principal, one write per run
    principals: Principals = field(default_factory=FirstRows)
    guard: Guard | None = None  # link runs: the first write per partner ID goes alone and names the partner
    federation: FederationTokens | None = None  # managed_identity_federation rows: the run's shared MI tokens


class _Run:
    """The state of one identity's reconciliation (attempts, expiry, what was seen)."""

    def __init__(self, identity: Identity, ctx: LinkContext) -> None:
        self.identity = identity
        self.ctx = ctx
        self.stats = CallStats()
        self.expires_on: datetime | None = None
        self.credential_type: str | None = identity.credential_type.value if identity.credential_type else None
        self.object_id: str | None = None
        self.material: Material | None = None
        self.endpoints: Endpoints | None = None
        self.refreshed = False
        self.token_expires_on = 0
        self.host = ""  # the host of the step in progress, named when it cannot be reached


async def reconcile(identity: Identity, ctx: LinkContext) -> Outcome:
    """The one entry point: an Outcome for `identity`, whatever happens on the wire."""
    started = time.monotonic()
    log_as(identity)
    run = _Run(identity, ctx)
    try:
        outcome = await _reconcile(run)
    except IdentityFailure as failure:
        outcome = _outcome(
            run, failure.status, error_code=failure.code, error_message=one_line(failure.message),
            wait_s=failure.wait_s or run.stats.refused_wait_s, cause=failure.cause, ids=failure.ids,
        )
    except RetryAfterTooLong as exc:
        outcome = _outcome(
            run, Status.FAILED, error_code=_code_of(exc.cause) or "RetryAfterTooLong",
            error_message=f"the server asked to wait {exc.wait_s:.0f} s (cap reached); re-run later",
            wait_s=exc.wait_s,
        )
    except (AzureError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        code = _code_of(exc)
        cause = SharedCause("unreachable", run.host, code) if _unreachable(exc) and run.host else None
        outcome = _outcome(run, Status.FAILED, error_code=code, error_message=_message_of(exc), cause=cause,
                           ids=support_ids(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not stop the other identities; it is logged loudly
        log.error("unexpected error for %s (%s): %s", identity.key, identity.location, type(exc).__name__)
        outcome = _outcome(
            run, Status.FAILED, error_code="InternalError", error_message=f"unexpected {type(exc).__name__}"
        )
    return replace(outcome, elapsed_s=round(time.monotonic() - started, 4))


async def _reconcile(run: _Run) -> Outcome:
    identity, ctx = run.identity, run.ctx
    current_token.set(None)  # never let a previous identity's token serve this one
    endpoints = run.endpoints = ctx.endpoints(identity)
    material = run.material = await _read_material(run)
    run.host = _host(endpoints.authority_host)
    token = await _sign_in(run, material, endpoints)
    claims = token_claims(token.token)
    run.object_id = claims.get("oid") or claims.get("sub")
    duplicate = await _first_row_of(run)
    if duplicate is not None:
        return duplicate
    current_token.set(token.token)  # this task's identity, for the run-wide clients (TaskTokenPolicy)
    run.token_expires_on = token.expires_on
    api = ctx.clients.partner_api(endpoints)
    run.host = _host(endpoints.arm_endpoint)
    outcome = await _decide(run, api, await _read(run, api))
    if ctx.recognizer is not None and ctx.command is not Command.UNLINK:
        # recognition never changes the link's status: whatever happens, it is a RecognitionResult
        outcome = replace(outcome, recognition=await ctx.recognizer(identity, token, run.object_id, endpoints))
    return outcome


# -- steps ---------------------------------------------------------------------------------------------------


async def _read_material(run: _Run) -> Material | None:
    identity, ctx = run.identity, run.ctx
    if ctx.self_credential is not None:
        run.credential_type = "self"
        return None
    if identity.credential_type in (CredentialType.MANAGED_IDENTITY, CredentialType.FEDERATED):
        return None
    if is_federation(identity):
        if ctx.federation is None:
            raise IdentityFailure(Status.FAILED, "NoFederation", "this run has no managed identity to federate from")
        return None
    if identity.secret_uri is None or ctx.vault is None:
        raise IdentityFailure(Status.CREDENTIAL_MISSING, "NoSecretLocation", "no Key Vault secret is given")
    vault = ctx.vault
    uri = identity.secret_uri
    vault_url = split_secret_uri(uri)[0]
    run.host = _host(vault_url)
    try:
        value, content_type, attrs = await ctx.retrier.call(lambda: vault.get(uri), run.stats)
    except HttpResponseError as exc:
        if classify(exc).transient:
            raise
        raise keyvault_failure(exc, vault_url) from None
    run.expires_on = attrs.get("expires_on")
    material = material_from_secret(identity, value, content_type, attrs, now=ctx.clock())
    run.expires_on = material.expires_on
    run.credential_type = "secret" if isinstance(material, SecretMaterial) else "certificate"
    return material


async def _sign_in(run: _Run, material: Material | None, endpoints: Endpoints) -> AccessToken:
    """Acquire an ARM token as the identity; each attempt uses a fresh credential object."""
    identity, ctx = run.identity, run.ctx
    scope = endpoints.arm_audience + ".default"

    async def attempt() -> AccessToken:
        if ctx.self_credential is not None:  # the operator's own credential: shared, closed by the runner
            own: AccessToken = await ctx.self_credential.get_token(scope)
            return own
        credential = _credential_for(identity, material, endpoints, ctx.transport, ctx.federation)
        try:
            token: AccessToken = await credential.get_token(scope)
            return token
        finally:
            await credential.close()

    try:
        if ctx.federation is not None and is_federation(identity):  # the shared MI token, fetched outside retries
            await ctx.federation.prepare(identity, endpoints, run.stats)
        return await ctx.retrier.call(attempt, run.stats)
    except ClientAuthenticationError as exc:
        if classify(exc).transient:
            raise
        code = aadsts_code_of(exc)
        message = _message_of(exc)
        ids = support_ids(exc)
        if ctx.federation is not None and is_federation(identity):
            failure = ctx.federation.failure(identity, endpoints, code, message, ids)
            if failure is not None:
                raise failure from None
        if code in AADSTS_EXPIRED:
            raise IdentityFailure(Status.CREDENTIAL_EXPIRED, f"AADSTS{code}", message, ids=ids) from None
        if code in AADSTS_INVALID:
            raise IdentityFailure(Status.CREDENTIAL_INVALID, f"AADSTS{code}", message, ids=ids) from None
        raise IdentityFailure(
            Status.SIGN_IN_FAILED, f"AADSTS{code}" if code else "SignInFailed", message, ids=ids
        ) from None


def _credential_for(
    identity: Identity, material: Material | None, endpoints: Endpoints, transport: SharedTransport,
    federation: FederationTokens | None = None,
) -> Any:
    if federation is not None and is_federation(identity):
        return federation.credential(identity, endpoints)
    if identity.credential_type is CredentialType.MANAGED_IDENTITY:
        kwargs = transport.client_kwargs()
        return ManagedIdentityCredential(client_id=identity.client_id or None, **kwargs)
    if identity.credential_type is CredentialType.FEDERATED:
        path = identity.token_file or os.environ.get("AZURE_FEDERATED_TOKEN_FILE")
        if not path:
            raise IdentityFailure(
                Status.CREDENTIAL_MISSING, "NoTokenFile", "no token_file and AZURE_FEDERATED_TOKEN_FILE is unset"
            )
        token_path = Path(path)

        def read_assertion() -> str:
            try:
                return token_path.read_text().strip()
            except OSError as exc:
                raise IdentityFailure(
                    Status.CREDENTIAL_MISSING, "TokenFileUnreadable", f"cannot read the token file {path}"
                ) from exc

        return ClientAssertionCredential(
            identity.tenant_id, identity.client_id, read_assertion,
            authority=endpoints.authority_host, **transport.client_kwargs(),
        )
    return identity_credential(identity, material, endpoints=endpoints, transport=transport)


async def _arm(run: _Run, op: Callable[[], Awaitable[Any]]) -> Any:
    """One ARM call, retried; a 401 (an expired or refused token) is answered by one fresh sign-in and one retry.
    A token about to expire is renewed first (retries and Retry-After waits can outlive it)."""
    if run.token_expires_on and run.token_expires_on - time.time() < TOKEN_RENEW_MARGIN_S:
        await _renew(run)
    try:
        return await run.ctx.retrier.call(op, run.stats)
    except ClientAuthenticationError as exc:
        if exc.status_code != 401 or not await _refresh(run):
            raise
        return await run.ctx.retrier.call(op, run.stats)


async def _refresh(run: _Run) -> bool:
    """A fresh token after a 401, once per reconcile (a long Retry-After can outlive a token)."""
    if run.refreshed or run.endpoints is None:
        return False
    run.refreshed = True
    await _renew(run)
    return True


async def _renew(run: _Run) -> None:
    assert run.endpoints is not None
    token = await _sign_in(run, run.material, run.endpoints)
    current_token.set(token.token)
    run.token_expires_on = token.expires_on


async def _first_row_of(run: _Run) -> Outcome | None:
    """A second row that signs in as a principal seen earlier in the run (its tenant spelled as a domain, say)
    is a duplicate of the first: skipped before any read or write, naming the first row."""
    if not run.object_id:
        return None
    mine = (run.identity.key, run.identity.location)
    first = await run.ctx.principals.claim(run.object_id, *mine)
    if first[0] == mine[0]:
        return None
    return _outcome(run, Status.SKIPPED, error_code="DuplicatePrincipal",
                    error_message=f"the same service principal as {first[1]} (object ID {run.object_id}): "
                                  "it is linked once, by that row; remove one of the two rows")


async def _read(run: _Run, api: PartnerApi) -> LinkRead:
    return await api.read(run.identity.partner_id, lambda op: _arm(run, op))


async def _decide(run: _Run, api: PartnerApi, read: LinkRead) -> Outcome:
    command, target = run.ctx.command, run.identity.partner_id
    state, linked, on_target = read.state, read.state.partner_id, read.on(target)
    blind = None if read.whole else f"not linked to {target}; {_BLIND}"
    if command is Command.AUDIT:
        if linked is None:
            return _outcome(run, Status.NOT_LINKED, state=state, error_message=blind)
        return _outcome(run, Status.ALREADY_LINKED if on_target else Status.LINKED_ELSEWHERE, state=state)
    if command is Command.PLAN:
        if linked is None:
            return _outcome(run, Status.WOULD_LINK, state=state, error_message=blind)
        if on_target:
            return _outcome(run, Status.ALREADY_LINKED, state=state)
        return _outcome(run, Status.WOULD_RELINK if run.ctx.overwrite else Status.LINKED_ELSEWHERE, state=state)
    if command is Command.UNLINK:
        return await _unlink(run, api, read)
    return await _link(run, api, read)


#: What an outcome says when the service does not answer GET …/partners (no ID).
_BLIND = "the service does not answer GET …/partners, so a link to another partner ID cannot be seen"


async def _link(run: _Run, api: PartnerApi, read: LinkRead) -> Outcome:
    identity, ctx, target = run.identity, run.ctx, run.identity.partner_id
    linked = read.state.partner_id
    if read.on(target):
        prior = ctx.prior_intents.get(identity.key)
        if prior is not None:  # this run announced the write, then died before recording it: it was ours
            status = Status.RELINKED if prior[0] == "relink" else Status.LINKED
            return await _named(run, _outcome(run, status, state=read.state))
        return await _named(run, _outcome(run, Status.ALREADY_LINKED, state=read.state))
    if linked is not None and not ctx.overwrite:
        return _outcome(
            run, Status.LINKED_ELSEWHERE, state=read.state, error_code="LinkedElsewhere",
            error_message=f"linked to partner ID {linked}; pass --overwrite to switch it to {target}",
        )
    action = "relink" if linked is not None else "link"
    if ctx.guard is None:
        return await _link_write(run, api, action)
    async with ctx.guard.writing(target):
        return await _named(run, await _link_write(run, api, action))


async def _named(run: _Run, outcome: Outcome) -> Outcome:
    """The first link to the target seen in the run names the partner; a name other than the expected one stops
    the run (the guard refuses every later write for that partner ID)."""
    guard = run.ctx.guard
    if guard is None or outcome.status not in (Status.LINKED, Status.RELINKED, Status.ALREADY_LINKED):
        return outcome
    cause = await guard.confirm(run.identity.partner_id, outcome.partner_name)
    if cause is None:
        return outcome
    return replace(outcome, shared_cause=cause, error_code="PartnerNameMismatch",
                   error_message=f"partner ID {cause.subject} is {cause.code!r} according to the service, not the "
                                 "expected partner: check --partner-id, and unlink this identity if it was wrong")


async def _link_write(run: _Run, api: PartnerApi, action: str) -> Outcome:
    """Write, read back, and fall back once where the first write met a link that moved under it."""
    ctx = run.ctx
    refusal = await _write(run, api, action)
    after = await _read(run, api)
    if action == "relink" and refusal is not None and refusal.not_linked and after.state.partner_id is None:
        action, refusal = "link", await _write(run, api, "link")  # deleted between read and PATCH: create it
        after = await _read(run, api)
    elif action == "link" and refusal is not None and refusal.already_linked and ctx.overwrite and not after.whole:
        action, refusal = "relink", await _write(run, api, "relink")  # linked to an ID the service won't tell
        after = await _read(run, api)
    return _after_write(run, action, refusal, after)


def _after_write(run: _Run, action: str, refusal: Answer | None, after: LinkRead) -> Outcome:
    """The outcome is what the read-back shows, whatever status code the write got."""
    target = run.identity.partner_id
    if after.on(target):
        return _outcome(run, Status.RELINKED if action == "relink" else Status.LINKED, state=after.state)
    if after.state.partner_id is not None:
        if action == "link":
            return _outcome(
                run, Status.LINKED_ELSEWHERE, state=after.state, error_code=refusal.code if refusal else "Conflict",
                error_message=f"linked to partner ID {after.state.partner_id} by someone else meanwhile",
            )
        raise IdentityFailure(Status.FAILED, "VerifyFailed", f"still linked to {after.state.partner_id} after PATCH")
    if refusal is None:
        raise IdentityFailure(Status.FAILED, "VerifyFailed",
                              f"the write was answered, but the link read back does not show {target}")
    code = refusal.code or f"HTTP{refusal.status}"
    if code.lower() == "partneridinvalid" or (refusal.status == 400 and "partner id" in refusal.message.lower()
                                              and not refusal.already_linked):
        raise IdentityFailure(Status.PARTNER_ID_INVALID, code, refusal.message or "the partner ID is not valid",
                              cause=SharedCause("partner_id_rejected", target, code))
    if refusal.already_linked and not after.whole:
        return _outcome(
            run, Status.LINKED_ELSEWHERE, state=after.state, error_code=code,
            error_message=f"linked to another partner ID, which the service does not tell ({_BLIND}); "
                          f"pass --overwrite to switch it to {target}",
        )
    if refusal.already_linked:
        raise IdentityFailure(Status.FAILED, code, f"the service refused to link {target} ({refusal.message}) "
                              "although no link can be read", cause=SharedCause("refused_unexplained", target, code))
    cause = SharedCause("token_rejected", run.endpoints.arm_endpoint, code) if (
        refusal.status == 401 and run.endpoints is not None) else None
    raise IdentityFailure(Status.FAILED, code, refusal.message or f"HTTP {refusal.status}", cause=cause)


async def _unlink(run: _Run, api: PartnerApi, read: LinkRead) -> Outcome:
    target = run.identity.partner_id
    linked = read.state.partner_id
    if not read.on(target):
        if linked is None:
            note = "was not linked; nothing to remove" if read.whole else f"was not linked to {target}"
            return _outcome(run, Status.UNLINKED, state=read.state, error_message=note)
        return _outcome(run, Status.LINKED_ELSEWHERE, state=read.state,
                        error_message=f"linked to {linked}, not {target}: left alone")
    refusal = await _write(run, api, "unlink")
    after = await _read(run, api)
    if after.on(target):
        code = (refusal.code or f"HTTP{refusal.status}") if refusal else "VerifyFailed"
        raise IdentityFailure(Status.FAILED, code, "the link is still present after DELETE")
    return _outcome(run, Status.UNLINKED, state=LinkState(partner_name=read.state.partner_name))


async def _write(run: _Run, api: PartnerApi, action: str) -> Answer | None:
    """A PUT ("link"), PATCH ("relink") or DELETE ("unlink"), announced in the journal first, never re-sent
    blindly: after a transient failure the link is read, and a write that landed is not sent again. Returns the
    service's refusal (None when answered with success); a 401 gets one fresh sign-in and one re-send."""
    identity, ctx, target = run.identity, run.ctx, run.identity.partner_id
    pending = ctx.record_intent(identity.key, action, target)
    if pending is not None:
        await pending
    ops = {"link": api.client.partner.create, "relink": api.client.partner.update, "unlink": api.client.partner.delete}
    op = ops[action]

    async def landed() -> bool:
        on_target = (await _read(run, api)).on(target)
        return not on_target if action == "unlink" else on_target

    async def send(attempt: Callable[[], Awaitable[None]]) -> None:
        await ctx.retrier.write(attempt, landed, run.stats)

    refusal = await api.write(lambda: op(target), send)
    if refusal is not None and refusal.status == 401 and await _refresh(run):
        refusal = await api.write(lambda: op(target), send)
    return refusal


# -- values --------------------------------------------------------------------------------------------------


def _outcome(
    run: _Run,
    status: Status,
    *,
    state: LinkState | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    wait_s: float | None = None,
    cause: SharedCause | None = None,
    ids: tuple[str | None, str | None] = (None, None),
) -> Outcome:
    identity = run.identity
    state = state or LinkState()
    return Outcome(
        key=identity.key,
        customer=identity.customer,
        tenant_id=identity.tenant_id,
        client_id=identity.client_id,
        target_partner_id=identity.partner_id,
        status=status,
        credential_type=run.credential_type,
        linked_partner_id=state.partner_id,
        partner_name=state.partner_name,
        object_id=state.object_id or run.object_id,
        created_time=state.created_time,
        updated_time=state.updated_time,
        error_code=error_code,
        error_message=error_message,
        attempts=run.stats.attempts,
        credential_expires_on=run.expires_on,
        checked_at=run.ctx.clock(),
        wait_s=wait_s,
        extra=identity.extra,
        source=identity.source,
        line=identity.line,
        secret_uri=identity.secret_uri,
        trace_id=ids[0],
        correlation_id=ids[1],
        shared_cause=cause,
    )


def _host(url: str) -> str:
    return urlsplit(url).netloc or url


def _unreachable(exc: BaseException) -> bool:
    """No answer at all (refused, DNS, TLS, timeouts) after the retry budget: a host problem, not the identity's."""
    return isinstance(exc, ServiceRequestError | ServiceResponseError | aiohttp.ClientConnectionError | TimeoutError)


def _code_of(exc: BaseException) -> str:
    network = network_failure(exc)
    if network is not None:
        return network
    if isinstance(exc, TimeoutError):
        return "Timeout"
    if isinstance(exc, HttpResponseError):
        code = aadsts_code_of(exc)
        if code:
            return f"AADSTS{code}"
        fields = error_fields(exc)
        return fields[0] or f"HTTP{exc.status_code}"
    return type(exc).__name__


def _message_of(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return one_line(str(message).split(" Trace ID:")[0])
