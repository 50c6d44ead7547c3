"""`pal-orchestrator lighthouse`: Azure Lighthouse delegations judged for recognition (see lighthouse_run)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..models import Command
from .app import _configure_logging, _errors, app, err, examples, out
from .options import Output, _run_kwargs, run_options

#: Customers shown on the terminal at most (those needing work first); lighthouse.csv holds every row.
_TABLE_LIMIT = 200


@app.command(epilog=examples(
    "pal-orchestrator lighthouse managing.csv --partner-id 4812345 --key-vault ops-kv",
    "pal-orchestrator lighthouse --partner-id 4812345 --operator-auth cli",
))
@run_options
def lighthouse(
    inventory: Annotated[
        Path | None,
        typer.Argument(help="Inventory of the principals your Lighthouse offers name, in your own (managing) tenant: "
                            "linked first, as `link` does. Omit it to use the links the journal already holds."),
    ] = None,
    *,
    shared: dict[str, Any],
) -> None:
    """Azure Lighthouse: which delegated customer subscriptions earn recognition through your offers, and the fix.

    Signs in as the operator (--operator-auth) in your managing tenant, lists the delegated subscriptions and their
    offers, and matches each offer's PEC-eligible roles with the principals linked to --partner-id. Writes
    lighthouse.csv and lighthouse.json. Exit 0 when every delegated customer is recognised, 1 otherwise.
    """
    from ..journal import Journal
    from ..lighthouse_run import run_lighthouse
    from ..report.lighthouse import lighthouse_summary
    from ..runner import RunOptions

    _configure_logging(shared["debug"])
    with _errors():
        options = RunOptions(command=Command.LINK, inventory=str(inventory) if inventory else "",
                             **_run_kwargs(shared))
        result = run_lighthouse(options, announce=lambda text: err.print(text, markup=False))
        with Journal(result.journal, read_only=True) as journal:
            summary = lighthouse_summary(journal, result.run_id)
    if shared["output"] is Output.json:
        out.print_json(json.dumps(summary))
    else:
        _print_customers(summary)
    where = f"; lighthouse.csv in {result.report_dir}/" if result.report_dir else ""
    err.print(f"done in {result.elapsed_s:.1f}s: {summary['lighthouse_recognised']} of "
              f"{summary['lighthouse_customers']} delegated customers recognised, {result.subscriptions} "
              f"subscriptions, {result.requests} ARM requests — journal {result.journal}{where} (run {result.run_id})",
              markup=False)
    raise typer.Exit(result.exit_code)


def _print_customers(summary: dict[str, Any]) -> None:
    """One line per customer tenant: its best verdict and the fix (the ones needing work first past the limit)."""
    table = Table("customer", "customer_tenant_id", "verdict", "subscriptions", "offers", "fix", box=None)
    customers = summary["customers"]
    if len(customers) > _TABLE_LIMIT:
        customers = [c for c in customers if c["verdict"] not in ("recognised", "marketplace")][:_TABLE_LIMIT]
        out.print(f"showing {len(customers)} of {len(summary['customers'])} customers; lighthouse.csv has all")
    for c in customers:
        table.add_row(escape(c["customer"]), c["customer_tenant_id"], c["verdict"], str(c["subscriptions"]),
                      escape(", ".join(c["offers"])), escape(c["fix"]))
    out.print(table)
