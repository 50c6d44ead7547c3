"""Memory at scale (issue 17): a 100,000-row run must not hold one copy of a repeated value per row.

These tests prove the sharing that keeps a report's and an inventory's memory down, and that it changes no value.
"""

from __future__ import annotations

import gc
import io
import os
import random
import sqlite3
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.inventory import load_inventory, write_sample_inventory
from orchestrator.inventory.tables import _LINE, _handed_on
from orchestrator.journal import Journal
from orchestrator.journal_rows import outcome_of_row
from orchestrator.models import hand_out
from orchestrator.report import build_view, synthetic_run
from orchestrator.report.rows import CHUNK, Coded, ColumnRows


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


def test_a_run_lets_each_identity_go_once_it_is_handed_out(tmp_path: Path) -> None:
    """The fan-out takes identities in inventory order, each leaving the run's list as it goes: once 10,000 loaded
    rows are all handed out (and dropped, as a dispatched one is), under a tenth of their memory is left."""
    path = write_sample_inventory(tmp_path / "inventory.csv", 10_000)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        identities = list(load_inventory(path).identities)
        gc.collect()
        loaded = tracemalloc.get_traced_memory()[0] - base
        lines = [i.line for i in identities]
        taken: list[int] = []
        for identity in hand_out(identities):
            taken.append(identity.line)
            assert len(identities) == len(lines) - len(taken)  # the list holds only the rest
        del identity
        gc.collect()
        left = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert taken == lines and identities == []
    assert loaded > 10_000 * 300  # the rows themselves (~0.5 KB each)
    assert left < loaded / 10, (loaded, left)  # what is left: the two lists of line numbers


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


def test_a_coded_column_takes_the_smallest_codes_and_gives_back_every_value() -> None:
    """Past 256 distinct values the codes take 2 bytes, past 65,536 4 bytes; reading gives the appended values back
    (by index, span and pick; coded in one chunk or several), a column first seen at row n starts with n Nones,
    equal values are one value and ints and bools stay Python ones."""
    values = [f"v{i % 70_000}" for i in range(140_000)]
    column = Coded(3)
    for i, value in enumerate(values, start=1):
        column.append(value)
        if not i % 50_000:  # coded a chunk at a time, as a run is loaded
            column.flush()
    assert len(column) == 140_003
    column.close()
    expected = [None, None, None, *values]
    assert column.codes.itemsize == 4 and len(column) == len(expected)
    assert column.span(0, len(column)) == expected and column[5] == expected[5]
    assert column.picked([0, 4, 70_004]) == [None, "v1", "v1"]
    assert len({id(v) for v in column.span(0, len(column))}) == 70_001
    small = Coded()
    for text in ("a", "b", "a", None, "b"):
        small.append(text)
    small.close()
    assert small.codes.itemsize == 1 and small.values == ["a", "b", None]
    assert list(small.counts()) == [2, 2, 1] and list(small.rows_where(lambda v: v == "b")) == [1, 4]
    mid = Coded()
    for i in range(300):
        mid.append(i % 2 == 0 if i < 2 else i)
    mid.close()
    assert mid.codes.itemsize == 2 and [type(v) for v in mid.values[:3]] == [bool, bool, int]
    with pytest.raises(AssertionError):
        mid.append("more")


def test_column_rows_read_past_a_chunk_as_the_list_of_rows() -> None:
    """Iteration reads the columns `CHUNK` rows at a time: whole, sliced across a chunk's edge, or picked."""
    n = 2 * CHUNK + 5
    coded = Coded()
    for i in range(n):
        coded.append(i % 7)
    coded.close()
    columns = [list(range(n)), coded]
    expected = [(i, i % 7) for i in range(n)]
    rows = ColumnRows(columns)
    assert list(rows) == expected and list(rows[CHUNK - 2 : CHUNK + 3]) == expected[CHUNK - 2 : CHUNK + 3]
    picked = list(range(0, n, 3))
    assert list(ColumnRows(columns, picked=picked)) == [expected[i] for i in picked]


def test_picked_column_rows_are_the_rows_a_list_comprehension_picks() -> None:
    """A work list's rows (row numbers of the run's columns) index, slice and iterate as the picked tuples would."""
    coded = Coded()
    for i in range(10):
        coded.append(f"s{i % 3}")
    coded.close()
    columns = [list(range(10)), coded]
    picked = [1, 4, 5, 9]
    rows = ColumnRows(columns, picked=picked)
    expected = [(i, f"s{i % 3}") for i in picked]
    assert len(rows) == 4 and list(rows) == expected and rows[-1] == expected[-1]
    assert list(rows[1:3]) == expected[1:3] and list(rows[1:][1:]) == expected[2:]
    assert list(ColumnRows(columns, picked=[])) == []


NOW = datetime(2025, 1, 2, tzinfo=UTC)

_RENDER = """
import resource, sys
from datetime import UTC, datetime
from orchestrator.journal import Journal
from orchestrator.report import write_reports
with Journal(sys.argv[1], read_only=True) as journal:
    write_reports(journal, journal.runs()[-1].run_id, sys.argv[2], now=datetime(2025, 1, 2, tzinfo=UTC))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _render_peak_kib(tmp_path: Path, rows: int) -> int:
    """Peak RSS (KiB) of a fresh process rendering every report of a `rows`-identity run, one customer each (as in
    a real 100,000-identity run)."""
    journal_path = tmp_path / f"journal-{rows}.sqlite"
    with Journal(journal_path) as journal:
        synthetic_run(journal, rows, customers=rows)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", _RENDER, str(journal_path), str(tmp_path / f"reports-{rows}")],
                          env=env, capture_output=True, text=True, check=True, timeout=600)
    return int(done.stdout)


def test_rendering_grows_by_under_1_5_kb_per_identity(tmp_path: Path) -> None:
    """Issue 17: 10,000 more identities (each its own customer, as in a real run) add under 15 MB to the whole
    render's peak RSS (a pandas frame of every column and per-customer objects made it ~2 KB per identity). Each
    render runs in its own process, so the peak is its own; both import pandas (~50 MB, the same in both), and
    both runs are past the HTML's row cap, so only what grows with the rows differs."""
    small = _render_peak_kib(tmp_path, 3_000)
    big = _render_peak_kib(tmp_path, 13_000)
    per_row = (big - small) * 1024 / 10_000
    assert per_row < 1_500, f"{per_row:.0f} bytes per identity"


def test_the_view_of_a_run_allocates_under_700_bytes_per_identity_at_its_peak(tmp_path: Path) -> None:
    """The view of 10,000 identities, each its own customer, peaks under 7 MB of Python allocations (traced, so
    exact): its columns are held once and small (repeated values coded, ~280 bytes of it the tenant, client and
    object IDs as plain text), no table or customer keeps rows of its own (the pandas frame of every column
    peaked at ~1,300 bytes per identity)."""
    with Journal(tmp_path / "journal.sqlite") as journal:
        run_id = synthetic_run(journal, 10_000, customers=10_000)
        build_view(journal, run_id, now=NOW)  # imports and caches warmed, not counted
        gc.collect()
        tracemalloc.start()
        try:
            view = build_view(journal, run_id, now=NOW)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert len(view.tables[1].rows) == 10_000
    assert peak / 10_000 < 700, f"{peak / 10_000:.0f} bytes per identity"
