"""Bytes to text, and the raw row every reader hands on: what the file says, before any column is judged.

Reading is where a file is refused as a whole: a file that is not an inventory at all (binary, a directory, too
big, not text) raises one `InventoryError` naming the file and the fix, because nothing sensible can run from
it. The format readers (`tables`, `yaml_rows`) turn text into `RawRow`s; judging their values is `columns`' job.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from ..errors import InventoryError

# --- limits: a hostile file must fail fast with one clear error, never hang or exhaust memory -------------------
MAX_FILE_BYTES: Final = 256 * 1024 * 1024  # ~1 M rows of CSV; bigger inventories should be split
_BINARY_SAMPLE: Final = 64 * 1024

_BINARY_CONTROL = re.compile(r"[\x01-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_YAML_HINT = re.compile(r"(---|%YAML|(identities|customers|partner[_ -]?id|key[_ -]?vault|cloud)\s*:)", re.I)

#: A problem found while reading a row: (column as written, what is wrong, how to fix).
Issue = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class FileDefaults:
    """`partner_id` / `key_vault` / `cloud` / `federation_identity` a file sets for all its rows (YAML's top
    level), and where each was set."""

    values: Mapping[str, str]
    origins: Mapping[str, str]


class RawRow(NamedTuple):
    """One row with content as a reader found it: cells by column, nothing judged yet.

    `issues` are what the reader itself could see (a value beyond the header, a YAML key given twice); `note`
    explains a row that spans lines and is reported only if the row turns out invalid. A row that is not
    `readable` (a YAML entry that is no mapping) is skipped with its `issues` alone.
    """  # a NamedTuple, not a dataclass: made once per row, it must be cheap to build

    source: str  # FILE, or FILE[SHEET] for a workbook
    line: int
    values: Mapping[str, str]  # canonical column -> text as read
    labels: Mapping[str, str]  # canonical column -> the header or key as written, for messages
    extra: tuple[tuple[str, str], ...] = ()
    issues: tuple[Issue, ...] = ()
    note: str = ""
    readable: bool = True
    defaults: FileDefaults | None = None


def fail(source: str, what: str, fix: str) -> InventoryError:
    """The one error for a file that cannot be an inventory: `SOURCE: what — fix`."""
    return InventoryError(f"{source}: {what} — {fix}")


def read_bytes(source: str) -> bytes:
    """Read the whole file once (so the SHA-256 matches what was parsed), refusing what could hang or explode."""
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise fail(source, "no such file", "check the path to the inventory") from None
    except OSError as exc:
        raise fail(source, f"cannot be read ({exc.strerror})", "check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        raise fail(source, "is a directory", "pass the inventory file itself (a .csv, .xlsx or .yaml file)")
    if not stat.S_ISREG(st.st_mode):
        raise fail(source, "is not a regular file (a pipe or device?)", "save the inventory to a file and pass that")
    if st.st_size > MAX_FILE_BYTES:
        raise fail(
            source,
            f"is {st.st_size // (1024 * 1024)} MiB, larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit",
            "split the inventory into several files",
        )
    try:
        with open(source, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise fail(source, f"cannot be read ({exc.strerror})", "check the file's permissions") from None
    if len(data) > MAX_FILE_BYTES:
        raise fail(source, "grew past the size limit while being read", "split the inventory into several files")
    return data


def kind(source: str, data: bytes) -> str:
    """csv | xlsx | yaml, from the extension, then from the content."""
    suffix = Path(source).suffix.lower()
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"  # a workbook whatever its name; openpyxl reports anything else inside a zip
    if suffix in (".xls", ".xlsb", ".ods") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise fail(
            source,
            "is an old-style Excel .xls, .xlsb, OpenDocument or password-protected workbook",
            "save it as .xlsx (Excel Workbook) or CSV UTF-8 without a password",
        )
    if suffix in (".xlsx", ".xlsm"):
        raise fail(source, "is named like a workbook but is not one (no ZIP signature)", "save it again as .xlsx")
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix in (".csv", ".tsv", ".txt", ".tab"):
        return "csv"
    head = data[:4096].lstrip(b"\xef\xbb\xbf")
    for raw_line in head.splitlines():
        stripped = raw_line.strip()
        if not stripped or stripped.startswith(b"#"):
            continue
        return "yaml" if _YAML_HINT.match(stripped.decode("latin-1")) else "csv"
    return "csv"


_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
_NOT_TEXT_FIX: Final = "export the inventory as CSV UTF-8, XLSX or YAML"


def decode(source: str, data: bytes, warnings: list[str]) -> str:
    """Decode by BOM, else UTF-8, else Windows-1252 with a warning; refuse what is not text."""
    text = _decode_by_bom(source, data)
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                raise fail(source, "is not text (neither UTF-8 nor Windows-1252)", _NOT_TEXT_FIX) from None
            warnings.append(f"{source}: read as Windows-1252 (not valid UTF-8)")
    nuls = text.count("\x00")
    # A stray NUL in a data row makes that row invalid; in the header, or many of them, the file is binary.
    if nuls and (nuls > max(16, len(text) // 1000) or "\x00" in text.split("\n", 1)[0]):
        raise fail(
            source, "contains NUL bytes: it is a binary file or UTF-16 without a byte-order mark", _NOT_TEXT_FIX
        )
    sample = text[:_BINARY_SAMPLE]
    if sample and len(_BINARY_CONTROL.findall(sample)) > max(32, len(sample) // 10):
        raise fail(source, "is not a text file (many control characters)", _NOT_TEXT_FIX)
    return text


def _decode_by_bom(source: str, data: bytes) -> str | None:
    """The text of a file that starts with a byte-order mark (None without one); a lying BOM is refused."""
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec).lstrip("\ufeff")
            except UnicodeDecodeError:
                raise fail(
                    source,
                    f"starts with a {label} byte-order mark but is not valid {label}",
                    "save it again as CSV UTF-8",
                ) from None
    return None
