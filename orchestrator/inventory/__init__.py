"""Read an inventory (CSV, XLSX or YAML) into validated `Identity` values and line-numbered `Problem`s.

A file that is not an inventory at all (binary, a directory, no usable header) raises one `InventoryError`
naming the file and the fix, because nothing sensible can run from it. A bad *row* never stops a run: it becomes
`Problem`s that carry a `SkippedRow`, so the report can show every row, linked or skipped, with the reasons. The
format is documented in docs/inventory.md. Everything is plain text processing, bounded in size, so that a
hostile file cannot make the loader hang or exhaust memory.

Layout — data flows down this list, and each module imports only from those above it:

    schema.py     the vocabulary: column names and header spellings, credential types, clouds, `Fault`
    text.py       trimming values, recognising secrets and bidi controls, showing values safely in messages
    reading.py    bytes → text (size limits, encodings, format by extension or content); `RawRow`
    tables.py     CSV and XLSX → `RawRow`s: header mapping, delimiters, line numbers, sheets
    yaml_rows.py  YAML → `RawRow`s: safe composing, alias limits, customer → identity inheritance
    vaults.py     Key Vault locations: vault URL or name, secret identifier, per cloud
    defaults.py   `InventoryDefaults` (the options), `check_partner_id_option`, the scope chain options → YAML
    columns.py    one validator per column, in the table `VALIDATORS`: clean value or `Fault`
    rules.py      row rules (bidi warning, NUL bytes, all validators, skip with all reasons) and inventory
                  rules (duplicates, conflicting partner IDs)
    loading.py    `load_inventory`, `Inventory`, `check_runnable`: the entry points
    sample.py     `write_sample_inventory`, `benchmark`

This package re-exports the public names, so callers import from `orchestrator.inventory` only. The size limits
are re-exported for reading; each is used (and patched in tests) where it is defined.
"""

from __future__ import annotations

from ..models import Problem, SkippedRow
from .defaults import InventoryDefaults, check_partner_id_option
from .loading import Inventory, check_runnable, load_inventory
from .reading import MAX_FILE_BYTES
from .sample import benchmark, write_sample_inventory
from .schema import COLUMNS, REQUIRED_COLUMNS
from .tables import MAX_LINE_CHARS, MAX_XLSX_UNCOMPRESSED
from .yaml_rows import MAX_YAML_ALIASES, MAX_YAML_DEPTH

__all__ = [
    "COLUMNS",
    "MAX_FILE_BYTES",
    "MAX_LINE_CHARS",
    "MAX_XLSX_UNCOMPRESSED",
    "MAX_YAML_ALIASES",
    "MAX_YAML_DEPTH",
    "REQUIRED_COLUMNS",
    "Inventory",
    "InventoryDefaults",
    "Problem",
    "SkippedRow",
    "benchmark",
    "check_partner_id_option",
    "check_runnable",
    "load_inventory",
    "write_sample_inventory",
]
