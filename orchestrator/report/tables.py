"""identities.csv, customers.csv and summary.json, written from the view.

CSV: UTF-8, CRLF line ends (RFC 4180), a header row, quoting only where needed, formula triggers neutralised
in every text cell and header (see `rules.csv_safe`). CRLF also makes the writer quote a cell holding a bare
CR, which `\\n` line ends would leave bare.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .rules import csv_safe, iso_utc
from .view import ReportView, Table


def _csv_cell(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return csv_safe(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _csv_lines(table: Table) -> Iterator[list[Any]]:
    yield [csv_safe(name) for name in table.columns]
    for row in table.rows:
        yield [_csv_cell(v) for v in row]


def write_csv(table: Table, path: Path) -> None:
    """Every row of `table` into the (already created, private) file `path`."""
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\r\n").writerows(_csv_lines(table))


def write_summary_json(view: ReportView, path: Path) -> None:
    """summary.json: the view's summary, indented, UTF-8."""
    path.write_text(json.dumps(view.summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
