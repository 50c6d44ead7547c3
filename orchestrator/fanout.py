"""The fan-out of one process: build the session every identity shares, then run identities through a pool.

`session` is everything a process prepares once before its first identity: the shared transport, the ARM probe,
the Key Vault reader and its warm-up (one read per vault), the federation warm-up, the run-wide ARM clients, and
the LinkContext. The in-process run and each worker process build it with the same code. `pool` is the in-process
fan-out: a fixed pool of tasks over one iterator (never an unbounded gather), the breaker deciding how many
identities may be in flight.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import ClientAuthenticationError

from .breaker import Breaker
from .credentials import VaultOnlyCredential, VaultReader, operator_credential, split_secret_uri
from .errors import OperatorAuthError
from .federation import FederationTokens
from .hooks import Guard, Principals
from .linker import ArmClients, IntentSink, LinkContext, reconcile
from .models import Cloud, Identity, Outcome, hand_out
from .needs import Needs as Needs
from .needs import needs_vault
from .partner import probe_arm
from .recognition import Recognizer
from .retrying import CallStats, Retrier, Sleep
from .run_options import RunOptions, endpoints_resolver
from .transport import SharedTransport

log = logging.getLogger(__name__)

RecognizerFactory = Callable[[SharedTransport, Retrier], Recognizer]


@dataclass(frozen=True, slots=True)
class Hooks:
    """The run's cross-identity decisions: local objects in one process, the parent's proxies in a worker."""

    record_intent: IntentSink
    prior_intents: dict[str, tuple[str, str]]
    principals: Principals
    guard: Guard | None


@asynccontextmanager
async def session(
    options: RunOptions, needs: Needs, hooks: Hooks, *, sleep: Sleep | None = None,
    recognizer_factory: RecognizerFactory | None = None,
) -> AsyncIterator[LinkContext]:
    """Everything the identities of this process share, ready (probed, warmed) before the first one starts."""
    resolve = endpoints_resolver(options)
    base = resolve(Identity("", "", "", "", options.cloud))
    retrier = Retrier(options.retry, sleep=sleep)
    async with SharedTransport(
        ca_bundle=options.ca_bundle, limit=max(8, options.concurrency * 2), timeout_s=options.retry.timeout_s
    ) as transport:
        for endpoint in needs.arm_endpoints:
            await probe_arm(endpoint, transport, retrier)  # a wrong endpoint stops the run before any identity
        vault: VaultReader | None = None
        self_credential = None
        if options.self_link:
            self_credential = operator_credential(options.operator_auth, endpoints=base, transport=transport)
        elif needs.vault:
            vault = VaultReader(
                VaultOnlyCredential(operator_credential(options.operator_auth, endpoints=base, transport=transport),
                                    base.arm_audience),
                transport,
                verify_challenge_resource=options.cloud is not Cloud.CUSTOM,
            )
        try:
            if vault is not None:
                await _warm(vault, needs.samples, retrier)
            federation = FederationTokens(transport, retrier) if needs.federation else None
            if federation is not None:
                await federation.warm(needs.samples)  # no managed identity here: a run-level error before any row
            clients = ArmClients(transport)
            try:
                yield LinkContext(
                    command=options.command, transport=transport, clients=clients, retrier=retrier,
                    endpoints=resolve, vault=vault, record_intent=hooks.record_intent, overwrite=options.overwrite,
                    prior_intents=hooks.prior_intents, principals=hooks.principals, guard=hooks.guard,
                    recognizer=recognizer_factory(transport, retrier) if recognizer_factory else None,
                    self_credential=self_credential, federation=federation,
                )
            finally:
                await clients.close()
        finally:
            if vault is not None:
                await vault.close()
            if self_credential is not None:
                await self_credential.close()


async def pool(
    identities: list[Identity], ctx: LinkContext, concurrency: int, breaker: Breaker,
    on_outcome: Callable[[Outcome], None],
) -> None:
    """A fixed pool of workers (never an unbounded gather) over one shared iterator; the breaker decides how many
    identities may be in flight (a few until the first gets through) and stops new starts once it trips.
    `identities` is emptied as they start."""
    queue = hand_out(identities)  # each released once started
    gate = asyncio.Condition()
    in_flight = 0

    def may_start() -> bool:
        return breaker.tripped is not None or in_flight < breaker.window

    async def worker() -> None:
        nonlocal in_flight
        while True:
            async with gate:
                await gate.wait_for(may_start)
                identity = None if breaker.tripped is not None else next(queue, None)
                if identity is None:
                    return
                in_flight += 1
            try:
                on_outcome(await reconcile(identity, ctx))
            finally:
                async with gate:
                    in_flight -= 1
                    gate.notify_all()

    await run_pool(min(concurrency, len(identities)), worker)


async def run_pool(size: int, worker: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """`size` tasks running `worker` (each takes from an iterator they share), awaited together: the pool is
    fixed, never one task per item, and a failure or a cancellation ends every task."""
    tasks = [asyncio.create_task(worker()) for _ in range(size)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


async def _warm(vault: VaultReader, identities: Iterable[Identity], retrier: Retrier) -> None:
    """One Key Vault read per vault before fanning out: one challenge, one operator token, shared by all.

    An operator sign-in failure stops the run here with a clear message instead of failing every row.
    """
    seen: set[str] = set()
    for identity in identities:
        if not needs_vault(identity) or identity.secret_uri is None:
            continue
        vault_url = split_secret_uri(identity.secret_uri)[0]
        if vault_url in seen:
            continue
        seen.add(vault_url)
        uri = identity.secret_uri
        try:
            await retrier.call(lambda uri=uri: vault.get(uri), CallStats())  # type: ignore[misc]
        except ClientAuthenticationError as exc:
            if getattr(exc, "status_code", None) in (401, None):
                raise OperatorAuthError(
                    f"the orchestrator could not sign in to read Key Vault {vault_url}: "
                    f"{str(exc.message).splitlines()[0] if exc.message else type(exc).__name__} — "
                    "check --operator-auth and its AZURE_* variables"
                ) from None
        except Exception as exc:  # noqa: BLE001 - the identity's own reconcile reports it properly
            log.debug("warm-up read of %s: %s", vault_url, type(exc).__name__)
