"""Read an inventory (CSV, XLSX or YAML) into validated `Identity` values and line-numbered `Problem`s.

Why this module is strict at the file level and forgiving at the row level: a file that is not an inventory
at all (binary, a directory, no usable header) raises one `InventoryError` naming the file and the fix, because
nothing sensible can run from it. A bad *row* never stops a run: it becomes `Problem`s that carry a `SkippedRow`,
so the report can show every row of the file, linked or skipped, with the reasons. The format is documented in
docs/inventory.md.

Everything is plain text processing (csv module, precompiled regexes, PyYAML's composer, openpyxl in read-only
mode), bounded in size so that a hostile file cannot make the loader hang or exhaust memory.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import os
import re
import stat
import time
import uuid
import warnings
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import yaml

from .errors import InventoryError, NoValidRowsError
from .models import Cloud, CredentialType, Identity, Problem, SkippedRow
from .settings import CLOUD_ENDPOINTS

__all__ = [
    "Inventory",
    "InventoryDefaults",
    "benchmark",
    "check_runnable",
    "load_inventory",
    "write_sample_inventory",
]

# --- limits: a hostile file must fail fast with one clear error, never hang or exhaust memory -------------------
MAX_FILE_BYTES: Final = 256 * 1024 * 1024  # ~1 M rows of CSV; bigger inventories should be split
MAX_LINE_CHARS: Final = 1024 * 1024  # no real inventory row is a megabyte long
MAX_XLSX_UNCOMPRESSED: Final = 1024 * 1024 * 1024  # zip-bomb guard for workbooks
MAX_YAML_ALIASES: Final = 100_000
MAX_YAML_DEPTH: Final = 32
_BINARY_SAMPLE: Final = 64 * 1024

# --- columns ---------------------------------------------------------------------------------------------------
CUSTOMER, TENANT_ID, CLIENT_ID = "customer", "tenant_id", "client_id"
SECRET_URI, KEY_VAULT, SECRET_NAME = "secret_uri", "key_vault", "secret_name"
CREDENTIAL_TYPE, PARTNER_ID, CLOUD, TOKEN_FILE = "credential_type", "partner_id", "cloud", "token_file"
COLUMNS: Final = (
    CUSTOMER,
    TENANT_ID,
    CLIENT_ID,
    SECRET_URI,
    KEY_VAULT,
    SECRET_NAME,
    CREDENTIAL_TYPE,
    PARTNER_ID,
    CLOUD,
    TOKEN_FILE,
)
REQUIRED_COLUMNS: Final = (CUSTOMER, TENANT_ID, CLIENT_ID)

_SEPARATORS = re.compile(r"[\s_\-.]+")


def _squash(name: str) -> str:
    """Header/key normal form: case-insensitive, spaces, hyphens, dots and underscores ignored."""
    return _SEPARATORS.sub("", name.strip().strip("\ufeff\u200b\u200e\u200f").lower())


_COLUMN_ALIASES: Final[dict[str, str]] = {
    **{_squash(c): c for c in COLUMNS},
    # the labels the Azure portal shows next to the values people copy
    "directory(tenant)id": TENANT_ID,
    "application(client)id": CLIENT_ID,
    "appid": CLIENT_ID,
    "applicationid": CLIENT_ID,
    "keyvaulturl": KEY_VAULT,
    "vault": KEY_VAULT,
    "secretid": SECRET_URI,
}

#: Column names that would put a secret *value* into the inventory (and from there into the report).
_SECRET_VALUE_COLUMNS: Final = frozenset(
    {
        "secret",
        "clientsecret",
        "secretvalue",
        "password",
        "passwd",
        "privatekey",
        "pfxpassword",
        "certificatepassword",
        "accesstoken",
        "token",
    }
)

_CREDENTIAL_TYPES: Final[dict[str, CredentialType]] = {
    "secret": CredentialType.SECRET,
    "clientsecret": CredentialType.SECRET,
    "certificate": CredentialType.CERTIFICATE,
    "cert": CredentialType.CERTIFICATE,
    "clientcertificate": CredentialType.CERTIFICATE,
    "managedidentity": CredentialType.MANAGED_IDENTITY,
    "msi": CredentialType.MANAGED_IDENTITY,
    "federated": CredentialType.FEDERATED,
    "workloadidentity": CredentialType.FEDERATED,
}

_CLOUDS: Final[dict[str, Cloud]] = {
    "public": Cloud.PUBLIC,
    "azurecloud": Cloud.PUBLIC,
    "china": Cloud.CHINA,
    "azurechinacloud": Cloud.CHINA,
    "usgov": Cloud.USGOV,
    "azureusgovernment": Cloud.USGOV,
    "custom": Cloud.CUSTOM,
}

# --- value formats ---------------------------------------------------------------------------------------------
_GUID_CORE = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_GUID = re.compile(rf"\{{({_GUID_CORE})\}}|({_GUID_CORE})")
_NIL_GUID = "00000000-0000-0000-0000-000000000000"
_DOMAIN = re.compile(r"(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")
_PARTNER_ID = re.compile(r"[0-9]{6,10}")
_DIGITS = re.compile(r"[0-9]+")
_VAULT_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]")
_SECRET_NAME = re.compile(r"[0-9a-zA-Z-]{1,127}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LINE_BREAKS = re.compile(r"[\t\n\r\x0b\x0c]+")
_BINARY_CONTROL = re.compile(r"[\x01-\x08\x0b\x0e-\x1a\x1c-\x1f]")
_SECRET_CHARS = re.compile(r"[A-Za-z0-9+/=._~-]+")
_HEXISH = re.compile(r"[0-9a-fA-F{}-]+")
_UPPER, _LOWER, _DIGIT = re.compile(r"[A-Z]"), re.compile(r"[a-z]"), re.compile(r"[0-9]")
_SEP_HINT = re.compile(r'"?sep=(.)"?[,;\t]*', re.IGNORECASE)
_BLANKISH = re.compile(r'[\s,;\t"\ufeff]*')
_YAML_HINT = re.compile(r"(---|%YAML|(identities|customers|partner[_ -]?id|key[_ -]?vault|cloud)\s*:)", re.I)

_GUID_EXAMPLE = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
_HIDDEN = "(hidden: looks like a secret)"


# --- public API ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class InventoryDefaults:
    """Values the options give to rows that leave a column empty (a YAML file's own defaults win over these)."""

    partner_id: str | None = None
    key_vault: str | None = None
    cloud: Cloud = Cloud.PUBLIC
    sheet: str | None = None


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


def load_inventory(
    path: str | os.PathLike[str], *, defaults: InventoryDefaults = InventoryDefaults()
) -> Inventory:
    """Read and validate an inventory file; raise `InventoryError` only when the file is not an inventory at all.

    The format is chosen by extension (.csv/.tsv/.txt, .xlsx/.xlsm, .yaml/.yml) and, for anything else, by
    content. Invalid rows come back as `Problem`s; an inventory without a single valid row is still returned
    (see `check_runnable`), so a `validate` command can show every problem.
    """
    source = os.fspath(path)
    data = _read_bytes(source)
    sha256 = hashlib.sha256(data).hexdigest()
    kind = _kind(source, data)
    builder = _Builder(source, defaults)
    if kind == "xlsx":
        _load_xlsx(builder, data, defaults.sheet)
    else:
        text = _decode(builder, data)
        if kind == "yaml":
            _load_yaml(builder, text)
        else:
            _load_csv(builder, text)
    identities, problems = builder.finish()
    return Inventory(
        path=source,
        sha256=sha256,
        identities=identities,
        problems=problems,
        warnings=tuple(builder.warnings),
        rows=builder.rows,
    )


def check_runnable(inventory: Inventory) -> None:
    """Raise `NoValidRowsError` when nothing in `inventory` can run (the caller decides whether that is fatal)."""
    if inventory.identities:
        return
    if not inventory.rows:
        raise NoValidRowsError(
            f"{inventory.path}: the inventory has a header but no rows — add one row per identity"
        )
    first = "; ".join(str(p) for p in inventory.problems[:3])
    more = f" (and {len(inventory.problems) - 3} more)" if len(inventory.problems) > 3 else ""
    raise NoValidRowsError(
        f"{inventory.path}: none of the {inventory.rows} rows is valid: {first}{more} — fix the rows and run again"
    )


# --- reading the file ------------------------------------------------------------------------------------------
def _fail(source: str, what: str, fix: str) -> InventoryError:
    return InventoryError(f"{source}: {what} — {fix}")


def _read_bytes(source: str) -> bytes:
    """Read the whole file once (so the SHA-256 matches what was parsed), refusing what could hang or explode."""
    try:
        st = os.stat(source)
    except FileNotFoundError:
        raise _fail(source, "no such file", "check the path to the inventory") from None
    except OSError as exc:
        raise _fail(
            source, f"cannot be read ({exc.strerror})", "check the path and its permissions"
        ) from None
    if stat.S_ISDIR(st.st_mode):
        raise _fail(source, "is a directory", "pass the inventory file itself (a .csv, .xlsx or .yaml file)")
    if not stat.S_ISREG(st.st_mode):
        raise _fail(
            source, "is not a regular file (a pipe or device?)", "save the inventory to a file and pass that"
        )
    if st.st_size > MAX_FILE_BYTES:
        raise _fail(
            source,
            f"is {st.st_size // (1024 * 1024)} MiB, larger than the {MAX_FILE_BYTES // (1024 * 1024)} MiB limit",
            "split the inventory into several files",
        )
    try:
        with open(source, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _fail(source, f"cannot be read ({exc.strerror})", "check the file's permissions") from None
    if len(data) > MAX_FILE_BYTES:
        raise _fail(
            source, "grew past the size limit while being read", "split the inventory into several files"
        )
    return data


def _kind(source: str, data: bytes) -> str:
    """csv | xlsx | yaml, from the extension, then from the content."""
    suffix = Path(source).suffix.lower()
    if data.startswith(b"PK\x03\x04"):
        return "xlsx"  # a workbook whatever its name; openpyxl reports anything else inside a zip
    if suffix in (".xls", ".xlsb", ".ods") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise _fail(
            source,
            "is an old-style Excel .xls, .xlsb, OpenDocument or password-protected workbook",
            "save it as .xlsx (Excel Workbook) or CSV UTF-8 without a password",
        )
    if suffix in (".xlsx", ".xlsm"):
        raise _fail(
            source, "is named like a workbook but is not one (no ZIP signature)", "save it again as .xlsx"
        )
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


def _decode(builder: _Builder, data: bytes) -> str:
    """Decode by BOM, else UTF-8, else Windows-1252 with a warning; refuse what is not text."""
    source = builder.source
    text: str | None = None
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                raise _fail(
                    source,
                    f"starts with a {label} byte-order mark but is not valid {label}",
                    "save it again as CSV UTF-8",
                ) from None
            text = text.lstrip("\ufeff")
            break
    if text is None:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                text = data.decode("cp1252")
            except UnicodeDecodeError:
                raise _fail(
                    source,
                    "is not text (neither UTF-8 nor Windows-1252)",
                    "export the inventory as CSV UTF-8, XLSX or YAML",
                ) from None
            builder.warnings.append(f"{source}: read as Windows-1252 (not valid UTF-8)")
    nuls = text.count("\x00")
    # A stray NUL in a data row makes that row invalid; in the header, or many of them, the file is binary.
    if nuls and (nuls > max(16, len(text) // 1000) or "\x00" in text.split("\n", 1)[0]):
        raise _fail(
            source,
            "contains NUL bytes: it is a binary file or UTF-16 without a byte-order mark",
            "export the inventory as CSV UTF-8, XLSX or YAML",
        )
    sample = text[:_BINARY_SAMPLE]
    if sample and len(_BINARY_CONTROL.findall(sample)) > max(32, len(sample) // 10):
        raise _fail(
            source,
            "is not a text file (many control characters)",
            "export the inventory as CSV UTF-8, XLSX or YAML",
        )
    return text


# --- value helpers ---------------------------------------------------------------------------------------------
#: Every character str.isspace() knows, plus the invisible ones copy-paste brings (zero-width, marks, BOM).
_STRIP = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000\u200b\u200e\u200f\ufeff"
)


def _clean(value: str) -> str:
    """Trim what spreadsheets and copy-paste leave around a value (spaces, NBSP, zero-width, BOM)."""
    return value.strip(_STRIP)


def _looks_secret(value: str) -> bool:
    """True for text shaped like a client secret, a token or a key: such values are never echoed."""
    if value.startswith("-----BEGIN") or value.startswith("eyJ"):
        return True
    if len(value) >= 16 and "~" in value:  # Entra client secrets carry "~" (e.g. "abc8Q~…")
        return True
    if len(value) < 24 or not _SECRET_CHARS.fullmatch(value) or _HEXISH.fullmatch(value):
        return False
    if any(c in value for c in "+/="):
        return True
    return bool(_UPPER.search(value) and _LOWER.search(value) and _DIGIT.search(value))


def _show(value: str) -> str:
    """A value as it may appear in a message: quoted, shortened, and hidden when it looks like a secret."""
    if _looks_secret(value):
        return _HIDDEN
    if len(value) > 60:
        value = value[:57] + "…"
    return repr(value)


def _safe(value: str) -> str:
    """A value as it may be kept in a SkippedRow (which reaches the report): no secrets, no megabytes."""
    if _looks_secret(value):
        return _HIDDEN
    return value if len(value) <= 200 else value[:199] + "…"


def _cell_text(value: object) -> str:
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


# --- validation ------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Defaults:
    """Fallback values for one scope (options, YAML top level, YAML customer) and where each came from."""

    partner_id: str | None
    partner_from: str
    key_vault: str | None
    key_vault_from: str
    cloud: str
    cloud_from: str

    def override(self, values: Mapping[str, str], where: Mapping[str, str]) -> _Defaults:
        """These defaults with the non-empty `values` replacing them; `where` says where each came from."""
        partner = values.get(PARTNER_ID, "")
        vault = values.get(KEY_VAULT, "")
        cloud = values.get(CLOUD, "")
        return _Defaults(
            partner or self.partner_id,
            where[PARTNER_ID] if partner else self.partner_from,
            vault or self.key_vault,
            where[KEY_VAULT] if vault else self.key_vault_from,
            cloud or self.cloud,
            where[CLOUD] if cloud else self.cloud_from,
        )


_Issue = tuple[str, str, str]  # column, what is wrong, how to fix


class _Builder:
    """Validates rows one at a time and collects identities, problems, warnings and the row count."""

    def __init__(self, source: str, defaults: InventoryDefaults) -> None:
        self.source = source
        self.row_source = source  # XLSX rows report as FILE[SHEET]
        self.warnings: list[str] = []
        self.rows = 0
        self._identities: list[Identity] = []
        self._problems: list[Problem] = []
        self._vaults: dict[tuple[str, Cloud], tuple[str | None, str, str]] = {}
        self.defaults = _Defaults(
            _clean(defaults.partner_id) if defaults.partner_id else None,
            "the default partner ID option",
            _clean(defaults.key_vault) if defaults.key_vault else None,
            "the default key vault option",
            str(defaults.cloud),
            "the default cloud option",
        )

    # rows ---------------------------------------------------------------------------------------------------
    def skip(
        self,
        line: int,
        values: Mapping[str, str],
        extra: tuple[tuple[str, str], ...],
        issues: Sequence[_Issue],
        partner_id: str = "",
    ) -> None:
        """Record an invalid row: one SkippedRow shared by all of its problems."""
        row = SkippedRow(
            customer=_safe(_clean(values.get(CUSTOMER, ""))),
            tenant_id=_safe(_clean(values.get(TENANT_ID, ""))),
            client_id=_safe(_clean(values.get(CLIENT_ID, ""))),
            partner_id=_safe(partner_id or _clean(values.get(PARTNER_ID, ""))),
            extra=extra,
            source=self.row_source,
            line=line,
        )
        for column, message, fix in issues:
            self._problems.append(Problem(self.row_source, line, column, message, fix, row))

    def add(
        self,
        line: int,
        values: Mapping[str, str],
        labels: Mapping[str, str],
        extra: tuple[tuple[str, str], ...],
        scope: _Defaults,
        *,
        pre: Sequence[_Issue] = (),
        note: str = "",
    ) -> None:
        """Validate one row with content; it becomes an Identity or a skipped row."""
        self.rows += 1
        issues: list[_Issue] = list(pre)

        def label(column: str) -> str:
            return labels.get(column, column)

        get = {column: raw.strip(_STRIP) for column, raw in values.items() if raw}.get
        for column, raw in [*values.items(), *extra]:
            if "\x00" in raw:
                issues.append((label(column), "contains a NUL byte", "remove it (save the file again as CSV UTF-8)"))

        customer = get(CUSTOMER, "")
        if customer and _CONTROL.search(customer):
            # a quoted name may wrap in a spreadsheet cell: line breaks and tabs become one space
            customer = " ".join(_LINE_BREAKS.sub(" ", customer).split())
        if not customer:
            issues.append((label(CUSTOMER), "is empty", "fill in the customer's display name"))
        elif _CONTROL.search(customer):
            issues.append((label(CUSTOMER), "contains a control character", "remove it"))

        tenant = get(TENANT_ID, "")
        tenant_id = ""
        if not tenant:
            issues.append(
                (
                    label(TENANT_ID),
                    "is empty",
                    "fill in the customer's Directory (tenant) ID (a GUID) or a verified domain",
                )
            )
        else:
            match = _GUID.fullmatch(tenant)
            if match:
                tenant_id = (match.group(1) or match.group(2)).lower()
                if tenant_id == _NIL_GUID:
                    issues.append(
                        (label(TENANT_ID), "is the nil GUID", "use the customer's real Directory (tenant) ID")
                    )
            elif _DOMAIN.fullmatch(tenant.lower()):
                tenant_id = tenant.lower()
            else:
                issues.append(
                    (
                        label(TENANT_ID),
                        f"{_show(tenant)} is not a GUID or a domain name",
                        f"use the Directory (tenant) ID, e.g. {_GUID_EXAMPLE}, or a verified domain "
                        "such as contoso.onmicrosoft.com",
                    )
                )

        credential_type: CredentialType | None = None
        raw_type = get(CREDENTIAL_TYPE, "")
        type_ok = True
        if raw_type:
            credential_type = _CREDENTIAL_TYPES.get(raw_type) or _CREDENTIAL_TYPES.get(_squash(raw_type))
            if credential_type is None:
                type_ok = False
                issues.append(
                    (
                        label(CREDENTIAL_TYPE),
                        f"{_show(raw_type)} is not a credential type",
                        "use secret, certificate, managed_identity or federated, or leave it empty",
                    )
                )

        client = get(CLIENT_ID, "")
        client_id = ""
        if client:
            match = _GUID.fullmatch(client)
            if match:
                client_id = (match.group(1) or match.group(2)).lower()
                if client_id == _NIL_GUID:
                    issues.append(
                        (
                            label(CLIENT_ID),
                            "is the nil GUID",
                            "use the Application (client) ID of the app registration",
                        )
                    )
            else:
                issues.append(
                    (
                        label(CLIENT_ID),
                        f"{_show(client)} is not a GUID",
                        f"use the Application (client) ID of the app registration, e.g. {_GUID_EXAMPLE}",
                    )
                )
        elif credential_type is not CredentialType.MANAGED_IDENTITY:
            issues.append(
                (
                    label(CLIENT_ID),
                    "is empty",
                    "fill in the Application (client) ID (empty is allowed only for a system-assigned "
                    "managed identity with credential_type managed_identity)",
                )
            )

        partner_raw = get(PARTNER_ID, "")
        partner_from = ""
        if not partner_raw and scope.partner_id:
            partner_raw, partner_from = scope.partner_id, f" (from {scope.partner_from})"
        partner_id = ""
        if not partner_raw:
            issues.append(
                (
                    label(PARTNER_ID),
                    "no partner ID for this row",
                    "add a partner_id column, a partner_id default in the YAML file, or pass the "
                    "partner ID option",
                )
            )
        elif _PARTNER_ID.fullmatch(partner_raw):
            partner_id = partner_raw
        elif _DIGITS.fullmatch(partner_raw):
            issues.append(
                (
                    label(PARTNER_ID),
                    f"{_show(partner_raw)}{partner_from} has {len(partner_raw)} digits",
                    "a partner (location) ID has 6–10 digits; copy it from Partner Center",
                )
            )
        else:
            issues.append(
                (
                    label(PARTNER_ID),
                    f"{_show(partner_raw)}{partner_from} is not a number",
                    "a partner (location) ID is 6–10 digits; copy it from Partner Center",
                )
            )

        cloud_raw = get(CLOUD, "")
        cloud_from = ""
        if not cloud_raw:
            cloud_raw, cloud_from = scope.cloud, f" (from {scope.cloud_from})"
        cloud = _CLOUDS.get(cloud_raw) or _CLOUDS.get(_squash(cloud_raw))
        if cloud is None:
            issues.append(
                (
                    label(CLOUD),
                    f"{_show(cloud_raw)}{cloud_from} is not a cloud",
                    "use public, china, usgov or custom",
                )
            )

        secret_uri: str | None = None
        uri_raw, name_raw, token_file = get(SECRET_URI, ""), get(SECRET_NAME, ""), get(TOKEN_FILE, "")
        needs_vault = credential_type in (None, CredentialType.SECRET, CredentialType.CERTIFICATE)
        if not type_ok:
            pass  # the credential type is wrong: where its credential lives cannot be judged
        elif needs_vault:
            if uri_raw and name_raw:
                issues.append(
                    (
                        label(SECRET_NAME),
                        "is given together with secret_uri",
                        "keep one: either secret_uri, or key_vault + secret_name",
                    )
                )
            elif uri_raw:
                if cloud is not None:
                    secret_uri, message, fix = self._secret_uri(uri_raw, cloud)
                    if secret_uri is None:
                        issues.append((label(SECRET_URI), message, fix))
            elif name_raw:
                if not _SECRET_NAME.fullmatch(name_raw):
                    issues.append(
                        (
                            label(SECRET_NAME),
                            f"{_show(name_raw)} is not a Key Vault secret name",
                            "secret names are 1–127 characters: letters, digits and hyphens",
                        )
                    )
                vault_raw, vault_from = get(KEY_VAULT, ""), ""
                if not vault_raw and scope.key_vault:
                    vault_raw, vault_from = scope.key_vault, f" (from {scope.key_vault_from})"
                if not vault_raw:
                    issues.append(
                        (
                            label(KEY_VAULT),
                            "no Key Vault for secret_name",
                            "add a key_vault column, a key_vault default in the YAML file, or pass the "
                            "default key vault option",
                        )
                    )
                elif cloud is not None:
                    vault_url, message, fix = self._vault(vault_raw, cloud)
                    if vault_url is None:
                        issues.append((label(KEY_VAULT), message + vault_from, fix))
                    elif _SECRET_NAME.fullmatch(name_raw):
                        secret_uri = f"{vault_url}/secrets/{name_raw}"
            else:
                issues.append(
                    (
                        label(SECRET_URI),
                        "no credential location",
                        "add secret_uri, or secret_name (with key_vault or a default key vault), or set "
                        "credential_type to managed_identity or federated",
                    )
                )
            if token_file:
                issues.append(
                    (
                        label(TOKEN_FILE),
                        "is only used with credential_type federated",
                        "clear it, or set credential_type to federated",
                    )
                )
        else:
            if uri_raw or name_raw:
                column = label(SECRET_URI) if uri_raw else label(SECRET_NAME)
                issues.append(
                    (
                        column,
                        f"credential_type {credential_type} reads no Key Vault secret",
                        "clear secret_uri/secret_name, or set credential_type to secret or certificate",
                    )
                )
            if token_file and credential_type is CredentialType.MANAGED_IDENTITY:
                issues.append(
                    (
                        label(TOKEN_FILE),
                        "is only used with credential_type federated",
                        "clear it, or set credential_type to federated",
                    )
                )

        if issues or cloud is None:
            if note:
                issues.append(("row", note, "close the quote that was left open"))
            self.skip(line, values, extra, issues, partner_id)
            return
        self._identities.append(
            Identity(
                customer=customer,
                tenant_id=tenant_id,
                client_id=client_id,
                partner_id=partner_id,
                cloud=cloud,
                secret_uri=secret_uri,
                credential_type=credential_type,
                token_file=token_file or None,
                extra=extra,
                source=self.row_source,
                line=line,
            )
        )

    # Key Vault locations ------------------------------------------------------------------------------------
    def _vault(self, raw: str, cloud: Cloud) -> tuple[str | None, str, str]:
        """A vault URL or bare name → normalised vault URL, or (None, what is wrong, how to fix). Cached."""
        key = (raw, cloud)
        cached = self._vaults.get(key)
        if cached is None:
            cached = self._vaults[key] = _vault_url(raw, cloud)
        return cached

    def _secret_uri(self, raw: str, cloud: Cloud) -> tuple[str | None, str, str]:
        """A full secret identifier → normalised, or (None, what is wrong, how to fix)."""
        shown = _show(raw)
        low = raw.lower()
        if low.startswith("http://"):
            return None, f"{shown} uses http", "Key Vault is https only: write https://…"
        if not low.startswith("https://"):
            return (
                None,
                f"{shown} is not an https URL",
                ("write https://VAULT.<vault host>/secrets/NAME[/VERSION], or use key_vault + secret_name"),
            )
        try:
            parts = urlsplit(raw)
        except ValueError:
            return (
                None,
                f"{shown} is not a valid URL",
                "write https://VAULT.<vault host>/secrets/NAME[/VERSION]",
            )
        if parts.query or parts.fragment:
            return None, f"{shown} has a query or fragment", "remove everything after ? or #"
        path = parts.path.rstrip("/")
        marker = "/secrets/"
        # With cloud custom the vault URL may itself have a path (an emulator's /vaults/NAME): split at the
        # LAST /secrets/. Azure vault URLs have no path, so there the path must start with /secrets/.
        at = path.rfind(marker) if cloud is Cloud.CUSTOM else (0 if path.startswith(marker) else -1)
        if at < 0:
            return (
                None,
                f"{shown} has no /secrets/NAME part",
                "write https://VAULT.<vault host>/secrets/NAME[/VERSION]",
            )
        name, _, version = path[at + len(marker) :].partition("/")
        if not _SECRET_NAME.fullmatch(name):
            return (
                None,
                f"{shown} does not end in a valid secret name",
                ("secret names are 1–127 characters: letters, digits and hyphens"),
            )
        if version and not _SECRET_NAME.fullmatch(version):
            return (
                None,
                f"{shown} has an invalid version after the secret name",
                ("use /secrets/NAME or /secrets/NAME/VERSION (a 32-character hex version)"),
            )
        vault_url, message, fix = self._vault(f"https://{parts.netloc}{path[:at]}", cloud)
        if vault_url is None:
            return None, f"{shown}: {message}", fix
        return f"{vault_url}{marker}{name}" + (f"/{version}" if version else ""), "", ""

    # result -------------------------------------------------------------------------------------------------
    def finish(self) -> tuple[tuple[Identity, ...], tuple[Problem, ...]]:
        """Resolve duplicates (first runs; conflicting partner IDs skip every copy) and order by line."""
        groups: dict[str, list[Identity]] = {}
        keys = [identity.key for identity in self._identities]
        for key, identity in zip(keys, self._identities, strict=True):
            groups.setdefault(key, []).append(identity)
        keep: list[Identity] = []
        for key, identity in zip(keys, self._identities, strict=True):
            group = groups[key]
            if len(group) == 1:
                keep.append(identity)
                continue
            partner_ids = {i.partner_id for i in group}
            first = group[0]
            if len(partner_ids) > 1:
                others = ", ".join(f"line {i.line} ({i.partner_id})" for i in group if i is not identity)
                self._skip_identity(
                    identity,
                    PARTNER_ID,
                    f"this identity has different partner IDs: line {identity.line} "
                    f"({identity.partner_id}) and {others}; all copies are skipped",
                    "one identity links to one partner ID: keep one row and delete the others",
                )
            elif identity is first:
                keep.append(identity)
            else:
                self._skip_identity(
                    identity,
                    f"{TENANT_ID}+{CLIENT_ID}",
                    f"duplicate of line {first.line} (same tenant and client ID); "
                    f"line {first.line} runs, line {identity.line} is skipped",
                    "delete the duplicate row",
                )
        problems = sorted(self._problems, key=lambda p: (p.source, p.line))
        return tuple(keep), tuple(problems)

    def _skip_identity(self, identity: Identity, column: str, message: str, fix: str) -> None:
        row = SkippedRow(
            identity.customer,
            identity.tenant_id,
            identity.client_id,
            identity.partner_id,
            identity.extra,
            identity.source,
            identity.line,
        )
        self._problems.append(Problem(identity.source, identity.line, column, message, fix, row))


def _vault_url(raw: str, cloud: Cloud) -> tuple[str | None, str, str]:
    """Validate a vault URL or bare vault name for `cloud`; see docs/inventory.md for the rules."""
    shown = _show(raw)
    low = raw.lower()
    suffix = CLOUD_ENDPOINTS[cloud].vault_suffix if cloud is not Cloud.CUSTOM else None
    example = f"https://NAME.{suffix}" if suffix else "https://HOST[:PORT][/PATH]"
    if low.startswith("http://"):
        return None, f"{shown} uses http", f"Key Vault is https only: write {example}"
    if "://" in raw:
        if not low.startswith("https://"):
            return None, f"{shown} is not an https URL", f"write {example}"
        try:
            parts = urlsplit(raw)
            host, port = parts.hostname, parts.port
        except ValueError:
            return None, f"{shown} is not a valid URL", f"write {example}"
        if not host or parts.username is not None or parts.password is not None:
            return None, f"{shown} is not a valid vault URL", f"write {example}"
        if parts.query or parts.fragment:
            return None, f"{shown} has a query or fragment", f"write {example}"
        path = parts.path.rstrip("/")
        if suffix is None:  # custom cloud: any https URL is a vault URL, path prefix included
            return f"https://{parts.netloc.lower()}{path}", "", ""
        if path:
            fix = "put the full secret URI in secret_uri" if "/secrets/" in path else f"write {example}"
            return None, f"{shown} has a path; a vault URL is only https://NAME.{suffix}", fix
        if port not in (None, 443):
            return None, f"{shown} has a port; a vault URL is only https://NAME.{suffix}", f"write {example}"
        if not host.endswith("." + suffix):
            return (
                None,
                f"{shown} is not a Key Vault host of the {cloud} cloud (*.{suffix})",
                (f"write {example}, or set the row's cloud to the vault's cloud (custom for an emulator)"),
            )
        name = host[: -len(suffix) - 1]
        if not _VAULT_NAME.fullmatch(name) or "--" in name:
            return (
                None,
                f"{shown}: {name!r} is not a valid vault name",
                (
                    "vault names are 3–24 letters, digits and hyphens, start with a letter, end with a letter "
                    "or digit, and have no '--'"
                ),
            )
        return f"https://{host}", "", ""
    if suffix is None:
        return (
            None,
            f"{shown} is a vault name, but with cloud custom key_vault must be a URL",
            ("write the vault's full https URL, e.g. https://127.0.0.1:8443/vaults/ops"),
        )
    if not _VAULT_NAME.fullmatch(raw) or "--" in raw:
        fix = (
            f"write only the vault name or the full URL https://NAME.{suffix}"
            if "." in raw or "/" in raw
            else "vault names are 3–24 letters, digits and hyphens, start with a letter, end with a letter or digit, "
            "and have no '--'"
        )
        return None, f"{shown} is not a valid vault name or URL", fix
    return f"https://{low}.{suffix}", "", ""


# --- tables: CSV and XLSX --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Columns:
    """Where each known column sits in a header, and the extra columns to carry into the report."""

    known: tuple[tuple[str, int], ...]
    labels: dict[str, str]
    extras: tuple[tuple[int, str], ...]
    unnamed: tuple[int, ...]
    width: int


def _columns(where: str, header: Sequence[str]) -> _Columns:
    """Map a header row; a header that cannot work is one InventoryError (never one problem per row)."""
    known: dict[str, int] = {}
    labels: dict[str, str] = {}
    extras: list[tuple[int, str]] = []
    unnamed: list[int] = []
    for index, cell in enumerate(header):
        text = _clean(cell)
        if not text:
            unnamed.append(index)
            continue
        squashed = _squash(text)
        if squashed in _SECRET_VALUE_COLUMNS:
            raise InventoryError(
                f"{where}: column {index + 1} {_show(text)} would hold secret values — the inventory only points "
                "to Key Vault: delete the column and use secret_uri, or key_vault + secret_name"
            )
        canonical = _COLUMN_ALIASES.get(squashed)
        if canonical is None:
            extras.append((index, text))
        elif canonical in known:
            raise InventoryError(
                f"{where}: columns {known[canonical] + 1} and {index + 1} are both {canonical} — keep one of them"
            )
        else:
            known[canonical] = index
            labels[canonical] = text
    missing = [c for c in REQUIRED_COLUMNS if c not in known]
    if missing:
        shown = ", ".join(_show(_clean(c)) for c in header[:8]) + (", …" if len(header) > 8 else "")
        if any(_GUID.fullmatch(_clean(c)) for c in header):
            raise InventoryError(
                f"{where}: this row looks like data, not a header ({shown}) — add a header row first: "
                "customer,tenant_id,client_id,key_vault,secret_name,partner_id"
            )
        raise InventoryError(
            f"{where}: the header has no {', '.join(missing)} column (it reads: {shown}) — add the missing "
            "column; required are customer, tenant_id and client_id (names are case-insensitive)"
        )
    if SECRET_URI not in known and SECRET_NAME not in known and CREDENTIAL_TYPE not in known:
        raise InventoryError(
            f"{where}: the header has no credential location column — add secret_uri, or secret_name (with "
            "key_vault or a default key vault), or a credential_type column for managed_identity/federated rows"
        )
    return _Columns(tuple(known.items()), labels, tuple(extras), tuple(unnamed), len(header))


def _table(builder: _Builder, rows: Iterator[tuple[int, int, list[str]]], kind: str) -> None:
    """Header, then one identity per row with content; shared by CSV and XLSX."""
    line, header = 0, list[str]()
    for line, _, header in rows:  # noqa: B007 - the header's line is used after the loop
        if any(c.strip() for c in header):
            break
    else:
        raise _fail(
            builder.row_source,
            "has no header row (it is empty)",
            "start the file with a header row: customer,tenant_id,client_id,key_vault,secret_name,partner_id",
        )
    columns = _columns(f"{builder.row_source}:{line}", header)
    if PARTNER_ID not in columns.labels and not builder.defaults.partner_id:
        raise InventoryError(
            f"{builder.row_source}:{line}: the header has no partner_id column and no default partner ID was "
            "given — add a partner_id column, or pass the partner ID option"
        )
    known, extras, width = columns.known, columns.extras, columns.width
    scope = builder.defaults
    unnamed_values: set[int] = set()
    for line, end, cells in rows:
        if not "".join(cells).strip():
            continue  # no content at all: Excel exports leave such rows behind
        count = len(cells)
        values = {name: cells[i] for name, i in known if i < count}
        extra = tuple((label, cells[i] if i < count else "") for i, label in extras)
        pre: list[_Issue] = []
        if count > width and "".join(cells[width:]).strip():
            used = max(i for i, c in enumerate(cells) if c.strip()) + 1
            pre.append(
                (
                    "row",
                    f"has {used} values but the header has {width} columns",
                    "quote values that contain the delimiter, or give the extra column a header",
                )
            )
        for i in columns.unnamed:
            if i < count and cells[i].strip():
                unnamed_values.add(i)
        note = f"spans lines {line}–{end}: is a quote left open?" if end > line else ""
        builder.add(line, values, columns.labels, extra, scope, pre=pre, note=note)
    for i in sorted(unnamed_values):
        builder.warnings.append(
            f"{builder.row_source}: {kind} column {i + 1} has values but no header; they are ignored — "
            "give the column a header to carry it into the report"
        )


def _sniff_delimiter(header_line: str) -> str:
    """Pick `,` `;` or tab: the one that splits the header into the most known column names."""
    best, best_score = ",", (-1, -1)
    for delimiter in (",", ";", "\t"):
        cells = next(csv.reader([header_line], delimiter=delimiter), [])
        score = (sum(1 for c in cells if _squash(c) in _COLUMN_ALIASES), len(cells))
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _load_csv(builder: _Builder, text: str) -> None:
    source = builder.source
    lines = io.StringIO(text, newline="").readlines()  # the same line breaks the csv module counts
    if lines and max(map(len, lines)) > MAX_LINE_CHARS:
        index = next(i for i, line in enumerate(lines) if len(line) > MAX_LINE_CHARS)
        raise _fail(
            f"{source}:{index + 1}",
            f"the line is {len(lines[index]):,} characters long, which no inventory row is",
            "this is not a CSV inventory (or it lost its line breaks): export it again as CSV UTF-8",
        )
    start, delimiter = 0, ""
    if lines:
        hint = _SEP_HINT.fullmatch(lines[0].strip())
        if hint and hint.group(1) in ",;\t|":
            start, delimiter = 1, hint.group(1)  # Excel's "sep=;" first line
    if not delimiter:
        header_line = next((x for x in lines[start:] if not _BLANKISH.fullmatch(x)), None)
        if header_line is None:
            raise _fail(
                source,
                "is empty (no header row)",
                "start the file with a header row: customer,tenant_id,client_id,key_vault,secret_name,partner_id",
            )
        delimiter = _sniff_delimiter(header_line)

    def rows() -> Iterator[tuple[int, int, list[str]]]:
        reader = csv.reader(
            iter(lines[start:]), delimiter=delimiter, quotechar='"', doublequote=True, strict=False
        )
        previous = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise _fail(
                    f"{source}:{start + previous + 1}",
                    f"cannot be read as CSV ({exc})",
                    "look for a quote that is opened and never closed, or a value longer than a CSV field may be",
                ) from None
            yield start + previous + 1, start + reader.line_num, cells
            previous = reader.line_num

    _table(builder, rows(), "CSV")


def _load_xlsx(builder: _Builder, data: bytes, sheet: str | None) -> None:
    source = builder.source
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        raise _fail(
            source, "is not a valid .xlsx workbook (damaged ZIP)", "open it in Excel and save it as .xlsx"
        ) from None
    if unpacked > MAX_XLSX_UNCOMPRESSED:
        raise _fail(
            source,
            f"unpacks to {unpacked // (1024 * 1024)} MiB, more than a workbook inventory needs",
            "export the inventory as CSV UTF-8",
        )
    import openpyxl  # deferred: only workbook inventories pay for importing it

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it does not need
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a damaged workbook; all mean the same here
        raise _fail(
            source,
            f"is not a readable .xlsx workbook ({type(exc).__name__})",
            "open it in Excel and save it again as .xlsx",
        ) from exc
    try:
        names = [ws.title for ws in workbook.worksheets]
        if sheet is None:
            if not names:
                raise _fail(source, "has no worksheet", "put the inventory on the first sheet")
            worksheet = workbook.worksheets[0]
        else:
            matches = [ws for ws in workbook.worksheets if ws.title == sheet] or [
                ws for ws in workbook.worksheets if ws.title.casefold() == sheet.casefold()
            ]
            if not matches:
                raise _fail(
                    source,
                    f"has no worksheet {sheet!r}",
                    f"use one of: {', '.join(repr(n) for n in names) or '(none)'}",
                )
            worksheet = matches[0]
        builder.row_source = f"{source}[{worksheet.title}]"
        worksheet.reset_dimensions()  # some writers record wrong dimensions; read every row there is
        cells = worksheet.iter_rows(min_row=1, values_only=True)

        def rows() -> Iterator[tuple[int, int, list[str]]]:
            line = 0
            while True:
                try:
                    values = next(cells)
                except StopIteration:
                    return
                except Exception as exc:  # a damaged sheet fails lazily, while rows are read
                    raise _fail(
                        builder.row_source,
                        f"cannot be read after row {line} ({type(exc).__name__})",
                        "open it in Excel and save it again as .xlsx",
                    ) from exc
                line += 1
                yield line, line, [_cell_text(v) for v in values]

        _table(builder, rows(), "sheet")
    finally:
        workbook.close()


# --- YAML ------------------------------------------------------------------------------------------------------
class _AliasLimit(Exception):
    """Raised inside the composer when a document holds more aliases than any inventory needs."""


class _YamlLoader(yaml.SafeLoader):
    """SafeLoader that counts nodes and aliases while composing, so alias bombs are refused early."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.nodes = 0
        self.aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.nodes += 1
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_YAML_ALIASES:
                raise _AliasLimit
        return super().compose_node(parent, index)


_MERGE_TAG = "tag:yaml.org,2002:merge"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_YAML_KEYS = frozenset({"identities", "customers"})
_Item = tuple[str, int, yaml.Node]


class _YamlReader:
    """Turns composed nodes into rows, reading every value as text (no YAML 1.1 type guessing: 012345 stays
    "012345", `no` stays "no"), with a visit budget and cycle check so aliases cannot explode."""

    def __init__(self, builder: _Builder, budget: int) -> None:
        self.builder = builder
        self.budget = budget

    def _tick(self, node: yaml.Node, depth: int) -> None:
        self.budget -= 1
        if self.budget < 0 or depth > MAX_YAML_DEPTH:
            raise _fail(
                f"{self.builder.source}:{node.start_mark.line + 1}",
                "expands to more than an inventory can hold (alias bomb or deep nesting)",
                "write the inventory without deeply nested aliases",
            )

    def text(self, node: yaml.Node, depth: int = 0, path: frozenset[int] = frozenset()) -> str:
        """Any node as one line of text (lists joined by ", ", mappings as "key: value")."""
        self._tick(node, depth)
        if isinstance(node, yaml.ScalarNode):
            value = str(node.value)
            return "" if node.style is None and value in _NULLS else value
        if id(node) in path:
            raise _fail(
                f"{self.builder.source}:{node.start_mark.line + 1}",
                "contains a recursive alias",
                "remove the alias that refers to its own parent",
            )
        inner = path | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            return ", ".join(self.text(child, depth + 1, inner) for child in node.value)
        return ", ".join(
            f"{key}: {self.text(value, depth + 1, inner)}" for key, _, value in self.items(node, depth, inner)
        )

    def items(self, node: yaml.Node, depth: int = 0, path: frozenset[int] = frozenset()) -> list[_Item]:
        """(key, line, value) of a mapping with `<<` merge keys applied (explicit keys win)."""
        if not isinstance(node, yaml.MappingNode):
            return []
        merged: list[_Item] = []
        own: list[_Item] = []
        for key_node, value_node in node.value:
            self._tick(key_node, depth)
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                for source in sources:
                    if id(source) in path:
                        raise _fail(
                            f"{self.builder.source}:{source.start_mark.line + 1}",
                            "contains a recursive alias",
                            "remove the alias that refers to its own parent",
                        )
                    merged.extend(self.items(source, depth + 1, path | {id(source)}))
                continue
            own.append((self.text(key_node, depth + 1, path), key_node.start_mark.line + 1, value_node))
        overridden = {_squash(key) for key, _, _ in own}
        return [item for item in merged if _squash(item[0]) not in overridden] + own

    def fields(
        self, node: yaml.MappingNode
    ) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]], list[_Issue], dict[str, yaml.Node]]:
        """values by column, labels, extras, issues, and the nested `identities` node if any."""
        values: dict[str, str] = {}
        labels: dict[str, str] = {}
        lines: dict[str, int] = {}
        extras: list[tuple[str, str]] = []
        issues: list[_Issue] = []
        nested: dict[str, yaml.Node] = {}
        for key, line, value in self.items(node):
            squashed = _squash(key)
            if squashed in _YAML_KEYS:
                nested[squashed] = value
                continue
            if squashed in _SECRET_VALUE_COLUMNS:
                raise _fail(
                    f"{self.builder.source}:{line}",
                    f"key {_show(key)} would hold a secret value",
                    "the inventory only points to Key Vault: delete it and use secret_uri, or "
                    "key_vault + secret_name",
                )
            canonical = _COLUMN_ALIASES.get(squashed)
            if canonical is None:
                extras.append((key, self.text(value)))
                continue
            if canonical in lines:
                issues.append(
                    (key, f"is given twice (lines {lines[canonical]} and {line})", "keep one of them")
                )
                continue
            lines[canonical] = line
            labels[canonical] = key
            if isinstance(value, yaml.ScalarNode):
                values[canonical] = self.text(value)
            else:
                values[canonical] = ""
                issues.append((key, "must be a single value, not a list or mapping", f"write {key}: VALUE"))
        return values, labels, extras, issues, nested


def _load_yaml(builder: _Builder, text: str) -> None:
    source = builder.source
    loader: _YamlLoader | None = None
    try:
        loader = _YamlLoader(text)  # its reader already refuses non-printable characters
        root = loader.get_single_node()
    except _AliasLimit:
        raise _fail(
            source,
            f"uses more than {MAX_YAML_ALIASES:,} YAML aliases (an alias bomb?)",
            "write the inventory without so many aliases (or as CSV)",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        raise _fail(
            where,
            f"is not valid YAML ({exc.problem or exc.context})",
            "fix the YAML syntax (indentation, quotes, colons)",
        ) from None
    except yaml.YAMLError as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _fail(
            source, f"is not valid YAML ({detail})", "save it as UTF-8 text and fix the YAML syntax"
        ) from None
    except RecursionError:
        raise _fail(
            source, "is nested too deeply to be an inventory", "write a flat identities: list"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if root is None:
        raise _fail(source, "is empty", "add an identities: list (see docs/inventory.md)")
    reader = _YamlReader(builder, budget=max(500_000, 50 * loader.nodes))
    identities: yaml.Node | None = None
    customers: yaml.Node | None = None
    scope = builder.defaults
    if isinstance(root, yaml.SequenceNode):
        identities = root
    elif isinstance(root, yaml.MappingNode):
        top: dict[str, str] = {}
        origin: dict[str, str] = {}
        for key, line, value in reader.items(root):
            squashed = _squash(key)
            canonical = _COLUMN_ALIASES.get(squashed)
            if canonical in (PARTNER_ID, KEY_VAULT, CLOUD):
                if not isinstance(value, yaml.ScalarNode):
                    raise _fail(f"{source}:{line}", f"{key} must be a single value", f"write {key}: VALUE")
                top[canonical] = _clean(reader.text(value))
                origin[canonical] = f"the YAML default at {source}:{line}"
            elif squashed == "identities":
                identities = value
            elif squashed == "customers":
                customers = value
            elif not key.startswith(("x-", ".")):  # x-… / .… keys hold anchors to reuse (as in Compose)
                builder.warnings.append(
                    f"{source}:{line}: unknown top-level key {_show(key)} ignored — expected partner_id, "
                    "key_vault, cloud, identities or customers"
                )
        scope = scope.override(top, origin)
    else:
        raise _fail(
            source,
            "is a single YAML value, not an inventory",
            "add an identities: list (see docs/inventory.md)",
        )
    if identities is None and customers is None:
        raise _fail(source, "has no identities: or customers: list", "add one (see docs/inventory.md)")
    for name, node in (("identities", identities), ("customers", customers)):
        if node is None or (isinstance(node, yaml.ScalarNode) and reader.text(node) == ""):
            continue
        if not isinstance(node, yaml.SequenceNode):
            raise _fail(
                f"{source}:{node.start_mark.line + 1}",
                f"{name} must be a list",
                f"write each entry of {name}: on its own line starting with '- '",
            )
        for item in node.value:
            if name == "identities":
                _yaml_identity(builder, reader, item, scope, ({}, {}, [], []))
            else:
                _yaml_customer(builder, reader, item, scope)


_Inherited = tuple[dict[str, str], dict[str, str], list[tuple[str, str]], list[_Issue]]


def _yaml_identity(
    builder: _Builder, reader: _YamlReader, node: yaml.Node, scope: _Defaults, inherited: _Inherited
) -> None:
    """One identity entry; values missing from it come from its customer entry (`inherited`)."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and reader.text(node) == "":
        return  # an empty "- " entry has no content, like an empty CSV row
    if not isinstance(node, yaml.MappingNode):
        builder.rows += 1
        builder.skip(
            line,
            inherited[0],
            tuple(inherited[2]),
            [
                (
                    "identity",
                    "is not a mapping of key: value",
                    "write the identity as indented key: value lines",
                )
            ],
        )
        return
    values, labels, extras, issues, nested = reader.fields(node)
    if "identities" in nested:
        issues.append(
            ("identities", "is nested inside an identity", "list identities under a customer entry")
        )
    if not values and not extras and not issues:
        return
    own_labels = {label for label, _ in extras}
    merged_extras = [e for e in inherited[2] if e[0] not in own_labels] + extras
    builder.add(
        line,
        {**inherited[0], **values},
        {**inherited[1], **labels},
        tuple(merged_extras),
        scope,
        pre=inherited[3] + issues,
    )


def _yaml_customer(builder: _Builder, reader: _YamlReader, node: yaml.Node, scope: _Defaults) -> None:
    """A customer entry: its keys are inherited by each of its identities (or it is itself one identity)."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and reader.text(node) == "":
        return
    if not isinstance(node, yaml.MappingNode):
        builder.rows += 1
        builder.skip(
            line,
            {},
            (),
            [
                (
                    "customer",
                    "is not a mapping of key: value",
                    "write the customer as indented key: value lines with an identities: list",
                )
            ],
        )
        return
    values, labels, extras, issues, nested = reader.fields(node)
    identities = nested.get("identities")
    if identities is None:
        _yaml_identity(builder, reader, node, scope, ({}, {}, [], []))
        return
    entries = identities.value if isinstance(identities, yaml.SequenceNode) else None
    if entries is None and not (isinstance(identities, yaml.ScalarNode) and reader.text(identities) == ""):
        builder.rows += 1
        builder.skip(
            line,
            values,
            tuple(extras),
            [
                *issues,
                ("identities", "must be a list", "write each identity on its own line starting with '- '"),
            ],
        )
        return
    before = builder.rows
    for entry in entries or []:
        _yaml_identity(builder, reader, entry, scope, (values, labels, extras, issues))
    if builder.rows == before:
        builder.rows += 1
        builder.skip(
            line,
            values,
            tuple(extras),
            [*issues, ("identities", "is empty", "list at least one identity (client_id and its secret)")],
        )


# --- benchmark -------------------------------------------------------------------------------------------------
def write_sample_inventory(
    path: str | os.PathLike[str], rows: int, *, partner_id: str = "1234567", key_vault: str = "pal-bench-kv"
) -> Path:
    """Write a deterministic CSV inventory of `rows` valid identities (for `make bench` and tests)."""
    target = Path(path)
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["Customer", "Tenant ID", "Client ID", "Key Vault", "Secret Name", "Partner ID", "Owner"]
        )
        for n in range(1, rows + 1):
            writer.writerow(
                [
                    f"Customer {n:06d}, Ltd",
                    str(uuid.UUID(int=(0x5A << 120) | n)),
                    str(uuid.UUID(int=(0xC1 << 120) | n)),
                    key_vault,
                    f"sp-{n:06d}",
                    partner_id,
                    f"owner{n % 17}@example.com",
                ]
            )
    return target


def benchmark(rows: int = 100_000, *, directory: str | os.PathLike[str]) -> dict[str, float]:
    """Time `load_inventory` (wall and CPU seconds) over a synthetic CSV of `rows` identities in `directory`."""
    path = write_sample_inventory(Path(directory) / f"inventory-bench-{rows}.csv", rows)
    started, cpu_started = time.perf_counter(), time.process_time()
    inventory = load_inventory(path)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "rows": float(rows),
        "identities": float(len(inventory.identities)),
        "problems": float(len(inventory.problems)),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,  # what the loader costs, whatever else the machine is doing
        "rows_per_second": rows / seconds if seconds else float("inf"),
    }
