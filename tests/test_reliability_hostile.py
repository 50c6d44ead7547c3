"""Hostile and broken inventories through the CLI, end to end (`validate` and `link`).

Each corpus entry is a real file with one valid row for a real emulator identity plus the hostile part. The
outcome must be clear: a row-level problem (`FILE:LINE: column: …`, the row `skipped`, the valid row still
linked), a file-level error naming the file (exit 2, no request sent), or for Windows-1252 text a clean load
with a warning. Never a traceback (the CLI runs with `catch_exceptions=False`, so one fails the test) and
never a hang (each case is timed). Hypothesis then fuzzes `validate` with arbitrary CSV text, bytes and YAML.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_link import Cli
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.emulator import Emulator, IdentityRecord
from orchestrator.journal import Journal

PARTNER = "1234567"
HEADER = "customer,tenant_id,client_id,secret_uri,partner_id"
FORMULA_NAMES = ['=HYPERLINK("https://evil.example","click")', "+cmd|' /C calc'!A0", "@SUM(1+1)*cmd|' /C calc'!A0",
                 "-2+3+cmd|' /C calc'!A0", "<script>alert('x')</script> & Co"]


@dataclass(frozen=True)
class Case:
    """One hostile inventory: how to build it and what outcome it must have."""

    name: str
    build: Callable[[Path, str], Path]  # (directory, valid row) → inventory path
    outcome: str  # "skipped": valid row linked, hostile row(s) skipped; "file": file-level error;
    # "clean": everything valid (maybe with a warning)
    expect: str = ""  # a fragment the message must contain


def _csv(name: str, *lines: str, encoding: str = "utf-8") -> Callable[[Path, str], Path]:
    def build(directory: Path, valid: str) -> Path:
        path = directory / name
        # rows that pass validation must point at the emulator (a missing secret), never at a real host
        missing = valid.split(",")[3].rsplit("/secrets/", 1)[0] + "/secrets/missing-secret"
        text = "\n".join([HEADER, valid, *(line.replace(URI, missing) for line in lines)]) + "\n"
        path.write_bytes(text.encode(encoding))
        return path

    return build


def _raw(name: str, make: Callable[[str], bytes]) -> Callable[[Path, str], Path]:
    def build(directory: Path, valid: str) -> Path:
        path = directory / name
        path.write_bytes(make(valid))
        return path

    return build


def _huge_line(valid: str) -> bytes:
    return (HEADER + "\n" + valid + "\n").encode() + b"A" * (50 * 1024 * 1024) + b"\n"


def _alias_bomb(valid: str) -> bytes:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev = chr(ord("a") + i - 1)
        cur = chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{', '.join('*' + prev for _ in range(9))}]")
    lines.append("identities: *j")
    return "\n".join(lines).encode()


def _directory(directory: Path, valid: str) -> Path:
    path = directory / "inventory.csv"
    path.mkdir()
    return path


OTHER_TENANT = "11111111-2222-4333-8444-555555555555"
OTHER_CLIENT = "66666666-7777-4888-8999-aaaaaaaaaaaa"
URI = "@@SECRET_URI@@"  # replaced by an emulator secret URI when the file is built

CORPUS = [
    Case("empty-tenant", _csv("a.csv", f"Bad,,{OTHER_CLIENT},{URI},{PARTNER}"), "skipped", "tenant_id"),
    Case("bad-guid", _csv("a.csv", f"Bad,not-a-guid!,{OTHER_CLIENT},{URI},{PARTNER}"), "skipped", "tenant_id"),
    Case("nil-guid", _csv("a.csv", f"Bad,00000000-0000-0000-0000-000000000000,{OTHER_CLIENT},{URI},{PARTNER}"),
         "skipped", "nil GUID"),
    Case("bad-client", _csv("a.csv", f"Bad,{OTHER_TENANT},xyz,{URI},{PARTNER}"), "skipped", "client_id"),
    Case("bad-partner", _csv("a.csv", f"Bad,{OTHER_TENANT},{OTHER_CLIENT},{URI},12ab"), "skipped", "partner_id"),
    Case("bad-secret-uri", _csv("a.csv", f"Bad,{OTHER_TENANT},{OTHER_CLIENT},http://example.com/x,{PARTNER}"),
         "skipped", "secret_uri"),
    Case("empty-customer", _csv("a.csv", f",{OTHER_TENANT},{OTHER_CLIENT},{URI},{PARTNER}"), "skipped",
         "customer"),
    Case("extra-values", _csv("a.csv", f"Bad,{OTHER_TENANT},{OTHER_CLIENT},{URI},{PARTNER},surplus"), "skipped",
         "values"),
    Case("nul-byte", _csv("a.csv", f"Bad\x00Name,{OTHER_TENANT},{OTHER_CLIENT},{URI},{PARTNER}"), "skipped",
         "customer"),
    Case("huge-field", _csv("a.csv", f"{'H' * 300_000},{OTHER_TENANT},{OTHER_CLIENT},{URI},{PARTNER}"),
         "any", ""),
    Case("formula-names", _csv("a.csv", *[
        f'"{n.replace(chr(34), chr(34) * 2)}",{OTHER_TENANT},{OTHER_CLIENT[:-1]}{i},{URI},{PARTNER}'
        for i, n in enumerate(FORMULA_NAMES)
    ]), "clean", ""),
    Case("cp1252", _csv("a.csv", f"Société Générale – Zürich,{OTHER_TENANT},{OTHER_CLIENT},{URI},{PARTNER}",
                        encoding="cp1252"), "clean", "Windows-1252"),
    Case("non-utf8", _raw("a.csv", lambda v: (HEADER + "\n" + v + "\n").encode() + b"Bad\x81\x8d\x8f\x90\x9d,x\n"),
         "file", ""),
    Case("binary", _raw("a.csv", lambda v: b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64), "file", ""),
    Case("fifty-mb-line", _raw("a.csv", _huge_line), "file", ":3"),
    Case("alias-bomb", _raw("a.yaml", _alias_bomb), "novalid", ""),
    Case("directory", _directory, "file", "is a directory"),
    Case("empty", _raw("a.csv", lambda v: b""), "file", "empty"),
    Case("header-only", _raw("a.csv", lambda v: (HEADER + "\n").encode()), "file", ""),
    Case("not-xlsx", _raw("a.xlsx", lambda v: b"customer,tenant_id\n"), "file", "xlsx"),
    Case("open-quote", _csv("a.csv", f'"Bad,{OTHER_TENANT},{OTHER_CLIENT},{URI},{PARTNER}'), "any", ""),
    Case("duplicate", lambda d, v: _csv("a.csv", v)(d, v), "skipped", "duplicate"),
]


def _valid_row(em: Emulator, record: IdentityRecord) -> str:
    return f"Good Customer,{record.tenant_id},{record.client_id},{em.secret_uri(record.vault, record.secret_name)}," \
           f"{PARTNER}"


def _validate(path: Path) -> Any:
    return CliRunner().invoke(app, ["validate", str(path), "--partner-id", PARTNER, "--cloud", "custom"],
                              catch_exceptions=False)


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name if isinstance(c, Case) else None)
def test_hostile_inventory_gets_a_clear_outcome_never_a_traceback(
    case: Case, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """validate and link on each hostile file: a line-numbered problem with the row skipped and the valid row
    linked, or one file-level error and no request sent, or a clean load; fast, and never a traceback."""
    good = next(r for r in emulator.world.identities if r.secret_name == "sp-secret")
    path = case.build(tmp_path, _valid_row(emulator, good))
    started = time.monotonic()
    checked = _validate(path)
    assert time.monotonic() - started < 30, "validate took too long"
    assert "Traceback" not in checked.output
    cli = Cli(emulator, tmp_path, monkeypatch)
    started = time.monotonic()
    result = cli("link", path, "--no-recognition")
    assert time.monotonic() - started < 60
    assert "Traceback" not in result.output
    outcome = case.outcome
    said = " ".join(checked.output.split()).lower()  # the console wraps long lines
    if outcome == "any":
        outcome = "file" if result.exit_code == 2 else ("clean" if result.exit_code == 0 else "skipped")
    if outcome in ("file", "novalid"):
        assert checked.exit_code == 2, checked.output
        assert path.name.lower() in said
        if outcome == "novalid":  # read, but no valid row: line-numbered problems
            assert f"{path}:".lower() in checked.stdout.lower(), checked.output
        assert result.exit_code == 2 and "error:" in result.output, result.output
        assert case.expect.lower() in said, checked.output
        assert emulator.requests == [], "a file-level error must stop before any request"
        return
    statuses = _statuses(cli)
    assert statuses.get(f"{good.tenant_id}|{good.client_id}") == "linked", result.output
    if outcome == "skipped":
        assert checked.exit_code == 2, checked.output
        lines = [ln for ln in checked.stdout.splitlines() if ln.strip()]
        assert lines and all(f"{path}:" in ln for ln in lines[:1]), checked.stdout
        assert any(f"{path}:" in ln and ln.split(f"{path}:", 1)[1].split(":", 1)[0].isdigit() for ln in lines)
        assert case.expect.lower() in checked.stdout.lower(), checked.stdout
        assert "skipped" in statuses.values()
        assert result.exit_code == 1
    else:
        assert checked.exit_code == 0, checked.output
        assert result.exit_code in (0, 1), result.output
        assert case.expect.lower() in said
        assert "skipped" not in statuses.values(), statuses


def _statuses(cli: Cli) -> dict[str, str]:
    with Journal(cli.journal) as journal:
        run = journal.runs()[-1]
        return {o.key: o.status.value for o in journal.outcomes(run.run_id)}


def test_formula_and_markup_names_are_inert_in_every_report(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Customer names that start a formula or carry HTML reach the reports as inert text: XLSX string cells,
    CSV cells prefixed with `'`, HTML escaped."""
    names = ("sp-secret", "sp-pem", "sp-pfx", "sp-linked", "sp-kv-disabled")
    good = [r for r in emulator.world.identities if r.secret_name in names]
    assert len(good) == len(FORMULA_NAMES)
    path = tmp_path / "inv.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER.split(","))
        for name, r in zip(FORMULA_NAMES, good, strict=False):
            writer.writerow([name, r.tenant_id, r.client_id, emulator.secret_uri(r.vault, r.secret_name), PARTNER])
    cli = Cli(emulator, tmp_path, monkeypatch)
    result = cli("link", path, "--no-recognition")
    assert result.exit_code == 1, result.output  # sp-kv-disabled: credential_disabled
    wb = openpyxl.load_workbook(cli.reports / "latest" / "coverage.xlsx")
    seen = set()
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", f"{ws.title}!{cell.coordinate} is a formula: {cell.value!r}"
                if isinstance(cell.value, str) and cell.value in FORMULA_NAMES:
                    seen.add(cell.value)
    assert seen >= set(FORMULA_NAMES[:4])
    for name in ("identities.csv", "customers.csv"):
        rows = list(csv.reader(io.StringIO((cli.reports / "latest" / name).read_text(encoding="utf-8-sig"))))
        cells = [c for row in rows for c in row]
        for formula in FORMULA_NAMES[:4]:
            assert formula not in cells, f"{name}: {formula!r} left as a live formula"
            assert "'" + formula in cells, name
        assert not any(c[:1] in ("=", "+", "-", "@") for c in cells if c), name
    for page in ("coverage.html", "summary.html"):  # summary.html lists the customers needing action by name
        html = (cli.reports / "latest" / page).read_text()
        assert "<script>alert" not in html, page
        assert "&lt;script&gt;" in html, page


# -- fuzzing the loaders through the CLI --------------------------------------------------------------------

_FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

_cell = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "=1+1", "aaaaaaaa-0000-4000-8000-00000000000a", "1234567", "https://v.vault.azure.net",
                     "https://v.vault.azure.net/secrets/n", '"', '""', "\x00", "\r\n", ";", "\t", "\ufeff"]),
)
_header = st.lists(
    st.sampled_from(["customer", "tenant_id", "client_id", "secret_uri", "key_vault", "secret_name", "partner_id",
                     "cloud", "credential_type", "token_file", "Customer Name", "TenantID", "", "x", "owner"]),
    min_size=0, max_size=8,
)


def _write(tmp: Path, name: str, data: bytes) -> Path:
    path = tmp / name
    path.write_bytes(data)
    return path


def _assert_clean_validate(path: Path) -> None:
    result = _validate(path)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        assert result.output.strip(), "exit 2 must say why"


@_FUZZ
@given(header=_header, rows=st.lists(st.lists(_cell, max_size=9), max_size=6),
       delimiter=st.sampled_from([",", ";", "\t"]))
def test_fuzz_csv_tables_through_validate(tmp_path: Path, header: list[str], rows: list[list[str]],
                                          delimiter: str) -> None:
    """Arbitrary CSV tables (any header, cells with quotes, NULs, line breaks, BOMs): exit 0 or 2, never a crash."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(header)
    writer.writerows(rows)
    _assert_clean_validate(_write(tmp_path, "f.csv", buffer.getvalue().encode("utf-8", "surrogatepass")))


@_FUZZ
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".yaml", ".yml", ".xlsx", ".txt"]))
def test_fuzz_raw_bytes_through_validate(tmp_path: Path, data: bytes, suffix: str) -> None:
    """Arbitrary bytes under any inventory suffix: exit 0 or 2 with a message, never a crash."""
    _assert_clean_validate(_write(tmp_path, "f" + suffix, HEADER.encode() + b"\n" + data))
    _assert_clean_validate(_write(tmp_path, "g" + suffix, data))


_yaml_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20),
                         st.sampled_from(["aaaaaaaa-0000-4000-8000-00000000000a", "1234567", "secret", "pem"]))
_yaml_key = st.sampled_from(["identities", "customers", "customer", "tenant_id", "client_id", "secret_uri",
                             "key_vault", "secret_name", "partner_id", "cloud", "defaults", "name", "x"])
_yaml_value = st.recursive(
    _yaml_scalar,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_yaml_key, children, max_size=5)),
    max_leaves=25,
)


@_FUZZ
@given(doc=_yaml_value)
def test_fuzz_yaml_documents_through_validate(tmp_path: Path, doc: object) -> None:
    """Arbitrary YAML structures built from inventory keys: exit 0 or 2, never a crash."""
    text = yaml.safe_dump(doc, allow_unicode=True)
    _assert_clean_validate(_write(tmp_path, "f.yaml", text.encode("utf-8", "surrogatepass")))
