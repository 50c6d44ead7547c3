"""The journal: private files, upgrade of older journals, one writer at a time."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from orchestrator.errors import JournalBusyError
from orchestrator.journal import Journal


def test_a_journal_from_an_older_version_is_upgraded_in_place(tmp_path: Path) -> None:
    """A runs table without reported_at (an earlier release) gains the column; old runs stay readable."""
    path = tmp_path / "journal.sqlite"
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
