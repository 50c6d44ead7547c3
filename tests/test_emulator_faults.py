"""Fault injection, inspection, Host checks and the subprocess mode of the emulator."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from emulator_fixtures import (
    DEFAULT_WORLD,
    PARTNER_ID,
    TENANT_A,
    TENANT_B,
    identity,
    identity_credential,
    pal_client,
    secret_client,
    vault_value,
)

from orchestrator.emulator import Emulator, FaultSpec, start_subprocess
from orchestrator.emulator.faults import FaultError, FaultState

ARM_SCOPE = "https://management.azure.com/.default"


def _arm(em: Emulator, name: str = "sp-secret", **kwargs: Any) -> Any:
    return pal_client(em, identity_credential(em, identity(em, name)), **kwargs)


def test_429_with_retry_after_reaches_client(emulator: Emulator) -> None:
    """A 429 fault on ARM arrives at the SDK with its Retry-After header and ARM's error code."""
    api = _arm(emulator)
    emulator.set_faults("arm", rate_429=1.0, retry_after=7)
    with pytest.raises(HttpResponseError) as excinfo:
        api.partner.get(PARTNER_ID)
    assert excinfo.value.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "7"
    assert excinfo.value.error is not None and excinfo.value.error.code == "TooManyRequests"
    last = emulator.requests[-1]
    assert (last.service, last.status, last.fault, last.retry_after) == ("arm", 429, "429", 7)


def test_retry_after_range_is_seeded(emulator: Emulator) -> None:
    """A Retry-After range draws whole seconds within it, reproducibly for a seed."""
    draws = []
    for _ in range(2):
        state = FaultState()
        state.configure({"seed": 5, "services": {"arm": {"rate_429": 1.0, "retry_after": [2, 9]}}})
        draws.append([state.decide("arm", None).retry_after for _ in range(20)])
    assert draws[0] == draws[1]
    assert all(r is not None and 2 <= r <= 9 for r in draws[0])


def test_entra_429_keeps_status_in_aio(emulator: Emulator) -> None:
    """An Entra 429 reaches an aio credential with status and Retry-After."""
    record = identity(emulator, "sp-secret")
    emulator.set_faults("entra", TENANT_A, rate_429=1.0, retry_after=3)

    async def run() -> None:
        cred = identity_credential(emulator, record, aio=True)
        async with cred:
            await cred.get_token(ARM_SCOPE)

    with pytest.raises(ClientAuthenticationError) as excinfo:
        asyncio.run(run())
    assert excinfo.value.response is not None
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["Retry-After"] == "3"


@pytest.mark.parametrize("status", [500, 503])
def test_keyvault_5xx(emulator: Emulator, status: int) -> None:
    """A 500/503 share of 1.0 on one vault fails every read there with that status."""
    client = secret_client(emulator)
    client.get_secret("sp-secret")  # sign in first
    emulator.set_faults("keyvault", "pal-vault", **{f"rate_{status}": 1.0})
    with pytest.raises(HttpResponseError) as excinfo:
        client.get_secret("sp-secret")
    assert excinfo.value.status_code == status


def test_per_tenant_faults_spare_other_tenants(emulator: Emulator) -> None:
    """ARM faults for one tenant (the token's tid) leave other tenants alone."""
    api_a, api_b = _arm(emulator, "sp-secret"), _arm(emulator, "sp-pfx")
    emulator.set_faults("arm", TENANT_B, rate_500=1.0)
    api_a.partner.create(PARTNER_ID)
    with pytest.raises(HttpResponseError) as excinfo:
        api_b.partner.create(PARTNER_ID)
    assert excinfo.value.status_code == 500
    assert identity(emulator, "sp-pfx").tenant_id == TENANT_B


def test_dropped_connection(emulator: Emulator) -> None:
    """A drop closes the connection with no response; the SDK sees a transport error."""
    api = _arm(emulator)
    api.partner.create(PARTNER_ID)
    emulator.set_faults("arm", rate_drop=1.0)
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        api.partner.get(PARTNER_ID)
    assert emulator.requests[-1].fault == "drop" and emulator.requests[-1].status == 0


def test_hang_hits_client_timeout(emulator: Emulator) -> None:
    """A hang gives no answer; a client with a short read timeout gives up fast."""
    api = _arm(emulator, read_timeout=0.5)
    api.partner.create(PARTNER_ID)
    emulator.set_faults("arm", hang=30)
    start = time.monotonic()
    with pytest.raises(ServiceResponseError):
        api.partner.get(PARTNER_ID)
    assert time.monotonic() - start < 5
    assert emulator.requests[-1].fault == "hang"


def test_scripted_sequence(emulator: Emulator) -> None:
    """A script for (service, tenant) is consumed one step per request, then answers normally."""
    api = _arm(emulator)
    api.partner.create(PARTNER_ID)
    emulator.script("arm", TENANT_A, ["429", "503", "ok"])
    statuses = []
    for _ in range(4):
        try:
            api.partner.get(PARTNER_ID)
            statuses.append(200)
        except HttpResponseError as exc:
            statuses.append(exc.status_code)
    assert statuses == [429, 503, 200, 200]
    assert [r.fault for r in emulator.requests[-4:]] == ["script:429", "script:503", "script:ok", None]


def test_sdk_retry_honours_scripted_retry_after(emulator: Emulator) -> None:
    """With SDK retries on, a scripted 429 with Retry-After 0 is retried and succeeds (no real sleep)."""
    api = _arm(emulator, retry_total=2)
    api.partner.create(PARTNER_ID)
    emulator.reset_log()
    emulator.script("arm", None, ["429:0", "ok"])
    assert api.partner.get(PARTNER_ID).partner_id == PARTNER_ID
    assert [r.status for r in emulator.requests] == [429, 200]


def test_global_latency(emulator_factory: Any) -> None:
    """Global latency applies to every request."""
    em = emulator_factory(DEFAULT_WORLD, latency_s=0.2)
    start = time.monotonic()
    secret_client(em).get_secret("sp-secret")  # 401 challenge, discovery, token, GET: 4 requests
    assert time.monotonic() - start >= 0.8


def test_world_and_option_faults(emulator_factory: Any) -> None:
    """Faults given at start (option mapping) apply from the first request."""
    em = emulator_factory(DEFAULT_WORLD, faults={"services": {"keyvault": {"rate_503": 1.0}}})
    with pytest.raises(HttpResponseError) as excinfo:
        secret_client(em).get_secret("sp-secret")
    assert excinfo.value.status_code == 503


def test_fault_spec_validation() -> None:
    """Fault shares above 1 and unknown options are refused with a message naming them."""
    with pytest.raises(ValueError, match="add up"):
        FaultSpec.from_mapping({"rate_429": 0.7, "rate_500": 0.7})
    with pytest.raises(ValueError, match="unknown fault option"):
        FaultSpec.from_mapping({"rate_418": 0.1})


def _https(em: Emulator, method: str, path: str, body: Any = None, host: str | None = None) -> tuple[int, Any]:
    ctx = ssl.create_default_context(cafile=em.ca_path)
    conn = http.client.HTTPSConnection("127.0.0.1", em.port, context=ctx, timeout=10)
    headers = {"Content-Type": "application/json"}
    if host:
        headers["Host"] = host
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, (json.loads(data) if data else None)


def test_admin_faults_and_stats(emulator: Emulator) -> None:
    """POST /_emulator/faults changes faults at run time; GET /_emulator/stats counts and reports CPU."""
    status, _ = _https(emulator, "POST", "/_emulator/faults",
                       {"services": {"arm": {"rate_429": 1.0, "retry_after": 4}}})
    assert status == 200
    with pytest.raises(HttpResponseError) as excinfo:
        _arm(emulator).partners.get()
    assert excinfo.value.status_code == 429
    status, stats = _https(emulator, "GET", "/_emulator/stats")
    assert status == 200
    assert stats["counters"]["arm"]["429"] == 1
    assert stats["cpu_s"] > 0
    assert emulator.counters()[("arm", 429)] == 1


def test_writes_and_links_inspection(emulator: Emulator) -> None:
    """Writes per link count PUT/PATCH/DELETE; stats show the links."""
    record = identity(emulator, "sp-secret")
    api = _arm(emulator)
    api.partner.create(PARTNER_ID)
    api.partner.get(PARTNER_ID)
    assert emulator.writes(record.tenant_id, record.object_id) == 1
    stats = emulator.stats()
    assert stats["writes"][f"{record.tenant_id}|{record.object_id}"] == 1
    assert stats["links"] == 2  # this one + the pre-linked identity


def test_request_log_holds_no_secret(emulator: Emulator) -> None:
    """After sign-ins, Key Vault reads and PAL calls, no secret, key or token is in the log or stats."""
    cred = identity_credential(emulator, identity(emulator, "sp-secret"))
    token = cred.get_token(ARM_SCOPE).token
    pal_client(emulator, cred).partner.create(PARTNER_ID)
    client = secret_client(emulator)
    for name in ("sp-secret", "sp-pem", "sp-pfx"):
        client.get_secret(name)
    text = repr(emulator.requests) + json.dumps(emulator.stats()) + repr(emulator.operator)
    secrets = [vault_value(emulator, "sp-secret"), emulator.operator.secret, token,
               vault_value(emulator, "sp-pem")[40:80], vault_value(emulator, "sp-pfx")[40:80]]
    for secret in secrets:
        assert secret not in text


def test_non_loopback_host_refused(emulator: Emulator) -> None:
    """A request whose Host is not 127.0.0.1/localhost is refused with 421."""
    status, body = _https(emulator, "GET", "/_emulator/stats", host="evil.example")
    assert status == 421 and body["error"]["code"] == "MisdirectedRequest"
    assert _https(emulator, "GET", "/_emulator/stats", host=f"localhost:{emulator.port}")[0] == 200


def test_subprocess_mode(tmp_path: Path) -> None:
    """`python -m orchestrator.emulator` prints the ready line first, serves real SDK calls, stops on SIGTERM."""
    world = tmp_path / "world.yaml"
    world.write_text(yaml.safe_dump(DEFAULT_WORLD), encoding="utf-8")
    faults = tmp_path / "faults.yaml"
    faults.write_text(yaml.safe_dump({"services": {"imds": {"rate_500": 1.0}}}), encoding="utf-8")
    with start_subprocess(world, faults_path=faults, ca_dir=tmp_path / "ca", seed=3) as proc:
        assert proc.url.startswith("https://127.0.0.1:")
        assert Path(proc.ca_path) == tmp_path / "ca" / "ca.pem"
        from azure.identity import ClientSecretCredential

        op = yaml.safe_load(world.read_text())["operator"]
        assert op["tenant"]
        cred = ClientSecretCredential(
            "00000000-0000-0000-0000-000000000000", "c", "s", authority=proc.authority_host,
            disable_instance_discovery=True, connection_verify=proc.ca_path,
        )
        with pytest.raises(ClientAuthenticationError):
            cred.get_token(ARM_SCOPE)
        proc.set_faults({"services": {"arm": {"rate_503": 1.0}}})
        stats = proc.stats()
        assert stats["counters"]["entra"]["400"] == 1
        assert stats["cpu_s"] > 0
        code = proc.stop()
    assert code == 0
    assert any("--cloud custom" in line for line in proc.output)


@pytest.mark.parametrize("status", [500, 503])
def test_retry_after_is_sent_on_5xx_when_configured(emulator: Emulator, status: int) -> None:
    """`retry_after` on a 500/503 fault is sent as Retry-After and logged; unset, a 5xx carries none."""
    api = _arm(emulator)
    emulator.set_faults("arm", **{f"rate_{status}": 1.0, "retry_after": 30})
    with pytest.raises(HttpResponseError) as excinfo:
        api.partner.get(PARTNER_ID)
    assert excinfo.value.status_code == status
    assert excinfo.value.response.headers["Retry-After"] == "30"
    assert emulator.requests[-1].retry_after == 30
    emulator.set_faults("arm", **{f"rate_{status}": 1.0})
    with pytest.raises(HttpResponseError) as excinfo:
        api.partner.get(PARTNER_ID)
    assert "Retry-After" not in excinfo.value.response.headers
    assert emulator.requests[-1].retry_after is None


def test_scripted_5xx_step_sends_its_retry_after(emulator: Emulator) -> None:
    """Script steps `503:30` and `500:4` answer with Retry-After 30 and 4 (Key Vault and Entra alike)."""
    state = FaultState()
    state.script("keyvault", None, ["503:30", "500:4", "503"])
    assert [state.decide("keyvault", "v").retry_after for _ in range(3)] == [30, 4, None]
    emulator.script("entra", TENANT_A, ["503:30"])
    conn = http.client.HTTPSConnection("127.0.0.1", emulator.port,
                                       context=ssl.create_default_context(cafile=emulator.ca_path))
    conn.request("POST", f"/{TENANT_A}/oauth2/v2.0/token", body="grant_type=client_credentials",
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 503 and resp.headers["Retry-After"] == "30"


REALISTIC = {"latency": {"entra": {"median_ms": 150, "p99_ms": 300}, "keyvault": {"median_ms": 40, "p99_ms": 80},
                         "arm_read": {"median_ms": 150, "p99_ms": 250},
                         "arm_write": {"median_ms": 2000, "p99_ms": 15000}}}


def test_latency_spec_draws_a_log_normal_with_the_given_median_and_p99_per_class() -> None:
    """`latency:` per class: 20,000 draws have the given median (±5 %) and p99 (±15 %); ARM reads and writes
    draw from their own classes; the same seed gives the same draws."""
    state = FaultState()
    state.configure({**REALISTIC, "seed": 3})
    for method, median, p99 in (("GET", 0.150, 0.250), ("PUT", 2.0, 15.0)):
        draws = sorted(state.decide("arm", None, method).latency_s for _ in range(20_000))
        assert abs(draws[10_000] / median - 1) < 0.05
        assert abs(draws[19_800] / p99 - 1) < 0.15
    twin = FaultState()
    twin.configure({**REALISTIC, "seed": 3})
    again = FaultState()
    again.configure({**REALISTIC, "seed": 3})
    assert [twin.decide("entra", "t").latency_s for _ in range(5)] == [again.decide("entra", "t").latency_s
                                                                        for _ in range(5)]


def test_latency_spec_adds_to_fixed_latency_and_leaves_the_fault_sequence_alone() -> None:
    """Latency draws come from their own stream: the faults chosen for a seed are the same with or without
    `latency:`; the global latency is added to the draw; `clear()` removes the spec."""
    faults = {"services": {"arm": {"rate_429": 0.3, "rate_503": 0.2}}, "seed": 9, "latency_ms": 1000}
    plain, timed = FaultState(), FaultState()
    plain.configure(faults)
    timed.configure({**faults, **REALISTIC})
    plain_kinds = [plain.decide("arm", None, "PUT").kind for _ in range(50)]
    decisions = [timed.decide("arm", None, "PUT") for _ in range(50)]
    assert [d.kind for d in decisions] == plain_kinds
    assert all(d.latency_s > 1.0 for d in decisions)
    timed.clear()
    assert timed.decide("arm", None, "PUT").latency_s == 0.0


@pytest.mark.parametrize("bad", [
    {"latency": {"arm": {"median_ms": 10}}},
    {"latency": {"entra": {"median_ms": 100, "p99_ms": 50}}},
    {"latency": {"entra": {"p99_ms": 50}}},
    {"latency": {"entra": {"median_ms": 10, "p95_ms": 50}}},
])
def test_a_latency_spec_that_cannot_be_understood_is_refused(bad: dict[str, Any]) -> None:
    """Unknown classes or keys, a missing median, or a p99 below the median: FaultError, nothing applied."""
    with pytest.raises(FaultError):
        FaultState().configure(bad)


def test_latency_spec_from_the_faults_yaml_slows_arm_writes_not_reads(emulator_factory: Any) -> None:
    """The faults YAML's `latency:` reaches the running emulator: a PUT waits its arm_write draw (fixed here),
    a GET its arm_read one."""
    config = yaml.safe_load("latency:\n  arm_write: {median_ms: 400, p99_ms: 400}\n"
                            "  arm_read: {median_ms: 10, p99_ms: 10}\n")
    em = emulator_factory(DEFAULT_WORLD, faults=config)
    api = _arm(em)
    start = time.monotonic()
    api.partner.create(PARTNER_ID)
    wrote = time.monotonic() - start
    start = time.monotonic()
    api.partner.get(PARTNER_ID)
    read = time.monotonic() - start
    assert wrote >= 0.4 > read
