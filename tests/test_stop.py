"""Stop early when every identity fails for one shared cause (exit 3), never for one identity's own problem.

Runs go through `execute` against the emulator with real SDKs over HTTPS; `sleep` is injected so no test waits.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from test_reliability_faults import (
    PARTNER,
    make_world,
    never_sleep,
    operator_env,
    options,
    outcomes,
    write_rows,
)

from orchestrator.breaker import Breaker
from orchestrator.emulator import Emulator
from orchestrator.errors import EndpointError
from orchestrator.models import Command, Outcome, SharedCause, Status
from orchestrator.runner import STOPPED_EXIT_CODE, execute
from orchestrator.settings import RetrySettings

WRONG_PARTNER = "7654321"  # not a partner the world knows: the service answers PartnerIdInvalid


def _writes(em: Emulator) -> list[Any]:
    return [q for q in em.requests if q.service == "arm" and q.method in ("PUT", "PATCH", "DELETE")]


def test_a_rejected_partner_id_stops_after_a_few_dozen_and_resume_links_the_rest_once(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """400 identities, a partner ID the service rejects: exit 3 after at most a few dozen touched, with the cause
    and the fix in one line; the same run resumed with the right ID (--force) links all 400, each written once."""
    em = emulator_factory(make_world(400))
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    inv.write_text(inv.read_text().replace(f",{PARTNER}\n", ",\n"))  # the partner ID comes from the option

    stopped = execute(options(em, inv, tmp_path, partner_id=WRONG_PARTNER, concurrency=128), sleep=never_sleep())
    assert stopped.exit_code == STOPPED_EXIT_CODE
    assert stopped.stop is not None and WRONG_PARTNER in stopped.stop and "PartnerIdInvalid" in stopped.stop
    assert "location" in stopped.stop and "--resume" in stopped.stop
    touched = len(outcomes(stopped))
    assert 10 <= touched <= 36, touched
    assert len(_writes(em)) == touched

    resumed = execute(options(em, inv, tmp_path, partner_id=PARTNER, resume=True, force=True, concurrency=128),
                      sleep=never_sleep())
    assert resumed.run_id == stopped.run_id and resumed.exit_code == 0, resumed.counts
    assert resumed.counts == {"linked": 400}
    assert all(em.writes(r.tenant_id, r.object_id) == 1 for r in em.world.identities)


def test_a_vault_the_operator_cannot_read_stops_after_a_few_dozen_secret_reads(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every secret answers 403 for the operator: the run stops (exit 3) naming the vault and the role to grant."""
    world = make_world(300)
    world.vaults["pal-vault"].readers.clear()
    em = emulator_factory(world)
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)

    result = execute(options(em, inv, tmp_path), sleep=never_sleep())
    assert result.exit_code == STOPPED_EXIT_CODE
    assert result.stop is not None and "Key Vault Secrets User" in result.stop and "pal-vault" in result.stop
    reads = [q for q in em.requests if q.service == "keyvault" and "/secrets/" in q.path]
    assert len(reads) <= 40, len(reads)
    assert {o.status for o in outcomes(result)} == {Status.CREDENTIAL_FORBIDDEN}


def test_identities_missing_their_secrets_never_stop_the_run(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first 40 rows lack their secrets (each its own problem), the other 360 are fine: all run, exit 1."""
    world = make_world(400)
    em = emulator_factory(world)
    operator_env(em, monkeypatch)
    records = list(em.world.identities)
    inv = write_rows(tmp_path / "inv.csv", em, records)
    lines = inv.read_text().splitlines()
    for i in range(1, 41):  # rows 1–40 name a secret that does not exist
        lines[i] = lines[i].replace(records[i - 1].secret_name, f"missing-{i}")
    inv.write_text("\n".join(lines) + "\n")

    result = execute(options(em, inv, tmp_path), sleep=never_sleep())
    assert result.exit_code == 1 and result.stop is None
    assert result.counts == {"credential_missing": 40, "linked": 360}


def test_an_unresolvable_vault_fails_each_call_at_once_and_stops(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A vault host that does not resolve is not transient: one attempt per identity, then the shared-cause stop."""
    em = emulator_factory(make_world(6))
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    typo = "https://pal-vualt.vault.invalid"
    inv.write_text(inv.read_text().replace(em.url + "/vaults/pal-vault", typo))
    real = socket.getaddrinfo

    def no_such_host(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", no_such_host)
    result = execute(options(em, inv, tmp_path, vault_host_suffixes=(".vault.invalid",)), sleep=never_sleep())
    assert result.exit_code == STOPPED_EXIT_CODE
    assert result.stop is not None and "pal-vualt.vault.invalid" in result.stop and "DnsFailure" in result.stop
    assert all(o.attempts == 1 and o.error_code == "DnsFailure" for o in outcomes(result))


def test_an_unreachable_arm_endpoint_is_a_run_level_error_before_any_identity(
    emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The probe of …/operations cannot connect: exit 2 (EndpointError) and no Key Vault or Entra request."""
    operator_env(emulator, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", emulator, emulator.world.identities[:3])
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{sock.getsockname()[1]}/"

    async def no_wait(seconds: float) -> None:
        return None

    with pytest.raises(EndpointError, match="cannot reach Azure Resource Manager"):
        execute(options(emulator, inv, tmp_path, arm_endpoint=closed, retry=RetrySettings(attempts=2)),
                sleep=no_wait)
    assert not [q for q in emulator.requests if q.service in ("keyvault", "entra")]


# -- the rule itself ------------------------------------------------------------------------------------------

_CAUSE = SharedCause("partner_id_rejected", "7654321", "PartnerIdInvalid")


def _outcome(status: Status, cause: SharedCause | None = None) -> Outcome:
    return Outcome(key="k", customer="c", tenant_id="t", client_id="c", target_partner_id="7654321", status=status,
                   shared_cause=cause)


def test_the_breaker_opens_the_window_on_the_first_success_and_trips_on_a_streak() -> None:
    """Probation until one identity gets through; ten in a row with one cause trip it; a success resets."""
    breaker = Breaker(total=1000, concurrency=128)
    assert breaker.window == 10
    for _ in range(9):
        breaker.observe(_outcome(Status.PARTNER_ID_INVALID, _CAUSE))
    breaker.observe(_outcome(Status.LINKED))
    assert breaker.window == 128 and breaker.tripped is None
    for _ in range(9):
        breaker.observe(_outcome(Status.PARTNER_ID_INVALID, _CAUSE))
        breaker.observe(_outcome(Status.CREDENTIAL_MISSING))  # the identity's own problem: neutral
    assert breaker.tripped is None
    breaker.observe(_outcome(Status.PARTNER_ID_INVALID, _CAUSE))
    assert breaker.tripped is not None and breaker.tripped.count == 10 and breaker.window == 0
    assert "7654321" in breaker.tripped.message(Command.LINK)


def test_a_tiny_run_is_never_stopped_and_a_small_one_needs_every_row() -> None:
    """Two rows: nothing to spare, never stopped; five rows: stopped only when all five failed alike."""
    tiny = Breaker(total=2, concurrency=8)
    for _ in range(2):
        tiny.observe(_outcome(Status.PARTNER_ID_INVALID, _CAUSE))
    assert tiny.tripped is None
    small = Breaker(total=5, concurrency=8)
    for _ in range(4):
        small.observe(_outcome(Status.PARTNER_ID_INVALID, _CAUSE))
    assert small.tripped is None
    small.observe(_outcome(Status.PARTNER_ID_INVALID, _CAUSE))
    assert small.tripped is not None


# -- the partner-name guard -------------------------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "2-workers"])
def test_a_partner_id_of_another_partner_costs_one_write_and_stops(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    """--partner-id is a real ID of another partner: the first write goes alone (in the run: with worker processes
    the parent's guard decides), the service names the partner, the name is announced, and the mismatch with
    --partner-name stops the run (exit 3) after that one write."""
    world = make_world(60)
    world.add_partner(WRONG_PARTNER, "Fabrikam Partner")
    em = emulator_factory(world)
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    inv.write_text(inv.read_text().replace(f",{PARTNER}\n", ",\n"))
    said: list[str] = []
    result = execute(options(em, inv, tmp_path, partner_id=WRONG_PARTNER, partner_name="Contoso Partner",
                             workers=workers), sleep=never_sleep(), announce=said.append)
    assert result.exit_code == STOPPED_EXIT_CODE
    assert result.stop is not None and "Fabrikam Partner" in result.stop
    assert len(_writes(em)) == 1
    assert any("Fabrikam Partner" in line for line in said)


def test_a_partner_renamed_since_the_last_run_stops_the_run(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --partner-name, the name an earlier run recorded for the partner ID is the expected one."""
    world = make_world(30)
    em = emulator_factory(world)
    operator_env(em, monkeypatch)
    records = list(em.world.identities)
    first = write_rows(tmp_path / "q3.csv", em, records[:5])
    assert execute(options(em, first, tmp_path), sleep=never_sleep()).exit_code == 0
    em.world.partners[PARTNER] = "Someone Else Ltd"
    second = write_rows(tmp_path / "q4.csv", em, records[5:])
    before = len(_writes(em))
    result = execute(options(em, second, tmp_path), sleep=never_sleep())
    assert result.exit_code == STOPPED_EXIT_CODE and "Someone Else Ltd" in (result.stop or "")
    assert len(_writes(em)) - before == 1


def test_the_right_partner_name_lets_the_run_go_on(
    emulator_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name matches (case and spaces aside): every identity is linked."""
    em = emulator_factory(make_world(20))
    operator_env(em, monkeypatch)
    inv = write_rows(tmp_path / "inv.csv", em, em.world.identities)
    result = execute(options(em, inv, tmp_path, partner_name="contoso  partner"), sleep=never_sleep())
    assert result.exit_code == 0 and result.counts == {"linked": 20}
