"""Reports that can be traced back and handed out: where each row came from, work lists with the inventory's
own columns, numbers Excel can add, counts and fixes that follow the customer's verdict, and a report directory
that always holds one run's complete set."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from test_report import NOW, PID, T0, cid, golden_outcomes, outcome, record_run, tid

from orchestrator import report
from orchestrator.errors import ReportError
from orchestrator.journal import Journal
from orchestrator.models import Outcome, Recognition, RecognitionResult, Status

TRACE = "0a1b2c3d-4e5f-4061-8071-8293a4b5c6d7"
CORRELATION = "9f8e7d6c-5b4a-4392-8180-7f6e5d4c3b2a"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite") as j:
        yield j


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def sheet(path: Path, name: str) -> list[dict[str, Any]]:
    ws = openpyxl.load_workbook(path)[name]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


# -- (a) traceable identities ----------------------------------------------------------------------------


def test_identities_name_their_inventory_line_and_entra_trace(journal: Journal, tmp_path: Path) -> None:
    """identities.csv and the Identities sheet end with source, line, key_vault, secret_name, trace_id and
    correlation_id (the Entra IDs parsed out of the stored message), after the contracted columns."""
    message = (f"AADSTS7000215: Invalid client secret provided. Trace ID: {TRACE} Correlation ID: {CORRELATION} "
               "Timestamp: 2025-03-01 09:05:00Z")
    run_id = record_run(journal, [
        outcome(1, "Contoso", Status.LINKED, source="inv.csv", line=2),
        outcome(2, "Tailspin", Status.SIGN_IN_FAILED, error_code="AADSTS7000215", error_message=message,
                source="inv.csv", line=3, extra=(("owner", "ops@tailspin.test"),)),
    ])
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    appended = ("source", "line", "key_vault", "secret_name", "trace_id", "correlation_id")
    assert report.IDENTITY_COLUMNS[-6:] == appended
    rows = csv_rows(paths.identities_csv)
    assert list(rows[0])[: len(report.IDENTITY_COLUMNS)] == list(report.IDENTITY_COLUMNS)
    assert list(rows[0])[-1] == "owner"  # inventory extras still come last
    linked, failed = rows
    assert (linked["source"], linked["line"], linked["trace_id"], linked["correlation_id"]) == ("inv.csv", "2", "", "")
    assert (failed["source"], failed["line"]) == ("inv.csv", "3")
    assert (failed["trace_id"], failed["correlation_id"]) == (TRACE, CORRELATION)
    # The journal does not carry the secret URI yet: the vault columns exist, empty.
    assert (failed["key_vault"], failed["secret_name"]) == ("", "")
    xlsx = {r["client_id"]: r for r in sheet(paths.xlsx, "Identities")}
    assert xlsx[cid(2)]["trace_id"] == TRACE and xlsx[cid(2)]["line"] == 3


def test_vault_and_secret_name_come_from_the_secret_uri_never_a_value() -> None:
    """A Key Vault secret identifier splits into the vault URL and the secret name (version dropped)."""
    assert report.vault_and_secret("https://kv-ops.vault.azure.net/secrets/contoso-pal/0123abcd") == (
        "https://kv-ops.vault.azure.net", "contoso-pal")
    assert report.vault_and_secret("https://127.0.0.1:8443/kv/secrets/name") == ("https://127.0.0.1:8443/kv", "name")
    assert report.vault_and_secret(None) == (None, None)
    assert report.vault_and_secret("not a uri") == (None, None)


def test_entra_ids_are_parsed_only_when_present() -> None:
    """Trace and correlation IDs are GUIDs after their labels; a message without them yields none."""
    assert report.entra_ids(f"x Trace ID: {TRACE} Correlation ID: {CORRELATION} Timestamp: t") == (
        TRACE, CORRELATION)
    assert report.entra_ids("secret expired") == (None, None)
    assert report.entra_ids(None) == (None, None)


# -- (b) work lists carry the inventory's columns --------------------------------------------------------


def test_work_lists_carry_the_inventory_extra_columns(journal: Journal, tmp_path: Path) -> None:
    """Action needed and Expiring credentials end with the inventory's extra columns, as identities.csv does."""
    run_id = record_run(journal, golden_outcomes())
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    actions = sheet(paths.xlsx, "Action needed")
    assert list(actions[0])[-3:] == ["region", "cost_center", "owner"]
    by_client = {r["client_id"]: r for r in actions}
    assert by_client[cid(2)]["region"] == "emea"
    expiring = sheet(paths.xlsx, "Expiring credentials")
    assert list(expiring[0])[:8] == ["customer", "tenant_id", "client_id", "credential_type",
                                     "credential_expires_on (UTC)", "days_left", "status", "fix"]
    assert [(r["client_id"], r["region"], r["cost_center"]) for r in expiring] == [
        (cid(2), "emea", None), (cid(1), "emea", "CC-1")]
    html = paths.html.read_text(encoding="utf-8")
    section = html.split('id="t-action-needed"', 1)[1].split("</section>", 1)[0]
    assert "<th>owner</th>" in section


def test_an_extra_column_named_like_a_work_list_column_is_kept_apart(journal: Journal, tmp_path: Path) -> None:
    """An inventory column called `fix` does not collide with the work lists' own `fix`."""
    run_id = record_run(journal, [outcome(1, "A", Status.NOT_LINKED, extra=(("fix", "call Bob"),))])
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    (row,) = sheet(paths.xlsx, "Action needed")
    assert row["fix"] == "not linked — run `pal-orchestrator link`" and row["extra_fix"] == "call Bob"


# -- (c) numbers Excel can add ---------------------------------------------------------------------------


def test_xlsx_summary_figures_are_numbers(journal: Journal, tmp_path: Path) -> None:
    """Counts and percentages on the Summary sheet are number cells; identifiers stay text."""
    run_id = record_run(journal, golden_outcomes())
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    ws = openpyxl.load_workbook(paths.xlsx)["Summary"]
    figures = {r[0]: r[1] for r in ws.iter_rows(min_row=3, max_col=2, values_only=True) if r[0]}
    assert figures["Customers"] == 5 and figures["Customers covered"] == 2
    assert figures["Inventory rows"] == 6 and figures["Skipped rows"] == 1 and figures["Exit code"] == 1
    assert figures["Coverage %"] == 40.0 and figures["Recognition %"] == 20.0
    assert figures["Run ID"] == run_id and figures["Partner IDs"] == PID  # a partner ID is an identifier: text
    html = paths.html.read_text(encoding="utf-8")
    assert "<dt>Coverage %</dt><dd>40.0</dd>" in html and "<dt>Customers</dt><dd>5</dd>" in html


# -- (d) duplicates ----------------------------------------------------------------------------------------


def test_a_duplicate_row_is_not_an_extra_identity(journal: Journal, tmp_path: Path) -> None:
    """A skipped duplicate of a row (same tenant and client ID) does not add to its customer's identities;
    copies skipped for conflicting partner IDs count once."""
    dup = Outcome(key="skipped|inv.csv:3", customer="Contoso", tenant_id=tid(1).upper(), client_id=cid(1),
                  target_partner_id=PID, status=Status.SKIPPED, error_code="invalid_row",
                  error_message="tenant_id+client_id: duplicate of line 2", source="inv.csv", line=3)
    conflict = [Outcome(key=f"skipped|inv.csv:{n}", customer="Fabrikam", tenant_id=tid(5), client_id=cid(5),
                        target_partner_id=PID, status=Status.SKIPPED, error_code="invalid_row",
                        error_message="partner_id: different partner IDs", source="inv.csv", line=n)
                for n in (4, 5)]
    run_id = record_run(journal, [outcome(1, "Contoso", Status.LINKED), dup, *conflict])
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    customers = {r["customer"]: r for r in csv_rows(paths.customers_csv)}
    assert customers["Contoso"]["identities"] == "1" and customers["Contoso"]["covered"] == "yes"
    assert customers["Fabrikam"]["identities"] == "1"
    assert customers["Contoso"]["statuses"] == "linked: 1; skipped: 1"  # the row itself is still reported


# -- (e) fixes follow the customer's verdict ---------------------------------------------------------------


def test_a_recognised_customer_is_not_told_to_add_a_role(journal: Journal, tmp_path: Path) -> None:
    """One eligible identity recognises the customer, so its row in customers.csv asks for no role."""
    run_id = record_run(journal, [
        outcome(1, "Contoso", Status.LINKED, recognition=RecognitionResult(Recognition.NO_ROLES, 1)),
        outcome(2, "Contoso", Status.LINKED, recognition=RecognitionResult(Recognition.ELIGIBLE, 1)),
        outcome(3, "Fabrikam", Status.LINKED, recognition=RecognitionResult(Recognition.NO_ROLES, 1)),
    ])
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    customers = {r["customer"]: r for r in csv_rows(paths.customers_csv)}
    assert customers["Contoso"]["recognised"] == "yes" and customers["Contoso"]["actions_needed"] == ""
    assert customers["Fabrikam"]["actions_needed"] == report.RECOGNITION_FIX


def test_an_unlink_run_reports_no_link_and_asks_for_no_relink(journal: Journal, tmp_path: Path) -> None:
    """After `unlink`, an `unlinked` row shows no linked partner ID, and a row linked to another partner ID
    (left alone) is not told to relink it."""
    run_id = record_run(journal, [
        outcome(1, "Contoso", Status.UNLINKED, linked_partner_id=PID, partner_name="Contoso Partner"),
        outcome(2, "Northwind", Status.LINKED_ELSEWHERE, linked_partner_id="7654321", partner_name="Other",
                error_message=f"linked to 7654321, not {PID}: left alone"),
    ], command="unlink")
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    rows = {r["customer"]: r for r in csv_rows(paths.identities_csv)}
    assert rows["Contoso"]["linked_partner_id"] == "" and rows["Contoso"]["partner_name"] == ""
    assert rows["Northwind"]["linked_partner_id"] == "7654321"
    customers = {r["customer"]: r for r in csv_rows(paths.customers_csv)}
    assert "relink" not in customers["Northwind"]["actions_needed"]
    assert all("relink" not in str(r["fix"]) for r in sheet(paths.xlsx, "Action needed"))
    assert report.fix_for(Status.LINKED_ELSEWHERE, None, "link").endswith("relink it to the target partner ID")


def test_an_unlinked_identity_is_no_partner_id_change(journal: Journal) -> None:
    """Comparing a linked run with the unlink run lists a lost link, not a partner ID change."""
    run_a = record_run(journal, [outcome(1, "Contoso", Status.ALREADY_LINKED)])
    run_b = record_run(journal, [outcome(1, "Contoso", Status.UNLINKED, linked_partner_id="7654321")],
                       command="unlink", started=T0 + timedelta(days=1))
    c = report.compare_runs(journal, run_a, run_b)
    assert [ch.customer for ch in c.links_lost] == ["Contoso"] and c.partner_id_changes == []
    assert c.links_lost[0].after_partner_id is None


# -- (f) one run's set, swapped in whole -------------------------------------------------------------------


def files_of(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


FIVE = sorted(report.REPORT_FILES)  # one run's set (seven files since changes.csv and summary.html)


def test_a_failed_render_leaves_the_previous_runs_set_whole(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When rendering run B fails halfway, latest/ still holds run A's whole set, B's folder is empty, and no
    temp dir is left."""
    run_a = record_run(journal, golden_outcomes())
    top = tmp_path / "r"
    report.write_reports(journal, run_a, top, now=NOW)
    run_b = record_run(journal, golden_outcomes()[:2], started=T0 + timedelta(days=1))
    d = top / "latest"
    before = {name: (d / name).read_bytes() for name in FIVE}

    def broken(view: object) -> str:
        raise RuntimeError("render failed")

    monkeypatch.setattr(report.write, "render_html", broken)
    with pytest.raises(RuntimeError, match="render failed"):
        report.write_reports(journal, run_b, top, now=NOW)
    assert files_of(d) == FIVE and files_of(top / run_b) == [] and files_of(top / run_a) == FIVE
    assert {name: (d / name).read_bytes() for name in FIVE} == before
    assert json.loads((d / "summary.json").read_text(encoding="utf-8"))["run_id"] == run_a


def test_summary_json_names_the_run_of_its_set(journal: Journal, tmp_path: Path) -> None:
    """After re-rendering another run, summary.json and every row of identities.csv name that run."""
    run_a = record_run(journal, golden_outcomes())
    run_b = record_run(journal, golden_outcomes()[:3], started=T0 + timedelta(days=1))
    d = tmp_path / "r"
    report.write_reports(journal, run_a, d, now=NOW)
    paths = report.write_reports(journal, run_b, d, now=NOW)
    assert json.loads(paths.summary_json.read_text(encoding="utf-8"))["run_id"] == run_b
    assert {r["run_id"] for r in csv_rows(paths.identities_csv)} == {run_b}
    assert files_of(d) == sorted([run_a, run_b, "latest"])
    for folder in (d / run_b, d / "latest"):
        assert files_of(folder) == FIVE
        assert json.loads((folder / "summary.json").read_text(encoding="utf-8"))["run_id"] == run_b


def dead_pid() -> int:
    """The ID of a process that has exited."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    return int(proc.stdout)


def test_stale_temp_dirs_of_a_crashed_write_are_cleaned(journal: Journal, tmp_path: Path) -> None:
    """A `.tmp-*` directory left by a writer that died (with xlsxwriter's temp files in it) is removed by the
    next report write; one of a live writer is left alone; nothing else in the directory is touched."""
    run_id = record_run(journal, golden_outcomes())
    d = tmp_path / "r"
    d.mkdir(mode=0o700)
    stale = d / f".tmp-{run_id}-{dead_pid()}"
    stale.mkdir()
    (stale / "tmpab12cd34").write_bytes(b"xlsxwriter scratch")
    live = d / f".tmp-{run_id}-{os.getppid()}"
    live.mkdir()
    (d / "journal.sqlite").write_bytes(b"keep me")
    report.write_reports(journal, run_id, d, now=NOW)
    assert files_of(d) == sorted([run_id, "latest", "journal.sqlite", live.name])


def test_xlsxwriter_scratch_files_stay_inside_the_temp_dir(
    journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """xlsxwriter is given a tmpdir inside the run's temp dir, never the report directory itself."""
    seen: list[str] = []
    real = report.xlsx.write_xlsx

    def spy(view: Any, path: Path, **kw: Any) -> None:
        seen.append(str(kw.get("tmpdir")))
        real(view, path, **kw)

    monkeypatch.setattr(report.write, "write_xlsx", spy)
    run_id = record_run(journal, golden_outcomes())
    d = tmp_path / "r"
    report.write_reports(journal, run_id, d, now=NOW)
    run_dir = d / run_id
    assert len(seen) == 1 and Path(seen[0]).parent.name.startswith(".tmp-") and Path(seen[0]).parent.parent == run_dir
    assert files_of(run_dir) == FIVE


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Iterator[Path]:
    """A private directory this process cannot create files in (read-only mode; immutable when root)."""
    d = tmp_path / "ro"
    d.mkdir(mode=0o700)
    root = os.geteuid() == 0
    if root:
        if subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode != 0:
            pytest.skip("running as root on a file system without chattr +i: cannot make a directory unwritable")
    else:
        d.chmod(0o500)
    try:
        yield d
    finally:
        if root:
            subprocess.run(["chattr", "-i", str(d)], check=True)
        d.chmod(0o700)


def test_an_unwritable_report_dir_is_a_clear_error(journal: Journal, unwritable_dir: Path) -> None:
    """A report directory that cannot be written raises ReportWriteError (a ReportError, exit 2) with one line
    naming the directory and the fix."""
    run_id = record_run(journal, golden_outcomes())
    with pytest.raises(report.ReportWriteError) as caught:
        report.write_reports(journal, run_id, unwritable_dir, now=NOW)
    message = str(caught.value)
    assert isinstance(caught.value, ReportError) and "\n" not in message
    assert str(unwritable_dir) in message and "--report-dir" in message
    assert list(unwritable_dir.iterdir()) == []
