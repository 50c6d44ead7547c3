"""Per-customer figures of a run, made from its columns: the Customers table, coverage, recognition, actions.

A run of 100,000 identities can have 100,000 customers; an object per customer (a set of identities, a counter of
statuses, the fixes) cost more than the identities' own columns. Instead the rows are grouped by the customer
column's codes (first-seen order, as the table lists customers) into one array of row numbers, and each
customer's figures are made again from its rows whenever they are needed: only a covered and a recognised flag
per customer are kept.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import Any, overload

from ..models import Recognition, Status
from .load import RunData, identity_of
from .rows import Coded, Column

_ELIGIBLE = Recognition.ELIGIBLE.value
_STATUS_ORDER = {s.value: i for i, s in enumerate(Status)}


def _grouped(codes: Sequence[int], groups: int) -> tuple[array[int], array[int]]:
    """(row numbers ordered by group, keeping row order within one; where each group starts, plus the end)."""
    starts = array("I", bytes(4 * (groups + 1)))
    for code in codes:
        starts[code + 1] += 1
    for g in range(groups):
        starts[g + 1] += starts[g]
    order = array("I", bytes(4 * len(codes)))
    free = array("I", starts)
    for row, code in enumerate(codes):
        order[free[code]] = row
        free[code] += 1
    return order, starts


def _coded(column: Column) -> tuple[Sequence[int], list[Any]]:
    """(codes, values) of a coded column: a row's value is `values[codes[row]]`, read without a call per row."""
    assert isinstance(column, Coded)
    return column.codes, column.values


class Customers:
    """A run's customers, first seen first: covered?, recognised?, the fixes they need, and their table rows."""

    def __init__(self, data: RunData) -> None:
        cols = data.columns
        customer = cols["customer"]
        assert isinstance(customer, Coded)
        self.names: list[str] = customer.values
        self._status, self._covered, self._recognition, self._fix, self._recognition_fix = (
            _coded(cols[c]) for c in ("status", "_covered", "recognition", "_fix", "_recognition_fix"))
        self._order, self._starts = _grouped(customer.codes, len(self.names))
        self.covered = bytearray(len(self.names))
        self.recognised = bytearray(len(self.names))
        self._identities = array("I", [1]) * len(self.names)
        self.actions: dict[str, list[str]] = {}  # fix → the customers that need it, first seen first
        tenant, client, key = cols["tenant_id"], cols["client_id"], cols["_key"]
        for i, name in enumerate(self.names):
            rows = self._rows(i)
            covered, recognised = self._flags(rows)
            self.covered[i], self.recognised[i] = covered, recognised
            if len(rows) > 1:  # a duplicate row of an identity is not a second identity
                self._identities[i] = len({identity_of(tenant[r], client[r], key[r]) for r in rows})
            for fix, add_role in self._fixes(rows).items():
                if not (add_role and recognised):
                    self.actions.setdefault(fix, []).append(name)

    def _rows(self, i: int) -> array[int]:
        return self._order[self._starts[i] : self._starts[i + 1]]

    def _flags(self, rows: array[int]) -> tuple[bool, bool]:
        """(covered, recognised) of one customer's rows: any covered, and any covered with an eligible role."""
        (covered_codes, covered_values), (rec_codes, rec_values) = self._covered, self._recognition
        covered = recognised = False
        for r in rows:
            if covered_values[covered_codes[r]]:
                covered = True
                recognised = recognised or rec_values[rec_codes[r]] == _ELIGIBLE
        return covered, recognised

    def _fixes(self, rows: array[int]) -> dict[str, bool]:
        """fix text → is it the recognition fix (add a role), first seen first, of one customer's rows."""
        (fix_codes, fix_values), (rec_codes, rec_values) = self._fix, self._recognition_fix
        fixes: dict[str, bool] = {}
        for r in rows:
            if text := fix_values[fix_codes[r]]:
                fixes.setdefault(text, False)
            if text := rec_values[rec_codes[r]]:
                fixes.setdefault(text, True)
        return fixes

    def row(self, i: int) -> tuple[Any, ...]:
        rows = self._rows(i)
        codes, values = self._status
        recognised = self.recognised[i]
        if len(rows) == 1:  # most customers of a big run: one identity, one status
            statuses = f"{values[codes[rows[0]]]}: 1"
        else:
            counts: dict[str, int] = {}
            for r in rows:
                counts[values[codes[r]]] = counts.get(values[codes[r]], 0) + 1
            statuses = "; ".join(f"{s}: {n}" for s, n in sorted(counts.items(), key=lambda kv: _STATUS_ORDER[kv[0]]))
        return (
            self.names[i],
            self._identities[i],
            "yes" if self.covered[i] else "no",
            "yes" if recognised else "no",
            statuses,
            "; ".join(text for text, add_role in self._fixes(rows).items() if not (add_role and recognised)),
        )

    def table_rows(self) -> CustomerRows:
        """The Customers table's rows, made as they are read."""
        return CustomerRows(self, 0, len(self.names))


class CustomerRows(Sequence[tuple[Any, ...]]):
    """Rows `start`…`stop` of the Customers table; a slice is another view."""

    __slots__ = ("_customers", "_start", "_stop")

    def __init__(self, customers: Customers, start: int, stop: int) -> None:
        self._customers, self._start, self._stop = customers, start, stop

    def __len__(self) -> int:
        return max(0, self._stop - self._start)

    @overload
    def __getitem__(self, index: int) -> tuple[Any, ...]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[Any, ...]]: ...

    def __getitem__(self, index: int | slice) -> tuple[Any, ...] | Sequence[tuple[Any, ...]]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return CustomerRows(self._customers, self._start + start, self._start + max(start, stop))
        at = index + len(self) if index < 0 else index
        if not 0 <= at < len(self):
            raise IndexError(index)
        return self._customers.row(self._start + at)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return map(self._customers.row, range(self._start, max(self._start, self._stop)))
