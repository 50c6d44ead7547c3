"""`--workers N`: identities shared among worker processes, every cross-identity decision kept in the parent.

The runs go through `execute` (the parent in the test process, real worker processes) or through a real
`python -m orchestrator` process, against the in-thread emulator over HTTPS. No `sleep` is injected: it cannot
cross to a worker process, so the Retry-After test waits its one real second.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_link import EXPECTED_LINK, Cli, by_name, cli, write_inventory
from test_reliability_crash import ROOT, _env, link_argv
from test_reliability_faults import PARTNER, make_world, operator_env, options, outcomes, write_rows
from test_reliability_secrets import assert_no_leak, canary_emulator, files_under, secret_needles, token_needles

from orchestrator.emulator import Emulator, World
from orchestrator.errors import OperatorAuthError, UsageError, WorkerDiedError
from orchestrator.journal import Journal
from orchestrator.models import Command
from orchestrator.run_options import RunOptions
from orchestrator.runner import STOPPED_EXIT_CODE, execute
from orchestrator.workers import parent as worker_parent
from orchestrator.workers.parent import worker_count

__all__ = ["canary_emulator", "cli"]  # fixtures, used by name

WRONG_PARTNER = "7654321"


def _writes(em: Emulator) -> list[Any]:
    return [q for q in em.requests if q.service == "arm" and q.method in ("PUT", "PATCH", "DELETE")]


def _mixed_world(n: int) -> World:
    """n identities in their own tenants: secrets and PEM and PFX certificates, and every tenth one not
    registered (credential_invalid), so the outcomes are not all alike."""
    world = make_world(0)
    kinds = ("secret", "certificate-pem", "certificate-pfx")
    for i in range(n):
        world.add_identity(world.new_guid(), kinds[i % 3], registered=i % 10 != 9)
    return world


def _status_by_key(em: Emulator, journal: Path) -> dict[str, str]:
    with Journal(journal) as j:
        run = j.runs()[-1]
        return {o.key: o.status.value for o in j.outcomes(run.run_id)}


# -- the same results as one process ------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_two_and_three_workers_give_the_outcomes_of_one_process_and_write_each_link_once(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """300 identities of mixed credential types: with 2 workers every registered one is linked with exactly one
    PUT, reports are written, and a re-run writes nothing; on a fresh world, 3 workers and 1 give the same status
    for every key."""
    em = emulator_factory(_mixed_world(300))
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)

    two = execute(options(em, inv, tmp_path / "two", workers=2, write_reports=True))
    assert two.exit_code == 1 and two.counts == {"linked": 270, "credential_invalid": 30}, two.counts
    assert (tmp_path / "two" / "reports" / str(two.run_id) / "identities.csv").exists()
    for i, r in enumerate(em.world.identities):
        assert em.writes(r.tenant_id, r.object_id) == (0 if i % 10 == 9 else 1)
    first = _status_by_key(em, tmp_path / "two" / "journal.sqlite")
    again = execute(options(em, inv, tmp_path / "two", workers=2))
    assert again.counts == {"already_linked": 270, "credential_invalid": 30}
    assert all(em.writes(r.tenant_id, r.object_id) <= 1 for r in em.world.identities)
    statuses = {}
    for workers in (3, 1):
        em.world.links.clear()
        execute(options(em, inv, tmp_path / f"w{workers}", workers=workers))
        statuses[workers] = _status_by_key(em, tmp_path / f"w{workers}" / "journal.sqlite")
    assert statuses[3] == statuses[1] == first


def test_every_outcome_of_the_default_world_is_the_same_with_workers(cli: Cli, emulator: Emulator,
                                                                    tmp_path: Path) -> None:
    """Each failure the linker classifies (expired, unregistered, forbidden vault, deactivated tenant…) ends in the
    same status when its identity ran in a worker process, with recognition on (the worker builds its own)."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, emulator.world.identities)
    result = cli("link", inv, "--workers", "2")
    assert result.exit_code == 1, result.output
    got = cli.statuses()
    assert {name: got[r.client_id] for name, r in by_name(emulator).items()} == EXPECTED_LINK


# -- run-wide decisions stay run-wide -----------------------------------------------------------------------


def test_the_stop_rule_counts_across_workers(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rejected partner ID with 2 workers over 400 identities: exit 3 after at most a few dozen touched — the
    probation before the first success is the run's, not each worker's."""
    em = emulator_factory(make_world(400))
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    inv.write_text(inv.read_text().replace(f",{PARTNER}\n", ",\n"))
    result = execute(options(em, inv, tmp_path, partner_id=WRONG_PARTNER, concurrency=128, workers=2))
    assert result.exit_code == STOPPED_EXIT_CODE, result.counts
    touched = len(outcomes(result))
    assert 10 <= touched <= 40, touched
    assert len(_writes(em)) == touched


def test_one_principal_in_two_rows_on_two_workers_is_written_once(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same principal as a tenant GUID and as its domain, on adjacent rows (so on different workers): the
    parent's table of principals lets one row write; the other is skipped as DuplicatePrincipal."""
    world = World.from_dict({"operator": {"tenant": "0e0e0e0e-0000-4000-8000-000000000001"},
                             "tenants": [{"tenant_id": "aaaaaaaa-0000-4000-8000-00000000000a",
                                          "domains": ["contoso.example"]}],
                             "vaults": [{"name": "pal-vault"}],
                             "partners": [{"partner_id": PARTNER, "name": "Contoso Partner"}]})
    twice = world.add_identity("aaaaaaaa-0000-4000-8000-00000000000a", "secret")
    for _ in range(10):
        world.add_identity(world.new_guid(), "secret")
    em = emulator_factory(world)
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    lines = inv.read_text().splitlines()
    lines.insert(2, lines[1].replace(twice.tenant_id, "contoso.example"))
    inv.write_text("\n".join(lines) + "\n")
    result = execute(options(em, inv, tmp_path, workers=2))
    assert result.counts == {"linked": 11, "skipped": 1}, result.counts
    assert em.writes(twice.tenant_id, twice.object_id) == 1
    (skipped,) = [o for o in outcomes(result) if o.status.value == "skipped"]
    assert skipped.error_code == "DuplicatePrincipal"


@pytest.mark.timeout(120)
def test_a_retry_after_is_honoured_by_the_worker_that_got_it_and_delays_no_other_caller(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three tenants' first ARM request answers 429 with Retry-After: 1. Their next ARM request comes at least 1 s
    later (the request log's clock), while other tenants' requests go on meanwhile."""
    em = emulator_factory(make_world(60), latency_s=0.01)
    operator_env(em, monkeypatch)
    sick = list(em.world.identities)[5:8]
    for record in sick:
        em.script("arm", record.tenant_id, ["429:1"])
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    result = execute(options(em, inv, tmp_path, workers=2))
    assert result.counts == {"linked": 60}, result.counts
    arm = [q for q in em.requests if q.service == "arm" and q.tenant is not None]
    for record in sick:
        mine = [q for q in arm if q.tenant == record.tenant_id]
        refused = next(i for i, q in enumerate(mine) if q.status == 429)
        assert mine[refused].retry_after == 1
        assert mine[refused + 1].time - mine[refused].time >= 1.0
        others = [q for q in arm if q.tenant not in {s.tenant_id for s in sick}
                  and mine[refused].time < q.time < mine[refused].time + 1.0]
        assert others, "one caller's Retry-After held up the others"


def test_a_workers_failed_sign_in_is_the_runs_error_as_in_one_process(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator cannot sign in to Key Vault: each worker's warm-up fails before any identity, and the parent
    raises the same OperatorAuthError with the same message as an in-process run (exit 2, run closed)."""
    em = emulator_factory(make_world(20))
    operator_env(em, monkeypatch)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-operator-secret")
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    messages = []
    for workers in (1, 2):
        with pytest.raises(OperatorAuthError) as raised:
            execute(options(em, inv, tmp_path / f"w{workers}", workers=workers))
        messages.append(str(raised.value).split("Trace ID")[0])  # the service's trace IDs differ, nothing else
    assert messages[0] == messages[1] and "Key Vault" in messages[0]
    assert not _writes(em) and not [q for q in em.requests if q.service == "arm" and q.tenant]


# -- options ------------------------------------------------------------------------------------------------


def test_workers_must_be_at_least_one(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """`--workers 0` is a usage error naming the option (exit 2), before any request."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, emulator.world.identities[:2])
    result = cli("link", inv, "--workers", "0")
    assert result.exit_code == 2 and "--workers" in result.output
    assert not emulator.requests
    with pytest.raises(UsageError, match="--workers"):
        execute(RunOptions(command=Command.LINK, inventory=str(inv), workers=0))


def test_the_worker_count_by_default_stays_in_process_below_two_thousand() -> None:
    """Unset: one process below 2,000 identities, then one worker per 1,000 up to the cores; an explicit count
    wins (never more than identities); --self and injected test hooks stay in process unless asked."""
    cores = len(os.sched_getaffinity(0))
    auto = RunOptions(command=Command.LINK, inventory="x")
    assert worker_count(auto, 1_999) == 1
    assert worker_count(auto, 5_000) == min(cores, 5)
    assert worker_count(auto, 100_000) == cores
    assert worker_count(auto, 100_000, injected=True) == 1
    assert worker_count(RunOptions(command=Command.LINK, inventory="x", workers=3), 10) == 3
    assert worker_count(RunOptions(command=Command.LINK, inventory="x", workers=3), 10, injected=True) == 3
    assert worker_count(RunOptions(command=Command.LINK, inventory="x", workers=5), 2) == 2
    assert worker_count(RunOptions(command=Command.LINK, inventory="x", workers=4, self_link=True), 1) == 1
    assert worker_count(RunOptions(command=Command.LINK, inventory="x", workers=1), 10_000) == 1


# -- processes that die ---------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    """The live child processes of `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout} s for {what}")
        time.sleep(0.02)


def _final_outcomes(journal: Path) -> dict[str, int]:
    db = sqlite3.connect(journal)
    try:
        return dict(db.execute("SELECT key, COUNT(*) FROM outcomes GROUP BY key").fetchall())
    finally:
        db.close()


def _spawn(em: Emulator, inv: Path, tmp: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = link_argv(em, inv, tmp / "journal.sqlite", tmp / "reports", "--no-recognition", "--workers", "2",
                     "--concurrency", "16", *extra)
    return subprocess.Popen(argv, cwd=ROOT, env=_env(em), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _resume_finishes_each_link_once(em: Emulator, inv: Path, tmp_path: Path, n: int) -> None:
    """`--resume` with 2 workers ends the run: every one of the n identities has exactly one final outcome and
    every link was written exactly once across the killed run and the resume."""
    resumed = subprocess.run([*link_argv(em, inv, tmp_path / "journal.sqlite", tmp_path / "reports",
                                         "--no-recognition", "--workers", "2"), "--resume"],
                             cwd=ROOT, env=_env(em), capture_output=True, timeout=180, check=False)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    finals = _final_outcomes(tmp_path / "journal.sqlite")
    assert len(finals) == n and set(finals.values()) == {1}
    assert all(em.writes(r.tenant_id, r.object_id) == 1 for r in em.world.identities)


@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_sigkill_of_the_parent_ends_its_workers_and_resume_writes_each_link_once(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """`link --workers 2` killed with SIGKILL mid-run: no worker survives it (the pipe's end stops them), and
    `--resume` finishes every identity with one final outcome each and no link written twice."""
    em = emulator_factory(make_world(120), latency_s=0.02)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    proc = _spawn(em, inv, tmp_path)
    _wait_for(lambda: len(_writes(em)) >= 10 or proc.poll() is not None, 120, "the first writes")
    workers = _children(proc.pid)
    assert len(workers) == 2, workers
    proc.kill()
    proc.wait(30)
    _wait_for(lambda: not any(map(_alive, workers)), 10, "the workers to end with their parent")
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()
    assert len(_final_outcomes(tmp_path / "journal.sqlite")) < 120, "killed too late to test anything"
    _resume_finishes_each_link_once(em, inv, tmp_path, 120)


@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_worker_killed_mid_run_leaves_a_resumable_run_and_resume_writes_each_link_once(
    emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """One worker SIGKILLed mid-run: the other finishes what it holds, the run exits 2 naming the worker and
    `--resume`; resuming finishes every identity, no link written twice."""
    em = emulator_factory(make_world(120), latency_s=0.02)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    proc = _spawn(em, inv, tmp_path)
    _wait_for(lambda: len(_writes(em)) >= 10 or proc.poll() is not None, 120, "the first writes")
    victim = _children(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 2, text[-2000:]
    assert f"pid {victim}" in text and "SIGKILL" in text and "--resume" in text, text[-2000:]
    assert "Traceback" not in text
    _resume_finishes_each_link_once(em, inv, tmp_path, 120)


@pytest.mark.timeout(240)
def test_a_worker_that_dies_before_it_is_ready_ends_the_run_before_any_identity_and_resume_finishes_it(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker 2 is SIGKILLed the moment it is spawned, before it can say Ready: the run raises WorkerDiedError
    naming that worker, "while starting", its signal and `--resume`; no identity was started (no ARM write), the
    other worker does not outlive the run, and `--resume` with 2 workers links every identity exactly once."""
    em = emulator_factory(make_world(30))
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    spawned: list[subprocess.Popen[bytes]] = []
    real_spawn = worker_parent._spawn

    def spawn_and_kill_the_second(index: int) -> tuple[subprocess.Popen[bytes], socket.socket]:
        proc, sock = real_spawn(index)
        spawned.append(proc)
        if index == 2:
            proc.kill()
        return proc, sock

    monkeypatch.setattr(worker_parent, "_spawn", spawn_and_kill_the_second)
    with pytest.raises(WorkerDiedError) as raised:
        execute(options(em, inv, tmp_path, workers=2, recognition=False))
    text = str(raised.value)
    assert f"worker 2 (pid {spawned[1].pid}) died while starting" in text and "SIGKILL" in text, text
    assert "--resume" in text
    assert not _writes(em)
    assert spawned[0].poll() is not None, "worker 1 outlived the run"  # the run reaps its workers before it raises

    monkeypatch.setattr(worker_parent, "_spawn", real_spawn)
    result = execute(options(em, inv, tmp_path, workers=2, recognition=False, resume=True))
    assert [o.status.value for o in outcomes(result)] == ["linked"] * 30
    assert all(em.writes(r.tenant_id, r.object_id) == 1 for r in em.world.identities)


# -- secrets ------------------------------------------------------------------------------------------------


def test_debug_with_workers_prints_no_secret(canary_emulator: tuple[Emulator, dict[str, Any]],
                                             tmp_path: Path) -> None:
    """`--debug --workers 2` as a real process: the workers log like the parent (lines naming their identity),
    and no canary secret or token, raw or encoded, is in stdout, stderr or any file written."""
    em, made = canary_emulator
    inv = write_rows(tmp_path / "inv.csv", em, made.values())
    proc = subprocess.run(
        [*link_argv(em, inv, tmp_path / "journal.sqlite", tmp_path / "reports"), "--debug", "--workers", "2",
         "--output", "json"], cwd=ROOT, env=_env(em), capture_output=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert b"client=" + made["ok-secret"].client_id.encode() in proc.stderr
    haystacks = {"stdout": proc.stdout, "stderr": proc.stderr, **files_under(tmp_path / "reports"),
                 **{str(p): p.read_bytes() for p in tmp_path.glob("journal.sqlite*")}}
    assert_no_leak(haystacks, {**secret_needles(em), "tokens": token_needles(em)})


@pytest.mark.timeout(240)
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize("how", ["SIGTERM to the parent",
                                 pytest.param("Ctrl-C to the process group", marks=pytest.mark.slow)])
def test_an_interrupt_ends_the_workers_and_resume_finishes_the_run(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, how: str
) -> None:
    """A cancelled CI job (SIGTERM) or Ctrl-C in a terminal (SIGINT to every process of the group; the workers
    ignore it): exit 130 with the `--resume` hint and no traceback, no worker left, and `--resume` links the rest,
    each once."""
    em = emulator_factory(make_world(60), latency_s=0.05)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    argv = link_argv(em, inv, tmp_path / "journal.sqlite", tmp_path / "reports", "--no-recognition", "--workers", "2")
    proc = subprocess.Popen(argv, cwd=ROOT, env=_env(em), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    _wait_for(lambda: len(_writes(em)) >= 5 or proc.poll() is not None, 120, "the first writes")
    workers = _children(proc.pid)
    if how.startswith("SIGTERM"):
        proc.send_signal(signal.SIGTERM)
    else:
        os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"--resume" in err and b"Traceback" not in err, err.decode()[-3000:]
    _wait_for(lambda: not any(map(_alive, workers)), 10, "the workers to end")
    resumed = subprocess.run([*argv, "--resume"], cwd=ROOT, env=_env(em), capture_output=True, timeout=180,
                             check=False)
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert all(em.writes(r.tenant_id, r.object_id) == 1 for r in em.world.identities)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_kill_9_and_resume_with_two_workers_loses_nothing_and_writes_each_link_once(
    emulator_factory: Callable[..., Emulator], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash loop of test_reliability_crash (SIGKILL of `link` at random moments, then `--resume` until the
    run completes; one outcome per identity, an intact journal, one write per link) with `--workers 2`."""
    import test_reliability_crash as crash

    plain = crash.link_argv
    monkeypatch.setattr(crash, "link_argv", lambda *a, **k: [*plain(*a, **k), "--workers", "2"])
    stats = crash.crash_loop(emulator_factory, tmp_path, kills=20, n=30, seed=17)
    print(f"\nFIGURES crash workers=2: kills={stats.kills} mid_run={stats.kills_mid_run} episodes={stats.episodes}")
    assert stats.kills >= 20
