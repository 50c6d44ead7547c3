"""The measured steps against the emulator: the emulator as a child process, and `pal-orchestrator link` runs.

Each link step is one `python -m orchestrator link` process over one identity set, the way an operator runs it;
its figures come from `os.wait4` and the difference in the emulator's `/_emulator/stats` counters around it.
"""

from __future__ import annotations

import base64
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.settings import DEFAULT_CONCURRENCY

from .figures import latency_bound_s, step_figures
from .measure import BenchError, clean_env, run_measured
from .worlds import FEDERATION_IDENTITY, OPERATOR, PARTNER_ID, Plan, write_inventory

if TYPE_CHECKING:
    from orchestrator.emulator.process import EmulatorProcess as _Child

log = logging.getLogger(__name__)


class EmulatorProcess:
    """The emulator as a child process (`orchestrator.emulator.process.start_subprocess`) until `stop()`."""

    def __init__(self, world: Path, *, latency_ms: float, seed: int = 0, faults: Path | None = None) -> None:
        self.world = world
        self.latency_ms = latency_ms
        self.faults = faults
        self.seed = seed
        self.url = ""
        self.ca = ""
        self.command = "python -m orchestrator.emulator"
        self.startup_s = 0.0
        self._proc: _Child | None = None

    def start(self, timeout_s: float = 600.0) -> EmulatorProcess:
        """Spawn it and wait for its READY line (loading a 20,000-identity world takes about 20 s)."""
        from orchestrator.emulator.process import start_subprocess

        started = time.perf_counter()
        self._proc = start_subprocess(self.world, latency_ms=self.latency_ms, seed=self.seed, timeout_s=timeout_s,
                                      faults_path=self.faults)
        self.url, self.ca = self._proc.url.rstrip("/"), str(self._proc.ca_path)
        if not self.url.startswith("https://127.0.0.1:"):
            self.stop()
            raise BenchError(f"the emulator answered on {self.url}, not on 127.0.0.1")
        self.startup_s = time.perf_counter() - started
        return self

    def stats(self) -> dict[str, Any]:
        """GET /_emulator/stats (loopback, the emulator's own CA)."""
        assert self._proc is not None
        data: dict[str, Any] = self._proc.stats()
        return data

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None


def _statuses(journal: Path) -> dict[str, int]:
    """Outcome counts of the journal's last run (empty when the step wrote no journal)."""
    from orchestrator.journal import Journal

    if not journal.exists():
        return {}
    with Journal(journal) as j:
        runs = j.runs()
        return dict(j.outcome_counts(runs[-1].run_id)) if runs else {}


@dataclass(slots=True)
class Bench:
    """One benchmark session: the plan, the emulator, a work directory, the results."""

    plan: Plan
    workdir: Path
    latency_ms: float
    emulator: EmulatorProcess | None = None
    operator_secret: str = field(default_factory=lambda: base64.urlsafe_b64encode(os.urandom(24)).decode())

    @property
    def em(self) -> EmulatorProcess:
        """The started emulator (every step needs it)."""
        assert self.emulator is not None
        return self.emulator

    def orchestrator_env(self) -> dict[str, str]:
        """The orchestrator's environment: the operator signs in with `--operator-auth env` at the emulator."""
        return clean_env({
            "AZURE_TENANT_ID": OPERATOR["tenant"], "AZURE_CLIENT_ID": OPERATOR["client_id"],
            "AZURE_CLIENT_SECRET": self.operator_secret, "AZURE_AUTHORITY_HOST": self.em.url,
            # federation rows: the managed identity, IMDS style (azure-identity's own discovery)
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": self.em.url,
        })

    def link_argv(self, inventory: Path, journal: Path, reports: Path, extra: Sequence[str] = ()) -> list[str]:
        em = self.em
        return [
            sys.executable, "-m", "orchestrator", "link", str(inventory), "--partner-id", PARTNER_ID,
            "--cloud", "custom", "--authority-host", em.url, "--arm-endpoint", em.url + "/", "--ca-bundle", em.ca,
            "--operator-auth", "env", "--journal", str(journal), "--report-dir", str(reports),
            "--federation-identity", FEDERATION_IDENTITY["client_id"], *extra,
        ]

    def link_step(
        self, name: str, set_name: str, *, extra: Sequence[str] = (), journal: Path | None = None,
        concurrency: int | None = None, wrap: Sequence[str] = (), prefix: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Run `pal-orchestrator link` over one identity set; figures from wait4 and the stats delta.
        `prefix` runs the whole command under another (a CPU quota's cgroup joiner)."""
        entries = self.plan.sets[set_name]
        step_dir = self.workdir / set_name
        step_dir.mkdir(exist_ok=True)
        inventory = step_dir / "inventory.csv"
        if not inventory.exists():
            write_inventory(inventory, self.em.url, entries)
        journal = journal or step_dir / "journal.sqlite"
        options = [*extra, *(["--concurrency", str(concurrency)] if concurrency else [])]
        argv = self.link_argv(inventory, journal, step_dir / f"reports-{name}", options)
        if wrap:  # a profiler runs the module itself: `wrap` ends in "-m", so drop "python -m"
            argv = [*wrap, *argv[2:]]
        argv = [*prefix, *argv]
        load_before = os.getloadavg()[0]
        before = self.em.stats()
        with (step_dir / f"{name}.out").open("wb") as out, (step_dir / f"{name}.err").open("wb") as err:
            m = run_measured(argv, env=self.orchestrator_env(), stdout=out, stderr=err)
        after = self.em.stats()
        result = step_figures(len(entries), m, before, after)
        result.update({
            "concurrency": concurrency or DEFAULT_CONCURRENCY, "exit_code": m.exit_code, "statuses": _statuses(journal),
            "writes": after.get("writes_total", 0) - before.get("writes_total", 0),
            "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        })
        ideal = latency_bound_s(len(entries), result["requests_per_identity"], self.latency_ms,
                                concurrency or DEFAULT_CONCURRENCY)
        result["latency_bound_ideal_s"] = ideal
        result["measured_vs_ideal"] = round(m.wall_s / ideal, 2) if ideal else None
        result["ideal_share"] = round(ideal / m.wall_s, 3) if ideal and m.wall_s else None
        if m.exit_code != 0:
            log.warning("step %s: pal-orchestrator exited %s; see %s", name, m.exit_code, step_dir / f"{name}.err")
        return result

    def profile_step(self) -> dict[str, Any]:
        """The link step once more under pyinstrument (a separate identity set; figures inflated by the profiler)."""
        out = self.workdir / "profile"
        out.mkdir(exist_ok=True)
        text = out / "link-profile.txt"
        wrap = [sys.executable, "-m", "pyinstrument", "--renderer", "text", "--outfile", str(text), "-m"]
        result = self.link_step("profile", "profile", wrap=wrap)
        result["profile"] = str(text)
        return result
