"""The run commands: link, plan, audit, unlink — each builds RunOptions and calls runner.execute once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from ..models import Command, Status

if TYPE_CHECKING:
    from ..runner import RunOptions, RunResult

from .app import _configure_logging, _errors, app, err, examples, out
from .options import (
    BaselineOpt,
    ExpiryOpt,
    ForceOpt,
    RecognitionOpt,
    ResumeOpt,
    RunInventoryArg,
    SelfOpt,
    _run_kwargs,
    run_options,
)
from .terminal import TerminalProgress, _print_results, write_summary_md


def _options(command: Command, inventory: Path, **kwargs: Any) -> RunOptions:
    from ..runner import RunOptions

    return RunOptions(command=command, inventory=str(inventory), **kwargs)


def _run(
    command: Command,
    inventory: Path | None,
    shared: dict[str, Any],
    *,
    exit_code: Callable[[RunResult], int] = lambda result: result.exit_code,
    **kwargs: Any,
) -> None:
    from ..gctuning import tune_for_batch
    from ..runner import execute

    tune_for_batch()  # the SDKs are imported by now
    _configure_logging(shared["debug"])
    if inventory is None and not kwargs.get("self_link"):
        err.print("error: give an INVENTORY file, or --self to act on the identity you are signed in as")
        raise typer.Exit(1 if exit_code is _detailed_exit else 2)
    with _errors(1 if exit_code is _detailed_exit else None):
        options = _options(command, inventory or Path("--self"), **kwargs, **_run_kwargs(shared))
        result = execute(options, progress=TerminalProgress(err),  # --recognition: the runner's standard recognizer
                         announce=lambda text: err.print(text, markup=False))
        _print_results(result, shared["output"])
    if result.run_id and result.report_dir:
        write_summary_md(Path(result.report_dir) / result.run_id, shared["summary_md"])
    if result.stop:
        err.print(Text.assemble(("stopped: ", "bold red"), result.stop))
    if result.report_error:
        err.print(Text.assemble(("error: ", "bold red"), result.report_error))
    raise typer.Exit(exit_code(result))


@app.command(epilog=examples(
    "pal-orchestrator link customers.csv --partner-id 4812345 --key-vault ops-kv",
    'pal-orchestrator link customers.csv --partner-id 4812345 --partner-name "Contoso Ltd"',
    "pal-orchestrator link customers.csv --partner-id 4812345 --resume",
))
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
    baseline: BaselineOpt = None,
    *,
    shared: dict[str, Any],
) -> None:
    """Reconcile: create missing links, leave correct ones alone, report links to other partner IDs.

    The first write goes alone and the service's answer names the partner; that name is printed before any other
    write, and a name other than --partner-name (or the one an earlier run recorded) stops the run.
    """
    _run(Command.LINK, inventory, shared, self_link=self_, overwrite=overwrite, resume=resume, force=force,
         recognition=recognition, expiry_warning_days=expiry_warning_days, partner_name=partner_name,
         baseline=baseline)


@app.command(epilog=examples(
    "pal-orchestrator plan customers.csv --partner-id 4812345",
    "pal-orchestrator plan customers.csv --partner-id 4812345 --detailed-exitcode",
))
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
    if result.stop or result.report_error or any(status not in ok for status, n in counts.items() if n):
        return 1
    return 2 if counts.get(Status.WOULD_LINK.value) or counts.get(Status.WOULD_RELINK.value) else 0


@app.command(epilog=examples(
    "pal-orchestrator audit customers.csv --partner-id 4812345",
    "pal-orchestrator audit customers.csv --partner-id 4812345 --output json",
))
@run_options
def audit(
    inventory: RunInventoryArg = None,
    self_: SelfOpt = False,
    recognition: RecognitionOpt = True,
    expiry_warning_days: ExpiryOpt = 120,
    baseline: BaselineOpt = None,
    *,
    shared: dict[str, Any],
) -> None:
    """Read-only sweep for auditors: what each identity is linked to now."""
    _run(Command.AUDIT, inventory, shared, self_link=self_, recognition=recognition,
         expiry_warning_days=expiry_warning_days, baseline=baseline)


@app.command(epilog=examples(
    "pal-orchestrator unlink offboarded.csv --partner-id 4812345",
    "pal-orchestrator unlink offboarded.csv --partner-id 4812345 --yes",
))
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
    """Offboarding: delete each identity's link to its target partner ID (needs --yes).

    Without --yes it reads each identity's current link (as `audit` does, no write, nothing journaled) and lists
    exactly the links it would delete; links to other partner IDs are never touched."""
    if not yes:
        _configure_logging(shared["debug"])
        if inventory is None and not self_:
            err.print("error: give an INVENTORY file, or --self")
            raise typer.Exit(2)
        with _errors():
            _preview_unlink(inventory, self_, shared)
        raise typer.Exit(0)
    _run(Command.UNLINK, inventory, shared, self_link=self_, resume=resume, force=force)


def _preview_unlink(inventory: Path | None, self_: bool, shared: dict[str, Any]) -> None:
    """Read the current links into a throwaway journal and list what `unlink --yes` would delete."""
    import tempfile

    from ..journal import Journal
    from ..runner import execute

    with tempfile.TemporaryDirectory(prefix="pal-unlink-preview-") as tmp:
        kwargs = {**_run_kwargs(shared), "journal": str(Path(tmp) / "preview.sqlite")}
        result = execute(_options(Command.AUDIT, inventory or Path("--self"), self_link=self_,
                                  write_reports=False, **kwargs),
                         progress=TerminalProgress(err), announce=lambda text: err.print(text, markup=False))
        assert result.run_id is not None
        with Journal(result.journal, read_only=True) as journal:
            outcomes = journal.outcomes(result.run_id)
    doomed = [o for o in outcomes if o.status is Status.ALREADY_LINKED]
    out.print(f"would remove {len(doomed)} links:")
    for o in doomed:
        out.print(f"  {o.customer}  tenant {o.tenant_id}  client {o.client_id}  partner {o.target_partner_id}",
                  markup=False)
    others = [o for o in outcomes if o.status is not Status.ALREADY_LINKED]
    for o in others:
        why = {Status.NOT_LINKED: "not linked: nothing to remove",
               Status.LINKED_ELSEWHERE: f"linked to {o.linked_partner_id}, another partner: left alone"}.get(
            o.status, f"{o.status.value}: {o.error_code or ''}")
        out.print(f"  (skip) {o.customer}  tenant {o.tenant_id}  client {o.client_id}  {why}", markup=False)
    err.print("nothing changed: pass --yes to remove them")
