"""One child process measured from outside: wall clock around it, CPU and peak RSS from `os.wait4`.

Children get a clean environment (no Azure, proxy or CA variables from the developer's shell) with dead-loopback
proxies, so a request to any host but 127.0.0.1 fails on the machine instead of leaving it.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, so a stray request fails locally

#: The checkout holding `bench/`: the benchmark's own children (`python -m bench --child …`) import it from here.
ROOT = Path(__file__).resolve().parent.parent

_STRIPPED_PREFIXES = ("AZURE_", "MSI_", "IDENTITY_", "IMDS_", "PAL_")
_STRIPPED = {
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
}


class BenchError(RuntimeError):
    """The benchmark cannot go on (the emulator did not start, a step failed outright)."""


@dataclass(frozen=True, slots=True)
class Measured:
    """What one finished child process cost, measured from outside."""

    exit_code: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    #: the most the process and its descendants held at once (sampled every ~50 ms); worker processes are counted
    tree_rss_mb: float = 0.0

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for children: no Azure/proxy/CA variables from the shell, dead-loopback proxies."""
    env = {k: v for k, v in os.environ.items() if k not in _STRIPPED and not k.startswith(_STRIPPED_PREFIXES)}
    env.update({
        "HTTPS_PROXY": DEAD_PROXY, "HTTP_PROXY": DEAD_PROXY, "https_proxy": DEAD_PROXY, "http_proxy": DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1",
    })
    env.update(extra or {})
    return env


def bench_env() -> dict[str, str]:
    """`clean_env` with this checkout first on PYTHONPATH: `bench` is not installed, and cwd may be elsewhere."""
    inherited = os.environ.get("PYTHONPATH", "")
    return clean_env({"PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), inherited) if p)})


def run_measured(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
    cwd: str | None = None,
    timeout_s: float = 3600.0,
) -> Measured:
    """Run one process to the end; wall clock around it, CPU from `os.wait4` (the process and the descendants it
    reaped: worker processes included), its own peak RSS, and the peak of the sum over its process tree."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, cwd=cwd)  # noqa: S603 - our own argv
    deadline = started + timeout_s
    tree_peak_kb, hwm_kb, next_sample = 0, 0, 0.0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        now = time.perf_counter()
        if now > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        if now >= next_sample:
            tree_peak_kb, next_sample = max(tree_peak_kb, tree_rss_kb(proc.pid)), now + 0.05
            hwm_kb = max(hwm_kb, _rss_kb(proc.pid, "VmHWM:"))
        time.sleep(0.005)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    # wait4's ru_maxrss keeps the pre-exec high-water mark: the fork of this (large) driver counts as the child's
    # peak. VmHWM, the high-water mark of the child's own memory after exec, is the child's figure (Linux).
    own_mb = hwm_kb / 1024.0 if hwm_kb else usage.ru_maxrss / 1024.0
    return Measured(proc.returncode, wall, usage.ru_utime, usage.ru_stime, own_mb, max(own_mb, tree_peak_kb / 1024))


def _children(pid: int) -> list[int]:
    """Direct children of `pid` (Linux /proc/PID/task/TID/children; empty where the kernel lacks it)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        try:
            found += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except (OSError, ValueError):
            continue
    return found


def _rss_kb(pid: int, field: str = "VmRSS:") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_rss_kb(pid: int) -> int:
    """The resident memory of `pid` and every descendant now, summed (the figure a memory ceiling is about)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        total += _rss_kb(current)
        todo += _children(current)
    return total


def run_capture(
    argv: Sequence[str], *, env: dict[str, str], timeout_s: float = 600.0,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
) -> tuple[Measured, bytes]:
    """`run_measured` with stdout captured to a private temp file (the Azure CLI prints secrets we asked for)."""
    with tempfile.TemporaryFile() as out:
        m = run_measured(argv, env=env, stdout=out, stderr=stderr, timeout_s=timeout_s)
        out.seek(0)
        return m, out.read()


def check(m: Measured, what: str) -> Measured:
    """`m` itself, or BenchError when its process failed (a step that cannot be measured)."""
    if m.exit_code != 0:
        raise BenchError(f"{what} exited {m.exit_code}")
    return m
