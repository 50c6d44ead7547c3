"""The journal: private files, upgrade of older journals, one writer at a time."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from orchestrator.errors import JournalBusyError, JournalError
from orchestrator.intents import IntentCommitter
from orchestrator.journal import Journal


def test_a_journal_from_an_older_version_is_upgraded_in_place(tmp_path: Path) -> None:
    """A runs table without reported_at (an earlier release) gains the column; old runs stay readable."""
    path = tmp_path / "journal.sqlite"
    _old_journal(path)
    with Journal(path) as journal:
        assert [r.run_id for r in journal.runs()] == ["old"]
        run_id = journal.start_run(command="link", inventory_path="/inv.csv", inventory_sha256="abc",
                                   inventory_rows=1, skipped=0, partner_ids=["1234567"], options={},
                                   tool_version="x", operator="op")
        journal.finish_run(run_id, 0)
        assert journal.last_unreported("/inv.csv", "link") is not None
        journal.mark_reported(run_id)
        assert journal.last_unreported("/inv.csv", "link") is None


def test_only_one_run_holds_the_journal(tmp_path: Path) -> None:
    """A second lock on the same journal is refused with JournalBusyError; it is free again after close."""
    first = Journal(tmp_path / "j.sqlite")
    first.lock()
    second = Journal(tmp_path / "j.sqlite")
    with pytest.raises(JournalBusyError):
        second.lock()
    first.close()
    second.lock()
    second.close()
    assert (tmp_path / "j.sqlite").stat().st_mode & 0o077 == 0


def _old_journal(path: Path) -> None:
    """A journal as an earlier release wrote it: no reported_at, one finished run."""
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE runs (run_id TEXT PRIMARY KEY, command TEXT NOT NULL, inventory_path TEXT NOT NULL, "
        "inventory_sha256 TEXT NOT NULL, inventory_rows INTEGER NOT NULL, skipped INTEGER NOT NULL, "
        "partner_ids TEXT NOT NULL, options TEXT NOT NULL, tool_version TEXT NOT NULL, operator TEXT NOT NULL, "
        "started_at TEXT NOT NULL, finished_at TEXT, exit_code INTEGER)"
    )
    db.execute("INSERT INTO runs VALUES ('old', 'link', '/inv.csv', 'abc', 1, 0, '[]', '{}', '0.0.1', 'op', "
               "'2026-01-01T00:00:00+00:00', '2026-01-01T00:01:00+00:00', 0)")
    db.commit()
    db.close()


def test_a_finished_run_of_an_older_journal_is_not_offered_for_resume(tmp_path: Path) -> None:
    """Upgrading an old journal must not make its finished runs look unreported (resume would re-render them)."""
    path = tmp_path / "journal.sqlite"
    _old_journal(path)
    with Journal(path) as journal:
        assert journal.last_unreported("/inv.csv", "link") is None


def test_a_journal_from_a_newer_version_is_refused_on_open(tmp_path: Path) -> None:
    """A newer schema is refused with the versions and the fix before anything is read or written."""
    path = tmp_path / "journal.sqlite"
    with Journal(path):
        pass
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    for read_only in (False, True):
        with pytest.raises(JournalError, match="newer pal-orchestrator"):
            Journal(path, read_only=read_only)


def test_read_only_opening_reads_archived_evidence_and_never_creates_a_file(tmp_path: Path) -> None:
    """`runs` and `report` open read-only: a mistyped path is an error (no file, no folder), and a journal in a
    read-only folder (archived audit evidence) is readable."""
    missing = tmp_path / "typo" / "journal.sqlite"
    with pytest.raises(JournalError, match="no journal at"):
        Journal(missing, read_only=True)
    assert not missing.parent.exists()

    archive = tmp_path / "archive"
    archive.mkdir()
    path = archive / "journal.sqlite"
    with Journal(path) as journal:
        journal.start_run(command="link", inventory_path="/inv.csv", inventory_sha256="abc", inventory_rows=1,
                          skipped=0, partner_ids=["1234567"], options={}, tool_version="t", operator="op")
    for side in archive.glob("journal.sqlite-*"):
        side.unlink()
    path.chmod(0o400)
    archive.chmod(0o500)
    try:
        with Journal(path, read_only=True) as journal:
            assert len(journal.runs()) == 1
    finally:
        archive.chmod(0o700)


class _SlowSyncJournal(Journal):
    """A journal whose fsyncs take 20 ms and whose intent writes and fsyncs are logged in order."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.events: list[tuple[str, str]] = []

    def write_intent(self, run_id: str, key: str, action: str, partner_id: str) -> None:
        self.events.append(("write", key))
        super().write_intent(run_id, key, action, partner_id)

    def sync(self) -> None:
        self.events.append(("sync-start", ""))
        time.sleep(0.02)
        super().sync()
        self.events.append(("sync-end", ""))


def test_group_commit_releases_each_write_only_after_an_fsync_that_began_after_its_intent(tmp_path: Path) -> None:
    """60 concurrent intents, some arriving while an fsync is under way: each writer is released only after an
    fsync that started after its own intent was committed, fsyncs are shared (far fewer than intents), the loop
    keeps running during them, and every intent is in the journal as read by another connection."""
    journal = _SlowSyncJournal(tmp_path / "j.sqlite")
    run_id = journal.start_run(command="link", inventory_path="/inv.csv", inventory_sha256="abc", inventory_rows=60,
                               skipped=0, partner_ids=["1234567"], options={}, tool_version="x", operator="op")
    committer = IntentCommitter(journal, run_id)

    async def writer(key: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await committer.record(key, "link", "1234567")
        journal.events.append(("released", key))

    async def ticker() -> None:
        for _ in range(20):
            await asyncio.sleep(0.005)
            journal.events.append(("tick", ""))

    async def main() -> None:
        await asyncio.gather(ticker(), *(writer(f"k{i}", (i % 6) * 0.01) for i in range(60)))

    asyncio.run(main())
    events = journal.events
    for i in range(60):
        key = f"k{i}"
        wrote, released = events.index(("write", key)), events.index(("released", key))
        starts = [n for n, e in enumerate(events) if e[0] == "sync-start" and wrote < n < released]
        assert starts and any(e[0] == "sync-end" for e in events[starts[0]:released]), key
    assert 2 <= committer.syncs <= 15
    during = [e for n, e in enumerate(events) if e[0] == "tick" and _inside_sync(events, n)]
    assert during, "the loop ran while an fsync was under way"
    journal.close()
    with Journal(tmp_path / "j.sqlite", read_only=True) as reader:
        assert set(reader.intents(run_id)) == {f"k{i}" for i in range(60)}


def _inside_sync(events: list[tuple[str, str]], n: int) -> bool:
    before = [e[0] for e in events[:n] if e[0].startswith("sync")]
    return bool(before) and before[-1] == "sync-start"
