"""Lighthouse in the coverage set and the comparison: hand-made journals in, HTML, text, JSON and CSV checked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from test_report import PID, T0, golden_outcomes, record_run

from orchestrator.journal import Journal
from orchestrator.models import LighthouseRow, LighthouseVerdict
from orchestrator.report import html as report_html
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
