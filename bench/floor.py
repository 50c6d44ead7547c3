"""The `floor` step: what the SDK stack costs per request, against the same request sent with aiohttp alone.

The link's CPU per identity is mostly per-request cost (six HTTPS requests per new link). This step separates
the part the project must keep (azure-identity, the Key Vault and ManagementPartner clients, azure-core's pipeline
and response objects, the SDK models) from the HTTP client under it: each request kind is sent both ways over the
*same* aiohttp session (one connection pool, one verified SSLContext, the run's `SharedTransport`), to an emulator
at 0 ms, at concurrency 64, in alternated rounds, in a child process whose own CPU is read with `getrusage`.

- `token`: a fresh `ClientSecretCredential` per sign-in with the run's token options, against a form POST;
- `secret`: `VaultReader.get` (the run's lean Key Vault pipeline), against a GET with a Key Vault token;
- `arm_get`: `partner.get` through the run's lean ARM pipeline, against a GET with an ARM token.

`sdk_us` and `raw_us` are medians of the rounds, in µs of CPU per request. `new_link_us` adds them up for a new
link's six requests (a token, a secret, four ARM requests counted as GETs): the share of the client's CPU per
identity that no change inside this project can remove, whatever the rest costs.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from .measure import BenchError, bench_env, run_capture
from .steps import Bench, EmulatorProcess
from .worlds import OPERATOR, PARTNER_ID, VAULT, Plan

CONCURRENCY = 64
SECRET_NAME = "floor-000000"  # noqa: S105 - the name of a secret in the emulator, not a secret
_TENANT = "f1000000-0000-4000-8000-000000000001"
_CLIENT = "f1000000-0000-4000-8000-000000000002"
KINDS = ("token", "secret", "arm_get")


def floor_world(operator_secret: str) -> dict[str, Any]:
    """The operator, the partner, one vault with one identity's secret in it."""
    return {
        "seed": 8,
        "operator": {**OPERATOR, "secret": operator_secret},
        "vaults": [{"name": VAULT}],
        "partners": [{"partner_id": PARTNER_ID, "name": "Bench Partner"}],
        "identities": [{"tenant": _TENANT, "client_id": _CLIENT, "credential": "secret",
                        "secret_name": SECRET_NAME, "vault": VAULT}],
    }


def floor_step(requests: int, rounds: int, workdir: Path) -> dict[str, Any]:
    """Start the step's emulator (0 ms) and measure `requests` of each kind both ways, `rounds` times."""
    work = workdir / "floor"
    work.mkdir(exist_ok=True, mode=0o700)
    bench = Bench(Plan(n=0), work, 0.0)
    world = work / "world.yaml"
    world.write_text(yaml.safe_dump(floor_world(bench.operator_secret), sort_keys=False), encoding="utf-8")
    bench.emulator = EmulatorProcess(world, latency_ms=0.0).start()
    try:
        em = bench.em
        argv = [sys.executable, "-m", "bench.floor", em.url, em.ca, str(requests), str(rounds)]
        before = em.stats()
        with (work / "floor.err").open("wb") as err:
            m, out = run_capture(argv, env={**bench_env(), "PAL_FLOOR_SECRET": bench.operator_secret},
                                 timeout_s=900, stderr=err)
        served = int(em.stats()["requests"]) - int(before["requests"])
    finally:
        bench.emulator.stop()
    if m.exit_code != 0:
        raise BenchError(f"the floor step's child exited {m.exit_code}; see {work / 'floor.err'}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    result["emulator_requests"] = served  # every request of both ways reached the emulator
    return result


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _cpu_per_call(fn: Callable[[], Awaitable[object]], n: int) -> float:
    """µs of this process's CPU per call, `n` calls at most CONCURRENCY at a time."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one() -> None:
        async with gate:
            await fn()

    await asyncio.gather(*(one() for _ in range(min(n, 200))))  # warm: connections, caches
    before = _cpu_s()
    await asyncio.gather(*(one() for _ in range(n)))
    return (_cpu_s() - before) / n * 1e6


async def _measure(url: str, ca: str, secret: str, n: int, rounds: int) -> dict[str, Any]:
    """The child's work. The SDKs are imported here: the benchmark's driver imports this module too."""
    from azure.identity.aio import ClientSecretCredential
    from azure.mgmt.managementpartner import __version__ as partner_version
    from azure.mgmt.managementpartner.aio import ACEProvisioningManagementPartnerAPI

    from orchestrator.credentials import VaultReader, shared_client_kwargs
    from orchestrator.settings import Endpoints
    from orchestrator.transport import SharedTransport

    from .calls import Calls

    endpoints = Endpoints(url, url + "/", "https://management.azure.com/", None)
    async with SharedTransport(ca_bundle=ca, limit=CONCURRENCY, timeout_s=30.0) as transport:
        operator = ClientSecretCredential(OPERATOR["tenant"], OPERATOR["client_id"], secret, authority=url,
                                          **transport.client_kwargs())
        client = ACEProvisioningManagementPartnerAPI(**shared_client_kwargs(
            transport, endpoints, f"mgmt-managementpartner/{partner_version}"))
        calls = Calls(transport, url, secret, operator, client, VaultReader(
            operator, transport, verify_challenge_resource=False), f"{url}/vaults/{VAULT}", SECRET_NAME)
        await calls.prepare()
        try:
            found: dict[str, dict[str, list[float]]] = {k: {"sdk": [], "raw": []} for k in KINDS}
            for r in range(rounds):
                for kind in KINDS:
                    for way in (("sdk", "raw") if r % 2 == 0 else ("raw", "sdk")):
                        found[kind][way].append(await _cpu_per_call(calls.get(kind, way), n))
        finally:
            await client.close()
            await operator.close()
    return _summary(found, n, rounds)


#: A new link's six requests: one token, one secret, four ARM requests (read, write, read back, role list).
NEW_LINK = {"token": 1, "secret": 1, "arm_get": 4}


def _summary(found: dict[str, dict[str, list[float]]], n: int, rounds: int) -> dict[str, Any]:
    """Medians per kind and way, the rounds themselves, and a new link's six requests added up."""
    sdk = {k: statistics.median(v["sdk"]) for k, v in found.items()}
    raw = {k: statistics.median(v["raw"]) for k, v in found.items()}
    kinds = {k: {"sdk_us": round(sdk[k]), "raw_us": round(raw[k]),
                 "sdk_rounds_us": [round(x) for x in v["sdk"]], "raw_rounds_us": [round(x) for x in v["raw"]]}
             for k, v in found.items()}
    link_sdk = sum(sdk[k] * w for k, w in NEW_LINK.items())
    link_raw = sum(raw[k] * w for k, w in NEW_LINK.items())
    return {"requests": n, "rounds": rounds, "concurrency": CONCURRENCY, "kinds": kinds,
            "new_link_sdk_ms": round(link_sdk / 1000, 2), "new_link_raw_ms": round(link_raw / 1000, 2),
            "sdk_share_of_new_link": round((link_sdk - link_raw) / link_sdk, 3) if link_sdk else None}


def main(argv: list[str]) -> int:
    """Child entry: URL CA REQUESTS ROUNDS; the operator's secret in PAL_FLOOR_SECRET; prints one JSON line."""
    from orchestrator.gctuning import tune_for_batch

    url, ca, n, rounds = argv[0], argv[1], int(argv[2]), int(argv[3])
    tune_for_batch()
    print(json.dumps(asyncio.run(_measure(url, ca, os.environ["PAL_FLOOR_SECRET"], n, rounds))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
