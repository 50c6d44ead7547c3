"""Coverage reports: golden journals in, exact CSV/JSON out; XLSX and HTML read back and checked."""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from orchestrator import report
from orchestrator.errors import JournalError, ReportError
from orchestrator.journal import Journal
from orchestrator.models import Outcome, Recognition, RecognitionResult, RoleGrant, Status
from orchestrator.report import html as report_html
from orchestrator.report import write_xlsx

T0 = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
PID = "1234567"
SRC = RoleGrant("/subscriptions/s1", "cfd33db0-3dd1-45e3-aa9d-cdbdf3b6f24e", "Support Request Contributor", "yes")


def tid(n: int) -> str:
    return f"{n:08d}-0000-4000-8000-000000000000"


def cid(n: int) -> str:
    return f"{n:08d}-1111-4000-8000-000000000000"


def outcome(n: int, customer: str, status: Status, **kw: Any) -> Outcome:
    """A hand-made outcome for identity number `n`."""
    kw.setdefault("checked_at", T0 + timedelta(minutes=n))
    kw.setdefault("credential_type", "secret")
    kw.setdefault("attempts", 1)
    if status in (Status.LINKED, Status.ALREADY_LINKED, Status.RELINKED):
        kw.setdefault("linked_partner_id", PID)
        kw.setdefault("partner_name", "Contoso Partner")
    return Outcome(
        key=f"{tid(n)}|{cid(n)}", customer=customer, tenant_id=tid(n), client_id=cid(n),
        target_partner_id=PID, status=status, **kw,
    )


def golden_outcomes() -> list[Outcome]:
    """Six identities covering coverage, recognition, expiry, failures, a skipped row and extras."""
    return [
        outcome(1, "Contoso", Status.LINKED, object_id="aaaaaaaa-0000-4000-8000-000000000001",
                credential_expires_on=T0 + timedelta(days=30),
                recognition=RecognitionResult(Recognition.ELIGIBLE, 2, (SRC,)),
                extra=(("region", "emea"), ("cost_center", "CC-1"))),
        outcome(2, "Contoso", Status.CREDENTIAL_EXPIRED, error_code="SecretExpired",
                error_message="secret expired on 2025-02-24", credential_expires_on=T0 - timedelta(days=5),
                extra=(("region", "emea"),)),
        outcome(3, "Fabrikam", Status.ALREADY_LINKED, credential_type="certificate",
                credential_expires_on=T0 + timedelta(days=400),
                recognition=RecognitionResult(Recognition.NO_ROLES, 1), extra=(("owner", "ops@fabrikam.test"),)),
        outcome(4, "Northwind", Status.LINKED_ELSEWHERE, linked_partner_id="7654321", partner_name="Other"),
        outcome(5, "Tailspin", Status.SIGN_IN_FAILED, error_code="AADSTS7000215",
                error_message="AADSTS7000215: Invalid client secret provided.", attempts=3),
        Outcome(key="skipped|inv.csv:7", customer="Wingtip", tenant_id="not-a-guid", client_id="",
                target_partner_id=PID, status=Status.SKIPPED, error_code="invalid_row",
                error_message="tenant_id: not a GUID", source="inv.csv", line=7),
    ]


def record_run(
    journal: Journal, outcomes: list[Outcome], *, started: datetime = T0, inventory: str = "inv.csv",
    command: str = "link", exit_code: int | None = 1, options: dict[str, Any] | None = None,
) -> str:
    """Record a finished run the way the engine does."""
    run_id = journal.start_run(
        command=command, inventory_path=inventory, inventory_sha256="ab" * 32, inventory_rows=len(outcomes),
        skipped=sum(1 for o in outcomes if o.status is Status.SKIPPED), partner_ids=[PID],
        options=options if options is not None else {"expiry_warning_days": 120}, tool_version="0.1.0",
        operator="tester", started_at=started,
    )
    for o in outcomes:
        journal.record_outcome(run_id, o)
    if exit_code is not None:
        journal.finish_run(run_id, exit_code, finished_at=started + timedelta(minutes=10))
    return run_id


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite") as j:
        yield j


@pytest.fixture
def golden(journal: Journal, tmp_path: Path) -> tuple[str, report.ReportPaths]:
    run_id = record_run(journal, golden_outcomes())
    return run_id, report.write_reports(journal, run_id, tmp_path / "reports", now=NOW)


# -- CSV and JSON: exact content ----------------------------------------------------------------------


def test_identities_csv_is_exact(golden: tuple[str, report.ReportPaths]) -> None:
    """identities.csv has the documented columns in order, UTC ISO timestamps, extras in first-seen order."""
    run_id, paths = golden
    r = run_id
    header = ("run_id,customer,tenant_id,client_id,credential_type,target_partner_id,status,linked_partner_id,"
              "partner_name,object_id,error_code,error_message,attempts,credential_expires_on,checked_at,"
              "recognition,subscriptions,qualifying_roles,source,line,key_vault,secret_name,trace_id,correlation_id,"
              "region,cost_center,owner")
    expected = "\r\n".join([
        header,
        f"{r},Contoso,{tid(1)},{cid(1)},secret,{PID},linked,{PID},Contoso Partner,"
        "aaaaaaaa-0000-4000-8000-000000000001,,,1,2025-03-31T09:00:00Z,2025-03-01T09:01:00Z,"
        "eligible,2,Support Request Contributor,,,,,,,emea,CC-1,",
        f"{r},Contoso,{tid(2)},{cid(2)},secret,{PID},credential_expired,,,,SecretExpired,"
        "secret expired on 2025-02-24,1,2025-02-24T09:00:00Z,2025-03-01T09:02:00Z,,,,,,,,,,emea,,",
        f"{r},Fabrikam,{tid(3)},{cid(3)},certificate,{PID},already_linked,{PID},Contoso Partner,,,,1,"
        "2026-04-05T09:00:00Z,2025-03-01T09:03:00Z,no_roles,1,,,,,,,,,,ops@fabrikam.test",
        f"{r},Northwind,{tid(4)},{cid(4)},secret,{PID},linked_elsewhere,7654321,Other,,,,1,,"
        "2025-03-01T09:04:00Z,,,,,,,,,,,,",
        f"{r},Tailspin,{tid(5)},{cid(5)},secret,{PID},sign_in_failed,,,,AADSTS7000215,"
        "AADSTS7000215: Invalid client secret provided.,3,,2025-03-01T09:05:00Z,,,,,,,,,,,,",
        f"{r},Wingtip,not-a-guid,,,{PID},skipped,,,,invalid_row,tenant_id: not a GUID,0,,,,,,inv.csv,7,,,,,,,",
    ]) + "\r\n"
    assert paths.identities_csv.read_bytes().decode("utf-8") == expected
    assert tuple(expected.split("\r\n", 1)[0].split(",")[: len(report.IDENTITY_COLUMNS)]) == report.IDENTITY_COLUMNS


def test_customers_csv_is_exact(golden: tuple[str, report.ReportPaths]) -> None:
    """customers.csv: one row per customer with coverage, recognition, status counts and fixes in words."""
    _, paths = golden
    expected = "\r\n".join([
        "customer,identities,covered,recognised,statuses,actions_needed",
        "Contoso,2,yes,yes,linked: 1; credential_expired: 1,secret expired in Key Vault — rotate it",
        "Fabrikam,1,yes,no,already_linked: 1,"
        "\"assign Support Request Contributor at subscription scope, permanently\"",
        "Northwind,1,no,no,linked_elsewhere: 1,\"linked to a different partner ID — confirm with the customer, "
        "then relink it to the target partner ID\"",
        "Tailspin,1,no,no,sign_in_failed: 1,client secret rejected by Entra ID — rotate it and store the new "
        "value in Key Vault",
        "Wingtip,1,no,no,skipped: 1,\"invalid inventory row — correct it as error_message says, then re-run\"",
    ]) + "\r\n"
    assert paths.customers_csv.read_bytes().decode("utf-8") == expected


def test_summary_json_is_exact(golden: tuple[str, report.ReportPaths], journal: Journal) -> None:
    """summary.json has exactly the contracted keys and figures; summary() returns the same content."""
    run_id, paths = golden
    expected = {
        "schema_version": 1,
        "run_id": run_id,
        "tool_version": "0.1.0",
        "command": "link",
        "inventory": {"path": "inv.csv", "sha256": "ab" * 32, "rows": 6, "skipped": 1},
        "partner_ids": [PID],
        "started_at": "2025-03-01T09:00:00Z",
        "finished_at": "2025-03-01T09:10:00Z",
        "status_counts": {"linked": 1, "already_linked": 1, "linked_elsewhere": 1, "credential_expired": 1,
                          "sign_in_failed": 1, "skipped": 1},
        "customers": {"total": 5, "covered": 2},
        "coverage_percent": 40.0,
        "exit_code": 1,
        "recognition": {"recognised": 1, "recognition_percent": 20.0, "eligible": 1, "not_eligible": 0,
                        "no_roles": 1, "unknown": 0},
        "complete": True,
        "headline": "complete",
        "identities": {"recorded": 6, "inventory": 6, "covered": 2, "coverage_percent": 33.3},
        "baseline_run_id": None,
        "baseline": {},
        "changes": dict.fromkeys(report.CHANGE_KINDS, 0),
        "action_needed": {"total": 4, "rows": [
            {"customer": c, "tenant_id": t, "client_id": k, "status": s, "error_code": e, "fix": report.fix_for(s, e)}
            for c, t, k, s, e in [
                ("Contoso", tid(2), cid(2), "credential_expired", "SecretExpired"),
                ("Northwind", tid(4), cid(4), "linked_elsewhere", None),
                ("Tailspin", tid(5), cid(5), "sign_in_failed", "AADSTS7000215"),
                ("Wingtip", "not-a-guid", "", "skipped", "invalid_row"),
            ]]},
        "files": ["identities.csv", "customers.csv", "changes.csv", "coverage.xlsx", "coverage.html",
                  "summary.html", "summary.json"],
    }
    on_disk = json.loads(paths.summary_json.read_text(encoding="utf-8"))
    assert on_disk == expected
    assert list(on_disk) == list(expected)
    assert report.summary(journal, run_id) == expected


def test_coverage_needs_the_target_partner_id(journal: Journal) -> None:
    """A customer whose only 'linked' row names another partner ID, or whose rows were all skipped, is not covered."""
    run_id = record_run(journal, [
        outcome(1, "A", Status.ALREADY_LINKED, linked_partner_id="999"),
        outcome(2, "B", Status.RELINKED),
        Outcome(key="skipped|x.csv:3", customer="C", tenant_id="", client_id="", target_partner_id=PID,
                status=Status.SKIPPED, error_code="invalid_row", error_message="bad"),
    ])
    s = report.summary(journal, run_id)
    assert s["customers"] == {"total": 3, "covered": 1}
    assert s["coverage_percent"] == 33.3


# -- XLSX ---------------------------------------------------------------------------------------------


def test_xlsx_sheets_charts_filters_and_fixes(golden: tuple[str, report.ReportPaths]) -> None:
    """coverage.xlsx: Summary first with a status chart, then every table with autofilter, frozen header, UTC."""
    _, paths = golden
    wb = openpyxl.load_workbook(paths.xlsx)
    assert wb.sheetnames == ["Summary", "Customers", "Identities", "Action needed", "Expiring credentials",
                             "Changes", "Linked but not recognised"]
    summary_ws = wb["Summary"]
    assert len(summary_ws._charts) == 1  # statuses only: no earlier run of this inventory
    figures = {r[0]: r[1] for r in summary_ws.iter_rows(min_row=3, max_col=2, values_only=True) if r[0]}
    assert figures["Coverage %"] == 40.0 and figures["Customers"] == 5 and figures["linked"] == 1
    for name in wb.sheetnames[1:]:
        ws = wb[name]
        assert ws.freeze_panes == "A2", name
        assert ws.auto_filter.ref and ws.auto_filter.ref.startswith("A1:"), name
        assert ws.column_dimensions["A"].width > 8, name

    ident = wb["Identities"]
    header = [c.value for c in ident[1]]
    assert header[13:15] == ["credential_expires_on (UTC)", "checked_at (UTC)"]
    first = [c.value for c in ident[2]]
    assert first[14] == datetime(2025, 3, 1, 9, 1)  # naive UTC
    assert ident["G2"].fill.fgColor.rgb.endswith("C6EFCE")  # linked is green

    actions = {(r[0], r[3]): r[6] for r in wb["Action needed"].iter_rows(min_row=2, values_only=True)}
    assert actions[("Contoso", "credential_expired")] == "secret expired in Key Vault — rotate it"
    assert actions[("Tailspin", "sign_in_failed")].startswith("client secret rejected by Entra ID")
    assert set(actions) == {("Contoso", "credential_expired"), ("Northwind", "linked_elsewhere"),
                            ("Tailspin", "sign_in_failed"), ("Wingtip", "skipped")}

    expiring = list(wb["Expiring credentials"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[2], r[5]) for r in expiring] == [("Contoso", cid(2), -5), ("Contoso", cid(1), 29)]
    assert expiring[0][7] == "expired — rotate it now"

    unrec = list(wb["Linked but not recognised"].iter_rows(min_row=2, values_only=True))
    assert [(r[0], r[4], r[7]) for r in unrec] == [
        ("Fabrikam", "no_roles", "assign Support Request Contributor at subscription scope, permanently")]
    changes = list(wb["Changes"].iter_rows(min_row=2, values_only=True))
    assert changes[0][0].startswith("(none) No earlier finished link or audit run")


def test_expiry_window_follows_the_option(journal: Journal, tmp_path: Path) -> None:
    """expiry_warning_days widens the Expiring credentials sheet (400 days reaches the certificate)."""
    run_id = record_run(journal, golden_outcomes())
    paths = report.write_reports(journal, run_id, tmp_path / "r", expiry_warning_days=500, now=NOW)
    rows = list(openpyxl.load_workbook(paths.xlsx)["Expiring credentials"].iter_rows(min_row=2, values_only=True))
    assert [r[2] for r in rows] == [cid(2), cid(1), cid(3)]


def test_history_chart_and_changes_with_an_earlier_run(journal: Journal, tmp_path: Path) -> None:
    """With an earlier audit of the same identities the Summary gets a coverage-per-run chart (a run of other
    identities is not on it) and each identity's change since that baseline is listed."""
    before = [outcome(1, "Contoso", Status.CREDENTIAL_EXPIRED), outcome(2, "Fabrikam", Status.NOT_LINKED)]
    after = [outcome(1, "Contoso", Status.LINKED), outcome(2, "Fabrikam", Status.NOT_LINKED)]
    record_run(journal, before, command="audit")
    record_run(journal, [outcome(9, "Other", Status.LINKED)], inventory="other.csv", started=T0 + timedelta(hours=1))
    run_b = record_run(journal, after, started=T0 + timedelta(days=1))
    paths = report.write_reports(journal, run_b, tmp_path / "r", now=NOW)
    wb = openpyxl.load_workbook(paths.xlsx)
    assert len(wb["Summary"]._charts) == 2
    history = [r for r in wb["Summary"].iter_rows(values_only=True) if r[0] and str(r[0]).startswith("2025")]
    assert [(r[1], r[2]) for r in history] == [("2025-03-01 09:00", 0.0), ("2025-03-02 09:00", 50.0)]
    changes = [r[:6] for r in wb["Changes"].iter_rows(min_row=2, values_only=True)]
    assert changes == [("Contoso", tid(1), cid(1), "credential_expired", "linked", "newly_linked")]
    html = paths.html.read_text(encoding="utf-8")
    assert 'id="chart-coverage"' in html and html.count('class="run"') == 2
    assert ">2025-03-02</text>" in html and ">09:00</text>" in html


def test_big_tables_split_over_sheets_with_a_note(golden: tuple[str, report.ReportPaths], journal: Journal,
                                                  tmp_path: Path) -> None:
    """A table longer than a sheet's row limit continues on 'Name (2)' and the Summary says so."""
    run_id, _ = golden
    view = report.build_view(journal, run_id, now=NOW)
    path = tmp_path / "split.xlsx"
    write_xlsx(view, path, max_rows=4)
    wb = openpyxl.load_workbook(path)
    assert "Identities (2)" in wb.sheetnames and "Identities (3)" not in wb.sheetnames
    assert wb["Identities"].max_row == 5 and wb["Identities (2)"].max_row == 3
    notes = [r[0] for r in wb["Summary"].iter_rows(values_only=True) if r[0]]
    assert any("Identities has 6 rows" in n and "Identities (2)" in n for n in notes)


# -- safety -------------------------------------------------------------------------------------------

HOSTILE = ["=HYPERLINK(\"http://x.test\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd",
           "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "a&b \"q\" 'q'"]


def hostile_run(journal: Journal) -> str:
    """Every hostile string as a customer name, an extra column value and an extra column name."""
    outcomes = []
    for i, text in enumerate(HOSTILE, start=1):
        outcomes.append(outcome(i, text, Status.SIGN_IN_FAILED if i % 2 else Status.LINKED,
                                error_message=text, partner_name=text,
                                extra=(("note", text), (text, "value"))))
    return record_run(journal, outcomes)


def test_hostile_text_never_becomes_a_formula_or_markup(journal: Journal, tmp_path: Path) -> None:
    """Formula triggers stay text: zero <f> cells in the XLSX, `'`-prefixed in CSV, escaped in HTML."""
    run_id = hostile_run(journal)
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)

    with zipfile.ZipFile(paths.xlsx) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/")]
        assert sheets
        for name in sheets:
            xml = z.read(name).decode()
            assert "<f>" not in xml and "<f " not in xml, name
    wb = openpyxl.load_workbook(paths.xlsx)
    customers = [r[0] for r in wb["Customers"].iter_rows(min_row=2, values_only=True)]
    assert [c.replace("_x000D_", "\r") if isinstance(c, str) else c for c in customers] == HOSTILE

    rows = list(csv.DictReader(paths.identities_csv.open(encoding="utf-8", newline="")))
    for row, text in zip(rows, HOSTILE, strict=True):
        expected = "'" + text if text[0] in "=+-@\t\r" else text
        assert row["customer"] == expected and row["note"] == expected and row["error_message"] == expected
        assert row["tenant_id"] == row["tenant_id"].lstrip("'")  # GUIDs are never touched
    header = next(csv.reader(paths.identities_csv.open(encoding="utf-8", newline="")))
    assert all(not h.startswith(("=", "+", "-", "@", "\t", "\r")) for h in header)
    for cell in (r[0] for r in csv.reader(paths.customers_csv.open(encoding="utf-8", newline=""))):
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))

    html = paths.html.read_text(encoding="utf-8")
    tags = TagCollector.of(html)
    assert "script" not in tags and tags.count("img") == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert not re.search(r"https?://", html.replace("http://x.test", "").replace("http://www.w3.org/2000/svg", ""))


def test_secrets_are_redacted_from_every_report(journal: Journal, tmp_path: Path) -> None:
    """A token in an error message, a private key, or a secret-named extra column never reaches a report."""
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4eHh4eHh4In0.c2lnbmF0dXJlc2lnbmF0dXJl"
    pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----"
    run_id = record_run(journal, [
        outcome(1, "Contoso", Status.FAILED, error_message=f"boom Bearer {jwt} and {pem}",
                extra=(("client_secret", "hunter2-very-secret"), ("secret_name", "kv-name"))),
    ])
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    for path in (paths.identities_csv, paths.customers_csv, paths.summary_json, paths.html):
        text = path.read_text(encoding="utf-8")
        for secret in (jwt, "hunter2-very-secret", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"):
            assert secret not in text, path
    with zipfile.ZipFile(paths.xlsx) as z:
        blob = b"".join(z.read(n) for n in z.namelist()).decode("utf-8", "replace")
    assert jwt not in blob and "hunter2-very-secret" not in blob and "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" not in blob
    assert "kv-name" in paths.identities_csv.read_text(encoding="utf-8")  # a secret's *name* is not a secret


def test_report_files_are_0600_whatever_the_umask(journal: Journal, tmp_path: Path) -> None:
    """Every report file is created 0600 even under umask 000, and a new report directory is 0700."""
    run_id = record_run(journal, golden_outcomes())
    old = os.umask(0)
    try:
        paths = report.write_reports(journal, run_id, tmp_path / "fresh" / "reports", now=NOW)
        report.write_reports(journal, run_id, tmp_path / "fresh" / "reports", now=NOW)  # re-render replaces
    finally:
        os.umask(old)
    assert stat.S_IMODE(paths.html.parent.stat().st_mode) == 0o700
    for p in (paths.identities_csv, paths.customers_csv, paths.summary_json, paths.xlsx, paths.html):
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert sorted(x.name for x in paths.html.parent.iterdir()) == sorted(report.REPORT_FILES)
    assert paths.latest is not None and stat.S_IMODE(paths.latest.stat().st_mode) == 0o700
    for p in paths.latest.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o777])
def test_group_or_world_writable_report_dir_is_refused(tmp_path: Path, mode: int, journal: Journal) -> None:
    """A report directory others can write to is refused with ReportError naming the fix."""
    d = tmp_path / "shared"
    d.mkdir()
    d.chmod(mode)
    with pytest.raises(ReportError, match=r"group- or world-writable .*chmod go-w"):
        report.check_report_dir(d)
    run_id = record_run(journal, golden_outcomes())
    with pytest.raises(ReportError):
        report.write_reports(journal, run_id, d, now=NOW)
    assert list(d.iterdir()) == []


def test_report_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    """A path that exists but is not a directory is refused with ReportError."""
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(ReportError, match="not a directory"):
        report.check_report_dir(f)


# -- comparison and listing ----------------------------------------------------------------------------


def comparison_runs(journal: Journal) -> tuple[str, str]:
    """Two runs of one inventory with one change of every kind."""
    a = [
        outcome(1, "Alpha", Status.NOT_LINKED),
        outcome(2, "Beta", Status.ALREADY_LINKED),
        outcome(3, "Gamma", Status.ALREADY_LINKED),
        outcome(4, "Delta", Status.CREDENTIAL_EXPIRED),
        outcome(5, "Eps", Status.ALREADY_LINKED),
        outcome(6, "Zeta", Status.ALREADY_LINKED),
    ]
    b = [
        outcome(1, "Alpha", Status.LINKED),
        outcome(2, "Beta", Status.LINKED_ELSEWHERE, linked_partner_id="7654321"),
        outcome(3, "Gamma", Status.SIGN_IN_FAILED, error_code="AADSTS7000222"),
        outcome(4, "Delta", Status.NOT_LINKED),
        outcome(5, "Eps", Status.ALREADY_LINKED),
        outcome(7, "Eta", Status.LINKED),
    ]
    return record_run(journal, a), record_run(journal, b, started=T0 + timedelta(days=90))


def test_compare_runs_finds_every_kind_of_change(journal: Journal) -> None:
    """compare_runs matches keys: newly linked, links lost, partner ID changes, new/fixed failures, customers."""
    run_a, run_b = comparison_runs(journal)
    c = report.compare_runs(journal, run_a, run_b)
    assert (c.run_a, c.run_b) == (run_a, run_b)
    assert [ch.customer for ch in c.newly_linked] == ["Alpha", "Eta"]
    assert c.newly_linked[1].before_status is None
    assert [(ch.customer, ch.before_status, ch.after_status) for ch in c.links_lost] == [
        ("Beta", "already_linked", "linked_elsewhere")]
    assert [(ch.customer, ch.before_partner_id, ch.after_partner_id) for ch in c.partner_id_changes] == [
        ("Beta", PID, "7654321")]
    assert [(ch.customer, ch.error_code) for ch in c.new_failures] == [("Gamma", "AADSTS7000222")]
    assert [(ch.customer, ch.after_status) for ch in c.fixed_failures] == [("Delta", "not_linked")]
    assert c.customers_gained == ["Alpha", "Eta"]
    assert c.customers_lost == ["Beta", "Gamma"]
    assert not c.empty
    assert report.compare_runs(journal, run_b, run_b).empty


def test_default_comparison_is_the_latest_run_and_its_baseline(journal: Journal) -> None:
    """default_comparison compares the latest run with its baseline (by identity, whatever the file is called);
    with an inventory path, or without a baseline, the last two runs of that inventory."""
    run_a, run_b = comparison_runs(journal)
    record_run(journal, [outcome(99, "X", Status.LINKED)], inventory="other.csv", started=T0 + timedelta(days=100))
    assert report.default_comparison(journal, "inv.csv") == (run_a, run_b)
    with pytest.raises(JournalError, match="comparing needs two"):
        report.default_comparison(journal)  # the latest run shares no identity with another and its file has one run
    run_c = record_run(journal, [outcome(1, "A", Status.LINKED)], inventory="renamed.csv",
                       started=T0 + timedelta(days=200))
    assert report.default_comparison(journal) == (run_b, run_c)


def test_render_comparison_is_readable_text(journal: Journal) -> None:
    """render_comparison prints one headed block per kind of change with the before → after states."""
    c = report.compare_runs(journal, *comparison_runs(journal))
    text = report.render_comparison(c)
    assert text.startswith(f"Changes from run {c.run_a} to run {c.run_b}\n")
    assert "Newly linked (2)\n  Alpha  tenant " in text
    assert f"Beta  tenant {tid(2)}  client {cid(2)}: already_linked → linked_elsewhere" in text
    assert f": {PID} → 7654321" in text
    assert "sign_in_failed (AADSTS7000222)" in text
    assert "Customers that lost coverage (2)\n  Beta\n  Gamma\n" in text
    assert report.render_comparison(report.compare_runs(journal, c.run_b, c.run_b)).endswith("No changes.\n")


def test_runs_table_lists_every_run_with_counts(journal: Journal) -> None:
    """runs_table: one row per run, oldest first, with identities, failures, coverage %."""
    run_a, run_b = comparison_runs(journal)
    rows = report.runs_table(journal)
    assert [r["run_id"] for r in rows] == [run_a, run_b]
    assert rows[0] == {
        "run_id": run_a, "started_at": "2025-03-01T09:00:00Z", "finished_at": "2025-03-01T09:10:00Z",
        "command": "link", "inventory": "inv.csv", "identities": 6, "linked": 4, "failed": 1, "skipped": 0,
        "customers": 6, "covered": 4, "coverage_percent": 66.7, "exit_code": 1, "baseline": None,
    }
    assert rows[1]["coverage_percent"] == 50.0 and rows[1]["baseline"] == run_a


# -- odd runs ------------------------------------------------------------------------------------------


def test_empty_and_unfinished_runs_still_render(journal: Journal, tmp_path: Path) -> None:
    """A run with no outcomes, not finished, renders every file with zero figures and a note."""
    run_id = record_run(journal, [], exit_code=None)
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    s = json.loads(paths.summary_json.read_text(encoding="utf-8"))
    assert s["finished_at"] is None and s["exit_code"] is None
    assert s["customers"] == {"total": 0, "covered": 0} and s["coverage_percent"] == 0.0
    assert paths.identities_csv.read_text(encoding="utf-8").startswith("run_id,customer,")
    assert "has not finished" in paths.html.read_text(encoding="utf-8")
    assert openpyxl.load_workbook(paths.xlsx).sheetnames[0] == "Summary"


def test_unknown_run_is_a_journal_error(journal: Journal, tmp_path: Path) -> None:
    """Asking for a run that is not in the journal raises JournalError and writes nothing."""
    with pytest.raises(JournalError, match="no run"):
        report.write_reports(journal, "nope", tmp_path / "r")
    assert list((tmp_path / "r").iterdir()) == []


def test_every_status_needing_action_has_one_fix() -> None:
    """Each failure or not-linked status maps to a fix text; known error codes override; linked needs none."""
    for status in report.FAILURE_STATUSES | report.NOT_LINKED_STATUSES - {Status.UNLINKED}:
        assert report.fix_for(status), status
    for status in (Status.LINKED, Status.ALREADY_LINKED, Status.RELINKED, Status.UNLINKED):
        assert report.fix_for(status) == ""
    assert report.fix_for(Status.CREDENTIAL_EXPIRED) == "secret expired in Key Vault — rotate it"
    assert report.fix_for(Status.SIGN_IN_FAILED, "7000222").startswith("client secret expired in Entra ID")
    assert report.fix_for(Status.NOT_LINKED, None, "unlink") == ""


def test_html_caps_big_tables_with_a_note(journal: Journal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables longer than the HTML cap show the first rows and point at the CSV for the rest."""
    monkeypatch.setattr(report_html, "HTML_ROW_CAP", 3)
    run_id = record_run(journal, golden_outcomes())
    paths = report.write_reports(journal, run_id, tmp_path / "r", now=NOW)
    html = paths.html.read_text(encoding="utf-8")
    section = html.split('id="t-identities"', 1)[1].split("</section>", 1)[0]
    assert section.count("<tr>") == 4  # header + 3 rows
    assert "Showing the first 3 of 6 rows; every row is in identities.csv and coverage.xlsx." in section


def test_bench_render_reports_time_and_memory(tmp_path: Path) -> None:
    """bench_render (the benchmark's entry point) renders a synthetic run and returns its figures."""
    result = report.bench_render(300, tmp_path / "bench")
    assert result["identities"] == 300 and result["render_s"] > 0 and result["peak_rss_mib"] > 0
    assert (tmp_path / "bench" / "reports" / "latest" / "coverage.xlsx").exists()


# -- HTML in a real browser ----------------------------------------------------------------------------


class TagCollector(HTMLParser):
    """Collects start tags (and ids) of an HTML document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.ids.update(v for k, v in attrs if k == "id" and v)

    @classmethod
    def of(cls, html: str) -> list[str]:
        parser = cls()
        parser.feed(html)
        return parser.tags


def test_html_is_self_contained(golden: tuple[str, report.ReportPaths]) -> None:
    """coverage.html loads nothing from outside: no script, no link, no URL but the SVG namespace."""
    _, paths = golden
    html = paths.html.read_text(encoding="utf-8")
    tags = TagCollector.of(html)
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert re.findall(r"(?:https?:)?//[\w.-]+", html) == ["http://www.w3.org"] * html.count("http://www.w3.org")
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


# -- package layout ------------------------------------------------------------------------------------


def _report_imports() -> dict[str, set[str]]:
    """Each module of orchestrator/report/ → the modules it imports (package-relative names for its siblings)."""
    found: dict[str, set[str]] = {}
    for path in Path(report.__file__).parent.glob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module if node.level == 1 else node.module.split(".")[0])
        found[path.stem] = names
    return found


def test_the_columns_alone_import_pandas_and_outputs_import_nothing_back() -> None:
    """Arrows point one way: only the view's columns (`rows`: pandas codes the repeated values) import pandas, only
    they and the customers' figures numpy; outputs use the view, never write or each other."""
    imports = _report_imports()
    assert {name for name, names in imports.items() if "pandas" in names} == {"rows"}
    assert {name for name, names in imports.items() if "numpy" in names} == {"rows", "customers"}
    for output in ("tables", "xlsx", "html"):
        assert not imports[output] & {"write", "synthetic", "tables", "xlsx", "html"} - {output}, output
    for lower in ("rules", "comparison", "view", "files"):
        assert not imports[lower] & {"tables", "xlsx", "html", "write", "synthetic"}, lower
