"""The run journal: SQLite, written as results arrive, so no obtained result is ever lost.

Reports are rendered from here, never from memory. Each outcome is committed before the next is
reported; an *intent* is committed before any write to Azure, so `--resume` can tell a link this run
wrote (then crashed) from one that predates it. Files are created 0600; no secret ever enters.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import JournalBusyError, JournalError
from .journal_rows import OutcomeReader, iso, outcome_of_row, parse_dt, recognition_json
from .models import LighthouseRow, LighthouseVerdict, Outcome, Status

#: 2: the `redo` table (outcomes a stopped run will run again on --resume).
#: 3: outcomes.secret_uri, trace_id, correlation_id (a row traced to its vault and to Microsoft support's IDs).
SCHEMA_VERSION = 3

#: Commands whose runs describe the state of links, so a later run can be compared with them (a baseline).
BASELINE_COMMANDS: tuple[str, ...] = ("link", "audit")
#: A run ended by a run-level error (exit 2: operator sign-in, journal, endpoint) describes no state: never a
#: baseline, never latest/. (SQL text, constant.)
_COMPLETED = "AND COALESCE(exit_code, 0) != 2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    inventory_path TEXT NOT NULL,
    inventory_sha256 TEXT NOT NULL,
    inventory_rows INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    partner_ids TEXT NOT NULL,
    options TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    operator TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    exit_code INTEGER,
    reported_at TEXT
);
CREATE TABLE IF NOT EXISTS outcomes (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    customer TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    client_id TEXT NOT NULL,
    target_partner_id TEXT NOT NULL,
    status TEXT NOT NULL,
    credential_type TEXT,
    linked_partner_id TEXT,
    partner_name TEXT,
    object_id TEXT,
    created_time TEXT,
    updated_time TEXT,
    error_code TEXT,
    error_message TEXT,
    attempts INTEGER NOT NULL,
    elapsed_s REAL NOT NULL,
    credential_expires_on TEXT,
    checked_at TEXT,
    wait_s REAL,
    recognition TEXT,
    extra TEXT NOT NULL,
    source TEXT NOT NULL,
    line INTEGER NOT NULL,
    secret_uri TEXT,
    trace_id TEXT,
    correlation_id TEXT,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS intents (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS redo (
    run_id TEXT NOT NULL,
    key TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE IF NOT EXISTS lighthouse (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    customer_tenant_id TEXT NOT NULL,
    subscription_id TEXT NOT NULL,
    subscription_name TEXT NOT NULL,
    customer_name TEXT NOT NULL,
    offer TEXT NOT NULL,
    definition_id TEXT NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    fix TEXT NOT NULL,
    principal_ids TEXT NOT NULL,
    roles TEXT NOT NULL,
    error_code TEXT,
    checked_at TEXT,
    PRIMARY KEY (run_id, subscription_id, definition_id)
);
CREATE INDEX IF NOT EXISTS runs_by_inventory ON runs(inventory_path, started_at);
"""


def default_journal_path() -> Path:
    """Where the journal lives unless --journal / PAL_JOURNAL says otherwise: the user's state directory
    (`$XDG_STATE_HOME/pal-orchestrator/journal.sqlite`, by default `~/.local/state/...`).

    Outside the report folder on purpose: deleting or uploading reports (`make clean`, a CI artifact) must
    never take the history that next quarter's run is compared with.
    """
    state = os.environ.get("XDG_STATE_HOME", "")
    if state and Path(state).is_absolute():
        return Path(state) / "pal-orchestrator" / "journal.sqlite"
    try:
        return Path.home() / ".local" / "state" / "pal-orchestrator" / "journal.sqlite"
    except (RuntimeError, KeyError):  # no home directory (a bare container user): beside the working directory
        return Path("journal") / "journal.sqlite"


#: The default --journal, resolved when the program starts.
DEFAULT_JOURNAL = str(default_journal_path())


def utcnow() -> datetime:
    """All timestamps are UTC-aware."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run as the journal knows it."""

    run_id: str
    command: str
    inventory_path: str
    inventory_sha256: str
    inventory_rows: int
    skipped: int
    partner_ids: tuple[str, ...]
    options: dict[str, Any] = field(hash=False)
    tool_version: str
    operator: str
    started_at: datetime
    finished_at: datetime | None
    exit_code: int | None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


def _create_private(path: Path) -> None:
    """Create `path` 0600 if missing, whatever the umask (SQLite's -wal/-shm inherit this mode)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


class Journal:
    """A SQLite run journal. Open it with `Journal(path)`; use `lock()` for a run that writes."""

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False) -> None:
        """Open (and create, unless `read_only`) the journal. Read-only opening is what `runs` and `report` use: it
        never creates a file for a mistyped --journal and works on archived evidence the user cannot write."""
        self.path = Path(path)
        self._lock_fd: int | None = None
        self._wal_fd: int | None = None
        self.wal = False
        self._sync_lock = threading.Lock()
        self._seq = 0
        if read_only:
            self._db = self._open_read_only()
            self._check_version()
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._check_version()
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()
            self.wal = bool(mode) and str(mode[0]).lower() == "wal"  # False: `sync()` is unavailable
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            self._migrate()
            self._db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        except (OSError, sqlite3.Error) as exc:
            raise JournalError(f"cannot open the journal {self.path}: {exc}") from exc
        for suffix in ("-wal", "-shm"):
            side = Path(f"{self.path}{suffix}")
            if side.exists():
                os.chmod(side, 0o600)

    def _open_read_only(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise JournalError(f"no journal at {self.path} — check --journal (`pal-orchestrator runs --journal "
                               "PATH` lists the runs of one)")
        uri = self.path.resolve().as_uri()
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error:
            pass  # a WAL journal in a read-only directory cannot make its -shm: read it as immutable evidence
        try:
            db = sqlite3.connect(f"{uri}?immutable=1", uri=True, isolation_level=None, check_same_thread=False)
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return db
        except sqlite3.Error as exc:
            raise JournalError(f"cannot read the journal {self.path}: {exc}") from exc

    def _check_version(self) -> None:
        """A journal written by a newer version is refused before anything is read or sent."""
        try:
            row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.Error:
            return  # no meta table yet: a new journal, or one from before versions were recorded
        version = int(row[0]) if row and str(row[0]).isdigit() else 0
        if version > SCHEMA_VERSION:
            self._db.close()
            raise JournalError(
                f"the journal {self.path} was written by a newer pal-orchestrator (schema {version}; this version "
                f"reads up to {SCHEMA_VERSION}): upgrade pal-orchestrator, or pass another --journal"
            )

    def _migrate(self) -> None:
        """Bring a journal written by an older version up to date (columns are only ever added)."""
        outcome_columns = {row[1] for row in self._db.execute("PRAGMA table_info(outcomes)")}
        for name in ("secret_uri", "trace_id", "correlation_id"):  # schema 3: where to trace a row
            if name not in outcome_columns:
                self._db.execute(f"ALTER TABLE outcomes ADD COLUMN {name} TEXT")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(runs)")}
        if "reported_at" not in columns:
            self._db.execute("ALTER TABLE runs ADD COLUMN reported_at TEXT")
            # runs that finished under the old schema had their reports written then: nothing to resume
            self._db.execute("UPDATE runs SET reported_at=finished_at WHERE finished_at IS NOT NULL")

    # -- lifecycle -------------------------------------------------------------------------------

    def lock(self) -> None:
        """Refuse a second concurrent run on this journal (an OS lock, released even on kill -9)."""
        lock_path = Path(f"{self.path}.lock")
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        os.chmod(lock_path, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            raise JournalBusyError(
                f"another pal-orchestrator run is using the journal {self.path}; "
                "wait for it to finish or pass a different --journal"
            ) from exc
        self._lock_fd = fd

    def close(self) -> None:
        self._db.close()
        if self._wal_fd is not None:
            os.close(self._wal_fd)
            self._wal_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writes ----------------------------------------------------------------------------------

    def start_run(
        self,
        *,
        command: str,
        inventory_path: str,
        inventory_sha256: str,
        inventory_rows: int,
        skipped: int,
        partner_ids: list[str],
        options: dict[str, Any],
        tool_version: str,
        operator: str,
        started_at: datetime | None = None,
    ) -> str:
        """Record a new run and return its ID (time-ordered, unique)."""
        start = started_at or utcnow()
        run_id = f"{start:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        self._db.execute(
            "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,NULL,NULL,NULL)",
            (
                run_id,
                command,
                inventory_path,
                inventory_sha256,
                inventory_rows,
                skipped,
                json.dumps(sorted(set(partner_ids))),
                json.dumps(options, sort_keys=True, default=str),
                tool_version,
                operator,
                iso(start),
            ),
        )
        self._seq = 0
        return run_id

    def reopen_run(self, run_id: str) -> None:
        """Continue a run (for `--resume`): new outcomes are numbered after the recorded ones."""
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM outcomes WHERE run_id=?", (run_id,)).fetchone()
        self._seq = int(row[0])
        self._db.execute("UPDATE runs SET finished_at=NULL, exit_code=NULL WHERE run_id=?", (run_id,))

    def mark_redo(self, run_id: str, keys: list[str]) -> None:
        """Outcomes a stopped run recorded for its shared cause: `--resume` runs these identities again."""
        self._db.executemany("INSERT OR IGNORE INTO redo VALUES (?,?)", [(run_id, key) for key in keys])

    def forget_skipped(self, run_id: str) -> None:
        """Drop a run's `skipped` outcomes (a resume re-records those of the inventory as it is now)."""
        self._db.execute("DELETE FROM outcomes WHERE run_id=? AND status=?", (run_id, Status.SKIPPED.value))

    def take_redo(self, run_id: str) -> set[str]:
        """Forget the outcomes marked for redo (in one transaction) and return their keys."""
        keys = {r[0] for r in self._db.execute("SELECT key FROM redo WHERE run_id=?", (run_id,))}
        if keys:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute(
                    "DELETE FROM outcomes WHERE run_id=? AND key IN (SELECT key FROM redo WHERE run_id=?)",
                    (run_id, run_id),
                )
                self._db.execute("DELETE FROM redo WHERE run_id=?", (run_id,))
        return keys

    def record_intent(self, run_id: str, key: str, action: str, partner_id: str) -> None:
        """Committed durably (fsync, even against a power loss) before a write to Azure is sent."""
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            self.write_intent(run_id, key, action, partner_id)
        finally:
            self._db.execute("PRAGMA synchronous=NORMAL")

    def write_intent(self, run_id: str, key: str, action: str, partner_id: str) -> None:
        """Commit an intent without waiting for the disk; it is durable once `sync()` returns (IntentCommitter)."""
        self._db.execute(
            "INSERT OR REPLACE INTO intents VALUES (?,?,?,?,?)", (run_id, key, action, partner_id, iso(utcnow())))

    def sync(self) -> None:
        """Make every transaction committed before this call durable, as `synchronous=FULL` makes each commit.

        In WAL mode a commit is written to the `-wal` file; FULL adds an fsync of that file per commit, NORMAL
        leaves it to the next checkpoint (which fsyncs the WAL, then the database). One fsync of the WAL here
        covers every commit written before it. It touches no SQLite connection, so it may run in a thread while
        the event loop goes on; the first call also syncs the database file and its directory (a new journal).
        """
        with self._sync_lock:
            if self._wal_fd is None:
                for target in (self.path, self.path.parent):
                    fd = os.open(target, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                self._wal_fd = os.open(f"{self.path}-wal", os.O_RDONLY)
            os.fsync(self._wal_fd)

    def record_outcome(self, run_id: str, outcome: Outcome) -> None:
        """Commit one identity's final outcome (the first one recorded for a key wins)."""
        self._seq += 1
        rec = outcome.recognition
        values = {
            "run_id": run_id, "key": outcome.key, "seq": self._seq, "customer": outcome.customer,
            "tenant_id": outcome.tenant_id, "client_id": outcome.client_id,
            "target_partner_id": outcome.target_partner_id, "status": outcome.status.value,
            "credential_type": outcome.credential_type, "linked_partner_id": outcome.linked_partner_id,
            "partner_name": outcome.partner_name, "object_id": outcome.object_id,
            "created_time": iso(outcome.created_time), "updated_time": iso(outcome.updated_time),
            "error_code": outcome.error_code, "error_message": outcome.error_message, "attempts": outcome.attempts,
            "elapsed_s": outcome.elapsed_s, "credential_expires_on": iso(outcome.credential_expires_on),
            "checked_at": iso(outcome.checked_at), "wait_s": outcome.wait_s, "recognition": recognition_json(rec),
            "extra": json.dumps(dict(outcome.extra)), "source": outcome.source, "line": outcome.line,
            "secret_uri": outcome.secret_uri, "trace_id": outcome.trace_id, "correlation_id": outcome.correlation_id,
        }
        self._db.execute(  # named columns: a journal upgraded in place may order them differently
            f"INSERT OR IGNORE INTO outcomes ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",  # noqa: S608 - constant column names
            tuple(values.values()),
        )

    def finish_run(self, run_id: str, exit_code: int, finished_at: datetime | None = None) -> None:
        self._db.execute(
            "UPDATE runs SET finished_at=?, exit_code=? WHERE run_id=?",
            (iso(finished_at or utcnow()), exit_code, run_id),
        )

    def mark_reported(self, run_id: str) -> None:
        """The run's reports were written: `--resume` has nothing left to do for it."""
        self._db.execute("UPDATE runs SET reported_at=? WHERE run_id=?", (iso(utcnow()), run_id))

    # -- reads -----------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRecord:
        row = self._db.execute("SELECT * FROM runs WHERE run_id=?", (run_id,)).fetchone()
        if row is None:
            raise JournalError(f"no run {run_id!r} in the journal {self.path}; `pal-orchestrator runs` lists them")
        return _run_record(row)

    def runs(self, *, inventory_path: str | None = None) -> list[RunRecord]:
        """All runs, oldest first (optionally of one inventory path)."""
        if inventory_path is None:
            rows = self._db.execute("SELECT * FROM runs ORDER BY started_at, run_id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM runs WHERE inventory_path=? ORDER BY started_at, run_id", (inventory_path,)
            ).fetchall()
        return [_run_record(r) for r in rows]

    def last_unfinished(self, inventory_path: str, command: str) -> RunRecord | None:
        """The latest run of this inventory and command, if it did not finish (an older one is never resumed)."""
        row = self._db.execute(
            "SELECT * FROM runs WHERE inventory_path=? AND command=? ORDER BY started_at DESC, run_id DESC LIMIT 1",
            (inventory_path, command),
        ).fetchone()
        return _run_record(row) if row and row[11] is None else None

    def last_unreported(self, inventory_path: str, command: str) -> RunRecord | None:
        """The latest finished run whose reports were never written (a crash between the two)."""
        row = self._db.execute(
            "SELECT * FROM runs WHERE inventory_path=? AND command=? ORDER BY started_at DESC, run_id DESC LIMIT 1",
            (inventory_path, command),
        ).fetchone()
        if row is None or row[11] is None or row[13] is not None:
            return None
        return _run_record(row)

    def family_runs(self, run_id: str, commands: tuple[str, ...] = BASELINE_COMMANDS) -> list[RunRecord]:
        """The finished runs of `commands` that started before `run_id` and covered any of its identities
        (tenant + client ID), oldest first, whatever their inventory file was called.

        A quarter's inventory is often a new file (customers-Q4.csv); history follows the identities, not the path.
        """
        current = self.run(run_id)
        marks = ",".join("?" * len(commands))
        rows = self._db.execute(
            f"SELECT * FROM runs r WHERE r.command IN ({marks}) AND r.finished_at IS NOT NULL {_COMPLETED} "  # noqa: S608
            "AND r.run_id != ? AND (r.started_at < ? OR (r.started_at = ? AND r.run_id < ?)) "
            "AND EXISTS (SELECT 1 FROM outcomes a JOIN outcomes b ON b.run_id = ? AND b.key = a.key "
            "WHERE a.run_id = r.run_id AND a.key NOT LIKE 'skipped|%') "
            "ORDER BY r.started_at, r.run_id",
            (*commands, run_id, iso(current.started_at), iso(current.started_at), run_id, run_id),
        ).fetchall()
        return [_run_record(r) for r in rows]

    def baseline(self, run_id: str) -> RunRecord | None:
        """The run `run_id` is compared with: the latest finished `link` or `audit` run before it that covered
        any of its identities (`plan` and `unlink` runs describe no state of links to compare with)."""
        family = self.family_runs(run_id)
        return family[-1] if family else None

    def baseline_run(self, run_id: str) -> RunRecord:
        """A run named as a baseline (--baseline): it must exist and be a finished `link` or `audit` run."""
        chosen = self.run(run_id)
        if chosen.command not in BASELINE_COMMANDS or not chosen.finished or chosen.exit_code == 2:
            raise JournalError(
                f"run {run_id} ({chosen.command}, {'finished' if chosen.finished else 'not finished'}) cannot be a "
                "baseline: name a finished `link` or `audit` run (`pal-orchestrator runs` lists them)"
            )
        return chosen

    def latest_finished(self, commands: tuple[str, ...] = BASELINE_COMMANDS) -> RunRecord | None:
        """The last finished run of `commands` (the one `reports/latest/` shows): the one that finished last, so a
        run resumed to its end after a later audit is the latest."""
        marks = ",".join("?" * len(commands))
        row = self._db.execute(
            f"SELECT * FROM runs WHERE command IN ({marks}) AND finished_at IS NOT NULL {_COMPLETED} "  # noqa: S608
            "ORDER BY finished_at DESC, started_at DESC, run_id DESC LIMIT 1",
            commands,
        ).fetchone()
        return _run_record(row) if row else None

    def outcomes(self, run_id: str) -> list[Outcome]:
        """Every recorded outcome of a run, in the order they were recorded."""
        return list(self.iter_outcomes(run_id))

    def iter_outcomes(self, run_id: str) -> Iterator[Outcome]:
        cur = self._db.execute("SELECT * FROM outcomes WHERE run_id=? ORDER BY seq", (run_id,))
        names = [d[0] for d in cur.description]
        read = OutcomeReader().outcome  # a run's outcomes share their repeated values (a 100k-row report's memory)
        for row in cur:
            yield read(dict(zip(names, row, strict=True)))

    def outcome_counts(self, run_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT status, COUNT(*) FROM outcomes WHERE run_id=? GROUP BY status", (run_id,)
        ).fetchall()
        return {str(s): int(n) for s, n in rows}

    def partner_names(self) -> dict[str, str]:
        """partner ID → the latest name the service gave it in any run (the partner-name guard's memory)."""
        rows = self._db.execute(
            "SELECT lower(linked_partner_id), partner_name FROM outcomes WHERE partner_name IS NOT NULL "
            "AND partner_name != '' AND linked_partner_id IS NOT NULL ORDER BY checked_at"
        )
        return {pid: name for pid, name in rows}

    def final_keys(self, run_id: str) -> set[str]:
        return {r[0] for r in self._db.execute("SELECT key FROM outcomes WHERE run_id=?", (run_id,))}

    def intents(self, run_id: str) -> dict[str, tuple[str, str]]:
        """key → (action, partner_id) of every write this run announced."""
        rows = self._db.execute("SELECT key, action, partner_id FROM intents WHERE run_id=?", (run_id,))
        return {k: (a, p) for k, a, p in rows}

    def latest_by_object_id(self) -> dict[str, Outcome]:
        """object ID (lower-case) → the latest outcome recorded for that principal in any run (what `lighthouse`
        knows about the principals an offer names without signing in as them). The object ID is the one the
        sign-in's token gave, else an inventory column `object_id` (carried over), for rows that never signed in."""
        cur = self._db.execute(
            "SELECT o.* FROM outcomes o JOIN runs r ON r.run_id = o.run_id WHERE (o.object_id IS NOT NULL "
            "AND o.object_id != '') OR o.extra LIKE '%object_id%' "
            "ORDER BY COALESCE(o.checked_at, r.started_at), r.started_at, o.seq"
        )
        names = [d[0] for d in cur.description]
        latest: dict[str, Outcome] = {}
        for values in cur:
            row = dict(zip(names, values, strict=True))
            object_id = row["object_id"] or json.loads(row["extra"]).get("object_id")
            if object_id:
                latest[str(object_id).strip().lower()] = outcome_of_row(row)
        return latest

    # -- lighthouse runs (additive: their own table) -------------------------------------------------

    def record_lighthouse(self, run_id: str, row: LighthouseRow) -> None:
        """Commit one delegated subscription × offer verdict as soon as it is known (the first one recorded wins)."""
        self._seq += 1
        self._db.execute(
            "INSERT OR IGNORE INTO lighthouse (run_id, seq, customer_tenant_id, subscription_id, subscription_name, "
            "customer_name, offer, definition_id, verdict, reason, fix, principal_ids, roles, error_code, checked_at) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (run_id, self._seq, row.customer_tenant_id, row.subscription_id, row.subscription_name,
             row.customer_name, row.offer,
             row.definition_id, row.verdict.value, row.reason, row.fix, json.dumps(list(row.principal_ids)),
             json.dumps(list(row.roles)), row.error_code, iso(row.checked_at)),
        )

    def lighthouse_rows(self, run_id: str) -> list[LighthouseRow]:
        """Every verdict of a lighthouse run, by customer tenant, then subscription, then offer."""
        cur = self._db.execute(
            "SELECT customer_tenant_id, subscription_id, offer, definition_id, verdict, reason, fix, "
            "subscription_name, customer_name, principal_ids, roles, error_code, checked_at FROM lighthouse "
            "WHERE run_id=? "
            "ORDER BY customer_tenant_id, subscription_id, offer, definition_id", (run_id,))
        return [
            LighthouseRow(r[0], r[1], r[2], r[3], LighthouseVerdict(r[4]), r[5], r[6], r[7], r[8],
                          tuple(json.loads(r[9])), tuple(json.loads(r[10])), r[11], parse_dt(r[12]))
            for r in cur
        ]

    def integrity_ok(self) -> bool:
        return bool(self._db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")


def _run_record(row: tuple[Any, ...]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        command=row[1],
        inventory_path=row[2],
        inventory_sha256=row[3],
        inventory_rows=row[4],
        skipped=row[5],
        partner_ids=tuple(json.loads(row[6])),
        options=json.loads(row[7]),
        tool_version=row[8],
        operator=row[9],
        started_at=datetime.fromisoformat(row[10]),
        finished_at=parse_dt(row[11]),
        exit_code=row[12],
    )
