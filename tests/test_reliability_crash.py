"""Crash safety: a real `pal-orchestrator link` process killed with SIGKILL at random moments, then resumed.

The emulator runs in-thread (20 ms latency so that a kill lands mid-run); the orchestrator is a subprocess
(`python -m orchestrator link …`). An *episode* starts a fresh run over ~30 unlinked identities and keeps
killing and `--resume`-ing it until a run completes. After each kill the journal must pass
`PRAGMA integrity_check`; after each episode every identity has exactly one final outcome (`linked`), the
episode has exactly one run in its journal, and the emulator saw exactly one write per link.
Kill moments: mostly a random 0.2–1.5 s after the process's first request reached the emulator (so the
kill lands while links are being written), and one kill in five a random 0.2–1.5 s after spawn (so some
land in start-up, the journal's creation and the Key Vault warm-up).
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_reliability_faults import PARTNER, make_world, write_rows

from orchestrator.emulator import Emulator, IdentityRecord

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"


@dataclass
class CrashStats:
    """What the crash loop did, for the assertions and docs/reliability.md."""

    kills: int = 0
    kills_mid_run: int = 0
    episodes: int = 0
    runs_started: int = 0
    resumes: int = 0
    nothing_to_resume: int = 0
    durations: list[float] = field(default_factory=list)


def _env(em: Emulator) -> dict[str, str]:
    """The subprocess environment: this (already cleaned) one plus the operator's sign-in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "PAL_"))}
    op = em.operator
    env.update(AZURE_TENANT_ID=op.tenant_id, AZURE_CLIENT_ID=op.client_id, AZURE_CLIENT_SECRET=op.secret,
               AZURE_AUTHORITY_HOST=em.authority_host, PYTHONUNBUFFERED="1")
    return env


def link_argv(em: Emulator, inventory: Path, journal: Path, reports: Path, *extra: str) -> list[str]:
    """`python -m orchestrator link …` against the emulator."""
    return [
        str(PYTHON), "-m", "orchestrator", "link", str(inventory), "--partner-id", PARTNER,
        "--cloud", "custom", "--authority-host", em.authority_host, "--arm-endpoint", em.arm_endpoint,
        "--ca-bundle", em.ca_path, "--operator-auth", "env", "--journal", str(journal),
        "--report-dir", str(reports), "--concurrency", "2", "--max-attempts", "3", *extra,
    ]


def _journal_state(journal: Path) -> tuple[int, bool]:
    """(number of runs, whether the newest run finished), read with plain sqlite3."""
    if not journal.exists():
        return 0, False
    db = sqlite3.connect(journal)
    try:
        try:
            rows = db.execute("SELECT finished_at FROM runs ORDER BY started_at").fetchall()
        except sqlite3.OperationalError:  # killed before the schema was created
            return 0, False
    finally:
        db.close()
    return len(rows), bool(rows and rows[-1][0])


def _integrity(journal: Path) -> str:
    db = sqlite3.connect(journal)
    try:
        return str(db.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        db.close()


def spawn_and_maybe_kill(
    em: Emulator, argv: list[str], env: dict[str, str], rng: random.Random, log_dir: Path, stats: CrashStats
) -> int | None:
    """Start the orchestrator; SIGKILL it at a random moment unless it finishes first. None = killed."""
    seen = len(em.requests)
    out = (log_dir / f"p{stats.runs_started + stats.resumes}.out").open("wb")
    err = (log_dir / f"p{stats.runs_started + stats.resumes}.err").open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=err)
    try:
        from_spawn = rng.random() < 0.2
        delay = rng.uniform(0.2, 1.5)
        deadline = started + delay
        if not from_spawn:
            while len(em.requests) == seen and proc.poll() is None:
                if time.monotonic() - started > 60:
                    raise AssertionError("the orchestrator sent no request within 60 s")
                time.sleep(0.005)
            deadline = time.monotonic() + delay
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            stats.kills += 1
            stats.kills_mid_run += 0 if from_spawn else 1
            return None
        return proc.returncode
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        out.close()
        err.close()
        stats.durations.append(time.monotonic() - started)


def run_episode(
    em: Emulator, records: list[IdentityRecord], inventory: Path, workdir: Path, rng: random.Random,
    stats: CrashStats, *, max_processes: int = 40,
) -> None:
    """One fresh run, killed and resumed until it completes; then check outcomes, journal and writes."""
    stats.episodes += 1
    em.world.links.clear()
    writes_before = {r.object_id: em.writes(r.tenant_id, r.object_id) for r in records}
    journal = workdir / "journal.sqlite"
    reports = workdir / "reports"
    env = _env(em)
    code: int | None = None
    for _ in range(max_processes):
        runs, finished = _journal_state(journal)
        if finished:
            break
        if runs:
            stats.resumes += 1
            argv = link_argv(em, inventory, journal, reports, "--resume")
        else:
            stats.runs_started += 1
            argv = link_argv(em, inventory, journal, reports)
        code = spawn_and_maybe_kill(em, argv, env, rng, workdir, stats)
        if journal.exists():
            assert _integrity(journal) == "ok", f"journal corrupt after a kill ({workdir})"
        if code is not None:
            assert code in (0, 1), (code, _tail(workdir))
    else:
        raise AssertionError(f"no run completed after {max_processes} processes")
    runs, finished = _journal_state(journal)
    assert runs == 1 and finished, "a resumed run must continue the same run, not start another"
    db = sqlite3.connect(journal)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT key, status, COUNT(*) FROM outcomes GROUP BY key").fetchall()
        exit_code = db.execute("SELECT exit_code FROM runs").fetchone()[0]
    finally:
        db.close()
    expected = {f"{r.tenant_id.lower()}|{r.client_id.lower()}" for r in records}
    assert {k for k, _, _ in rows} == expected, "every identity has a final outcome"
    assert all(n == 1 for _, _, n in rows)
    assert {s for _, s, _ in rows} == {"linked"}, "a link this run wrote is reported linked, even after a crash"
    assert exit_code == 0
    for r in records:
        link = em.link(r.tenant_id, r.object_id)
        assert link is not None and link.partner_id == PARTNER
        assert em.writes(r.tenant_id, r.object_id) - writes_before[r.object_id] == 1, (
            f"{r.client_id}: written {em.writes(r.tenant_id, r.object_id) - writes_before[r.object_id]} times"
        )


def _tail(workdir: Path) -> str:
    errs = sorted(workdir.glob("p*.err"), key=lambda p: p.stat().st_mtime)
    return errs[-1].read_text(errors="replace")[-2000:] if errs else ""


def crash_loop(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, *, kills: int, n: int, seed: int
) -> CrashStats:
    """Episodes until at least `kills` SIGKILLs have landed."""
    em = emulator_factory(make_world(n), latency_s=0.02)
    records = list(em.world.identities)
    inventory = write_rows(tmp_path / "inv.csv", em, records)
    rng = random.Random(seed)
    stats = CrashStats()
    while stats.kills < kills:
        workdir = tmp_path / f"episode-{stats.episodes}"
        workdir.mkdir()
        run_episode(em, records, inventory, workdir, rng, stats)
    return stats


def parallel_crash_loops(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, *, loops: int, kills: int, n: int, seed: int
) -> CrashStats:
    """`loops` independent crash loops side by side (each its own emulator and journal): start-up of the
    orchestrator (~1.5 s of imports) dominates a cycle, and two cores can pay it twice at once."""
    paths = []
    for i in range(loops):
        paths.append(tmp_path / f"loop-{i}")
        paths[-1].mkdir()
    with ThreadPoolExecutor(loops) as pool:
        futures = [pool.submit(crash_loop, emulator_factory, paths[i], kills=kills, n=n, seed=seed + i)
                   for i in range(loops)]
        results = [f.result() for f in futures]
    total = CrashStats()
    for r in results:
        total.kills += r.kills
        total.kills_mid_run += r.kills_mid_run
        total.episodes += r.episodes
        total.runs_started += r.runs_started
        total.resumes += r.resumes
        total.durations += r.durations
    return total


@pytest.mark.timeout(300)
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_9_and_resume_loses_nothing_and_writes_each_link_once(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """≥ 50 SIGKILLs of `link` at random moments, each followed by `--resume`: one outcome per identity,
    an intact journal, one run per episode, and each link written exactly once."""
    stats = parallel_crash_loops(emulator_factory, tmp_path, loops=2, kills=25, n=30, seed=20240607)
    print(f"\nFIGURES crash: kills={stats.kills} mid_run={stats.kills_mid_run} episodes={stats.episodes} "
          f"resumes={stats.resumes} processes={len(stats.durations)}")
    assert stats.kills >= 50
    assert stats.kills_mid_run >= 30


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_kill_9_and_resume_many_cycles(emulator_factory: Callable[..., Emulator], tmp_path: Path) -> None:
    """The same guarantees over 300 SIGKILLs and 60 identities."""
    stats = parallel_crash_loops(emulator_factory, tmp_path, loops=2, kills=150, n=60, seed=7)
    print(f"\nFIGURES crash slow: kills={stats.kills} mid_run={stats.kills_mid_run} episodes={stats.episodes}")
    assert stats.kills >= 300


def test_sigterm_ends_the_run_like_ctrl_c_and_resume_finishes_it(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """A cancelled CI job (SIGTERM) exits 130 with the journal intact; --resume then links the rest, once each."""
    from test_reliability_faults import make_world, write_rows

    em = emulator_factory(make_world(12), latency_s=0.2)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    argv = link_argv(em, inv, tmp_path / "journal.sqlite", tmp_path / "reports", "--no-recognition")
    proc = subprocess.Popen(argv, cwd=ROOT, env=_env(em), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(r.service == "arm" for r in em.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"--resume" in err
    assert b"Traceback" not in err and b"CancelledError" not in err, err.decode()[-3000:]
    assert _integrity(tmp_path / "journal.sqlite") == "ok"
    resumed = subprocess.run([*argv, "--resume"], cwd=ROOT, env=_env(em), capture_output=True, timeout=120,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    for record in em.world.identities:
        assert em.writes(record.tenant_id, record.object_id) == 1
