"""Small frozen configuration values with named defaults (the httpx `Timeout`/`Limits` style)."""

from __future__ import annotations

from dataclasses import dataclass

from .models import Cloud


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where one cloud's services live. `arm_audience` is what tokens for ARM are requested for."""

    authority_host: str
    arm_endpoint: str
    arm_audience: str
    vault_suffix: str | None  # e.g. "vault.azure.net"; None for custom clouds (vault URLs must be full URLs)


CLOUD_ENDPOINTS: dict[Cloud, Endpoints] = {
    Cloud.PUBLIC: Endpoints(
        "https://login.microsoftonline.com",
        "https://management.azure.com/",
        "https://management.azure.com/",
        "vault.azure.net",
    ),
    Cloud.CHINA: Endpoints(
        "https://login.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/",
        "https://management.chinacloudapi.cn/",
        "vault.azure.cn",
    ),
    Cloud.USGOV: Endpoints(
        "https://login.microsoftonline.us",
        "https://management.usgovcloudapi.net/",
        "https://management.usgovcloudapi.net/",
        "vault.usgovcloudapi.net",
    ),
}


def endpoints_for(
    cloud: Cloud, *, authority_host: str | None = None, arm_endpoint: str | None = None
) -> Endpoints:
    """The endpoints of `cloud`, with explicit options winning; `custom` needs both options. https only."""
    for name, url in (("--authority-host", authority_host), ("--arm-endpoint", arm_endpoint)):
        if url and not url.lower().startswith("https://"):
            raise ValueError(f"{name} {url}: tokens are only sent over https; give an https:// URL")
    if cloud is Cloud.CUSTOM:
        if not authority_host or not arm_endpoint:
            raise ValueError("--cloud custom needs --authority-host and --arm-endpoint")
        arm = arm_endpoint.rstrip("/") + "/"
        return Endpoints(authority_host.rstrip("/"), arm, arm, None)
    base = CLOUD_ENDPOINTS[cloud]
    arm = (arm_endpoint.rstrip("/") + "/") if arm_endpoint else base.arm_endpoint
    return Endpoints(
        (authority_host or base.authority_host).rstrip("/"),
        arm,
        base.arm_audience,
        base.vault_suffix,
    )


#: A token closer than this to its expiry is renewed before the next call: retries and Retry-After waits (up to
#: 120 s each) can outlive it. One value for the identities' ARM tokens, the operator's and the managed identity's.
TOKEN_RENEW_MARGIN_S = 300


@dataclass(frozen=True, slots=True)
class RetrySettings:
    """The one retry policy. Worst case HTTP requests for one call = `attempts` (SDK retries are off).

    10 attempts keep a call alive through a 30 % fault rate (P(all fail) = 0.3^10 ≈ 6e-6 per call), measured
    in tests/test_reliability_faults.py; `--max-attempts` changes it.
    """

    attempts: int = 10
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    retry_after_cap_s: float = 120.0
    timeout_s: float = 30.0


DEFAULT_RETRY = RetrySettings()

#: Default number of identities in flight, chosen from `make bench`'s realistic step (docs/performance.md): under
#: real-world latencies (partner writes ~2 s) 256 links 10,000 in 174 s against 316 s at 128, at 251 MB peak RSS;
#: 512 was faster still (149 s) but peaks at 328 MB, over the 300 MB memory ceiling. With 50 ms latencies a run is
#: bound by client CPU from 128 on, so 256 costs only memory (~40 MB) and pooled sockets (up to 2 × 256 per host).
DEFAULT_CONCURRENCY = 256
