"""Files we write are private: journal (+ -wal/-shm), lock and reports 0600 under umask 022, and a report
directory others can write to is refused with a clear message (they could swap a report under us)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_link import Cli, by_name, write_inventory
from test_reliability_crash import ROOT, _env, link_argv
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.emulator import Emulator


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The common default umask, under which SQLite and open() create 0644 files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _private(paths: list[Path]) -> dict[str, str]:
    """Paths that others can read or write, with their modes."""
    return {str(p): f"{_mode(p):04o}" for p in paths if p.is_file() and _mode(p) & 0o077}


@pytest.mark.usefixtures("umask_022")
def test_journal_lock_and_reports_are_0600_under_umask_022(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a link run under umask 022: journal, its -wal/-shm, lock and every report file are 0600, the new
    report directory 0700."""
    cli = Cli(emulator, tmp_path, monkeypatch)
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    result = cli("link", inv, "--no-recognition")
    assert result.exit_code == 0, result.output
    files = [*tmp_path.glob("journal.sqlite*"), *(p for p in cli.reports.rglob("*") if p.is_file())]
    assert len([p for p in files if p.name.endswith((".xlsx", ".csv", ".html", ".json"))]) >= 4
    assert Path(f"{cli.journal}.lock").exists()
    assert _private(files) == {}
    assert _mode(cli.reports) & 0o077 == 0 and _mode(cli.reports / "latest") & 0o077 == 0


@pytest.mark.usefixtures("umask_022")
def test_a_killed_run_leaves_private_wal_and_shm(emulator_factory: object, tmp_path: Path) -> None:
    """A real process under umask 022 killed mid-run leaves journal, -wal, -shm and lock all 0600."""
    from test_reliability_faults import make_world, write_rows

    assert callable(emulator_factory)
    em: Emulator = emulator_factory(make_world(12), latency_s=0.05)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    journal = tmp_path / "j" / "journal.sqlite"
    argv = [*link_argv(em, inv, journal, tmp_path / "reports"), "--concurrency", "1"]
    proc = subprocess.Popen(argv, cwd=ROOT, env=_env(em), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            preexec_fn=lambda: os.umask(0o022))
    deadline = time.monotonic() + 60
    while len([r for r in em.requests if r.service == "arm" and r.method == "PUT"]) < 3:
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    files = list(journal.parent.iterdir())
    assert {p.name for p in files} >= {"journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm",
                                       "journal.sqlite.lock"}
    assert _private(files) == {}


@pytest.mark.usefixtures("umask_022")
def test_loose_files_left_by_someone_else_become_private(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pre-existing 0644 journal and 0644 report files are 0600 after a run (reports are replaced)."""
    cli = Cli(emulator, tmp_path, monkeypatch)
    (cli.reports / "latest").mkdir(mode=0o755, parents=True)
    (cli.reports / "latest" / "identities.csv").write_text("old\n")
    os.chmod(cli.reports / "latest" / "identities.csv", 0o644)
    cli.journal.touch()
    os.chmod(cli.journal, 0o644)
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    assert cli("link", inv, "--no-recognition").exit_code == 0
    assert _private([cli.journal, *(p for p in cli.reports.rglob("*") if p.is_file())]) == {}
    assert (cli.reports / "latest" / "identities.csv").read_text() != "old\n"


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o1777, 0o730])
def test_group_or_world_writable_report_dir_is_refused_with_a_clear_message(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: int
) -> None:
    """link with a report directory others can write to: exit 2, a message saying why and `chmod go-w`, and no
    report file written into it."""
    cli = Cli(emulator, tmp_path, monkeypatch)
    cli.reports.mkdir()
    os.chmod(cli.reports, mode)
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    result = cli("link", inv, "--no-recognition")
    said = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "group- or world-writable" in said and "chmod go-w" in said, said
    assert list(cli.reports.iterdir()) == []
    # the `report` command refuses it too (after a run recorded elsewhere)
    assert cli("link", inv, "--no-recognition", "--report-dir", str(tmp_path / "safe")).exit_code == 0
    rerender = CliRunner().invoke(app, ["report", "--journal", str(cli.journal), "--report-dir", str(cli.reports)],
                                  catch_exceptions=False)
    assert rerender.exit_code == 2 and "chmod go-w" in " ".join(rerender.output.split())


def test_an_unsafe_report_dir_is_refused_before_anything_is_sent(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A world-writable report directory stops `link` before any request reaches Azure."""
    cli = Cli(emulator, tmp_path, monkeypatch)
    cli.reports.mkdir()
    os.chmod(cli.reports, 0o777)  # noqa: S103 - the unsafe directory is what is tested
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    result = cli("link", inv, "--no-recognition")
    assert result.exit_code == 2
    assert emulator.requests == [], f"{len(emulator.requests)} requests were sent before the refusal"
