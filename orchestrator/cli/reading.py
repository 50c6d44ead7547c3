"""Commands that only read: validate an inventory, render or compare reports, list runs."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..journal import DEFAULT_JOURNAL

if TYPE_CHECKING:
    pass

from .app import _errors, app, err, examples, out
from .options import (
    BaselineOpt,
    InventoryArg,
    JournalOpt,
    Output,
    OutputOpt,
    ReportDirOpt,
    SummaryMdOpt,
    _run_kwargs,
    run_options,
)
from .terminal import write_summary_md


class ReportOutput(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command(epilog=examples(
    "pal-orchestrator validate customers.csv",
    "pal-orchestrator validate customers.xlsx --sheet Tenants --partner-id 4812345",
))
@run_options
def validate(inventory: InventoryArg, *, shared: dict[str, Any]) -> None:
    """Check an inventory without signing in anywhere: every problem as FILE:LINE: column: what — fix.

    Takes every option a run takes (so a `link` command line works with `validate`), and uses those that shape
    the inventory: --partner-id, --key-vault, --cloud, --sheet, and the vault trust options.
    """
    from ..models import Command
    from ..runner import RunOptions, load_trusted

    with _errors():
        inv = load_trusted(RunOptions(command=Command.PLAN, inventory=str(inventory), **_run_kwargs(shared)))
    for warning in inv.warnings:
        err.print(f"warning: {warning}", markup=False)
    for problem in inv.problems:
        out.print(str(problem), markup=False)
    bad = len(inv.skipped)
    err.print(f"{inventory}: {inv.rows} rows, {len(inv.identities)} valid, {bad} invalid", markup=False)
    raise typer.Exit(2 if bad or not inv.identities else 0)


@app.command(epilog=examples(
    "pal-orchestrator report",
    "pal-orchestrator report 20261128T085400Z-1a2b3c4d",
    "pal-orchestrator report --compare",
    "pal-orchestrator report 20261128T085400Z-1a2b3c4d --baseline 20260901T060000Z-9f8e7d6c --summary-md summary.md",
))
def report(
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Run to render (default: the latest); with --compare, the two runs RUN_A RUN_B."),
    ] = None,
    journal: JournalOpt = Path(DEFAULT_JOURNAL),
    report_dir: ReportDirOpt = Path("reports"),
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Compare RUN_A RUN_B (default: the latest run and its baseline)."),
    ] = False,
    expiry_warning_days: Annotated[
        int | None,
        typer.Option("--expiry-warning-days", min=0, help="Default: the value the run was made with (120)."),
    ] = None,
    baseline: BaselineOpt = None,
    summary_md: SummaryMdOpt = None,
    output: Annotated[
        ReportOutput,
        typer.Option("--output", envvar="PAL_OUTPUT",
                     help="What goes to stdout: the comparison (or the files written) as a table, JSON or CSV."),
    ] = ReportOutput.table,
) -> None:
    """Re-render the reports of a run from the journal (`report [RUN_ID]`), or compare two (`report --compare`)."""
    from ..journal import Journal
    from ..report import compare_runs, default_comparison, write_reports

    ids = run_ids or []
    if len(ids) > (2 if compare else 1) or (compare and len(ids) == 1):
        err.print("error: `report [RUN_ID]` renders one run; `report --compare [RUN_A RUN_B]` compares two")
        raise typer.Exit(2)
    with _errors(), Journal(journal, read_only=True) as j:
        runs = j.runs()
        if not runs:
            err.print(f"no runs in {journal}", markup=False)
            raise typer.Exit(2)
        if compare:
            a, b = ids if ids else default_comparison(j)
            _print_comparison(compare_runs(j, a, b), output)
            return
        # the latest coverage run by default: a `lighthouse` run has its own files (lighthouse.csv/json)
        rid = ids[0] if ids else next((r.run_id for r in reversed(runs) if r.command != "lighthouse"), runs[-1].run_id)
        if j.run(rid).command == "lighthouse":
            from ..report.lighthouse import is_last_lighthouse_run, write_lighthouse_reports

            written = write_lighthouse_reports(j, rid, report_dir)[0].parent
            latest = f" and {written.parent / 'latest'}/" if is_last_lighthouse_run(j, rid) else ""
            err.print(f"lighthouse reports for run {rid} written to {written}/{latest}", markup=False)
            return
        recorded = j.run(rid).options
        days = expiry_warning_days if expiry_warning_days is not None else int(recorded.get("expiry_warning_days", 120))
        paths = write_reports(j, rid, report_dir, expiry_warning_days=days,
                              baseline_id=baseline or recorded.get("baseline"))
    latest = f" and {paths.latest}/" if paths.latest else ""
    err.print(f"reports for run {rid} written to {paths.directory}/{latest}", markup=False)
    if output is ReportOutput.json:
        files = sorted(str(p) for p in paths.directory.iterdir() if p.is_file())
        out.print_json(json.dumps({"run_id": rid, "directory": str(paths.directory),
                                   "latest": str(paths.latest) if paths.latest else None, "files": files}))
    write_summary_md(paths.directory, summary_md)


_CHANGE_KINDS = ("newly_linked", "links_lost", "partner_id_changes", "new_failures", "fixed_failures")


def _print_comparison(comparison: Any, output: ReportOutput) -> None:
    """The comparison as text, JSON (the whole Comparison) or CSV (one row per change, customers as rows too;
    Lighthouse customers last, tenant in `tenant_id`, verdicts in `before_status`/`after_status`)."""
    from ..report import Change, csv_safe, render_comparison

    if output is ReportOutput.table:
        out.print(render_comparison(comparison), markup=False)
        return
    if output is ReportOutput.json:
        out.print_json(json.dumps(dataclasses.asdict(comparison)))
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    fields = [f.name for f in dataclasses.fields(Change)]
    writer.writerow(["run_a", "run_b", "change", *fields])
    for kind in _CHANGE_KINDS:
        for change in getattr(comparison, kind):
            writer.writerow([comparison.run_a, comparison.run_b, kind,
                             *(csv_safe(str(getattr(change, f) or "")) for f in fields)])
    for kind in ("customers_gained", "customers_lost"):
        for customer in getattr(comparison, kind):
            blanks = [""] * (len(fields) - 2)
            writer.writerow([comparison.run_a, comparison.run_b, kind, "", csv_safe(customer), *blanks])
    for kind in ("lighthouse_lost", "lighthouse_gained"):  # appended after the rows above: their order is stable
        for change in getattr(comparison, kind):
            writer.writerow([comparison.run_a, comparison.run_b, kind,
                             *(csv_safe(str(getattr(change, f) or "")) for f in fields)])
    sys.stdout.write(buffer.getvalue())


@app.command(epilog=examples(
    "pal-orchestrator runs",
    "pal-orchestrator runs --output json",
))
def runs(journal: JournalOpt = Path(DEFAULT_JOURNAL), output: OutputOpt = Output.table) -> None:
    """List the runs in the journal: ID, date, inventory, counts, coverage, and the run each is compared with."""
    from ..journal import Journal
    from ..report import runs_table

    with _errors(), Journal(journal, read_only=True) as j:
        rows = runs_table(j)
    if output is Output.json:
        out.print_json(json.dumps(rows, default=str))
        return
    if not rows:
        err.print(f"no runs in {journal}", markup=False)
        return
    table = Table(box=None)
    for name in rows[0]:
        width = max(len(str(row[name])) for row in rows)
        if "run" in name or "baseline" in name:  # an ID a later command needs: never cut, in any width or pipe
            table.add_column(name, no_wrap=True, min_width=max(width, len(name)))
        else:
            table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*(escape(str(v)) for v in row.values()))
    out.print(table)


