"""`pal-orchestrator lighthouse`: read the delegated subscriptions from the managing tenant, judge, journal, report.

    [INVENTORY → the usual `link` run, same journal] → operator sign-in in the managing tenant →
    GET /subscriptions (delegated ones: another tenantId) → per subscription, its registration assignments with
    their definitions → judge each subscription × offer against the journal's links → journal → reports

As everywhere: one shared transport, SDK retries off, each call (here: each page) retried on its own by the
Retrier, a fixed pool of workers (`--concurrency`), each verdict committed to the journal as it is known. A
subscription whose assignments cannot be read is an `unreadable` verdict; the run goes on. Only the operator's
sign-in, an unreachable endpoint or an unlistable subscription list stop the run (exit 2).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError
from azure.mgmt.managedservices.aio import ManagedServicesClient
from azure.mgmt.resource.subscriptions.aio import SubscriptionClient

from . import __version__
from .credentials import current_token, error_fields, operator_credential, shared_client_kwargs
from .credentials import token_claims as claims_of
from .errors import EndpointError, OperatorAuthError, PalError, UsageError
from .fanout import run_pool
from .interrupts import run_interruptible
from .journal import Journal, utcnow
from .lighthouse import CustomerVerdict, Grant, Offer, Principal, judge, principal_states, roll_up, unreadable
from .models import Command, Identity, LighthouseRow
from .partner import probe_arm
from .recognition import role_guid
from .retrying import CallStats, Retrier, RetryAfterTooLong, Sleep, classify, status_of
from .runner import Interrupted, RunOptions, RunResult, check_options, endpoints_resolver, execute, operator_name
from .settings import TOKEN_RENEW_MARGIN_S, Endpoints
from .transport import SharedTransport

#: The stable Microsoft.ManagedServices api-version (the SDK's default is a preview).
MANAGED_SERVICES_API_VERSION = "2022-10-01"
#: What a read that could not be done raises once retries are over (anything else is a bug and surfaces).
_READ_ERRORS = (AzureError, aiohttp.ClientError, OSError, TimeoutError, RetryAfterTooLong)


@dataclass(frozen=True, slots=True)
class Delegated:
    """A subscription the operator sees through Lighthouse (its tenant is the customer's)."""

    subscription_id: str
    tenant_id: str
    display_name: str


@dataclass(frozen=True, slots=True)
class LighthouseResult:
    """What a lighthouse run reports back to the CLI."""

    run_id: str
    exit_code: int
    customers: tuple[CustomerVerdict, ...]
    rows: int
    subscriptions: int
    requests: int  # ARM requests sent for listing and assignments (retries included)
    elapsed_s: float
    journal: str
    report_dir: str | None
    managing_tenant_id: str
    link_run: RunResult | None = None


class LighthouseInterrupted(Interrupted):
    """A lighthouse run was interrupted: the verdicts so far are in the journal; it only reads, so run it again."""

    @property
    def hint(self) -> str:
        return f"it only reads: run `pal-orchestrator lighthouse …` again (run {self.run_id})"


class _OperatorToken:
    """The operator's ARM token, renewed (once, under a lock) when it is about to expire."""

    def __init__(self, credential: AsyncTokenCredential, scope: str, retrier: Retrier) -> None:
        self._credential = credential
        self._scope = scope
        self._retrier = retrier
        self._token: AccessToken | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> AccessToken:
        async with self._lock:
            if self._token is None or self._token.expires_on - time.time() < TOKEN_RENEW_MARGIN_S:
                try:
                    self._token = await self._retrier.call(lambda: self._credential.get_token(self._scope),
                                                           CallStats())
                except _READ_ERRORS as exc:
                    why = (str(exc.message or exc).splitlines()[0] if isinstance(exc, ClientAuthenticationError)
                           else _failure_code(exc))
                    raise OperatorAuthError(
                        f"cannot sign in as the operator in the managing tenant: {why} — check --operator-auth and "
                        "its AZURE_* variables"
                    ) from None
            return self._token

    async def use(self) -> None:
        """Authorize this task's requests with a fresh token (TaskTokenPolicy reads it)."""
        current_token.set((await self.get()).token)


class _Pace:
    """A run-wide pause after a 429: no new subscription read starts before the server's Retry-After has passed.

    ARM throttles reads per principal, and every read here is the operator's: once one read is told to wait, the
    other workers waiting too keeps the run from spending the retry budgets of the rest in a 429 storm.
    """

    def __init__(self, cap_s: float, sleep: Sleep) -> None:
        self._cap_s = cap_s
        self._sleep = sleep
        self._until = 0.0

    def note(self, exc: HttpResponseError) -> None:
        if status_of(exc) == 429:
            wait = min(classify(exc).retry_after or 1.0, self._cap_s)
            self._until = max(self._until, time.monotonic() + wait)

    async def wait(self) -> None:
        delay = self._until - time.monotonic()
        if delay > 0:
            await self._sleep(delay)


async def _pages(make: Callable[[], Any], retrier: Retrier, stats: CallStats, pace: _Pace) -> list[Any]:
    """Every item of a pageable list, each page one retried call (a failed page does not restart the list)."""
    items: list[Any] = []
    token: str | None = None
    while True:
        async def page(token: str | None = token) -> tuple[list[Any], str | None]:
            pages = make().by_page(continuation_token=token)
            try:
                found = [item async for item in await pages.__anext__()]
            except HttpResponseError as exc:
                pace.note(exc)
                raise
            return found, pages.continuation_token

        found, token = await retrier.call(page, stats)
        items.extend(found)
        if not token:
            return items


def _offer(sub: Delegated, assignment: Any, managing_tenant: str) -> Offer | None:
    """An SDK registration assignment as an Offer; None when it belongs to another managing tenant."""
    props = assignment.properties
    definition = props.registration_definition if props else None
    dprops = definition.properties if definition else None
    definition_id = role_guid(str(props.registration_definition_id or "")) if props else ""
    if dprops is None:
        return Offer(sub.tenant_id, sub.subscription_id, sub.display_name, "", definition_id, ())
    if dprops.managed_by_tenant_id and dprops.managed_by_tenant_id.lower() != managing_tenant:
        return None
    grants = [Grant(str(a.principal_id).lower(), a.principal_id_display_name or "", role_guid(a.role_definition_id))
              for a in dprops.authorizations or []]
    grants += [Grant(str(a.principal_id).lower(), a.principal_id_display_name or "",
                     role_guid(a.role_definition_id), just_in_time=True) for a in dprops.eligible_authorizations or []]
    plan = definition.plan if definition else None
    marketplace = "/".join(p for p in (plan.publisher, plan.product, plan.name) if p) if plan else None
    return Offer(sub.tenant_id, sub.subscription_id, sub.display_name, dprops.registration_definition_name or "",
                 definition_id, tuple(grants), marketplace or None, dprops.managee_tenant_name or "")


def _failure_code(exc: BaseException) -> str:
    if isinstance(exc, RetryAfterTooLong):
        return "RetryAfterTooLong"
    if isinstance(exc, HttpResponseError):
        code = error_fields(exc)[0] or f"HTTP{exc.status_code}"
        return f"{code} (retries exhausted)" if classify(exc).transient else code
    return "Timeout" if isinstance(exc, TimeoutError) else type(exc).__name__


@dataclass
class _Reader:
    """The ARM reads of one lighthouse run, through run-wide clients and the operator's per-task token."""

    transport: SharedTransport
    endpoints: Endpoints
    retrier: Retrier
    token: _OperatorToken
    managing_tenant: str
    stats: CallStats
    pace: _Pace

    def __post_init__(self) -> None:
        self.subscriptions_client = SubscriptionClient(**shared_client_kwargs(self.transport, self.endpoints))
        self.managed = ManagedServicesClient(**shared_client_kwargs(self.transport, self.endpoints),
                                             api_version=MANAGED_SERVICES_API_VERSION)

    async def close(self) -> None:
        await self.subscriptions_client.close()
        await self.managed.close()

    async def delegated(self) -> list[Delegated]:
        """The subscriptions of other tenants the operator sees (delegated to its tenant through Lighthouse)."""
        await self.token.use()
        try:
            subs = await _pages(self.subscriptions_client.subscriptions.list, self.retrier, self.stats, self.pace)
        except _READ_ERRORS as exc:
            raise EndpointError(f"cannot list the subscriptions the operator sees ({_failure_code(exc)}); "
                                "check --operator-auth and --arm-endpoint") from None
        return [Delegated(str(s.subscription_id).lower(), str(s.tenant_id).lower(), s.display_name or "")
                for s in subs if self._delegated_here(s)]

    def _delegated_here(self, sub: Any) -> bool:
        """Another tenant's subscription, managed by ours (when the service says who manages it)."""
        if not sub.tenant_id or str(sub.tenant_id).lower() == self.managing_tenant:
            return False
        managers = {str(m.tenant_id).lower() for m in sub.managed_by_tenants or [] if m.tenant_id}
        return not managers or self.managing_tenant in managers

    async def rows(self, sub: Delegated, judge_offer: Callable[[Offer], LighthouseRow]) -> list[LighthouseRow]:
        """The verdicts of one delegated subscription (one per offer), or one `unreadable` row."""
        await self.pace.wait()
        await self.token.use()
        list_assignments = self.managed.registration_assignments.list
        try:
            found = await _pages(lambda: list_assignments(f"subscriptions/{sub.subscription_id}",
                                                          expand_registration_definition=True),
                                 self.retrier, self.stats, self.pace)
        except _READ_ERRORS as exc:  # cannot read: an `unreadable` verdict, the run goes on
            return [unreadable(sub.tenant_id, sub.subscription_id, sub.display_name, _failure_code(exc))]
        offers = [o for o in (_offer(sub, a, self.managing_tenant) for a in found) if o is not None]
        if not offers:
            return [unreadable(sub.tenant_id, sub.subscription_id, sub.display_name, "NoAssignment",
                               "visible, but no Lighthouse assignment to this tenant is (access by other means?)")]
        return [judge_offer(o) if o.name or o.grants else
                unreadable(sub.tenant_id, sub.subscription_id, sub.display_name, "NoDefinition") for o in offers]


async def _read_all(
    options: RunOptions, principals: dict[str, Principal], sink: Callable[[LighthouseRow], None],
    started: Callable[[str, int], None], sleep: Sleep | None,
) -> tuple[str, int, int]:
    """Sign in, list, judge every delegated subscription with a fixed pool; → (managing tenant, subs, requests)."""
    endpoints = endpoints_resolver(options)(Identity("", "", "", "", options.cloud))
    retrier = Retrier(options.retry, sleep=sleep)
    partner_id = str(options.partner_id)
    async with SharedTransport(ca_bundle=options.ca_bundle, limit=max(8, options.concurrency * 2),
                               timeout_s=options.retry.timeout_s) as transport:
        await probe_arm(endpoints.arm_endpoint, transport, retrier)
        credential = operator_credential(options.operator_auth, endpoints=endpoints, transport=transport)
        try:
            token = _OperatorToken(credential, endpoints.arm_audience + ".default", retrier)
            tenant = str(claims_of((await token.get()).token).get("tid") or "").lower()
            if not tenant:
                raise OperatorAuthError("the operator's token carries no tenant ID; cannot tell delegated "
                                        "subscriptions from its own")
            pace = _Pace(options.retry.retry_after_cap_s, sleep or asyncio.sleep)
            reader = _Reader(transport, endpoints, retrier, token, tenant, CallStats(), pace)
            try:
                subs = await reader.delegated()
                started(tenant, len(subs))
                await _pool(subs, options.concurrency,
                            lambda sub: reader.rows(sub, lambda offer: judge(offer, principals, partner_id)), sink)
            finally:
                await reader.close()
        finally:
            await credential.close()
    return tenant, len(subs), reader.stats.attempts


async def _pool(subs: list[Delegated], concurrency: int, read: Callable[[Delegated], Awaitable[list[LighthouseRow]]],
                sink: Callable[[LighthouseRow], None]) -> None:
    """A fixed pool of workers over one shared iterator (never an unbounded gather)."""
    queue = iter(subs)

    async def worker() -> None:
        for sub in queue:
            for row in await read(sub):
                sink(row)

    await run_pool(min(concurrency, len(subs)), worker)


def _link_first(options: RunOptions, sleep: Sleep | None, announce: Callable[[str], None]) -> RunResult:
    """The usual reconcile of the managing-tenant inventory (no recognition, no coverage report), same journal."""
    result = execute(replace(options, command=Command.LINK, recognition=False, write_reports=False), sleep=sleep,
                     announce=announce)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
    announce(f"link of {options.inventory}: {counts} (run {result.run_id}; `pal-orchestrator report "
             f"{result.run_id}` renders it)")
    if result.stop:
        announce(f"the link run stopped: {result.stop}")
    return result


def run_lighthouse(
    options: RunOptions,
    *,
    sleep: Sleep | None = None,
    announce: Callable[[str], None] = lambda text: None,
) -> LighthouseResult:
    """Link the inventory's principals (when one is given), then judge every delegated subscription × offer.

    Raises only run-level errors (see errors.py). Exit code: 0 when every delegated customer is recognised
    (or covered by a Marketplace offer), 1 otherwise.
    """
    started = time.monotonic()
    if not options.partner_id:
        raise UsageError("lighthouse needs --partner-id (the partner location ID the principals are linked to)")
    check_options(options)
    link_run = _link_first(options, sleep, announce) if options.inventory else None
    journal = Journal(options.journal)
    try:
        journal.lock()
        principals = principal_states(journal.latest_by_object_id(), options.partner_id)
        run_id = _start(journal, options)
        try:
            managing, subs, requests = run_interruptible(_read_all(
                options, principals, lambda row: journal.record_lighthouse(run_id, replace(row, checked_at=utcnow())),
                lambda tenant, n: announce(f"managing tenant {tenant}: {n} delegated subscriptions visible"), sleep))
        except KeyboardInterrupt:
            raise LighthouseInterrupted(run_id) from None
        except PalError:
            journal.finish_run(run_id, 2)
            raise
        customers = tuple(roll_up(journal.lighthouse_rows(run_id)))
        code = 0 if all(c.recognised for c in customers) else 1
        journal.finish_run(run_id, code)
        report_dir = None
        if options.write_reports:
            from .report.lighthouse import write_lighthouse_reports

            report_dir = str(write_lighthouse_reports(journal, run_id, options.report_dir)[0].parent)
            journal.mark_reported(run_id)
        rows = len(journal.lighthouse_rows(run_id))
    finally:
        journal.close()
    return LighthouseResult(run_id, code, customers, rows, subs, requests, time.monotonic() - started,
                            str(journal.path), report_dir, managing, link_run)


def _start(journal: Journal, options: RunOptions) -> str:
    """The lighthouse run's record (command "lighthouse"), keyed on its inventory or on the journal alone."""
    key = f"lighthouse:{Path(options.inventory).resolve() if options.inventory else 'journal'}"
    recorded = {**options.recorded(), "command": "lighthouse"}
    return journal.start_run(
        command="lighthouse", inventory_path=key, inventory_sha256=hashlib.sha256(key.encode()).hexdigest(),
        inventory_rows=0, skipped=0, partner_ids=[str(options.partner_id)], options=recorded,
        tool_version=__version__, operator=operator_name(),
    )
