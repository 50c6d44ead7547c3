"""`make bench`: throughput, client CPU and peak memory of `pal-orchestrator link` against the emulator.

Everything runs as separate processes on 127.0.0.1 only, so the figures are the ones an operator would see:
the emulator (50 ms added per request) in one process, each `pal-orchestrator` command in another, measured
from outside with `os.wait4` (wall time, user+sys CPU, peak RSS of exactly that process). Requests and the
emulator's own CPU come from its `/_emulator/stats` counters before and after each step. The seeds' way (the
Azure CLI, one process per call) runs from its own virtualenv, pointed at the emulator as a registered cloud.

Steps (see docs/performance.md): link N, re-run N, sequential 200, CPU per credential type, the concurrency
sweep, the seeds' way for 20, and the inventory/report scale checks (each in its own child process).

Every subprocess gets dead-loopback proxy variables (`http://127.0.0.1:9`, `NO_PROXY=127.0.0.1`): a client
that tried to reach any host but the emulator would fail at once instead of leaving the machine.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import csv
import datetime as dt
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from .settings import DEFAULT_CONCURRENCY

log = logging.getLogger(__name__)

PARTNER_ID = "1234567"
VAULT = "pal-bench"
KV_API_VERSION = "7.4"
PAL_API_VERSION = "2018-02-01"
DEAD_PROXY = "http://127.0.0.1:9"  # the discard port: nothing listens, so a stray request fails locally

#: The issue's credential mix, per 10 identities: 5 secrets, 3 PEM certificates, 2 PFX certificates.
MIX = ("secret",) * 5 + ("certificate-pem",) * 3 + ("certificate-pfx",) * 2
CREDENTIAL_KINDS = ("secret", "certificate-pem", "certificate-pfx")

#: Keys every step in bench.json carries (null where a figure does not apply).
STEP_KEYS = (
    "n", "wall_s", "identities_per_s", "cpu_ms_per_identity", "peak_rss_mb", "requests_per_identity",
    "emulator_cpu_s",
)

#: The issue's targets (the compass, not a test).
TARGETS = {
    "link_identities_per_s": 150.0,
    "cpu_ms_per_secret_or_pem_identity": 5.0,
    "link_vs_seeds_per_identity": 100.0,
    "scale_peak_rss_mb": 300.0,
    "inventory_100k_s": 5.0,
    "reports_100k_s": 30.0,
}

_STRIPPED_PREFIXES = ("AZURE_", "MSI_", "IDENTITY_", "IMDS_", "PAL_")
_STRIPPED = {
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "CURL_CA_BUNDLE",
}


class BenchError(RuntimeError):
    """The benchmark cannot go on (the emulator did not start, a step failed outright)."""


# -- measuring a child process ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    """What one finished child process cost, measured from outside."""

    exit_code: int
    wall_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float

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


def run_measured(
    argv: Sequence[str],
    *,
    env: dict[str, str],
    stdout: IO[Any] | int | None = subprocess.DEVNULL,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
    cwd: str | None = None,
    timeout_s: float = 3600.0,
) -> Measured:
    """Run one process to the end; wall clock around it, CPU and peak RSS from `os.wait4` (that process only)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, cwd=cwd)  # noqa: S603 - our own argv
    deadline = started + timeout_s
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.005)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4: tell Popen
    return Measured(proc.returncode, wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024.0)


def run_capture(
    argv: Sequence[str], *, env: dict[str, str], timeout_s: float = 600.0,
    stderr: IO[Any] | int | None = subprocess.DEVNULL,
) -> tuple[Measured, bytes]:
    """`run_measured` with stdout captured to a private temp file (the Azure CLI prints secrets we asked for)."""
    with tempfile.TemporaryFile() as out:
        m = run_measured(argv, env=env, stdout=out, stderr=stderr, timeout_s=timeout_s)
        out.seek(0)
        return m, out.read()


# -- the world and the inventories ---------------------------------------------------------------------------


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
        Entry(_guid(prefix, i, 0xA), _guid(prefix, i, 0xC), kinds[i % len(kinds)], f"{name}-{i:06d}")
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
    sets: dict[str, list[Entry]] = field(default_factory=dict)

    def build(self) -> None:
        self.sets["link"] = identity_set("main", 0x10, self.n)
        self.sets["baseline"] = identity_set("base", 0x20, 1, ("secret",))
        for j, kind in enumerate(CREDENTIAL_KINDS):
            self.sets[f"split-{kind}"] = identity_set(f"split{j}", 0x21 + j, self.split_n, (kind,))
        self.sets["sequential"] = identity_set("seq", 0x30, self.sequential_n)
        self.sets["seeds"] = identity_set("seeds", 0x40, self.seeds_n)
        for j, c in enumerate(self.sweep):
            self.sets[f"sweep-{c}"] = identity_set(f"sweep{j}", 0x50 + j, self.sweep_n)
        if self.profile_n:
            self.sets["profile"] = identity_set("prof", 0x60, self.profile_n)

    def all_entries(self) -> Iterator[Entry]:
        for entries in self.sets.values():
            yield from entries


OPERATOR = {"tenant": "0e0e0e0e-0000-4000-8000-0000000000b1", "client_id": "0e0e0e0e-0000-4000-8000-0000000000c1"}


def write_world(path: Path, entries: Iterator[Entry], operator_secret: str) -> int:
    """The world YAML the emulator subprocess loads: operator, one vault, the partner, every identity."""
    identities = [
        {"tenant": e.tenant_id, "client_id": e.client_id, "credential": e.credential, "secret_name": e.secret_name,
         "vault": VAULT}
        for e in entries
    ]
    world = {
        "seed": 6,
        "operator": {**OPERATOR, "secret": operator_secret},
        "vaults": [{"name": VAULT}],
        "partners": [{"partner_id": PARTNER_ID, "name": "Bench Partner"}],
        "identities": identities,
    }
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.touch(mode=0o600)
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(world, fh, Dumper=dumper, default_flow_style=False, sort_keys=False)
    return len(identities)


def write_inventory(path: Path, url: str, entries: Sequence[Entry]) -> Path:
    """A CSV inventory (customer, tenant_id, client_id, secret_uri) on the emulator's vault."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer", "tenant_id", "client_id", "secret_uri"])
        for e in entries:
            writer.writerow([f"Customer {e.secret_name}", e.tenant_id, e.client_id,
                             f"{url}/vaults/{VAULT}/secrets/{e.secret_name}"])
    return path


# -- the emulator subprocess -------------------------------------------------------------------------------


class EmulatorProcess:
    """The emulator as a child process (`orchestrator.emulator.process.start_subprocess`) until `stop()`."""

    def __init__(self, world: Path, *, latency_ms: float, seed: int = 0) -> None:
        self.world = world
        self.latency_ms = latency_ms
        self.seed = seed
        self.url = ""
        self.ca = ""
        self.command = "python -m orchestrator.emulator"
        self.startup_s = 0.0
        self._proc: Any = None

    def start(self, timeout_s: float = 600.0) -> EmulatorProcess:
        """Spawn it and wait for its READY line (loading a 20,000-identity world takes about 20 s)."""
        from .emulator.process import start_subprocess

        started = time.perf_counter()
        self._proc = start_subprocess(self.world, latency_ms=self.latency_ms, seed=self.seed, timeout_s=timeout_s)
        self.url, self.ca = self._proc.url.rstrip("/"), str(self._proc.ca_path)
        if not self.url.startswith("https://127.0.0.1:"):
            self.stop()
            raise BenchError(f"the emulator answered on {self.url}, not on 127.0.0.1")
        self.startup_s = time.perf_counter() - started
        return self

    def stats(self) -> dict[str, Any]:
        """GET /_emulator/stats (loopback, the emulator's own CA)."""
        data: dict[str, Any] = self._proc.stats()
        return data

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()
            self._proc = None


# -- steps against the emulator ------------------------------------------------------------------------------


@dataclass(slots=True)
class Bench:
    """One benchmark session: the plan, the emulator, a work directory, the results."""

    plan: Plan
    workdir: Path
    latency_ms: float
    emulator: EmulatorProcess | None = None
    operator_secret: str = field(default_factory=lambda: base64.urlsafe_b64encode(os.urandom(24)).decode())
    az_log: IO[bytes] | None = None

    # the orchestrator as a separate process
    def orchestrator_env(self) -> dict[str, str]:
        assert self.emulator is not None
        return clean_env({
            "AZURE_TENANT_ID": OPERATOR["tenant"], "AZURE_CLIENT_ID": OPERATOR["client_id"],
            "AZURE_CLIENT_SECRET": self.operator_secret, "AZURE_AUTHORITY_HOST": self.emulator.url,
        })

    def link_argv(self, inventory: Path, journal: Path, reports: Path, extra: Sequence[str] = ()) -> list[str]:
        assert self.emulator is not None
        em = self.emulator
        return [
            sys.executable, "-m", "orchestrator", "link", str(inventory), "--partner-id", PARTNER_ID,
            "--cloud", "custom", "--authority-host", em.url, "--arm-endpoint", em.url + "/", "--ca-bundle", em.ca,
            "--operator-auth", "env", "--journal", str(journal), "--report-dir", str(reports), *extra,
        ]

    def link_step(
        self, name: str, set_name: str, *, extra: Sequence[str] = (), journal: Path | None = None,
        concurrency: int | None = None, wrap: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Run `pal-orchestrator link` over one identity set; figures from wait4 and the stats delta."""
        assert self.emulator is not None
        entries = self.plan.sets[set_name]
        step_dir = self.workdir / set_name
        step_dir.mkdir(exist_ok=True)
        inventory = step_dir / "inventory.csv"
        if not inventory.exists():
            write_inventory(inventory, self.emulator.url, entries)
        journal = journal or step_dir / "journal.sqlite"
        options = [*extra, *(["--concurrency", str(concurrency)] if concurrency else [])]
        argv = self.link_argv(inventory, journal, step_dir / f"reports-{name}", options)
        if wrap:  # a profiler runs the module itself: `wrap` ends in "-m", so drop "python -m"
            argv = [*wrap, *argv[2:]]
        load_before = os.getloadavg()[0]
        before = self.emulator.stats()
        with (step_dir / f"{name}.out").open("wb") as out, (step_dir / f"{name}.err").open("wb") as err:
            m = run_measured(argv, env=self.orchestrator_env(), stdout=out, stderr=err)
        after = self.emulator.stats()
        statuses = _statuses(journal)
        result = step_figures(len(entries), m, before, after)
        result.update({
            "concurrency": concurrency or DEFAULT_CONCURRENCY, "exit_code": m.exit_code, "statuses": statuses,
            "writes": after.get("writes_total", 0) - before.get("writes_total", 0),
            "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        })
        ideal = latency_bound_s(len(entries), result["requests_per_identity"], self.latency_ms,
                                concurrency or DEFAULT_CONCURRENCY)
        result["latency_bound_ideal_s"] = ideal
        result["measured_vs_ideal"] = round(m.wall_s / ideal, 2) if ideal else None
        if m.exit_code != 0:
            log.warning("step %s: pal-orchestrator exited %s; see %s", name, m.exit_code, step_dir / f"{name}.err")
        return result

    # the seeds' way
    def seeds_step(self, az: Path) -> dict[str, Any]:
        """Per identity, as the guides do: read the secret, `az login --service-principal`, `az rest --method put`."""
        assert self.emulator is not None
        em = self.emulator
        entries = self.plan.sets["seeds"]
        work = self.workdir / "seeds"
        work.mkdir(exist_ok=True, mode=0o700)
        with tempfile.TemporaryDirectory(prefix="pal-bench-az-") as tmp:
            cfg_op, cfg_id, keys = Path(tmp) / "operator", Path(tmp) / "identity", Path(tmp) / "keys"
            keys.mkdir(mode=0o700)
            common = {
                "AZURE_CORE_COLLECT_TELEMETRY": "false", "AZURE_CORE_INSTANCE_DISCOVERY": "false",
                "AZURE_CORE_ONLY_SHOW_ERRORS": "true", "AZURE_CORE_SURVEY_MESSAGE": "false",
                "AZURE_CORE_NO_COLOR": "true", "AZURE_CORE_DISABLE_CONFIRM_PROMPT": "true",
                "AZURE_EXTENSION_USE_DYNAMIC_INSTALL": "no", "REQUESTS_CA_BUNDLE": em.ca,
            }
            self.az_log = (work / "az-stderr.log").open("ab")
            env_op = clean_env({**common, "AZURE_CONFIG_DIR": str(cfg_op)})
            env_id = clean_env({**common, "AZURE_CONFIG_DIR": str(cfg_id)})
            setup_started = time.perf_counter()
            for env in (env_op, env_id):
                for argv in (
                    [str(az), "cloud", "register", "-n", "PalEmulator", "--skip-endpoint-discovery",
                     "--endpoint-active-directory", em.url, "--endpoint-resource-manager", em.url + "/",
                     "--endpoint-active-directory-resource-id", em.url + "/", "--endpoint-management", em.url + "/",
                     "--endpoint-active-directory-graph-resource-id", em.url + "/",
                     "--suffix-keyvault-dns", ".vault.azure.net"],
                    [str(az), "cloud", "set", "-n", "PalEmulator"],
                ):
                    _check(run_measured(argv, env=env), "az cloud register/set")
            _check(run_measured(
                [str(az), "login", "--service-principal", "-u", OPERATOR["client_id"],
                 f"--password={self.operator_secret}", "--tenant", OPERATOR["tenant"], "--allow-no-subscriptions",
                 "-o", "none"], env=env_op), "az login (operator)")
            setup_s = time.perf_counter() - setup_started
            before = em.stats()
            costs: list[Measured] = []
            started = time.perf_counter()
            failures = 0
            for e in entries:
                try:
                    costs.extend(self._seed_one(az, e, env_op, env_id, keys))
                except BenchError as exc:
                    failures += 1
                    log.warning("seeds' way, %s: %s", e.secret_name, exc)
            wall = time.perf_counter() - started
            after = em.stats()
            self.az_log.close()
        total = Measured(0 if not failures else 1, wall, sum(c.user_s for c in costs), sum(c.sys_s for c in costs),
                         max((c.peak_rss_mb for c in costs), default=0.0))
        result = step_figures(len(entries), total, before, after)
        result.update({
            "processes": len(costs), "processes_per_identity": round(len(costs) / max(len(entries), 1), 2),
            "failures": failures, "setup_s": round(setup_s, 2), "concurrency": 1,
            "writes": after.get("writes_total", 0) - before.get("writes_total", 0),
            "how": "az rest GET on the secret (operator; `az keyvault secret show --id` rejects a non-Azure vault "
                   "host), openssl pkcs12 for PFX, az login --service-principal, az rest --method put",
        })
        return result

    def _seed_one(self, az: Path, e: Entry, env_op: dict[str, str], env_id: dict[str, str],
                  keys: Path) -> list[Measured]:
        assert self.emulator is not None
        url = self.emulator.url
        costs: list[Measured] = []
        m, out = run_capture(
            [str(az), "rest", "--method", "get", "--url",
             f"{url}/vaults/{VAULT}/secrets/{e.secret_name}?api-version={KV_API_VERSION}",
             "--resource", "https://vault.azure.net", "--query", "{t:contentType,v:value}", "-o", "json"],
            env=env_op, stderr=self.az_log,
        )
        costs.append(_check(m, "az rest GET secret"))
        secret = json.loads(out)
        login = [str(az), "login", "--service-principal", "-u", e.client_id, "--tenant", e.tenant_id,
                 "--allow-no-subscriptions", "-o", "none"]
        pem = keys / f"{e.secret_name}.pem"
        try:
            if e.credential == "secret":
                login.append(f"--password={secret['v']}")
            else:
                pem.touch(mode=0o600)
                if e.credential == "certificate-pem":
                    pem.write_text(secret["v"], encoding="ascii")
                else:
                    pfx = keys / f"{e.secret_name}.pfx"
                    pfx.touch(mode=0o600)
                    pfx.write_bytes(base64.b64decode(secret["v"]))
                    openssl = shutil.which("openssl")
                    if openssl is None:
                        raise BenchError("openssl is not installed (the guides convert PFX with it)")
                    costs.append(_check(run_measured(
                        [openssl, "pkcs12", "-in", str(pfx), "-out", str(pem), "-nodes", "-passin", "pass:"],
                        env=env_id, stderr=self.az_log), "openssl pkcs12"))
                    pfx.unlink()
                login += ["--certificate", str(pem)]
            del secret
            costs.append(_check(run_measured(login, env=env_id, stderr=self.az_log), "az login (identity)"))
            # az keeps the certificate's *path* and reads it again for the token: remove it only afterwards
            costs.append(_check(run_measured(
                [str(az), "rest", "--method", "put", "--url",
                 f"{url}/providers/Microsoft.ManagementPartner/partners/{PARTNER_ID}?api-version={PAL_API_VERSION}",
                 "-o", "none"], env=env_id, stderr=self.az_log), "az rest PUT"))
        finally:
            pem.unlink(missing_ok=True)
        return costs


def _check(m: Measured, what: str) -> Measured:
    if m.exit_code != 0:
        raise BenchError(f"{what} exited {m.exit_code}")
    return m


def _statuses(journal: Path) -> dict[str, int]:
    from .journal import Journal

    if not journal.exists():
        return {}
    with Journal(journal) as j:
        runs = j.runs()
        return dict(j.outcome_counts(runs[-1].run_id)) if runs else {}


def step_figures(n: int, m: Measured, before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """The common figures of a step (every key of STEP_KEYS, plus the raw CPU split)."""
    requests = None
    emulator_cpu = None
    if before is not None and after is not None:
        requests = int(after["requests"]) - int(before["requests"])
        emulator_cpu = round(float(after["cpu_s"]) - float(before["cpu_s"]), 2)
    return {
        "n": n,
        "wall_s": round(m.wall_s, 3),
        "identities_per_s": round(n / m.wall_s, 2) if m.wall_s else None,
        "cpu_ms_per_identity": round(m.cpu_s * 1000 / n, 2) if n else None,
        "peak_rss_mb": round(m.peak_rss_mb, 1),
        "requests_per_identity": round(requests / n, 2) if requests is not None and n else None,
        "emulator_cpu_s": emulator_cpu,
        "requests": requests,
        # What one core could do if this process had it to itself (the event loop is single-threaded):
        # a figure that a busy machine does not distort, unlike identities_per_s.
        "cpu_bound_identities_per_s": round(n / m.cpu_s, 1) if m.cpu_s else None,
        "user_cpu_s": round(m.user_s, 2),
        "sys_cpu_s": round(m.sys_s, 2),
    }


def latency_bound_s(n: int, requests_per_identity: float | None, latency_ms: float, concurrency: int) -> float | None:
    """The ideal when only latency bounds the run: requests per identity × latency ÷ concurrency, × N."""
    if not requests_per_identity:
        return None
    return round(n * requests_per_identity * latency_ms / 1000.0 / concurrency, 2)


# -- the Azure CLI for the seeds' way -----------------------------------------------------------------------


def ensure_azure_cli(venv: Path) -> tuple[Path | None, str]:
    """`az` from PyPI in its own virtualenv (created on first use); (None, why) when it cannot be installed."""
    az = venv / "bin" / "az"
    if az.exists():
        return az, "present"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)  # noqa: S603
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=600)  # noqa: S603
        subprocess.run([*pip, "azure-cli"], check=True, timeout=1800)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"the Azure CLI could not be installed into {venv}: {type(exc).__name__}: {exc}"
    return (az, "installed") if az.exists() else (None, f"pip install azure-cli left no {az}")


# -- scale checks in child processes -------------------------------------------------------------------------


def _child_inventory(args: argparse.Namespace) -> int:
    from .inventory import load_inventory

    started = time.perf_counter()
    inv = load_inventory(args.path)
    seconds = time.perf_counter() - started
    json.dump({"seconds": seconds, "identities": len(inv.identities), "problems": len(inv.problems)}, sys.stdout)
    return 0


def _child_report_build(args: argparse.Namespace) -> int:
    from .journal import Journal
    from .report import synthetic_run

    with Journal(args.path) as journal:
        run_id = synthetic_run(journal, args.rows)
    json.dump({"run_id": run_id}, sys.stdout)
    return 0


def _child_report_render(args: argparse.Namespace) -> int:
    from .journal import Journal
    from .report import write_reports

    with Journal(args.path) as journal:
        run_id = journal.runs()[-1].run_id
        started = time.perf_counter()
        write_reports(journal, run_id, Path(args.workdir), now=dt.datetime(2025, 1, 2, tzinfo=dt.UTC))
        seconds = time.perf_counter() - started
    json.dump({"seconds": seconds}, sys.stdout)
    return 0


def _child(kind: str, *options: str) -> tuple[Measured, dict[str, Any]]:
    m, out = run_capture([sys.executable, "-m", "orchestrator.bench", "--child", kind, *options],
                         env=clean_env(), timeout_s=1800)
    if m.exit_code != 0:
        raise BenchError(f"child {kind} exited {m.exit_code}")
    data: dict[str, Any] = json.loads(out)
    return m, data


def scale_steps(rows: int, workdir: Path) -> dict[str, Any]:
    """Validate a `rows`-row inventory; render reports for a `rows`-identity journal (time and peak RSS)."""
    from .inventory import write_sample_inventory

    work = workdir / "scale"
    work.mkdir(exist_ok=True, mode=0o700)
    inventory = write_sample_inventory(work / f"inventory-{rows}.csv", rows)
    m, data = _child("inventory-scale", "--path", str(inventory))
    inv = {**step_figures(rows, m, None, None), "load_s": round(data["seconds"], 3),
           "identities": data["identities"], "problems": data["problems"]}
    journal = work / "journal.sqlite"
    mb, _ = _child("report-build", "--path", str(journal), "--rows", str(rows))
    mr, data = _child("report-render", "--path", str(journal), "--workdir", str(work / "reports"))
    rep = {**step_figures(rows, mr, None, None), "render_s": round(data["seconds"], 3),
           "journal_build_s": round(mb.wall_s, 2), "journal_build_peak_rss_mb": round(mb.peak_rss_mb, 1)}
    return {"inventory_scale": inv, "report_scale": rep}


# -- the whole run ---------------------------------------------------------------------------------------------


def recommend(sweep: dict[str, dict[str, Any]]) -> tuple[int | None, str]:
    """The smallest concurrency within 5 % of the best throughput (fewer sockets and tokens in flight)."""
    rated = {int(c): s["identities_per_s"] for c, s in sweep.items() if s.get("identities_per_s")}
    if not rated:
        return None, "no sweep figures"
    best = max(rated.values())
    pick = min(c for c, r in rated.items() if r >= 0.95 * best)
    return pick, f"smallest concurrency within 5 % of the best sweep throughput ({best:.0f} identities/s)"


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every step in order; returns the bench.json document."""
    plan = Plan(
        n=args.n, sequential_n=args.sequential_n, split_n=args.split_n, seeds_n=args.seeds_n,
        sweep_n=args.sweep_n, sweep=tuple(args.sweep), scale_rows=args.scale_rows,
        profile_n=args.profile_n if args.profile else 0,
    )
    plan.build()
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="pal-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o700)
    bench = Bench(plan, workdir, args.latency_ms)
    doc: dict[str, Any] = {
        "meta": {
            "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "latency_ms": args.latency_ms, "default_concurrency": DEFAULT_CONCURRENCY,
            "credential_mix": {"secret": 0.5, "certificate-pem": 0.3, "certificate-pfx": 0.2},
            "workdir": str(workdir),
        },
        "steps": {},
    }
    steps: dict[str, Any] = doc["steps"]
    t = time.perf_counter()
    world_path = workdir / "world.yaml"
    doc["meta"]["world_identities"] = write_world(world_path, plan.all_entries(), bench.operator_secret)
    doc["meta"]["world_write_s"] = round(time.perf_counter() - t, 2)
    _say(f"world: {doc['meta']['world_identities']} identities written; starting the emulator")
    bench.emulator = EmulatorProcess(world_path, latency_ms=args.latency_ms)
    try:
        bench.emulator.start()
        doc["meta"]["emulator"] = bench.emulator.command
        doc["meta"]["emulator_startup_s"] = round(bench.emulator.startup_s, 2)
        _say(f"emulator ready in {bench.emulator.startup_s:.1f}s at {bench.emulator.url}")
        main_journal = workdir / "link" / "journal.sqlite"
        steps["link"] = _step("link", lambda: bench.link_step("link", "link", journal=main_journal))
        steps["rerun"] = _step("rerun", lambda: bench.link_step("rerun", "link", journal=main_journal))
        steps["sequential"] = _step("sequential", lambda: bench.link_step("sequential", "sequential",
                                                                          concurrency=1))
        by_kind: dict[str, Any] = {"baseline": _step("cpu baseline (1 identity)",
                                                     lambda: bench.link_step("baseline", "baseline"))}
        for kind in CREDENTIAL_KINDS:
            by_kind[kind] = _step(f"cpu {kind}", lambda kind=kind: bench.link_step(kind, f"split-{kind}"))
        for kind in CREDENTIAL_KINDS:
            base = by_kind["baseline"]
            k = by_kind[kind]
            fixed_cpu = base["user_cpu_s"] + base["sys_cpu_s"]
            k["fixed_cpu_s"] = round(fixed_cpu, 2)
            k["marginal_cpu_ms_per_identity"] = round(
                (k["user_cpu_s"] + k["sys_cpu_s"] - fixed_cpu) * 1000 / max(k["n"] - 1, 1), 2)
        steps["cpu_by_credential"] = by_kind
        sweep: dict[str, Any] = {}
        for c in plan.sweep:
            sweep[str(c)] = _step(f"sweep c={c}", lambda c=c: bench.link_step(f"sweep-{c}", f"sweep-{c}",
                                                                              concurrency=c))
        steps["concurrency_sweep"] = sweep
        if args.profile:
            steps["profile"] = _step("profile", lambda: _profile(bench, workdir))
        if args.no_seeds or plan.seeds_n == 0:
            steps["seeds_way"] = _skipped(plan.seeds_n, "skipped (--no-seeds)")
        else:
            az, why = ensure_azure_cli(Path(args.azcli_venv))
            if az is None:
                steps["seeds_way"] = _skipped(plan.seeds_n, why)
            else:
                try:
                    steps["seeds_way"] = _step("seeds' way", lambda: bench.seeds_step(az))
                except BenchError as exc:  # the Azure CLI would not set up: say so, keep the other figures
                    steps["seeds_way"] = _skipped(plan.seeds_n, f"the Azure CLI failed: {exc}")
    finally:
        bench.emulator.stop()
    steps.update(_step("scale", lambda: scale_steps(plan.scale_rows, workdir)))
    doc["ratios"] = ratios(steps, args.latency_ms)
    pick, why = recommend(steps["concurrency_sweep"])
    doc["recommended_concurrency"] = {"value": pick, "why": why}
    doc["targets"] = targets(steps, doc["ratios"])
    doc["meta"]["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return doc


def _profile(bench: Bench, workdir: Path) -> dict[str, Any]:
    """The link step once more under pyinstrument (a separate identity set; figures inflated by the profiler)."""
    out = workdir / "profile"
    out.mkdir(exist_ok=True)
    text = out / "link-profile.txt"
    wrap = [sys.executable, "-m", "pyinstrument", "--renderer", "text", "--outfile", str(text), "-m"]
    result = bench.link_step("profile", "profile", wrap=wrap)
    result["profile"] = str(text)
    return result


def _skipped(n: int, why: str) -> dict[str, Any]:
    return {**{k: None for k in STEP_KEYS}, "n": n, "skipped": True, "why": why}


def _step(label: str, fn: Any) -> Any:
    _say(f"step: {label} …")
    started = time.perf_counter()
    result = fn()
    _say(f"step: {label} done in {time.perf_counter() - started:.1f}s")
    return result


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 1) if a and b else None


def ratios(steps: dict[str, Any], latency_ms: float) -> dict[str, Any]:
    """Link throughput against the seeds' way and the sequential baseline; the latency-bound ideal."""
    link, seq, seeds = steps["link"], steps["sequential"], steps.get("seeds_way", {})
    return {
        "link_vs_seeds_throughput": _ratio(link.get("identities_per_s"), seeds.get("identities_per_s")),
        "seeds_vs_link_cpu_per_identity": _ratio(seeds.get("cpu_ms_per_identity"), link.get("cpu_ms_per_identity")),
        "link_vs_sequential_throughput": _ratio(link.get("identities_per_s"), seq.get("identities_per_s")),
        "latency_bound_ideal_s": link.get("latency_bound_ideal_s"),
        "link_measured_s": link.get("wall_s"),
        "measured_vs_ideal": link.get("measured_vs_ideal"),
        "latency_ms": latency_ms,
        "concurrency": link.get("concurrency"),
    }


def targets(steps: dict[str, Any], r: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the measured figure and whether it is met (None: not measured)."""
    by_kind = steps.get("cpu_by_credential", {})
    cpu = [by_kind[k].get("marginal_cpu_ms_per_identity") for k in ("secret", "certificate-pem") if k in by_kind]
    inv, rep = steps.get("inventory_scale", {}), steps.get("report_scale", {})
    rows: list[tuple[str, float, float | None, bool]] = [
        ("link_identities_per_s", TARGETS["link_identities_per_s"], steps["link"].get("identities_per_s"), True),
        ("cpu_ms_per_secret_or_pem_identity", TARGETS["cpu_ms_per_secret_or_pem_identity"],
         max(cpu) if cpu and None not in cpu else None, False),
        ("link_vs_seeds_per_identity", TARGETS["link_vs_seeds_per_identity"], r.get("link_vs_seeds_throughput"),
         True),
        ("scale_peak_rss_mb", TARGETS["scale_peak_rss_mb"],
         max(inv.get("peak_rss_mb") or 0, rep.get("peak_rss_mb") or 0) or None, False),
        ("inventory_100k_s", TARGETS["inventory_100k_s"], inv.get("load_s"), False),
        ("reports_100k_s", TARGETS["reports_100k_s"], rep.get("render_s"), False),
    ]
    return [
        {"target": name, "goal": goal, "measured": got,
         "met": None if got is None else (got >= goal if higher else got <= goal),
         "rule": "≥" if higher else "≤"}
        for name, goal, got, higher in rows
    ]


# -- output ---------------------------------------------------------------------------------------------------


def _say(text: str) -> None:
    sys.stderr.write(f"[bench] {text}\n")
    sys.stderr.flush()


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def render_table(doc: dict[str, Any]) -> None:
    """The figures as rich tables on stdout (the CLI's output; the library functions above print nothing)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
    table = Table(title=f"pal-orchestrator bench — {doc['meta']['latency_ms']:.0f} ms per request")
    for col in ("step", "N", "wall s", "id/s", "CPU ms/id", "peak RSS MB", "req/id", "emulator CPU s",
                "CPU-bound id/s", "load 1m"):
        table.add_column(col, justify="left" if col == "step" else "right")
    steps = doc["steps"]
    rows: list[tuple[str, dict[str, Any]]] = [
        (f"link (c={steps['link'].get('concurrency')})", steps["link"]),
        ("re-run (read-only)", steps["rerun"]),
        ("sequential (c=1)", steps["sequential"]),
    ]
    rows += [(f"cpu: {k}", v) for k, v in steps["cpu_by_credential"].items()]
    rows += [(f"sweep c={c}", v) for c, v in steps["concurrency_sweep"].items()]
    if "profile" in steps:
        rows.append(("profiled link", steps["profile"]))
    rows += [("seeds' way (az)", steps["seeds_way"]), ("inventory 100k", steps["inventory_scale"]),
             ("reports 100k", steps["report_scale"])]
    for label, s in rows:
        load = s.get("loadavg_1m")
        table.add_row(label, *(_fmt(s.get(k)) for k in STEP_KEYS), _fmt(s.get("cpu_bound_identities_per_s")),
                      "→".join(f"{x:.1f}" for x in load) if load else "—")
    console.print(table)
    if steps["seeds_way"].get("skipped"):
        console.print(f"seeds' way: {steps['seeds_way']['why']}")
    r = doc["ratios"]
    console.print(
        f"link ÷ seeds' way: {_fmt(r['link_vs_seeds_throughput'])}×  ·  link ÷ sequential: "
        f"{_fmt(r['link_vs_sequential_throughput'])}×  ·  latency-bound ideal {_fmt(r['latency_bound_ideal_s'])} s "
        f"vs measured {_fmt(r['link_measured_s'])} s"
    )
    marginal = {k: v.get("marginal_cpu_ms_per_identity") for k, v in steps["cpu_by_credential"].items()
                if k != "baseline"}
    console.print("marginal client CPU ms per identity: " + ", ".join(f"{k} {_fmt(v)}" for k, v in marginal.items()))
    rec = doc["recommended_concurrency"]
    console.print(f"recommended --concurrency: {rec['value']} ({rec['why']})")
    t = Table(title="targets")
    for col in ("target", "goal", "measured", "met"):
        t.add_column(col)
    for row in doc["targets"]:
        met = {True: "yes", False: "NO", None: "—"}[row["met"]]
        t.add_row(row["target"], f"{row['rule']} {_fmt(row['goal'])}", _fmt(row["measured"]), met)
    console.print(t)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m orchestrator.bench", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=10_000, help="identities in the main link step")
    p.add_argument("--out", default="reports/bench.json", help="where bench.json goes")
    p.add_argument("--latency-ms", type=float, default=50.0, help="latency the emulator adds to each request")
    p.add_argument("--sequential-n", type=int, default=200)
    p.add_argument("--split-n", type=int, default=300, help="identities per credential-type batch")
    p.add_argument("--seeds-n", type=int, default=20)
    p.add_argument("--sweep-n", type=int, default=2000)
    p.add_argument("--sweep", type=lambda s: [int(x) for x in s.split(",") if x], default=[16, 32, 64, 128],
                   help="concurrency values, comma-separated")
    p.add_argument("--scale-rows", type=int, default=100_000)
    p.add_argument("--no-seeds", action="store_true", help="skip the Azure CLI comparison")
    p.add_argument("--azcli-venv", default=".venv-azcli", help="virtualenv for the Azure CLI (created on first use)")
    p.add_argument("--profile", action="store_true", help="also run a link under pyinstrument (dev extra)")
    p.add_argument("--profile-n", type=int, default=2000)
    p.add_argument("--workdir", default=None, help="work directory (default: a new temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the work directory (journals, logs, profile)")
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    # internal: the child processes of the scale checks
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--path", default=None, help=argparse.SUPPRESS)
    p.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    return p


_CHILDREN = {
    "inventory-scale": _child_inventory,
    "report-build": _child_report_build,
    "report-render": _child_report_render,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        return _CHILDREN[args.child](args)
    if args.n < 1:
        raise SystemExit("--n must be at least 1")
    doc = run(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if not args.quiet:
        render_table(doc)
    _say(f"wrote {out}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
