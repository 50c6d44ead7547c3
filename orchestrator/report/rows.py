"""A run's columns kept small, and a table's rows made on demand from them (no copy of a 100k-row table).

The view holds each column of a run once: a plain list for values that differ on every row (tenant, client and
object IDs, times, line numbers), a `Coded` column for those that repeat (a status, a partner ID, a fix): pandas'
categorical coding (`pd.factorize`), one small unsigned integer per row and each value once. `ColumnRows` gives a
table's rows from those columns — all of them, or the rows a work list picks — as tuples made while the outputs
iterate, a few thousand rows at a time, so no table holds its rows a second time. The outputs only need `len`,
slices and iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
from pandas.api.types import union_categoricals

#: Rows read at once when a table is iterated: each column's codes of a chunk become Python values together.
CHUNK = 4096

#: Rows a column being loaded collects before it codes them (`Coded.flush`).
FLUSH_ROWS = 16_384

#: Row numbers picked from a run's columns (a work list's rows), in order.
Picked = npt.NDArray[np.integer[Any]]


def _closed(value: Any) -> None:
    raise AssertionError("a closed column takes no more rows")


class Coded:
    """A column of repeated values, as a pandas categorical: `values[codes[row]]` is a row's value.

    Values are collected as they come (the journal's reader already shares repeated ones) and coded every few
    thousand rows (`flush`: a `pd.Categorical` of them, values first seen first); `close` unites those
    categoricals. Codes take the smallest unsigned dtype; None, if any, is the last value. The values of one column
    are of one kind (text, ints or bools, and None), so equal values are one value.
    """

    __slots__ = ("_chunks", "_collected", "append", "codes", "values")

    def __init__(self, rows: int = 0) -> None:
        collected: list[Any] = [None] * rows  # `rows` leading Nones: a column first seen later
        self._collected: list[Any] | None = collected
        self.append: Callable[[Any], None] = collected.append
        self._chunks: list[pd.Categorical] = []
        self.codes: npt.NDArray[Any] = np.zeros(0, np.uint8)
        self.values: list[Any] = []

    def flush(self) -> None:
        """Code the values collected so far and let them go: a column being loaded holds a code a row."""
        collected = self._collected
        assert collected is not None, "a closed column takes no more rows"
        if collected:
            codes, uniques = pd.factorize(np.fromiter(collected, dtype=object, count=len(collected)))
            self._chunks.append(pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype=object)))
            collected.clear()

    def close(self) -> None:
        """Code the last values; the column is complete."""
        self.flush()
        whole = union_categoricals(self._chunks) if self._chunks else pd.Categorical([])
        codes, self.values = whole.codes, whole.categories.tolist()
        if len(codes) and codes.min() < 0:  # pandas codes None as -1: give it a value of its own
            self.values.append(None)
            codes = np.where(codes < 0, len(self.values) - 1, codes)
        self.codes = codes.astype(np.min_scalar_type(max(len(self.values) - 1, 0)))
        self._chunks, self._collected, self.append = [], None, _closed

    def __len__(self) -> int:
        if self._collected is None:
            return len(self.codes)
        return sum(len(chunk) for chunk in self._chunks) + len(self._collected)

    def __getitem__(self, row: int) -> Any:
        return self.values[self.codes[row]]

    def span(self, start: int, stop: int) -> list[Any]:
        """The values of rows `start`…`stop`."""
        return list(map(self.values.__getitem__, self.codes[start:stop].tolist()))

    def picked(self, rows: Picked | Sequence[int]) -> list[Any]:
        """The values of the rows numbered `rows`."""
        return list(map(self.values.__getitem__, self.codes[np.asarray(rows, dtype=np.intp)].tolist()))

    def rows_where(self, test: Callable[[Any], bool]) -> Picked:
        """The numbers of the rows whose value passes `test` (asked once a value, not once a row)."""
        passing = np.fromiter(map(test, self.values), dtype=bool, count=len(self.values))
        return np.flatnonzero(passing[self.codes]).astype(np.uint32)

    def counts(self) -> npt.NDArray[np.intp]:
        """How many rows hold each value (`values[i]` on `counts()[i]` rows)."""
        return np.bincount(self.codes, minlength=len(self.values))


#: A column as the view holds it.
Column = list[Any] | Coded


def _chunk(column: Column, start: int, stop: int, picked: Picked | None) -> list[Any]:
    """The values of rows `start`…`stop` of a column, or of the `picked` rows."""
    if isinstance(column, Coded):
        return column.span(start, stop) if picked is None else column.picked(picked)
    return column[start:stop] if picked is None else list(map(column.__getitem__, picked.tolist()))


class RowSpan(Sequence[tuple[Any, ...]]):
    """Rows `start`…`stop` of a table made on demand: `len`, indexing and slicing (a slice is another span).

    A subclass says how to make row `i` (`_row`) and how to make a span of its own kind (`_span`).
    """

    __slots__ = ("_start", "_stop")

    def __init__(self, start: int, stop: int) -> None:
        self._start, self._stop = start, stop

    def _row(self, row: int) -> tuple[Any, ...]:
        raise NotImplementedError

    def _span(self, start: int, stop: int) -> Sequence[tuple[Any, ...]]:
        raise NotImplementedError

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
            return self._span(self._start + start, self._start + max(start, stop))
        at = index + len(self) if index < 0 else index
        if not 0 <= at < len(self):
            raise IndexError(index)
        return self._row(self._start + at)


class ColumnRows(RowSpan):
    """Rows `start`…`stop` of equally long columns, as tuples; a slice is another view of them.

    With `picked` (row numbers, in order) the rows are those rows of the columns only: a work list's rows.
    """

    __slots__ = ("_columns", "_picked")

    def __init__(self, columns: Sequence[Column], start: int = 0, stop: int | None = None,
                 picked: Picked | Sequence[int] | None = None) -> None:
        self._columns = columns
        self._picked = None if picked is None else np.asarray(picked, dtype=np.intp)
        whole = len(picked) if picked is not None else len(columns[0]) if columns else 0
        super().__init__(start, whole if stop is None else stop)

    def _span(self, start: int, stop: int) -> ColumnRows:
        return ColumnRows(self._columns, start, stop, self._picked)

    def _row(self, row: int) -> tuple[Any, ...]:
        if self._picked is not None:
            row = int(self._picked[row])
        return tuple(column[row] for column in self._columns)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if not self._columns:
            return
        for start in range(self._start, self._stop, CHUNK):
            stop = min(start + CHUNK, self._stop)
            picked = None if self._picked is None else self._picked[start:stop]
            yield from zip(*(_chunk(column, start, stop, picked) for column in self._columns), strict=True)
