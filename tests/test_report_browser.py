"""coverage.html rendered by headless Chromium: the DOM it builds has the tables and charts."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from test_report import NOW, T0, golden_outcomes, record_run

from orchestrator import report
from orchestrator.journal import Journal

# Installing Chromium on a fresh machine can take minutes: allow it beyond the suite-wide 300 s.
pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str:
    """The Chromium binary; installed with apt-get where allowed (root or CI), else a loud skip."""
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.skip("BROWSER TESTS SKIPPED: Chromium is absent and `apt-get install -y chromium` needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
    if subprocess.run(cmd, env=env, capture_output=True, check=False, timeout=540).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False, timeout=300)
        subprocess.run(cmd, env=env, capture_output=True, check=False, timeout=540)
    found = shutil.which("chromium")
    if not found:
        pytest.skip("BROWSER TESTS SKIPPED: `apt-get install -y chromium` failed; install Chromium to run them")
    return found


@pytest.fixture(scope="module")
def chromium() -> str:
    return _chromium()


def _run_chromium(binary: str, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_chromium_renders_tables_and_charts(chromium: str, tmp_path: Path) -> None:
    """Chromium's DOM of coverage.html holds the summary, both SVG charts and every table's rows."""
    with Journal(tmp_path / "j.sqlite") as journal:
        record_run(journal, golden_outcomes()[:3], started=T0 - timedelta(days=90))
        run_id = record_run(journal, golden_outcomes())
        paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    result = _run_chromium(chromium, tmp_path, "--dump-dom", paths.html.as_uri())
    dom = result.stdout
    assert result.returncode == 0 and "</html>" in dom, result.stderr[-2000:]
    assert 'id="chart-status"' in dom and dom.count('class="bar"') == 6
    assert 'id="chart-coverage"' in dom and dom.count('class="run"') == 2
    for section in ("t-customers", "t-identities", "t-action-needed", "t-expiring-credentials",
                    "t-changes", "t-linked-but-not-recognised"):
        assert f'id="{section}"' in dom, section
    identities = dom.split('id="t-identities"', 1)[1].split("</section>", 1)[0]
    assert identities.count("<tr>") == 7 and '<td class="s-credential_expired">credential_expired</td>' in identities
    assert "secret expired in Key Vault — rotate it" in dom
    assert "40.0%" in dom


def test_chromium_renders_the_management_page(chromium: str, tmp_path: Path) -> None:
    """summary.html paints in Chromium: the figures table against the baseline, the groups of customers to act on
    and the trend chart, with nothing blocked by its Content-Security-Policy."""
    with Journal(tmp_path / "j.sqlite") as journal:
        record_run(journal, golden_outcomes()[:3], started=T0 - timedelta(days=90))
        run_id = record_run(journal, golden_outcomes())
        paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    assert paths.summary_html is not None
    result = _run_chromium(chromium, tmp_path, "--dump-dom", paths.summary_html.as_uri())
    dom = result.stdout
    assert result.returncode == 0 and "</html>" in dom, result.stderr[-2000:]
    assert '<table class="kpi">' in dom and "40.0% (2 of 5)" in dom
    assert 'id="chart-coverage"' in dom and dom.count('class="run"') == 2
    assert "secret expired in Key Vault — rotate it</b> — 1 customer:" in dom
    assert "Content-Security-Policy" not in result.stderr


def test_chromium_screenshot_is_not_blank(chromium: str, tmp_path: Path) -> None:
    """A screenshot of the page is produced and holds more than one colour (the page actually painted)."""
    with Journal(tmp_path / "j.sqlite") as journal:
        run_id = record_run(journal, golden_outcomes())
        paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    shot = tmp_path / "shot.png"
    result = _run_chromium(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,1600",
                           paths.html.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000, result.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
