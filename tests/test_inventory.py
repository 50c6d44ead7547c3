"""Inventory loading and validation: the corpus in tests/data/inventory, generated hostile files, XLSX, YAML."""

from __future__ import annotations

import codecs
import hashlib
import os
import time
from pathlib import Path

import openpyxl
import pytest

from orchestrator import inventory as inventory_module
from orchestrator.errors import InventoryError, NoValidRowsError
from orchestrator.inventory import (
    Inventory,
    InventoryDefaults,
    benchmark,
    check_partner_id_option,
    check_runnable,
    load_inventory,
    reading,
    write_sample_inventory,
    yaml_rows,
)
from orchestrator.models import Cloud, CredentialType, Identity

CORPUS = Path(__file__).parent / "data" / "inventory"
EXAMPLES = Path(__file__).parent.parent / "inventory" / "examples"
T1 = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
T2 = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
C1 = "6ec0bd7f-11c0-43da-975e-2a8ad9ebae0b"
C2 = "c4a760a8-dbcf-4e14-9f39-645a8e2f1f48"
PARTNER = InventoryDefaults(partner_id="1234567")
CLIENT_SECRET = "Xy8Q~abcdEFGHijklMNOPqrstUVWXyz0123456789"


def load(name: str, defaults: InventoryDefaults = PARTNER) -> Inventory:
    return load_inventory(CORPUS / name, defaults=defaults)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def problems_by_line(inv: Inventory) -> dict[int, list[str]]:
    found: dict[int, list[str]] = {}
    for problem in inv.problems:
        found.setdefault(problem.line, []).append(f"{problem.column}: {problem.message}")
    return found


# --- encodings, delimiters, header spelling: every file holds the same two valid identities -------------------
@pytest.mark.parametrize(
    ("name", "warning"),
    [
        ("enc_utf8.csv", None),
        ("enc_utf8_bom.csv", None),
        ("enc_utf16_excel_unicode.txt", None),
        ("enc_cp1252.csv", "read as Windows-1252 (not valid UTF-8)"),
        ("delim_semicolon.csv", None),
        ("delim_tab.tsv", None),
        ("delim_sep_hint.csv", None),
    ],
)
def test_encodings_and_delimiters_read_the_same_identities(name: str, warning: str | None) -> None:
    """Each encoding (UTF-8, BOM, Excel's UTF-16 text, cp1252) and delimiter yields the same two identities."""
    inv = load(name)
    assert inv.problems == ()
    assert [i.customer for i in inv.identities][1] == "Ørsted"
    assert inv.identities[0].customer.startswith("Société Générale")
    assert inv.identities[0].extra == (("notes", "café"),)
    assert [i.line for i in inv.identities] == ([3, 4] if name == "delim_sep_hint.csv" else [2, 3])
    if warning:
        assert inv.warnings == (f"{CORPUS / name}: {warning}",)
    else:
        assert inv.warnings == ()


def test_header_names_are_case_space_and_hyphen_insensitive() -> None:
    """`Directory (tenant) ID`, `Key-Vault`, `SECRET NAME` and `Partner Id` map to the canonical columns."""
    (identity,) = load("header_aliases.csv", InventoryDefaults()).identities
    assert (identity.tenant_id, identity.client_id, identity.partner_id) == (T1, C1, "1234567")
    assert identity.secret_uri == "https://kv-ops.vault.azure.net/secrets/sp-a"


def test_blank_rows_are_ignored_and_not_counted() -> None:
    """Rows of only delimiters or whitespace (also before the header) are skipped silently."""
    inv = load("blank_rows.csv")
    assert (inv.rows, len(inv.identities), inv.problems) == (2, 2, ())
    assert [i.line for i in inv.identities] == [5, 8]


def test_quotes_and_whitespace_are_tolerated() -> None:
    """Quoted delimiters, doubled quotes, spaces around values and a wrapped quoted name all read cleanly."""
    inv = load("quotes_and_whitespace.csv")
    assert inv.problems == ()
    first, second = inv.identities
    assert (first.customer, first.tenant_id, first.client_id) == ("Contoso, Inc.", T1, C1)
    assert first.secret_uri == "https://kv-ops.vault.azure.net/secrets/sp-a"
    assert first.extra == (("owner", 'says "hi"'),)
    assert (second.customer, second.line) == ("Multi line", 3)


# --- row-level problems: the bad row is skipped with line-numbered reasons, the others run -------------------
ROW_CASES = [
    (
        "bad_guid.csv",
        1,
        {2: ["tenant_id: '3fa8"], 3: ["client_id: '6ec0"], 4: ["tenant_id: is the nil GUID"]},
    ),
    ("bad_partner_id.csv", 1, {2: ["is not a number"], 3: ["has 5 digits"], 4: ["has 11 digits"]}),
    (
        "bad_vault.csv",
        1,
        {
            2: ["uses http"],
            3: ["is not a Key Vault host of the public cloud (*.vault.azure.net)"],
            4: ["'1vault' is not a valid vault name"],
            5: ["'kv--ops' is not a valid vault name"],
            6: ["'kv' is not a valid vault name"],
            7: ["is not a valid vault name"],
            8: ["with cloud custom key_vault must be a URL"],
            9: ["is not a Key Vault host of the china cloud (*.vault.azure.cn)"],
        },
    ),
    (
        "bad_secret_name.csv",
        1,
        {2: ["'sp_a' is not a Key Vault secret name"], 3: ["is not a Key Vault secret"]},
    ),
    ("bad_secret_uri.csv", 1, {2: ["has no /secrets/NAME part"], 3: ["is not an https URL"], 5: ["query"]}),
    (
        "bad_credential_type.csv",
        2,
        {
            2: ["credential_type: 'password' is not a credential type"],
            3: ["secret_name: credential_type managed_identity reads no Key Vault secret"],
            6: ["token_file: is only used with credential_type federated"],
            7: ["client_id: is empty"],
        },
    ),
    ("bad_cloud.csv", 1, {2: ["cloud: 'mars' is not a cloud"]}),
    (
        "missing_cells.csv",
        0,
        {
            2: ["client_id: is empty"],
            3: ["customer: is empty"],
            4: ["no credential location"],
            5: ["no partner ID"],
        },
    ),
    ("extra_cells.csv", 1, {2: ["row: has 8 values but the header has 7 columns", "tenant_id: 'Inc.'"]}),
    ("control_chars.csv", 0, {2: ["customer: contains a control character"]}),
    ("unclosed_quote.csv", 0, {2: ["row: spans lines 2–3: is a quote left open?"]}),
]


@pytest.mark.parametrize(("name", "valid", "expected"), ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_row_problems_name_the_line_and_column(name: str, valid: int, expected: dict[int, list[str]]) -> None:
    """Each error class yields a Problem at the row's line and column; the valid rows still load."""
    defaults = InventoryDefaults() if name == "missing_cells.csv" else PARTNER
    inv = load(name, defaults)
    assert len(inv.identities) == valid
    found = problems_by_line(inv)
    assert sorted(found) == sorted(expected)
    for line, fragments in expected.items():
        for fragment in fragments:
            assert any(fragment in text for text in found[line]), (line, fragment, found[line])
    assert inv.rows == valid + len(inv.skipped)
    for problem in inv.problems:
        assert problem.row is not None and problem.row.line == problem.line
        assert str(problem).startswith(f"{CORPUS / name}:{problem.line}: {problem.column}: ")
        assert " — " in str(problem)


def test_all_reasons_of_a_line_are_joined_into_one_skipped_row() -> None:
    """A line with several problems is one SkippedRow whose reasons are all its problems joined by '; '."""
    inv = load("extra_cells.csv")
    (row,) = inv.skipped
    line_problems = [p for p in inv.problems if p.line == row.line]
    assert len(line_problems) == 4
    assert inv.reasons(row) == "; ".join(f"{p.column}: {p.message} — {p.fix}" for p in line_problems)
    assert (row.customer, row.tenant_id, row.extra) == ("Contoso", "Inc.", (("owner", "1234567"),))


def test_duplicate_identity_runs_first_and_conflicting_partner_ids_skip_all() -> None:
    """Same tenant+client: the first line runs and the later is skipped; different partner IDs skip every copy."""
    inv = load("duplicates.csv")
    assert [(i.line, i.extra) for i in inv.identities] == [(2, (("owner", "first"),))]
    found = problems_by_line(inv)
    assert found[3] == [
        "tenant_id+client_id: duplicate of line 2 (same tenant and client ID); line 2 runs, line 3 is skipped"
    ]
    assert "line 4 (1234567) and line 5 (7654321); all copies are skipped" in found[4][0]
    assert "line 5 (7654321) and line 4 (1234567)" in found[5][0]
    assert [r.line for r in inv.skipped] == [3, 4, 5]
    assert inv.rows == 4


def test_valid_values_are_normalised() -> None:
    """GUIDs lose braces and case, domains are lower-cased, partner IDs are stripped, vault URLs are built."""
    good = load("bad_guid.csv").identities[0]
    assert (good.tenant_id, good.client_id) == ("contoso.onmicrosoft.com", C2)
    assert load("bad_partner_id.csv").identities[0].partner_id == "1234567"
    assert load("bad_vault.csv").identities[0].secret_uri == "https://kv-ops.vault.azure.cn/secrets/sp-i"
    usgov = load("bad_cloud.csv").identities[0]
    assert usgov.cloud is Cloud.USGOV
    assert usgov.secret_uri == "https://kv-ops.vault.usgovcloudapi.net/secrets/b"
    with_version = load("bad_secret_uri.csv").identities[0]
    assert with_version.secret_uri == (
        "https://kv-ops.vault.azure.net/secrets/sp-c/0123456789abcdef0123456789abcdef"
    )


def test_credential_types_need_the_right_location() -> None:
    """managed_identity may omit client_id and needs no vault; federated keeps its token_file."""
    system_mi, federated = load("bad_credential_type.csv").identities
    assert (system_mi.client_id, system_mi.secret_uri) == ("", None)
    assert system_mi.credential_type is CredentialType.MANAGED_IDENTITY
    assert system_mi.key == f"{T1}|"
    assert federated.credential_type is CredentialType.FEDERATED
    assert federated.token_file == "/var/run/secrets/token"


def test_brace_guid_and_custom_cloud_vault_with_path_prefix(tmp_path: Path) -> None:
    """With cloud custom any https URL is a vault; secret URIs split at the LAST /secrets/ segment."""
    path = write(
        tmp_path / "custom.csv",
        "customer,tenant_id,client_id,key_vault,secret_name,secret_uri,cloud\n"
        f"A,{{{T1.upper()}}},{C1},https://127.0.0.1:8443/vaults/ops/,sp-a,,custom\n"
        f"B,{T2},{C1},,,https://127.0.0.1:8443/vaults/secrets/secrets/sp-b/v2,custom\n"
        f"C,{T2},{C2},,,https://kv-ops.vault.azure.net/secrets/secrets/v1,\n",
    )
    a, b, c = load_inventory(path, defaults=PARTNER).identities
    assert a.tenant_id == T1
    assert a.secret_uri == "https://127.0.0.1:8443/vaults/ops/secrets/sp-a"
    assert b.secret_uri == "https://127.0.0.1:8443/vaults/secrets/secrets/sp-b/v2"
    assert (
        c.secret_uri == "https://kv-ops.vault.azure.net/secrets/secrets/v1"
    )  # public: name "secrets", version v1


def test_no_partner_id_anywhere_is_one_file_error(tmp_path: Path) -> None:
    """Without a partner_id column or default, the file fails once instead of once per row."""
    path = write(tmp_path / "p.csv", f"customer,tenant_id,client_id,secret_uri\nA,{T1},{C1},x\n")
    with pytest.raises(
        InventoryError,
        match=r"p.csv:1: the header has no partner_id column and no --partner-id was given — add a partner_id "
        r"column, or pass --partner-id ID$",
    ):
        load_inventory(path)


def test_defaults_fill_empty_cells_and_rows_win(tmp_path: Path) -> None:
    """Options fill empty partner_id/key_vault/cloud; a row's own value wins over the option."""
    path = write(
        tmp_path / "d.csv",
        "customer,tenant_id,client_id,secret_name,partner_id,key_vault,cloud\n"
        f"A,{T1},{C1},sp-a,,,\nB,{T2},{C1},sp-b,7654321,other-kv,public\n",
    )
    defaults = InventoryDefaults(
        partner_id=" 1234567 ", key_vault="https://127.0.0.1:9/kv", cloud=Cloud.CUSTOM
    )
    a, b = load_inventory(path, defaults=defaults).identities
    assert (a.partner_id, a.cloud, a.secret_uri) == (
        "1234567",
        Cloud.CUSTOM,
        "https://127.0.0.1:9/kv/secrets/sp-a",
    )
    assert (b.partner_id, b.cloud, b.secret_uri) == (
        "7654321",
        Cloud.PUBLIC,
        "https://other-kv.vault.azure.net/secrets/sp-b",
    )


def test_a_bad_default_is_reported_on_the_rows_that_use_it(tmp_path: Path) -> None:
    """An invalid default partner ID skips only the rows relying on it, and the message says where it came from."""
    path = write(
        tmp_path / "d.csv",
        f"customer,tenant_id,client_id,secret_uri,partner_id\n"
        f"A,{T1},{C1},https://kv-ops.vault.azure.net/secrets/a,\nB,{T2},{C1},https://kv-ops.vault.azure.net/secrets/b,1234567\n",
    )
    inv = load_inventory(path, defaults=InventoryDefaults(partner_id="12x"))
    assert [i.customer for i in inv.identities] == ["B"]
    (problem,) = inv.problems
    assert problem.message == "'12x' (from --partner-id) is not a number"


def test_rows_without_a_key_vault_name_the_flag(tmp_path: Path) -> None:
    """Rows with secret_name but no vault are skipped one by one, each problem naming --key-vault."""
    no_column = write(
        tmp_path / "v.csv",
        f"customer,tenant_id,client_id,secret_name\nA,{T1},{C1},sp-a\nB,{T2},{C1},sp-b\n",
    )
    inv = load_inventory(no_column, defaults=PARTNER)
    assert [str(p) for p in inv.problems] == [
        f"{no_column}:{line}: key_vault: no Key Vault for secret_name: no key_vault column and no --key-vault — "
        "pass --key-vault NAME, or add a key_vault column (in YAML also a top-level key_vault: default)"
        for line in (2, 3)
    ]
    empty_cell = write(
        tmp_path / "e.csv",
        f"customer,tenant_id,client_id,secret_name,Key Vault\nA,{T1},{C1},sp-a,\nB,{T2},{C1},sp-b,kv-ops\n",
    )
    inv = load_inventory(empty_cell, defaults=PARTNER)
    assert [i.customer for i in inv.identities] == ["B"]
    (problem,) = inv.problems
    assert str(problem) == (
        f"{empty_cell}:2: Key Vault: no Key Vault for secret_name: key_vault is empty and no --key-vault was given "
        "— fill in key_vault, or pass --key-vault NAME for the rows without one"
    )
    with_flag = load_inventory(no_column, defaults=InventoryDefaults(partner_id="1234567", key_vault="kv-ops"))
    assert len(with_flag.identities) == 2


def test_hints_about_options_name_the_flags(tmp_path: Path) -> None:
    """No message speaks of "the … option": every default a message mentions is named by its flag."""
    inv = load("missing_cells.csv", InventoryDefaults())
    bad_cloud = load("bad_cloud.csv", InventoryDefaults(partner_id="1234567", cloud=Cloud.PUBLIC))
    texts = [str(p) for p in (*inv.problems, *bad_cloud.problems)]
    assert any("--partner-id ID" in t for t in texts)
    assert any("--key-vault" in t for t in texts)
    assert not [t for t in texts if " option" in t]
    path = write(tmp_path / "c.csv", f"customer,tenant_id,client_id,partner_id\nA,{T1},{C1},1234567\n")
    with pytest.raises(InventoryError, match=r"secret_name \(with key_vault or --key-vault\)"):
        load_inventory(path)


def test_extra_columns_keep_header_text_order_and_values(tmp_path: Path) -> None:
    """Unknown columns are carried unchanged, in file order, under their original header text."""
    path = write(
        tmp_path / "x.csv",
        f"Notes,customer,tenant_id,Owner E-mail,client_id,secret_uri,Tags\n"
        f'  keep  spaces ,A,{T1},a@example.com,{C1},https://kv-ops.vault.azure.net/secrets/a,"x, y"\n',
    )
    (identity,) = load_inventory(path, defaults=PARTNER).identities
    assert identity.extra == (
        ("Notes", "  keep  spaces "),
        ("Owner E-mail", "a@example.com"),
        ("Tags", "x, y"),
    )


def test_values_under_an_empty_header_are_ignored_with_a_warning(tmp_path: Path) -> None:
    """A column without a header cannot be named in the report: its values are dropped and a warning says so."""
    path = write(
        tmp_path / "x.csv",
        f"customer,tenant_id,client_id,secret_uri,\nA,{T1},{C1},https://kv-ops.vault.azure.net/secrets/a,zzz\n",
    )
    inv = load_inventory(path, defaults=PARTNER)
    assert len(inv.identities) == 1 and inv.identities[0].extra == ()
    assert inv.warnings == (
        f"{path}: CSV column 5 has values but no header; they are ignored — give the column a "
        "header to carry it into the report",
    )


def test_secrets_pasted_into_cells_never_reach_messages_or_skipped_rows(tmp_path: Path) -> None:
    """A client secret in a wrong column is hidden in problems, reasons and the SkippedRow."""
    path = write(
        tmp_path / "s.csv",
        "customer,tenant_id,client_id,secret_name,partner_id\n"
        f"A,{T1},{CLIENT_SECRET},{CLIENT_SECRET},1234567\n",
    )
    inv = load_inventory(path)
    (row,) = inv.skipped
    shown = repr(inv) + inv.reasons(row) + "".join(str(p) for p in inv.problems)
    assert CLIENT_SECRET not in shown
    assert "(hidden: looks like a secret)" in inv.reasons(row)


def test_sha256_and_path_are_recorded(tmp_path: Path) -> None:
    """The inventory records the path as given and the SHA-256 of the exact bytes parsed."""
    path = CORPUS / "enc_utf16_excel_unicode.txt"
    inv = load_inventory(str(path), defaults=PARTNER)
    assert inv.path == str(path)
    assert inv.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert inv.identities[0].location == f"{path}:2"


def test_check_runnable_raises_only_when_nothing_is_valid() -> None:
    """check_runnable accepts an inventory with a valid row and raises NoValidRowsError naming the problems."""
    check_runnable(load("bad_guid.csv"))
    with pytest.raises(
        NoValidRowsError, match=r"none of the 4 rows is valid: .*missing_cells.csv:2: client_id"
    ):
        check_runnable(load("missing_cells.csv", InventoryDefaults()))


# --- file-level errors: one InventoryError naming the file and the fix ----------------------------------------
FILE_CASES = [
    ("missing_column.csv", ":1: the header has no tenant_id, client_id column"),
    ("no_header.csv", ":1: this row looks like data, not a header"),
    ("empty.csv", ": is empty (no header row)"),
    ("only_blank.csv", ": is empty (no header row)"),
    ("duplicate_column.csv", ":1: columns 2 and 3 are both tenant_id"),
    ("secret_column.csv", "would hold secret values"),
    ("no_location_column.csv", "no credential location column"),
    ("nul_bytes.csv", ": contains NUL bytes"),
    ("binary.bin", ": is not text"),
    ("png_image.png", ": contains NUL bytes"),
    ("old_excel.xls", ": is an old-style Excel .xls"),
    ("not_a_workbook.xlsx", "is named like a workbook but is not one"),
    ("damaged.xlsx", "is not a valid .xlsx workbook"),
    ("bad_utf16.txt", "starts with a UTF-16 byte-order mark but is not valid UTF-16"),
    ("yaml_alias_bomb.yaml", "alias bomb"),
    ("yaml_recursive.yaml", ":2: contains a recursive alias"),
    ("yaml_syntax.yaml", ":3: is not valid YAML"),
    ("yaml_scalar.yaml", "is a single YAML value, not an inventory"),
    ("yaml_no_list.yaml", "has no identities: or customers: list"),
    ("yaml_identities_not_list.yaml", ":2: identities must be a list"),
    ("yaml_multi_doc.yaml", "is not valid YAML"),
    ("yaml_secret_key.yaml", ":5: key 'client_secret' would hold a secret value"),
]


@pytest.mark.parametrize(("name", "fragment"), FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_unreadable_files_raise_one_inventory_error(name: str, fragment: str) -> None:
    """A file that is not an inventory raises one InventoryError naming the file, the problem and a fix."""
    started = time.perf_counter()
    with pytest.raises(InventoryError) as caught:
        load(name)
    message = str(caught.value)
    assert message.startswith(str(CORPUS / name))
    assert fragment in message
    assert " — " in message and "\n" not in message
    assert time.perf_counter() - started < 2


def test_directory_and_missing_file(tmp_path: Path) -> None:
    """A directory or a missing path is one clear InventoryError, not an OSError."""
    with pytest.raises(InventoryError, match=r"is a directory — pass the inventory file itself"):
        load_inventory(tmp_path)
    with pytest.raises(InventoryError, match=r"nope.csv: no such file"):
        load_inventory(tmp_path / "nope.csv")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    """A named pipe would block a read forever: it is refused before opening."""
    fifo = tmp_path / "inventory.csv"
    os.mkfifo(fifo)
    with pytest.raises(InventoryError, match="is not a regular file"):
        load_inventory(fifo)


def test_a_50_mb_single_line_fails_fast(tmp_path: Path) -> None:
    """A 50 MB file without line breaks is refused quickly with the line's length."""
    path = tmp_path / "one-line.csv"
    path.write_bytes(b"customer,tenant_id," + b"x," * (25 * 1024 * 1024))
    started = time.perf_counter()
    with pytest.raises(InventoryError, match=r"one-line.csv:1: the line is 52,428,819 characters long"):
        load_inventory(path)
    assert time.perf_counter() - started < 5


def test_a_huge_field_fails_fast(tmp_path: Path) -> None:
    """A quoted field spanning megabytes (an unclosed quote in a big file) is one InventoryError."""
    path = tmp_path / "field.csv"
    body = "".join(f"row {n},{T1},{C1},x\n" for n in range(40_000))
    write(path, f'customer,tenant_id,client_id,secret_uri\n"A,{T1},{C1},x\n{body}')
    with pytest.raises(
        InventoryError, match=r"field.csv:2: cannot be read as CSV \(field larger than field limit"
    ):
        load_inventory(path, defaults=PARTNER)


def test_file_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file above the size limit is refused before it is read."""
    monkeypatch.setattr(reading, "MAX_FILE_BYTES", 1000)
    path = write(tmp_path / "big.csv", "customer,tenant_id,client_id,secret_uri\n" + "x" * 2000)
    with pytest.raises(InventoryError, match="larger than the 0 MiB limit — split the inventory"):
        load_inventory(path)


# --- XLSX ------------------------------------------------------------------------------------------------------
def make_workbook(path: Path) -> Path:
    workbook = openpyxl.Workbook()
    cover = workbook.active
    assert cover is not None
    cover.title = "Readme"
    cover.append(["customer", "tenant_id", "client_id", "secret_name", "key_vault", "partner_id"])
    cover.append(["Cover", T1, C1, "sp-cover", "kv-ops", 1234567])
    sheet = workbook.create_sheet("Tenants 2024")
    sheet.append(["Customer", "Tenant ID", "Client ID", "Secret Name", "Key Vault", "Partner ID", "Since"])
    sheet.append(["Contoso", T1, C1, "sp-a", "kv-ops", 1234567, 2024])
    sheet.append([None, None, None])
    sheet.append(["Bad", "nope", C1, "sp-b", "kv-ops", 1234567.0, 3.5])
    sheet.append(["  ", "", None, None])
    sheet.append(["Fabrikam", T2, C2, "sp-c", "kv-ops", "7654321", None])
    workbook.save(path)
    return path


def test_xlsx_reads_the_first_sheet_by_default(tmp_path: Path) -> None:
    """Without a sheet option the first worksheet is the inventory; numbers read as written (1234567)."""
    inv = load_inventory(make_workbook(tmp_path / "inv.xlsx"))
    (identity,) = inv.identities
    assert (identity.customer, identity.partner_id, identity.source) == (
        "Cover",
        "1234567",
        f"{tmp_path / 'inv.xlsx'}[Readme]",
    )


def test_xlsx_sheet_option_rows_and_locations(tmp_path: Path) -> None:
    """The sheet option picks a sheet (case-insensitively); problems are located as FILE[SHEET]:ROW."""
    path = make_workbook(tmp_path / "inv.xlsx")
    inv = load_inventory(path, defaults=InventoryDefaults(sheet="tenants 2024"))
    assert [(i.customer, i.line, i.extra) for i in inv.identities] == [
        ("Contoso", 2, (("Since", "2024"),)),
        ("Fabrikam", 6, (("Since", ""),)),
    ]
    (problem,) = inv.problems
    assert str(problem).startswith(f"{path}[Tenants 2024]:4: Tenant ID: 'nope' is not a GUID")
    assert (
        problem.row is not None
        and problem.row.partner_id == "1234567"
        and problem.row.extra == (("Since", "3.5"),)
    )
    assert inv.rows == 3
    assert inv.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_xlsx_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    """A sheet option naming no sheet is one InventoryError listing the sheets there are."""
    path = make_workbook(tmp_path / "inv.xlsx")
    with pytest.raises(
        InventoryError, match=r"has no worksheet 'Nope' — use one of: 'Readme', 'Tenants 2024'"
    ):
        load_inventory(path, defaults=InventoryDefaults(sheet="Nope"))


def test_xlsx_renamed_as_csv_is_still_read(tmp_path: Path) -> None:
    """A workbook saved with a .csv name is recognised by its content."""
    path = make_workbook(tmp_path / "inv.csv")
    assert len(load_inventory(path).identities) == 1


def test_empty_workbook_has_no_header(tmp_path: Path) -> None:
    """A workbook whose sheet is empty is one InventoryError naming FILE[SHEET]."""
    path = tmp_path / "empty.xlsx"
    openpyxl.Workbook().save(path)
    with pytest.raises(InventoryError, match=r"empty.xlsx\[Sheet\]: has no header row"):
        load_inventory(path)


def cover_then_inventory(path: Path, cover: list[list[object]]) -> Path:
    """A workbook whose first sheet holds `cover` rows and whose second sheet holds a valid inventory."""
    workbook = openpyxl.Workbook()
    first = workbook.active
    assert first is not None
    first.title = "Readme"
    for row in cover:
        first.append(row)
    sheet = workbook.create_sheet("Tenants")
    sheet.append(["customer", "tenant_id", "client_id", "secret_name", "key_vault", "partner_id"])
    sheet.append(["Contoso", T1, C1, "sp-a", "kv-ops", 1234567])
    workbook.save(path)
    return path


@pytest.mark.parametrize(
    ("cover", "what"),
    [
        ([["About this workbook"], ["Owner: ops"]], "the first sheet has no header row (no known column name"),
        ([], "has no header row (it is empty)"),
        ([["Contoso", T1, C1]], "this row looks like data"),
    ],
    ids=["notes", "empty", "data"],
)
def test_xlsx_first_sheet_without_header_suggests_the_sheet_option(
    tmp_path: Path, cover: list[list[object]], what: str
) -> None:
    """When the first sheet (taken by default) has no header, the fix names --sheet and the sheets there are."""
    path = cover_then_inventory(tmp_path / "inv.xlsx", cover)
    with pytest.raises(InventoryError) as caught:
        load_inventory(path)
    message = str(caught.value)
    assert message.startswith(f"{path}[Readme]") and what in message
    assert "pick the sheet that holds the inventory with --sheet NAME (sheets: 'Readme', 'Tenants')" in message
    assert len(load_inventory(path, defaults=InventoryDefaults(sheet="Tenants")).identities) == 1


def test_xlsx_chosen_sheet_without_header_does_not_suggest_another(tmp_path: Path) -> None:
    """A sheet picked with --sheet that has no header keeps the plain header fix."""
    path = cover_then_inventory(tmp_path / "inv.xlsx", [["About this workbook"]])
    with pytest.raises(InventoryError) as caught:
        load_inventory(path, defaults=InventoryDefaults(sheet="Readme"))
    assert "--sheet" not in str(caught.value)
    assert "the header has no customer, tenant_id, client_id column" in str(caught.value)


# --- YAML ------------------------------------------------------------------------------------------------------
YAML_BOTH_SHAPES = f"""# defaults for every identity below
partner_id: "1234567"
key_vault: kv-ops
x-common: &common
  owner: team-a
identities:
  - customer: Contoso
    tenant_id: {T1}
    client_id: {C1}
    secret_name: sp-contoso
    tags: [a, b]
    <<: *common
  -
customers:
  - customer: Fabrikam
    tenant_id: fabrikam.onmicrosoft.com
    partner_id: 0123456
    identities:
      - client_id: {C2}
        secret_uri: https://kv-ops.vault.azure.net/secrets/fab
      - client_id: {C1}
        tenant_id: {T2}
        credential_type: federated
  - customer: System MI
    tenant_id: {T2}
    credential_type: managed_identity
    cloud: china
"""


def test_yaml_flat_and_customer_shapes(tmp_path: Path) -> None:
    """Both YAML shapes load; customer keys are inherited; values stay text; lines are where items start."""
    inv = load_inventory(write(tmp_path / "inv.yaml", YAML_BOTH_SHAPES))
    assert inv.problems == () and inv.warnings == ()
    contoso, fab, fab_fed, mi = inv.identities
    assert contoso == Identity(
        customer="Contoso",
        tenant_id=T1,
        client_id=C1,
        partner_id="1234567",
        cloud=Cloud.PUBLIC,
        secret_uri="https://kv-ops.vault.azure.net/secrets/sp-contoso",
        extra=(("owner", "team-a"), ("tags", "a, b")),
        source=str(tmp_path / "inv.yaml"),
        line=7,
    )
    assert (fab.customer, fab.tenant_id, fab.partner_id, fab.line) == (
        "Fabrikam",
        "fabrikam.onmicrosoft.com",
        "0123456",
        19,
    )
    assert (fab_fed.tenant_id, fab_fed.credential_type, fab_fed.line) == (T2, CredentialType.FEDERATED, 21)
    assert (mi.client_id, mi.cloud, mi.line) == ("", Cloud.CHINA, 24)
    assert inv.rows == 4


def test_yaml_defaults_beat_options_and_unknown_keys_warn(tmp_path: Path) -> None:
    """A YAML top-level default wins over the option default; an unknown top-level key is a warning."""
    path = write(
        tmp_path / "inv.yml",
        f"partner_id: '7654321'\nvesion: 2\nidentities:\n"
        f"  - {{customer: A, tenant_id: {T1}, client_id: {C1}, secret_uri: 'https://kv-ops.vault.azure.net/secrets/a'}}\n",
    )
    inv = load_inventory(path, defaults=PARTNER)
    assert inv.identities[0].partner_id == "7654321"
    assert inv.warnings == (
        f"{path}:2: unknown top-level key 'vesion' ignored — expected partner_id, key_vault, "
        "cloud, federation_identity, identities or customers",
    )


def test_yaml_row_problems_point_at_the_item() -> None:
    """Bad YAML items become Problems at the line where the item starts; the good one runs."""
    inv = load("yaml_bad_rows.yaml", InventoryDefaults())
    assert [i.customer for i in inv.identities] == ["Good"]
    found = problems_by_line(inv)
    assert sorted(found) == [8, 12, 13, 19]
    assert found[12] == ["identity: is not a mapping of key: value"]
    assert "Tenant ID: is given twice (lines 14 and 15)" in found[13]
    assert "secret_name: must be a single value, not a list or mapping" in found[13]
    assert found[19] == ["identities: is empty"]
    assert inv.rows == 5


def test_yaml_alias_bomb_is_refused_quickly() -> None:
    """A billion-laughs document fails with one InventoryError in well under a second or two."""
    started = time.perf_counter()
    with pytest.raises(InventoryError, match="alias bomb"):
        load("yaml_alias_bomb.yaml")
    assert time.perf_counter() - started < 2


def test_yaml_too_many_aliases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """More aliases than the limit stop the composer itself."""
    monkeypatch.setattr(yaml_rows, "MAX_YAML_ALIASES", 3)
    path = write(tmp_path / "a.yaml", "x: &x 1\nidentities: [*x, *x, *x, *x]\n")
    with pytest.raises(InventoryError, match="uses more than 3 YAML aliases"):
        load_inventory(path)


def test_yaml_deep_nesting_is_refused(tmp_path: Path) -> None:
    """A deeply nested document is one InventoryError, not a RecursionError."""
    path = write(tmp_path / "deep.yaml", "identities: " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(InventoryError, match=r"nested too deeply|alias bomb or deep nesting"):
        load_inventory(path)


# --- examples, performance -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(EXAMPLES.iterdir()), ids=lambda p: p.name)
def test_shipped_examples_validate(path: Path) -> None:
    """Every example inventory loads without a problem or warning."""
    inv = load_inventory(path)
    assert inv.identities and inv.problems == () and inv.warnings == ()


def test_benchmark_hook_loads_every_generated_row(tmp_path: Path) -> None:
    """The benchmark hook generates and loads valid rows (its timing is measured by `make bench`, not here)."""
    result = benchmark(2_000, directory=tmp_path)
    assert result["identities"] == 2_000 and result["problems"] == 0
    assert result["seconds"] >= 0 and result["cpu_seconds"] >= 0


def test_sample_inventory_is_valid(tmp_path: Path) -> None:
    """write_sample_inventory writes distinct valid identities with quoted commas."""
    inv = load_inventory(write_sample_inventory(tmp_path / "s.csv", 50))
    assert len({i.key for i in inv.identities}) == 50 and inv.identities[0].customer == "Customer 000001, Ltd"


def test_utf32_and_bom_only_files(tmp_path: Path) -> None:
    """UTF-32 with a BOM is read; a file holding only a BOM is an empty inventory error."""
    path = tmp_path / "u32.csv"
    path.write_bytes(
        codecs.BOM_UTF32_LE
        + f"customer,tenant_id,client_id,secret_uri\nA,{T1},{C1},https://kv-ops.vault.azure.net/secrets/a\n".encode(
            "utf-32-le"
        )
    )
    assert len(load_inventory(path, defaults=PARTNER).identities) == 1
    path.write_bytes(codecs.BOM_UTF8)
    with pytest.raises(InventoryError, match="is empty"):
        load_inventory(path)


def test_the_format_documentation_covers_every_column_and_value() -> None:
    """docs/inventory.md names every column, credential type and cloud the loader accepts."""
    text = (Path(__file__).parent.parent / "docs" / "inventory.md").read_text(encoding="utf-8")
    for word in [*inventory_module.COLUMNS, *[c.value for c in CredentialType], *[c.value for c in Cloud]]:
        assert f"`{word}`" in text, word


def test_a_stray_nul_byte_skips_only_its_row(tmp_path: Path) -> None:
    """One NUL in a data cell makes that row a line-numbered problem; the other rows still load."""
    path = tmp_path / "nul.csv"
    path.write_bytes(
        b"customer,tenant_id,client_id,secret_uri,partner_id\n"
        b"Contoso,11111111-0000-4000-8000-000000000001,00000000-0000-4000-8000-000000000001,"
        b"https://kv1.vault.azure.net/secrets/s1,1234567\n"
        b"Bad\x00Co,11111111-0000-4000-8000-000000000002,00000000-0000-4000-8000-000000000002,"
        b"https://kv1.vault.azure.net/secrets/s2,1234567\n"
    )
    inv = load_inventory(path)
    assert len(inv.identities) == 1
    assert [p.line for p in inv.problems if "NUL" in p.message] == [3]


# --- bidirectional controls --------------------------------------------------------------------------------------
@pytest.mark.parametrize("bidi", ["\u202e", "\u202a", "\u2066", "\u2069", "\u200f"])
def test_bidi_controls_in_text_columns_warn_but_the_row_runs(tmp_path: Path, bidi: str) -> None:
    """A customer name or extra column holding a bidi control gets a FILE:LINE: column warning; the row still runs."""
    path = write(
        tmp_path / "b.csv",
        "customer,tenant_id,client_id,secret_uri,Owner\n"
        f"Contoso{bidi}moc.evil,{T1},{C1},https://kv-ops.vault.azure.net/secrets/a,ok\n"
        f"Fabrikam,{T2},{C1},https://kv-ops.vault.azure.net/secrets/b,bob{bidi}\n",
    )
    inv = load_inventory(path, defaults=PARTNER)
    assert [i.customer for i in inv.identities] == [f"Contoso{bidi}moc.evil", "Fabrikam"]
    assert inv.problems == ()
    reason = (
        "contains a bidirectional control character that can make it display spoofed; it is shown escaped in reports"
    )
    assert inv.warnings == (f"{path}:2: customer: {reason}", f"{path}:3: Owner: {reason}")


def test_bidi_controls_warn_in_yaml_too(tmp_path: Path) -> None:
    """The warning points at the line where the YAML identity starts."""
    path = write(
        tmp_path / "b.yaml",
        f"partner_id: '1234567'\nidentities:\n  - customer: \"Evil\\u202eCo\"\n    tenant_id: {T1}\n"
        f"    client_id: {C1}\n    secret_uri: https://kv-ops.vault.azure.net/secrets/a\n",
    )
    inv = load_inventory(path)
    assert len(inv.identities) == 1
    (warning,) = inv.warnings
    assert warning.startswith(f"{path}:3: customer: contains a bidirectional control character")


# --- the --partner-id flag ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, None),
        ("", None),
        ("1234567", None),
        (" 0123456 ", None),
        ("48A", "--partner-id 48A is not a partner location ID: use the 6–10 digit PLA ID"),
        ("12345", "--partner-id 12345 is not a partner location ID: use the 6–10 digit PLA ID"),
        ("12345678901", "--partner-id 12345678901 is not a partner location ID: use the 6–10 digit PLA ID"),
        (
            CLIENT_SECRET,
            "--partner-id (hidden: looks like a secret) is not a partner location ID: use the 6–10 digit PLA ID",
        ),
    ],
)
def test_check_partner_id_option(value: str | None, error: str | None) -> None:
    """A malformed --partner-id is one message for a usage error (a secret pasted there is not echoed)."""
    assert check_partner_id_option(value) == error
