"""The `pal-orchestrator` command: parse, call the library once, translate its errors into exit codes.

Business logic lives in runner/linker/report; this module only wires options to them. Results go to stdout
(`--output table|json`), progress and the recap to stderr. Exit codes: 0 all rows succeeded, 1 the run
completed with failures/skipped rows, 2 usage error or nothing ran, 3 stopped early because a shared cause
(a rejected partner ID, an unreadable vault, an unreachable endpoint) made every identity fail (resumable),
130 interrupted (resume with --resume).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from . import __version__
from .errors import PalError
from .models import COVERED_STATUSES, Cloud, Command, Outcome, Status
from .settings import DEFAULT_CONCURRENCY, DEFAULT_RETRY

if TYPE_CHECKING:
    from .runner import RunOptions, RunResult

app = typer.Typer(
    name="pal-orchestrator",
    help="Link Partner Admin Link (PAL) across many customer tenants at once, and report coverage.",
    epilog=("Exit codes: 0 every row succeeded; 1 the run completed but some identity failed or was skipped; "
            "2 usage error or nothing ran; 3 stopped early: a shared cause (a rejected partner ID, a vault the "
            "operator cannot read, an unreachable endpoint) failed the first identities alike — fix it, then "
            "--resume; 130 interrupted (--resume continues)."),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)  # messages stay one line, whole
# Piped stdout (CI logs, `| less`) gets a wide table instead of rich's 80-column default.
out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


class Output(StrEnum):
    table = "table"
    json = "json"


class OperatorAuth(StrEnum):
    default = "default"
    env = "env"
    cli = "cli"
    managed_identity = "managed-identity"


# -- shared options (each also from an environment variable PAL_*) --------------------------------------------

InventoryArg = Annotated[Path, typer.Argument(help="Inventory file: CSV, YAML or XLSX (see docs/inventory.md).")]
RunInventoryArg = Annotated[
    Path | None, typer.Argument(help="Inventory file: CSV, YAML or XLSX (see docs/inventory.md); omit with --self.")
]
SelfOpt = Annotated[
    bool,
    typer.Option("--self", help="Act on the identity you are signed in as (Azure CLI, environment, managed "
                 "identity, workload identity: --operator-auth), not an inventory."),
]
def _partner_id(value: str | None) -> str | None:
    """A malformed --partner-id is the option's fault, not every row's: a usage error naming it (exit 2)."""
    if value is not None and not re.fullmatch(r"\s*\d{6,10}\s*", value):
        raise typer.BadParameter(f"{value!r} is not a partner location ID: use the 6–10 digit PLA ID from Partner "
                                 "Center (not the global PGA ID)")
    return value.strip() if value is not None else None


PartnerOpt = Annotated[
    str | None,
    typer.Option("--partner-id", envvar="PAL_PARTNER_ID", callback=_partner_id,
                 help="Default partner location ID (6–10 digits)."),
]
VaultOpt = Annotated[
    str | None,
    typer.Option("--key-vault", envvar="PAL_KEY_VAULT", help="Default Key Vault (name or URL) for rows without one."),
]
CloudOpt = Annotated[Cloud, typer.Option("--cloud", envvar="PAL_CLOUD", help="Default cloud for rows without one.")]
SheetOpt = Annotated[str | None, typer.Option("--sheet", envvar="PAL_SHEET", help="XLSX sheet (default: the first).")]
ConcurrencyOpt = Annotated[
    int,
    typer.Option("--concurrency", envvar="PAL_CONCURRENCY", min=1, max=1024, help="Identities in flight at once."),
]
JournalOpt = Annotated[
    Path, typer.Option("--journal", envvar="PAL_JOURNAL", help="SQLite run journal.")
]
ReportDirOpt = Annotated[Path, typer.Option("--report-dir", envvar="PAL_REPORT_DIR", help="Where reports land.")]
OutputOpt = Annotated[
    Output, typer.Option("--output", envvar="PAL_OUTPUT", help="Results on stdout as a table or JSON.")
]
AuthorityOpt = Annotated[
    str | None,
    typer.Option("--authority-host", envvar="PAL_AUTHORITY_HOST", help="Entra authority (custom clouds)."),
]
ArmOpt = Annotated[
    str | None, typer.Option("--arm-endpoint", envvar="PAL_ARM_ENDPOINT", help="Resource Manager endpoint.")
]
CaOpt = Annotated[
    Path | None,
    typer.Option("--ca-bundle", envvar="PAL_CA_BUNDLE", help="PEM CA bundle trusted in addition to system roots."),
]
VaultSuffixOpt = Annotated[
    list[str] | None,
    typer.Option("--vault-host-suffix", envvar="PAL_VAULT_HOST_SUFFIX",
                 help="With --cloud custom: also trust vaults whose host ends with this (repeatable), e.g. "
                      ".vault.local.azurestack.external. The operator's token never goes to other hosts."),
]
OperatorOpt = Annotated[
    OperatorAuth,
    typer.Option("--operator-auth", envvar="PAL_OPERATOR_AUTH", help="How the orchestrator signs in to Key Vault."),
]
AttemptsOpt = Annotated[
    int,
    typer.Option("--max-attempts", envvar="PAL_MAX_ATTEMPTS", min=1, max=50,
                 help="HTTP requests at most per call (Key Vault read, token, GET, PUT…), retries included."),
]
RetryCapOpt = Annotated[
    float,
    typer.Option("--retry-after-cap", envvar="PAL_RETRY_AFTER_CAP", min=0,
                 help="Longest Retry-After honoured (s); a longer one fails the row with the wait recorded."),
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", envvar="PAL_TIMEOUT", min=0.1, help="Seconds one HTTP attempt may take.")
]
DebugOpt = Annotated[bool, typer.Option("--debug", envvar="PAL_DEBUG", help="Verbose logs (secrets stay redacted).")]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the last unfinished run of this inventory.")]
ForceOpt = Annotated[bool, typer.Option("--force", help="With --resume: accept a changed inventory.")]
RecognitionOpt = Annotated[
    bool,
    typer.Option("--recognition/--no-recognition", envvar="PAL_RECOGNITION",
                 help="Check PEC-eligible role assignments of each identity."),
]
ExpiryOpt = Annotated[
    int,
    typer.Option("--expiry-warning-days", envvar="PAL_EXPIRY_WARNING_DAYS", min=0,
                 help="Credentials expiring within this many days are listed in the report."),
]


def _configure_logging(debug: bool) -> None:
    """--debug shows our steps and the SDK's redacting HTTP log; never the network trace that leaks secrets."""
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("azure").setLevel(logging.INFO if debug else logging.ERROR)
    logging.getLogger("msal").setLevel(logging.WARNING)
    logging.getLogger("asyncio").setLevel(logging.WARNING)


@contextmanager
def _errors(error_exit: int | None = None) -> Iterator[None]:
    """Run-level errors become one clear line and an exit code (`error_exit` overrides it); no traceback."""
    from .runner import Interrupted

    try:
        yield
    except PalError as exc:
        err.print(Text.assemble(("error: ", "bold red"), str(exc)))  # user text is never parsed as markup
        raise typer.Exit(error_exit if error_exit is not None else exc.exit_code) from None
    except Interrupted as exc:
        err.print(f"[yellow]interrupted[/]: results so far are in the journal; continue with --resume ({exc.run_id})")
        raise typer.Exit(130) from None
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        raise typer.Exit(130) from None


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


def _options(command: Command, inventory: Path, **kwargs: Any) -> RunOptions:
    from .runner import RunOptions

    return RunOptions(command=command, inventory=str(inventory), **kwargs)


def _print_results(result: RunResult, output: Output) -> None:
    """Results on stdout from the journal (never from memory), then a recap on stderr."""
    from .journal import Journal

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
    where = f"; reports in {result.report_dir}/" if result.report_dir else ""
    err.print(f"done in {result.elapsed_s:.1f}s: {counts} — journal {result.journal}{where} (run {result.run_id})",
              markup=False)


_TABLE_LIMIT = 200


def _print_table(outcomes: Iterator[Outcome], result: RunResult) -> None:
    total = sum(result.counts.values())
    table = Table("customer", "status", "linked_partner_id", "error_code", "row", box=None)
    shown = 0
    for o in outcomes:
        if total > _TABLE_LIMIT and o.status in COVERED_STATUSES:
            continue
        if shown >= _TABLE_LIMIT:
            break
        table.add_row(escape(o.customer), o.status.value, escape(o.linked_partner_id or ""),
                      escape(o.error_code or ""), escape(f"{Path(o.source).name}:{o.line}"))
        shown += 1
    out.print(table)
    if total > shown:
        out.print(f"({total - shown} more rows in identities.csv)")
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
_RUN_OPTIONS: list[tuple[str, Any, Any]] = [
    ("partner_id", PartnerOpt, None),
    ("key_vault", VaultOpt, None),
    ("cloud", CloudOpt, Cloud.PUBLIC),
    ("sheet", SheetOpt, None),
    ("concurrency", ConcurrencyOpt, DEFAULT_CONCURRENCY),
    ("journal", JournalOpt, Path("reports/journal.sqlite")),
    ("report_dir", ReportDirOpt, Path("reports")),
    ("output", OutputOpt, Output.table),
    ("authority_host", AuthorityOpt, None),
    ("arm_endpoint", ArmOpt, None),
    ("ca_bundle", CaOpt, None),
    ("vault_host_suffix", VaultSuffixOpt, None),
    ("operator_auth", OperatorOpt, OperatorAuth.default),
    ("max_attempts", AttemptsOpt, DEFAULT_RETRY.attempts),
    ("retry_after_cap", RetryCapOpt, DEFAULT_RETRY.retry_after_cap_s),
    ("timeout", TimeoutOpt, DEFAULT_RETRY.timeout_s),
    ("debug", DebugOpt, False),
]


def run_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a run command the shared options; it receives them as one `shared` dict.

    typer reads a command's options from its signature, so the wrapper's signature is the command's own
    parameters followed by the shared ones, written once in _RUN_OPTIONS instead of four times.
    """
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "shared"]
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)
             for name, annotation, default in _RUN_OPTIONS]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        shared = {name: kwargs.pop(name) for name, _, _ in _RUN_OPTIONS}
        command(**kwargs, shared=shared)

    wrapper.__signature__ = inspect.Signature([*own, *extra])  # type: ignore[attr-defined]
    return wrapper


def _run(
    command: Command,
    inventory: Path | None,
    shared: dict[str, Any],
    *,
    exit_code: Callable[[RunResult], int] = lambda result: result.exit_code,
    **kwargs: Any,
) -> None:
    from .runner import execute

    _configure_logging(shared["debug"])
    if inventory is None and not kwargs.get("self_link"):
        err.print("error: give an INVENTORY file, or --self to act on the identity you are signed in as")
        raise typer.Exit(1 if exit_code is _detailed_exit else 2)
    with _errors(1 if exit_code is _detailed_exit else None):
        options = _options(command, inventory or Path("--self"), **kwargs, **_run_kwargs(shared))
        recognizer = None
        if options.recognition:
            from .recognition import recognizer_factory

            recognizer = recognizer_factory
        result = execute(options, progress=TerminalProgress(err), recognizer_factory=recognizer,
                         announce=lambda text: err.print(text, markup=False))
        _print_results(result, shared["output"])
    if result.stop:
        err.print(Text.assemble(("stopped: ", "bold red"), result.stop))
    raise typer.Exit(exit_code(result))


def _run_kwargs(shared: dict[str, Any]) -> dict[str, Any]:
    """Shared options → RunOptions keyword arguments."""
    return {
        "partner_id": shared["partner_id"], "key_vault": shared["key_vault"], "cloud": shared["cloud"],
        "authority_host": shared["authority_host"], "arm_endpoint": shared["arm_endpoint"],
        "ca_bundle": str(shared["ca_bundle"]) if shared["ca_bundle"] else None,
        "operator_auth": shared["operator_auth"].value, "concurrency": shared["concurrency"],
        "vault_host_suffixes": tuple(shared["vault_host_suffix"] or ()),
        "journal": str(shared["journal"]), "report_dir": str(shared["report_dir"]), "sheet": shared["sheet"],
        "retry": replace(DEFAULT_RETRY, attempts=shared["max_attempts"], retry_after_cap_s=shared["retry_after_cap"],
                         timeout_s=shared["timeout"]),
    }


@app.command()
@run_options
def link(
    inventory: RunInventoryArg = None,
    self_: SelfOpt = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Switch links to another partner ID.")] = False,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    recognition: RecognitionOpt = True,
    expiry_warning_days: ExpiryOpt = 120,
    partner_name: Annotated[
        str | None,
        typer.Option("--partner-name", envvar="PAL_PARTNER_NAME",
                     help="The partner's name as Partner Center shows it: the run stops after the first write if "
                          "the service names the --partner-id partner otherwise (exit 3)."),
    ] = None,
    *,
    shared: dict[str, Any],
) -> None:
    """Reconcile: create missing links, leave correct ones alone, report links to other partner IDs.

    The first write goes alone and the service's answer names the partner; that name is printed before any other
    write, and a name other than --partner-name (or the one an earlier run recorded) stops the run.
    """
    _run(Command.LINK, inventory, shared, self_link=self_, overwrite=overwrite, resume=resume, force=force,
         recognition=recognition, expiry_warning_days=expiry_warning_days, partner_name=partner_name)


@app.command()
@run_options
def plan(
    inventory: RunInventoryArg = None,
    self_: SelfOpt = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Plan switching foreign links.")] = False,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="0 nothing to do, 2 writes pending, 1 errors.")
    ] = False,
    recognition: RecognitionOpt = True,
    expiry_warning_days: ExpiryOpt = 120,
    *,
    shared: dict[str, Any],
) -> None:
    """The same reads as `link`, no writes: what a link run would do."""
    _run(Command.PLAN, inventory, shared, self_link=self_, overwrite=overwrite, recognition=recognition,
         expiry_warning_days=expiry_warning_days, exit_code=_detailed_exit if detailed_exitcode else _plain)


def _plain(result: RunResult) -> int:
    return result.exit_code


def _detailed_exit(result: RunResult) -> int:
    """plan --detailed-exitcode: 0 nothing to do, 2 writes pending, 1 errors (terraform's convention)."""
    counts = result.counts
    ok = {Status.ALREADY_LINKED.value, Status.WOULD_LINK.value, Status.WOULD_RELINK.value}
    if result.stop or any(status not in ok for status, n in counts.items() if n):
        return 1
    return 2 if counts.get(Status.WOULD_LINK.value) or counts.get(Status.WOULD_RELINK.value) else 0


@app.command()
@run_options
def audit(
    inventory: RunInventoryArg = None,
    self_: SelfOpt = False,
    recognition: RecognitionOpt = True,
    expiry_warning_days: ExpiryOpt = 120,
    *,
    shared: dict[str, Any],
) -> None:
    """Read-only sweep for auditors: what each identity is linked to now."""
    _run(Command.AUDIT, inventory, shared, self_link=self_, recognition=recognition,
         expiry_warning_days=expiry_warning_days)


@app.command()
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
    from .journal import Journal
    from .lighthouse_run import run_lighthouse
    from .report.lighthouse import lighthouse_summary
    from .runner import RunOptions

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
        table = Table("customer", "customer_tenant_id", "verdict", "subscriptions", "offers", "fix", box=None)
        customers = summary["customers"]
        if len(customers) > _TABLE_LIMIT:  # the ones needing work first; all of them are in lighthouse.csv
            customers = [c for c in customers if c["verdict"] not in ("recognised", "marketplace")][:_TABLE_LIMIT]
            out.print(f"showing {len(customers)} of {len(summary['customers'])} customers; lighthouse.csv has all")
        for c in customers:
            table.add_row(escape(c["customer"]), c["customer_tenant_id"], c["verdict"], str(c["subscriptions"]),
                          escape(", ".join(c["offers"])), escape(c["fix"]))
        out.print(table)
    where = f"; lighthouse.csv in {result.report_dir}/" if result.report_dir else ""
    err.print(f"done in {result.elapsed_s:.1f}s: {summary['lighthouse_recognised']} of "
              f"{summary['lighthouse_customers']} delegated customers recognised, {result.subscriptions} "
              f"subscriptions, {result.requests} ARM requests — journal {result.journal}{where} (run {result.run_id})",
              markup=False)
    raise typer.Exit(result.exit_code)


@app.command()
@run_options
def unlink(
    inventory: RunInventoryArg = None,
    self_: SelfOpt = False,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete the links.")] = False,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    *,
    shared: dict[str, Any],
) -> None:
    """Offboarding: delete each identity's link to its target partner ID (needs --yes)."""
    if not yes:
        from .runner import RunOptions, load, self_inventory

        _configure_logging(shared["debug"])
        if inventory is None and not self_:
            err.print("error: give an INVENTORY file, or --self")
            raise typer.Exit(2)
        with _errors():
            opts = RunOptions(command=Command.UNLINK, inventory=str(inventory), self_link=self_,
                              **_run_kwargs(shared))
            inv = self_inventory(opts, err.print) if self_ else load(opts)
        out.print(f"would remove the links of {len(inv.identities)} identities:")
        for i in inv.identities:
            out.print(f"  {i.customer}  tenant {i.tenant_id}  client {i.client_id}  partner {i.partner_id}",
                      markup=False)
        err.print("nothing changed: pass --yes to remove them")
        raise typer.Exit(0)
    _run(Command.UNLINK, inventory, shared, self_link=self_, resume=resume, force=force)


@app.command()
def validate(
    inventory: InventoryArg,
    partner_id: PartnerOpt = None,
    key_vault: VaultOpt = None,
    cloud: CloudOpt = Cloud.PUBLIC,
    sheet: SheetOpt = None,
) -> None:
    """Check an inventory without signing in anywhere: every problem as FILE:LINE: column: what — fix."""
    from .inventory import InventoryDefaults, load_inventory

    with _errors():
        inv = load_inventory(
            inventory,
            defaults=InventoryDefaults(partner_id=partner_id, key_vault=key_vault, cloud=cloud, sheet=sheet),
        )
    for warning in inv.warnings:
        err.print(f"warning: {warning}", markup=False)
    for problem in inv.problems:
        out.print(str(problem), markup=False)
    bad = len(inv.skipped)
    err.print(f"{inventory}: {inv.rows} rows, {len(inv.identities)} valid, {bad} invalid", markup=False)
    raise typer.Exit(2 if bad or not inv.identities else 0)


@app.command()
def report(
    run_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Run to render (default: the latest); with --compare, the two runs RUN_A RUN_B."),
    ] = None,
    journal: JournalOpt = Path("reports/journal.sqlite"),
    report_dir: ReportDirOpt = Path("reports"),
    compare: Annotated[
        bool,
        typer.Option("--compare", help="Compare RUN_A RUN_B (default: the last two runs of the same inventory)."),
    ] = False,
    expiry_warning_days: Annotated[
        int | None,
        typer.Option("--expiry-warning-days", min=0, help="Default: the value the run was made with (120)."),
    ] = None,
) -> None:
    """Re-render the reports of a run from the journal (`report [RUN_ID]`), or compare two (`report --compare`)."""
    from .journal import Journal
    from .report import compare_runs, default_comparison, render_comparison, write_reports

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
            out.print(render_comparison(compare_runs(j, a, b)), markup=False)
            return
        # the latest coverage run by default: a `lighthouse` run has its own files (lighthouse.csv/json)
        rid = ids[0] if ids else next((r.run_id for r in reversed(runs) if r.command != "lighthouse"), runs[-1].run_id)
        if j.run(rid).command == "lighthouse":
            from .report.lighthouse import write_lighthouse_reports

            written = write_lighthouse_reports(j, rid, report_dir)[0].parent
            err.print(f"lighthouse reports for run {rid} written to {written}/", markup=False)
            return
        days = expiry_warning_days
        if days is None:
            days = int(j.run(rid).options.get("expiry_warning_days", 120))
        paths = write_reports(j, rid, report_dir, expiry_warning_days=days)
    err.print(f"reports for run {rid} written to {paths.summary_json.parent}/", markup=False)


@app.command()
def runs(journal: JournalOpt = Path("reports/journal.sqlite"), output: OutputOpt = Output.table) -> None:
    """List the runs in the journal: ID, date, inventory, counts, coverage."""
    from .journal import Journal
    from .report import runs_table

    with _errors(), Journal(journal, read_only=True) as j:
        rows = runs_table(j)
    if output is Output.json:
        out.print_json(json.dumps(rows, default=str))
        return
    if not rows:
        err.print(f"no runs in {journal}", markup=False)
        return
    table = Table(*rows[0].keys(), box=None)
    for row in rows:
        table.add_row(*(escape(str(v)) for v in row.values()))
    out.print(table)


@app.command()
def emulator(
    world: Annotated[
        Path | None, typer.Option("--world", help="World YAML seeding tenants, apps, vaults, links.")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 = any free port).")] = 0,
    latency_ms: Annotated[float, typer.Option("--latency-ms", help="Latency added to every request.")] = 0.0,
    faults: Annotated[Path | None, typer.Option("--faults", help="Fault injection YAML.")] = None,
    ca_dir: Annotated[Path | None, typer.Option("--ca-dir", help="Where to write the generated CA.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for fault randomness.")] = 0,
    wire: Annotated[
        list[str] | None,
        typer.Option("--wire", metavar="NAME=VALUE",
                     help="A ManagementPartner wire variant (repeatable), e.g. --wire not_linked=flat."),
    ] = None,
) -> None:
    """Run the built-in Azure emulator (Entra ID, Key Vault, ManagementPartner, IMDS) on 127.0.0.1 over HTTPS.

    Prints `PAL-EMULATOR READY url=… ca=…` and the options that point pal-orchestrator at it; serves until
    Ctrl-C. See orchestrator/emulator/README.md for the world, fault and wire formats.
    """
    from .emulator import WireError, WorldError, parse_wire_args
    from .emulator.process import run_emulator

    try:
        run_emulator(world_path=world, port=port, latency_ms=latency_ms, faults_path=faults, ca_dir=ca_dir, seed=seed,
                     wire=parse_wire_args(wire))
    except (WorldError, WireError, OSError) as exc:
        err.print(f"error: {exc}", markup=False)
        raise typer.Exit(2) from None


@app.command()
def demo(
    inventory: Annotated[Path, typer.Option("--inventory", help="Demo inventory.")] = Path("inventory/demo.csv"),
    world: Annotated[Path, typer.Option("--world", help="Demo world.")] = Path("inventory/demo-world.yaml"),
    report_dir: ReportDirOpt = Path("reports"),
    journal: JournalOpt = Path("reports/journal.sqlite"),
    output: OutputOpt = Output.table,
) -> None:
    """The main job, rehearsed: start the emulator with the demo world and bulk-link the demo inventory."""
    from .demo import run_demo

    with _errors():
        code = run_demo(inventory=inventory, world=world, report_dir=report_dir, journal=journal,
                        run=lambda argv: _invoke([*argv, "--output", output.value]))
    err.print(
        f"demo finished: open {report_dir / 'coverage.html'} or {report_dir / 'coverage.xlsx'} for the coverage "
        f"report; identities.csv, customers.csv and summary.json are beside them.",
        markup=False,
    )
    raise typer.Exit(code)


def _invoke(argv: list[str]) -> int:
    """Run one CLI command in-process and return its exit code (used by the demo)."""
    try:
        app(argv, standalone_mode=False)
    except typer.Exit as exc:
        return int(exc.exit_code)
    return 0


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Show the version and exit.")] = False,
) -> None:
    if version:
        out.print(f"pal-orchestrator {__version__}")
        raise typer.Exit(0)


def main() -> None:
    """Console entry point. With `plan --detailed-exitcode`, any error (a usage error too) exits 1, so that a
    pipeline reading 2 as "writes pending" never mistakes a failure for changes (Terraform's convention)."""
    argv = sys.argv[1:]
    try:
        code = app(args=argv, prog_name="pal-orchestrator", standalone_mode=False)
    except typer.Abort:
        err.print("[yellow]interrupted[/]")
        code = 130
    except typer.TyperException as exc:  # a usage error (typer's click): shown as click shows it
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        code = 1 if _detailed(argv) else int(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


def _detailed(argv: list[str]) -> bool:
    return "--detailed-exitcode" in argv and "plan" in argv
