"""The public entry points: `load_inventory` (file → `Inventory`) and `check_runnable`.

Strict at the file level, forgiving at the row level: a file that is not an inventory at all raises one
`InventoryError`; a bad row becomes `Problem`s that carry a `SkippedRow`, so the report can show every row of
the file, linked or skipped, with the reasons.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

from ..errors import NoValidRowsError
from ..models import Identity, Problem, SkippedRow
from .defaults import NO_DEFAULTS, InventoryDefaults, Scope
from .reading import RawRow, decode, kind, read_bytes
from .rules import Builder
from .tables import csv_rows, xlsx_rows
from .yaml_rows import yaml_rows


@dataclass(frozen=True, slots=True)
class Inventory:
    """One loaded inventory: the identities to run, the problems of the rows that will be skipped.

    `problems` hold row-level problems only (each with `row` set); file-level notes that do not skip a row,
    such as an encoding fallback, are in `warnings`. `rows` counts data rows with content (valid + invalid).
    """

    path: str
    sha256: str
    identities: tuple[Identity, ...]
    problems: tuple[Problem, ...]
    warnings: tuple[str, ...]
    rows: int
    _skipped: tuple[SkippedRow, ...] = field(init=False, repr=False, compare=False)
    _reasons: dict[tuple[str, int], str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Index once: a report over thousands of skipped rows must not rescan all problems per row.
        rows: dict[tuple[str, int], SkippedRow] = {}
        reasons: dict[tuple[str, int], list[str]] = {}
        for problem in self.problems:
            if problem.row is None:
                continue
            where = (problem.row.source, problem.row.line)
            rows.setdefault(where, problem.row)
            text = f"{problem.column}: {problem.message}"
            reasons.setdefault(where, []).append(f"{text} — {problem.fix}" if problem.fix else text)
        ordered = sorted(rows.values(), key=lambda r: (r.source, r.line))
        object.__setattr__(self, "_skipped", tuple(ordered))
        object.__setattr__(self, "_reasons", {k: "; ".join(v) for k, v in reasons.items()})

    @property
    def skipped(self) -> tuple[SkippedRow, ...]:
        """One `SkippedRow` per invalid line, in file order."""
        return self._skipped

    def reasons(self, row: SkippedRow) -> str:
        """All problems of `row`'s line as one string, joined by "; " (empty if the row is not skipped)."""
        return self._reasons.get((row.source, row.line), "")


def load_inventory(path: str | os.PathLike[str], *, defaults: InventoryDefaults = NO_DEFAULTS) -> Inventory:
    """Read and validate an inventory file; raise `InventoryError` only when the file is not an inventory at all.

    The format is chosen by extension (.csv/.tsv/.txt, .xlsx/.xlsm, .yaml/.yml) and, for anything else, by
    content. Invalid rows come back as `Problem`s; an inventory without a single valid row is still returned
    (see `check_runnable`), so a `validate` command can show every problem.
    """
    source = os.fspath(path)
    data = read_bytes(source)
    sha256 = hashlib.sha256(data).hexdigest()
    options = Scope.of_options(defaults)
    warnings: list[str] = []
    builder = Builder(options, warnings)
    rows = _raw_rows(source, data, defaults.sheet, warnings, partner_default=bool(options.partner_id))
    del data  # the reader keeps what it still needs (a workbook's bytes); a text file's bytes go before its rows
    builder.add_all(rows)
    identities, problems = builder.finish()
    return Inventory(
        path=source,
        sha256=sha256,
        identities=identities,
        problems=problems,
        warnings=tuple(warnings),
        rows=builder.rows,
    )


def _raw_rows(
    source: str, data: bytes, sheet: str | None, warnings: list[str], *, partner_default: bool
) -> Iterator[RawRow]:
    """The file's rows as read, by the reader its format needs."""
    form = kind(source, data)
    if form == "xlsx":
        return xlsx_rows(source, data, sheet, warnings, partner_default=partner_default)
    text = decode(source, data, warnings)
    if form == "yaml":
        return yaml_rows(source, text, warnings)
    return csv_rows(source, text, warnings, partner_default=partner_default)


def check_runnable(inventory: Inventory) -> None:
    """Raise `NoValidRowsError` when nothing in `inventory` can run (the caller decides whether that is fatal)."""
    if inventory.identities:
        return
    if not inventory.rows:
        raise NoValidRowsError(f"{inventory.path}: the inventory has a header but no rows — add one row per identity")
    first = "; ".join(str(p) for p in inventory.problems[:3])
    more = f" (and {len(inventory.problems) - 3} more)" if len(inventory.problems) > 3 else ""
    raise NoValidRowsError(
        f"{inventory.path}: none of the {inventory.rows} rows is valid: {first}{more} — fix the rows and run again"
    )
