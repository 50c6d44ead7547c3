"""Lighthouse in the coverage set and the comparison: hand-made journals in, HTML, text, JSON and CSV checked."""

from __future__ import annotations

import csv
import io
import json
import re
import stat
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from test_report import PID, T0, golden_outcomes, record_run
from typer.testing import CliRunner

from orchestrator import report
from orchestrator.cli import app
from orchestrator.journal import Journal
from orchestrator.models import LighthouseRow, LighthouseVerdict
from orchestrator.report import html as report_html
from orchestrator.report.lighthouse import write_lighthouse_reports
from orchestrator.report.view import build_view

V = LighthouseVerdict


def customer_tenant(n: int) -> str:
    return f"{n:08d}-2222-4000-8000-000000000000"


def record_lighthouse(journal: Journal, verdicts: dict[int, tuple[str, V]], *, started: timedelta = timedelta(0),
                      partner_id: str = PID) -> str:
    """A finished lighthouse run: customer number → (name, verdict), one subscription each."""
    start = T0 + started
    run_id = journal.start_run(
        command="lighthouse", inventory_path="lighthouse:journal", inventory_sha256="cd" * 32, inventory_rows=0,
        skipped=0, partner_ids=[partner_id], options={}, tool_version="0.1.0", operator="tester", started_at=start,
    )
    for n, (name, verdict) in verdicts.items():
        journal.record_lighthouse(run_id, LighthouseRow(
            customer_tenant(n), f"{n:08d}-3333-4000-8000-000000000000", f"Offer {n}", f"{n:08d}-4444-4000-8000-0",
            verdict, "why", "fix", f"Sub {n}", name, checked_at=start))
    journal.finish_run(run_id, 1, finished_at=start + timedelta(minutes=5))
    return run_id


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite") as j:
        yield j


# -- coverage.html ---------------------------------------------------------------------------------


def test_coverage_html_charts_lighthouse_customers_recognised_against_not(journal: Journal) -> None:
    """The Lighthouse customers section opens with an inline SVG: recognised (marketplace too) vs not, escaped."""
    record_lighthouse(journal, {1: ("Margie's <Travel>", V.RECOGNISED), 2: ("Adatum", V.MARKETPLACE),
                                3: ("Tailspin", V.NO_PEC_ROLE), 4: ("Wingtip", V.ELIGIBLE_ONLY),
                                5: ("Fourth", V.UNREADABLE)})
    run_id = record_run(journal, golden_outcomes(), started=T0 + timedelta(hours=1))
    page = report_html_of(journal, run_id)
    section = page[page.index('<section id="t-lighthouse-customers">'):]
    section = section[: section.index("</section>")]
    chart = re.search(r'<svg id="chart-lighthouse".*?</svg>', section)
    assert chart is not None, "the chart sits in the Lighthouse customers section"
    bars = dict(re.findall(r'<g class="bar" data-verdict="([^"]+)">.*?<text[^>]*>(\d+)</text></g>', chart.group(0)))
    assert bars == {"recognised": "2", "not recognised": "3"}
    assert "Margie&#x27;s &lt;Travel&gt;" in section and "<Travel>" not in page
    assert "http" not in chart.group(0).replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_coverage_html_without_a_lighthouse_run_has_no_lighthouse_chart(journal: Journal) -> None:
    """A partner without Lighthouse keeps the page it had: no section, no chart."""
    run_id = record_run(journal, golden_outcomes())
    page = report_html_of(journal, run_id)
    assert "chart-lighthouse" not in page and "t-lighthouse-customers" not in page


def report_html_of(journal: Journal, run_id: str) -> str:
    return report_html.render_html(build_view(journal, run_id, now=T0 + timedelta(days=1)))


# -- report --compare ------------------------------------------------------------------------------


def compared_journal(journal: Journal) -> tuple[str, str, str, str]:
    """Two link runs and, after each, a lighthouse run of the same partner: Adatum loses recognition, Tailspin
    gains it, Wingtip (recognised, no longer delegating) loses it; another partner's lighthouse run comes last."""
    link_a = record_run(journal, golden_outcomes())
    lh_a = record_lighthouse(journal, {1: ("Adatum", V.RECOGNISED), 2: ("Tailspin", V.NO_PEC_ROLE),
                                       3: ("Wingtip", V.MARKETPLACE), 4: ("Fourth", V.UNREADABLE)},
                             started=timedelta(hours=1))
    link_b = record_run(journal, golden_outcomes(), started=T0 + timedelta(days=90))
    lh_b = record_lighthouse(journal, {1: ("Adatum", V.ELIGIBLE_ONLY), 2: ("Tailspin", V.RECOGNISED),
                                       4: ("Fourth", V.UNREADABLE)}, started=timedelta(days=90, hours=1))
    record_lighthouse(journal, {1: ("Adatum", V.NO_PEC_ROLE)}, started=timedelta(days=91), partner_id="7654321")
    return link_a, lh_a, link_b, lh_b


def test_compare_lists_lighthouse_customers_that_lost_or_gained_recognition(journal: Journal) -> None:
    """Comparing two link runs also compares the partner's last two lighthouse runs, customer by customer."""
    link_a, lh_a, link_b, lh_b = compared_journal(journal)
    c = report.compare_runs(journal, link_a, link_b)
    assert (c.lighthouse_run_a, c.lighthouse_run_b) == (lh_a, lh_b)
    lost = {(ch.tenant_id, ch.customer, ch.before_status, ch.after_status) for ch in c.lighthouse_lost}
    assert lost == {(customer_tenant(1), "Adatum", "recognised", "eligible_only"),
                    (customer_tenant(3), "Wingtip", "marketplace", None)}
    assert [(ch.customer, ch.after_status) for ch in c.lighthouse_gained] == [("Tailspin", "recognised")]
    assert not c.empty and report.compare_runs(journal, lh_a, lh_b).lighthouse_lost == c.lighthouse_lost
    text = report.render_comparison(c)
    assert f"Lighthouse customers that lost recognition (2) — lighthouse run {lh_a} → {lh_b}" in text
    assert f"  Adatum  tenant {customer_tenant(1)}: recognised → eligible_only" in text
    assert f"  Wingtip  tenant {customer_tenant(3)}: marketplace → absent" in text


def test_compare_without_lighthouse_runs_keeps_its_output(journal: Journal) -> None:
    """No lighthouse run (or only one) for the partner: no Lighthouse block, empty lists, runs None."""
    link_a = record_run(journal, golden_outcomes())
    record_lighthouse(journal, {1: ("Adatum", V.RECOGNISED)}, started=timedelta(hours=1))
    link_b = record_run(journal, golden_outcomes(), started=T0 + timedelta(days=90))
    c = report.compare_runs(journal, link_a, link_b)
    assert c.empty and (c.lighthouse_lost, c.lighthouse_gained, c.lighthouse_run_a) == ([], [], None)
    assert "Lighthouse" not in report.render_comparison(c)


def test_compare_json_and_csv_append_the_lighthouse_changes(journal: Journal) -> None:
    """`report --compare --output json|csv`: the existing keys/rows first, the Lighthouse ones appended."""
    link_a, lh_a, link_b, lh_b = compared_journal(journal)
    common = ["report", "--compare", link_a, link_b, "--journal", str(journal.path)]
    as_json = CliRunner().invoke(app, [*common, "--output", "json"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert list(data)[:9] == ["run_a", "run_b", "newly_linked", "links_lost", "partner_id_changes", "new_failures",
                              "fixed_failures", "customers_gained", "customers_lost"]
    assert [c["customer"] for c in data["lighthouse_lost"]] == ["Adatum", "Wingtip"]
    assert data["lighthouse_gained"][0]["tenant_id"] == customer_tenant(2)
    assert (data["lighthouse_run_a"], data["lighthouse_run_b"]) == (lh_a, lh_b)
    as_csv = CliRunner().invoke(app, [*common, "--output", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    kinds = [r["change"] for r in rows]
    assert kinds[-3:] == ["lighthouse_lost", "lighthouse_lost", "lighthouse_gained"]
    assert rows[-1]["customer"] == "Tailspin" and rows[-1]["tenant_id"] == customer_tenant(2)
    assert rows[-1]["before_status"] == "no_pec_role" and rows[-1]["after_status"] == "recognised"


# -- where the lighthouse files go -----------------------------------------------------------------


def test_lighthouse_files_go_into_the_run_folder_and_latest_beside_the_coverage_set(journal: Journal,
                                                                                     tmp_path: Path) -> None:
    """lighthouse.csv/json go into <run_id>/, and into latest/ for the latest finished lighthouse run only, where
    the coverage set is left as it was; never flat into the report directory."""
    reports = tmp_path / "reports"
    lh_a = record_lighthouse(journal, {1: ("Adatum", V.RECOGNISED)})
    link = record_run(journal, golden_outcomes(), started=T0 + timedelta(hours=1))
    lh_b = record_lighthouse(journal, {2: ("Tailspin", V.NO_PEC_ROLE)}, started=timedelta(hours=2))
    coverage = report.write_reports(journal, link, reports, now=T0 + timedelta(days=1))
    latest = reports / "latest"
    before = {p.name: p.read_bytes() for p in latest.iterdir()}
    csv_path, json_path = write_lighthouse_reports(journal, lh_b, reports)
    assert (csv_path, json_path) == (reports / lh_b / "lighthouse.csv", reports / lh_b / "lighthouse.json")
    assert json.loads((latest / "lighthouse.json").read_text())["run_id"] == lh_b
    assert (latest / "lighthouse.csv").read_bytes() == csv_path.read_bytes()
    assert {p.name: p.read_bytes() for p in latest.iterdir() if p.name in before} == before
    assert coverage.latest == latest and stat.S_IMODE((latest / "lighthouse.csv").stat().st_mode) == 0o600
    write_lighthouse_reports(journal, lh_a, reports)  # an older run re-rendered: its folder only
    assert json.loads((reports / lh_a / "lighthouse.json").read_text())["run_id"] == lh_a
    assert json.loads((latest / "lighthouse.json").read_text())["run_id"] == lh_b
    assert not (reports / "lighthouse.csv").exists() and not (reports / "lighthouse.json").exists()
    assert not [p for p in (*reports.iterdir(), *latest.iterdir()) if p.name.startswith(".tmp-")]
    report.write_reports(journal, link, reports, now=T0 + timedelta(days=1))  # coverage rewritten: lighthouse stays
    assert json.loads((latest / "lighthouse.json").read_text())["run_id"] == lh_b
