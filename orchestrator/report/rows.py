"""A run's columns kept small, and a table's rows made on demand from them (no copy of a 100k-row table).

The view holds each column of a run once: `Guids` (16 bytes a row) for the tenant, client and object IDs, a plain
list for other values that differ on every row (times, line numbers), a `Coded` column (one small integer per row,
each value once) for those that repeat (a status, a partner ID, a fix). `ColumnRows` gives a table's rows from
those columns — all of them, or the rows a work list picks — as tuples made while the outputs iterate, so no
table holds its rows a second time. The outputs only need `len`, slices and iteration.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import Any, overload


class Coded:
    """A column of repeated values, as a categorical column: one code per row (1, 2 or 4 bytes), each value once.

    The values of one column are of one kind (text, ints or bools, and None), so equal keys are the same value.
    """

    __slots__ = ("_index", "codes", "values")

    def __init__(self, rows: int = 0) -> None:
        self.codes: array[int] = array("B", bytes(rows))  # `rows` leading Nones: a column first seen later
        self.values: list[Any] = [None] if rows else []
        self._index: dict[Any, int] | None = {None: 0} if rows else {}

    def append(self, value: Any) -> None:
        index = self._index
        assert index is not None, "a closed column takes no more rows"
        code = index.get(value)
        if code is None:
            code = index[value] = len(self.values)
            self.values.append(value)
            if code in (256, 65_536):  # the codes outgrow their width: widen them once
                self.codes = array("H" if code == 256 else "I", self.codes)
        self.codes.append(code)

    def close(self) -> None:
        """Let the lookup of values go: the column is complete."""
        self._index = None

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, row: int) -> Any:
        return self.values[self.codes[row]]

    def span(self, start: int, stop: int) -> Iterator[Any]:
        return map(self.values.__getitem__, islice(self.codes, start, stop))

    def picked(self, rows: Iterable[int]) -> Iterator[Any]:
        return map(self.values.__getitem__, map(self.codes.__getitem__, rows))


_NONE_GUID = bytes(16)


class Guids:
    """A column of GUIDs (tenant, client, object IDs: a new one on every row) as 16 bytes each, not 85-byte texts.

    Only the canonical text (36 lower-case hex digits and dashes) is packed, so a value reads back exactly as
    written; any other value (upper case, braces, empty) is kept as it is. Sixteen zero bytes stand for None.
    """

    __slots__ = ("_other", "_packed")

    def __init__(self) -> None:
        self._packed = bytearray()
        self._other: dict[int, Any] = {}

    def append(self, value: Any) -> None:
        if value is None:
            self._packed += _NONE_GUID
            return
        if type(value) is str and len(value) == 36:
            try:
                raw = bytes.fromhex(value.replace("-", "", 4))
            except ValueError:
                raw = _NONE_GUID
            if raw != _NONE_GUID and _text(raw) == value:
                self._packed += raw
                return
        self._other[len(self)] = value
        self._packed += _NONE_GUID

    def __len__(self) -> int:
        return len(self._packed) >> 4

    def __getitem__(self, row: int) -> Any:
        raw = self._packed[row << 4 : (row << 4) + 16]
        if raw == _NONE_GUID:
            return self._other.get(row)
        return _text(raw)

    def span(self, start: int, stop: int) -> Iterator[Any]:
        return self.picked(range(start, min(stop, len(self))))

    def picked(self, rows: Iterable[int]) -> Iterator[Any]:
        packed, other = self._packed, self._other  # the body of __getitem__, without a call per row
        for row in rows:
            raw = packed[row << 4 : (row << 4) + 16]
            yield other.get(row) if raw == _NONE_GUID else _text(raw)


def _text(raw: bytes | bytearray) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


#: A column as the view holds it.
Column = list[Any] | Coded | Guids


def _span(column: Column, start: int, stop: int) -> Iterator[Any]:
    return islice(column, start, stop) if isinstance(column, list) else column.span(start, stop)


def _picked(column: Column, rows: Iterable[int]) -> Iterator[Any]:
    return map(column.__getitem__, rows) if isinstance(column, list) else column.picked(rows)


class ColumnRows(Sequence[tuple[Any, ...]]):
    """Rows `start`…`stop` of equally long columns, as tuples; a slice is another view of them.

    With `picked` (row numbers, in order) the rows are those rows of the columns only: a work list's rows.
    """

    __slots__ = ("_columns", "_picked", "_start", "_stop")

    def __init__(self, columns: Sequence[Any], start: int = 0, stop: int | None = None,
                 picked: Sequence[int] | None = None) -> None:
        self._columns = columns
        self._picked = picked
        whole = len(picked) if picked is not None else len(columns[0]) if columns else 0
        self._start = start
        self._stop = whole if stop is None else stop

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
            return ColumnRows(self._columns, self._start + start, self._start + max(start, stop), self._picked)
        at = index + len(self) if index < 0 else index
        if not 0 <= at < len(self):
            raise IndexError(index)
        row = self._start + at
        if self._picked is not None:
            row = self._picked[row]
        return tuple(column[row] for column in self._columns)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if not self._columns or not len(self):
            return iter(())
        if self._picked is not None:
            rows = self._picked[self._start : self._stop]
            return zip(*(_picked(column, rows) for column in self._columns), strict=True)
        return zip(*(_span(column, self._start, self._stop) for column in self._columns), strict=True)
