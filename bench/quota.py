"""A CPU quota for one measured process tree (Linux cgroups), so a scaling figure can give the emulator its own core.

On the 2-core project machine the emulator and the client share the cores: two client workers and the emulator
need more than two. To measure how throughput scales with the client's cores, each client process tree runs in a
cgroup whose CFS quota is `cores` CPUs' worth of time (0.5 per worker: 1 worker 0.5, 2 workers 1.0), and the emulator,
outside it, keeps at least one core to itself. cgroup v1 (`/sys/fs/cgroup/cpu/`) and v2 (`cpu.max`) are tried;
where neither can be written (no root, a read-only cgroupfs) the step says so instead of guessing.

A quota is a ceiling, not a reservation: on a machine other jobs load (load 4–6 on 2 cores), a cgroup competes with
the weight of ONE ordinary process however many processes it holds, so a 3-process client tree got far less than
its 1.0 CPU while the 1-process tree got its 0.5. The cgroup's weight is therefore that of `WEIGHT_PER_CORE` busy
processes per CPU of quota (cpu.shares / cpu.weight): the tree gets close to its quota, never more. `stat()` reads
the cgroup's CPU figures (periods, throttled periods and time) so a step can show whether the quota or
the machine held the run back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

_V1 = Path("/sys/fs/cgroup/cpu")
_V2 = Path("/sys/fs/cgroup")
_PERIOD_US = 100_000
#: The cgroup's CPU weight, in ordinary processes (1024 shares each) per CPU of quota.
WEIGHT_PER_CORE = 4


class QuotaUnavailable(RuntimeError):
    """This machine does not let the benchmark create a CPU-limited cgroup (the message says why)."""


class CpuQuota:
    """`with CpuQuota(1.0) as q: run(q.wrap(argv))`: the process and its descendants share at most 1.0 CPU."""

    def __init__(self, cores: float, name: str | None = None) -> None:
        self.cores = cores
        self.name = name or f"pal-bench-{os.getpid()}"
        self.path: Path | None = None
        self._procs = ""
        self._adopted: list[int] = []

    def __enter__(self) -> CpuQuota:
        quota = max(1000, int(self.cores * _PERIOD_US))
        errors: list[str] = []
        if (_V1 / "cpu.cfs_quota_us").exists():
            try:
                path = _V1 / self.name
                path.mkdir(exist_ok=True)
                (path / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
                (path / "cpu.cfs_quota_us").write_text(str(quota))
                (path / "cpu.shares").write_text(str(self._shares()))
                self.path, self._procs = path, str(path / "cgroup.procs")
                return self
            except OSError as exc:
                errors.append(f"cgroup v1 {_V1}: {exc.strerror or exc}")
        if (_V2 / "cgroup.controllers").exists():
            try:
                path = _V2 / self.name
                path.mkdir(exist_ok=True)
                (path / "cpu.max").write_text(f"{quota} {_PERIOD_US}")
                with contextlib.suppress(OSError):  # cpu.weight 100 is one process (1024 shares); at most 10,000
                    (path / "cpu.weight").write_text(str(min(10_000, max(1, self._shares() * 100 // 1024))))
                self.path, self._procs = path, str(path / "cgroup.procs")
                return self
            except OSError as exc:
                errors.append(f"cgroup v2 {_V2}: {exc.strerror or exc}")
        raise QuotaUnavailable("; ".join(errors) or "no writable cgroup cpu controller on this machine")

    def _shares(self) -> int:
        return max(2, int(1024 * WEIGHT_PER_CORE * self.cores))

    def stat(self) -> dict[str, float]:
        """The cgroup's CPU figures so far: CFS periods, throttled periods and seconds."""
        out: dict[str, float] = {}
        if self.path is None:
            return out
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path / "cpu.stat").read_text().splitlines():
                key, value = line.split()
                out[key] = int(value)
        if "throttled_time" in out:  # v1: ns
            out["throttled_s"] = round(out.pop("throttled_time") / 1e9, 2)
        if "throttled_usec" in out:  # v2
            out["throttled_s"] = round(out.pop("throttled_usec") / 1e6, 2)
        return out

    def adopt(self, pid: int) -> None:
        """Move a running process (all its threads) into the cgroup until the end of the `with` block."""
        Path(self._procs).write_text(str(pid))
        self._adopted.append(pid)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv` started inside the cgroup: a shell joins it, then execs the command (same PID, so wait4 works)."""
        if not self._procs:
            raise QuotaUnavailable("the quota is not set up (use it as a context manager)")
        sh = shutil.which("sh") or "/bin/sh"
        return [sh, "-c", 'echo $$ > "$0" && exec "$@"', self._procs, *argv]

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.path is not None:
            for pid in self._adopted:  # back to the root cgroup, so this one can go
                with contextlib.suppress(OSError):
                    (self.path.parent / "cgroup.procs").write_text(str(pid))
            with contextlib.suppress(OSError):
                self.path.rmdir()  # empty once the measured processes have exited
            self.path = None
