"""coverage.xlsx: the spreadsheet view of a run, written with xlsxwriter (streaming, constant memory).

Every user-supplied value is written with `write_string` and the workbook refuses to turn strings into
formulas, URLs or numbers, so a customer called `=HYPERLINK(...)` stays text. Timestamps are written as
naive UTC datetimes under a "(UTC)" header because Excel cannot store a time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import xlsxwriter
from xlsxwriter.exceptions import FileCreateError
from xlsxwriter.format import Format
from xlsxwriter.worksheet import Worksheet

from ..models import Status
from .rules import NO_COLOURS, YES_COLOURS, status_colours
from .view import ReportView, Table

#: Data rows per sheet: Excel's 1,048,576 rows less the header. Bigger tables continue on "Name (2)".
EXCEL_MAX_DATA_ROWS = 1_048_575
_MAX_WIDTH = 60
_WIDTH_SAMPLE = 500

def sheet_names(name: str, rows: int, limit: int) -> list[str]:
    """The sheet names a table of `rows` rows is split over (Excel caps a sheet's rows)."""
    parts = max(1, -(-rows // limit))
    return [name if i == 0 else f"{name} ({i + 1})" for i in range(parts)]


class _Formats:
    def __init__(self, wb: xlsxwriter.Workbook) -> None:
        self.title = wb.add_format({"bold": True, "font_size": 14})
        self.bold = wb.add_format({"bold": True})
        self.header = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "bottom": 1, "text_wrap": False})
        self.datetime = wb.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.note = wb.add_format({"italic": True, "font_color": "#595959"})
        self.count = wb.add_format({"num_format": "0", "align": "left"})
        self.percent = wb.add_format({"num_format": "0.0", "align": "left"})
        self.status: dict[str, Format] = {}
        for s in Status:
            fill, font = status_colours(s.value)
            self.status[s.value] = wb.add_format({"bg_color": fill, "font_color": font})
        self.yes = wb.add_format({"bg_color": YES_COLOURS[0], "font_color": YES_COLOURS[1]})
        self.no = wb.add_format({"bg_color": NO_COLOURS[0], "font_color": NO_COLOURS[1]})


def _header_label(column: str, kind: str) -> str:
    return f"{column} (UTC)" if kind == "datetime" else column


def _width(column: str, kind: str, rows: Sequence[Sequence[Any]], index: int) -> int:
    if kind == "datetime":
        return max(21, len(column) + 8)
    longest = len(_header_label(column, kind))
    for row in rows[:_WIDTH_SAMPLE]:
        value = row[index]
        if value is not None:
            longest = max(longest, len(str(value)))
    return min(_MAX_WIDTH, max(8, longest + 2))


def _write_rows(ws: Worksheet, table: Table, rows: Sequence[Sequence[Any]], fmt: _Formats) -> None:
    """The hot loop: one typed write per non-empty cell, strings always as strings."""
    kinds = table.kinds
    write_string = ws.write_string
    write_number = ws.write_number
    write_datetime = ws.write_datetime
    status_fmt = fmt.status
    dt_fmt = fmt.datetime
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row):
            if value is None or value == "":
                continue
            kind = kinds[c]
            if kind == "text" or kind == "id":
                write_string(r, c, value if isinstance(value, str) else str(value))
            elif kind == "status":
                write_string(r, c, str(value), status_fmt.get(value))
            elif kind == "datetime" and isinstance(value, datetime):
                write_datetime(r, c, value.astimezone(UTC).replace(tzinfo=None), dt_fmt)
            elif kind == "int" and isinstance(value, int | float) and not isinstance(value, bool):
                write_number(r, c, value)
            elif kind == "yesno":
                write_string(r, c, str(value), fmt.yes if value == "yes" else fmt.no)
            else:
                write_string(r, c, str(value))


def _write_table(wb: xlsxwriter.Workbook, table: Table, fmt: _Formats, limit: int) -> list[str]:
    """Write one table (split over sheets when it exceeds `limit` rows); returns the sheet names."""
    names = sheet_names(table.name, len(table.rows), limit)
    ncols = len(table.columns)
    for part, name in enumerate(names):
        rows = table.rows[part * limit : (part + 1) * limit]
        ws = wb.add_worksheet(name)
        for c, (column, kind) in enumerate(zip(table.columns, table.kinds, strict=True)):
            ws.set_column(c, c, _width(column, kind, rows, c))
            ws.write_string(0, c, _header_label(column, kind), fmt.header)
        ws.freeze_panes(1, 0)
        ws.autofilter(0, 0, max(1, len(rows)), ncols - 1)
        if rows:
            _write_rows(ws, table, rows, fmt)
        else:
            ws.write_string(1, 0, "(none) " + table.note if table.note else "(none)", fmt.note)
    return names


def _write_summary(wb: xlsxwriter.Workbook, view: ReportView, fmt: _Formats, split_notes: list[str]) -> None:
    ws = wb.add_worksheet("Summary")
    ws.set_column(0, 0, 24)
    ws.set_column(1, 1, 44)
    ws.set_column(2, 2, 12)
    ws.write_string(0, 0, "Partner Admin Link coverage", fmt.title)
    row = 2
    for label, value in view.figures:
        ws.write_string(row, 0, label, fmt.bold)
        if isinstance(value, str):
            ws.write_string(row, 1, value)
        else:  # a number cell Excel can add up; percentages keep their one decimal
            ws.write_number(row, 1, value, fmt.percent if isinstance(value, float) else fmt.count)
        row += 1

    row += 1
    ws.write_string(row, 0, "Status", fmt.header)
    ws.write_string(row, 1, "Identities", fmt.header)
    first = row + 1
    for status, count in view.status_counts:
        row += 1
        ws.write_string(row, 0, status, fmt.status.get(status))
        ws.write_number(row, 1, count)
    if view.status_counts:
        chart = wb.add_chart({"type": "column"})
        chart.add_series(
            {
                "name": "Identities by status",
                "categories": ["Summary", first, 0, row, 0],
                "values": ["Summary", first, 1, row, 1],
                "points": [{"fill": {"color": status_colours(s)[1]}} for s, _ in view.status_counts],
                "data_labels": {"value": True},
            }
        )
        chart.set_title({"name": "Identities by status"})
        chart.set_legend({"none": True})
        chart.set_y_axis({"name": "Identities"})
        ws.insert_chart(2, 3, chart, {"x_scale": 1.4, "y_scale": 1.2})

    if view.history:
        row += 2
        ws.write_string(row, 0, "Run", fmt.header)
        ws.write_string(row, 1, "Started (UTC)", fmt.header)
        ws.write_string(row, 2, "Coverage %", fmt.header)
        hfirst = row + 1
        for run_id, started, pct in view.history:
            row += 1
            ws.write_string(row, 0, run_id)
            ws.write_string(row, 1, started)
            ws.write_number(row, 2, pct)
        line = wb.add_chart({"type": "line"})
        line.add_series(
            {
                "name": "Coverage % per run",
                "categories": ["Summary", hfirst, 1, row, 1],
                "values": ["Summary", hfirst, 2, row, 2],
                "marker": {"type": "circle"},
                "data_labels": {"value": True},
            }
        )
        line.set_title({"name": "Customer coverage per run (%)"})
        line.set_legend({"none": True})
        line.set_y_axis({"min": 0, "max": 100, "name": "%"})
        ws.insert_chart(22, 3, line, {"x_scale": 1.4, "y_scale": 1.2})

    notes = [*view.notes, *split_notes]
    notes += [f"{t.name}: {t.note}" for t in view.tables if t.note]
    if notes:
        row += 2
        ws.write_string(row, 0, "Notes", fmt.bold)
        for note in notes:
            row += 1
            ws.write_string(row, 0, note, fmt.note)


def write_xlsx(view: ReportView, path: Path, *, tmpdir: Path | None = None, max_rows: int | None = None) -> None:
    """Write coverage.xlsx: Summary first, then one sheet (or more, when split) per table."""
    limit = max_rows or EXCEL_MAX_DATA_ROWS
    options: dict[str, Any] = {
        "strings_to_formulas": False,
        "strings_to_urls": False,
        "strings_to_numbers": False,
        "constant_memory": True,  # stream rows to disk: memory stays flat however big the run
    }
    if tmpdir is not None:
        options["tmpdir"] = str(tmpdir)
    wb = xlsxwriter.Workbook(str(path), options)
    fmt = _Formats(wb)
    split_notes = [
        f"{t.name} has {len(t.rows):,} rows, more than one Excel sheet holds: split over "
        + ", ".join(sheet_names(t.name, len(t.rows), limit))
        for t in view.tables
        if len(t.rows) > limit
    ]
    _write_summary(wb, view, fmt, split_notes)
    for table in view.tables:
        _write_table(wb, table, fmt, limit)
    try:
        wb.close()
    except FileCreateError as exc:  # xlsxwriter's wrapper of the OSError that stopped it: hand on the OSError
        cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else OSError(str(exc))
        raise cause from exc
