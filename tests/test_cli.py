"""The command line: documented commands, clear usage errors, and the loopback-only promise of the suite."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import NonLoopbackConnection
from typer.testing import CliRunner

from orchestrator.cli import app

ROOT = Path(__file__).resolve().parent.parent


def _commands() -> list[str]:
    return sorted(c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands)


def test_every_command_is_documented_in_the_readme_and_has_help() -> None:
    """Each CLI command appears in README.md and answers --help with its docstring."""
    readme = (ROOT / "README.md").read_text()
    for name in _commands():
        if name == "demo":  # `make run` is its documented face
            continue
        assert f"`{name}" in readme or f" {name} " in readme, f"README does not document `{name}`"
        result = CliRunner().invoke(app, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage" in result.output


def test_emulator_help_documents_the_emulator() -> None:
    """`python -m orchestrator emulator --help` explains the emulator and its options."""
    result = subprocess.run(
        [sys.executable, "-m", "orchestrator", "emulator", "--help"], capture_output=True, text=True, check=False,
        cwd=ROOT, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    for word in ("--world", "--latency-ms", "--faults", "127.0.0.1", "PAL-EMULATOR READY"):
        assert word in result.stdout, word


def test_missing_inventory_is_a_usage_error(tmp_path: Path) -> None:
    """A run with neither INVENTORY nor --self, or a missing file, exits 2 with a message, no traceback."""
    result = CliRunner().invoke(app, ["link", "--partner-id", "1234567", "--report-dir", str(tmp_path)])
    assert result.exit_code == 2 and "INVENTORY" in result.output
    missing = CliRunner().invoke(
        app, ["link", str(tmp_path / "nope.csv"), "--partner-id", "1234567", "--report-dir", str(tmp_path / "r"),
              "--journal", str(tmp_path / "j.sqlite")],
    )
    assert missing.exit_code == 2
    assert "Traceback" not in missing.output and "nope.csv" in missing.output


def test_validate_exit_codes(tmp_path: Path) -> None:
    """validate exits 0 for a clean inventory and 2 with FILE:LINE problems for a bad one."""
    good = ROOT / "inventory" / "examples" / "customers.csv"
    assert CliRunner().invoke(app, ["validate", str(good)]).exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("customer,tenant_id,client_id,secret_uri,partner_id\n"
                   "Contoso,not-a-guid,00000000-0000-4000-8000-000000000001,"
                   "https://kv1.vault.azure.net/secrets/s1,1234567\n")
    result = CliRunner().invoke(app, ["validate", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:2: tenant_id" in result.output


def test_world_writable_report_dir_is_refused(tmp_path: Path) -> None:
    """A group/world-writable report directory is refused before any work, exit 2."""
    reports = tmp_path / "shared"
    reports.mkdir()
    reports.chmod(0o777)
    good = ROOT / "inventory" / "examples" / "customers.csv"
    result = CliRunner().invoke(app, ["link", str(good), "--report-dir", str(reports),
                                      "--journal", str(tmp_path / "j.sqlite")])
    assert result.exit_code == 2
    assert "writable" in result.output


def test_the_suite_refuses_any_non_loopback_connection() -> None:
    """The autouse guard stops a connect to IMDS or a public address before a packet is sent."""
    for address in (("169.254.169.254", 80), ("20.190.151.68", 443)):
        with socket.socket() as s, pytest.raises(NonLoopbackConnection):
            s.connect(address)
    with pytest.raises(NonLoopbackConnection):
        socket.getaddrinfo("login.microsoftonline.com", 443)
    assert socket.getaddrinfo("127.0.0.1", 443)
    with socket.socket() as s:  # loopback stays allowed (nothing listens: refused, not blocked)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


def test_the_demo_links_the_shipped_inventory_and_writes_reports(tmp_path: Path) -> None:
    """`make run`'s job: the demo world and inventory give every headline state and a full report set."""
    reports = tmp_path / "reports"
    result = CliRunner().invoke(app, ["demo", "--inventory", str(ROOT / "inventory" / "demo.csv"),
                                      "--world", str(ROOT / "inventory" / "demo-world.yaml"),
                                      "--report-dir", str(reports), "--journal", str(reports / "journal.sqlite"),
                                      "--output", "json"])
    assert result.exit_code == 0, result.output
    import json

    summary = json.loads((reports / "latest" / "summary.json").read_text())
    for status in ("linked", "already_linked", "linked_elsewhere", "credential_expired", "credential_missing",
                   "sign_in_failed", "skipped"):
        assert summary["status_counts"].get(status), status
    for name in ("identities.csv", "customers.csv", "coverage.xlsx", "coverage.html", "summary.html"):
        assert (reports / "latest" / name).is_file(), name
    assert f"{reports / 'latest' / 'summary.html'}" in result.stderr


def _console(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The installed entry point, as a pipeline runs it (main(), not CliRunner)."""
    return subprocess.run([sys.executable, "-c", "from orchestrator.cli import main; main()", *argv],
                          capture_output=True, text=True, check=False, cwd=cwd, timeout=120)


def test_a_malformed_partner_id_option_is_a_usage_error_naming_the_option(tmp_path: Path) -> None:
    """`--partner-id 48A` is the option's fault: exit 2 naming --partner-id and the fix, not "13 invalid rows"."""
    demo = ROOT / "inventory" / "demo.csv"
    result = CliRunner().invoke(app, ["link", str(demo), "--partner-id", "48A", "--journal", str(tmp_path / "j"),
                                      "--report-dir", str(tmp_path / "r")])
    assert result.exit_code == 2
    assert "--partner-id" in result.output and "6–10 digit" in result.output
    assert "invalid)" not in result.output


def test_plan_detailed_exitcode_says_1_for_any_error_usage_errors_included(tmp_path: Path) -> None:
    """With --detailed-exitcode, 2 means only "writes pending": a missing inventory or a bad option exits 1."""
    missing = _console("plan", str(tmp_path / "nope.csv"), "--partner-id", "1234567", "--detailed-exitcode",
                       "--journal", str(tmp_path / "j.sqlite"), "--report-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert missing.returncode == 1, missing.stderr
    bad_option = _console("plan", str(tmp_path / "nope.csv"), "--detailed-exitcode", "--concurrency", "zero",
                          cwd=tmp_path)
    assert bad_option.returncode == 1, bad_option.stderr
    plain = _console("plan", str(tmp_path / "nope.csv"), "--concurrency", "zero", cwd=tmp_path)
    assert plain.returncode == 2 and "--concurrency" in plain.stderr


def test_every_command_help_ends_with_examples_and_shows_no_type_noise() -> None:
    """Each command's --help ends with two or three command lines a user would type; flags carry no `<bool>`."""
    for name in _commands():
        result = CliRunner().invoke(app, [name, "--help"])
        assert "<bool>" not in result.output, name
        tail = result.output.split("Examples:", 1)
        assert len(tail) == 2, f"{name} --help has no examples"
        lines = [ln.strip() for ln in tail[1].splitlines() if ln.strip()]
        assert len(lines) >= 2 and all(ln.startswith(("pal-orchestrator ", "make ")) for ln in lines), (name, lines)


def test_validate_accepts_the_command_line_of_a_run(tmp_path: Path) -> None:
    """The options the emulator prints for `link` work for `validate` too (those it does not need are ignored)."""
    good = ROOT / "inventory" / "examples" / "customers.csv"
    result = CliRunner().invoke(app, [
        "validate", str(good), "--partner-id", "1234567", "--authority-host", "https://127.0.0.1:8443",
        "--arm-endpoint", "https://127.0.0.1:8443/", "--operator-auth", "env", "--concurrency", "8",
        "--journal", str(tmp_path / "j.sqlite"), "--report-dir", str(tmp_path / "r"),
    ])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "j.sqlite").exists()


def test_an_interrupted_read_only_run_is_not_told_to_resume() -> None:
    """audit and plan have no --resume: their interrupt hint says to run them again; link and unlink resume."""
    from orchestrator.models import Command
    from orchestrator.runner import Interrupted

    assert "--resume" not in Interrupted("r1", Command.AUDIT).hint
    assert "--resume" not in Interrupted("r1", Command.PLAN).hint
    assert "pal-orchestrator unlink … --resume" in Interrupted("r1", Command.UNLINK).hint
