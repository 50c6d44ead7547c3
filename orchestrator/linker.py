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

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
)
from azure.identity.aio import ClientAssertionCredential, ManagedIdentityCredential
from azure.mgmt.managementpartner.aio import ACEProvisioningManagementPartnerAPI
from azure.mgmt.managementpartner.models import PartnerResponse

from .credentials import (
    IdentityFailure,
    Material,
    SecretMaterial,
    SharedTransport,
    VaultReader,
    current_token,
    error_fields,
    identity_credential,
    keyvault_failure,
    material_from_secret,
    one_line,
    shared_client_kwargs,
    token_claims,
)
from .models import Command, CredentialType, Identity, LinkState, Outcome, Status
from .recognition import Recognizer
from .retrying import CallStats, Retrier, RetryAfterTooLong, classify
from .retrying import aadsts_code as aadsts_code_of
from .settings import Endpoints

log = logging.getLogger(__name__)

#: Entra codes that mean the credential itself is bad or expired (the fix is rotating it).
AADSTS_EXPIRED = frozenset({"7000222", "700024"})
AADSTS_INVALID = frozenset({"7000215", "700027", "700023"})

IntentSink = Callable[[str, str, str], None]


class ArmClients:
    """Run-wide management clients, one per ARM endpoint; identities differ only by their per-task token."""

    def __init__(self, transport: SharedTransport) -> None:
        self._transport = transport
        self._partner: dict[str, ACEProvisioningManagementPartnerAPI] = {}

    def partner_client(self, endpoints: Endpoints) -> ACEProvisioningManagementPartnerAPI:
        found = self._partner.get(endpoints.arm_endpoint)
        if found is None:
            found = ACEProvisioningManagementPartnerAPI(**shared_client_kwargs(self._transport, endpoints))
            self._partner[endpoints.arm_endpoint] = found
        return found

    async def close(self) -> None:
        for client in self._partner.values():
            await client.close()


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


class _Run:
    """The state of one identity's reconciliation (attempts, expiry, what was seen)."""

    def __init__(self, identity: Identity, ctx: LinkContext) -> None:
        self.identity = identity
        self.ctx = ctx
        self.stats = CallStats()
        self.expires_on: datetime | None = None
        self.credential_type: str | None = identity.credential_type.value if identity.credential_type else None
        self.object_id: str | None = None


async def reconcile(identity: Identity, ctx: LinkContext) -> Outcome:
    """The one entry point: an Outcome for `identity`, whatever happens on the wire."""
    started = time.monotonic()
    run = _Run(identity, ctx)
    try:
        outcome = await _reconcile(run)
    except IdentityFailure as failure:
        outcome = _outcome(
            run, failure.status, error_code=failure.code, error_message=one_line(failure.message),
            wait_s=failure.wait_s or run.stats.refused_wait_s,
        )
    except RetryAfterTooLong as exc:
        outcome = _outcome(
            run, Status.FAILED, error_code=_code_of(exc.cause) or "RetryAfterTooLong",
            error_message=f"the server asked to wait {exc.wait_s:.0f} s (cap reached); re-run later",
            wait_s=exc.wait_s,
        )
    except (AzureError, aiohttp.ClientError, OSError, TimeoutError) as exc:
        outcome = _outcome(run, Status.FAILED, error_code=_code_of(exc), error_message=_message_of(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not stop the other identities; it is logged loudly
        log.error("unexpected error for %s (%s): %s", identity.key, identity.location, type(exc).__name__)
        outcome = _outcome(
            run, Status.FAILED, error_code="InternalError", error_message=f"unexpected {type(exc).__name__}"
        )
    return replace(outcome, elapsed_s=round(time.monotonic() - started, 4))


async def _reconcile(run: _Run) -> Outcome:
    identity, ctx = run.identity, run.ctx
    current_token.set(None)  # never let a previous identity's token serve this one
    endpoints = ctx.endpoints(identity)
    material = await _read_material(run)
    token = await _sign_in(run, material, endpoints)
    claims = token_claims(token.token)
    run.object_id = claims.get("oid") or claims.get("sub")
    current_token.set(token.token)  # this task's identity, for the run-wide clients (TaskTokenPolicy)
    client = ctx.clients.partner_client(endpoints)
    state = await _read_link(run, client)
    outcome = await _decide(run, client, state)
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
    if identity.secret_uri is None or ctx.vault is None:
        raise IdentityFailure(Status.CREDENTIAL_MISSING, "NoSecretLocation", "no Key Vault secret is given")
    vault = ctx.vault
    uri = identity.secret_uri
    try:
        value, content_type, attrs = await ctx.retrier.call(lambda: vault.get(uri), run.stats)
    except HttpResponseError as exc:
        if classify(exc).transient:
            raise
        raise keyvault_failure(exc) from None
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
        credential = _credential_for(identity, material, endpoints, ctx.transport)
        try:
            token: AccessToken = await credential.get_token(scope)
            return token
        finally:
            await credential.close()

    try:
        return await ctx.retrier.call(attempt, run.stats)
    except ClientAuthenticationError as exc:
        if classify(exc).transient:
            raise
        code = aadsts_code_of(exc)
        message = _message_of(exc)
        if code in AADSTS_EXPIRED:
            raise IdentityFailure(Status.CREDENTIAL_EXPIRED, f"AADSTS{code}", message) from None
        if code in AADSTS_INVALID:
            raise IdentityFailure(Status.CREDENTIAL_INVALID, f"AADSTS{code}", message) from None
        raise IdentityFailure(
            Status.SIGN_IN_FAILED, f"AADSTS{code}" if code else "SignInFailed", message
        ) from None


def _credential_for(
    identity: Identity, material: Material | None, endpoints: Endpoints, transport: SharedTransport
) -> Any:
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
    return await run.ctx.retrier.call(op, run.stats)


async def _read_link(run: _Run, client: ACEProvisioningManagementPartnerAPI) -> LinkState:
    """The caller's current link, whatever its partner ID (GET …/partners); none → an empty LinkState."""
    try:
        response = await _arm(run, lambda: client.partners.get())
    except ResourceNotFoundError as exc:
        code = error_fields(exc)[0]
        if code in (None, "ManagementPartnerNotFound"):  # the documented "not linked" answer
            return LinkState()
        raise _arm_failure(exc) from None  # a 404 from a wrong endpoint or a proxy is not "not linked"
    except HttpResponseError as exc:
        raise _arm_failure(exc) from None
    return _state(response)


async def _decide(run: _Run, client: ACEProvisioningManagementPartnerAPI, state: LinkState) -> Outcome:
    identity, ctx = run.identity, run.ctx
    target = identity.partner_id
    linked = state.partner_id
    on_target = linked is not None and linked.strip().lower() == target.strip().lower()
    prior = ctx.prior_intents.get(identity.key)
    command = ctx.command

    if command is Command.AUDIT:
        if linked is None:
            return _outcome(run, Status.NOT_LINKED, state=state)
        status = Status.ALREADY_LINKED if on_target else Status.LINKED_ELSEWHERE
        return _outcome(run, status, state=state)
    if command is Command.PLAN:
        if linked is None:
            return _outcome(run, Status.WOULD_LINK, state=state)
        if on_target:
            return _outcome(run, Status.ALREADY_LINKED, state=state)
        return _outcome(run, Status.WOULD_RELINK if ctx.overwrite else Status.LINKED_ELSEWHERE, state=state)
    if command is Command.UNLINK:
        if linked is None:
            return _outcome(run, Status.UNLINKED, state=state, error_message="was not linked; nothing to remove")
        if not on_target:
            return _outcome(run, Status.LINKED_ELSEWHERE, state=state,
                            error_message=f"linked to {linked}, not {target}: left alone")
        ctx.record_intent(identity.key, "unlink", target)
        await _write(run, client, lambda: client.partner.delete(target), None)
        after = await _read_link(run, client)
        if after.partner_id is not None:
            raise IdentityFailure(Status.FAILED, "VerifyFailed", "the link is still present after DELETE")
        return _outcome(run, Status.UNLINKED, state=state)

    # link
    if on_target:
        if prior is not None:  # this run announced the write, then died before recording it: it was ours
            status = Status.RELINKED if prior[0] == "relink" else Status.LINKED
            return _outcome(run, status, state=state)
        return _outcome(run, Status.ALREADY_LINKED, state=state)
    if linked is not None and not ctx.overwrite:
        return _outcome(
            run, Status.LINKED_ELSEWHERE, state=state,
            error_code="LinkedElsewhere",
            error_message=f"linked to partner ID {linked}; pass --overwrite to switch it to {target}",
        )
    action = "relink" if linked is not None else "link"
    ctx.record_intent(identity.key, action, target)
    if action == "relink":
        await _write(run, client, lambda: client.partner.update(target), target)
    else:
        await _write(run, client, lambda: client.partner.create(target), target)
    after = await _read_link(run, client)
    if after.partner_id is None or after.partner_id.strip().lower() != target.strip().lower():
        if action == "link" and after.partner_id is not None:
            return _outcome(
                run, Status.LINKED_ELSEWHERE, state=after, error_code="Conflict",
                error_message=f"linked to partner ID {after.partner_id} by someone else meanwhile",
            )
        raise IdentityFailure(Status.FAILED, "VerifyFailed", "the link read back does not show the target ID")
    return _outcome(run, Status.RELINKED if action == "relink" else Status.LINKED, state=after)


async def _write(
    run: _Run, client: ACEProvisioningManagementPartnerAPI, op: Callable[[], Awaitable[Any]], target: str | None
) -> None:
    """A PUT/PATCH (target = the partner ID) or DELETE (target None), never re-sent blindly.

    After a transient failure the link is read first: a write whose answer was lost but which took effect is
    not written again. A 409 is left to the read-back to explain; other refusals become outcomes.
    """

    async def landed() -> bool:
        linked = (await _read_link(run, client)).partner_id
        if target is None:
            return linked is None
        return linked is not None and linked.strip().lower() == target.strip().lower()

    try:
        await run.ctx.retrier.write(op, landed, run.stats)
    except HttpResponseError as exc:
        if exc.status_code == 409:
            return
        raise _arm_failure(exc) from None


def _arm_failure(exc: HttpResponseError) -> BaseException:
    if classify(exc).transient:
        return exc
    code, _inner, message = error_fields(exc)
    if code == "PartnerIdInvalid" or (exc.status_code == 400 and "partner id" in message.lower()):
        return IdentityFailure(Status.PARTNER_ID_INVALID, code or "PartnerIdInvalid", message)
    return IdentityFailure(Status.FAILED, code or f"HTTP{exc.status_code}", message)


# -- values --------------------------------------------------------------------------------------------------


def _state(response: PartnerResponse | None) -> LinkState:
    if response is None or not response.partner_id or (response.state or "").lower() == "deleted":
        return LinkState()
    return LinkState(
        partner_id=str(response.partner_id),
        partner_name=response.partner_name,
        object_id=response.object_id,
        tenant_id=response.tenant_id,
        created_time=response.created_time,
        updated_time=response.updated_time,
        version=response.version,
    )


def _outcome(
    run: _Run,
    status: Status,
    *,
    state: LinkState | None = None,
    error_code: str | None = None,
    error_message: str | None = None,
    wait_s: float | None = None,
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
    )


def _code_of(exc: BaseException) -> str:
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
