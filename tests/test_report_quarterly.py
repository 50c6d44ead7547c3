"""The quarterly cycle: history follows identities across renamed inventories, one report folder per run,
latest/ only for finished link/audit runs, the management page, unfinished runs that say so, the Markdown summary."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import PARTNER_ID
from test_link import Cli, by_name, write_inventory
from test_report import NOW, T0, cid, outcome, record_run, tid
from typer.testing import CliRunner

from orchestrator import report
from orchestrator.cli import app
from orchestrator.emulator import Emulator
from orchestrator.errors import JournalError
from orchestrator.journal import Journal
from orchestrator.models import Recognition, RecognitionResult, Status

GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_a_renamed_quarter_is_compared_with_the_last_link_run_not_the_plan_or_unlink_between(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Q3 `link` of customers-Q3.csv, then a `plan` and an `unlink` of one identity; Q4's `link` of customers-Q4.csv
    (one identity added, one removed) is compared with the Q3 link run: the unlinked identity, linked again, is
    no change; plan and unlink leave reports/latest/ untouched; the Markdown summary says the same."""
    cli = Cli(emulator, tmp_path, monkeypatch)
    names = by_name(emulator)
    q3 = write_inventory(tmp_path / "customers-Q3.csv", emulator,
                         [names[n] for n in ("sp-secret", "sp-pem", "sp-pfx", "sp-linked")])
    assert cli("link", q3, "--no-recognition").exit_code == 0
    latest = cli.reports / "latest"
    q3_summary = (latest / "summary.json").read_bytes()
    q3_run = json.loads(q3_summary)["run_id"]
    assert json.loads(q3_summary)["baseline_run_id"] is None

    assert cli("plan", q3, "--no-recognition").exit_code == 0
    offboard = write_inventory(tmp_path / "offboard.csv", emulator, [names["sp-pem"]])
    assert cli("unlink", offboard, "--yes").exit_code == 0
    assert (latest / "summary.json").read_bytes() == q3_summary  # plan and unlink never replace latest/
    with Journal(cli.journal) as j:
        plan_run, unlink_run = (r.run_id for r in j.runs()[1:3])
    for run_id in (plan_run, unlink_run):  # …but each has its own folder
        assert json.loads((cli.reports / run_id / "summary.json").read_text())["run_id"] == run_id

    q4 = write_inventory(tmp_path / "customers-Q4.csv", emulator,
                         [names[n] for n in ("sp-secret", "sp-pem", "sp-linked", "sp-app-secret-expired")])
    md = tmp_path / "summary.md"
    step = tmp_path / "step-summary.md"
    step.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    result = cli("link", q4, "--no-recognition", "--summary-md", str(md))
    assert result.exit_code == 1, result.output  # the added identity's secret expired
    summary = json.loads((latest / "summary.json").read_text())
    assert summary["baseline_run_id"] == q3_run and summary["baseline"]["command"] == "link"
    assert summary["changes"] == {"lost": 0, "newly_failing": 0, "newly_linked": 0, "changed_partner": 0,
                                  "recovered": 0, "added": 1, "removed": 1}
    q4_run = summary["run_id"]
    changes = rows_of(cli.reports / q4_run / "changes.csv")
    got = {(r["client_id"], r["before"], r["after"], r["change"]) for r in changes}
    assert got == {(names["sp-app-secret-expired"].client_id, "", "credential_expired", "added"),
                   (names["sp-pfx"].client_id, "linked", "", "removed")}
    assert (latest / "changes.csv").read_bytes() == (cli.reports / q4_run / "changes.csv").read_bytes()

    text = md.read_text()
    assert f"## PAL link run `{q4_run}`" in text and f"run `{q3_run}`" in text
    assert "Added to the inventory 1; Removed from the inventory 1." in text
    assert "### Action needed (1)" in text and "secret expired" in text
    assert step.read_text() == "earlier step\n" + text  # appended to the job page, after what was there

    page = (latest / "summary.html").read_text()
    assert not GUID.search(page), "the management page shows no GUID"
    assert "Added to the inventory: 1" in page and "Removed from the inventory: 1" in page
    assert 'id="chart-coverage"' in page and page.count('class="run"') == 2  # Q3 link, Q4 link (not plan/unlink)


def test_a_named_baseline_must_be_a_link_or_audit_run(journal_path: Path, tmp_path: Path) -> None:
    """`report RUN --baseline` compares with the run named; a plan run cannot be one (exit 2, says why)."""
    with Journal(journal_path) as j:
        first = record_run(j, [outcome(1, "A", Status.LINKED), outcome(2, "B", Status.LINKED)], inventory="q2.csv")
        plan = record_run(j, [outcome(1, "A", Status.WOULD_LINK)], command="plan", started=T0 + timedelta(days=1))
        audit = record_run(j, [outcome(1, "A", Status.NOT_LINKED)], command="audit", inventory="q3.csv",
                           started=T0 + timedelta(days=2))
        last = record_run(j, [outcome(1, "A", Status.LINKED)], inventory="q4.csv", started=T0 + timedelta(days=3))
        assert j.baseline(last).run_id == audit  # type: ignore[union-attr]
        assert [r.run_id for r in j.family_runs(last)] == [first, audit]
    out = tmp_path / "r"
    res = CliRunner().invoke(app, ["report", last, "--journal", str(journal_path), "--report-dir", str(out),
                                   "--baseline", first])
    assert res.exit_code == 0, res.output
    s = json.loads((out / last / "summary.json").read_text())
    assert s["baseline_run_id"] == first and s["changes"]["removed"] == 1 and s["changes"]["newly_linked"] == 0
    bad = CliRunner().invoke(app, ["report", last, "--journal", str(journal_path), "--report-dir", str(out),
                                   "--baseline", plan])
    assert bad.exit_code == 2 and "cannot be a baseline" in bad.output


@pytest.fixture
def journal_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.sqlite"


def test_each_kind_of_change_is_found(journal_path: Path, tmp_path: Path) -> None:
    """lost, newly failing, newly linked, partner changed and recovered, one identity each, against an audit."""
    with Journal(journal_path) as j:
        record_run(j, [
            outcome(1, "Lost", Status.ALREADY_LINKED),
            outcome(2, "Failing", Status.ALREADY_LINKED),
            outcome(3, "New", Status.NOT_LINKED),
            outcome(4, "Moved", Status.LINKED_ELSEWHERE, linked_partner_id="111111"),
            outcome(5, "Back", Status.CREDENTIAL_EXPIRED),
            outcome(6, "Same", Status.ALREADY_LINKED),
        ], command="audit")
        run = record_run(j, [
            outcome(1, "Lost", Status.LINKED_ELSEWHERE, linked_partner_id="999999"),
            outcome(2, "Failing", Status.SIGN_IN_FAILED, error_code="AADSTS7000215"),
            outcome(3, "New", Status.LINKED),
            outcome(4, "Moved", Status.LINKED_ELSEWHERE, linked_partner_id="222222"),
            outcome(5, "Back", Status.LINKED_ELSEWHERE, linked_partner_id="333333"),
            outcome(6, "Same", Status.ALREADY_LINKED),
        ], started=T0 + timedelta(days=90))
        paths = report.write_reports(j, run, tmp_path / "r", now=NOW)
    rows = rows_of(paths.changes_csv)  # type: ignore[arg-type]
    assert [(r["customer"], r["change"]) for r in rows] == [
        ("Lost", "lost"), ("Failing", "newly_failing"), ("New", "newly_linked"), ("Moved", "changed_partner"),
        ("Back", "recovered")]
    assert rows[0]["before"] == "already_linked" and rows[0]["after_partner_id"] == "999999"
    assert rows[1]["error_code"] == "AADSTS7000215"


def test_an_unfinished_run_says_so_and_counts_coverage_over_the_inventory(journal_path: Path, tmp_path: Path) -> None:
    """A run stopped at 486 of 2,000 identities: every headline says "incomplete: 486 of 2,000 identities",
    identity coverage is over the 2,000, and latest/ keeps the last finished run."""
    with Journal(journal_path) as j:
        done = record_run(j, [outcome(1, "A", Status.LINKED)])
        report.write_reports(j, done, tmp_path / "r", now=NOW)
        run_id = j.start_run(command="link", inventory_path="big.csv", inventory_sha256="cd" * 32,
                             inventory_rows=2000, skipped=0, partner_ids=["1234567"], options={},
                             tool_version="0.1.0", operator="tester", started_at=T0 + timedelta(days=1))
        for n in range(486):
            j.record_outcome(run_id, outcome(n + 1, f"C{n % 50}", Status.LINKED if n < 243 else Status.FAILED))
        paths = report.write_reports(j, run_id, tmp_path / "r", now=NOW)
    s = json.loads(paths.summary_json.read_text())
    assert s["complete"] is False and s["headline"] == "incomplete: 486 of 2,000 identities"
    assert s["identities"] == {"recorded": 486, "inventory": 2000, "covered": 243, "coverage_percent": 12.2}
    assert s["changes"]["removed"] == 0  # identities the run did not reach are not "removed"
    for page in (paths.html, paths.summary_html):
        assert "incomplete: 486 of 2,000 identities" in page.read_text()  # type: ignore[union-attr]
    assert paths.latest is None
    assert json.loads((tmp_path / "r" / "latest" / "summary.json").read_text())["run_id"] == done
    md = report.render_markdown(s)
    assert "**incomplete: 486 of 2,000 identities**" in md and "12.2% of the inventory" in md


def test_the_management_page_groups_customers_by_what_to_do(journal_path: Path, tmp_path: Path) -> None:
    """summary.html: coverage and recognition now and at the baseline with the change, customers grouped by fix,
    no GUID anywhere, nothing fetched from outside."""
    eligible = RecognitionResult(Recognition.ELIGIBLE, 1)
    with Journal(journal_path) as j:
        record_run(j, [outcome(1, "Contoso", Status.NOT_LINKED), outcome(2, "Fabrikam", Status.ALREADY_LINKED)],
                   command="audit")
        run = record_run(j, [
            outcome(1, "Contoso", Status.LINKED, recognition=eligible),
            outcome(2, "Fabrikam", Status.CREDENTIAL_EXPIRED),
            outcome(3, "Northwind", Status.CREDENTIAL_EXPIRED),
            outcome(4, "Tailspin <b>", Status.LINKED_ELSEWHERE, linked_partner_id="7654321"),
        ], started=T0 + timedelta(days=91))
        paths = report.write_reports(j, run, tmp_path / "r", now=NOW)
    page = paths.summary_html.read_text()  # type: ignore[union-attr]
    assert not GUID.search(page) and "<script" not in page
    assert "://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "25.0% (1 of 4)" in page and "50.0% (1 of 2)" in page and "-25.0 pts" in page  # coverage now, then
    assert ("<b>secret expired in Key Vault — rotate it</b> — 2 customers: "
            '<span class="names">Fabrikam, Northwind</span>') in page
    assert "Tailspin &lt;b&gt;" in page and "Tailspin <b>" not in page
    assert "Link lost: 0" not in page and "Newly failing: 1" in page


def test_markdown_caps_the_action_rows_and_keeps_the_table_whole() -> None:
    """Rows beyond the limit are counted, not shown; a `|` or line break in a value cannot break the table."""
    s = {
        "run_id": "R", "command": "audit", "coverage_percent": 50.0, "customers": {"total": 2, "covered": 1},
        "recognition": {"recognised": 0, "recognition_percent": 0.0}, "status_counts": {"not_linked": 3},
        "exit_code": 0, "baseline_run_id": None, "files": ["summary.json"],
        "action_needed": {"total": 30, "rows": [
            {"customer": f"A|B\nC{n}", "tenant_id": tid(n), "client_id": cid(n), "status": "not_linked",
             "error_code": None, "fix": "run link"} for n in range(30)]},
    }
    md = report.render_markdown(s, limit=5)
    table = [line for line in md.splitlines() if line.startswith("| A")]
    assert len(table) == 5 and table[0] == f"| A\\|B C0 | {tid(0)} | not_linked | run link |"
    assert "… and 25 more" in md and "No baseline" in md


def test_markdown_shows_hostile_customer_names_as_typed() -> None:
    """A customer named like a link, an image or HTML renders as text on the job page: escaped, never live."""
    s = {
        "run_id": "R", "command": "link", "coverage_percent": 0.0, "customers": {"total": 1, "covered": 0},
        "recognition": {"recognised": 0, "recognition_percent": 0.0}, "status_counts": {"failed": 1},
        "exit_code": 1, "baseline_run_id": None, "files": [],
        "action_needed": {"total": 1, "rows": [
            {"customer": "[click](https://evil.example) <img src=x> *bold* `code`", "tenant_id": tid(1),
             "client_id": cid(1), "status": "failed", "error_code": None, "fix": "read error_message"}]},
    }
    md = report.render_markdown(s, folder="/work/my_repo/reports/R")
    assert ("\\[click\\](https://evil.example) &lt;img src=x&gt; \\*bold\\* \\`code\\`" in md)
    assert "<img" not in md and "In `/work/my_repo/reports/R`:" in md


def test_pick_baseline_refuses_an_unknown_run(journal_path: Path) -> None:
    """A --baseline that is not in the journal is a clear JournalError."""
    with Journal(journal_path) as j:
        run = record_run(j, [outcome(1, "A", Status.LINKED)])
        with pytest.raises(JournalError, match="no run 'nope'"):
            report.pick_baseline(j, j.run(run), "nope")


_ = PARTNER_ID


def test_the_default_journal_lives_in_the_state_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The journal defaults to $XDG_STATE_HOME/pal-orchestrator/journal.sqlite (else ~/.local/state/…), outside
    any report folder; a relative XDG_STATE_HOME is ignored, as the XDG spec says."""
    from orchestrator.journal import default_journal_path

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_journal_path() == tmp_path / "state" / "pal-orchestrator" / "journal.sqlite"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_journal_path() == tmp_path / "home" / ".local" / "state" / "pal-orchestrator" / "journal.sqlite"


def test_latest_is_the_link_or_audit_run_that_finished_last(journal_path: Path) -> None:
    """A run resumed to its end after a later audit finished is the latest; plan and unlink runs never are."""
    with Journal(journal_path) as j:
        early = record_run(j, [outcome(1, "A", Status.LINKED)], exit_code=None)  # stopped, resumed below
        record_run(j, [outcome(1, "A", Status.ALREADY_LINKED)], command="audit", started=T0 + timedelta(hours=1))
        record_run(j, [outcome(1, "A", Status.ALREADY_LINKED)], command="plan", started=T0 + timedelta(hours=3))
        j.finish_run(early, 0, finished_at=T0 + timedelta(hours=2))
        assert j.latest_finished().run_id == early  # type: ignore[union-attr]
        record_run(j, [outcome(1, "A", Status.UNLINKED)], command="unlink", started=T0 + timedelta(hours=4))
        assert j.latest_finished().run_id == early  # type: ignore[union-attr]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_clean_never_deletes_a_journal(tmp_path: Path) -> None:
    """`make clean` empties reports/ (run folders, latest/) but keeps any journal file there and .gitignore."""
    reports = tmp_path / "reports"
    (reports / "latest").mkdir(parents=True)
    (reports / "20250101T000000Z-abcdef12").mkdir()
    for name in (".gitignore", "journal.sqlite", "journal.sqlite-wal", "demo-journal.sqlite", "latest/summary.html",
                 "20250101T000000Z-abcdef12/identities.csv", "bench.json"):
        (reports / name).write_text("x")
    makefile = Path(__file__).resolve().parent.parent / "Makefile"
    subprocess.run(["make", "-s", "-C", str(tmp_path), "-f", str(makefile), "clean"], check=True,
                   capture_output=True)
    assert sorted(p.name for p in reports.iterdir()) == [
        ".gitignore", "demo-journal.sqlite", "journal.sqlite", "journal.sqlite-wal"]


def test_a_run_stopped_early_reports_itself_incomplete_and_keeps_latest(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real run stopped by a shared cause (exit 3, the vault unreadable) writes its own folder, whose headline is
    "incomplete: N of 200 identities"; latest/ keeps the finished run before it until the resumed run finishes."""
    from test_reliability_faults import make_world, never_sleep, operator_env, options, write_rows

    from orchestrator.runner import STOPPED_EXIT_CODE, execute

    world = make_world(200)
    em = emulator_factory(world)
    operator_env(em, monkeypatch)
    first = write_rows(tmp_path / "first.csv", em, em.world.identities[:20])
    done = execute(options(em, first, tmp_path, write_reports=True), sleep=never_sleep())
    assert done.exit_code == 0
    readers = set(world.vaults["pal-vault"].readers)
    world.vaults["pal-vault"].readers.clear()
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    stopped = execute(options(em, inv, tmp_path, write_reports=True), sleep=never_sleep())
    assert stopped.exit_code == STOPPED_EXIT_CODE and stopped.run_id
    s = json.loads((tmp_path / "reports" / stopped.run_id / "summary.json").read_text())
    recorded = s["identities"]["recorded"]
    assert s["complete"] is False and s["headline"] == f"incomplete: {recorded} of 200 identities" and recorded < 200
    assert f"incomplete: {recorded} of 200 identities" in (tmp_path / "reports" / stopped.run_id / "summary.html"
                                                           ).read_text()
    latest = tmp_path / "reports" / "latest" / "summary.json"
    assert json.loads(latest.read_text())["run_id"] == done.run_id
    world.vaults["pal-vault"].readers.update(readers)
    resumed = execute(options(em, inv, tmp_path, write_reports=True, resume=True), sleep=never_sleep())
    assert resumed.exit_code == 0 and resumed.run_id == stopped.run_id
    s = json.loads(latest.read_text())
    assert s["run_id"] == stopped.run_id and s["complete"] is True and s["baseline_run_id"] == done.run_id
    assert s["changes"]["added"] == 180


def test_a_run_ended_by_a_run_level_error_is_never_a_baseline(journal_path: Path) -> None:
    """A link run that ended with exit 2 (e.g. the operator could not sign in mid-run) describes no state: the
    next run is compared with the run before it, and latest/ stays with that one."""
    with Journal(journal_path) as j:
        good = record_run(j, [outcome(1, "A", Status.LINKED), outcome(2, "B", Status.LINKED)])
        record_run(j, [outcome(1, "A", Status.LINKED)], exit_code=2, started=T0 + timedelta(days=1))
        assert j.latest_finished().run_id == good  # type: ignore[union-attr]
        last = record_run(j, [outcome(1, "A", Status.LINKED)], command="plan", started=T0 + timedelta(days=2))
        assert j.baseline(last).run_id == good  # type: ignore[union-attr]


def test_a_wrong_baseline_is_refused_before_any_request(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`link --baseline RUN` naming a plan run (or no run) exits 2 with the reason, before anything is sent."""
    cli = Cli(emulator, tmp_path, monkeypatch)
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-linked"]])
    assert cli("plan", inv, "--no-recognition").exit_code == 0
    with Journal(cli.journal) as j:
        plan_run = j.runs()[-1].run_id
    emulator.reset_log()
    for wrong, why in ((plan_run, "cannot be a baseline"), ("20990101T000000Z-00000000", "no run")):
        result = cli("link", inv, "--baseline", wrong)
        assert result.exit_code == 2 and why in result.output, result.output
    assert emulator.requests == []
