"""Per-customer figures of a run, made from its columns: the Customers table, coverage, recognition, actions.

A run of 100,000 identities can have 100,000 customers; an object per customer (a set of identities, a counter of
statuses, the fixes) cost more than the identities' own columns. Instead the rows are grouped by the customer
column's codes (first-seen order, as the table lists customers) into one array of row numbers (numpy's stable
sort), the covered and recognised flags are worked out on the codes of all rows at once, and each customer's
statuses and fixes are made again from its rows whenever they are needed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from ..models import Recognition, Status
from .load import RunData, identity_of
from .rows import Coded, Column, RowSpan

_ELIGIBLE = Recognition.ELIGIBLE.value
_STATUS_ORDER = {s.value: i for i, s in enumerate(Status)}


def _grouped(codes: npt.NDArray[Any], groups: int) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.intp]]:
    """(row numbers ordered by group, keeping row order within one; where each group starts, plus the end)."""
    order = np.argsort(codes, kind="stable").astype(np.uint32)
    starts = np.zeros(groups + 1, dtype=np.intp)
    np.cumsum(np.bincount(codes, minlength=groups), out=starts[1:])
    return order, starts


def _coded(column: Column) -> Coded:
    assert isinstance(column, Coded)
    return column


class Customers:
    """A run's customers, first seen first: covered?, recognised?, the fixes they need, and their table rows."""

    def __init__(self, data: RunData) -> None:
        cols = data.columns
        customer = _coded(cols["customer"])
        self.names: list[str] = customer.values
        self._status, self._fix, self._recognition_fix = (
            _coded(cols[c]) for c in ("status", "_fix", "_recognition_fix"))
        self._order, self._starts = _grouped(customer.codes, len(self.names))
        self._identities = np.diff(self._starts).astype(np.uint32)
        covered_rows = _coded(cols["_covered"]).rows_where(bool)
        eligible = _coded(cols["recognition"]).rows_where(lambda value: value == _ELIGIBLE)
        self.covered = np.zeros(len(self.names), dtype=bool)
        self.covered[customer.codes[covered_rows]] = True
        self.recognised = np.zeros(len(self.names), dtype=bool)
        self.recognised[customer.codes[np.intersect1d(covered_rows, eligible, assume_unique=True)]] = True
        tenant, client, key = cols["tenant_id"], cols["client_id"], cols["_key"]
        for i in np.flatnonzero(self._identities > 1).tolist():  # a duplicate row of an identity is not another
            self._identities[i] = len({identity_of(tenant[r], client[r], key[r]) for r in self._rows(i)})
        self.actions: dict[str, list[str]] = {}  # fix → the customers that need it, first seen first
        needing = np.union1d(self._fix.rows_where(bool), self._recognition_fix.rows_where(bool))
        for i in np.unique(customer.codes[needing]).tolist():  # codes are first seen first
            for fix in self._open_fixes(i, self._rows(i)):
                self.actions.setdefault(fix, []).append(self.names[i])

    def _rows(self, i: int) -> list[int]:
        rows: list[int] = self._order[self._starts[i] : self._starts[i + 1]].tolist()
        return rows

    def _fixes(self, rows: list[int]) -> dict[str, bool]:
        """fix text → is it the recognition fix (add a role), first seen first, of one customer's rows."""
        fixes: dict[str, bool] = {}
        for r in rows:
            if fix := self._fix[r]:
                fixes.setdefault(fix, False)
            if recognition_fix := self._recognition_fix[r]:
                fixes.setdefault(recognition_fix, True)
        return fixes

    def _open_fixes(self, i: int, rows: list[int]) -> list[str]:
        """Customer `i`'s fixes, first seen first; adding a role is no fix for a customer already recognised."""
        return [fix for fix, add_role in self._fixes(rows).items() if not (add_role and self.recognised[i])]

    def row(self, i: int) -> tuple[Any, ...]:
        rows = self._rows(i)
        recognised = self.recognised[i]
        if len(rows) == 1:  # most customers of a big run: one identity, one status
            statuses = f"{self._status[rows[0]]}: 1"
        else:
            counts = Counter(map(self._status.__getitem__, rows))
            statuses = "; ".join(f"{s}: {n}" for s, n in sorted(counts.items(), key=lambda kv: _STATUS_ORDER[kv[0]]))
        return (
            self.names[i],
            int(self._identities[i]),
            "yes" if self.covered[i] else "no",
            "yes" if recognised else "no",
            statuses,
            "; ".join(self._open_fixes(i, rows)),
        )

    def table_rows(self) -> CustomerRows:
        """The Customers table's rows, made as they are read."""
        return CustomerRows(self, 0, len(self.names))


class CustomerRows(RowSpan):
    """Rows `start`…`stop` of the Customers table; a slice is another view."""

    __slots__ = ("_customers",)

    def __init__(self, customers: Customers, start: int, stop: int) -> None:
        self._customers = customers
        super().__init__(start, stop)

    def _span(self, start: int, stop: int) -> CustomerRows:
        return CustomerRows(self._customers, start, stop)

    def _row(self, row: int) -> tuple[Any, ...]:
        return self._customers.row(row)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return map(self._customers.row, range(self._start, max(self._start, self._stop)))
