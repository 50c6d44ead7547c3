"""Fault injection: latency, 429 with Retry-After, 500/503, dropped connections, hangs, scripts.

Faults are set per service (`entra`, `keyvault`, `arm`, `imds`) and optionally per tenant (Entra: the
path tenant; ARM: the token's tid; Key Vault: the vault name). A scripted sequence for one (service,
tenant) is consumed one step per request and wins over random faults. Randomness is seeded.

Besides fixed latencies, `latency:` gives real-world ones: per latency class (`entra`, `keyvault`, `arm_read`,
`arm_write`, `imds`) a log-normal with a given median and 99th percentile, drawn per request from its own seeded
stream (so the sequence of faults for a seed does not change), added to the fixed latencies.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

SERVICES = ("entra", "keyvault", "arm", "imds")
STEP_KINDS = ("ok", "429", "500", "503", "drop", "hang")


class FaultError(ValueError):
    """A fault specification that cannot be understood."""


#: Latency classes of the `latency:` spec: a service, with ARM split into reads (GET/HEAD) and writes.
LATENCY_CLASSES = ("entra", "keyvault", "arm_read", "arm_write", "imds")
_Z99 = 2.3263478740408408  # the standard normal's 99th percentile


@dataclass(frozen=True, slots=True)
class LatencyDist:
    """A log-normal latency given by its median and 99th percentile (seconds): real services' shape, a long tail."""

    median_s: float
    p99_s: float

    @classmethod
    def from_mapping(cls, name: str, data: Mapping[str, Any]) -> LatencyDist:
        unknown = set(data) - {"median_ms", "p99_ms"}
        if unknown or "median_ms" not in data:
            raise FaultError(f"latency.{name}: give median_ms (and p99_ms); unknown {sorted(unknown)}")
        median = float(data["median_ms"]) / 1000.0
        p99 = float(data.get("p99_ms", data["median_ms"])) / 1000.0
        if median <= 0 or p99 < median:
            raise FaultError(f"latency.{name}: needs 0 < median_ms <= p99_ms")
        return cls(median, p99)

    @property
    def sigma(self) -> float:
        return math.log(self.p99_s / self.median_s) / _Z99

    def draw(self, rng: random.Random) -> float:
        return self.median_s if self.p99_s == self.median_s else rng.lognormvariate(math.log(self.median_s),
                                                                                      self.sigma)


def latency_class(service: str, method: str) -> str:
    """The `latency:` class of a request: its service, ARM split by method."""
    if service != "arm":
        return service
    return "arm_read" if method.upper() in ("GET", "HEAD") else "arm_write"


def parse_latency(data: Mapping[str, Any] | None) -> dict[str, LatencyDist]:
    """`latency: {entra: {median_ms, p99_ms}, keyvault: …, arm_read: …, arm_write: …}` → distributions."""
    found: dict[str, LatencyDist] = {}
    for name, spec in (data or {}).items():
        if name not in LATENCY_CLASSES:
            raise FaultError(f"unknown latency class {name!r}; use one of {', '.join(LATENCY_CLASSES)}")
        found[name] = LatencyDist.from_mapping(name, spec or {})
    return found


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """What to do to a share of the requests of one service (and tenant)."""

    latency_s: float = 0.0
    rate_429: float = 0.0
    #: seconds (or a [low, high] range) for Retry-After: 429s always carry one (1 s when unset); 500/503 only
    #: when it is set here or in the script step (`503:30`)
    retry_after: float | tuple[float, float] | None = None
    rate_500: float = 0.0
    rate_503: float = 0.0
    rate_drop: float = 0.0
    rate_hang: float = 0.0
    hang_s: float = 10.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultSpec:
        """Read a spec; accepts `latency_ms`, and `hang: N` as `hang_s=N, rate_hang=1` unless a rate is given."""
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "latency_ms":
                values["latency_s"] = float(value) / 1000.0
            elif key == "hang":
                values["hang_s"] = float(value)
                values.setdefault("rate_hang", 1.0)
            elif key == "retry_after":
                if isinstance(value, list | tuple):
                    if len(value) != 2:
                        raise FaultError("retry_after range must be [low, high]")
                    values[key] = (float(value[0]), float(value[1]))
                else:
                    values[key] = float(value)
            elif key in known:
                values[key] = float(value)
            elif key not in ("service", "tenant"):
                raise FaultError(f"unknown fault option {key!r}; known: {sorted(known | {'latency_ms', 'hang'})}")
        spec = cls(**values)
        total = spec.rate_429 + spec.rate_500 + spec.rate_503 + spec.rate_drop + spec.rate_hang
        if total > 1.0 + 1e-9:
            raise FaultError(f"fault shares add up to {total:.2f} > 1")
        return spec


@dataclass(frozen=True, slots=True)
class Decision:
    """The fault chosen for one request: `kind` is one of STEP_KINDS."""

    kind: str = "ok"
    latency_s: float = 0.0
    retry_after: int | None = None
    hang_s: float = 0.0
    label: str | None = None  # what the request log shows ("429", "drop", "script:429" …)


@dataclass(slots=True)
class FaultState:
    """All fault settings of a running emulator; changed at run time from any thread."""

    latency_s: float = 0.0
    services: dict[str, FaultSpec] = field(default_factory=dict)
    tenants: dict[tuple[str, str], FaultSpec] = field(default_factory=dict)
    scripts: dict[tuple[str, str], deque[str]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    #: Retry-After draws for 500/503 come from their own stream, so sending them leaves the seeded sequence
    #: of faults (and of 429 waits) exactly as it was before 5xx carried Retry-After
    rng_5xx: random.Random = field(default_factory=lambda: random.Random(0))
    #: the `latency:` distributions, drawn from their own stream (the fault sequence of a seed is unchanged)
    latency: dict[str, LatencyDist] = field(default_factory=dict)
    rng_latency: random.Random = field(default_factory=lambda: random.Random(0))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, data: Mapping[str, Any] | None, *, replace: bool = True) -> None:
        """Apply a faults mapping (the faults YAML / admin endpoint body; see README.md)."""
        data = data or {}
        services: dict[str, FaultSpec] = {}
        tenants: dict[tuple[str, str], FaultSpec] = {}
        for name, spec in (data.get("services") or {}).items():
            services[_service(name)] = FaultSpec.from_mapping(spec or {})
        for entry in data.get("tenants") or []:
            tenants[(_service(entry.get("service", "")), str(entry.get("tenant", "")).lower())] = (
                FaultSpec.from_mapping(entry)
            )
        latency = parse_latency(data.get("latency"))
        with self.lock:
            if replace:
                self.services, self.tenants = services, tenants
                self.scripts = {}
                self.latency = latency
            else:
                self.services.update(services)
                self.tenants.update(tenants)
                self.latency.update(latency)
            if "latency_ms" in data:
                self.latency_s = float(data["latency_ms"]) / 1000.0
            if "latency_s" in data:
                self.latency_s = float(data["latency_s"])
            if "seed" in data:
                self.rng = random.Random(int(data["seed"]))
                self.rng_5xx = random.Random(int(data["seed"]))
                self.rng_latency = random.Random(int(data["seed"]))
        for entry in data.get("scripts") or []:
            self.script(entry.get("service", ""), entry.get("tenant"), entry.get("steps") or [])

    def set(self, service: str, tenant: str | None = None, spec: FaultSpec | None = None, **options: Any) -> None:
        """Set (or with no spec/options, clear) the faults of a service or of one of its tenants."""
        key = _service(service)
        new = spec if spec is not None else (FaultSpec.from_mapping(options) if options else None)
        with self.lock:
            target: dict[Any, FaultSpec] = self.services if tenant is None else self.tenants
            k: Any = key if tenant is None else (key, tenant.lower())
            if new is None:
                target.pop(k, None)
            else:
                target[k] = new

    def script(self, service: str, tenant: str | None, steps: Iterable[str]) -> None:
        """Queue steps (`ok`, `429`, `429:SECONDS`, `500`, `503`, `503:SECONDS`, `drop`, `hang`, `hang:SECONDS`)."""
        parsed = [str(s).strip().lower() for s in steps]
        for step in parsed:
            if step.split(":", 1)[0] not in STEP_KINDS:
                raise FaultError(f"unknown script step {step!r}; use one of {', '.join(STEP_KINDS)}")
        with self.lock:
            self.scripts.setdefault((_service(service), (tenant or "*").lower()), deque()).extend(parsed)

    def clear(self) -> None:
        """Remove every fault, script and the global latency."""
        with self.lock:
            self.services, self.tenants, self.scripts = {}, {}, {}
            self.latency_s = 0.0
            self.latency = {}

    def decide(self, service: str, tenant: str | None, method: str = "GET") -> Decision:
        """Pick the fault for one request (a script step first, then the random shares)."""
        t = (tenant or "").lower()
        with self.lock:
            spec = self.tenants.get((service, t)) or self.services.get(service)
            latency = self.latency_s + (spec.latency_s if spec else 0.0)
            dist = self.latency.get(latency_class(service, method)) if self.latency else None
            if dist is not None:
                latency += dist.draw(self.rng_latency)
            for key in ((service, t), (service, "*")):
                queue = self.scripts.get(key)
                if queue:
                    step = queue.popleft()
                    return self._step(step, latency, spec)
            if spec is None:
                return Decision(latency_s=latency)
            u = self.rng.random()
            for kind, share in (("drop", spec.rate_drop), ("hang", spec.rate_hang), ("429", spec.rate_429),
                                ("500", spec.rate_500), ("503", spec.rate_503)):
                if u < share:
                    return self._decision(kind, latency, spec, None)
                u -= share
            return Decision(latency_s=latency)

    def _step(self, step: str, latency: float, spec: FaultSpec | None) -> Decision:
        kind, _, arg = step.partition(":")
        decision = self._decision(kind, latency, spec, float(arg) if arg else None)
        return Decision(decision.kind, decision.latency_s, decision.retry_after, decision.hang_s,
                        f"script:{step}")

    def _decision(self, kind: str, latency: float, spec: FaultSpec | None, arg: float | None) -> Decision:
        if kind == "ok":
            return Decision(latency_s=latency)
        if kind in ("429", "500", "503"):
            return Decision(kind, latency, self._retry_after(kind, spec, arg), label=kind)
        if kind == "hang":
            return Decision("hang", latency, hang_s=arg if arg is not None else (spec.hang_s if spec else 10.0),
                            label="hang")
        return Decision(kind, latency, label=kind)

    def _retry_after(self, kind: str, spec: FaultSpec | None, arg: float | None) -> int | None:
        """Retry-After seconds: the step's own, else the spec's; a 429 without either gets 1, a 5xx none."""
        if arg is not None:
            return max(0, round(arg))
        r = spec.retry_after if spec else None
        if r is None:
            return 1 if kind == "429" else None
        rng = self.rng if kind == "429" else self.rng_5xx
        return max(0, round(rng.uniform(r[0], r[1]) if isinstance(r, tuple) else r))


def _service(name: str) -> str:
    if name not in SERVICES:
        raise FaultError(f"unknown service {name!r}; use one of {', '.join(SERVICES)}")
    return name
