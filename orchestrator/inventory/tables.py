"""CSV and XLSX → `RawRow`s: find the header, map its columns, hand on each row with content and its line.

A header that cannot work (missing a required column, a column twice, a column named for secret values) is one
`InventoryError` for the whole file, never one problem per row.
"""

from __future__ import annotations

import csv
import io
import re
import warnings as python_warnings
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as dtime
from typing import Any, Final

from ..errors import InventoryError
from .reading import Issue, RawRow, fail
from .schema import (
    COLUMN_ALIASES,
    CREDENTIAL_TYPE,
    EXAMPLE_HEADER,
    PARTNER_ID,
    REQUIRED_COLUMNS,
    SECRET_NAME,
    SECRET_URI,
    SECRET_VALUE_COLUMNS,
    squash,
)
from .text import GUID, clean, show

MAX_LINE_CHARS: Final = 1024 * 1024  # no real inventory row is a megabyte long
MAX_XLSX_UNCOMPRESSED: Final = 1024 * 1024 * 1024  # zip-bomb guard for workbooks

_SEP_HINT = re.compile(r'"?sep=(.)"?[,;\t]*', re.IGNORECASE)
_BLANKISH = re.compile(r'[\s,;\t"\ufeff]*')
#: One line with its line break: what `io.StringIO(text, newline="").readlines()` yields, without StringIO's
#: four-bytes-per-character copy of the whole text (60 MB for a 100,000-row file).
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")

#: (first line, last line, cells) of one table row; the lines differ when a quoted value spans lines.
_Cells = tuple[int, int, list[str]]


@dataclass(frozen=True, slots=True)
class _Columns:
    """Where each known column sits in a header, and the extra columns to carry into the report."""

    known: tuple[tuple[str, int], ...]
    labels: dict[str, str]
    extras: tuple[tuple[int, str], ...]
    unnamed: tuple[int, ...]
    width: int


def _columns(where: str, header: Sequence[str], sheet_fix: str = "") -> _Columns:
    """Map a header row; a header that cannot work is one InventoryError (never one problem per row).

    `sheet_fix` is how to pick another worksheet, for a workbook whose first sheet was taken by default.
    """
    known: dict[str, int] = {}
    labels: dict[str, str] = {}
    extras: list[tuple[int, str]] = []
    unnamed: list[int] = []
    for index, cell in enumerate(header):
        text = clean(cell)
        if not text:
            unnamed.append(index)
            continue
        squashed = squash(text)
        if squashed in SECRET_VALUE_COLUMNS:
            raise InventoryError(
                f"{where}: column {index + 1} {show(text)} would hold secret values — the inventory only points "
                "to Key Vault: delete the column and use secret_uri, or key_vault + secret_name"
            )
        canonical = COLUMN_ALIASES.get(squashed)
        if canonical is None:
            extras.append((index, text))
        elif canonical in known:
            raise InventoryError(
                f"{where}: columns {known[canonical] + 1} and {index + 1} are both {canonical} — keep one of them"
            )
        else:
            known[canonical] = index
            labels[canonical] = text
    _check_required(where, header, known, sheet_fix)
    return _Columns(tuple(known.items()), labels, tuple(extras), tuple(unnamed), len(header))


def _check_required(where: str, header: Sequence[str], known: dict[str, int], sheet_fix: str) -> None:
    """The header names customer, tenant_id, client_id and some credential location column."""
    missing = [c for c in REQUIRED_COLUMNS if c not in known]
    if missing:
        shown = ", ".join(show(clean(c)) for c in header[:8]) + (", …" if len(header) > 8 else "")
        if any(GUID.fullmatch(clean(c)) for c in header):
            raise InventoryError(
                f"{where}: this row looks like data, not a header ({shown}) — add a header row first: "
                f"{EXAMPLE_HEADER}" + (f", or {sheet_fix}" if sheet_fix else "")
            )
        if sheet_fix and not known:  # nothing here is an inventory: most likely a cover or notes sheet
            raise fail(
                where,
                f"the first sheet has no header row (no known column name; it reads: {shown})",
                f"{sheet_fix}, or start this sheet with a header row: {EXAMPLE_HEADER}",
            )
        raise InventoryError(
            f"{where}: the header has no {', '.join(missing)} column (it reads: {shown}) — add the missing "
            "column; required are customer, tenant_id and client_id (names are case-insensitive)"
        )
    if SECRET_URI not in known and SECRET_NAME not in known and CREDENTIAL_TYPE not in known:
        raise InventoryError(
            f"{where}: the header has no credential location column — add secret_uri, or secret_name (with "
            "key_vault or --key-vault), or a credential_type column for managed_identity, federated or "
            "managed_identity_federation rows"
        )


def _table(
    where: str, rows: Iterator[_Cells], kind: str, warnings: list[str], *, partner_default: bool, sheet_fix: str = ""
) -> Iterator[RawRow]:
    """Header, then one RawRow per row with content; shared by CSV and XLSX (see `_columns` for `sheet_fix`)."""
    line, header = 0, list[str]()
    for line, _, header in rows:  # noqa: B007 - the header's line is used after the loop
        if any(c.strip() for c in header):
            break
    else:
        start = f"start the file with a header row: {EXAMPLE_HEADER}"
        raise fail(where, "has no header row (it is empty)", f"{sheet_fix}, or {start}" if sheet_fix else start)
    columns = _columns(f"{where}:{line}", header, sheet_fix)
    if PARTNER_ID not in columns.labels and not partner_default:
        raise InventoryError(
            f"{where}:{line}: the header has no partner_id column and no --partner-id was given — add a "
            "partner_id column, or pass --partner-id ID"
        )
    unnamed_values: set[int] = set()
    known, labels, extras, unnamed, width = (
        columns.known, columns.labels, columns.extras, columns.unnamed, columns.width
    )  # locals: read once per row
    for line, end, cells in rows:
        if not "".join(cells).strip():
            continue  # no content at all: Excel exports leave such rows behind
        count = len(cells)
        if unnamed:
            unnamed_values.update(i for i in unnamed if i < count and cells[i].strip())
        yield RawRow(
            where,
            line,
            {name: cells[i] for name, i in known if i < count},
            labels,
            tuple((label, cells[i] if i < count else "") for i, label in extras),
            _overflow(cells, width) if count > width else (),
            f"spans lines {line}–{end}: is a quote left open?" if end > line else "",
        )
    for i in sorted(unnamed_values):
        warnings.append(
            f"{where}: {kind} column {i + 1} has values but no header; they are ignored — "
            "give the column a header to carry it into the report"
        )


def _overflow(cells: list[str], width: int) -> tuple[Issue, ...]:
    """Values beyond the header's columns: usually an unquoted delimiter."""
    if len(cells) <= width or not "".join(cells[width:]).strip():
        return ()
    used = max(i for i, c in enumerate(cells) if c.strip()) + 1
    return (
        (
            "row",
            f"has {used} values but the header has {width} columns",
            "quote values that contain the delimiter, or give the extra column a header",
        ),
    )


# --- CSV ---------------------------------------------------------------------------------------------------------
def _sniff_delimiter(header_line: str) -> str:
    """Pick `,` `;` or tab: the one that splits the header into the most known column names."""
    best, best_score = ",", (-1, -1)
    for delimiter in (",", ";", "\t"):
        cells = next(csv.reader([header_line], delimiter=delimiter), [])
        score = (sum(1 for c in cells if squash(c) in COLUMN_ALIASES), len(cells))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _dialect(source: str, lines: list[str]) -> tuple[int, str]:
    """(lines to skip, delimiter): Excel's "sep=;" first line, else the delimiter that fits the header best."""
    if lines and max(map(len, lines)) > MAX_LINE_CHARS:
        index = next(i for i, line in enumerate(lines) if len(line) > MAX_LINE_CHARS)
        raise fail(
            f"{source}:{index + 1}",
            f"the line is {len(lines[index]):,} characters long, which no inventory row is",
            "this is not a CSV inventory (or it lost its line breaks): export it again as CSV UTF-8",
        )
    if lines:
        hint = _SEP_HINT.fullmatch(lines[0].strip())
        if hint and hint.group(1) in ",;\t|":
            return 1, hint.group(1)
    header_line = next((x for x in lines if not _BLANKISH.fullmatch(x)), None)
    if header_line is None:
        raise fail(source, "is empty (no header row)", f"start the file with a header row: {EXAMPLE_HEADER}")
    return 0, _sniff_delimiter(header_line)


def _handed_on(lines: list[str], start: int) -> Iterator[str]:
    """`lines` from `start`, each let go once the CSV reader took it: a big file's lines are not all held while
    its rows become identities."""
    for index in range(start, len(lines)):
        line = lines[index]
        lines[index] = ""
        yield line


def _csv_cells(source: str, lines: list[str], start: int, delimiter: str) -> Iterator[_Cells]:
    """Parsed CSV rows with their physical first and last line numbers (`lines` is emptied as they are read)."""
    reader = csv.reader(_handed_on(lines, start), delimiter=delimiter, quotechar='"', doublequote=True, strict=False)
    previous = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise fail(
                f"{source}:{start + previous + 1}",
                f"cannot be read as CSV ({exc})",
                "look for a quote that is opened and never closed, or a value longer than a CSV field may be",
            ) from None
        yield start + previous + 1, start + reader.line_num, cells
        previous = reader.line_num


def csv_rows(source: str, text: str, warnings: list[str], *, partner_default: bool) -> Iterator[RawRow]:
    """The rows of a CSV text; `partner_default` says whether a partner_id column may be missing."""
    lines = _LINE.findall(text)  # the line breaks the csv module counts (\r\n, \r, \n), as StringIO splits them
    del text  # the lines hold it all; the text itself need not stay for as long as the rows are read
    start, delimiter = _dialect(source, lines)
    yield from _table(
        source, _csv_cells(source, lines, start, delimiter), "CSV", warnings, partner_default=partner_default
    )


# --- XLSX --------------------------------------------------------------------------------------------------------
def cell_text(value: object) -> str:
    """Text of a workbook cell as a person sees it (1234567, not 1234567.0)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    if isinstance(value, datetime | date | dtime):
        return value.isoformat()
    return str(value)


def _open_workbook(source: str, data: bytes) -> Any:
    """openpyxl's read-only workbook, after a zip-bomb check; a damaged file is one InventoryError."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise fail(
            source, "is not a valid .xlsx workbook (damaged ZIP)", "open it in Excel and save it as .xlsx"
        ) from None
    if unpacked > MAX_XLSX_UNCOMPRESSED:
        raise fail(
            source,
            f"unpacks to {unpacked // (1024 * 1024)} MiB, more than a workbook inventory needs",
            "export the inventory as CSV UTF-8",
        )
    import openpyxl  # deferred: only workbook inventories pay for importing it

    try:
        with python_warnings.catch_warnings():
            python_warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it does not need
            return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook; all mean the same here
        raise fail(
            source,
            f"is not a readable .xlsx workbook ({type(exc).__name__})",
            "open it in Excel and save it again as .xlsx",
        ) from exc


def _worksheet(source: str, workbook: Any, sheet: str | None) -> Any:
    """The first worksheet, or the one named `sheet` (exactly, then ignoring case)."""
    names = [ws.title for ws in workbook.worksheets]
    if sheet is None:
        if not names:
            raise fail(source, "has no worksheet", "put the inventory on the first sheet")
        return workbook.worksheets[0]
    matches = [ws for ws in workbook.worksheets if ws.title == sheet] or [
        ws for ws in workbook.worksheets if ws.title.casefold() == sheet.casefold()
    ]
    if not matches:
        raise fail(
            source, f"has no worksheet {sheet!r}", f"use one of: {', '.join(repr(n) for n in names) or '(none)'}"
        )
    return matches[0]


def _sheet_fix(workbook: Any) -> str:
    """How to choose another worksheet than the first, naming the sheets there are."""
    names = ", ".join(repr(ws.title) for ws in workbook.worksheets[:10])
    more = ", …" if len(workbook.worksheets) > 10 else ""
    return f"pick the sheet that holds the inventory with --sheet NAME (sheets: {names}{more})"


def _sheet_cells(where: str, worksheet: Any) -> Iterator[_Cells]:
    """Each worksheet row as text, numbered from 1; a sheet damaged past some row is one InventoryError."""
    worksheet.reset_dimensions()  # some writers record wrong dimensions; read every row there is
    cells = worksheet.iter_rows(min_row=1, values_only=True)
    line = 0
    while True:
        try:
            values = next(cells)
        except StopIteration:
            return
        except Exception as exc:  # a damaged sheet fails lazily, while rows are read
            raise fail(
                where,
                f"cannot be read after row {line} ({type(exc).__name__})",
                "open it in Excel and save it again as .xlsx",
            ) from exc
        line += 1
        yield line, line, [cell_text(v) for v in values]


def xlsx_rows(
    source: str, data: bytes, sheet: str | None, warnings: list[str], *, partner_default: bool
) -> Iterator[RawRow]:
    """The rows of one worksheet, located as FILE[SHEET]:ROW."""
    workbook = _open_workbook(source, data)
    try:
        worksheet = _worksheet(source, workbook, sheet)
        where = f"{source}[{worksheet.title}]"
        sheet_fix = "" if sheet is not None else _sheet_fix(workbook)
        cells = _sheet_cells(where, worksheet)
        yield from _table(where, cells, "sheet", warnings, partner_default=partner_default, sheet_fix=sheet_fix)
    finally:
        workbook.close()
