"""Run-level failures: the exceptions that stop a whole command (one identity's failure is an Outcome).

    PalError                      base; the CLI maps each to a message and an exit code
    ├── UsageError                bad options or arguments (exit 2)
    ├── InventoryError            the inventory cannot be read at all: not CSV/YAML/XLSX, no header (exit 2)
    │   └── NoValidRowsError      read, but no row is valid, so nothing ran (exit 2)
    ├── JournalError              the journal cannot be opened or a run is not in it (exit 2)
    │   ├── JournalBusyError      another run holds the journal (exit 2)
    │   └── InventoryChangedError --resume of an inventory whose SHA-256 changed, without --force (exit 2)
    ├── OperatorAuthError         the orchestrator's own sign-in (Key Vault, federation MI) failed (exit 2)
    ├── EndpointError             an ARM endpoint cannot be reached or does not answer as ARM (exit 2)
    ├── WorkerError               a worker process (--workers) failed outside any identity (exit 2)
    │   └── WorkerDiedError       a worker died mid-run: the run stays unfinished, `--resume` continues (exit 2)
    └── ReportError               a report cannot be written, e.g. an unsafe report directory (exit 2)
        └── ReportWriteError      the report directory cannot be written (permissions, full disk); after a run's
                                  work is done this is exit 4: results are in the journal, `report RUN_ID` renders
"""

from __future__ import annotations


class PalError(Exception):
    """Base of every run-level failure the CLI knows how to explain."""

    exit_code = 2


class UsageError(PalError):
    """Options or arguments that cannot work together; the message says which and how to fix it."""


class InventoryError(PalError):
    """The inventory file cannot be read as an inventory at all."""


class NoValidRowsError(InventoryError):
    """The inventory was read but not a single row is valid, so nothing ran."""


class JournalError(PalError):
    """The journal cannot be opened, or the run asked for is not in it."""


class JournalBusyError(JournalError):
    """Another run holds the journal's lock."""


class InventoryChangedError(JournalError):
    """`--resume` of an inventory that changed since the run started (pass --force to accept)."""


class OperatorAuthError(PalError):
    """The orchestrator's own sign-in failed: to read Key Vault, or its managed identity for federation rows."""


class EndpointError(PalError):
    """An endpoint the run needs cannot be reached, fails TLS, or answers as something else than Azure."""


class WorkerError(PalError):
    """A worker process of the run failed outside any identity (not one identity's failure: an Outcome)."""


class WorkerDiedError(WorkerError):
    """A worker process died (crash, OOM kill, a signal): the run stays unfinished for `--resume`."""


class ReportError(PalError):
    """A report cannot be written safely."""


class ReportWriteError(ReportError):
    """The report directory cannot be written to (permissions, read-only or full file system)."""

    exit_code = 4
