"""One run over an inventory: bounded concurrency, journal first, report from the journal.

The runner owns the order of things: load and validate the inventory, lock the journal, record skipped rows,
warm the operator's Key Vault access with one call per vault, fan out over a fixed pool of workers (never an
unbounded gather; in this process, or over worker processes with --workers: workers/), commit each outcome as it
arrives, then finish the run and render the reports from the journal. An interrupt leaves the run unfinished so
`--resume` can continue it.
"""

from __future__ import annotations

import getpass
import logging
import socket
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import __version__
from .breaker import Breaker, Stop
from .errors import (
    InventoryChangedError,
    JournalError,
    NoValidRowsError,
    PalError,
    ReportWriteError,
    UsageError,
    WorkerDiedError,
)
from .gctuning import release_memory
from .guard import NameGuard
from .hooks import FirstRows
from .intents import IntentCommitter
from .interrupts import run_interruptible
from .inventory import Inventory, InventoryDefaults, load_inventory
from .journal import Journal
from .models import SUCCESS_STATUSES, Command, Identity, Outcome, Status
from .openfiles import ensure_open_files
from .run_options import RunOptions as RunOptions  # the CLI, lighthouse and tests import it from here
from .run_options import endpoints_resolver as endpoints_resolver
from .trust import VaultTrust, restrict_vaults
from .workers.parent import ParentHooks, WorkerPool, worker_count

if TYPE_CHECKING:  # the SDK side (fanout, recognition, retrying) is imported only by a run in this process
    from .fanout import RecognizerFactory
    from .retrying import Sleep

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunResult:
    """What a finished (or resumed) run reports back to the CLI."""

    run_id: str | None
    exit_code: int
    counts: dict[str, int]
    elapsed_s: float
    journal: str
    report_dir: str | None
    inventory: Inventory | None = None
    nothing_to_resume: bool = False
    resumed: bool = False
    rerendered: bool = False  # --resume found no unfinished run, only a finished one whose reports were missing
    report_error: str | None = None  # the work is done but the reports could not be written (exit 4)
    stop: str | None = None  # why the run stopped early (exit 3): the shared cause and its fix, in one line


class Progress(Protocol):
    """What the runner tells the terminal; a null object when silent, so the loop has no branches."""

    def start(self, total: int) -> None: ...
    def advance(self, outcome: Outcome) -> None: ...
    def finish(self) -> None: ...


class NullProgress:
    def start(self, total: int) -> None:
        return None

    def advance(self, outcome: Outcome) -> None:
        return None

    def finish(self) -> None:
        return None


class Interrupted(Exception):
    """The run was interrupted; outcomes so far are in the journal (link and unlink: `--resume` continues it)."""

    def __init__(self, run_id: str, command: Command = Command.LINK) -> None:
        super().__init__(f"interrupted (run {run_id})")
        self.run_id = run_id
        self.command = command

    @property
    def hint(self) -> str:
        """What to type next: only options the command has (plan and audit have no --resume; they only read)."""
        if self.command in (Command.LINK, Command.UNLINK):
            return f"continue with `pal-orchestrator {self.command.value} … --resume` (run {self.run_id})"
        return f"it only reads: run `pal-orchestrator {self.command.value} …` again (run {self.run_id})"


def operator_name() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


#: A shared cause made every identity fail: the run stopped early and stays resumable.
STOPPED_EXIT_CODE = 3


def exit_code_for(command: Command, counts: dict[str, int]) -> int:
    """0 when every row ended in a success state for the command, else 1."""
    ok = SUCCESS_STATUSES[command]
    return 0 if all(Status(status) in ok for status, n in counts.items() if n) else 1


def load(options: RunOptions) -> Inventory:
    """Load and validate the inventory with the run's defaults."""
    return load_inventory(
        options.inventory,
        defaults=InventoryDefaults(
            partner_id=options.partner_id, key_vault=options.key_vault, cloud=options.cloud, sheet=options.sheet,
            federation_identity=options.federation_identity,
        ),
    )


def load_trusted(options: RunOptions) -> Inventory:
    """The inventory as a run sees it: validated, and rows naming a vault the run does not trust skipped.

    With nothing configured to trust (`validate --cloud custom` alone) the trust rule cannot be judged and is
    left to the run, which needs --authority-host and --arm-endpoint for a custom cloud anyway."""
    trust = VaultTrust.configured(
        (options.authority_host, options.arm_endpoint, options.key_vault), options.vault_host_suffixes)
    inventory = load(options)
    return restrict_vaults(inventory, trust) if trust.origins or trust.suffixes else inventory


def skipped_outcomes(inventory: Inventory, checked_at: datetime) -> Iterator[Outcome]:
    """Invalid rows become `skipped` outcomes with their reasons, so the report shows every row."""
    for row in inventory.skipped:
        yield Outcome(
            key=row.key,
            customer=row.customer,
            tenant_id=row.tenant_id,
            client_id=row.client_id,
            target_partner_id=row.partner_id,
            status=Status.SKIPPED,
            error_code="invalid_row",
            error_message=inventory.reasons(row),
            checked_at=checked_at,
            extra=row.extra,
            source=row.source,
            line=row.line,
        )


def execute(
    options: RunOptions,
    *,
    progress: Progress | None = None,
    sleep: Sleep | None = None,
    recognizer_factory: RecognizerFactory | None = None,
    announce: Callable[[str], None] = lambda text: None,
) -> RunResult:
    """Run `options.command` over the inventory; raises only run-level errors (see errors.py).

    The steps: check the options and load the inventory; open the journal and start (or resume) the run; fan out
    over the identities; finish the run and render its reports from the journal.

    The fan-out runs in this process or over `options.workers` worker processes (workers/; unset: from the cores
    and the run's size). With `options.recognition` and no `recognizer_factory`, recognition's own recognizer is
    used (in this process or in each worker). A `sleep` or a recognizer factory other than recognition's own cannot
    cross to another process: when a test injects one, the run stays in this process unless `options.workers` > 1
    is explicit (the workers then sleep for real and build the standard recognizer). The Azure SDKs are imported
    only where the identities are worked: a run over worker processes keeps this one free of them.
    """
    started = time.monotonic()
    inventory = _prepare(options, announce)
    journal = Journal(options.journal)
    try:
        journal.lock()
        if options.baseline and options.write_reports:
            journal.baseline_run(options.baseline)  # a wrong --baseline is refused before any work
        opened = _open_run(journal, options, inventory)
        if isinstance(opened, RunResult):
            return replace(opened, elapsed_s=time.monotonic() - started)
        opened = replace(opened, expected_names=_expected_names(journal, options))
        del inventory  # the run's todo list holds the identities now, and lets each go once it is dispatched
        stop = _work(journal, opened, options, progress or NullProgress(), sleep, recognizer_factory, announce)
        # the reports are rendered from the journal: the run's in-memory state goes first (~0.7 KB per row of
        # inventory, which the report phase would otherwise carry on top of its own peak)
        opened = replace(opened, todo=[], principals={}, prior={})
        release_memory()
        return _finish(journal, opened, options, stop, time.monotonic() - started)
    finally:
        journal.close()


@dataclass(frozen=True, slots=True)
class _OpenRun:
    """A run started or resumed: what is left to do and what its earlier attempt announced."""

    run_id: str
    todo: list[Identity]  # emptied by the fan-out as it dispatches them (models.hand_out)
    prior: dict[str, tuple[str, str]]
    resumed: bool
    principals: dict[str, tuple[str, str]] = field(default_factory=dict)  # object ID → (key, FILE:LINE)
    expected_names: dict[str, str] = field(default_factory=dict)  # partner ID → the name it must have


def _expected_names(journal: Journal, options: RunOptions) -> dict[str, str]:
    """The partner names this run expects: those earlier runs recorded, and --partner-name for --partner-id."""
    names = journal.partner_names()
    if options.partner_name and options.partner_id:
        names[options.partner_id.strip().lower()] = options.partner_name
    return names


def _prepare(options: RunOptions, announce: Callable[[str], None]) -> Inventory:
    """Refuse bad options before any work, then load the inventory (or the signed-in identity for --self)."""
    check_options(options)
    inventory = _self_inventory(options, announce) if options.self_link else load_trusted(options)
    if not inventory.identities:
        raise NoValidRowsError(
            f"{options.inventory}: no valid row to run ({len(inventory.skipped)} invalid); "
            "`pal-orchestrator validate` lists the problems"
        )
    return inventory


def check_options(options: RunOptions) -> None:
    """The checks every run makes before any work (limits, the report directory, the endpoints), then the one
    preparation that must precede every socket: the open-file limit raised to fit --concurrency."""
    if options.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    if options.workers is not None and options.workers < 1:
        raise UsageError("--workers must be at least 1 (1: no worker process; default: from the cores)")
    if options.write_reports:
        from .report import check_report_dir  # refuse an unsafe report directory before any work

        check_report_dir(Path(options.report_dir))
    endpoints_resolver(options)(Identity("", "", "", "", options.cloud))  # bad endpoints: refused before any work
    ensure_open_files(options.concurrency)  # last, once the run is accepted; worker processes inherit the limit


def _inventory_key(options: RunOptions, inventory: Inventory) -> str:
    return inventory.path if options.self_link else str(Path(options.inventory).resolve())


def _open_run(journal: Journal, options: RunOptions, inventory: Inventory) -> _OpenRun | RunResult:
    """Start a new run, or resume the last unfinished one (a RunResult when there is nothing to resume)."""
    key = _inventory_key(options, inventory)
    if options.resume:
        return _resume_run(journal, options, inventory, key)
    run_id = journal.start_run(
        command=options.command.value,
        inventory_path=key,
        inventory_sha256=inventory.sha256,
        inventory_rows=inventory.rows,
        skipped=len(inventory.skipped),
        partner_ids=sorted({i.partner_id for i in inventory.identities}),
        options=options.recorded(),
        tool_version=__version__,
        operator=operator_name(),
    )
    for outcome in skipped_outcomes(inventory, _now()):
        journal.record_outcome(run_id, outcome)
    return _OpenRun(run_id, list(inventory.identities), {}, resumed=False)


def _resume_run(journal: Journal, options: RunOptions, inventory: Inventory, key: str) -> _OpenRun | RunResult:
    unfinished = journal.last_unfinished(key, options.command.value)
    if unfinished is None:
        unreported = journal.last_unreported(key, options.command.value)
        if unreported is not None and options.write_reports:  # finished, then died before its reports
            _report(journal, unreported.run_id, options)
            counts = journal.outcome_counts(unreported.run_id)
            return RunResult(unreported.run_id, int(unreported.exit_code or 0), counts, 0.0, str(journal.path),
                             options.report_dir, inventory, rerendered=True)
        return RunResult(None, 2, {}, 0.0, str(journal.path), None, inventory, nothing_to_resume=True)
    if unfinished.inventory_sha256 != inventory.sha256 and not options.force:
        raise InventoryChangedError(
            f"{options.inventory} changed since run {unfinished.run_id} started "
            "(SHA-256 differs); pass --force to resume with the new content"
        )
    _check_same_options(unfinished.options, options)
    run_id = unfinished.run_id
    journal.reopen_run(run_id)
    journal.take_redo(run_id)  # identities a stop left failed for its shared cause run again
    journal.forget_skipped(run_id)  # the inventory's invalid rows as they are now (--force may have changed it)
    for outcome in skipped_outcomes(inventory, _now()):
        journal.record_outcome(run_id, outcome)
    done = journal.final_keys(run_id)
    todo = [i for i in inventory.identities if i.key not in done]
    principals = {o.object_id.lower(): (o.key, f"{o.source}:{o.line}") for o in journal.iter_outcomes(run_id)
                  if o.object_id and o.status is not Status.SKIPPED}
    return _OpenRun(run_id, todo, journal.intents(run_id), resumed=True, principals=principals)


def _work(
    journal: Journal,
    run: _OpenRun,
    options: RunOptions,
    progress: Progress,
    sleep: Sleep | None,
    recognizer_factory: RecognizerFactory | None,
    announce: Callable[[str], None],
) -> Stop | None:
    """Fan out over what is left, journaling each outcome as it arrives; returns the stop, if the run stopped."""
    breaker = Breaker(len(run.todo), options.concurrency)
    stopped: list[Outcome] = []

    def on_outcome(outcome: Outcome) -> None:
        journal.record_outcome(run.run_id, outcome)
        breaker.observe(outcome)
        if outcome.shared_cause is not None:
            stopped.append(outcome)
        progress.advance(outcome)

    def on_intent(key: str, action: str, partner_id: str) -> Awaitable[None]:
        return committer.submit(key, action, partner_id)

    committer = IntentCommitter(journal, run.run_id)
    progress.start(len(run.todo))
    try:
        run_interruptible(_fan_out(options, run, breaker, on_outcome, on_intent, sleep=sleep,
                                   recognizer_factory=recognizer_factory, announce=announce))
    except KeyboardInterrupt:
        raise Interrupted(run.run_id, options.command) from None
    except WorkerDiedError:
        raise  # the run stays unfinished: --resume continues it
    except PalError:
        journal.finish_run(run.run_id, 2)  # a run-level failure ends the run: --resume must not pick it up later
        raise
    except sqlite3.Error as exc:
        raise JournalError(f"writing the journal {journal.path} failed: {exc}") from exc
    finally:
        progress.finish()
    stop = breaker.tripped
    if stop is not None:
        redo = [o.key for o in stopped if _same_cause(o, stop)]
        journal.mark_redo(run.run_id, redo)
        stop = replace(stop, count=max(stop.count, len(redo)))  # the ones in flight when it tripped count too
    return stop


def _same_cause(outcome: Outcome, stop: Stop) -> bool:
    cause = outcome.shared_cause
    return cause is not None and (cause.kind, cause.subject.lower()) == (stop.cause.kind, stop.cause.subject.lower())


def _finish(
    journal: Journal, run: _OpenRun, options: RunOptions, stop: Stop | None, elapsed_s: float
) -> RunResult:
    """Close the run (a stopped run stays open for --resume) and render its reports from the journal."""
    counts = journal.outcome_counts(run.run_id)
    code = STOPPED_EXIT_CODE if stop is not None else exit_code_for(options.command, counts)
    if stop is None:
        journal.finish_run(run.run_id, code)
    report_dir: str | None = None
    report_error: str | None = None
    if options.write_reports:
        try:
            _report(journal, run.run_id, options, mark=stop is None)
            report_dir = options.report_dir
        except ReportWriteError as exc:  # the work is done and journaled: say so, and how to render later
            report_error = f"{exc}; then `pal-orchestrator report {run.run_id}` writes them from the journal"
            code = ReportWriteError.exit_code
    return RunResult(run.run_id, code, counts, elapsed_s, str(journal.path), report_dir, None,
                     resumed=run.resumed, stop=stop.message(options.command) if stop else None,
                     report_error=report_error)


#: Options that decide what a run writes: a resume must use the ones the run was started with.
_RESUME_OPTIONS = ("partner_id", "key_vault", "cloud", "authority_host", "arm_endpoint", "overwrite", "self_link")


def _check_same_options(recorded: dict[str, Any], options: RunOptions) -> None:
    """Refuse to resume with different write-deciding options (a run has one target), unless --force."""
    if options.force:
        return
    current = options.recorded()
    changed = [name for name in _RESUME_OPTIONS if str(recorded.get(name)) != str(current.get(name))]
    if changed:
        was = ", ".join(f"--{name.replace('_', '-')} was {recorded.get(name)!r}" for name in changed)
        raise UsageError(f"--resume must use the options the run started with ({was}); pass --force to override")


def _report(journal: Journal, run_id: str, options: RunOptions, *, mark: bool = True) -> None:
    """Render the reports from the journal, then record that they exist (resume re-renders otherwise)."""
    from .report import write_reports  # pandas is imported only when reports are written

    write_reports(journal, run_id, options.report_dir, expiry_warning_days=options.expiry_warning_days,
                  baseline_id=options.baseline)
    if mark:
        journal.mark_reported(run_id)


def _now() -> datetime:
    from .journal import utcnow

    return utcnow()


async def _fan_out(
    options: RunOptions, run: _OpenRun, breaker: Breaker, on_outcome: Callable[[Outcome], None],
    on_intent: Callable[[str, str, str], Awaitable[None] | None], *, sleep: Sleep | None,
    recognizer_factory: RecognizerFactory | None, announce: Callable[[str], None],
) -> None:
    """In this process (one session, then the pool over every identity left), or over worker processes that
    ask this one for every cross-identity decision (workers/)."""
    guard = NameGuard(run.expected_names, announce) if options.command is Command.LINK else None
    injected = sleep is not None or _injected(recognizer_factory)
    count = worker_count(options, len(run.todo), injected=injected)
    if count > 1:
        hooks = ParentHooks(on_intent, FirstRows(run.principals), guard, run.prior)
        await WorkerPool(count, options, hooks, breaker, on_outcome).run(run.todo)
        return
    from .fanout import Hooks, Needs, pool, session  # the SDKs: only a run in this process needs them here

    if recognizer_factory is None and options.recognition:
        from .recognition import recognizer_factory  # as each worker process builds it
    local = Hooks(on_intent, run.prior, FirstRows(run.principals), guard)
    async with session(options, Needs.of(run.todo, options), local, sleep=sleep,
                       recognizer_factory=recognizer_factory) as ctx:
        await pool(run.todo, ctx, options.concurrency, breaker, on_outcome)


def _injected(factory: RecognizerFactory | None) -> bool:
    """A recognizer other than recognition's own (a test's): it cannot cross to a worker process."""
    if factory is None:
        return False
    from .recognition import recognizer_factory  # already imported by whoever passed a factory

    return factory is not recognizer_factory


def _self_inventory(options: RunOptions, announce: Callable[[str], None]) -> Inventory:
    from .self_link import self_inventory  # signs in here: the SDKs are imported for --self only

    return self_inventory(options, announce)
