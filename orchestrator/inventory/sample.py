"""A synthetic inventory of valid rows, and the timing hook `make bench` uses."""

from __future__ import annotations

import csv
import os
import time
import uuid
from pathlib import Path

from .loading import load_inventory


def write_sample_inventory(
    path: str | os.PathLike[str], rows: int, *, partner_id: str = "1234567", key_vault: str = "pal-bench-kv"
) -> Path:
    """Write a deterministic CSV inventory of `rows` valid identities (for `make bench` and tests)."""
    target = Path(path)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Customer", "Tenant ID", "Client ID", "Key Vault", "Secret Name", "Partner ID", "Owner"])
        for n in range(1, rows + 1):
            writer.writerow(
                [
                    f"Customer {n:06d}, Ltd",
                    str(uuid.UUID(int=(0x5A << 120) | n)),
                    str(uuid.UUID(int=(0xC1 << 120) | n)),
                    key_vault,
                    f"sp-{n:06d}",
                    partner_id,
                    f"owner{n % 17}@example.com",
                ]
            )
    return target


def benchmark(rows: int = 100_000, *, directory: str | os.PathLike[str]) -> dict[str, float]:
    """Time `load_inventory` (wall and CPU seconds) over a synthetic CSV of `rows` identities in `directory`."""
    path = write_sample_inventory(Path(directory) / f"inventory-bench-{rows}.csv", rows)
    started, cpu_started = time.perf_counter(), time.process_time()
    inventory = load_inventory(path)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "rows": float(rows),
        "identities": float(len(inventory.identities)),
        "problems": float(len(inventory.problems)),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # what the loader costs, whatever else the machine is doing
        "rows_per_second": rows / seconds if seconds else float("inf"),
    }
