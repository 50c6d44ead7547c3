"""The link engine end to end: the CLI, real SDKs, the emulator over HTTPS, the journal and the reports."""

from __future__ import annotations

import asyncio
import csv
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import DEFAULT_WORLD, OTHER_PARTNER_ID, PARTNER_ID
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.emulator import Emulator, IdentityRecord
from orchestrator.journal import Journal

#: What each identity of the default world must end as in a `link` run.
EXPECTED_LINK = {
    "sp-secret": "linked",
    "sp-pem": "linked",
    "sp-pfx": "linked",
    "sp-linked": "already_linked",
    "sp-app-secret-expired": "credential_expired",
    "sp-unregistered-secret": "credential_invalid",
    "sp-unregistered-cert": "credential_invalid",
    "sp-cert-expired": "credential_expired",
    "sp-not-in-tenant": "sign_in_failed",
    "sp-app-disabled": "sign_in_failed",
    "sp-kv-disabled": "credential_disabled",
    "sp-kv-expired": "credential_expired",
    "sp-deactivated": "sign_in_failed",
    "sp-other-vault": "credential_forbidden",
}


def write_inventory(path: Path, em: Emulator, records: Iterable[IdentityRecord], **extra: dict[str, str]) -> Path:
    """A CSV inventory for `records`, with full secret URIs on the emulator's vaults."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer", "tenant_id", "client_id", "secret_uri", "partner_id", "owner"])
        for r in records:
            row_extra = extra.get(r.secret_name, {})
            writer.writerow([
                row_extra.get("customer", f"Customer {r.secret_name}"),
                r.tenant_id,
                r.client_id,
                em.secret_uri(r.vault, r.secret_name),
                row_extra.get("partner_id", ""),
                "ops",
            ])
    return path


class Cli:
    """Runs pal-orchestrator in-process against one emulator, with the operator's env set."""

    def __init__(self, em: Emulator, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.em = em
        self.tmp = tmp
        self.journal = tmp / "journal.sqlite"
        self.reports = tmp / "reports"
        op = em.operator
        monkeypatch.setenv("AZURE_TENANT_ID", op.tenant_id)
        monkeypatch.setenv("AZURE_CLIENT_ID", op.client_id)
        monkeypatch.setenv("AZURE_CLIENT_SECRET", op.secret)
        monkeypatch.setenv("AZURE_AUTHORITY_HOST", em.authority_host)

    def argv(self, command: str, target: str, *args: str, partner_id: str = PARTNER_ID) -> list[str]:
        """`command TARGET` (an inventory path or --self) with the options that point at this emulator."""
        return [
            command, target, "--partner-id", partner_id, "--cloud", "custom",
            "--authority-host", self.em.authority_host, "--arm-endpoint", self.em.arm_endpoint,
            "--ca-bundle", str(self.em.ca_path), "--operator-auth", "env",
            "--journal", str(self.journal), "--report-dir", str(self.reports), *args,
        ]

    def __call__(self, command: str, inventory: Path, *args: str) -> Any:
        return CliRunner().invoke(app, self.argv(command, str(inventory), *args), catch_exceptions=False)

    def run_self(self, command: str, *args: str) -> Any:
        """The same options, acting on the signed-in (operator) identity with --self."""
        return CliRunner().invoke(app, self.argv(command, "--self", *args), catch_exceptions=False)

    def sql(self, statement: str, *params: str) -> None:
        """Edit the journal directly, to stage what a crash would have left."""
        db = sqlite3.connect(self.journal)
        try:
            db.execute(statement, params)
            db.commit()
        finally:
            db.close()

    def statuses(self) -> dict[str, str]:
        """client_id → status of the latest run, read from the journal."""
        with Journal(self.journal) as j:
            run = j.runs()[-1]
            return {o.client_id: o.status.value for o in j.outcomes(run.run_id)}


@pytest.fixture
def cli(emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    return Cli(emulator, tmp_path, monkeypatch)


def by_name(em: Emulator) -> dict[str, IdentityRecord]:
    return {r.secret_name: r for r in em.world.identities}


def writes_total(em: Emulator) -> int:
    return sum(1 for r in em.requests if r.service == "arm" and r.method in ("PUT", "PATCH", "DELETE"))


def test_link_produces_every_outcome_from_the_wire(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """Each identity of the default world ends in the status its emulator state dictates; exit code 1."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, emulator.world.identities)
    result = cli("link", inv)
    assert result.exit_code == 1, result.output
    names = by_name(emulator)
    got = cli.statuses()
    assert {name: got[r.client_id] for name, r in names.items()} == EXPECTED_LINK
    for name in ("sp-secret", "sp-pem", "sp-pfx"):
        r = names[name]
        assert emulator.link(r.tenant_id, r.object_id) is not None
        assert emulator.writes(r.tenant_id, r.object_id) == 1


def test_rerun_of_a_finished_run_is_read_only(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """A second link run over the same inventory writes nothing and reports already_linked; exit 0."""
    records = [r for r in emulator.world.identities if EXPECTED_LINK[r.secret_name] in ("linked", "already_linked")]
    inv = write_inventory(tmp_path / "inv.csv", emulator, records)
    assert cli("link", inv).exit_code == 0
    before = writes_total(emulator)
    second = cli("link", inv)
    assert second.exit_code == 0, second.output
    assert writes_total(emulator) == before
    assert set(cli.statuses().values()) == {"already_linked"}


def test_linked_elsewhere_is_left_alone_unless_overwrite(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """A link to another partner ID is reported, not touched; --overwrite switches it (PATCH) → relinked."""
    r = by_name(emulator)["sp-secret"]
    emulator.world.set_link(r.tenant_id, r.object_id, OTHER_PARTNER_ID)
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    result = cli("link", inv)
    assert result.exit_code == 1
    assert cli.statuses() == {r.client_id: "linked_elsewhere"}
    assert emulator.writes(r.tenant_id, r.object_id) == 0
    result = cli("link", inv, "--overwrite")
    assert result.exit_code == 0, result.output
    assert cli.statuses() == {r.client_id: "relinked"}
    link = emulator.link(r.tenant_id, r.object_id)
    assert link is not None and link.partner_id == PARTNER_ID


def test_plan_reads_only_and_reports_pending_writes(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """plan makes zero writes; --detailed-exitcode says 2 when writes are pending."""
    names = by_name(emulator)
    inv = write_inventory(tmp_path / "inv.csv", emulator, [names["sp-secret"], names["sp-linked"]])
    result = cli("plan", inv, "--detailed-exitcode")
    assert result.exit_code == 2, result.output
    assert writes_total(emulator) == 0
    assert cli.statuses() == {
        names["sp-secret"].client_id: "would_link", names["sp-linked"].client_id: "already_linked"
    }


def test_audit_reports_current_links_with_details(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """audit is read-only and tells not_linked / already_linked / linked_elsewhere with the partner name."""
    names = by_name(emulator)
    other = names["sp-pem"]
    emulator.world.set_link(other.tenant_id, other.object_id, OTHER_PARTNER_ID)
    inv = write_inventory(tmp_path / "inv.csv", emulator, [names["sp-secret"], names["sp-linked"], other])
    result = cli("audit", inv, "--output", "json")
    assert writes_total(emulator) == 0
    data = json.loads(result.stdout)
    by_client = {o["client_id"]: o for o in data["outcomes"]}
    assert by_client[names["sp-secret"].client_id]["status"] == "not_linked"
    assert by_client[names["sp-linked"].client_id]["status"] == "already_linked"
    assert by_client[names["sp-linked"].client_id]["partner_name"] == "Contoso Partner"
    assert by_client[other.client_id]["status"] == "linked_elsewhere"
    assert by_client[other.client_id]["linked_partner_id"] == OTHER_PARTNER_ID
    assert result.exit_code == 1  # linked_elsewhere is not a success state in audit


def test_unlink_needs_yes_and_then_deletes(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """unlink without --yes reads the links and lists exactly what it would delete (not the unlinked row, not
    the identity linked to another partner), writes nothing and journals nothing; with --yes it deletes."""
    r = by_name(emulator)["sp-linked"]
    unlinked = by_name(emulator)["sp-secret"]
    emulator.world.set_link(by_name(emulator)["sp-pem"].tenant_id, by_name(emulator)["sp-pem"].object_id,
                            OTHER_PARTNER_ID)
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r, unlinked, by_name(emulator)["sp-pem"]])
    dry = cli("unlink", inv)
    assert dry.exit_code == 0 and "--yes" in dry.output
    assert "would remove 1 links" in dry.stdout
    removed = [ln for ln in dry.stdout.splitlines() if ln.startswith("  ") and "(skip)" not in ln]
    assert len(removed) == 1 and r.client_id in removed[0]
    assert "left alone" in dry.stdout and "nothing to remove" in dry.stdout
    assert emulator.link(r.tenant_id, r.object_id) is not None
    assert not cli.journal.exists()
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    result = cli("unlink", inv, "--yes")
    assert result.exit_code == 0, result.output
    assert cli.statuses() == {r.client_id: "unlinked"}
    assert emulator.link(r.tenant_id, r.object_id) is None


def test_unknown_partner_id_is_partner_id_invalid(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """A PUT refused with 400 PartnerIdInvalid ends as partner_id_invalid, nothing linked."""
    r = by_name(emulator)["sp-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r], **{"sp-secret": {"partner_id": "99999999"}})
    assert cli("link", inv).exit_code == 1
    assert cli.statuses() == {r.client_id: "partner_id_invalid"}
    assert emulator.link(r.tenant_id, r.object_id) is None


def test_resume_finishes_an_interrupted_run_without_writing_twice(
    cli: Cli, emulator: Emulator, tmp_path: Path
) -> None:
    """An unfinished run whose in-flight write landed is resumed: re-read, reported linked, not rewritten."""
    names = by_name(emulator)
    done, inflight, todo = names["sp-secret"], names["sp-pem"], names["sp-pfx"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [done, inflight, todo])
    assert cli("link", inv).exit_code == 0  # links all three
    # Turn that run into one interrupted after `inflight`'s PUT: drop its outcome and `todo`'s, unlink `todo`.
    with Journal(cli.journal) as j:
        run = j.runs()[-1]
    keys = [f"{x.tenant_id}|{x.client_id}" for x in (inflight, todo)]
    cli.sql("DELETE FROM outcomes WHERE key IN (?, ?)", *keys)
    cli.sql("DELETE FROM intents WHERE key=?", keys[1])
    cli.sql("UPDATE runs SET finished_at=NULL, exit_code=NULL")
    emulator.world.links.pop((todo.tenant_id, todo.object_id), None)
    writes_before = writes_total(emulator)
    result = cli("link", inv, "--resume")
    assert result.exit_code == 0, result.output
    statuses = cli.statuses()
    assert statuses[inflight.client_id] == "linked"  # the intent tells it was this run's write
    assert statuses[todo.client_id] == "linked"
    assert writes_total(emulator) - writes_before == 1  # only `todo` was written
    with Journal(cli.journal) as j:
        assert [r.run_id for r in j.runs()] == [run.run_id]


def test_resume_with_nothing_unfinished_starts_nothing(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """--resume when the last run finished says so and exits 2 (nothing ran) without a request: a pipeline must
    not read "resumed" when nothing was linked."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    assert cli("link", inv).exit_code == 0
    emulator.reset_log()
    result = cli("link", inv, "--resume")
    assert result.exit_code == 2
    assert "nothing to resume" in result.output
    assert emulator.requests == []


def test_resume_refuses_a_changed_inventory_without_force(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """A changed inventory (SHA-256) is refused on --resume unless --force."""
    r = by_name(emulator)["sp-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    cli("link", inv)
    cli.sql("UPDATE runs SET finished_at=NULL, exit_code=NULL")  # as if the run had been killed
    inv.write_text(inv.read_text() + "\n")
    inv.write_text(inv.read_text().replace("ops", "ops2"))
    refused = cli("link", inv, "--resume")
    assert refused.exit_code == 2
    assert "--force" in refused.output
    assert cli("link", inv, "--resume", "--force").exit_code == 0


def test_a_second_concurrent_run_on_the_journal_is_refused(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """While one run holds the journal, another is refused with a clear message and exit 2."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    holder = Journal(cli.journal)
    holder.lock()
    try:
        result = cli("link", inv)
    finally:
        holder.close()
    assert result.exit_code == 2
    assert "another pal-orchestrator run" in result.output


def test_no_secret_reaches_output_journal_or_reports(
    cli: Cli, emulator: Emulator, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """With --debug and JSON output, no client secret, key or token appears anywhere we write."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, emulator.world.identities)
    result = cli("link", inv, "--debug", "--output", "json")
    captured = capfd.readouterr()
    canaries = _secrets_of(emulator)
    assert canaries
    haystacks: dict[str, str] = {"output": result.output, "stdout": captured.out, "stderr": captured.err}
    for path in [cli.journal, *cli.journal.parent.glob("journal.sqlite*"), *cli.reports.rglob("*")]:
        if path.is_file():
            haystacks[str(path)] = path.read_bytes().decode("latin-1")
    for where, text in haystacks.items():
        for canary in canaries:
            assert canary not in text, f"a secret leaked into {where}"


def _secrets_of(em: Emulator) -> list[str]:
    """Every client secret and the operator secret of the world (certificates: their base64 bodies' first line)."""
    found = [em.operator.secret]
    for vault in em.world.vaults.values():
        for versions in vault.secrets.values():
            value = versions[-1].value
            if "-----BEGIN" in value:
                body = [ln for ln in value.splitlines() if ln and not ln.startswith("-----")]
                found.append(body[1])
            else:
                found.append(value[:40])
    return found


def test_files_are_private(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """Journal, lock and report files are created 0600 whatever the umask."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    cli("link", inv)
    paths: list[Path] = [cli.journal, Path(f"{cli.journal}.lock"), *cli.reports.rglob("*")]
    for path in paths:
        if path.is_file():
            assert path.stat().st_mode & 0o077 == 0, path


_: Callable[..., Any] = write_inventory
__all__ = ["DEFAULT_WORLD"]


def test_report_compare_and_runs_through_the_cli(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """Two runs → `runs` lists both, `report --compare` shows the newly linked identity, `report` re-renders."""
    r = by_name(emulator)["sp-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    assert cli("audit", inv).exit_code == 0  # not_linked is a success state for audit
    assert cli("link", inv).exit_code == 0
    listing = CliRunner().invoke(app, ["runs", "--journal", str(cli.journal), "--output", "json"])
    assert listing.exit_code == 0, listing.output
    runs = json.loads(listing.stdout)
    assert len(runs) == 2
    compared = CliRunner().invoke(app, ["report", "--compare", "--journal", str(cli.journal)])
    assert compared.exit_code == 0, compared.output
    assert r.client_id in compared.stdout
    first = runs[0]["run_id"]
    again = tmp_path / "again"
    rendered = CliRunner().invoke(app, ["report", first, "--journal", str(cli.journal), "--report-dir", str(again)])
    assert rendered.exit_code == 0, rendered.output
    summary = json.loads((again / first / "summary.json").read_text())
    assert summary["run_id"] == first and summary["command"] == "audit"
    bad = CliRunner().invoke(app, ["report", "--compare", first, "--journal", str(cli.journal)])
    assert bad.exit_code == 2


def test_resume_writes_reports_a_crash_left_unwritten(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """A run that finished but died before its reports: --resume renders them, sending no request."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    assert cli("link", inv).exit_code == 0
    cli.sql("UPDATE runs SET reported_at=NULL")
    for path in cli.reports.iterdir():
        shutil.rmtree(path)
    emulator.reset_log()
    result = cli("link", inv, "--resume")
    assert result.exit_code == 0, result.output
    assert (cli.reports / "latest" / "summary.json").is_file() and (cli.reports / "latest" / "coverage.xlsx").is_file()
    assert emulator.requests == []
    again = cli("link", inv, "--resume")
    assert "nothing to resume" in again.output


def test_a_write_whose_answer_is_lost_is_not_written_again(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """The PUT lands but its answer times out: the link is re-read, found, and not written a second time."""
    r = by_name(emulator)["sp-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    server = emulator._server
    original = server._arm
    slowed: list[str] = []

    async def slow_first_put(request: Any) -> Any:
        response = await original(request)
        if request.method == "PUT" and not slowed:
            slowed.append("PUT")
            await asyncio.sleep(1.5)  # the write is applied; its answer arrives after the client gave up
        return response

    server._arm = slow_first_put
    result = cli("link", inv, "--timeout", "0.8", "--no-recognition")
    assert result.exit_code == 0, result.output
    assert cli.statuses() == {r.client_id: "linked"}
    assert emulator.writes(r.tenant_id, r.object_id) == 1


def test_recognition_trouble_never_changes_the_link_status(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """Dropped connections on the recognition reads leave the row linked, with recognition unknown."""
    r = by_name(emulator)["sp-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    emulator.script("arm", r.tenant_id, ["ok", "ok", "ok", "drop", "drop"])
    result = cli("link", inv, "--max-attempts", "2")
    assert result.exit_code == 0, result.output
    with Journal(cli.journal) as j:
        (outcome,) = j.outcomes(j.runs()[-1].run_id)
    assert outcome.status.value == "linked"
    assert outcome.recognition is not None and outcome.recognition.recognition.value == "unknown"


def test_a_plain_http_endpoint_is_refused_before_any_token_is_sent(
    cli: Cli, emulator: Emulator, tmp_path: Path
) -> None:
    """--arm-endpoint http://… is a usage error (exit 2): bearer tokens only travel over https."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    result = cli("link", inv, "--arm-endpoint", emulator.arm_endpoint.replace("https://", "http://"))
    assert result.exit_code == 2
    assert "https" in result.output
    assert emulator.requests == []


def test_markup_like_customer_names_are_printed_verbatim(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """A customer called `Evil [/x] Ltd` is shown as typed, never parsed as terminal markup."""
    r = by_name(emulator)["sp-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r], **{"sp-secret": {"customer": "Evil [/x] [bold]Ltd"}})
    result = cli("link", inv)
    assert result.exit_code == 0, result.output
    assert "Evil [/x] [bold]Ltd" in result.stdout


def test_resume_never_picks_up_a_run_older_than_the_last(
    cli: Cli, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run that failed at run level is closed; after a newer run finished, --resume has nothing to do."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong")
    assert cli("link", inv, "--max-attempts", "1").exit_code == 2  # the operator cannot read Key Vault
    monkeypatch.setenv("AZURE_CLIENT_SECRET", emulator.operator.secret)
    assert cli("link", inv).exit_code == 0
    result = cli("link", inv, "--resume")
    assert result.exit_code == 2
    assert "nothing to resume" in result.output
    with Journal(cli.journal) as j:
        assert all(run.finished for run in j.runs())


def test_resume_refuses_other_write_options_without_force(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """Resuming with another --partner-id than the run started with is refused (a run has one target)."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    assert cli("link", inv).exit_code == 0
    cli.sql("UPDATE runs SET finished_at=NULL, exit_code=NULL")  # as if the run had been killed
    result = CliRunner().invoke(app, cli.argv("link", str(inv), "--resume", partner_id="7654321"))
    assert result.exit_code == 2
    assert "--partner-id was '1234567'" in result.output


def test_a_404_from_a_wrong_endpoint_is_not_read_as_not_linked(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """A wrong --arm-endpoint answers 404 `NotFound` (also a plausible "not linked"): the probe of
    …/operations finds it is not ARM and stops the run before any identity is touched, instead of lying."""
    r = by_name(emulator)["sp-linked"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    result = cli("audit", inv, "--arm-endpoint", emulator.arm_endpoint + "bogus/", "--no-recognition")
    assert result.exit_code == 2, result.output
    assert "does not answer as Azure Resource Manager" in result.output
    assert not [q for q in emulator.requests if q.service in ("keyvault", "entra")]


def test_one_principal_under_two_tenant_spellings_is_written_at_most_once_per_run(
    cli: Cli, emulator: Emulator, tmp_path: Path
) -> None:
    """A row with the tenant's GUID and one with its domain are one principal: the second to sign in is skipped as
    a duplicate of the first (named by FILE:LINE), so even with two partner IDs and --overwrite each run writes at
    most once instead of relinking twice."""
    r = by_name(emulator)["sp-secret"]
    inv = tmp_path / "inv.csv"
    uri = emulator.secret_uri(r.vault, r.secret_name)
    inv.write_text(
        "customer,tenant_id,client_id,secret_uri,partner_id\n"
        f"Contoso,{r.tenant_id},{r.client_id},{uri},{PARTNER_ID}\n"
        f"Contoso again,contoso.example,{r.client_id},{uri},{OTHER_PARTNER_ID}\n"
    )
    for _ in range(2):
        before = writes_total(emulator)
        result = cli("link", inv, "--overwrite", "--no-recognition")
        assert result.exit_code == 1, result.output
        assert writes_total(emulator) - before <= 1
        with Journal(cli.journal) as j:
            rows = j.outcomes(j.runs()[-1].run_id)
        duplicate = [o for o in rows if o.error_code == "DuplicatePrincipal"]
        assert len(duplicate) == 1 and duplicate[0].status.value == "skipped"
        other = next(o for o in rows if o is not duplicate[0])
        assert f"inv.csv:{other.line}" in (duplicate[0].error_message or "")


def test_a_failed_row_keeps_its_vault_secret_name_and_support_ids(
    cli: Cli, emulator: Emulator, tmp_path: Path
) -> None:
    """identities.csv traces a row to its vault and secret (never the value), and keeps Entra's Trace ID and
    Correlation ID in their own columns however long the message."""
    r = by_name(emulator)["sp-unregistered-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    assert cli("link", inv, "--no-recognition").exit_code == 1
    rows = list(csv.DictReader((cli.reports / "latest" / "identities.csv").open()))
    assert rows[0]["secret_name"] == r.secret_name and "pal-vault" in rows[0]["key_vault"]
    assert len(rows[0]["trace_id"]) == 36 and len(rows[0]["correlation_id"]) == 36
    assert rows[0]["source"].endswith("inv.csv") and rows[0]["line"] == "2"


def test_reports_that_cannot_be_written_after_the_work_exit_4_with_the_results_shown(
    cli: Cli, emulator: Emulator, tmp_path: Path
) -> None:
    """The links are written and journaled, then the report directory refuses the files: the results table is
    still printed, one line names the directory and `report RUN_ID`, exit 4; `report RUN_ID` renders them later."""
    import os
    import subprocess

    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    cli.reports.mkdir(mode=0o700)
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(cli.reports)], capture_output=True).returncode != 0:
            pytest.skip("root on a file system without chattr +i: cannot make a directory unwritable")
    else:
        cli.reports.chmod(0o500)
    try:
        result = cli("link", inv, "--no-recognition")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(cli.reports)], check=True)
        cli.reports.chmod(0o700)
    assert result.exit_code == 4, result.output
    assert "linked" in result.output and str(cli.reports) in result.output
    assert emulator.link(*_tenant_object(emulator, "sp-secret")) is not None
    with Journal(cli.journal) as j:
        run_id = j.runs()[-1].run_id
    assert f"report {run_id}" in result.output
    rendered = CliRunner().invoke(app, ["report", run_id, "--journal", str(cli.journal),
                                        "--report-dir", str(cli.reports)])
    assert rendered.exit_code == 0 and (cli.reports / run_id / "identities.csv").exists()


def _tenant_object(em: Emulator, name: str) -> tuple[str, str]:
    r = by_name(em)[name]
    return r.tenant_id, r.object_id


def test_the_results_table_shows_rows_needing_attention_first_with_a_reason(
    cli: Cli, emulator: Emulator, tmp_path: Path
) -> None:
    """The terminal table starts with the failures, each with a short reason beside its error code."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, emulator.world.identities)
    result = cli("link", inv, "--no-recognition")
    lines = [ln for ln in result.stdout.splitlines() if ln.strip()]
    header = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["customer", "status"])
    assert "reason" in lines[header]
    first = lines[header + 1]
    assert not any(f" {ok} " in first for ok in ("linked", "already_linked")), first
    assert "AADSTS" in result.stdout or "SecretNotFound" in result.stdout or "Forbidden" in result.stdout


def test_debug_lines_name_the_identity_they_belong_to(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """With --debug, the SDK's lines logged for an identity carry its customer, tenant and client ID."""
    import subprocess
    import sys

    r = by_name(emulator)["sp-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r])
    argv = cli.argv("link", str(inv), "--no-recognition", "--debug")
    proc = subprocess.run([sys.executable, "-m", "orchestrator", *argv], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    named = [ln for ln in proc.stderr.splitlines() if f"client={r.client_id}" in ln]
    assert named and any("azure" in ln for ln in named)


def test_report_writes_json_and_compare_writes_json_or_csv(cli: Cli, emulator: Emulator, tmp_path: Path) -> None:
    """`report --output json` names the files written; `report --compare --output json|csv` is machine-readable."""
    r = by_name(emulator)["sp-secret"]
    inv = write_inventory(tmp_path / "inv.csv", emulator, [r, by_name(emulator)["sp-pem"]])
    assert cli("link", inv, "--no-recognition").exit_code == 0
    emulator.world.links.clear()
    assert cli("audit", inv, "--no-recognition").exit_code == 0
    common = ["--journal", str(cli.journal), "--report-dir", str(cli.reports)]
    rendered = CliRunner().invoke(app, ["report", "--output", "json", *common])
    assert rendered.exit_code == 0, rendered.output
    assert any(f.endswith("identities.csv") for f in json.loads(rendered.stdout)["files"])
    as_json = CliRunner().invoke(app, ["report", "--compare", "--output", "json", *common])
    data = json.loads(as_json.stdout)
    assert {c["client_id"] for c in data["links_lost"]} == {r.client_id, by_name(emulator)["sp-pem"].client_id}
    as_csv = CliRunner().invoke(app, ["report", "--compare", "--output", "csv", *common])
    rows = list(csv.DictReader(as_csv.stdout.splitlines()))
    assert sorted(row["change"] for row in rows) == ["customers_lost"] * 2 + ["links_lost"] * 2


def test_runs_never_cuts_a_run_id_in_a_narrow_terminal_or_a_pipe(
    cli: Cli, emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run ID that `report RUN_ID` needs is printed whole, however narrow the output."""
    inv = write_inventory(tmp_path / "inv.csv", emulator, [by_name(emulator)["sp-secret"]])
    assert cli("link", inv, "--no-recognition").exit_code == 0
    with Journal(cli.journal) as j:
        run_id = j.runs()[-1].run_id
    monkeypatch.setenv("COLUMNS", "40")
    listed = CliRunner().invoke(app, ["runs", "--journal", str(cli.journal)], terminal_width=40)
    assert listed.exit_code == 0 and run_id in listed.stdout, listed.stdout
