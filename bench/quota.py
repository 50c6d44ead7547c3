"""A CPU quota for one measured process tree (Linux cgroups), so a scaling figure can give the emulator its own core.

On the 2-core project machine the emulator and the client share the cores: two client workers and the emulator
need more than two. To measure how throughput scales with the client's cores, each client process tree runs in a
cgroup whose CFS quota is `cores` CPUs' worth of time (0.5 per worker: 1 worker 0.5, 2 workers 1.0), and the emulator,
outside it, keeps at least one core to itself. cgroup v1 (`/sys/fs/cgroup/cpu/`) and v2 (`cpu.max`) are tried;
where neither can be written (no root, a read-only cgroupfs) the step says so instead of guessing.
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


class QuotaUnavailable(RuntimeError):
    """This machine does not let the benchmark create a CPU-limited cgroup (the message says why)."""


class CpuQuota:
    """`with CpuQuota(1.0) as q: run(q.wrap(argv))`: the process and its descendants share at most 1.0 CPU."""

    def __init__(self, cores: float, name: str | None = None) -> None:
        self.cores = cores
        self.name = name or f"pal-bench-{os.getpid()}"
        self.path: Path | None = None
        self._procs = ""

    def __enter__(self) -> CpuQuota:
        quota = max(1000, int(self.cores * _PERIOD_US))
        errors: list[str] = []
        if (_V1 / "cpu.cfs_quota_us").exists():
            try:
                path = _V1 / self.name
                path.mkdir(exist_ok=True)
                (path / "cpu.cfs_period_us").write_text(str(_PERIOD_US))
                (path / "cpu.cfs_quota_us").write_text(str(quota))
                self.path, self._procs = path, str(path / "cgroup.procs")
                return self
            except OSError as exc:
                errors.append(f"cgroup v1 {_V1}: {exc.strerror or exc}")
        if (_V2 / "cgroup.controllers").exists():
            try:
                path = _V2 / self.name
                path.mkdir(exist_ok=True)
                (path / "cpu.max").write_text(f"{quota} {_PERIOD_US}")
                self.path, self._procs = path, str(path / "cgroup.procs")
                return self
            except OSError as exc:
                errors.append(f"cgroup v2 {_V2}: {exc.strerror or exc}")
        raise QuotaUnavailable("; ".join(errors) or "no writable cgroup cpu controller on this machine")

    def wrap(self, argv: Sequence[str]) -> list[str]:
        """`argv` started inside the cgroup: a shell joins it, then execs the command (same PID, so wait4 works)."""
        if not self._procs:
            raise QuotaUnavailable("the quota is not set up (use it as a context manager)")
        sh = shutil.which("sh") or "/bin/sh"
        return [sh, "-c", 'echo $$ > "$0" && exec "$@"', self._procs, *argv]

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()  # empty once the measured processes have exited
            self.path = None
