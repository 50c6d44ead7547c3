"""Azure Lighthouse: delegated customer subscriptions are judged against the offer's roles and the journal's links.

Everything runs against the emulator with the real SDKs over HTTPS (loopback only): `GET /subscriptions` from
the managing tenant, registration assignments with their definitions, 403s, nextLink paging, faults.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Any

import pytest
from emulator_fixtures import OPERATOR_TENANT, OTHER_PARTNER_ID, PARTNER_ID
from test_link import Cli
from typer.testing import CliRunner

from orchestrator.cli import app
from orchestrator.emulator import Emulator, IdentityRecord
from orchestrator.journal import Journal
from orchestrator.lighthouse import Grant, Offer, Principal, PrincipalState, judge, roll_up
from orchestrator.models import LighthouseVerdict

SRC = "cfd33db0-3dd1-45e3-aa9d-cdbdf3b6f24e"  # Support Request Contributor
GROUP = "9a9a9a9a-0000-4000-8000-0000000000a1"  # a group of the managing tenant: cannot be linked
OUTSIDER = "9b9b9b9b-0000-4000-8000-0000000000b1"  # a service principal not in the inventory


def tenant(n: int) -> str:
    return f"c0000000-0000-4000-8000-{n:012d}"


def sub(n: int) -> str:
    return f"5b000000-0000-4000-8000-{n:012d}"


#: customer → (subscription, the verdict its offer earns)
EXPECTED = {
    "recognised": (1, "recognised"),
    "jit": (2, "eligible_only"),
    "reader": (3, "no_pec_role"),
    "elsewhere": (4, "principal_not_linked"),
    "broken": (5, "principal_not_linked"),
    "group": (6, "principal_unchecked"),
    "outsider": (7, "principal_unchecked"),
    "marketplace": (8, "marketplace"),
    "locked": (9, "unreadable"),
}


def _offer(n: int, name: str, auths: list[dict[str, str]], **more: Any) -> dict[str, Any]:
    return {"customer_tenant": tenant(n), "subscriptions": [sub(n)], "offer": name, "authorizations": auths, **more}


def lighthouse_world(page_size: int = 0) -> dict[str, Any]:
    """The managing tenant is the operator's; its principals are identities there, linked (or not) by `link`."""
    pal = {"client_id": "a1000000-0000-4000-8000-000000000001", "role": "Support Request Contributor",
           "principal_display_name": "PAL service principal"}
    reader = {**pal, "role": "Reader"}
    return {
        "operator": {"tenant": OPERATOR_TENANT},
        "vaults": [{"name": "pal-vault"}],
        "partners": [{"partner_id": PARTNER_ID}, {"partner_id": OTHER_PARTNER_ID}],
        "page_size": page_size,
        "identities": [
            {"tenant": OPERATOR_TENANT, "client_id": pal["client_id"], "secret_name": "lh-pal"},
            {"tenant": OPERATOR_TENANT, "client_id": "a1000000-0000-4000-8000-000000000002",
             "secret_name": "lh-elsewhere", "linked_to": OTHER_PARTNER_ID},
            {"tenant": OPERATOR_TENANT, "client_id": "a1000000-0000-4000-8000-000000000003",
             "secret_name": "lh-broken", "kv_missing": True},
        ],
        "lighthouse": [
            _offer(1, "Managed Ops", [pal, reader]),
            _offer(2, "JIT only", [reader], eligible_authorizations=[{**pal, "role": "Contributor"}]),
            _offer(3, "Read only", [reader]),
            _offer(4, "Old partner", [{"client_id": "a1000000-0000-4000-8000-000000000002", "role": "Contributor"}]),
            _offer(5, "Broken SP", [{"client_id": "a1000000-0000-4000-8000-000000000003", "role": "Owner"}]),
            _offer(6, "Group", [{"principal_id": GROUP, "role": "Contributor", "principal_display_name": "Ops"}]),
            _offer(7, "Outsider", [{"principal_id": OUTSIDER, "role": "Contributor"}]),
            _offer(8, "Marketplace", [{"principal_id": GROUP, "role": "Reader"}], marketplace_plan="managed-ops"),
            _offer(9, "Locked", [pal], unreadable=True),
        ],
    }


def managing_inventory(path: Path, em: Emulator, records: list[IdentityRecord]) -> Path:
    """The managing tenant's own principals, with their object IDs (so one that never signs in is still known)."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["customer", "tenant_id", "client_id", "secret_uri", "object_id"])
        for r in records:
            writer.writerow([f"Partner {r.secret_name}", r.tenant_id, r.client_id,
                             em.secret_uri(r.vault, r.secret_name), r.object_id])
    return path


def run_lighthouse(cli: Cli, *args: str) -> Any:
    """`lighthouse` with no INVENTORY: the links the journal holds decide."""
    argv = [a for a in cli.argv("lighthouse", "--", *args) if a != "--"]
    return CliRunner().invoke(app, argv, catch_exceptions=False)


def verdicts(cli: Cli) -> dict[str, str]:
    """subscription → verdict from lighthouse.csv."""
    with (cli.reports / "latest" / "lighthouse.csv").open(newline="", encoding="utf-8") as fh:
        return {row["subscription_id"]: row["verdict"] for row in csv.DictReader(fh)}


@pytest.fixture
def lh(emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Cli, Emulator, Path]:
    em = emulator_factory(lighthouse_world())
    cli = Cli(em, tmp_path, monkeypatch)
    return cli, em, managing_inventory(tmp_path / "managing.csv", em, em.world.identities)


def test_every_verdict_comes_from_the_wire(lh: tuple[Cli, Emulator, Path]) -> None:
    """`lighthouse MANAGING.csv` links the partner's principals, then judges each delegated subscription × offer."""
    cli, em, inventory = lh
    result = cli("lighthouse", inventory)
    assert result.exit_code == 1, result.output
    assert verdicts(cli) == {sub(n): verdict for n, verdict in EXPECTED.values()}
    summary = json.loads((cli.reports / "latest" / "lighthouse.json").read_text())
    assert (cli.reports / summary["run_id"] / "lighthouse.csv").is_file()
    assert not (cli.reports / "lighthouse.csv").exists()  # per run now, like the coverage set
    assert summary["lighthouse_customers"] == 9
    assert summary["lighthouse_recognised"] == 2  # recognised + marketplace
    pal = em.world.identities[0]
    assert em.link(pal.tenant_id, pal.object_id) is not None  # the inventory was linked first
    with Journal(cli.journal) as j:
        runs = j.runs()
        assert [r.command for r in runs] == ["link", "lighthouse"]
        assert runs[-1].exit_code == 1
        rows = {r.subscription_id: r for r in j.lighthouse_rows(runs[-1].run_id)}
    assert "last outcome credential_missing" in rows[sub(5)].reason
    assert "linked to partner ID 7654321" in rows[sub(4)].reason and "--overwrite" in rows[sub(4)].fix
    assert "link each member" in rows[sub(6)].fix
    assert rows[sub(2)].principal_ids == (pal.object_id,)
    assert "Reader" in rows[sub(9)].fix and rows[sub(9)].error_code == "AuthorizationFailed"
    assert "recognised" in result.output and "principal_unchecked" in result.output


def test_without_an_inventory_the_journal_says_who_is_linked(lh: tuple[Cli, Emulator, Path]) -> None:
    """With no INVENTORY the latest outcomes in the journal decide; an empty journal knows no principal."""
    cli, _em, inventory = lh
    assert run_lighthouse(cli).exit_code == 1
    first = verdicts(cli)
    assert first[sub(1)] == "principal_unchecked" and first[sub(4)] == "principal_unchecked"
    assert first[sub(8)] == "marketplace" and first[sub(3)] == "no_pec_role"
    assert cli("link", inventory).exit_code == 1  # lh-elsewhere and lh-broken fail to link
    assert run_lighthouse(cli).exit_code == 1
    assert verdicts(cli) == {sub(n): verdict for n, verdict in EXPECTED.values()}


def test_all_recognised_exits_0_and_faults_are_retried(emulator_factory: Any, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every customer recognised (or Marketplace) → exit 0, even through 429/503 on every ARM service."""
    world = lighthouse_world()
    world["lighthouse"] = [o for o in world["lighthouse"] if o["offer"] in ("Managed Ops", "Marketplace")]
    em = emulator_factory(world)
    cli = Cli(em, tmp_path, monkeypatch)
    inventory = managing_inventory(tmp_path / "managing.csv", em, em.world.identities[:1])
    assert cli("link", inventory).exit_code == 0
    em.script("arm", OPERATOR_TENANT, ["503", "429:0", "ok", "503", "ok", "503"])
    result = run_lighthouse(cli, "--output", "json")
    assert result.exit_code == 0, result.output
    assert verdicts(cli) == {sub(1): "recognised", sub(8): "marketplace"}
    assert any(r.status == 503 and "registrationAssignments" in r.path for r in em.requests)


def test_subscriptions_and_assignments_are_paged(emulator_factory: Any, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """nextLink pages of both lists are followed; every page is one request (page size 2)."""
    world = lighthouse_world(page_size=2)
    extra = [_offer(1, f"Extra {i}", [{"principal_id": OUTSIDER, "role": "Reader"}]) for i in range(4)]
    world["lighthouse"] += extra  # subscription 1 has 5 offers → 3 pages
    em = emulator_factory(world)
    cli = Cli(em, tmp_path, monkeypatch)
    inventory = managing_inventory(tmp_path / "managing.csv", em, em.world.identities)
    assert cli("lighthouse", inventory).exit_code == 1
    assert verdicts(cli) == {sub(n): verdict for n, verdict in EXPECTED.values()}
    with Journal(cli.journal) as j:
        rows = j.lighthouse_rows(j.runs()[-1].run_id)
    assert sum(1 for r in rows if r.subscription_id == sub(1)) == 5
    subs_pages = [r for r in em.requests if r.path.startswith("/subscriptions?")]
    assert len(subs_pages) == 5  # 9 delegated subscriptions, 2 a page
    sub1 = [r for r in em.requests if r.path.startswith(f"/subscriptions/{sub(1)}/providers/Microsoft.ManagedServices")]
    assert len(sub1) == 3


def test_offers_of_another_managing_tenant_are_ignored(emulator_factory: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A customer delegating to two partners: only the offers of our tenant are judged."""
    world = lighthouse_world()
    other = "0f0f0f0f-0000-4000-8000-00000000000f"
    world["tenants"] = [{"tenant_id": other}]
    world["lighthouse"] = [world["lighthouse"][0],
                           {**_offer(1, "Other partner", [{"principal_id": OUTSIDER, "role": "Owner"}]),
                            "managing_tenant": other}]
    em = emulator_factory(world)
    cli = Cli(em, tmp_path, monkeypatch)
    inventory = managing_inventory(tmp_path / "managing.csv", em, em.world.identities[:1])
    assert cli("lighthouse", inventory).exit_code == 0
    with Journal(cli.journal) as j:
        rows = j.lighthouse_rows(j.runs()[-1].run_id)
    assert [(r.offer, r.verdict.value) for r in rows] == [("Managed Ops", "recognised")]


def test_lighthouse_needs_a_partner_id(lh: tuple[Cli, Emulator, Path]) -> None:
    """No --partner-id: a usage error (exit 2) before anything is sent."""
    cli, em, _inventory = lh
    argv = [a for a in cli.argv("lighthouse", "--") if a not in ("--partner-id", PARTNER_ID, "--")]
    em.reset_log()
    result = CliRunner().invoke(app, argv, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert not [r for r in em.requests if r.service == "arm"]


def test_a_thousand_delegated_subscriptions_in_one_run(emulator_factory: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """1,000 delegated subscriptions (250 customers, pages of 100) are judged in one run, quickly."""
    world = lighthouse_world(page_size=100)
    pal = world["lighthouse"][0]["authorizations"]
    world["lighthouse"] = [
        {"customer_tenant": tenant(1000 + i // 4), "subscriptions": [sub(1000 + i)], "offer": "Managed Ops",
         "authorizations": pal if i % 10 else [{"principal_id": GROUP, "role": "Contributor"}]}
        for i in range(1000)
    ]
    em = emulator_factory(world)
    cli = Cli(em, tmp_path, monkeypatch)
    inventory = managing_inventory(tmp_path / "managing.csv", em, em.world.identities[:1])
    assert cli("link", inventory).exit_code == 0
    em.reset_log()
    started = time.monotonic()
    result = run_lighthouse(cli)
    elapsed = time.monotonic() - started
    assert result.exit_code == 0, result.output  # each customer has a recognised subscription
    got = verdicts(cli)
    assert len(got) == 1000
    assert sum(v == "recognised" for v in got.values()) == 900
    arm = [r for r in em.requests if r.service == "arm"]
    assert len(arm) <= 1000 + 10 + 2  # one per subscription, 10 pages of subscriptions, the probe
    assert elapsed < 60, elapsed
    print(f"\n1,000 delegated subscriptions: {elapsed:.1f} s, {len(arm)} ARM requests")


# -- the judgement alone ---------------------------------------------------------------------------------------


def _judge(*grants: Grant, principals: dict[str, Principal] | None = None) -> LighthouseVerdict:
    offer = Offer("t", "s", "", "offer", "d", grants)
    return judge(offer, principals or {}, PARTNER_ID).verdict


def test_the_best_verdict_wins() -> None:
    """A linked permanent PEC role beats a JIT one, which beats an unlinked principal; customers take the best."""
    linked = {"p1": Principal(PrincipalState.LINKED), "p2": Principal(PrincipalState.NOT_LINKED)}
    src, jit = Grant("p1", "", SRC), Grant("p1", "", SRC, just_in_time=True)
    assert _judge(src, Grant("p2", "", SRC), principals=linked) is LighthouseVerdict.RECOGNISED
    assert _judge(jit, Grant("p2", "", SRC), principals=linked) is LighthouseVerdict.ELIGIBLE_ONLY
    assert _judge(Grant("p2", "", SRC), Grant("p3", "", SRC), principals=linked) is (
        LighthouseVerdict.PRINCIPAL_NOT_LINKED)
    assert _judge(Grant("p3", "", SRC)) is LighthouseVerdict.PRINCIPAL_UNCHECKED
    assert _judge(Grant("p1", "", "acdd72a7-3385-48ef-bd42-f606fba81ae7"), principals=linked) is (
        LighthouseVerdict.NO_PEC_ROLE)
    assert _judge(Grant("p1", "", "0badc0de-0000-4000-8000-000000000001"), principals=linked) is (
        LighthouseVerdict.NO_PEC_ROLE)
    offer = Offer("t", "s2", "", "offer", "d", (Grant("p3", "", SRC),))
    rows = [judge(offer, linked, PARTNER_ID), judge(Offer("t", "s1", "", "o", "d", (src,)), linked, PARTNER_ID)]
    [customer] = roll_up(rows)
    assert customer.verdict is LighthouseVerdict.RECOGNISED and customer.subscriptions == 2 and customer.recognised


def test_a_principal_named_in_the_offers_sees_only_its_delegations(lh: tuple[Cli, Emulator, Path],
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed in as the PAL service principal itself, only the offers naming it are visible; 403 stays unreadable."""
    cli, em, inventory = lh
    assert cli("link", inventory).exit_code == 1
    pal = em.world.identities[0]
    monkeypatch.setenv("AZURE_CLIENT_ID", pal.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", em.world.vaults["pal-vault"].secrets[pal.secret_name][-1].value)
    assert run_lighthouse(cli).exit_code == 1
    assert verdicts(cli) == {sub(1): "recognised", sub(2): "eligible_only", sub(3): "no_pec_role",
                             sub(9): "unreadable"}


def test_the_demo_shows_a_delegated_customer_in_each_verdict(tmp_path: Path) -> None:
    """`make run` ends with `lighthouse` over inventory/demo-lighthouse.csv: one customer per verdict."""
    root = Path(__file__).resolve().parents[1]
    reports = tmp_path / "reports"
    result = CliRunner().invoke(app, ["demo", "--inventory", str(root / "inventory" / "demo.csv"),
                                      "--world", str(root / "inventory" / "demo-world.yaml"),
                                      "--report-dir", str(reports), "--journal", str(reports / "journal.sqlite"),
                                      "--output", "json"])
    assert result.exit_code == 0, result.output
    summary = json.loads((reports / "latest" / "lighthouse.json").read_text())
    in_run_folder = (reports / summary["run_id"] / "lighthouse.json").read_bytes()
    assert in_run_folder == (reports / "latest" / "lighthouse.json").read_bytes()
    assert set(summary["customer_verdicts"]) == {v.value for v in LighthouseVerdict}
    assert (summary["lighthouse_customers"], summary["lighthouse_recognised"]) == (7, 2)
    coverage = json.loads((reports / "latest" / "summary.json").read_text())  # the link run's, which came after
    assert coverage["command"] == "link" and coverage["lighthouse_run_id"] == summary["run_id"]
    assert (coverage["lighthouse_customers"], coverage["lighthouse_recognised"]) == (7, 2)
    import openpyxl

    sheets = openpyxl.load_workbook(reports / "latest" / "coverage.xlsx", read_only=True).sheetnames
    assert sheets[-2:] == ["Lighthouse customers", "Lighthouse subscriptions"]
    summary_sheet = openpyxl.load_workbook(reports / "latest" / "coverage.xlsx", read_only=True)["Summary"]
    assert ("Lighthouse customers recognised", 2) in [tuple(r[:2]) for r in summary_sheet.iter_rows(values_only=True)]
    html = (reports / "latest" / "coverage.html").read_text()
    assert "Lighthouse customers" in html and "Margie&#x27;s Travel" in html


def test_report_re_renders_a_lighthouse_run_and_skips_it_by_default(lh: tuple[Cli, Emulator, Path]) -> None:
    """`report` renders the latest coverage run (not a lighthouse run); `report RUN_ID` of one rewrites its files."""
    cli, _em, inventory = lh
    assert cli("lighthouse", inventory).exit_code == 1
    with Journal(cli.journal) as j:
        link_run, lighthouse_run = (r.run_id for r in j.runs())
    (cli.reports / "latest" / "lighthouse.csv").unlink()
    common = ["--journal", str(cli.journal), "--report-dir", str(cli.reports)]
    assert CliRunner().invoke(app, ["report", *common]).exit_code == 0
    assert json.loads((cli.reports / link_run / "summary.json").read_text())["run_id"] == link_run
    assert not (cli.reports / "latest" / "lighthouse.csv").exists()
    rendered = CliRunner().invoke(app, ["report", lighthouse_run, *common])
    assert rendered.exit_code == 0, rendered.output
    assert f"written to {cli.reports / lighthouse_run}/ and {cli.reports / 'latest'}/" in rendered.output
    assert verdicts(cli) == {sub(n): verdict for n, verdict in EXPECTED.values()}
    assert cli("link", inventory).exit_code == 1
    assert run_lighthouse(cli).exit_code == 1
    compared = CliRunner().invoke(app, ["report", "--compare", "--journal", str(cli.journal)])
    assert compared.exit_code == 0, compared.output  # the last two link runs, not the lighthouse ones


def test_an_operator_that_cannot_sign_in_is_a_run_level_error(lh: tuple[Cli, Emulator, Path],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong operator secret: exit 2 with one line naming the operator's sign-in; the lighthouse run ends 2."""
    cli, _em, _inventory = lh
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "wrong")
    result = run_lighthouse(cli)
    assert result.exit_code == 2, result.output
    assert "cannot sign in as the operator" in result.output and "Traceback" not in result.output
    with Journal(cli.journal) as j:
        assert [(r.command, r.exit_code) for r in j.runs()] == [("lighthouse", 2)]


def test_a_subscription_whose_reads_keep_failing_is_unreadable_and_the_run_goes_on(
        lh: tuple[Cli, Emulator, Path]) -> None:
    """503 on both attempts of one subscription's assignments: `unreadable` (retries exhausted), the rest judged."""
    cli, em, inventory = lh
    assert cli("link", inventory).exit_code == 1
    em.script("arm", OPERATOR_TENANT, ["ok", "503", "503"])  # the subscription list, then sub 1 twice
    result = run_lighthouse(cli, "--concurrency", "1", "--max-attempts", "2")
    assert result.exit_code == 1, result.output
    expected = {sub(n): verdict for n, verdict in EXPECTED.values()}
    assert verdicts(cli) == {**expected, sub(1): "unreadable"}
    with Journal(cli.journal) as j:
        row = next(r for r in j.lighthouse_rows(j.runs()[-1].run_id) if r.subscription_id == sub(1))
    assert row.error_code == "ServiceUnavailable (retries exhausted)"
    assert "again later" in row.fix


def test_a_429_pauses_every_worker_until_its_retry_after(emulator_factory: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """ARM throttles the operator as one principal: after a 429 (Retry-After 1 s) no new read starts for 1 s."""
    world = lighthouse_world()
    pal = world["lighthouse"][0]["authorizations"]
    world["lighthouse"] = [_offer(100 + i, "Managed Ops", pal) for i in range(30)]
    em = emulator_factory(world)
    cli = Cli(em, tmp_path, monkeypatch)
    assert cli("link", managing_inventory(tmp_path / "m.csv", em, em.world.identities[:1])).exit_code == 0
    em.reset_log()
    em.set_faults(latency_s=0.05)  # without the pause, the other two workers would read on through the second
    em.script("arm", OPERATOR_TENANT, ["ok", "429:1"])  # the subscription list, then the first assignment read
    assert run_lighthouse(cli, "--concurrency", "3").exit_code == 0
    assert set(verdicts(cli).values()) == {"recognised"}
    reads = [r for r in em.requests if "registrationAssignments" in r.path]
    throttled = next(r for r in reads if r.status == 429)
    assert not [r for r in reads if throttled.time + 0.3 < r.time < throttled.time + 0.9]
    assert len(reads) == 31


def test_principal_states_read_the_latest_outcome_against_the_target() -> None:
    """Covered and linked to --partner-id → linked; to another ID (or would_relink) → elsewhere; else not linked."""
    from orchestrator.lighthouse import principal_states
    from orchestrator.models import Outcome, Status

    def outcome(status: Status, linked: str | None = None) -> Outcome:
        return Outcome("k", "c", "t", "a", PARTNER_ID, status, linked_partner_id=linked)

    states = principal_states({
        "a": outcome(Status.ALREADY_LINKED, PARTNER_ID), "b": outcome(Status.LINKED),
        "c": outcome(Status.LINKED_ELSEWHERE, OTHER_PARTNER_ID), "d": outcome(Status.WOULD_RELINK, OTHER_PARTNER_ID),
        "e": outcome(Status.CREDENTIAL_EXPIRED), "f": outcome(Status.UNLINKED), "g": outcome(Status.WOULD_LINK),
    }, f" {PARTNER_ID} ")
    assert {k: v.state.value for k, v in states.items()} == {
        "a": "linked", "b": "linked", "c": "linked_elsewhere", "d": "linked_elsewhere", "e": "not_linked",
        "f": "not_linked", "g": "not_linked",
    }
    assert states["e"].detail == "last outcome credential_expired"


def test_sigterm_mid_run_exits_130_and_says_to_run_it_again(lh: tuple[Cli, Emulator, Path]) -> None:
    """A cancelled job (SIGTERM) mid-run: exit 130, the verdicts so far in the journal, no `--resume` hint."""
    import signal
    import subprocess
    import sys

    from test_reliability_crash import ROOT, _env

    cli, em, inventory = lh
    assert cli("link", inventory).exit_code == 1
    em.world.add_offers([_offer(200 + i, "Managed Ops", [{"principal_id": OUTSIDER, "role": "Owner"}])
                         for i in range(200)])
    em.set_faults(latency_s=0.2)
    em.reset_log()
    argv = [a for a in cli.argv("lighthouse", "--", "--concurrency", "2") if a != "--"]
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", *argv], cwd=ROOT, env=_env(em),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any("registrationAssignments" in r.path for r in em.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"pal-orchestrator lighthouse" in err and b"--resume" not in err and b"Traceback" not in err


def test_a_bad_offer_in_the_world_names_its_entry() -> None:
    """The emulator refuses an offer with an unknown role or without a principal, naming the entry."""
    from orchestrator.emulator import World, WorldError

    base = {"operator": {"tenant": OPERATOR_TENANT}}
    bad_role = [_offer(1, "x", [{"principal_id": OUTSIDER, "role": "Janitor"}])]
    with pytest.raises(WorldError, match=r"lighthouse\[0\]\.authorizations\[0\]: unknown role 'Janitor'"):
        World.from_dict({**base, "lighthouse": bad_role})
    with pytest.raises(WorldError, match=r"lighthouse\[0\]\.authorizations\[0\]: needs principal_id"):
        World.from_dict({**base, "lighthouse": [_offer(1, "x", [{"role": "Reader"}])]})
