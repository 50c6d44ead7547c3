"""The workers step: the same link with `--workers 1` and `--workers 2`, side by side in one bench run.

Two ways, each on its own identity sets (every run starts from unlinked tenants), 1 and 2 workers back to back:

- `shared`: as an operator runs it here: the client's processes and the emulator share the machine's cores;
- `quota`: each client process tree gets `per_worker_cores` CPUs per worker (a cgroup CPU quota, bench/quota.py),
  and the emulator, moved into a cgroup of its own for the run, one CPU: the scaling of the client alone, which
  the issue asks for ("when the emulator runs elsewhere or is given its own core"). Both cgroups carry the weight
  of several processes (quota.py), so on a machine other jobs load they get close to their CPUs; without that, a
  cgroup competes as one process, and the emulator, one process among the machine's load, held the 2-worker run
  to ~80 % of its quota.

Each quota run also records its cgroup's `cpu.stat` (`cgroup`: CFS periods, throttled periods and seconds): few
throttled periods with CPU left unused mean something besides the quota held the run back (the machine's other
load, the emulator, latency). The ratio is identities/s with 2 workers ÷ with 1 worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .figures import skipped
from .quota import CpuQuota, QuotaUnavailable
from .steps import Bench
from .worlds import WORKER_COUNTS, WORKER_MODES


def _ratio(runs: dict[str, dict[str, Any]]) -> float | None:
    one, two = runs.get("1", {}).get("identities_per_s"), runs.get("2", {}).get("identities_per_s")
    return round(two / one, 2) if one and two else None


def workers_steps(
    bench: Bench, *, concurrency: int, per_worker_cores: float = 0.5, say: Callable[[str], None] = lambda t: None,
) -> dict[str, Any]:
    """Both modes; `quota` is skipped (with the reason) where no CPU-limited cgroup can be made."""
    out: dict[str, Any] = {"concurrency": concurrency, "per_worker_cores": per_worker_cores}
    for mode in WORKER_MODES:
        runs: dict[str, dict[str, Any]] = {}
        for w in WORKER_COUNTS:
            name = f"workers-{mode}-{w}"
            say(f"workers: {mode}, --workers {w}")
            extra = ["--workers", str(w)]
            if mode == "shared":
                runs[str(w)] = bench.link_step(name, name, extra=extra, concurrency=concurrency)
                continue
            try:
                with CpuQuota(per_worker_cores * w, name=f"pal-bench-{name}") as quota, \
                        CpuQuota(1.0, name=f"pal-bench-{name}-emulator") as emulator_core:
                    emulator_core.adopt(bench.em._proc.pid)  # type: ignore[union-attr]
                    runs[str(w)] = bench.link_step(name, name, extra=extra, concurrency=concurrency,
                                                   prefix=quota.wrap([]))
                    runs[str(w)]["cgroup"] = quota.stat()
                    runs[str(w)]["emulator_cgroup"] = emulator_core.stat()
            except QuotaUnavailable as exc:
                runs[str(w)] = skipped(len(bench.plan.sets[name]), f"no CPU quota here: {exc}")
            runs[str(w)]["cpu_quota_cores"] = per_worker_cores * w
        out[mode] = runs
        out[f"{mode}_ratio_2_vs_1"] = _ratio(runs)
    return out
