"""Memory at scale (issue 17): a 100,000-row run must not hold one copy of a repeated value per row.

These tests prove the sharing that keeps a report's and an inventory's memory down, and that it changes no value.
"""

from __future__ import annotations

import io
import random
import sqlite3
from pathlib import Path

import pytest

from orchestrator.inventory import load_inventory, write_sample_inventory
from orchestrator.inventory.tables import _LINE, _handed_on
from orchestrator.journal import Journal
from orchestrator.journal_rows import outcome_of_row
from orchestrator.report import synthetic_run
from orchestrator.report.rows import ColumnRows


def _plain_outcomes(path: Path, run_id: str) -> list[object]:
    """The run's outcomes read row by row without any sharing, as the journal read them before."""
    db = sqlite3.connect(path)
    try:
        cur = db.execute("SELECT * FROM outcomes WHERE run_id=? ORDER BY seq", (run_id,))
        names = [d[0] for d in cur.description]
        return [outcome_of_row(dict(zip(names, row, strict=True))) for row in cur]
    finally:
        db.close()


def test_a_runs_outcomes_share_their_repeated_values_and_equal_the_unshared_ones(tmp_path: Path) -> None:
    """Equal partner IDs, customers, expiry dates, recognitions and extras are one object across the run's rows."""
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        run_id = synthetic_run(journal, 300, customers=10)
        outcomes = journal.outcomes(run_id)
    assert outcomes == _plain_outcomes(path, run_id)
    assert len({id(o.target_partner_id) for o in outcomes}) == 1
    assert len({id(o.credential_type) for o in outcomes}) == 1
    assert len({id(o.customer) for o in outcomes}) == len({o.customer for o in outcomes})
    expiries = [o.credential_expires_on for o in outcomes if o.credential_expires_on]
    assert len({id(e) for e in expiries}) == len(set(expiries))
    recognitions = [o.recognition for o in outcomes if o.recognition]
    assert len({id(r) for r in recognitions}) == len(set(recognitions))
    values = [v for o in outcomes for _, v in o.extra]
    assert len({id(v) for v in values}) == len(set(values))


def test_the_csv_reader_splits_lines_exactly_as_stringio_does() -> None:
    """Only \\r\\n, \\r and \\n end a CSV line (not \\x0b, \\x85 or U+2028), the last line may lack one: the same lines
    `io.StringIO(text, newline="").readlines()` gave, whose copy of the text the reader no longer makes."""
    rng = random.Random(17)
    alphabet = ["a", "é", ",", '"', "\r", "\n", "\r\n", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\ufeff"]
    for _ in range(5000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 24)))
        assert _LINE.findall(text) == io.StringIO(text, newline="").readlines(), repr(text)


def test_an_inventorys_repeated_values_are_one_object_and_its_lines_are_let_go(tmp_path: Path) -> None:
    """1,000 rows of one partner ID hold one partner ID string; equal extra columns are one tuple; the values and
    the line numbers are those of the file."""
    path = write_sample_inventory(tmp_path / "inventory.csv", 1000)
    inventory = load_inventory(path)
    identities = inventory.identities
    assert len(identities) == 1000 and not inventory.problems
    assert len({id(i.partner_id) for i in identities}) == 1
    assert len({id(i.extra) for i in identities}) == len({i.extra for i in identities}) == 17
    assert [i.line for i in identities] == list(range(2, 1002))
    assert identities[4].customer == "Customer 000005, Ltd"
    assert identities[4].extra == (("Owner", "owner5@example.com"),)
    assert identities[4].secret_uri == "https://pal-bench-kv.vault.azure.net/secrets/sp-000005"


def test_the_csv_lines_are_emptied_as_the_reader_takes_them() -> None:
    """Each line is let go once read, so a big file's lines and its identities are not all held at once."""
    lines = ["header\n", "a\n", "b\n"]
    taken = []
    for line in _handed_on(lines, 1):
        taken.append(line)
        assert lines[len(taken)] == ""
    assert taken == ["a\n", "b\n"] and lines == ["header\n", "", ""]


def test_column_rows_behave_like_the_list_of_row_tuples_they_replace() -> None:
    """len, indexing, slices (of slices) and iteration give what `list(zip(*columns))` gives, without the copy."""
    columns = [list(range(10)), [f"v{i}" for i in range(10)], [None] * 10]
    rows = ColumnRows(columns)
    expected = list(zip(*columns, strict=True))
    assert len(rows) == 10 and list(rows) == expected
    assert rows[3] == expected[3] and rows[-1] == expected[-1]
    assert list(rows[2:7]) == expected[2:7] and list(rows[2:7][1:3]) == expected[3:5]
    assert list(rows[:500]) == expected and list(rows[8:2]) == [] and len(rows[8:2]) == 0
    assert list(rows[::3]) == expected[::3]
    assert list(ColumnRows([])) == [] and len(ColumnRows([])) == 0
    with pytest.raises(IndexError):
        rows[10]
