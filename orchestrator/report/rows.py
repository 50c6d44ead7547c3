"""`ColumnRows`: a table's rows made on demand from its columns, so a 100,000-row table is not held twice.

The view's frame already holds every value by column; a list of row tuples would hold a second set of pointers
(~26 MB for the Identities table of 100,000 rows) at the report's memory peak. The outputs only need `len`,
slices and iteration, which this gives without copying.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, overload


class ColumnRows(Sequence[tuple[Any, ...]]):
    """Rows `start`…`stop` of equally long columns (lists or arrays), as tuples; a slice is another view of them."""

    __slots__ = ("_columns", "_start", "_stop")

    def __init__(self, columns: Sequence[Any], start: int = 0, stop: int | None = None) -> None:
        self._columns = columns
        self._start = start
        self._stop = (len(columns[0]) if columns else 0) if stop is None else stop

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
            return ColumnRows(self._columns, self._start + start, self._start + max(start, stop))
        at = index + len(self) if index < 0 else index
        if not 0 <= at < len(self):
            raise IndexError(index)
        return tuple(column[self._start + at] for column in self._columns)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if not self._columns or not len(self):
            return iter(())
        return zip(*(column[self._start : self._stop] for column in self._columns), strict=True)
