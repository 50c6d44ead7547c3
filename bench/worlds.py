"""The benchmark world: deterministic identity sets, the emulator's world YAML and the CSV inventories."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

PARTNER_ID = "1234567"
VAULT = "pal-bench"

#: The issue's credential mix, per 10 identities: 5 secrets, 3 PEM certificates, 2 PFX certificates.
MIX = ("secret",) * 5 + ("certificate-pem",) * 3 + ("certificate-pfx",) * 2
#: `federation`: no secret; one multi-tenant app signed in with a managed identity's token (docs/federation.md).
CREDENTIAL_KINDS = ("secret", "certificate-pem", "certificate-pfx", "federation")

OPERATOR = {"tenant": "0e0e0e0e-0000-4000-8000-0000000000b1", "client_id": "0e0e0e0e-0000-4000-8000-0000000000c1"}
#: The user-assigned managed identity (in the operator's tenant) and the multi-tenant app that trusts it.
FEDERATION_IDENTITY = {"client_id": "0e0e0e0e-0000-4000-8000-0000000000d1",
                       "object_id": "0e0e0e0e-0000-4000-8000-0000000000d2"}
FEDERATION_APP = "0e0e0e0e-0000-4000-8000-0000000000e1"


#: The workers step: 1 and 2 workers, on the shared machine and under a CPU quota (bench/workers.py).
WORKER_COUNTS = (1, 2)
WORKER_MODES = ("shared", "quota")
WORKER_SETS = tuple(f"workers-{mode}-{w}" for mode in WORKER_MODES for w in WORKER_COUNTS)


@dataclass(frozen=True, slots=True)
class Entry:
    """One identity of the benchmark world, enough for a world entry and an inventory row."""

    tenant_id: str
    client_id: str
    credential: str
    secret_name: str


def _guid(prefix: int, n: int, salt: int) -> str:
    return str(uuid.UUID(int=(prefix << 120) | (salt << 64) | n, version=4))


def identity_set(name: str, prefix: int, n: int, kinds: Sequence[str] = MIX) -> list[Entry]:
    """`n` identities, one per tenant, credentials cycling through `kinds`; IDs are deterministic."""
    return [
        Entry(_guid(prefix, i, 0xA), FEDERATION_APP if kinds[i % len(kinds)] == "federation" else _guid(prefix, i, 0xC),
              kinds[i % len(kinds)], f"{name}-{i:06d}")
        for i in range(n)
    ]


@dataclass(slots=True)
class Plan:
    """Sizes of every step; the identity sets are disjoint so every link step starts from unlinked tenants."""

    n: int
    sequential_n: int = 200
    split_n: int = 300
    seeds_n: int = 20
    sweep_n: int = 2000
    sweep: tuple[int, ...] = (16, 32, 64, 128)
    scale_rows: int = 100_000
    profile_n: int = 0
    workers_n: int = 0
    scale_link_n: int = 0
    sets: dict[str, list[Entry]] = field(default_factory=dict)

    def build(self) -> None:
        self.sets["link"] = identity_set("main", 0x10, self.n)
        self.sets["link-one"] = identity_set("one", 0x18, self.n)  # the same link in one process (--workers 1)
        self.sets["baseline"] = identity_set("base", 0x20, 1, ("secret",))
        for j, kind in enumerate(CREDENTIAL_KINDS):
            self.sets[f"split-{kind}"] = identity_set(f"split{j}", 0x21 + j, self.split_n, (kind,))
        self.sets["sequential"] = identity_set("seq", 0x30, self.sequential_n)
        self.sets["seeds"] = identity_set("seeds", 0x40, self.seeds_n)
        for j, c in enumerate(self.sweep):
            self.sets[f"sweep-{c}"] = identity_set(f"sweep{j}", 0x50 + j, self.sweep_n)
        if self.profile_n:
            self.sets["profile"] = identity_set("prof", 0x60, self.profile_n)
        if self.workers_n:
            for j, name in enumerate(WORKER_SETS):
                self.sets[name] = identity_set(f"wk{j}", 0x70 + j, self.workers_n)
        if self.scale_link_n:
            self.sets["scale-link"] = identity_set("big", 0xA0, self.scale_link_n)

    def all_entries(self) -> Iterator[Entry]:
        for entries in self.sets.values():
            yield from entries


def write_world(path: Path, entries: Iterator[Entry], operator_secret: str) -> int:
    """The world YAML the emulator subprocess loads: operator, one vault, the partner, every identity."""
    identities, consented = [], []
    for e in entries:
        if e.credential == "federation":
            consented.append(e.tenant_id)
        else:
            identities.append({"tenant": e.tenant_id, "client_id": e.client_id, "credential": e.credential,
                               "secret_name": e.secret_name, "vault": VAULT})
    home = OPERATOR["tenant"]
    app = {"client_id": FEDERATION_APP, "multi_tenant": True, "consented_in": consented,
           "federated_credentials": [{"issuer": "{authority}/" + home + "/v2.0",
                                      "subject": FEDERATION_IDENTITY["object_id"]}]}
    world = {
        "seed": 6,
        "operator": {**OPERATOR, "secret": operator_secret},
        "tenants": [{"tenant_id": home, "apps": [app]}],
        "managed_identities": [{"tenant": home, **FEDERATION_IDENTITY}],
        "vaults": [{"name": VAULT}],
        "partners": [{"partner_id": PARTNER_ID, "name": "Bench Partner"}],
        "identities": identities,
    }
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.touch(mode=0o600)
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(world, fh, Dumper=dumper, default_flow_style=False, sort_keys=False)
    return len(identities) + len(consented)


def write_inventory(path: Path, url: str, entries: Sequence[Entry]) -> Path:
    """A CSV inventory (customer, tenant_id, client_id, secret_uri, credential_type) on the emulator's vault;
    federation rows name the multi-tenant app and read no vault."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer", "tenant_id", "client_id", "secret_uri", "credential_type"])
        for e in entries:
            if e.credential == "federation":
                writer.writerow([f"Customer {e.secret_name}", e.tenant_id, e.client_id, "", "mi_federation"])
            else:
                writer.writerow([f"Customer {e.secret_name}", e.tenant_id, e.client_id,
                                 f"{url}/vaults/{VAULT}/secrets/{e.secret_name}", ""])
    return path
