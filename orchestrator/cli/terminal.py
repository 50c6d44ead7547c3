"""What a run shows on the terminal: progress, the results table (from the journal), JSON output."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..models import COVERED_STATUSES, Outcome, Status

if TYPE_CHECKING:
    from ..runner import RunResult

from .app import err, out
from .options import Output

_OK_STATUSES = COVERED_STATUSES | {
    Status.WOULD_LINK, Status.WOULD_RELINK, Status.NOT_LINKED, Status.UNLINKED, Status.ALREADY_LINKED
}


class TerminalProgress:
    """A rich bar on a TTY, plain lines every few seconds otherwise (CI logs)."""

    def __init__(self, console: Console, *, plain_every_s: float = 5.0) -> None:
        self.console = console
        self.total = 0
        self.done = 0
        self.ok = 0
        self.failed = 0
        self._bar: Progress | None = None
        self._task: Any = None
        self._last = time.monotonic()
        self._every = plain_every_s
        self._started = time.monotonic()

    def start(self, total: int) -> None:
        self.total = total
        self._started = time.monotonic()
        if self.console.is_terminal:
            self._bar = Progress(
                TextColumn("[bold]linking"), BarColumn(), MofNCompleteColumn(),
                TextColumn("ok {task.fields[ok]} · failed {task.fields[failed]} · {task.fields[rate]}/s"),
                TimeRemainingColumn(), console=self.console, transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("run", total=total, ok=0, failed=0, rate="0")

    def advance(self, outcome: Outcome) -> None:
        self.done += 1
        if outcome.status in _OK_STATUSES:
            self.ok += 1
        else:
            self.failed += 1
        elapsed = max(time.monotonic() - self._started, 1e-6)
        rate = f"{self.done / elapsed:.0f}"
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, ok=self.ok, failed=self.failed, rate=rate)
        elif time.monotonic() - self._last >= self._every:
            self._last = time.monotonic()
            self.console.print(f"progress: {self.done}/{self.total} ok={self.ok} failed={self.failed} rate={rate}/s")

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _print_results(result: RunResult, output: Output) -> None:
    """Results on stdout from the journal (never from memory), then a recap on stderr."""
    from ..journal import Journal

    if result.nothing_to_resume:
        err.print("nothing to resume: no unfinished run of this inventory and command in the journal; "
                  "run it without --resume to start one")
        return
    assert result.run_id is not None
    if result.rerendered:
        err.print(f"nothing to resume: run {result.run_id} had finished; its missing reports were written now",
                  markup=False)
    with Journal(result.journal) as journal:
        if output is Output.json:
            rows = [_outcome_json(o) for o in journal.iter_outcomes(result.run_id)]
            out.print_json(json.dumps({"run_id": result.run_id, "exit_code": result.exit_code,
                                       "status_counts": result.counts, "outcomes": rows}))
        else:
            _print_table(journal.iter_outcomes(result.run_id), result)
    counts = ", ".join(f"{k}={v}" for k, v in sorted(result.counts.items()))
    where = f"; reports in {result.report_dir}/{result.run_id}/" if result.report_dir else ""
    err.print(f"done in {result.elapsed_s:.1f}s: {counts} — journal {result.journal}{where} (run {result.run_id})",
              markup=False)


_TABLE_LIMIT = 200
_REASON_CHARS = 70


_ENTRA_PREFIX = re.compile(r"^Microsoft Entra ID error '\(\w+\) AADSTS\d+: ")


def _reason(o: Outcome) -> str:
    """A short reason beside the error code (the full message and fix are in identities.csv)."""
    text = _ENTRA_PREFIX.sub("", " ".join((o.error_message or "").split()))
    return text if len(text) <= _REASON_CHARS else text[: _REASON_CHARS - 1] + "…"


def _print_table(outcomes: Iterator[Outcome], result: RunResult) -> None:
    """Rows that need attention first; on a big run only those (up to a limit), the rest counted."""
    rows = list(outcomes)
    attention = [o for o in rows if o.status not in _OK_STATUSES]
    fine = [o for o in rows if o.status in _OK_STATUSES]
    shown = (attention + ([] if len(rows) > _TABLE_LIMIT else fine))[:_TABLE_LIMIT]
    table = Table("customer", "status", "linked_partner_id", "error_code", "reason", "row", box=None)
    for o in shown:
        table.add_row(escape(o.customer), o.status.value, escape(o.linked_partner_id or ""),
                      escape(o.error_code or ""), escape(_reason(o)), escape(f"{Path(o.source).name}:{o.line}"))
    out.print(table)
    if len(rows) > len(shown):
        more = len(attention) - len([o for o in shown if o.status not in _OK_STATUSES])
        out.print(f"({len(rows) - len(shown)} more rows in identities.csv"
                  + (f", {more} of them needing attention)" if more else ", all fine)"))
    out.print("messages and fixes: identities.csv and coverage.xlsx in the report directory")


def _outcome_json(o: Outcome) -> dict[str, Any]:
    return {
        "customer": o.customer, "tenant_id": o.tenant_id, "client_id": o.client_id,
        "target_partner_id": o.target_partner_id, "status": o.status.value,
        "linked_partner_id": o.linked_partner_id, "partner_name": o.partner_name, "object_id": o.object_id,
        "error_code": o.error_code, "error_message": o.error_message, "attempts": o.attempts,
        "credential_expires_on": o.credential_expires_on.isoformat() if o.credential_expires_on else None,
        "recognition": o.recognition.recognition.value if o.recognition else None,
        "source": f"{o.source}:{o.line}",
    }


#: The options every run command (link, plan, audit, unlink) takes, declared once: (name, annotation, default).


def write_summary_md(folder: Path, target: Path | None) -> None:
    """--summary-md (and $GITHUB_STEP_SUMMARY): the run's Markdown summary, rendered from its summary.json."""
    import os

    if target is None and not os.environ.get("GITHUB_STEP_SUMMARY"):
        return
    from ..report import publish_markdown

    try:
        publish_markdown(folder, target)
    except OSError as exc:
        err.print(f"warning: cannot write the Markdown summary: {exc}", markup=False)
