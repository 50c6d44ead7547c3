"""Memory at scale (issue 17): a 100,000-row run must not hold one copy of a repeated value per row.

These tests prove the sharing that keeps a report's and an inventory's memory down, and that it changes no value.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from orchestrator.journal import Journal
from orchestrator.journal_rows import outcome_of_row
from orchestrator.report import synthetic_run


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
