"""The `lighthouse` step: `pal-orchestrator lighthouse` over N delegated subscriptions (1,000 by default).

Its own emulator process serves a managing tenant (the operator's) with one principal of the partner and N
subscriptions, four per customer tenant, each delegated through an offer granting that principal Support Request
Contributor; lists are paged by 100. The principal is linked first (`link`, not measured), then `lighthouse`
without an inventory runs as one measured process: wall time, CPU, peak RSS, and the emulator's request count
around it (one subscription list, paged, plus one assignment list per subscription).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from .figures import step_figures
from .measure import BenchError, run_measured
from .steps import Bench, EmulatorProcess
from .worlds import OPERATOR, PARTNER_ID, VAULT, Entry, Plan, write_inventory

#: The partner's principal in the managing tenant, named in every offer.
PRINCIPAL = Entry(OPERATOR["tenant"], "0e0e0e0e-0000-4000-8000-0000000000f1", "secret", "lighthouse-pal")
SUBS_PER_CUSTOMER = 4
PAGE_SIZE = 100


def _guid(kind: int, n: int) -> str:
    return f"{kind:08x}-0000-4000-8000-{n:012d}"


def lighthouse_world(n: int, operator_secret: str) -> dict[str, Any]:
    """The world: the operator's tenant manages `n` subscriptions of `n / 4` customers, all delegated to PRINCIPAL."""
    grant = {"client_id": PRINCIPAL.client_id, "role": "Support Request Contributor"}
    return {
        "seed": 7,
        "operator": {**OPERATOR, "secret": operator_secret},
        "vaults": [{"name": VAULT}],
        "partners": [{"partner_id": PARTNER_ID, "name": "Bench Partner"}],
        "page_size": PAGE_SIZE,
        "identities": [{"tenant": PRINCIPAL.tenant_id, "client_id": PRINCIPAL.client_id, "credential": "secret",
                        "secret_name": PRINCIPAL.secret_name, "vault": VAULT}],
        "lighthouse": [{"customer_tenant": _guid(0xC1, i // SUBS_PER_CUSTOMER), "subscriptions": [_guid(0x5B, i)],
                        "offer": "Managed Ops", "authorizations": [grant]} for i in range(n)],
    }


def _verdicts(journal: Path) -> dict[str, int]:
    from orchestrator.journal import Journal

    with Journal(journal) as j:
        last = j.runs()[-1]
        return dict(sorted(Counter(r.verdict.value for r in j.lighthouse_rows(last.run_id)).items()))


def lighthouse_step(n: int, workdir: Path, latency_ms: float) -> dict[str, Any]:
    """Link the principal, then measure one `lighthouse` run over `n` delegated subscriptions."""
    work = workdir / "lighthouse"
    work.mkdir(exist_ok=True, mode=0o700)
    bench = Bench(Plan(n=0), work, latency_ms)
    world = work / "world.yaml"
    world.write_text(yaml.safe_dump(lighthouse_world(n, bench.operator_secret), sort_keys=False), encoding="utf-8")
    bench.emulator = EmulatorProcess(world, latency_ms=latency_ms).start()
    try:
        inventory = write_inventory(work / "managing.csv", bench.em.url, [PRINCIPAL])
        journal, reports = work / "journal.sqlite", work / "reports"
        link = run_measured(bench.link_argv(inventory, journal, reports), env=bench.orchestrator_env())
        if link.exit_code != 0:
            raise BenchError(f"linking the managing tenant's principal exited {link.exit_code}")
        argv = [a for a in bench.link_argv(inventory, journal, reports) if a != str(inventory)]
        argv[argv.index("link")] = "lighthouse"
        before = bench.em.stats()
        with (work / "lighthouse.out").open("wb") as out, (work / "lighthouse.err").open("wb") as err:
            m = run_measured(argv, env=bench.orchestrator_env(), stdout=out, stderr=err)
        after = bench.em.stats()
    finally:
        bench.emulator.stop()
    result = step_figures(n, m, before, after)
    result.update({"subscriptions": n, "customers": -(-n // SUBS_PER_CUSTOMER), "exit_code": m.exit_code,
                   "verdicts": _verdicts(journal), "subscriptions_per_s": result["identities_per_s"],
                   "requests_per_subscription": result["requests_per_identity"]})
    return result
