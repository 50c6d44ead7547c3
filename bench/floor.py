"""The `floor` step: what the SDK stack costs per request, against the same request sent with aiohttp alone.

The link's CPU per identity is mostly per-request cost (six HTTPS requests per new link). This step separates
the part the project must keep (azure-identity, the Key Vault and ManagementPartner clients, azure-core's pipeline
and response objects, the SDK models) from the HTTP client under it: each request kind is sent both ways over the
*same* aiohttp session (one connection pool, one verified SSLContext, the run's `SharedTransport`), to an emulator
at 0 ms, at concurrency 64, in alternated rounds, in a child process whose own CPU is read with `getrusage`.

- `token`: a fresh `ClientSecretCredential` per sign-in with the run's token options, against a form POST;
- `secret`: `VaultReader.get` (the run's lean Key Vault pipeline), against a GET with a Key Vault token;
- `arm_get`: `partner.get` through the run's lean ARM pipeline, against a GET with an ARM token.

`sdk_us` and `raw_us` are medians of the rounds, in µs of CPU per request; each batch is refused unless the
emulator answered exactly one request per call. `new_link_sdk_ms` and `new_link_raw_ms` add them up for a new
link's six requests (`NEW_LINK`). The conditions are not the link step's (0 ms and c=64 here, 50 ms and c=128
there): the figures split a request's CPU between the SDK stack and the HTTP client, they do not predict a run.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .measure import BenchError, bench_env, run_capture
from .steps import Bench, EmulatorProcess
from .worlds import OPERATOR, PARTNER_ID, VAULT, Plan

if TYPE_CHECKING:
    from .calls import Calls

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
        with (work / "floor.err").open("wb") as err:
            m, out = run_capture(argv, env={**bench_env(), "PAL_FLOOR_SECRET": bench.operator_secret},
                                 timeout_s=900, stderr=err)
    finally:
        bench.emulator.stop()
    if m.exit_code != 0:
        raise BenchError(f"the floor step's child exited {m.exit_code}; see {work / 'floor.err'}")
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


async def _cpu_per_call(calls: Calls, kind: str, way: str, n: int) -> tuple[float, int]:
    """(µs of this process's CPU per call, requests the emulator answered), `n` calls at most CONCURRENCY at a
    time. The emulator must have answered exactly `n`: a way that sent more (a repeated challenge, a retry) would be
    measured unfairly."""
    gate = asyncio.Semaphore(CONCURRENCY)
    fn = calls.get(kind, way)

    async def one() -> None:
        async with gate:
            await fn()

    await asyncio.gather(*(one() for _ in range(min(n, 200))))  # warm: connections, caches
    served = await calls.served()
    before = _cpu_s()
    await asyncio.gather(*(one() for _ in range(n)))
    spent = _cpu_s() - before
    served = await calls.served() - served
    if served != n:
        raise RuntimeError(f"{kind} {way}: the emulator answered {served} requests for {n} calls")
    return spent / n * 1e6, served


async def _measure(url: str, ca: str, secret: str, n: int, rounds: int) -> dict[str, Any]:
    """The child's work: both ways of each kind in every round, the order of kinds and ways alternating."""
    from orchestrator.gctuning import tune_for_batch
    from orchestrator.transport import SharedTransport

    from .calls import Calls  # the SDKs: only this child imports them, not the benchmark's driver

    found: dict[str, dict[str, list[float]]] = {k: {"sdk": [], "raw": []} for k in KINDS}
    counted = 0
    async with SharedTransport(ca_bundle=ca, limit=CONCURRENCY, timeout_s=30.0) as transport:
        calls = Calls(transport, url, secret, SECRET_NAME)
        try:
            await calls.prepare()
            tune_for_batch()  # as the CLI and the workers do: after the imports, before the short-lived objects
            for r in range(rounds):
                for kind in KINDS if r % 2 == 0 else KINDS[::-1]:
                    for way in ("sdk", "raw") if r % 2 == 0 else ("raw", "sdk"):
                        cpu_us, served = await _cpu_per_call(calls, kind, way, n)
                        found[kind][way].append(cpu_us)
                        counted += served
        finally:
            await calls.close()
    return {**_summary(found, n, rounds), "requests_counted": counted}


#: A new link's six requests with recognition on (the default) and no subscription in sight, as in the benchmark's
#: world: one token, one secret, four ARM requests (the read, the write, the read-back, the subscription list),
#: all four weighed as the ARM GET measured here.
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
    return {"requests": n, "rounds": rounds, "concurrency": CONCURRENCY, "latency_ms": 0, "kinds": kinds,
            "new_link_sdk_ms": round(link_sdk / 1000, 2), "new_link_raw_ms": round(link_raw / 1000, 2),
            "sdk_share_of_new_link": round((link_sdk - link_raw) / link_sdk, 3) if link_sdk else None}


def main(argv: list[str]) -> int:
    """Child entry: URL CA REQUESTS ROUNDS; the operator's secret in PAL_FLOOR_SECRET; prints one JSON line."""
    url, ca, n, rounds = argv[0], argv[1], int(argv[2]), int(argv[3])
    print(json.dumps(asyncio.run(_measure(url, ca, os.environ["PAL_FLOOR_SECRET"], n, rounds))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
